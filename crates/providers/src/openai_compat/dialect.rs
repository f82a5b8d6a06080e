//! The OpenAI-compatible vendors as rows of one table: prefix, display name, default base URL
//! and the environment variables LiteLLM reads for them.

/// An OpenAI-compatible vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    OpenAi,
    /// `text-completion-openai/`: chat requests go to the legacy `/completions` endpoint.
    TextCompletionOpenAi,
    HostedVllm,
    TogetherAi,
    Groq,
    Mistral,
    DeepSeek,
    OpenRouter,
    FireworksAi,
    XAi,
    Perplexity,
    Cerebras,
    NvidiaNim,
    DeepInfra,
    LmStudio,
    /// `jina_ai/`: Jina AI's API; rerank has its own URL rule and body
    /// ([`crate::cohere::rerank::jina_rerank_url`]).
    JinaAi,
    /// `openai_like/`, `custom_openai/`, `litellm_proxy/`: any server, `api_base` required.
    Generic,
    /// `azure/`: Azure OpenAI deployments. Same bodies, but deployment URLs with
    /// `api-version` and an `api-key` header ([`crate::openai_compat::Layout::Azure`]).
    Azure,
    /// `azure_text/`: an Azure deployment whose chat requests go to `/completions`.
    AzureText,
}

struct Row {
    dialect: Dialect,
    prefixes: &'static [&'static str],
    name: &'static str,
    default_base: Option<&'static str>,
    base_env: &'static [&'static str],
    key_env: &'static [&'static str],
}

const TABLE: &[Row] = &[
    Row {
        dialect: Dialect::OpenAi,
        prefixes: &["openai"],
        name: "OpenAI",
        default_base: Some("https://api.openai.com/v1"),
        base_env: &["OPENAI_BASE_URL", "OPENAI_API_BASE"],
        key_env: &["OPENAI_API_KEY"],
    },
    Row {
        dialect: Dialect::TextCompletionOpenAi,
        prefixes: &["text-completion-openai"],
        name: "OpenAI",
        default_base: Some("https://api.openai.com/v1"),
        base_env: &["OPENAI_BASE_URL", "OPENAI_API_BASE"],
        key_env: &["OPENAI_API_KEY"],
    },
    Row {
        dialect: Dialect::HostedVllm,
        prefixes: &["hosted_vllm"],
        name: "Hosted_vllm",
        default_base: None,
        base_env: &["HOSTED_VLLM_API_BASE"],
        key_env: &["HOSTED_VLLM_API_KEY"],
    },
    Row {
        dialect: Dialect::TogetherAi,
        prefixes: &["together_ai"],
        name: "Together_ai",
        default_base: Some("https://api.together.xyz/v1"),
        base_env: &["TOGETHER_AI_API_BASE"],
        key_env: &[
            "TOGETHERAI_API_KEY",
            "TOGETHER_AI_API_KEY",
            "TOGETHER_API_KEY",
        ],
    },
    Row {
        dialect: Dialect::Groq,
        prefixes: &["groq"],
        name: "Groq",
        default_base: Some("https://api.groq.com/openai/v1"),
        base_env: &["GROQ_API_BASE"],
        key_env: &["GROQ_API_KEY"],
    },
    Row {
        dialect: Dialect::Mistral,
        prefixes: &["mistral"],
        name: "Mistral",
        default_base: Some("https://api.mistral.ai/v1"),
        base_env: &["MISTRAL_API_BASE"],
        key_env: &["MISTRAL_API_KEY"],
    },
    Row {
        dialect: Dialect::DeepSeek,
        prefixes: &["deepseek"],
        name: "Deepseek",
        default_base: Some("https://api.deepseek.com/v1"),
        base_env: &["DEEPSEEK_API_BASE"],
        key_env: &["DEEPSEEK_API_KEY"],
    },
    Row {
        dialect: Dialect::OpenRouter,
        prefixes: &["openrouter"],
        name: "Openrouter",
        default_base: Some("https://openrouter.ai/api/v1"),
        base_env: &["OPENROUTER_API_BASE"],
        key_env: &["OPENROUTER_API_KEY", "OR_API_KEY"],
    },
    Row {
        dialect: Dialect::FireworksAi,
        prefixes: &["fireworks_ai"],
        name: "Fireworks_ai",
        default_base: Some("https://api.fireworks.ai/inference/v1"),
        base_env: &["FIREWORKS_API_BASE", "FIREWORKS_AI_API_BASE"],
        key_env: &[
            "FIREWORKS_API_KEY",
            "FIREWORKS_AI_API_KEY",
            "FIREWORKSAI_API_KEY",
        ],
    },
    Row {
        dialect: Dialect::XAi,
        prefixes: &["xai"],
        name: "Xai",
        default_base: Some("https://api.x.ai/v1"),
        base_env: &["XAI_API_BASE"],
        key_env: &["XAI_API_KEY"],
    },
    Row {
        dialect: Dialect::Perplexity,
        prefixes: &["perplexity"],
        name: "Perplexity",
        default_base: Some("https://api.perplexity.ai"),
        base_env: &["PERPLEXITY_API_BASE"],
        key_env: &["PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"],
    },
    Row {
        dialect: Dialect::Cerebras,
        prefixes: &["cerebras"],
        name: "Cerebras",
        default_base: Some("https://api.cerebras.ai/v1"),
        base_env: &["CEREBRAS_API_BASE"],
        key_env: &["CEREBRAS_API_KEY"],
    },
    Row {
        dialect: Dialect::NvidiaNim,
        prefixes: &["nvidia_nim"],
        name: "Nvidia_nim",
        default_base: Some("https://integrate.api.nvidia.com/v1"),
        base_env: &["NVIDIA_NIM_API_BASE"],
        key_env: &["NVIDIA_NIM_API_KEY"],
    },
    Row {
        dialect: Dialect::DeepInfra,
        prefixes: &["deepinfra"],
        name: "Deepinfra",
        default_base: Some("https://api.deepinfra.com/v1/openai"),
        base_env: &["DEEPINFRA_API_BASE"],
        key_env: &["DEEPINFRA_API_KEY"],
    },
    Row {
        dialect: Dialect::LmStudio,
        prefixes: &["lm_studio"],
        name: "Lm_studio",
        default_base: Some("http://localhost:1234/v1"),
        base_env: &["LM_STUDIO_API_BASE"],
        key_env: &["LM_STUDIO_API_KEY"],
    },
    Row {
        dialect: Dialect::JinaAi,
        prefixes: &["jina_ai"],
        name: "Jina_ai",
        default_base: Some("https://api.jina.ai/v1"),
        base_env: &["JINA_AI_API_BASE"],
        key_env: &["JINA_AI_API_KEY", "JINA_AI_TOKEN"],
    },
    Row {
        dialect: Dialect::Generic,
        prefixes: &["openai_like", "custom_openai", "litellm_proxy"],
        name: "OpenAI",
        default_base: None,
        base_env: &[],
        key_env: &[],
    },
    // The Azure rows carry no prefix: `azure/` is its own family in the registry, because its
    // URLs and credentials are resolved differently (see `OpenAiCompatibleTarget::azure`).
    Row {
        dialect: Dialect::Azure,
        prefixes: &[],
        name: "Azure",
        default_base: None,
        base_env: &["AZURE_API_BASE"],
        key_env: &["AZURE_OPENAI_API_KEY", "AZURE_API_KEY"],
    },
    Row {
        dialect: Dialect::AzureText,
        prefixes: &[],
        name: "Azure",
        default_base: None,
        base_env: &["AZURE_API_BASE"],
        key_env: &["AZURE_OPENAI_API_KEY", "AZURE_API_KEY"],
    },
];

impl Dialect {
    pub fn from_prefix(prefix: &str) -> Option<Dialect> {
        TABLE
            .iter()
            .find(|row| row.prefixes.contains(&prefix))
            .map(|row| row.dialect)
    }

    fn row(self) -> &'static Row {
        // Every variant has a row; the table is checked by a test.
        TABLE
            .iter()
            .find(|row| row.dialect == self)
            .unwrap_or(&TABLE[0])
    }

    /// The provider name LiteLLM puts in error messages (`OpenAIException`, `GroqException`).
    pub fn display_name(self) -> &'static str {
        self.row().name
    }

    pub fn default_base_url(self) -> Option<&'static str> {
        self.row().default_base
    }

    pub fn base_url_env(self) -> &'static [&'static str] {
        self.row().base_env
    }

    pub fn api_key_env(self) -> &'static [&'static str] {
        self.row().key_env
    }

    /// Chat requests must be sent to `/completions` and translated back.
    pub fn forces_text_completion(self) -> bool {
        matches!(self, Dialect::TextCompletionOpenAi | Dialect::AzureText)
    }

    /// The base URL without a trailing slash (paths are appended to it).
    pub fn normalize_base(self, base: &str) -> String {
        base.trim_end_matches('/').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dialect_has_exactly_one_row() {
        let all = [
            Dialect::OpenAi,
            Dialect::TextCompletionOpenAi,
            Dialect::HostedVllm,
            Dialect::TogetherAi,
            Dialect::Groq,
            Dialect::Mistral,
            Dialect::DeepSeek,
            Dialect::OpenRouter,
            Dialect::FireworksAi,
            Dialect::XAi,
            Dialect::Perplexity,
            Dialect::Cerebras,
            Dialect::NvidiaNim,
            Dialect::DeepInfra,
            Dialect::LmStudio,
            Dialect::JinaAi,
            Dialect::Generic,
            Dialect::Azure,
            Dialect::AzureText,
        ];
        for dialect in all {
            assert_eq!(
                TABLE.iter().filter(|row| row.dialect == dialect).count(),
                1,
                "{dialect:?}"
            );
        }
        assert_eq!(TABLE.len(), all.len());
    }
}
