"""Drive a running Switchyard gateway with the official OpenAI Python SDK.

Run by the Rust end-to-end test `python_openai_sdk` (tests/e2e/python.rs), which starts a mock
upstream and a gateway whose config has these model groups:

- ``chat-upstream``: chat served by the mock upstream (steered through ``extra_body``),
- ``chat-mocked``: chat answered by the gateway's built-in ``mock_response`` ("Mocked hello."),
- ``embed-upstream``: embeddings served by the mock upstream.

Environment: ``GATEWAY_URL`` (``http://127.0.0.1:PORT``, no ``/v1``) and ``GATEWAY_KEY`` (the
master key). Only loopback is contacted. Exits 0 when every check passes, 1 with a message
naming the failed check otherwise.
"""

import sys

import openai

from checks_common import CheckFailed, expect, gateway_from_env, run_checks

MOCKED_TEXT = "Mocked hello."
UPSTREAM_TEXT = "Hello from upstream via the SDK."


def make_client(base_url, api_key):
    return openai.OpenAI(
        base_url=base_url + "/v1",
        api_key=api_key,
        timeout=20.0,
        max_retries=0,
    )


def check_models(client):
    ids = [model.id for model in client.models.list()]
    for name in ("chat-upstream", "chat-mocked", "embed-upstream"):
        expect(name in ids, f"models.list() lacks {name!r}: {ids}")


def check_chat(client):
    completion = client.chat.completions.create(
        model="chat-upstream",
        messages=[{"role": "user", "content": "Say hello"}],
        temperature=0.2,
        extra_body={"mock_upstream": {"content": UPSTREAM_TEXT}},
    )
    text = completion.choices[0].message.content
    expect(text == UPSTREAM_TEXT, f"chat content {text!r} != {UPSTREAM_TEXT!r}")
    expect(completion.choices[0].finish_reason == "stop", f"finish_reason {completion.choices[0].finish_reason!r}")
    expect(completion.usage is not None and completion.usage.total_tokens > 0, f"usage {completion.usage!r}")

    raw = client.chat.completions.with_raw_response.create(
        model="chat-mocked",
        messages=[{"role": "user", "content": "hi"}],
    )
    expect(raw.headers.get("x-litellm-model-group") == "chat-mocked",
           f"x-litellm-model-group {raw.headers.get('x-litellm-model-group')!r}")
    mocked = raw.parse()
    expect(mocked.choices[0].message.content == MOCKED_TEXT,
           f"mock_response content {mocked.choices[0].message.content!r}")
    expect(mocked.usage.prompt_tokens == 10 and mocked.usage.completion_tokens == 20,
           f"mock usage {mocked.usage!r}")


def check_stream(client):
    deltas = []
    usage = None
    finish = None
    stream = client.chat.completions.create(
        model="chat-upstream",
        messages=[{"role": "user", "content": "Stream please"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"mock_upstream": {"content": UPSTREAM_TEXT, "chunks": 7}},
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                deltas.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    text = "".join(deltas)
    expect(text == UPSTREAM_TEXT, f"streamed text {text!r} != {UPSTREAM_TEXT!r}")
    expect(len(deltas) >= 2, f"expected several deltas, got {deltas!r}")
    expect(finish == "stop", f"stream finish_reason {finish!r}")
    expect(usage is not None and usage.total_tokens > 0, f"stream usage {usage!r}")

    mocked = "".join(
        choice.delta.content or ""
        for chunk in client.chat.completions.create(
            model="chat-mocked",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
        for choice in chunk.choices
    )
    expect(mocked == MOCKED_TEXT, f"mocked stream text {mocked!r}")


def check_embeddings(client):
    response = client.embeddings.create(
        model="embed-upstream",
        input=["first", "second"],
    )
    expect(len(response.data) == 2, f"{len(response.data)} embeddings for 2 inputs")
    for index, item in enumerate(response.data):
        expect(item.index == index, f"embedding index {item.index} != {index}")
        expect(len(item.embedding) > 0 and all(isinstance(x, float) for x in item.embedding),
               f"embedding {index} is not a float vector")
    expect(response.data[0].embedding != response.data[1].embedding, "both vectors are equal")


def check_errors(client, base_url):
    try:
        client.chat.completions.create(
            model="no-such-model",
            messages=[{"role": "user", "content": "hi"}],
        )
    except openai.BadRequestError as error:
        expect(error.status_code == 400, f"unknown model status {error.status_code}")
        expect("Invalid model name" in str(error), f"unknown model message {error}")
    else:
        raise CheckFailed("an unknown model did not raise BadRequestError")

    try:
        client.chat.completions.create(
            model="chat-upstream",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"mock_upstream": {"status": 429, "error_message": "slow down"}},
        )
    except openai.RateLimitError as error:
        expect(error.status_code == 429, f"rate limit status {error.status_code}")
        expect("slow down" in str(error), f"rate limit message {error}")
    else:
        raise CheckFailed("an upstream 429 did not raise RateLimitError")

    wrong_key = make_client(base_url, "sk-definitely-not-the-key")
    try:
        wrong_key.models.list()
    except openai.AuthenticationError as error:
        expect(error.status_code == 401, f"wrong key status {error.status_code}")
    else:
        raise CheckFailed("a wrong key did not raise AuthenticationError")


def main():
    gateway = gateway_from_env("openai_sdk_check")
    if gateway is None:
        return 2
    base_url, api_key = gateway
    client = make_client(base_url, api_key)
    checks = [
        ("models", lambda: check_models(client)),
        ("chat", lambda: check_chat(client)),
        ("stream", lambda: check_stream(client)),
        ("embeddings", lambda: check_embeddings(client)),
        ("errors", lambda: check_errors(client, base_url)),
    ]
    return run_checks("openai_sdk_check", checks, f"openai {openai.__version__}")


if __name__ == "__main__":
    sys.exit(main())
