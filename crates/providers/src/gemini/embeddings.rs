//! Embeddings: Google AI Studio `batchEmbedContents` and Vertex AI `predict`, both from and to
//! the OpenAI shape.

use serde_json::{json, Map, Value};
use switchyard_llm_types::embeddings::Embedding;
use switchyard_llm_types::{EmbeddingRequest, EmbeddingResponse, Usage};

/// The `batchEmbedContents` body: one request per input text.
pub fn to_batch_embed_request(request: &EmbeddingRequest) -> Value {
    let model = format!("models/{}", request.model);
    let requests: Vec<Value> = request
        .input
        .texts()
        .into_iter()
        .map(|text| {
            let mut item = Map::new();
            item.insert("model".into(), Value::String(model.clone()));
            item.insert("content".into(), json!({"parts": [{"text": text}]}));
            if let Some(dimensions) = request.dimensions {
                item.insert("outputDimensionality".into(), json!(dimensions));
            }
            if let Some(task) = request.extra.get("task_type").filter(|v| !v.is_null()) {
                item.insert("taskType".into(), task.clone());
            }
            Value::Object(item)
        })
        .collect();
    json!({ "requests": requests })
}

/// The `predict` body of Vertex AI text-embedding models.
pub fn to_vertex_predict_request(request: &EmbeddingRequest) -> Value {
    let task = request.extra.get("task_type").filter(|v| !v.is_null());
    let instances: Vec<Value> = request
        .input
        .texts()
        .into_iter()
        .map(|text| match task {
            Some(task) => json!({"content": text, "task_type": task}),
            None => json!({ "content": text }),
        })
        .collect();
    let mut body = Map::new();
    body.insert("instances".into(), Value::Array(instances));
    if let Some(dimensions) = request.dimensions {
        body.insert(
            "parameters".into(),
            json!({ "outputDimensionality": dimensions }),
        );
    }
    Value::Object(body)
}

fn response(model: &str, vectors: Vec<Value>, usage: Option<Usage>) -> EmbeddingResponse {
    EmbeddingResponse {
        object: "list".to_owned(),
        data: vectors
            .into_iter()
            .enumerate()
            .map(|(index, values)| Embedding {
                object: "embedding".to_owned(),
                index: u32::try_from(index).unwrap_or(u32::MAX),
                embedding: values,
            })
            .collect(),
        model: model.to_owned(),
        usage,
        extra: Map::new(),
    }
}

fn vectors_of<'a>(
    items: &'a [Value],
    values_at: impl Fn(&'a Value) -> Option<&'a Value>,
) -> Result<Vec<Value>, String> {
    items
        .iter()
        .map(|item| match values_at(item) {
            Some(values @ Value::Array(_)) => Ok(values.clone()),
            _ => Err("an embedding has no `values` array".to_owned()),
        })
        .collect()
}

/// `{"embeddings": [{"values": [...]}]}` → OpenAI embeddings. AI Studio reports no token
/// counts, so the response carries none.
pub fn from_batch_embed_response(
    body: &Value,
    model: &str,
    expected: usize,
) -> Result<EmbeddingResponse, String> {
    let items = body
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or("the response has no `embeddings` array")?;
    if items.len() != expected {
        return Err(format!(
            "asked for {expected} embeddings, received {}",
            items.len()
        ));
    }
    let vectors = vectors_of(items, |item| item.get("values"))?;
    Ok(response(model, vectors, None))
}

/// `{"predictions": [{"embeddings": {"values", "statistics": {"token_count"}}}]}` → OpenAI
/// embeddings, with the summed token counts as prompt tokens.
pub fn from_vertex_predict_response(
    body: &Value,
    model: &str,
    expected: usize,
) -> Result<EmbeddingResponse, String> {
    let items = body
        .get("predictions")
        .and_then(Value::as_array)
        .ok_or("the response has no `predictions` array")?;
    if items.len() != expected {
        return Err(format!(
            "asked for {expected} embeddings, received {}",
            items.len()
        ));
    }
    let vectors = vectors_of(items, |item| item.pointer("/embeddings/values"))?;
    let tokens: u64 = items
        .iter()
        .filter_map(|item| {
            item.pointer("/embeddings/statistics/token_count")
                .and_then(Value::as_f64)
        })
        .map(|count| count as u64)
        .sum();
    Ok(response(model, vectors, Some(Usage::new(tokens, 0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> EmbeddingRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn batch_embed_round_trip() {
        let request =
            request(json!({"model": "text-embedding-004", "input": ["a", "b"], "dimensions": 8}));
        assert_eq!(
            to_batch_embed_request(&request),
            json!({"requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 8},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 8}
            ]})
        );
        let body = json!({"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]});
        let response = from_batch_embed_response(&body, "text-embedding-004", 2).unwrap();
        assert_eq!(response.data[1].embedding, json!([0.3, 0.4]));
        assert_eq!(response.data[1].index, 1);
        assert!(from_batch_embed_response(&body, "m", 3).is_err());
        assert!(from_batch_embed_response(&json!({"embeddings": [{}]}), "m", 1).is_err());
    }

    #[test]
    fn vertex_predict_round_trip_with_token_counts() {
        let request = request(json!({"model": "text-embedding-005", "input": "hello"}));
        assert_eq!(
            to_vertex_predict_request(&request),
            json!({"instances": [{"content": "hello"}]})
        );
        let body = json!({"predictions": [{"embeddings": {"values": [1.0, 2.0],
            "statistics": {"token_count": 3.0, "truncated": false}}}]});
        let response = from_vertex_predict_response(&body, "text-embedding-005", 1).unwrap();
        assert_eq!(response.usage.unwrap().prompt_tokens, 3);
        assert_eq!(response.data[0].embedding, json!([1.0, 2.0]));
    }
}
