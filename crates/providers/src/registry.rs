//! The one list of provider prefixes a LiteLLM `model` string may carry.
//!
//! Parsing a model string, validating a config and the provider conformance tests all read
//! this table, so adding a provider is one row here plus its adapter.

use crate::openai_compat::Dialect;

/// How a deployment's calls are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderFamily {
    /// An OpenAI-compatible HTTP API, with the vendor's defaults.
    OpenAiCompatible(Dialect),
    /// The Anthropic Messages API (`anthropic/`).
    Anthropic,
    /// Azure OpenAI deployments (`azure/`, and `azure_text/` whose chat goes to `/completions`):
    /// OpenAI bodies on deployment URLs ([`Dialect::Azure`] or [`Dialect::AzureText`]).
    Azure(Dialect),
    /// Google Gemini on Google AI Studio (`gemini/`).
    Gemini,
    /// Google Gemini on Vertex AI (`vertex_ai/`; `vertex_ai_beta/` uses the v1beta1 API).
    VertexAi { beta: bool },
    /// Amazon Bedrock (`bedrock/`): Converse for chat, InvokeModel for embeddings.
    Bedrock,
    /// Ollama's native API: `/api/chat` for `ollama_chat/` (`chat: true`), `/api/generate`
    /// for `ollama/`; `/api/embed` for both.
    Ollama { chat: bool },
    /// Cohere's v2 API (`cohere/`, `cohere_chat/`): chat, embed, rerank.
    Cohere,
    /// A provider LiteLLM knows that this build does not implement yet: the config loads, the
    /// deployment is reported at start-up, and calls answer a clear error.
    NotImplemented,
}

/// A parsed `litellm_params.model`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    /// The provider prefix as written (`openai`, `groq`, ...).
    pub provider: String,
    pub family: ProviderFamily,
    /// The model name the upstream expects (may contain `*` for wildcard deployments).
    pub upstream_model: String,
}

/// Prefixes LiteLLM accepts whose adapters arrive with later work.
const KNOWN_NOT_IMPLEMENTED: &[&str] = &[
    "azure_ai",
    "sagemaker",
    "sagemaker_chat",
    "huggingface",
    "replicate",
    "watsonx",
    "watsonx_text",
    "databricks",
    "ai21",
    "ai21_chat",
    "voyage",
    "vllm",
    "predibase",
    "cloudflare",
    "clarifai",
    "nlp_cloud",
    "aleph_alpha",
    "petals",
    "palm",
    "baseten",
    "triton",
    "friendliai",
    "github",
    "codestral",
    "text-completion-codestral",
    "dashscope",
    "moonshot",
    "volcengine",
    "sambanova",
    "snowflake",
    "oci",
    "infinity",
    "assemblyai",
    "elevenlabs",
];

/// Parses `litellm_params.model` (with `custom_llm_provider` when given).
///
/// An unprefixed name is resolved the way LiteLLM's cost map would for the common cases
/// (`gpt-*`, `o1*`, embeddings → OpenAI; `claude-*` → Anthropic; `gemini-*` → Vertex AI).
pub fn parse_model(model: &str, custom_llm_provider: Option<&str>) -> Result<ProviderSpec, String> {
    let (provider, upstream_model) = match custom_llm_provider {
        Some(provider) => (provider.to_owned(), model.to_owned()),
        None => match model.split_once('/') {
            Some((prefix, rest)) if is_known(prefix) => (prefix.to_owned(), rest.to_owned()),
            Some((prefix, _)) => {
                return Err(format!(
                    "unknown provider prefix {prefix:?} in {model:?}; expected one of openai/, \
                     anthropic/, azure/, gemini/, vertex_ai/, bedrock/, groq/, together_ai/, \
                     mistral/, hosted_vllm/, ollama_chat/, ... (or set custom_llm_provider)"
                ))
            }
            None => (infer_provider(model)?.to_owned(), model.to_owned()),
        },
    };
    let family = family_of(&provider)
        .ok_or_else(|| format!("unknown provider {provider:?} for model {model:?}"))?;
    if upstream_model.is_empty() {
        return Err(format!(
            "model {model:?} names no upstream model after the provider prefix"
        ));
    }
    Ok(ProviderSpec {
        provider,
        family,
        upstream_model,
    })
}

fn is_known(prefix: &str) -> bool {
    family_of(prefix).is_some()
}

fn family_of(provider: &str) -> Option<ProviderFamily> {
    if let Some(dialect) = Dialect::from_prefix(provider) {
        return Some(ProviderFamily::OpenAiCompatible(dialect));
    }
    match provider {
        "anthropic" => return Some(ProviderFamily::Anthropic),
        "azure" => return Some(ProviderFamily::Azure(Dialect::Azure)),
        "azure_text" => return Some(ProviderFamily::Azure(Dialect::AzureText)),
        "gemini" => return Some(ProviderFamily::Gemini),
        "bedrock" => return Some(ProviderFamily::Bedrock),
        "vertex_ai" => return Some(ProviderFamily::VertexAi { beta: false }),
        "vertex_ai_beta" => return Some(ProviderFamily::VertexAi { beta: true }),
        "ollama" => return Some(ProviderFamily::Ollama { chat: false }),
        "ollama_chat" => return Some(ProviderFamily::Ollama { chat: true }),
        "cohere" | "cohere_chat" => return Some(ProviderFamily::Cohere),
        _ => {}
    }
    KNOWN_NOT_IMPLEMENTED
        .contains(&provider)
        .then_some(ProviderFamily::NotImplemented)
}

fn infer_provider(model: &str) -> Result<&'static str, String> {
    let openai_prefixes = [
        "gpt-",
        "chatgpt-",
        "o1",
        "o3",
        "o4",
        "text-embedding-",
        "davinci",
        "babbage",
        "text-moderation",
        "omni-moderation",
        "dall-e",
        "whisper",
        "tts-",
    ];
    if openai_prefixes
        .iter()
        .any(|prefix| model.starts_with(prefix))
    {
        Ok("openai")
    } else if model.starts_with("claude-") {
        Ok("anthropic")
    } else if model.starts_with("gemini-") {
        Ok("vertex_ai")
    } else if model == "*" {
        // A catch-all wildcard with no provider routes to OpenAI, as in LiteLLM.
        Ok("openai")
    } else {
        Err(format!(
            "cannot tell the provider of model {model:?}: prefix it with the provider \
             (e.g. openai/{model}) or set custom_llm_provider"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_split_once_and_keep_the_rest() {
        let spec = parse_model("openrouter/meta-llama/llama-3-70b", None).unwrap();
        assert_eq!(spec.provider, "openrouter");
        assert_eq!(spec.upstream_model, "meta-llama/llama-3-70b");
        assert!(matches!(
            spec.family,
            ProviderFamily::OpenAiCompatible(Dialect::OpenRouter)
        ));
    }

    #[test]
    fn unprefixed_names_are_inferred_and_unknown_prefixes_rejected() {
        assert_eq!(parse_model("gpt-4o", None).unwrap().provider, "openai");
        assert_eq!(
            parse_model("claude-3-5-sonnet", None).unwrap().family,
            ProviderFamily::Anthropic
        );
        let spec = parse_model("anthropic/claude-sonnet-4-20250514", None).unwrap();
        assert_eq!(spec.family, ProviderFamily::Anthropic);
        assert_eq!(spec.upstream_model, "claude-sonnet-4-20250514");
        assert_eq!(
            parse_model("gemini/gemini-2.0-flash", None).unwrap().family,
            ProviderFamily::Gemini
        );
        assert_eq!(
            parse_model("gemini-1.5-pro", None).unwrap().family,
            ProviderFamily::VertexAi { beta: false }
        );
        let error = parse_model("frobnicate/x", None).unwrap_err();
        assert!(
            error.contains("unknown provider prefix \"frobnicate\""),
            "{error}"
        );
        assert!(parse_model("my-local-model", None).is_err());
    }

    #[test]
    fn azure_is_its_own_family() {
        let spec = parse_model("azure/gpt-4o-eu", None).unwrap();
        assert_eq!(spec.family, ProviderFamily::Azure(Dialect::Azure));
        assert_eq!(spec.upstream_model, "gpt-4o-eu");
        assert_eq!(
            parse_model("azure_text/gpt-35-instruct", None)
                .unwrap()
                .family,
            ProviderFamily::Azure(Dialect::AzureText)
        );
        assert_eq!(
            parse_model("my-deployment", Some("azure")).unwrap().family,
            ProviderFamily::Azure(Dialect::Azure)
        );
        assert_eq!(
            parse_model("azure_ai/mistral-large", None).unwrap().family,
            ProviderFamily::NotImplemented
        );
    }

    #[test]
    fn custom_llm_provider_keeps_the_whole_name() {
        let spec = parse_model("org/model", Some("openai")).unwrap();
        assert_eq!(spec.upstream_model, "org/model");
    }
}
