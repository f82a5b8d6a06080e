//! Remote images for providers that take images only inline: an `http(s)://` image URL in a
//! request is downloaded by the gateway and sent as base64, as LiteLLM does (Ollama always;
//! Bedrock Converse, which takes image bytes only; Gemini AI Studio, which cannot read
//! arbitrary web URLs).
//!
//! The adapter collects a request's remote URLs ([`remote_urls`]: nothing to do, and nothing
//! allocated, for the usual request without any), downloads them concurrently
//! ([`fetch_all`]) and hands the result ([`FetchedImages`]) to its synchronous translation,
//! which looks each URL up.
//!
//! Every download is bounded: [`FETCH_TIMEOUT`] for the whole transfer (at most the call's own
//! timeout), [`MAX_IMAGE_BYTES`] read (a larger `Content-Length` is refused before reading,
//! and the body is read piece by piece and abandoned past the limit), http and https only. An
//! image that cannot be used (bad URL, unreachable host, non-2xx answer, not an image, too
//! large, too slow) is the client's problem to fix, so it is a 400 naming the URL, like
//! LiteLLM's `ImageFetchError` (a `BadRequestError`): retrying the same request elsewhere
//! would fail the same way.

use std::time::Duration;

use base64::Engine as _;
use switchyard_llm_types::chat::ImageUrl;
use switchyard_llm_types::{ChatMessage, ContentPart, MessageContent, Role};

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

/// Extensions accepted when the server does not say the file is an image (LiteLLM's list),
/// with the media type they stand for.
const IMAGE_EXTENSIONS: &[(&str, &str)] = &[
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
];

/// One downloaded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedImage {
    /// Lowercase media type (`image/png`): the server's, else the one of the URL's extension.
    pub media_type: String,
    /// Standard base64 of the bytes.
    pub base64: String,
}

/// The images downloaded for one request, by URL. A request holds a handful at most, so a
/// list searched in order beats hashing (and an empty one allocates nothing).
#[derive(Debug, Default)]
pub struct FetchedImages {
    by_url: Vec<(String, FetchedImage)>,
}

/// The images of a request that has no remote ones, for translations that borrow from them.
pub static NO_IMAGES: FetchedImages = FetchedImages { by_url: Vec::new() };

impl FetchedImages {
    /// No downloaded images (a request without remote image URLs).
    pub fn none() -> Self {
        Self::default()
    }

    /// The image downloaded from `url`.
    pub fn get(&self, url: &str) -> Option<&FetchedImage> {
        self.by_url
            .iter()
            .find(|(fetched, _)| fetched == url)
            .map(|(_, image)| image)
    }

    pub fn len(&self) -> usize {
        self.by_url.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_url.is_empty()
    }
}

/// Images "downloaded" for translation tests: `(url, media type, base64)`.
#[cfg(test)]
pub(crate) fn fetched_for_tests(images: &[(&str, &str, &str)]) -> FetchedImages {
    images
        .iter()
        .map(|(url, media_type, base64)| {
            let image = FetchedImage {
                media_type: (*media_type).to_owned(),
                base64: (*base64).to_owned(),
            };
            ((*url).to_owned(), image)
        })
        .collect()
}

impl FromIterator<(String, FetchedImage)> for FetchedImages {
    fn from_iter<I: IntoIterator<Item = (String, FetchedImage)>>(pairs: I) -> Self {
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

/// The distinct image URLs of `messages` that `wanted` picks (given the message's role and
/// the image), in order of appearance (no allocation when there are none).
pub fn remote_urls(
    messages: &[ChatMessage],
    wanted: impl Fn(Role, &ImageUrl) -> bool,
) -> Vec<&str> {
    let mut urls: Vec<&str> = Vec::new();
    for message in messages {
        let Some(MessageContent::Parts(parts)) = &message.content else {
            continue;
        };
        for part in parts {
            if let ContentPart::ImageUrl { image_url, .. } = part {
                let url = image_url.url.as_str();
                if !urls.contains(&url) && wanted(message.role, image_url) {
                    urls.push(url);
                }
            }
        }
    }
    urls
}

/// Collects `messages`' remote image URLs that `wanted` picks and downloads them (see
/// [`remote_urls`] and [`fetch_all`]); nothing is allocated when there are none.
pub async fn fetch_remote_images(
    provider: &'static str,
    client: &reqwest::Client,
    messages: &[ChatMessage],
    wanted: impl Fn(Role, &ImageUrl) -> bool,
    call_timeout: Duration,
) -> Result<FetchedImages, ProviderError> {
    let urls = remote_urls(messages, wanted);
    fetch_all(provider, client, &urls, call_timeout).await
}

fn unusable(provider: &'static str, url: &str, why: &str) -> ProviderError {
    ProviderError::BadRequest {
        provider,
        message: format!("cannot use the image at {url}: {why}"),
        param: Some("messages".to_owned()),
    }
}

/// Whether the answer's content type (else the URL's file extension) says it is an image:
/// its lowercase media type.
pub fn looks_like_image(content_type: Option<&str>, url: &reqwest::Url) -> Result<String, String> {
    let essence = content_type
        .map(|value| value.split(';').next().unwrap_or_default().trim())
        .filter(|essence| !essence.is_empty());
    match essence {
        Some(essence) if essence.len() > 6 && essence[..6].eq_ignore_ascii_case("image/") => {
            Ok(essence.to_ascii_lowercase())
        }
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
            IMAGE_EXTENSIONS
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(extension))
                .map(|(_, media_type)| (*media_type).to_owned())
                .ok_or_else(|| {
                    let known: Vec<&str> =
                        IMAGE_EXTENSIONS.iter().map(|(known, _)| *known).collect();
                    format!(
                        "the server does not say it is an image and the file name does not end \
                         in one of {}",
                        known.join(", ")
                    )
                })
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

/// Downloads `url` and checks that it is a usable image: its media type and raw bytes.
async fn download(
    client: &reqwest::Client,
    url: reqwest::Url,
) -> Result<(String, Vec<u8>), String> {
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
    let media_type = looks_like_image(content_type, response.url())?;
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
    Ok((media_type, bytes))
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

/// Downloads one image: its URL, media type and base64.
async fn fetch_one(
    provider: &'static str,
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<(String, FetchedImage), ProviderError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|error| unusable(provider, url, &format!("it is not a valid URL ({error})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(unusable(
            provider,
            url,
            "only http and https URLs are fetched",
        ));
    }
    let (media_type, bytes) = match tokio::time::timeout(timeout, download(client, parsed)).await {
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
    Ok((url.to_owned(), FetchedImage { media_type, base64 }))
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
    fn remote_urls_are_distinct_picked_ones_in_order() {
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
            remote_urls(&messages, |_, image| is_remote(&image.url)),
            vec!["https://a/sys.png", "https://a/1.png", "HTTP://a/2.png"]
        );
        assert_eq!(
            remote_urls(&messages, |role, image| role == Role::User
                && is_remote(&image.url)),
            vec!["https://a/1.png", "HTTP://a/2.png"]
        );
        assert!(remote_urls(&messages[2..], |_, image| is_remote(&image.url)).is_empty());
        assert!(!is_remote("ftp://a/b.png"));
        assert!(!is_remote("iVBORw0KGgo"));
        assert!(!is_remote("http:"));
    }

    #[test]
    fn fetched_images_are_found_by_exact_url() {
        let fetched = fetched_for_tests(&[
            ("https://a/1.png", "image/png", "AAAA"),
            ("https://a/2", "image/webp", "BBBB"),
        ]);
        assert_eq!(fetched.len(), 2);
        let second = fetched.get("https://a/2").unwrap();
        assert_eq!(
            (second.media_type.as_str(), second.base64.as_str()),
            ("image/webp", "BBBB")
        );
        assert_eq!(
            fetched.get("https://a/1.png").unwrap().media_type,
            "image/png"
        );
        assert!(fetched.get("https://a/3.png").is_none());
        assert!(NO_IMAGES.is_empty() && FetchedImages::none().get("https://a/1.png").is_none());
    }

    #[test]
    fn images_are_known_by_content_type_else_extension() {
        let png = url("https://a/cat.PNG?size=2");
        let bare = url("https://a/cat");
        assert_eq!(
            looks_like_image(Some("image/png"), &bare).unwrap(),
            "image/png"
        );
        assert_eq!(
            looks_like_image(Some("Image/WebP; charset=binary"), &bare).unwrap(),
            "image/webp"
        );
        assert_eq!(looks_like_image(None, &png).unwrap(), "image/png");
        assert_eq!(
            looks_like_image(Some("application/octet-stream"), &url("https://a/x.JPG")).unwrap(),
            "image/jpeg"
        );
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
