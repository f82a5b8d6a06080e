//! Remote images for Ollama, which takes images only inline (bare base64): an `http(s)://`
//! image URL in a request is downloaded by the gateway and sent as base64, as LiteLLM does.
//!
//! The adapter collects a request's remote URLs ([`remote_urls`]: nothing to do, and nothing
//! allocated, for the usual request without any), downloads them concurrently
//! ([`fetch_all`]) and hands the result ([`FetchedImages`]) to the synchronous translation in
//! [`super::request`], which looks each URL up.
//!
//! Every download is bounded: [`FETCH_TIMEOUT`] for the whole transfer (at most the call's own
//! timeout), [`MAX_IMAGE_BYTES`] read (a larger `Content-Length` is refused before reading,
//! and the body is read piece by piece and abandoned past the limit), http and https only. An
//! image that cannot be used (bad URL, unreachable host, non-2xx answer, not an image, too
//! large, too slow) is the client's problem to fix, so it is a 400 naming the URL, like
//! LiteLLM's `ImageFetchError` (a `BadRequestError`): retrying the same request elsewhere
//! would fail the same way.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use switchyard_llm_types::{ChatMessage, ContentPart, MessageContent, Role};

use super::request::Endpoint;
use crate::http::error_chain;
use crate::ProviderError;

/// The largest image downloaded (decoded bytes).
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// The longest one download may take, headers and body (capped by the call's timeout).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Images larger than this are base64-encoded on the blocking pool: encoding megabytes takes
/// milliseconds that would otherwise stall every task sharing the runtime thread.
const ENCODE_INLINE_LIMIT: usize = 256 * 1024;

/// Content types that say nothing about the kind of file, so the URL's extension decides.
const GENERIC_CONTENT_TYPES: &[&str] = &["application/octet-stream", "binary/octet-stream"];

/// Extensions accepted when the server does not say the file is an image (LiteLLM's list).
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "gif", "webp"];

/// The images downloaded for one request: URL → bare base64.
#[derive(Debug, Default)]
pub struct FetchedImages {
    by_url: HashMap<String, String>,
}

impl FetchedImages {
    /// No downloaded images (a request without remote image URLs).
    pub fn none() -> Self {
        Self::default()
    }

    /// The base64 of the image downloaded from `url`.
    pub fn get(&self, url: &str) -> Option<&str> {
        self.by_url.get(url).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_url.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_url.is_empty()
    }
}

impl FromIterator<(String, String)> for FetchedImages {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self {
            by_url: pairs.into_iter().collect(),
        }
    }
}

/// Whether an image URL is an `http://` or `https://` URL (schemes are case-insensitive).
pub fn is_remote(url: &str) -> bool {
    let starts = |prefix: &str| {
        url.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    starts("http://") || starts("https://")
}

/// Whether `role`'s images reach Ollama: every message's on `/api/chat`; on `/api/generate`
/// only those of the turns that go into the prompt's `### User:` blocks.
fn carries_images(role: Role, endpoint: Endpoint) -> bool {
    match endpoint {
        Endpoint::Chat => true,
        Endpoint::Generate => matches!(role, Role::User | Role::Tool | Role::Function),
    }
}

/// The distinct remote image URLs of `messages`, in order of appearance (no allocation when
/// there are none).
pub fn remote_urls(messages: &[ChatMessage], endpoint: Endpoint) -> Vec<&str> {
    let mut urls: Vec<&str> = Vec::new();
    for message in messages {
        if !carries_images(message.role, endpoint) {
            continue;
        }
        let Some(MessageContent::Parts(parts)) = &message.content else {
            continue;
        };
        for part in parts {
            if let ContentPart::ImageUrl { image_url, .. } = part {
                let url = image_url.url.as_str();
                if is_remote(url) && !urls.contains(&url) {
                    urls.push(url);
                }
            }
        }
    }
    urls
}

fn unusable(provider: &'static str, url: &str, why: &str) -> ProviderError {
    ProviderError::BadRequest {
        provider,
        message: format!("cannot use the image at {url}: {why}"),
        param: Some("messages".to_owned()),
    }
}

/// Whether the answer's content type (else the URL's file extension) says it is an image.
pub fn looks_like_image(content_type: Option<&str>, url: &reqwest::Url) -> Result<(), String> {
    let essence = content_type
        .map(|value| value.split(';').next().unwrap_or_default().trim())
        .filter(|essence| !essence.is_empty());
    match essence {
        Some(essence) if essence.len() > 6 && essence[..6].eq_ignore_ascii_case("image/") => Ok(()),
        Some(essence)
            if !GENERIC_CONTENT_TYPES
                .iter()
                .any(|generic| generic.eq_ignore_ascii_case(essence)) =>
        {
            Err(format!("the server says it is {essence:?}, not an image"))
        }
        _ => {
            let extension = url
                .path()
                .rsplit_once('.')
                .map(|(_, extension)| extension)
                .unwrap_or_default();
            if IMAGE_EXTENSIONS
                .iter()
                .any(|known| known.eq_ignore_ascii_case(extension))
            {
                Ok(())
            } else {
                Err(format!(
                    "the server does not say it is an image and the file name does not end in \
                     one of {}",
                    IMAGE_EXTENSIONS.join(", ")
                ))
            }
        }
    }
}

/// An image body being read, refused once it passes `limit` bytes.
#[derive(Debug)]
pub struct LimitedBody {
    bytes: Vec<u8>,
    limit: usize,
}

impl LimitedBody {
    /// Refuses a declared `Content-Length` over the limit before anything is read.
    pub fn new(declared_length: Option<u64>, limit: usize) -> Result<Self, String> {
        let declared = declared_length.unwrap_or(0);
        if declared > limit as u64 {
            return Err(too_large(limit));
        }
        // Trust the declared length only as far as the limit allows.
        let capacity = usize::try_from(declared).unwrap_or(0).min(limit);
        Ok(Self {
            bytes: Vec::with_capacity(capacity),
            limit,
        })
    }

    pub fn push(&mut self, piece: &[u8]) -> Result<(), String> {
        if self.bytes.len() + piece.len() > self.limit {
            return Err(too_large(self.limit));
        }
        self.bytes.extend_from_slice(piece);
        Ok(())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

fn too_large(limit: usize) -> String {
    format!("it is larger than {} MiB", limit / (1024 * 1024))
}

/// Downloads `url` and checks that it is a usable image: the raw bytes.
async fn download(client: &reqwest::Client, url: reqwest::Url) -> Result<Vec<u8>, String> {
    let mut response = client.get(url.clone()).send().await.map_err(|error| {
        format!(
            "the download failed ({})",
            error_chain(&error.without_url())
        )
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the server answered HTTP {}", status.as_u16()));
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    looks_like_image(content_type, response.url())?;
    let mut body = LimitedBody::new(response.content_length(), MAX_IMAGE_BYTES)?;
    while let Some(piece) = response.chunk().await.map_err(|error| {
        format!(
            "the download broke off ({})",
            error_chain(&error.without_url())
        )
    })? {
        body.push(&piece)?;
    }
    let bytes = body.into_bytes();
    if bytes.is_empty() {
        return Err("the server sent an empty body".to_owned());
    }
    Ok(bytes)
}

/// Standard base64, off the runtime threads for large images.
async fn encode(bytes: Vec<u8>) -> Result<String, String> {
    let engine = base64::engine::general_purpose::STANDARD;
    if bytes.len() <= ENCODE_INLINE_LIMIT {
        return Ok(engine.encode(bytes));
    }
    tokio::task::spawn_blocking(move || engine.encode(bytes))
        .await
        .map_err(|error| format!("encoding the image failed ({error})"))
}

/// Downloads one image: its URL and base64.
async fn fetch_one(
    provider: &'static str,
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<(String, String), ProviderError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|error| unusable(provider, url, &format!("it is not a valid URL ({error})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(unusable(
            provider,
            url,
            "only http and https URLs are fetched",
        ));
    }
    let bytes = match tokio::time::timeout(timeout, download(client, parsed)).await {
        Err(_) => {
            return Err(unusable(
                provider,
                url,
                &format!("the download took longer than {} s", timeout.as_secs_f64()),
            ))
        }
        Ok(result) => result.map_err(|why| unusable(provider, url, &why))?,
    };
    let base64 = encode(bytes)
        .await
        .map_err(|why| unusable(provider, url, &why))?;
    Ok((url.to_owned(), base64))
}

/// Downloads `urls` concurrently, each within `min(FETCH_TIMEOUT, call_timeout)`; the first
/// failure fails the whole request (the others are dropped, which cancels them).
pub async fn fetch_all(
    provider: &'static str,
    client: &reqwest::Client,
    urls: &[&str],
    call_timeout: Duration,
) -> Result<FetchedImages, ProviderError> {
    if urls.is_empty() {
        return Ok(FetchedImages::none());
    }
    let timeout = FETCH_TIMEOUT.min(call_timeout);
    let downloads = urls
        .iter()
        .map(|url| fetch_one(provider, client, url, timeout));
    Ok(futures::future::try_join_all(downloads)
        .await?
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[test]
    fn remote_urls_are_distinct_http_ones_of_image_carrying_turns() {
        let messages: Vec<ChatMessage> = serde_json::from_value(json!([
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://a/sys.png"}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://a/1.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "HTTP://a/2.png"}},
                {"type": "image_url", "image_url": {"url": "https://a/1.png"}}]},
            {"role": "user", "content": "https://a/not-an-image-part.png"}
        ]))
        .unwrap();
        assert_eq!(
            remote_urls(&messages, Endpoint::Chat),
            vec!["https://a/sys.png", "https://a/1.png", "HTTP://a/2.png"]
        );
        assert_eq!(
            remote_urls(&messages, Endpoint::Generate),
            vec!["https://a/1.png", "HTTP://a/2.png"]
        );
        assert!(remote_urls(&messages[2..], Endpoint::Chat).is_empty());
        assert!(!is_remote("ftp://a/b.png"));
        assert!(!is_remote("iVBORw0KGgo"));
        assert!(!is_remote("http:"));
    }

    #[test]
    fn images_are_known_by_content_type_else_extension() {
        let png = url("https://a/cat.PNG?size=2");
        let bare = url("https://a/cat");
        assert!(looks_like_image(Some("image/png"), &bare).is_ok());
        assert!(looks_like_image(Some("Image/WebP; charset=binary"), &bare).is_ok());
        assert!(looks_like_image(None, &png).is_ok());
        assert!(looks_like_image(Some("application/octet-stream"), &png).is_ok());
        let html = looks_like_image(Some("text/html; charset=utf-8"), &png).unwrap_err();
        assert!(html.contains("text/html"), "{html}");
        assert!(looks_like_image(Some("image/"), &bare).is_err());
        assert!(looks_like_image(None, &bare).is_err());
        assert!(looks_like_image(Some(""), &url("https://a/x.txt")).is_err());
    }

    #[test]
    fn bodies_past_the_limit_are_refused() {
        assert!(LimitedBody::new(Some(11), 10).is_err());
        assert!(LimitedBody::new(Some(u64::MAX), 10).is_err());
        let mut body = LimitedBody::new(None, 10).unwrap();
        body.push(b"12345").unwrap();
        body.push(b"67890").unwrap();
        assert!(body.push(b"1").is_err());
        assert_eq!(body.into_bytes(), b"1234567890");
        // A server that lies about the length is still stopped at the limit.
        let mut body = LimitedBody::new(Some(4), 10).unwrap();
        assert!(body.push(&[0; 11]).is_err());
    }

    #[tokio::test]
    async fn encoding_is_standard_base64_small_or_large() {
        assert_eq!(encode(b"GIF89a".to_vec()).await.unwrap(), "R0lGODlh");
        let large = vec![7u8; ENCODE_INLINE_LIMIT + 3];
        let encoded = encode(large.clone()).await.unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(decoded, large);
    }

    #[tokio::test]
    async fn bad_urls_fail_before_any_download() {
        let client = reqwest::Client::new();
        let timeout = Duration::from_secs(1);
        for bad in ["http://", "ftp://host/x.png"] {
            let error = fetch_one("Ollama", &client, bad, timeout)
                .await
                .unwrap_err();
            assert!(
                matches!(&error, ProviderError::BadRequest { message, .. } if message.contains(bad)),
                "{error:?}"
            );
        }
        let none = fetch_all("Ollama", &client, &[], timeout).await.unwrap();
        assert!(none.is_empty());
    }
}
