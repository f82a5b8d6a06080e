//! Typed extraction from one YAML mapping, with errors that name the dotted field path.
//!
//! Values written through `os.environ/` arrive as strings even when they stand for numbers or
//! booleans (LiteLLM reads them the same way), so numeric and boolean fields accept numeric and
//! boolean strings.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::ConfigError;

/// The keys of one mapping not yet taken; what remains at the end is "not handled".
#[derive(Debug)]
pub struct Fields {
    path: String,
    map: Map<String, Value>,
}

impl Fields {
    pub fn new(path: impl Into<String>, map: Map<String, Value>) -> Self {
        Self {
            path: path.into(),
            map,
        }
    }

    /// A section that may be absent or null; anything but a mapping is an error.
    pub fn section(path: &str, value: Option<Value>) -> Result<Self, ConfigError> {
        match value {
            None | Some(Value::Null) => Ok(Self::new(path, Map::new())),
            Some(Value::Object(map)) => Ok(Self::new(path, map)),
            Some(other) => Err(ConfigError::invalid(
                path,
                format!("expected a mapping, found {}", describe(&other)),
            )),
        }
    }

    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Takes a key as `T`; absent and null both give `None`.
    pub fn take<T: FromValue>(&mut self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::from_value(value, &self.path_of(key)).map(Some),
        }
    }

    pub fn require<T: FromValue>(&mut self, key: &str) -> Result<T, ConfigError> {
        self.take(key)?
            .ok_or_else(|| ConfigError::invalid(self.path_of(key), "is required"))
    }

    pub fn take_raw(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The keys nobody took, with their values.
    pub fn into_rest(self) -> Map<String, Value> {
        self.map
    }

    /// The dotted paths of the keys nobody took.
    pub fn rest_paths(&self) -> Vec<String> {
        self.map.keys().map(|key| self.path_of(key)).collect()
    }
}

/// A short description of a value's type for error messages.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.len() > 40 => "a string".to_owned(),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

fn expected(path: &str, what: &str, value: &Value) -> ConfigError {
    ConfigError::invalid(path, format!("expected {what}, found {}", describe(value)))
}

pub trait FromValue: Sized {
    fn from_value(value: Value, path: &str) -> Result<Self, ConfigError>;
}

impl FromValue for String {
    fn from_value(value: Value, path: &str) -> Result<Self, ConfigError> {
        match value {
            Value::String(s) => Ok(s),
            // Model names like `1` or versions like `2024-10-01` may be written unquoted.
            Value::Number(n) => Ok(n.to_string()),
            other => Err(expected(path, "a string", &other)),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: Value, path: &str) -> Result<Self, ConfigError> {
        match value {
            Value::Bool(b) => Ok(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            other => Err(expected(path, "true or false", &other)),
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: Value, path: &str) -> Result<Self, ConfigError> {
        let number = match &value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match number {
            Some(n) if n.is_finite() => Ok(n),
            _ => Err(expected(path, "a number", &value)),
        }
    }
}

impl FromValue for u64 {
    fn from_value(value: Value, path: &str) -> Result<Self, ConfigError> {
        let number = match &value {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        number.ok_or_else(|| expected(path, "a non-negative whole number", &value))
    }
}

impl FromValue for u32 {
    fn from_value(value: Value, path: &str) -> Result<Self, ConfigError> {
        let wide = u64::from_value(value.clone(), path)?;
        u32::try_from(wide).map_err(|_| expected(path, "a smaller whole number", &value))
    }
}

impl FromValue for Vec<String> {
    fn from_value(value: Value, path: &str) -> Result<Self, ConfigError> {
        match value {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(index, item)| String::from_value(item, &format!("{path}[{index}]")))
                .collect(),
            // A single string where a list is expected is a common shorthand.
            Value::String(s) => Ok(vec![s]),
            other => Err(expected(path, "a list of strings", &other)),
        }
    }
}

impl FromValue for BTreeMap<String, String> {
    fn from_value(value: Value, path: &str) -> Result<Self, ConfigError> {
        match value {
            Value::Object(map) => map
                .into_iter()
                .map(|(key, item)| {
                    let item_path = format!("{path}.{key}");
                    String::from_value(item, &item_path).map(|v| (key, v))
                })
                .collect(),
            other => Err(expected(path, "a mapping of strings", &other)),
        }
    }
}

impl FromValue for Map<String, Value> {
    fn from_value(value: Value, path: &str) -> Result<Self, ConfigError> {
        match value {
            Value::Object(map) => Ok(map),
            other => Err(expected(path, "a mapping", &other)),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: Value, _path: &str) -> Result<Self, ConfigError> {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        Fields::new("router_settings", value.as_object().unwrap().clone())
    }

    #[test]
    fn numbers_accept_numeric_strings_and_reject_others_with_the_path() {
        let mut f = fields(json!({"timeout": "30", "num_retries": 2, "bad": "soon"}));
        assert_eq!(f.take::<f64>("timeout").unwrap(), Some(30.0));
        assert_eq!(f.take::<u32>("num_retries").unwrap(), Some(2));
        let error = f.take::<u64>("bad").unwrap_err().to_string();
        assert_eq!(
            error,
            "router_settings.bad: expected a non-negative whole number, found string \"soon\""
        );
    }

    #[test]
    fn untaken_keys_are_reported_with_paths() {
        let mut f = fields(json!({"a": 1, "b": 2}));
        f.take::<u64>("a").unwrap();
        assert_eq!(f.rest_paths(), vec!["router_settings.b".to_owned()]);
    }
}
