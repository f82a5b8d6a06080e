//! Prompt token **counts**: exact for OpenAI-family models, an estimate for every other.
//!
//! OpenAI models are counted with their own BPE encoding (`o200k_base` for the GPT-4o, GPT-4.1,
//! GPT-5 and o-series families, `cl100k_base` for GPT-4, GPT-3.5 and the `text-embedding-3`
//! models), whose rank tables `tiktoken-rs` embeds. A table is parsed the first time a text is
//! counted with it (tens of milliseconds, then kept for the life of the process), so a gateway
//! that never counts, such as one without `enable_pre_call_checks`, never loads one. Chat
//! framing follows OpenAI's rule (see [`crate::estimate`]): 3 tokens per message, 1 per
//! `name`, 3 priming the reply. Other models (Anthropic, Gemini, ...) have tokenizers that are
//! not public or not offline, so they get the chars/4 estimate.

use serde_json::Value;
use switchyard_llm_types::ChatMessage;
use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
use tiktoken_rs::CoreBPE;

use crate::estimate;

/// An OpenAI BPE encoding this crate counts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GPT-4, GPT-3.5 and the `text-embedding-3` / `ada-002` embedding models.
    Cl100kBase,
    /// GPT-4o, GPT-4.1, GPT-4.5, GPT-5, o1, o3, o4 (and `gpt-oss`, whose harmony encoding
    /// only adds special tokens to it).
    O200kBase,
}

impl Encoding {
    /// The encoding of an OpenAI model name, with or without a provider prefix
    /// (`openai/gpt-4o`, `azure/gpt-35-turbo`); `None` for models that are not OpenAI's.
    pub fn for_model(model: &str) -> Option<Encoding> {
        let name = model.rsplit('/').next().unwrap_or(model);
        match get_tokenizer(name)? {
            Tokenizer::Cl100kBase => Some(Encoding::Cl100kBase),
            Tokenizer::O200kBase | Tokenizer::O200kHarmony => Some(Encoding::O200kBase),
            // Legacy completion models (davinci, ...) are retired; estimate them.
            _ => None,
        }
    }

    /// The encoding's tokenizer, parsed on first use and shared afterwards.
    fn bpe(self) -> &'static CoreBPE {
        match self {
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
            Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
        }
    }

    /// Parses the tokenizer now rather than on first use: blocking, from a few hundred
    /// milliseconds up to a second, so a server calls it before it takes requests.
    pub fn load(self) {
        self.bpe();
    }

    /// Tokens of `text` as ordinary text (special-token markers in user text are text).
    pub fn count(self, text: &str) -> u64 {
        self.bpe().encode_ordinary(text).len() as u64
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Cl100kBase => "cl100k_base",
            Encoding::O200kBase => "o200k_base",
        }
    }
}

/// How a model's tokens are counted: exactly with its encoding, or estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenCounter {
    /// chars/4 ([`estimate::estimate_text_tokens`]).
    #[default]
    Estimate,
    Exact(Encoding),
}

impl TokenCounter {
    /// The counter for a model name (see [`Encoding::for_model`]). Cheap: nothing is loaded
    /// until something is counted.
    pub fn for_model(model: &str) -> TokenCounter {
        Encoding::for_model(model).map_or(TokenCounter::Estimate, TokenCounter::Exact)
    }

    pub fn is_exact(self) -> bool {
        matches!(self, TokenCounter::Exact(_))
    }

    /// Tokens of one text.
    pub fn text(self, text: &str) -> u64 {
        match self {
            TokenCounter::Estimate => estimate::estimate_text_tokens(text),
            TokenCounter::Exact(encoding) => encoding.count(text),
        }
    }

    /// Prompt tokens of typed chat messages, framing included.
    pub fn messages(self, messages: &[ChatMessage]) -> u64 {
        estimate::messages_prompt_tokens_with(messages, &|text| self.text(text))
    }

    /// Prompt tokens of a chat request's `messages` JSON, framing included.
    pub fn chat_prompt(self, messages: &Value) -> u64 {
        estimate::chat_prompt_tokens_with(messages, &|text| self.text(text))
    }

    /// Tokens of an embeddings or completions `input` / `prompt` (string, strings, or token
    /// ids, which count one each).
    pub fn input(self, input: &Value) -> u64 {
        estimate::input_tokens_with(input, &|text| self.text(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The example conversation of OpenAI's cookbook "How to count tokens with tiktoken",
    /// which reports 129 prompt tokens for `gpt-4` / `gpt-3.5-turbo` and 124 for `gpt-4o`.
    fn cookbook_messages() -> Value {
        json!([
            {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
            {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
            {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
            {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
            {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
            {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."}
        ])
    }

    #[test]
    fn openai_models_map_to_their_encoding() {
        for (model, encoding) in [
            ("gpt-4o", Some(Encoding::O200kBase)),
            ("openai/gpt-4o-mini", Some(Encoding::O200kBase)),
            ("gpt-4.1-nano", Some(Encoding::O200kBase)),
            ("o3-mini", Some(Encoding::O200kBase)),
            ("gpt-5", Some(Encoding::O200kBase)),
            ("gpt-4", Some(Encoding::Cl100kBase)),
            ("azure/gpt-35-turbo", Some(Encoding::Cl100kBase)),
            ("text-embedding-3-small", Some(Encoding::Cl100kBase)),
            ("anthropic/claude-3-5-sonnet-20240620", None),
            ("gemini-1.5-pro", None),
            ("davinci", None),
            ("m", None),
        ] {
            assert_eq!(Encoding::for_model(model), encoding, "{model}");
        }
        assert_eq!(TokenCounter::for_model("claude-3"), TokenCounter::Estimate);
    }

    #[test]
    fn exact_counts_match_openai_published_counts() {
        // cl100k_base encodes this as [83, 1609, 5963, 374, 2294, 0].
        assert_eq!(Encoding::Cl100kBase.count("tiktoken is great!"), 6);
        assert_eq!(Encoding::Cl100kBase.count(""), 0);
        let messages = cookbook_messages();
        assert_eq!(TokenCounter::for_model("gpt-4").chat_prompt(&messages), 129);
        assert_eq!(
            TokenCounter::for_model("gpt-3.5-turbo").chat_prompt(&messages),
            129
        );
        assert_eq!(
            TokenCounter::for_model("gpt-4o").chat_prompt(&messages),
            124
        );
    }

    #[test]
    fn typed_messages_count_like_their_json() {
        let json = cookbook_messages();
        let typed: Vec<ChatMessage> = serde_json::from_value(json.clone()).unwrap();
        for counter in [
            TokenCounter::Estimate,
            TokenCounter::for_model("gpt-4"),
            TokenCounter::for_model("gpt-4o"),
        ] {
            assert_eq!(counter.messages(&typed), counter.chat_prompt(&json));
        }
    }

    #[test]
    fn inputs_count_texts_and_token_ids() {
        let exact = TokenCounter::for_model("text-embedding-3-small");
        assert_eq!(exact.input(&json!("tiktoken is great!")), 6);
        assert_eq!(
            exact.input(&json!(["tiktoken is great!", "tiktoken is great!"])),
            12
        );
        assert_eq!(exact.input(&json!([1, 2, 3])), 3);
        assert_eq!(TokenCounter::Estimate.input(&json!("abcdefgh")), 2);
    }
}
