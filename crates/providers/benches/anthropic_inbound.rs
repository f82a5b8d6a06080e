//! Run with: `cargo bench -p switchyard-providers --bench anthropic_inbound`
//!
//! What serving an Anthropic-format client costs on top of the chat call: parsing and
//! translating a Messages request (system, a tool, a multi-turn conversation with a tool
//! result), turning the chat answer into an Anthropic message and encoding it, and encoding a
//! 20-chunk text stream as Anthropic events.

#![allow(
    clippy::unwrap_used,
    reason = "benchmark set-up: a fixture that does not parse should stop the run loudly"
)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use switchyard_llm_types::{ChatCompletionChunk, ChatCompletionResponse};
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

fn inbound(c: &mut Criterion) {
    let bytes = request_bytes();
    c.bench_function("messages request: parse + translate", |b| {
        b.iter(|| {
            let request: MessagesRequest = serde_json::from_slice(black_box(&bytes)).unwrap();
            black_box(to_chat_request(request).unwrap())
        })
    });
    let answer = response();
    c.bench_function("message response: translate + encode", |b| {
        b.iter(|| {
            let message = to_anthropic_message(black_box(answer.clone()), "claude-sonnet-4-5");
            black_box(serde_json::to_vec(&message).unwrap())
        })
    });
    let stream = chunks();
    c.bench_function("stream: 22 chunks to events", |b| {
        b.iter(|| {
            let mut encoder = StreamEncoder::new("claude-sonnet-4-5");
            let mut out = BytesMut::with_capacity(8192);
            for chunk in black_box(&stream) {
                encoder.on_chunk(chunk, &mut out);
            }
            encoder.finish(&mut out);
            black_box(out)
        })
    });
}

criterion_group!(benches, inbound);
criterion_main!(benches);
