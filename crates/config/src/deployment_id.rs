//! Deployment ids compatible with LiteLLM's, for entries without `model_info.id`.
//!
//! LiteLLM hashes `model_name` followed by every `litellm_params` key and value, in file order,
//! after `os.environ/` resolution; values are rendered as Python renders them (strings raw,
//! mappings as `json.dumps`, other values through `str()`). Reproducing it keeps `model_id`
//! continuity in spend logs for teams moving from LiteLLM.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub fn deployment_id(model_name: &str, litellm_params: &Map<String, Value>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(model_name.as_bytes());
    for (key, value) in litellm_params {
        hasher.update(key.as_bytes());
        let rendered = match value {
            Value::String(text) => text.clone(),
            Value::Object(_) => python_json_dumps(value),
            other => python_str(other),
        };
        hasher.update(rendered.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// `str(value)` in Python for JSON-shaped values.
fn python_str(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => python_number(n),
        Value::String(text) => text.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}: {}",
                        python_repr(&Value::String(k.clone())),
                        python_repr(v)
                    )
                })
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// `repr(value)` in Python: strings quoted with single quotes.
fn python_repr(value: &Value) -> String {
    match value {
        Value::String(text) => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
        other => python_str(other),
    }
}

fn python_number(n: &serde_json::Number) -> String {
    if n.is_f64() {
        match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
            Some(f) => f.to_string(),
            None => n.to_string(),
        }
    } else {
        n.to_string()
    }
}

/// `json.dumps(value)` with Python's default separators (`", "` and `": "`).
fn python_json_dumps(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_json_dumps).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", json_string(k), python_json_dumps(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Number(n) => python_number(n),
        Value::String(text) => json_string(text),
        other => other.to_string(),
    }
}

/// A JSON string literal with non-ASCII escaped, as `json.dumps` does by default.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_covers_name_and_params_in_order() {
        let params = json!({"model": "openai/gpt-4o", "rpm": 10, "stream": true});
        let id = deployment_id("gpt-4o", params.as_object().unwrap());
        let expected = hex::encode(Sha256::digest(b"gpt-4omodelopenai/gpt-4orpm10streamTrue"));
        assert_eq!(id, expected);
    }

    #[test]
    fn mappings_render_as_python_json_dumps() {
        assert_eq!(
            python_json_dumps(&json!({"a": 1, "b": ["x", 2.0], "c": "é"})),
            r#"{"a": 1, "b": ["x", 2.0], "c": "\u00e9"}"#
        );
        assert_eq!(python_str(&json!(["a", null, 0.5])), "['a', None, 0.5]");
    }
}
