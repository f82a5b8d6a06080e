//! Phase one: YAML text (plus `include:` files) → one JSON document.

use std::path::Path;

use serde_json::{Map, Value};

use crate::ConfigError;

/// Includes are resolved one level deep, as LiteLLM does; an included file's own `include:`
/// would be an easy way to build a cycle.
pub(crate) fn read_document(
    text: &str,
    file: &Path,
    base_dir: &Path,
) -> Result<Map<String, Value>, ConfigError> {
    let mut document = parse_mapping(text, file)?;
    let Some(includes) = document.remove("include") else {
        return Ok(document);
    };
    let includes = match includes {
        Value::Array(items) => items,
        Value::String(one) => vec![Value::String(one)],
        Value::Null => Vec::new(),
        _ => {
            return Err(ConfigError::invalid(
                "include",
                "expected a list of file paths",
            ))
        }
    };
    for (index, include) in includes.into_iter().enumerate() {
        let Value::String(relative) = include else {
            return Err(ConfigError::invalid(
                format!("include[{index}]"),
                "expected a file path",
            ));
        };
        let path = base_dir.join(&relative);
        let included_text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let included = parse_mapping(&included_text, &path)?;
        merge_into(&mut document, included);
    }
    Ok(document)
}

fn parse_mapping(text: &str, file: &Path) -> Result<Map<String, Value>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let value: Value = serde_yaml::from_str(text).map_err(|error| ConfigError::Yaml {
        file: file.to_owned(),
        reason: error.to_string(),
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(ConfigError::Yaml {
            file: file.to_owned(),
            reason: "the top level must be a mapping (model_list:, general_settings:, ...)"
                .to_owned(),
        }),
    }
}

/// Lists are appended, mappings merged key by key, anything else from the include wins.
fn merge_into(target: &mut Map<String, Value>, source: Map<String, Value>) {
    for (key, value) in source {
        match (target.get_mut(&key), value) {
            (Some(Value::Array(existing)), Value::Array(more)) => existing.extend(more),
            (Some(Value::Object(existing)), Value::Object(more)) => merge_into(existing, more),
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_append_model_lists_and_merge_sections() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("models.yaml"),
            "model_list:\n  - model_name: b\n    litellm_params: {model: openai/b}\n\
             general_settings: {master_key: sk-x}\n",
        )
        .unwrap();
        let main = "include: [models.yaml]\nmodel_list:\n  - model_name: a\n    litellm_params: {model: openai/a}\n";
        let document = read_document(main, Path::new("config.yaml"), dir.path()).unwrap();
        assert_eq!(document["model_list"].as_array().unwrap().len(), 2);
        assert_eq!(document["general_settings"]["master_key"], "sk-x");
    }

    #[test]
    fn bad_yaml_names_the_file() {
        let error = read_document("model_list: [", Path::new("c.yaml"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("c.yaml: invalid YAML"), "{error}");
    }
}
