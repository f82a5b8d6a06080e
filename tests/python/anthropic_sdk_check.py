"""Drive a running Switchyard gateway with the official Anthropic Python SDK.

Run by the Rust end-to-end test `python_anthropic_sdk` (tests/e2e/python.rs), which starts a
mock OpenAI-compatible upstream and a gateway whose config has the model group
``chat-upstream`` served by it: every Messages call here is translated to OpenAI chat and back.
The mock is steered through ``extra_body={"mock_upstream": ...}``.

Environment: ``GATEWAY_URL`` (``http://127.0.0.1:PORT``, no ``/v1``) and ``GATEWAY_KEY`` (the
master key, sent as ``x-api-key``). Only loopback is contacted. Exits 0 when every check
passes, 1 with a message naming the failed check otherwise.
"""

import sys

import anthropic

from checks_common import CheckFailed, expect, gateway_from_env, run_checks

MODEL = "chat-upstream"
TEXT = "Hello from an OpenAI-compatible upstream."
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
PARIS_CALL = {
    "id": "call_paris",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def make_client(base_url, api_key):
    return anthropic.Anthropic(base_url=base_url, api_key=api_key, timeout=20.0, max_retries=0)


def check_create(client):
    message = client.messages.create(
        model=MODEL,
        max_tokens=128,
        system="You are terse.",
        messages=[{"role": "user", "content": "Say hello"}],
        stop_sequences=["END"],
        metadata={"user_id": "sdk-user"},
        extra_body={"mock_upstream": {"content": TEXT, "prompt_tokens": 11, "completion_tokens": 8}},
    )
    expect(message.type == "message" and message.role == "assistant", f"message {message!r}")
    expect(len(message.content) == 1 and message.content[0].type == "text", f"content {message.content!r}")
    expect(message.content[0].text == TEXT, f"text {message.content[0].text!r}")
    expect(message.stop_reason == "end_turn", f"stop_reason {message.stop_reason!r}")
    expect(message.usage.input_tokens == 11 and message.usage.output_tokens == 8, f"usage {message.usage!r}")


def check_stream(client):
    with client.messages.stream(
        model=MODEL,
        max_tokens=128,
        messages=[{"role": "user", "content": "Stream please"}],
        extra_body={"mock_upstream": {"content": TEXT, "chunks": 6, "prompt_tokens": 5, "completion_tokens": 9}},
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    expect("".join(pieces) == TEXT, f"streamed text {''.join(pieces)!r}")
    expect(len(pieces) >= 2, f"expected several text deltas, got {pieces!r}")
    expect(final.content[0].text == TEXT, f"final text {final.content!r}")
    expect(final.stop_reason == "end_turn", f"stream stop_reason {final.stop_reason!r}")
    expect(final.usage.output_tokens == 9, f"stream output tokens {final.usage!r}")
    expect(final.usage.input_tokens == 5, f"stream input tokens {final.usage!r}")


def check_tool_use(client):
    first = client.messages.create(
        model=MODEL,
        max_tokens=128,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "auto"},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        extra_body={"mock_upstream": {"tool_calls": [PARIS_CALL]}},
    )
    expect(first.stop_reason == "tool_use", f"stop_reason {first.stop_reason!r}")
    tool_uses = [block for block in first.content if block.type == "tool_use"]
    expect(len(tool_uses) == 1, f"content {first.content!r}")
    call = tool_uses[0]
    expect(call.id == "call_paris" and call.name == "get_weather", f"tool_use {call!r}")
    expect(call.input == {"city": "Paris"}, f"tool input {call.input!r}")

    # The tool result goes back in the next turn; the model answers in text.
    second = client.messages.create(
        model=MODEL,
        max_tokens=128,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [block.model_dump() for block in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C, sunny"}]},
        ],
        extra_body={"mock_upstream": {"content": "It is 18C and sunny in Paris."}},
    )
    expect(second.content[0].text == "It is 18C and sunny in Paris.", f"second turn {second.content!r}")

    # Streamed tool use: the SDK assembles the input from input_json_delta events.
    with client.messages.stream(
        model=MODEL,
        max_tokens=128,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        extra_body={"mock_upstream": {"tool_calls": [PARIS_CALL]}},
    ) as stream:
        final = stream.get_final_message()
    streamed = [block for block in final.content if block.type == "tool_use"]
    expect(len(streamed) == 1 and streamed[0].input == {"city": "Paris"}, f"streamed tool use {final.content!r}")
    expect(final.stop_reason == "tool_use", f"streamed stop_reason {final.stop_reason!r}")


def check_count_tokens(client):
    count = client.messages.count_tokens(
        model=MODEL,
        messages=[{"role": "user", "content": "How many tokens is this?"}],
    )
    expect(count.input_tokens > 0, f"count_tokens {count!r}")


def check_errors(client, base_url):
    try:
        client.messages.create(
            model="no-such-model",
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
        )
    except anthropic.BadRequestError as error:
        expect(error.status_code == 400, f"unknown model status {error.status_code}")
        expect(error.body["error"]["type"] == "invalid_request_error", f"unknown model body {error.body!r}")
    else:
        raise CheckFailed("an unknown model did not raise BadRequestError")

    try:
        client.messages.create(
            model=MODEL,
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"mock_upstream": {"status": 429, "error_message": "slow down"}},
        )
    except anthropic.RateLimitError as error:
        expect(error.status_code == 429, f"rate limit status {error.status_code}")
        expect("slow down" in str(error), f"rate limit message {error}")
    else:
        raise CheckFailed("an upstream 429 did not raise RateLimitError")

    try:
        make_client(base_url, "sk-definitely-not-the-key").messages.create(
            model=MODEL,
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
        )
    except anthropic.AuthenticationError as error:
        expect(error.status_code == 401, f"wrong key status {error.status_code}")
    else:
        raise CheckFailed("a wrong key did not raise AuthenticationError")


def main():
    gateway = gateway_from_env("anthropic_sdk_check")
    if gateway is None:
        return 2
    base_url, api_key = gateway
    client = make_client(base_url, api_key)
    checks = [
        ("create", lambda: check_create(client)),
        ("stream", lambda: check_stream(client)),
        ("tool_use", lambda: check_tool_use(client)),
        ("count_tokens", lambda: check_count_tokens(client)),
        ("errors", lambda: check_errors(client, base_url)),
    ]
    return run_checks("anthropic_sdk_check", checks, f"anthropic {anthropic.__version__}")


if __name__ == "__main__":
    sys.exit(main())
