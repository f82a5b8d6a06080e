"""Drive a running Switchyard gateway with the official OpenAI Python SDK, against models
that the gateway translates to other providers' APIs.

Run by the Rust end-to-end test `python_openai_sdk_translated` (tests/e2e/python.rs), which
starts mocks of the Anthropic Messages API and of the Gemini API (each refuses a request of the
wrong shape) and a gateway whose config has these model groups:

- ``claude``: ``anthropic/claude-sonnet-4-5`` on the Anthropic mock,
- ``gemini-flash``: ``gemini/gemini-2.0-flash`` on the Gemini mock,
- ``gemini-embed``: ``gemini/text-embedding-004`` on the Gemini mock.

Environment: ``GATEWAY_URL`` (no ``/v1``) and ``GATEWAY_KEY``. Exits 0 when every check passes,
1 with a message naming the failed check otherwise.
"""

import json
import sys

import openai

from checks_common import expect, gateway_from_env, run_checks

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def stream_text_and_tools(stream):
    """Concatenated content, tool calls assembled from their deltas, and the finish reason."""
    text, tools, finish = "", {}, None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        delta = choice.delta
        if delta.content:
            text += delta.content
        for call in delta.tool_calls or []:
            slot = tools.setdefault(call.index, {"name": "", "arguments": ""})
            if call.function and call.function.name:
                slot["name"] += call.function.name
            if call.function and call.function.arguments:
                slot["arguments"] += call.function.arguments
        if choice.finish_reason:
            finish = choice.finish_reason
    return text, [tools[i] for i in sorted(tools)], finish


def check_claude(client):
    reply = client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
    )
    expect(reply.choices[0].message.content == "Hello from Claude", f"claude text: {reply}")
    expect(reply.choices[0].finish_reason == "stop", f"claude finish: {reply}")
    expect(reply.usage.prompt_tokens == 9 and reply.usage.completion_tokens == 4, f"usage: {reply.usage}")

    text, tools, finish = stream_text_and_tools(
        client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
        )
    )
    expect(text == "Hello from Claude", f"claude stream text: {text!r}")
    expect(not tools and finish == "stop", f"claude stream: {tools} {finish}")

    reply = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )
    calls = reply.choices[0].message.tool_calls
    expect(calls and calls[0].function.name == "get_weather", f"claude tool call: {reply}")
    expect(json.loads(calls[0].function.arguments) == {"city": "Paris"}, f"args: {calls}")
    expect(reply.choices[0].finish_reason == "tool_calls", f"finish: {reply}")

    # The tool result goes back as a tool_result block (the mock checks it).
    follow_up = client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
            {"role": "tool", "tool_call_id": calls[0].id, "content": "18 degrees, clear"},
        ],
        tools=[WEATHER_TOOL],
    )
    expect(follow_up.choices[0].message.content == "Hello from Claude", f"follow-up: {follow_up}")

    text, tools, finish = stream_text_and_tools(
        client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER_TOOL],
            stream=True,
        )
    )
    expect(text == "Checking.", f"claude tool stream text: {text!r}")
    expect(len(tools) == 1 and tools[0]["name"] == "get_weather", f"stream tools: {tools}")
    expect(json.loads(tools[0]["arguments"]) == {"city": "Paris"}, f"stream args: {tools}")
    expect(finish == "tool_calls", f"claude tool stream finish: {finish}")


def check_gemini(client):
    reply = client.chat.completions.create(
        model="gemini-flash",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
    )
    expect(reply.choices[0].message.content == "Hello from Gemini", f"gemini text: {reply}")
    expect(reply.usage.prompt_tokens == 7, f"gemini usage: {reply.usage}")
    expect(reply.usage.prompt_tokens_details.cached_tokens == 2, f"cached: {reply.usage}")

    text, tools, finish = stream_text_and_tools(
        client.chat.completions.create(
            model="gemini-flash",
            messages=[{"role": "user", "content": "Say hello"}],
            tools=[WEATHER_TOOL],
            stream=True,
        )
    )
    expect(text == "Hello!", f"gemini stream text: {text!r}")
    expect(len(tools) == 1 and tools[0]["name"] == "wave", f"gemini stream tools: {tools}")
    expect(json.loads(tools[0]["arguments"]) == {"times": 2}, f"gemini args: {tools}")
    expect(finish == "tool_calls", f"gemini finish: {finish}")

    embeddings = client.embeddings.create(model="gemini-embed", input=["a", "b"])
    expect(len(embeddings.data) == 2, f"gemini embeddings: {embeddings}")
    expect(embeddings.data[1].embedding == [1.0, 1.0], f"second vector: {embeddings.data[1]}")


def main():
    gateway = gateway_from_env("openai_translated_check")
    if gateway is None:
        return 2
    base_url, api_key = gateway
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=api_key, timeout=20.0, max_retries=0)
    checks = [
        ("claude", lambda: check_claude(client)),
        ("gemini", lambda: check_gemini(client)),
    ]
    return run_checks("openai_translated_check", checks, f"openai {openai.__version__}")


if __name__ == "__main__":
    sys.exit(main())
