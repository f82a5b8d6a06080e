//! Run with: `cargo bench -p switchyard-providers --bench anthropic_inbound`
//!
//! What serving an Anthropic-format client costs on top of the chat call: parsing and
//! translating a Messages request (system, a tool, a multi-turn conversation with a tool
//! result), turning the chat answer into an Anthropic message and encoding it, and encoding a
//! 22-chunk text stream as Anthropic events; each next to the same work for an OpenAI-format
//! client, so the figures read as ratios.

#![allow(
    clippy::unwrap_used,
    reason = "benchmark set-up: a fixture that does not parse should stop the run loudly"
)]

use std::hint::black_box;

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use switchyard_llm_types::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse};
use switchyard_providers::anthropic::inbound::{
    to_anthropic_message, to_chat_request, MessagesRequest, StreamEncoder,
};

fn request_bytes() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "claude-sonnet-4-5", "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are a helpful assistant that answers briefly.",
                    "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "get_weather", "description": "Current weather for a city",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                    "required": ["city"]}}],
        "messages": [
            {"role": "user", "content": "What is the weather in Paris today?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C and sunny"},
                {"type": "text", "text": "Thanks! And should I take an umbrella?"}]}
        ]
    }))
    .unwrap()
}

fn response() -> ChatCompletionResponse {
    serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
            "content": "No umbrella needed: it is 18C and sunny in Paris all day."}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 16, "total_tokens": 136,
                  "prompt_tokens_details": {"cached_tokens": 100}}
    }))
    .unwrap()
}

fn chunks() -> Vec<ChatCompletionChunk> {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        serde_json::from_value(
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
        )
        .unwrap()
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        json!(null),
    )];
    chunks.extend((0..20).map(|i| chunk(json!({"content": format!("word{i} ")}), json!(null))));
    chunks.push(chunk(json!({}), json!("stop")));
    chunks
}

/// Operations are `#[inline(never)]` functions so that callgrind reads their cost per call.
/// Each is paired with what the same work costs for an OpenAI-format client (`openai`): the
/// same conversation parsed as a chat request, the same answer encoded as a
/// `chat.completion`, the same chunks written as OpenAI SSE frames.
#[inline(never)]
fn request_openai(bytes: &[u8]) -> ChatCompletionRequest {
    serde_json::from_slice(bytes).unwrap()
}

#[inline(never)]
fn request_anthropic(bytes: &[u8]) -> ChatCompletionRequest {
    let request: MessagesRequest = serde_json::from_slice(bytes).unwrap();
    to_chat_request(request).unwrap()
}

#[inline(never)]
fn response_openai(answer: ChatCompletionResponse) -> Vec<u8> {
    serde_json::to_vec(&answer).unwrap()
}

#[inline(never)]
fn response_anthropic(answer: ChatCompletionResponse) -> Vec<u8> {
    let message = to_anthropic_message(answer, "claude-sonnet-4-5");
    serde_json::to_vec(&message).unwrap()
}

#[inline(never)]
fn stream_openai(chunks: &[ChatCompletionChunk]) -> BytesMut {
    let mut out = BytesMut::with_capacity(8192);
    for chunk in chunks {
        out.put_slice(b"data: ");
        serde_json::to_writer((&mut out).writer(), chunk).unwrap();
        out.put_slice(b"\n\n");
    }
    out.put_slice(b"data: [DONE]\n\n");
    out
}

#[inline(never)]
fn stream_anthropic(chunks: &[ChatCompletionChunk]) -> BytesMut {
    let mut encoder = StreamEncoder::new("claude-sonnet-4-5");
    let mut out = BytesMut::with_capacity(8192);
    for chunk in chunks {
        encoder.on_chunk(chunk, &mut out);
    }
    encoder.finish(&mut out);
    out
}

fn inbound(c: &mut Criterion) {
    let bytes = request_bytes();
    // The same conversation as an OpenAI chat request.
    let openai_bytes = serde_json::to_vec(&request_anthropic(&bytes)).unwrap();
    let mut group = c.benchmark_group("messages request: parse + translate");
    group.bench_function("openai", |b| {
        b.iter(|| black_box(request_openai(black_box(&openai_bytes))))
    });
    group.bench_function("anthropic", |b| {
        b.iter(|| black_box(request_anthropic(black_box(&bytes))))
    });
    group.finish();

    let answer = response();
    let mut group = c.benchmark_group("message response: translate + encode");
    group.bench_function("openai", |b| {
        b.iter(|| black_box(response_openai(black_box(answer.clone()))))
    });
    group.bench_function("anthropic", |b| {
        b.iter(|| black_box(response_anthropic(black_box(answer.clone()))))
    });
    group.finish();

    let stream = chunks();
    let mut group = c.benchmark_group("stream: 22 chunks to events");
    group.bench_function("openai", |b| {
        b.iter(|| black_box(stream_openai(black_box(&stream))))
    });
    group.bench_function("anthropic", |b| {
        b.iter(|| black_box(stream_anthropic(black_box(&stream))))
    });
    group.finish();
}

criterion_group!(benches, inbound);
criterion_main!(benches);
