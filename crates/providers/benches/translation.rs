//! Run with: `cargo bench -p switchyard-providers --bench translation`
//!
//! What translating costs per request, per response and per stream event for the Gemini,
//! Bedrock, Ollama and Cohere adapters (and Anthropic, for comparison), next to what the OpenAI-compatible
//! passthrough costs for the same operation: a typical chat request with a system prompt,
//! three turns and one tool, encoded; a response with text, a tool call and cached usage,
//! decoded and encoded as `chat.completion`; one stream event decoded and turned into a
//! chunk.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark set-up: a failure to build the fixture should stop the run loudly"
)]

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use switchyard_llm_types::{ChatCompletionRequest, ChatCompletionResponse, ChunkJson};
use switchyard_providers::bedrock::stream::frames;
use switchyard_providers::sse::{SseDecoder, SseEvent};
use switchyard_providers::stream_driver::ChunkSource;
use switchyard_providers::{anthropic, bedrock, cohere, gemini, ollama};

fn request() -> ChatCompletionRequest {
    serde_json::from_value(json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
            {"role": "user", "content": "What's the weather like in Paris today?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\":18,\"sky\":\"clear\"}"},
            {"role": "user", "content": "Should I take an umbrella?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "temperature": 0.3, "max_tokens": 512
    }))
    .unwrap()
}

fn gemini_response() -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "No umbrella needed: the sky is clear and it is 18 degrees."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
            "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 20, "totalTokenCount": 140,
                          "cachedContentTokenCount": 64},
        "modelVersion": "gemini-2.0-flash", "responseId": "bench"
    })
}

fn bedrock_response() -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "No umbrella needed: the sky is clear and it is 18 degrees."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 56, "outputTokens": 20, "totalTokens": 140, "cacheReadInputTokens": 64},
        "metrics": {"latencyMs": 300}
    })
}

fn ollama_response() -> Value {
    json!({
        "model": "llama3.1", "created_at": "2025-06-01T10:00:00.000000Z",
        "message": {"role": "assistant",
            "content": "No umbrella needed: the sky is clear and it is 18 degrees.",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        "done": true, "done_reason": "stop", "total_duration": 4883583458_u64,
        "prompt_eval_count": 120, "eval_count": 20
    })
}

fn cohere_response() -> Value {
    json!({
        "id": "bench", "finish_reason": "TOOL_CALL",
        "message": {"role": "assistant",
            "content": [{"type": "text", "text": "No umbrella needed: the sky is clear and it is 18 degrees."}],
            "tool_calls": [{"id": "get_weather_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        "usage": {"billed_units": {"input_tokens": 56, "output_tokens": 20},
                  "tokens": {"input_tokens": 120, "output_tokens": 20}}
    })
}

/// What the OpenAI-compatible passthrough gets back for the same answer.
fn openai_response() -> Value {
    json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant",
            "content": "No umbrella needed: the sky is clear and it is 18 degrees.",
            "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140,
                  "prompt_tokens_details": {"cached_tokens": 64}}
    })
}

// One function per measured operation, never inlined, so that an instruction-count profile
// (`valgrind --tool=callgrind`) reads each operation's cost per call under its own name.

#[inline(never)]
fn request_passthrough(request: &ChatCompletionRequest) -> Vec<u8> {
    serde_json::to_vec(request).unwrap()
}

#[inline(never)]
fn request_gemini(request: &ChatCompletionRequest) -> Vec<u8> {
    serde_json::to_vec(&gemini::request::to_gemini_request("Gemini", request).unwrap()).unwrap()
}

#[inline(never)]
fn request_bedrock(request: &ChatCompletionRequest) -> Vec<u8> {
    serde_json::to_vec(&bedrock::request::to_converse_request(request).unwrap()).unwrap()
}

#[inline(never)]
fn request_anthropic(request: &ChatCompletionRequest) -> Vec<u8> {
    serde_json::to_vec(&anthropic::request::to_messages_request(request, false).unwrap()).unwrap()
}

#[inline(never)]
fn request_cohere(request: &ChatCompletionRequest) -> Vec<u8> {
    serde_json::to_vec(&cohere::request::to_cohere_request("Cohere", request, false).unwrap())
        .unwrap()
}

#[inline(never)]
fn response_passthrough(bytes: &[u8]) -> Vec<u8> {
    let response: ChatCompletionResponse = serde_json::from_slice(bytes).unwrap();
    serde_json::to_vec(&response).unwrap()
}

#[inline(never)]
fn response_gemini(bytes: &[u8]) -> Vec<u8> {
    let response = gemini::response::to_chat_response(bytes, "id", "m", 0).unwrap();
    serde_json::to_vec(&response).unwrap()
}

#[inline(never)]
fn response_bedrock(bytes: &[u8]) -> Vec<u8> {
    let response = bedrock::response::to_chat_response(bytes, "id", "m", 0).unwrap();
    serde_json::to_vec(&response).unwrap()
}

#[inline(never)]
fn response_cohere(bytes: &[u8]) -> Vec<u8> {
    let response = cohere::response::to_chat_response(bytes, "id", "m", 0).unwrap();
    serde_json::to_vec(&response).unwrap()
}

#[inline(never)]
fn stream_event_passthrough(decoder: &mut SseDecoder, event: &[u8]) -> ChunkJson {
    decoder.push(event);
    match decoder.next_event() {
        Some(SseEvent::Data(payload)) => ChunkJson::from_bytes(payload),
        _ => unreachable!("the event holds a chunk"),
    }
}

#[inline(never)]
fn stream_event_gemini(
    stream: &mut gemini::stream::GeminiStream,
    event: &[u8],
    out: &mut VecDeque<ChunkJson>,
) {
    out.clear();
    stream.push(event);
    assert!(stream.next_chunks_into(out).unwrap());
}

#[inline(never)]
fn stream_event_bedrock(
    stream: &mut bedrock::stream::ConverseStream,
    event: &[u8],
    out: &mut VecDeque<ChunkJson>,
) {
    out.clear();
    stream.push(event);
    assert!(stream.next_chunks_into(out).unwrap());
}

#[inline(never)]
fn stream_event_cohere(
    stream: &mut cohere::stream::CohereStream,
    event: &[u8],
    out: &mut VecDeque<ChunkJson>,
) {
    out.clear();
    stream.push(event);
    assert!(stream.next_chunks_into(out).unwrap());
}

/// The payload only: its SSE framing costs what the passthrough row shows.
#[inline(never)]
fn stream_event_anthropic(
    translator: &mut anthropic::stream::StreamTranslator,
    payload: &[u8],
    out: &mut VecDeque<ChunkJson>,
) {
    out.clear();
    translator.on_event_into(payload, out).unwrap();
}

#[inline(never)]
fn request_ollama_chat(request: &ChatCompletionRequest) -> Vec<u8> {
    serde_json::to_vec(&ollama::request::to_chat_request("Ollama_chat", request).unwrap()).unwrap()
}

#[inline(never)]
fn request_ollama_generate(request: &ChatCompletionRequest) -> Vec<u8> {
    serde_json::to_vec(&ollama::request::to_generate_request("Ollama", request).unwrap()).unwrap()
}

#[inline(never)]
fn response_ollama(bytes: &[u8]) -> Vec<u8> {
    let value: Value = serde_json::from_slice(bytes).unwrap();
    let response = ollama::response::to_chat_response(&value, "id", "m", 0).unwrap();
    serde_json::to_vec(&response).unwrap()
}

#[inline(never)]
fn stream_event_ollama(
    stream: &mut ollama::stream::OllamaStream,
    line: &[u8],
    out: &mut VecDeque<ChunkJson>,
) {
    out.clear();
    stream.push(line);
    assert!(stream.next_chunks_into(out).unwrap());
}

/// Each group starts with `passthrough`, what an OpenAI-compatible deployment costs for the
/// same operation, so that the translated figures read as ratios.
fn requests(c: &mut Criterion) {
    let request = request();
    let mut group = c.benchmark_group("request");
    group.bench_function("passthrough", |b| {
        b.iter(|| request_passthrough(black_box(&request)))
    });
    group.bench_function("gemini", |b| b.iter(|| request_gemini(black_box(&request))));
    group.bench_function("bedrock", |b| {
        b.iter(|| request_bedrock(black_box(&request)))
    });
    group.bench_function("anthropic", |b| {
        b.iter(|| request_anthropic(black_box(&request)))
    });
    group.bench_function("cohere", |b| b.iter(|| request_cohere(black_box(&request))));
    group.bench_function("ollama_chat", |b| {
        b.iter(|| request_ollama_chat(black_box(&request)))
    });
    group.bench_function("ollama_generate", |b| {
        b.iter(|| request_ollama_generate(black_box(&request)))
    });
    group.finish();
}

fn responses(c: &mut Criterion) {
    let mut group = c.benchmark_group("response");
    let openai_bytes = serde_json::to_vec(&openai_response()).unwrap();
    group.bench_function("passthrough", |b| {
        b.iter(|| response_passthrough(black_box(&openai_bytes)))
    });
    let gemini_bytes = serde_json::to_vec(&gemini_response()).unwrap();
    group.bench_function("gemini", |b| {
        b.iter(|| response_gemini(black_box(&gemini_bytes)))
    });
    let bedrock_bytes = serde_json::to_vec(&bedrock_response()).unwrap();
    group.bench_function("bedrock", |b| {
        b.iter(|| response_bedrock(black_box(&bedrock_bytes)))
    });
    let cohere_bytes = serde_json::to_vec(&cohere_response()).unwrap();
    group.bench_function("cohere", |b| {
        b.iter(|| response_cohere(black_box(&cohere_bytes)))
    });
    let ollama_bytes = serde_json::to_vec(&ollama_response()).unwrap();
    group.bench_function("ollama", |b| {
        b.iter(|| response_ollama(black_box(&ollama_bytes)))
    });
    group.finish();
}

/// One event in, its chunk out, through the same [`ChunkSource::next_chunks_into`] the
/// stream driver calls; the output queue is reused as the driver reuses its own.
fn stream_events(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_event");
    let mut out = VecDeque::new();

    let openai_event = b"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the sky is clear\"},\"finish_reason\":null}]}\n\n";
    let mut decoder = SseDecoder::new();
    group.bench_function("passthrough", |b| {
        b.iter(|| stream_event_passthrough(&mut decoder, black_box(openai_event)))
    });

    let gemini_event = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" the sky is clear\"}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-2.0-flash\",\"responseId\":\"bench\"}\r\n\r\n";
    let mut gemini_stream = gemini::stream::GeminiStream::new(
        gemini::stream::StreamTranslator::new("Gemini", "m", "id", true, 0),
    );
    group.bench_function("gemini", |b| {
        b.iter(|| stream_event_gemini(&mut gemini_stream, black_box(gemini_event), &mut out))
    });

    let mut bedrock_stream = bedrock::stream::ConverseStream::new(
        bedrock::stream::StreamTranslator::new("Bedrock", "m", "id", true, 0),
    );
    let frame = frames::event(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":" the sky is clear"}}"#,
    );
    group.bench_function("bedrock", |b| {
        b.iter(|| stream_event_bedrock(&mut bedrock_stream, black_box(&frame), &mut out))
    });

    let mut cohere_stream = cohere::stream::CohereStream::new(
        cohere::stream::StreamTranslator::new("Cohere", "m", "id", true, 0),
    );
    let cohere_event = b"data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\" the sky is clear\"}}}}\n\n";
    group.bench_function("cohere", |b| {
        b.iter(|| stream_event_cohere(&mut cohere_stream, black_box(cohere_event), &mut out))
    });

    let mut translator = anthropic::stream::StreamTranslator::new("Anthropic", "m", true, 0);
    let anthropic_event: &[u8] =
        br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" the sky is clear"}}"#;
    group.bench_function("anthropic", |b| {
        b.iter(|| stream_event_anthropic(&mut translator, black_box(anthropic_event), &mut out))
    });
    group.finish();
}

fn ollama_stream_lines(c: &mut Criterion) {
    let line = b"{\"model\":\"llama3.1\",\"created_at\":\"2025-06-01T10:00:00.000000Z\",\"message\":{\"role\":\"assistant\",\"content\":\" the sky is clear\"},\"done\":false}\n";
    let mut stream = ollama::stream::OllamaStream::new(ollama::stream::StreamTranslator::new(
        "Ollama_chat",
        "m",
        "id",
        true,
        0,
    ));
    let mut out = VecDeque::new();
    c.bench_function("stream_event/ollama_line", |b| {
        b.iter(|| stream_event_ollama(&mut stream, black_box(line), &mut out))
    });
}

criterion_group!(
    benches,
    requests,
    responses,
    stream_events,
    ollama_stream_lines
);
criterion_main!(benches);
