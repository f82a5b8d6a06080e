//! Which remote images of a request reach Ollama, which takes images only inline: those are
//! downloaded by the gateway ([`crate::image_fetch`]) and sent as base64, as LiteLLM does.

use std::time::Duration;

use switchyard_llm_types::{ChatMessage, Role};

use super::request::Endpoint;
use crate::image_fetch::{self, FetchedImages};
use crate::ProviderError;

/// Whether `role`'s images reach Ollama: every message's on `/api/chat`; on `/api/generate`
/// only those of the turns that go into the prompt's `### User:` blocks.
fn carries_images(role: Role, endpoint: Endpoint) -> bool {
    match endpoint {
        Endpoint::Chat => true,
        Endpoint::Generate => matches!(role, Role::User | Role::Tool | Role::Function),
    }
}

/// The distinct remote image URLs of `messages` that reach Ollama on `endpoint`, in order of
/// appearance (no allocation when there are none).
pub fn remote_urls(messages: &[ChatMessage], endpoint: Endpoint) -> Vec<&str> {
    image_fetch::remote_urls(messages, |role, image| {
        carries_images(role, endpoint) && image_fetch::is_remote(&image.url)
    })
}

/// Downloads the remote images of `messages` that reach Ollama on `endpoint`.
pub async fn fetch(
    provider: &'static str,
    client: &reqwest::Client,
    messages: &[ChatMessage],
    endpoint: Endpoint,
    call_timeout: Duration,
) -> Result<FetchedImages, ProviderError> {
    let urls = remote_urls(messages, endpoint);
    image_fetch::fetch_all(provider, client, &urls, call_timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generate_takes_the_images_of_user_and_tool_turns_only() {
        let image = |url: &str| json!([{"type": "image_url", "image_url": {"url": url}}]);
        let messages: Vec<ChatMessage> = serde_json::from_value(json!([
            {"role": "system", "content": image("https://a/system.png")},
            {"role": "user", "content": image("https://a/user.png")},
            {"role": "assistant", "content": image("https://a/assistant.png")},
            {"role": "tool", "tool_call_id": "t", "content": image("http://a/tool.png")},
            {"role": "user", "content": image("data:image/png;base64,AAAA")}
        ]))
        .unwrap();
        assert_eq!(
            remote_urls(&messages, Endpoint::Chat),
            vec![
                "https://a/system.png",
                "https://a/user.png",
                "https://a/assistant.png",
                "http://a/tool.png"
            ]
        );
        assert_eq!(
            remote_urls(&messages, Endpoint::Generate),
            vec!["https://a/user.png", "http://a/tool.png"]
        );
    }
}
