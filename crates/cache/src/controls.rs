//! Per-request cache controls: the body's `cache` object and the `Cache-Control` header.
//!
//! Body (LiteLLM): `{"cache": {"no-cache": true, "no-store": true, "ttl": 60,
//! "s-maxage": 10, "namespace": "team-a", "use-cache": true}}` (`s-max-age` is an alias).
//! Header: `Cache-Control: no-cache, no-store, s-maxage=10, ttl=60, namespace=team-a,
//! use-cache` — the standard directives plus the same names; `max-age=N` is read as
//! `s-maxage` (in a request both mean "no older than N seconds"). The body wins where both
//! set a control.

use std::time::Duration;

use serde_json::Value;

use crate::error::ControlsError;

/// What one request asked of the cache. `Default` is "no controls".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controls {
    /// Skip the lookup (the fresh response is still stored).
    pub no_cache: bool,
    /// Do not store the response.
    pub no_store: bool,
    /// TTL of the entry this request stores.
    pub ttl: Option<Duration>,
    /// Accept only entries younger than this.
    pub s_maxage: Option<Duration>,
    /// Key prefix for this request, replacing the configured namespace.
    pub namespace: Option<String>,
    /// Opt in (`mode: default_off`) or, when `false`, out of caching.
    pub use_cache: Option<bool>,
}

impl Controls {
    /// Parses the body's `cache` value (pass `request.extra.get("cache")`) and the
    /// `Cache-Control` header values (pass every value of that header, in order).
    pub fn parse<'a>(
        body: Option<&Value>,
        cache_control_headers: impl IntoIterator<Item = &'a str>,
    ) -> Result<Controls, ControlsError> {
        let mut controls = Controls::default();
        for header in cache_control_headers {
            controls.apply_header(header)?;
        }
        match body {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (name, value) in map {
                    controls.apply(name, value, "cache.")?;
                }
            }
            Some(other) => {
                return Err(ControlsError::new(
                    "cache",
                    format!("expected an object, found {other}"),
                ))
            }
        }
        Ok(controls)
    }

    /// The names of the controls this request set, as LiteLLM spells them; for a per-key
    /// `allowed_cache_controls` check (403 `Not allowed to set <k> as a cache control`).
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.no_cache {
            names.push("no-cache");
        }
        if self.no_store {
            names.push("no-store");
        }
        if self.ttl.is_some() {
            names.push("ttl");
        }
        if self.s_maxage.is_some() {
            names.push("s-maxage");
        }
        if self.namespace.is_some() {
            names.push("namespace");
        }
        if self.use_cache.is_some() {
            names.push("use-cache");
        }
        names
    }

    fn apply_header(&mut self, header: &str) -> Result<(), ControlsError> {
        for directive in header.split(',') {
            let directive = directive.trim();
            if directive.is_empty() {
                continue;
            }
            let (name, value) = match directive.split_once('=') {
                Some((name, value)) => (
                    name.trim().to_ascii_lowercase(),
                    Some(value.trim().trim_matches('"')),
                ),
                None => (directive.to_ascii_lowercase(), None),
            };
            let name = if name == "max-age" {
                "s-maxage".to_owned()
            } else {
                name
            };
            let value = match value {
                // A bare directive (`no-cache`) is a flag set to true.
                None => Value::Bool(true),
                Some(text) => Value::String(text.to_owned()),
            };
            match name.as_str() {
                "no-cache" | "no-store" | "ttl" | "s-maxage" | "s-max-age" | "namespace"
                | "use-cache" => self.apply(&name, &value, "Cache-Control: ")?,
                // Other standard directives (`no-transform`, `private`, ...) mean nothing here.
                _ => {}
            }
        }
        Ok(())
    }

    fn apply(&mut self, name: &str, value: &Value, origin: &str) -> Result<(), ControlsError> {
        let param = || format!("{origin}{name}");
        match name {
            "no-cache" => self.no_cache = flag(value).ok_or_else(|| bad_flag(param(), value))?,
            "no-store" => self.no_store = flag(value).ok_or_else(|| bad_flag(param(), value))?,
            "use-cache" => {
                self.use_cache = Some(flag(value).ok_or_else(|| bad_flag(param(), value))?)
            }
            "ttl" => self.ttl = optional_seconds(value, param)?,
            "s-maxage" | "s-max-age" => self.s_maxage = optional_seconds(value, param)?,
            "namespace" => {
                self.namespace = match value {
                    Value::Null => None,
                    Value::String(text) if text.is_empty() => None,
                    Value::String(text) if valid_namespace(text) => Some(text.clone()),
                    _ => {
                        return Err(ControlsError::new(
                            param(),
                            "expected a string of at most 128 characters without spaces or control characters",
                        ))
                    }
                }
            }
            // LiteLLM ignores unknown keys in `cache`; so do we.
            _ => {}
        }
        Ok(())
    }
}

/// Namespaces become Redis key prefixes: keep them short and printable.
fn valid_namespace(text: &str) -> bool {
    text.chars().count() <= 128 && text.chars().all(|c| !c.is_control() && !c.is_whitespace())
}

fn flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::Null => Some(false),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn bad_flag(param: String, value: &Value) -> ControlsError {
    ControlsError::new(param, format!("expected true or false, found {value}"))
}

fn optional_seconds(
    value: &Value,
    param: impl Fn() -> String,
) -> Result<Option<Duration>, ControlsError> {
    if value.is_null() {
        return Ok(None);
    }
    parse_seconds(value).map(Some).ok_or_else(|| {
        ControlsError::new(
            param(),
            format!("expected a non-negative number of seconds, found {value}"),
        )
    })
}

/// A non-negative, finite number of seconds (number or numeric string), at most ~100 years.
pub(crate) fn parse_seconds(value: &Value) -> Option<Duration> {
    let seconds = match value {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !seconds.is_finite() || !(0.0..=3.2e9).contains(&seconds) {
        return None;
    }
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_llm_types::ErrorClass;

    #[test]
    fn body_controls_parse() {
        let controls = Controls::parse(
            Some(
                &json!({"no-cache": true, "no-store": false, "ttl": 60, "s-maxage": 1.5,
                          "namespace": "team-a", "use-cache": true, "unknown": 1}),
            ),
            [],
        )
        .unwrap();
        assert_eq!(
            controls,
            Controls {
                no_cache: true,
                no_store: false,
                ttl: Some(Duration::from_secs(60)),
                s_maxage: Some(Duration::from_millis(1500)),
                namespace: Some("team-a".into()),
                use_cache: Some(true),
            }
        );
        assert_eq!(
            controls.names(),
            vec!["no-cache", "ttl", "s-maxage", "namespace", "use-cache"]
        );
    }

    #[test]
    fn s_max_age_alias_and_absent_body() {
        let controls = Controls::parse(Some(&json!({"s-max-age": "10"})), []).unwrap();
        assert_eq!(controls.s_maxage, Some(Duration::from_secs(10)));
        assert_eq!(Controls::parse(None, []).unwrap(), Controls::default());
    }

    #[test]
    fn header_directives_parse_and_body_wins() {
        let controls = Controls::parse(
            Some(&json!({"ttl": 5})),
            [
                "no-store, s-maxage=30",
                "ttl=100, namespace=\"ns1\", no-transform, max-age=20",
            ],
        )
        .unwrap();
        assert!(controls.no_store);
        assert!(!controls.no_cache);
        assert_eq!(controls.ttl, Some(Duration::from_secs(5)));
        // `max-age` came later in the headers than `s-maxage`.
        assert_eq!(controls.s_maxage, Some(Duration::from_secs(20)));
        assert_eq!(controls.namespace.as_deref(), Some("ns1"));
        let no_cache = Controls::parse(None, ["No-Cache"]).unwrap();
        assert!(no_cache.no_cache);
    }

    #[test]
    fn bad_values_are_400_naming_the_parameter() {
        for (body, param) in [
            (json!({"ttl": -1}), "cache.ttl"),
            (json!({"ttl": "soon"}), "cache.ttl"),
            (json!({"s-maxage": [1]}), "cache.s-maxage"),
            (json!({"no-cache": "maybe"}), "cache.no-cache"),
            (json!({"namespace": 5}), "cache.namespace"),
            (json!({"namespace": "has space"}), "cache.namespace"),
            (json!("yes"), "cache"),
        ] {
            let error = Controls::parse(Some(&body), []).unwrap_err();
            assert_eq!(error.param, param, "{body}");
            assert_eq!(error.status(), 400);
            assert_eq!(error.to_body().error.param.as_deref(), Some(param));
        }
        let header = Controls::parse(None, ["s-maxage=abc"]).unwrap_err();
        assert_eq!(header.param, "Cache-Control: s-maxage");
    }
}
