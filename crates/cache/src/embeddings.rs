//! Embeddings are cached per input item, so a batch with some cached items only sends the rest
//! upstream.
//!
//! Flow: [`embedding_item_keys`] → look the keys up ([`crate::ResponseCache::lookup_many`]) →
//! [`split_embedding_batch`] → send [`EmbeddingSplit::miss_request`] upstream (if any) →
//! [`EmbeddingSplit::merge`] rebuilds the full response in input order →
//! [`EmbeddingSplit::entries_to_store`] gives the new per-item entries.
//!
//! Each item's stored response is its OpenAI embedding object
//! (`{"object":"embedding","index":..,"embedding":..}`); the index is rewritten on merge.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::Value;
use switchyard_llm_types::embeddings::Embedding;
use switchyard_llm_types::{EmbeddingInput, EmbeddingRequest, EmbeddingResponse, Extra, Usage};

use crate::entry::CachedEntry;
use crate::error::CacheError;
use crate::key::CacheKey;

/// The input items of a request, one per output vector, as JSON (a string or a token list).
pub fn embedding_items(input: &EmbeddingInput) -> Vec<Value> {
    match input {
        EmbeddingInput::Text(text) => vec![Value::from(text.clone())],
        EmbeddingInput::Texts(items) => items.iter().map(|t| Value::from(t.clone())).collect(),
        EmbeddingInput::Tokens(tokens) => vec![Value::from(tokens.clone())],
        EmbeddingInput::TokenLists(lists) => lists.iter().map(|t| Value::from(t.clone())).collect(),
    }
}

/// One key per input item, in input order.
pub fn embedding_item_keys(group: &str, request: &EmbeddingRequest) -> Vec<CacheKey> {
    embedding_items(&request.input)
        .iter()
        .map(|item| CacheKey::for_embedding_item(group, request, item))
        .collect()
}

/// A batch split into cached items and items still to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingSplit {
    /// One key per input item, in input order.
    pub keys: Vec<CacheKey>,
    /// Cached vectors by input position.
    pub hits: BTreeMap<usize, Embedding>,
    /// Input positions to fetch upstream, ascending.
    pub misses: Vec<usize>,
}

/// Splits a batch given its item keys and the lookup result for each (same order). An entry
/// that does not parse as an embedding counts as a miss.
pub fn split_embedding_batch(
    keys: Vec<CacheKey>,
    lookups: Vec<Option<CachedEntry>>,
) -> EmbeddingSplit {
    let mut hits = BTreeMap::new();
    let mut misses = Vec::new();
    for position in 0..keys.len() {
        let cached = lookups
            .get(position)
            .and_then(Option::as_ref)
            .and_then(|entry| entry.parse::<Embedding>().ok());
        match cached {
            Some(embedding) => {
                hits.insert(position, embedding);
            }
            None => misses.push(position),
        }
    }
    EmbeddingSplit { keys, hits, misses }
}

impl EmbeddingSplit {
    /// Every item was cached: no upstream call is needed.
    pub fn all_hit(&self) -> bool {
        self.misses.is_empty()
    }

    /// The request to send upstream: the original with only the missing items (same input
    /// shape), or `None` when everything was cached.
    pub fn miss_request(&self, request: &EmbeddingRequest) -> Option<EmbeddingRequest> {
        if self.misses.is_empty() {
            return None;
        }
        if self.hits.is_empty() {
            return Some(request.clone());
        }
        let pick = |items: &[String]| -> Vec<String> {
            self.misses
                .iter()
                .filter_map(|&position| items.get(position).cloned())
                .collect()
        };
        let input = match &request.input {
            // A single-item input with a miss has no hits, handled above.
            EmbeddingInput::Text(_) | EmbeddingInput::Tokens(_) => request.input.clone(),
            EmbeddingInput::Texts(items) => EmbeddingInput::Texts(pick(items)),
            EmbeddingInput::TokenLists(lists) => EmbeddingInput::TokenLists(
                self.misses
                    .iter()
                    .filter_map(|&position| lists.get(position).cloned())
                    .collect(),
            ),
        };
        Some(EmbeddingRequest {
            input,
            ..request.clone()
        })
    }

    /// The full response in input order: cached vectors plus `upstream`'s (the answer to
    /// [`Self::miss_request`], `None` when everything hit). Usage is the upstream call's alone
    /// (cached items cost nothing); `model` is upstream's, or `model` when all hit.
    pub fn merge(
        &self,
        model: &str,
        upstream: Option<&EmbeddingResponse>,
    ) -> Result<EmbeddingResponse, CacheError> {
        let mut data: BTreeMap<usize, Embedding> = self.hits.clone();
        let mut extra = Extra::new();
        let (model, usage) = match upstream {
            None if self.misses.is_empty() => (model.to_owned(), Usage::default()),
            None => {
                return Err(CacheError::Merge(format!(
                    "{} items missed the cache but no upstream response was given",
                    self.misses.len()
                )))
            }
            Some(response) => {
                for (position, item) in self.upstream_positions(response)? {
                    data.insert(position, item.clone());
                }
                extra.clone_from(&response.extra);
                let model = if response.model.is_empty() {
                    model.to_owned()
                } else {
                    response.model.clone()
                };
                (model, response.usage.clone().unwrap_or_default())
            }
        };
        let data = data
            .into_iter()
            .map(|(position, mut item)| {
                item.index = u32::try_from(position).unwrap_or(u32::MAX);
                item
            })
            .collect();
        Ok(EmbeddingResponse {
            object: "list".to_owned(),
            data,
            model,
            usage: Some(usage),
            extra,
        })
    }

    /// The entries to store for the items fetched upstream: `(key, response JSON)`.
    pub fn entries_to_store(
        &self,
        upstream: &EmbeddingResponse,
    ) -> Result<Vec<(CacheKey, Bytes)>, CacheError> {
        let mut entries = Vec::with_capacity(self.misses.len());
        for (position, item) in self.upstream_positions(upstream)? {
            if let Some(key) = self.keys.get(position) {
                entries.push((key.clone(), Bytes::from(serde_json::to_vec(item)?)));
            }
        }
        Ok(entries)
    }

    /// Pairs each upstream vector with its original input position, via its `index` (into the
    /// miss request), checking the upstream answered every item exactly once.
    fn upstream_positions<'a>(
        &self,
        response: &'a EmbeddingResponse,
    ) -> Result<Vec<(usize, &'a Embedding)>, CacheError> {
        if response.data.len() != self.misses.len() {
            return Err(CacheError::Merge(format!(
                "upstream returned {} vectors for {} inputs",
                response.data.len(),
                self.misses.len()
            )));
        }
        let mut seen = vec![false; self.misses.len()];
        let mut pairs = Vec::with_capacity(response.data.len());
        for item in &response.data {
            let slot = usize::try_from(item.index).unwrap_or(usize::MAX);
            match (self.misses.get(slot), seen.get_mut(slot)) {
                (Some(&position), Some(flag)) if !*flag => {
                    *flag = true;
                    pairs.push((position, item));
                }
                _ => {
                    return Err(CacheError::Merge(format!(
                        "upstream vector index {} is out of range or repeated",
                        item.index
                    )))
                }
            }
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(input: Value) -> EmbeddingRequest {
        serde_json::from_value(json!({"model": "embed", "input": input})).unwrap()
    }

    fn cached(vector: Value) -> Option<CachedEntry> {
        let item = json!({"object": "embedding", "index": 0, "embedding": vector});
        Some(CachedEntry::new(Bytes::from(
            serde_json::to_vec(&item).unwrap(),
        )))
    }

    #[test]
    fn partial_batch_sends_only_misses_and_merges_in_input_order() {
        let request = request(json!(["a", "b", "c", "d"]));
        let keys = embedding_item_keys("g", &request);
        assert_eq!(keys.len(), 4);
        let split = split_embedding_batch(
            keys.clone(),
            vec![None, cached(json!([1.0])), None, cached(json!([3.0]))],
        );
        assert_eq!(split.misses, vec![0, 2]);
        assert!(!split.all_hit());
        let upstream_request = split.miss_request(&request).unwrap();
        assert_eq!(
            upstream_request.input,
            EmbeddingInput::Texts(vec!["a".into(), "c".into()])
        );

        // The upstream answers out of order; index says which is which.
        let upstream: EmbeddingResponse = serde_json::from_value(json!({
            "object": "list", "model": "text-embedding-3-small",
            "data": [{"object": "embedding", "index": 1, "embedding": [2.0]},
                     {"object": "embedding", "index": 0, "embedding": [0.0]}],
            "usage": {"prompt_tokens": 2, "total_tokens": 2}
        }))
        .unwrap();
        let merged = split.merge("embed", Some(&upstream)).unwrap();
        let vectors: Vec<(u32, Value)> = merged
            .data
            .iter()
            .map(|e| (e.index, e.embedding.clone()))
            .collect();
        assert_eq!(
            vectors,
            vec![
                (0, json!([0.0])),
                (1, json!([1.0])),
                (2, json!([2.0])),
                (3, json!([3.0]))
            ]
        );
        assert_eq!(merged.model, "text-embedding-3-small");
        assert_eq!(merged.usage.as_ref().unwrap().prompt_tokens, 2);

        let stored = split.entries_to_store(&upstream).unwrap();
        let stored_keys: Vec<&CacheKey> = stored.iter().map(|(key, _)| key).collect();
        assert_eq!(stored_keys, vec![&keys[2], &keys[0]]);
    }

    #[test]
    fn all_hit_needs_no_upstream_and_costs_nothing() {
        let request = request(json!("only"));
        let split = split_embedding_batch(
            embedding_item_keys("g", &request),
            vec![cached(json!("BASE64"))],
        );
        assert!(split.all_hit());
        assert!(split.miss_request(&request).is_none());
        let merged = split.merge("embed", None).unwrap();
        assert_eq!(merged.data.len(), 1);
        assert_eq!(merged.data[0].embedding, json!("BASE64"));
        assert_eq!(merged.model, "embed");
        assert_eq!(merged.usage, Some(Usage::default()));
    }

    #[test]
    fn token_inputs_split_too_and_single_miss_keeps_the_shape() {
        let tokens = request(json!([[1, 2], [3]]));
        let split = split_embedding_batch(
            embedding_item_keys("g", &tokens),
            vec![cached(json!([9.0])), None],
        );
        assert_eq!(
            split.miss_request(&tokens).unwrap().input,
            EmbeddingInput::TokenLists(vec![vec![3]])
        );
        let single = request(json!([5, 6, 7]));
        let split = split_embedding_batch(embedding_item_keys("g", &single), vec![None]);
        assert_eq!(split.miss_request(&single).unwrap(), single);
    }

    #[test]
    fn mismatched_upstream_answers_are_errors_not_wrong_vectors() {
        let request = request(json!(["a", "b"]));
        let split = split_embedding_batch(embedding_item_keys("g", &request), vec![None, None]);
        let short: EmbeddingResponse = serde_json::from_value(json!({
            "data": [{"index": 0, "embedding": [1.0]}]}))
        .unwrap();
        assert!(split.merge("m", Some(&short)).is_err());
        assert!(split.entries_to_store(&short).is_err());
        let repeated: EmbeddingResponse = serde_json::from_value(json!({
            "data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]}))
        .unwrap();
        assert!(split.merge("m", Some(&repeated)).is_err());
        assert!(split.merge("m", None).is_err());
    }

    #[test]
    fn a_corrupt_entry_is_a_miss() {
        let request = request(json!(["a"]));
        let split = split_embedding_batch(
            embedding_item_keys("g", &request),
            vec![Some(CachedEntry::new(Bytes::from_static(b"[1,2]")))],
        );
        assert_eq!(split.misses, vec![0]);
    }
}
