//! Rerank: the client's Cohere-shaped request ↔ Cohere v2 `POST /v2/rerank`, the same body
//! for OpenAI-compatible servers with a Cohere-style `/rerank` (vLLM, Together), and Jina AI's
//! `POST /v1/rerank` (`jina_ai/`).
//!
//! v2 ranks strings only, so object documents are flattened ([`RerankDocument::as_text`])
//! and `rank_fields` is not sent. v2 no longer returns documents; when the client asks for
//! them (`return_documents`), the gateway puts each result's document back from the request.

use serde_json::{json, Map, Value};
use switchyard_llm_types::{RerankDocument, RerankRequest, RerankResponse};

/// The `/v2/rerank` body.
pub fn to_rerank_request(request: &RerankRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), Value::String(request.model.clone()));
    body.insert("query".into(), Value::String(request.query.clone()));
    let documents: Vec<String> = request
        .documents
        .iter()
        .map(RerankDocument::as_text)
        .collect();
    body.insert("documents".into(), json!(documents));
    if let Some(top_n) = request.top_n {
        body.insert("top_n".into(), json!(top_n));
    }
    if let Some(max) = request.max_tokens_per_doc {
        body.insert("max_tokens_per_doc".into(), json!(max));
    }
    Value::Object(body)
}

/// The body for an OpenAI-compatible server's `/rerank`: the request as the client sent it
/// (those servers take v1's fields, objects and `return_documents` included).
pub fn to_compatible_rerank_request(request: &RerankRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), Value::String(request.model.clone()));
    body.insert("query".into(), Value::String(request.query.clone()));
    body.insert("documents".into(), json!(request.documents));
    let optional = [
        ("top_n", request.top_n.map(Value::from)),
        (
            "return_documents",
            request.return_documents.map(Value::from),
        ),
        ("rank_fields", request.rank_fields.clone().map(Value::from)),
        (
            "max_chunks_per_doc",
            request.max_chunks_per_doc.map(Value::from),
        ),
        (
            "max_tokens_per_doc",
            request.max_tokens_per_doc.map(Value::from),
        ),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            body.insert(name.into(), value);
        }
    }
    Value::Object(body)
}

/// Jina AI's rerank URL for a deployment's base URL: its scheme, host and port with the path
/// `/v1/rerank`, whatever path the base carries (as LiteLLM builds it, so `https://api.jina.ai`
/// and `https://api.jina.ai/v1` both work).
pub fn jina_rerank_url(base_url: &str) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(base_url)
        .map_err(|error| format!("invalid api_base {base_url:?}: {error}"))?;
    url.set_path("/v1/rerank");
    url.set_query(None);
    Ok(url)
}

/// The body of Jina AI's `/v1/rerank`: the fields it takes (`query`, `documents` as given,
/// strings or `{"text": ...}` objects, `top_n`, `return_documents`); Cohere-only fields
/// (`rank_fields`, `max_chunks_per_doc`, `max_tokens_per_doc`) are left out, as LiteLLM does.
pub fn to_jina_rerank_request(request: &RerankRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), Value::String(request.model.clone()));
    body.insert("query".into(), Value::String(request.query.clone()));
    body.insert("documents".into(), json!(request.documents));
    if let Some(top_n) = request.top_n {
        body.insert("top_n".into(), json!(top_n));
    }
    if let Some(wanted) = request.return_documents {
        body.insert("return_documents".into(), Value::Bool(wanted));
    }
    Value::Object(body)
}

/// Jina AI's answer (`model`, `usage.total_tokens`, `results`) as Cohere's: the usage moves
/// to `meta.billed_units` and `meta.tokens`, as LiteLLM reports it, and is what the call is
/// priced on (tokens × `input_cost_per_token`).
pub fn from_jina_rerank_response(
    body: &Value,
    request: &RerankRequest,
    fallback_id: &str,
) -> Result<RerankResponse, String> {
    let mut response = from_rerank_response(body, request, fallback_id)?;
    response.extra.remove("model");
    if let Some(usage) = response.extra.remove("usage") {
        response.meta = Some(json!({"billed_units": usage, "tokens": usage}));
    }
    Ok(response)
}

/// Reads a rerank answer (Cohere's, or an OpenAI-compatible server's, which may add a
/// `usage`), checks every index against the request, fills documents back when asked, and
/// reads what the call costs.
pub fn from_rerank_response(
    body: &Value,
    request: &RerankRequest,
    fallback_id: &str,
) -> Result<RerankResponse, String> {
    let mut response: RerankResponse = serde_json::from_value(body.clone())
        .map_err(|error| format!("unreadable rerank response: {error}"))?;
    if response.id.is_empty() {
        response.id = fallback_id.to_owned();
    }
    let wants_documents = request.return_documents.unwrap_or(false);
    for result in &mut response.results {
        let document = usize::try_from(result.index)
            .ok()
            .and_then(|index| request.documents.get(index))
            .ok_or_else(|| {
                format!(
                    "result index {} is outside the {} documents sent",
                    result.index,
                    request.documents.len()
                )
            })?;
        if wants_documents && result.document.is_none() {
            result.document = Some(document.as_result_document());
        } else if !wants_documents {
            result.document = None;
        }
    }
    let raw_usage = response.extra.get("usage").cloned();
    response.fill_usage(raw_usage.as_ref());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> RerankRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn out_of_range_indexes_are_rejected() {
        let request = request(json!({"model": "m", "query": "q", "documents": ["a"]}));
        let body = json!({"id": "x", "results": [{"index": 3, "relevance_score": 0.5}]});
        assert!(from_rerank_response(&body, &request, "f").is_err());
        assert!(from_rerank_response(&json!({"results": 1}), &request, "f").is_err());
    }

    #[test]
    fn jina_urls_keep_the_host_and_take_v1_rerank() {
        for (base, url) in [
            ("https://api.jina.ai/v1", "https://api.jina.ai/v1/rerank"),
            ("https://api.jina.ai", "https://api.jina.ai/v1/rerank"),
            (
                "http://127.0.0.1:9/proxy/v1?x=1",
                "http://127.0.0.1:9/v1/rerank",
            ),
        ] {
            assert_eq!(jina_rerank_url(base).unwrap().as_str(), url);
        }
        assert!(jina_rerank_url("not a url").is_err());
    }

    #[test]
    fn documents_come_back_only_when_asked() {
        let asked = request(
            json!({"model": "m", "query": "q", "documents": ["a", {"text": "b"}],
                                   "return_documents": true}),
        );
        let body = json!({"results": [{"index": 1, "relevance_score": 0.9}],
                          "meta": {"billed_units": {"search_units": 1}}});
        let response = from_rerank_response(&body, &asked, "rerank-f").unwrap();
        assert_eq!(response.id, "rerank-f");
        assert_eq!(response.results[0].document, Some(json!({"text": "b"})));
        let not_asked = request(json!({"model": "m", "query": "q", "documents": ["a", "b"]}));
        let with_docs = json!({"results": [{"index": 0, "relevance_score": 0.9,
                                            "document": {"text": "a"}}],
                               "usage": {"total_tokens": 12}});
        let response = from_rerank_response(&with_docs, &not_asked, "f").unwrap();
        assert_eq!(response.results[0].document, None);
        assert_eq!(response.usage.unwrap().prompt_tokens, 12);
    }
}
