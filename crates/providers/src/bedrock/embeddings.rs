//! Embeddings through InvokeModel: Amazon Titan text embeddings (one text per call) and
//! Cohere embed models (a batch per call), from and to the OpenAI shape.

use serde_json::{json, Map, Value};
use switchyard_llm_types::embeddings::Embedding;
use switchyard_llm_types::{EmbeddingRequest, EmbeddingResponse, Usage};

/// The model families whose InvokeModel bodies this adapter knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingFamily {
    Titan,
    Cohere,
}

impl EmbeddingFamily {
    /// Recognises `amazon.titan-embed-*` and `cohere.embed-*` (also behind a region prefix
    /// such as `us.cohere.embed-...`).
    pub fn of(model: &str) -> Option<Self> {
        if model.contains("amazon.titan-embed") {
            Some(Self::Titan)
        } else if model.contains("cohere.embed") {
            Some(Self::Cohere)
        } else {
            None
        }
    }
}

/// One Titan body per input text.
pub fn titan_requests(request: &EmbeddingRequest) -> Vec<Value> {
    request
        .input
        .texts()
        .into_iter()
        .map(|text| {
            let mut body = Map::new();
            body.insert("inputText".into(), Value::String(text));
            if let Some(dimensions) = request.dimensions {
                body.insert("dimensions".into(), json!(dimensions));
            }
            if let Some(normalize) = request.extra.get("normalize").filter(|v| v.is_boolean()) {
                body.insert("normalize".into(), normalize.clone());
            }
            Value::Object(body)
        })
        .collect()
}

/// The Cohere body for the whole batch (`input_type` defaults to `search_document`).
pub fn cohere_request(request: &EmbeddingRequest) -> Value {
    let input_type = request
        .extra
        .get("input_type")
        .and_then(Value::as_str)
        .unwrap_or("search_document");
    json!({"texts": request.input.texts(), "input_type": input_type})
}

fn embedding(index: usize, values: Value) -> Embedding {
    Embedding {
        object: "embedding".to_owned(),
        index: u32::try_from(index).unwrap_or(u32::MAX),
        embedding: values,
    }
}

/// Titan answers, in input order → one OpenAI response with the summed token counts.
pub fn from_titan_responses(bodies: &[Value], model: &str) -> Result<EmbeddingResponse, String> {
    let mut data = Vec::with_capacity(bodies.len());
    let mut tokens = 0;
    for (index, body) in bodies.iter().enumerate() {
        let values = body
            .get("embedding")
            .filter(|values| values.is_array())
            .ok_or("a Titan response has no `embedding` array")?;
        tokens += body
            .get("inputTextTokenCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        data.push(embedding(index, values.clone()));
    }
    Ok(EmbeddingResponse {
        object: "list".to_owned(),
        data,
        model: model.to_owned(),
        usage: Some(Usage::new(tokens, 0)),
        extra: Map::new(),
    })
}

/// A Cohere answer (`{"embeddings": [[...]]}` or, with `embedding_types`,
/// `{"embeddings": {"float": [[...]]}}`) → OpenAI embeddings.
pub fn from_cohere_response(
    body: &Value,
    model: &str,
    expected: usize,
) -> Result<EmbeddingResponse, String> {
    let vectors = match body.get("embeddings") {
        Some(Value::Array(vectors)) => vectors,
        Some(Value::Object(by_type)) => by_type
            .get("float")
            .and_then(Value::as_array)
            .ok_or("a Cohere response has no float embeddings")?,
        _ => return Err("a Cohere response has no `embeddings`".to_owned()),
    };
    if vectors.len() != expected || !vectors.iter().all(Value::is_array) {
        return Err(format!(
            "asked for {expected} embeddings, received {} usable ones",
            vectors.iter().filter(|vector| vector.is_array()).count()
        ));
    }
    Ok(EmbeddingResponse {
        object: "list".to_owned(),
        data: vectors
            .iter()
            .enumerate()
            .map(|(index, values)| embedding(index, values.clone()))
            .collect(),
        model: model.to_owned(),
        usage: None,
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titan_and_cohere_bodies_and_answers() {
        let request: EmbeddingRequest = serde_json::from_value(json!({
            "model": "amazon.titan-embed-text-v2:0", "input": ["a", "b"], "dimensions": 256
        }))
        .unwrap();
        assert_eq!(
            EmbeddingFamily::of(&request.model),
            Some(EmbeddingFamily::Titan)
        );
        assert_eq!(
            titan_requests(&request),
            vec![
                json!({"inputText": "a", "dimensions": 256}),
                json!({"inputText": "b", "dimensions": 256})
            ]
        );
        let answers = [
            json!({"embedding": [0.1], "inputTextTokenCount": 2}),
            json!({"embedding": [0.2], "inputTextTokenCount": 3}),
        ];
        let response = from_titan_responses(&answers, "titan").unwrap();
        assert_eq!(response.usage.unwrap().prompt_tokens, 5);
        assert_eq!(response.data[1].embedding, json!([0.2]));
        assert!(from_titan_responses(&[json!({})], "titan").is_err());

        let request: EmbeddingRequest = serde_json::from_value(json!({
            "model": "cohere.embed-english-v3", "input": ["x", "y"], "input_type": "search_query"
        }))
        .unwrap();
        assert_eq!(
            cohere_request(&request),
            json!({"texts": ["x", "y"], "input_type": "search_query"})
        );
        let response =
            from_cohere_response(&json!({"embeddings": [[1.0], [2.0]], "id": "e"}), "c", 2)
                .unwrap();
        assert_eq!(response.data[1].embedding, json!([2.0]));
        assert!(from_cohere_response(&json!({"embeddings": [[1.0]]}), "c", 2).is_err());
        assert_eq!(EmbeddingFamily::of("meta.llama3"), None);
    }
}
