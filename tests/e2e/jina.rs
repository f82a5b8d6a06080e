//! Jina AI rerank (`jina_ai/` deployments) through the real gateway's `/v1/rerank`, against a
//! scripted mock of Jina's `POST /v1/rerank` that refuses another path, a missing or wrong
//! bearer key and a body with fields Jina does not take, as a strict upstream would.

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_tests::scripted::{ScriptedAnswer, ScriptedRequest, ScriptedUpstream};
use switchyard_tests::{Gateway, MASTER_KEY};

use crate::common::{header, send_json};

const API_KEY: &str = "jina-e2e-key";
const MODEL: &str = "jina-reranker-v2-base-multilingual";

fn jina_error(status: u16, detail: &str) -> ScriptedAnswer {
    (
        status,
        "application/json",
        json!({"detail": detail}).to_string(),
    )
}

/// Why a body is not one Jina's rerank takes, if it is not.
fn shape_error(body: &Value, documents: &[Value]) -> Option<String> {
    let fields = body.as_object()?;
    if let Some(field) = fields.keys().find(|field| {
        !matches!(
            field.as_str(),
            "model" | "query" | "documents" | "top_n" | "return_documents"
        )
    }) {
        return Some(format!("unknown field {field:?}"));
    }
    if body["model"] != MODEL || !body["query"].is_string() {
        return Some("model and query are required".to_owned());
    }
    if documents
        .iter()
        .any(|document| !document.is_string() && !document["text"].is_string())
    {
        return Some("documents are strings or {\"text\": ...} objects".to_owned());
    }
    None
}

fn answer(request: &ScriptedRequest) -> ScriptedAnswer {
    if (request.method.as_str(), request.target.as_str()) != ("POST", "/v1/rerank") {
        return jina_error(404, "Not Found");
    }
    if request.header("authorization") != Some(&format!("Bearer {API_KEY}")) {
        return jina_error(401, "Invalid API key");
    }
    let body = request.json();
    let Some(documents) = body["documents"].as_array() else {
        return jina_error(422, "documents is required");
    };
    if let Some(error) = shape_error(&body, documents) {
        return jina_error(422, &error);
    }
    let top_n = body["top_n"]
        .as_u64()
        .map_or(documents.len(), |n| n as usize);
    // Ranks by descending position, so the answer's order is not the input's; documents come
    // back unless the body says not to (Jina's default).
    let with_documents = body["return_documents"] != false;
    let results: Vec<Value> = (0..documents.len())
        .rev()
        .take(top_n)
        .map(|index| {
            let mut result = json!({"index": index, "relevance_score": 0.9 - 0.1 * index as f64});
            if with_documents {
                let text = documents[index]
                    .as_str()
                    .unwrap_or_else(|| documents[index]["text"].as_str().unwrap());
                result["document"] = json!({"text": text});
            }
            result
        })
        .collect();
    let reply = json!({"model": MODEL, "usage": {"total_tokens": 1000}, "results": results});
    (200, "application/json", reply.to_string())
}

fn jina_gateway(base: &str) -> Gateway {
    Gateway::start_with(
        &format!(
            r#"
model_list:
  - model_name: jina-rerank
    litellm_params:
      model: jina_ai/{MODEL}
      api_base: {base}/v1
    model_info:
      mode: rerank
  - model_name: jina-rerank-bad-key
    litellm_params:
      model: jina_ai/{MODEL}
      api_base: {base}
      api_key: not-the-key
    model_info:
      mode: rerank
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER_KEY}
"#
        ),
        &[],
        &[("JINA_AI_API_KEY", API_KEY)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jina_rerank_is_translated_and_priced_per_token() {
    let mock = ScriptedUpstream::start(answer).await;
    let gateway = jina_gateway(&mock.base_url);
    let documents = json!(["Carson City is in Nevada.", {"text": "Washington, D.C. is the capital."},
                           "Capital punishment."]);

    let (status, headers, reply) = send_json(gateway.post(
        "/v1/rerank",
        &json!({"model": "jina-rerank", "query": "capital of the US?", "documents": documents,
                "top_n": 2, "return_documents": true, "rank_fields": ["text"],
                "max_tokens_per_doc": 256}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["results"][0]["index"], 2);
    assert_eq!(
        reply["results"][1]["document"],
        json!({"text": "Washington, D.C. is the capital."})
    );
    assert_eq!(reply["meta"]["billed_units"]["total_tokens"], 1000);
    assert!(
        reply["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{reply}"
    );
    assert!(
        reply.get("usage").is_none() && reply.get("model").is_none(),
        "{reply}"
    );
    // 1000 tokens at 1.8e-8 USD each.
    let cost: f64 = header(&headers, "x-litellm-response-cost").parse().unwrap();
    assert!((cost - 1.8e-5).abs() < 1e-12, "cost {cost}");

    let sent = mock.requests()[0].json();
    assert_eq!(
        sent,
        json!({"model": MODEL, "query": "capital of the US?", "documents": documents,
               "top_n": 2, "return_documents": true})
    );

    // Documents come back only when asked, whatever Jina sends.
    let (status, _, reply) = send_json(gateway.post(
        "/v1/rerank",
        &json!({"model": "jina-rerank", "query": "q", "documents": ["a", "b"]}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply["results"],
        json!([{"index": 1, "relevance_score": 0.8}, {"index": 0, "relevance_score": 0.9}])
    );

    let (status, _, reply) = send_json(gateway.post(
        "/v1/rerank",
        &json!({"model": "jina-rerank-bad-key", "query": "q", "documents": ["a"]}),
    ))
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    assert_eq!(
        mock.requests().last().unwrap().header("authorization"),
        Some("Bearer not-the-key")
    );
}
