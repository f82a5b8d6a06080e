//! Run with: `cargo run -p switchyard-examples --example sdk_chat [CONFIG]`
//!
//! A plain Rust program using Switchyard as a library: the same LiteLLM-format config the
//! gateway reads, a unified chat call and a streaming one, no HTTP server involved. With the
//! default `examples/quickstart.yaml` the built-in mock model answers, so no provider key is
//! needed; point it at your own config (and model) to call real providers.

use std::io::Write;

use futures::StreamExt;
use switchyard::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/quickstart.yaml").to_owned());
    let model = std::env::var("SWITCHYARD_MODEL").unwrap_or_else(|_| "mock-gpt".to_owned());
    let gateway = Switchyard::from_file(&config)?;
    let mut out = std::io::stdout().lock();

    let request = ChatCompletionRequest {
        model: model.clone(),
        messages: vec![
            ChatMessage::system("You are terse."),
            ChatMessage::user("Say hello."),
        ],
        ..Default::default()
    };

    // One call: the router picks a deployment of the group and its provider answers.
    let reply = gateway
        .chat(request.clone(), &RequestOptions::default())
        .await?;
    writeln!(
        out,
        "[{} via deployment {}] {}",
        reply.meta.model_group,
        reply.meta.deployment_id,
        reply.body.choices[0].message.text()
    )?;
    if let Some(usage) = &reply.body.usage {
        writeln!(
            out,
            "usage: {} prompt + {} completion tokens",
            usage.prompt_tokens, usage.completion_tokens
        )?;
    }

    // The same call, streamed: chunks arrive as the provider produces them.
    let stream = gateway
        .chat_stream(request, &RequestOptions::default())
        .await?;
    let mut chunks = typed_chunks(stream.body);
    write!(out, "streamed: ")?;
    let mut pieces = 0;
    while let Some(chunk) = chunks.next().await {
        for choice in chunk?.choices {
            if let Some(text) = choice.delta.content {
                write!(out, "{text}")?;
                out.flush()?;
                pieces += 1;
            }
        }
    }
    writeln!(out, "\n({pieces} chunks)")?;
    anyhow::ensure!(pieces > 0, "the stream carried no content");
    Ok(())
}
