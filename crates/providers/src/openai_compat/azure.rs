//! Azure OpenAI (`azure/`, `azure_text/`): the OpenAI bodies, sent to deployment URLs.
//!
//! - URL: `{api_base}/openai/deployments/{deployment}/{operation}?api-version={api_version}`.
//!   The base may be given with or without a trailing `/` or `/openai`; query parameters it
//!   carries are kept (an `api-version` among them is replaced by the resolved one).
//! - Credentials: `api-key: <key>`, or an Entra ID token as `Authorization: Bearer <token>`
//!   when no key is configured. The Entra client-credential flow (`tenant_id`, `client_id`,
//!   `client_secret`) is not implemented.
//! - Streams: the opening chunk that only carries `prompt_filter_results` is dropped.
//!   `stream_options` is only sent to api-versions that take it ([`accepts_stream_options`]);
//!   older ones answer 400 `Unknown parameter: 'stream_options'`.
//! - Body: unchanged, `model` included. Azure routes by the deployment in the URL and ignores
//!   the field; keeping it costs nothing and keeps the body byte-identical to the OpenAI path.

use reqwest::Url;

/// The `api-version` LiteLLM sends when neither the deployment nor the environment sets one.
pub const DEFAULT_API_VERSION: &str = "2025-02-01-preview";

/// The first dated api-version whose chat and completion requests take `stream_options`
/// (`include_usage`): the `2024-08-01-preview` inference spec is the first to define it;
/// `2024-07-01-preview` and the GA versions up to `2024-06-01` do not, and the next GA
/// version, `2024-10-21`, does.
const FIRST_STREAM_OPTIONS_VERSION: (u16, u8, u8) = (2024, 8, 1);

/// Whether a deployment on `api_version` may be sent `stream_options`.
///
/// Dated versions (`YYYY-MM-DD`, with or without `-preview`) take it from
/// [`FIRST_STREAM_OPTIONS_VERSION`] on. Any other spelling (`v1`, `preview`, `latest` of
/// the v1 API) is newer than every dated version and takes it too.
pub fn accepts_stream_options(api_version: &str) -> bool {
    dated_version(api_version).is_none_or(|date| date >= FIRST_STREAM_OPTIONS_VERSION)
}

/// `(year, month, day)` of a `YYYY-MM-DD` or `YYYY-MM-DD-<suffix>` api-version.
fn dated_version(api_version: &str) -> Option<(u16, u8, u8)> {
    let version = api_version.trim();
    let date = version.get(..10)?;
    let rest = &version[10..];
    if !(rest.is_empty() || rest.starts_with('-')) {
        return None;
    }
    let mut parts = date.split('-');
    let mut number = |digits: usize| {
        parts
            .next()
            .filter(|part| part.len() == digits && part.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|part| part.parse::<u16>().ok())
    };
    let year = number(4)?;
    let month = u8::try_from(number(2)?).ok()?;
    let day = u8::try_from(number(2)?).ok()?;
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some((year, month, day))
}

/// The deployment URL of `operation` (`chat/completions`, `completions`, `embeddings`).
pub fn deployment_url(
    api_base: &str,
    deployment: &str,
    operation: &str,
    api_version: &str,
) -> Result<Url, String> {
    let invalid =
        |reason: &dyn std::fmt::Display| format!("invalid api_base {api_base:?}: {reason}");
    let mut url = Url::parse(api_base.trim()).map_err(|error| invalid(&error))?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "api-version")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/openai").unwrap_or(path).to_owned();
    url.set_path(&path);
    url.path_segments_mut()
        .map_err(|()| invalid(&"not a base URL"))?
        .pop_if_empty()
        .extend(["openai", "deployments", deployment])
        .extend(operation.split('/'));
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in &kept {
            query.append_pair(name, value);
        }
        query.append_pair("api-version", api_version);
    }
    Ok(url)
}

/// Whether a stream chunk is Azure's opening `prompt_filter_results` chunk: no choices and no
/// usage, so it carries nothing an OpenAI client reads. Other chunks are not parsed.
pub fn is_prompt_filter_only(chunk: &[u8]) -> bool {
    if memchr::memmem::find(chunk, b"\"prompt_filter_results\"").is_none() {
        return false;
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(chunk) else {
        return false;
    };
    value["choices"].as_array().is_some_and(Vec::is_empty) && value["usage"].is_null()
}

/// The base as reported (`x-litellm-model-api-base`): without trailing `/`.
pub fn display_base(api_base: &str) -> String {
    api_base.trim().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str, operation: &str) -> String {
        deployment_url(base, "gpt-4o-eu", operation, "2024-10-21")
            .unwrap()
            .to_string()
    }

    #[test]
    fn deployment_urls_accept_the_usual_base_spellings() {
        let expected = "https://eu.openai.azure.com/openai/deployments/gpt-4o-eu/chat/completions?api-version=2024-10-21";
        for base in [
            "https://eu.openai.azure.com",
            "https://eu.openai.azure.com/",
            "https://eu.openai.azure.com//",
            "https://eu.openai.azure.com/openai",
            "https://eu.openai.azure.com/openai/",
            " https://eu.openai.azure.com/ ",
        ] {
            assert_eq!(url(base, "chat/completions"), expected, "{base}");
        }
        assert_eq!(
            url("https://eu.openai.azure.com/", "completions"),
            "https://eu.openai.azure.com/openai/deployments/gpt-4o-eu/completions?api-version=2024-10-21"
        );
        assert_eq!(
            url("https://eu.openai.azure.com/", "embeddings"),
            "https://eu.openai.azure.com/openai/deployments/gpt-4o-eu/embeddings?api-version=2024-10-21"
        );
    }

    #[test]
    fn a_path_prefix_and_existing_query_are_kept() {
        assert_eq!(
            url("http://127.0.0.1:8080/gateway/openai/", "chat/completions"),
            "http://127.0.0.1:8080/gateway/openai/deployments/gpt-4o-eu/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            url(
                "https://apim.example.com/?subscription=abc&api-version=2023-05-15",
                "chat/completions"
            ),
            "https://apim.example.com/openai/deployments/gpt-4o-eu/chat/completions?subscription=abc&api-version=2024-10-21"
        );
    }

    #[test]
    fn only_the_opening_prompt_filter_chunk_is_recognised() {
        assert!(is_prompt_filter_only(
            br#"{"id":"","choices":[],"created":0,"model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#
        ));
        // The usage chunk of `include_usage` has no choices either, and must be kept.
        assert!(!is_prompt_filter_only(
            br#"{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"prompt_filter_results":[]}"#
        ));
        assert!(!is_prompt_filter_only(
            br#"{"id":"c","choices":[{"index":0,"delta":{"content":"x"}}],"prompt_filter_results":[]}"#
        ));
        assert!(!is_prompt_filter_only(br#"{"id":"c","choices":[]}"#));
    }

    #[test]
    fn stream_options_start_with_the_2024_08_01_preview_spec() {
        for version in [
            "2024-08-01-preview",
            "2024-09-01-preview",
            "2024-10-21",
            "2025-02-01-preview",
            " 2025-04-01-preview ",
            "v1",
            "preview",
            "latest",
        ] {
            assert!(accepts_stream_options(version), "{version}");
        }
        for version in [
            "2024-07-01-preview",
            "2024-06-01",
            "2024-05-01-preview",
            "2024-02-01",
            "2023-12-01-preview",
            "2023-05-15",
        ] {
            assert!(!accepts_stream_options(version), "{version}");
        }
    }

    #[test]
    fn only_well_formed_dates_are_read_as_dated_versions() {
        assert_eq!(dated_version("2024-10-21"), Some((2024, 10, 21)));
        assert_eq!(dated_version("2023-05-15-preview"), Some((2023, 5, 15)));
        for not_dated in [
            "2024-1-21",
            "2024-13-01",
            "2024-10-00",
            "2024-10-21x",
            "v1",
            "",
            "2024-10-2",
        ] {
            assert_eq!(dated_version(not_dated), None, "{not_dated}");
        }
    }

    #[test]
    fn deployment_names_and_versions_are_escaped() {
        let url = deployment_url("https://h", "my dep/x", "chat/completions", "a b&c").unwrap();
        assert_eq!(
            url.as_str(),
            "https://h/openai/deployments/my%20dep%2Fx/chat/completions?api-version=a+b%26c"
        );
        assert!(deployment_url("not a url", "d", "embeddings", "v")
            .unwrap_err()
            .contains("invalid api_base"));
    }
}
