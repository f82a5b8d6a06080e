//! Which model groups to try after a group failed (LiteLLM §5.6).

use switchyard_llm_types::ErrorKind;

/// LiteLLM's default bound on fallback hops.
pub const DEFAULT_MAX_FALLBACKS: u32 = 5;

#[derive(Debug, Clone, Default)]
pub struct FallbackSettings {
    /// `fallbacks`: any error after retries. The group `*` applies to every group.
    pub generic: Vec<(String, Vec<String>)>,
    /// Only for context-window errors.
    pub context_window: Vec<(String, Vec<String>)>,
    /// Only for content-policy errors.
    pub content_policy: Vec<(String, Vec<String>)>,
    /// Used for any group without its own entry (`default_fallbacks`).
    pub default: Vec<String>,
    pub max_fallbacks: Option<u32>,
}

fn lookup<'a>(table: &'a [(String, Vec<String>)], group: &str) -> Option<&'a [String]> {
    table
        .iter()
        .find(|(name, _)| name == group)
        .or_else(|| table.iter().find(|(name, _)| name == "*"))
        .map(|(_, targets)| targets.as_slice())
}

impl FallbackSettings {
    pub fn max_fallbacks(&self) -> u32 {
        self.max_fallbacks.unwrap_or(DEFAULT_MAX_FALLBACKS)
    }

    /// The fallback groups for a failed `group`, in the order to try them.
    ///
    /// A request's own list wins. A context-window or content-policy error uses its own
    /// table when one is configured (no entry for the group means no fallback); otherwise
    /// the generic table, then `default_fallbacks`.
    pub fn targets(&self, group: &str, kind: ErrorKind, request: Option<&[String]>) -> Vec<String> {
        if let Some(request) = request {
            return request.to_vec();
        }
        let specific = match kind {
            ErrorKind::ContextWindowExceeded => Some(&self.context_window),
            ErrorKind::ContentPolicy => Some(&self.content_policy),
            _ => None,
        };
        if let Some(table) = specific.filter(|table| !table.is_empty()) {
            return lookup(table, group)
                .map(<[String]>::to_vec)
                .unwrap_or_default();
        }
        lookup(&self.generic, group)
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| self.default.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> FallbackSettings {
        FallbackSettings {
            generic: vec![
                ("a".into(), vec!["b".into()]),
                ("*".into(), vec!["z".into()]),
            ],
            context_window: vec![("a".into(), vec!["a-long".into()])],
            content_policy: Vec::new(),
            default: vec!["d".into()],
            max_fallbacks: None,
        }
    }

    #[test]
    fn each_error_class_uses_its_own_table() {
        let s = settings();
        assert_eq!(s.targets("a", ErrorKind::RateLimited, None), vec!["b"]);
        assert_eq!(
            s.targets("a", ErrorKind::ContextWindowExceeded, None),
            vec!["a-long"]
        );
        assert!(s
            .targets("other", ErrorKind::ContextWindowExceeded, None)
            .is_empty());
        // No content-policy table: the generic one applies.
        assert_eq!(s.targets("a", ErrorKind::ContentPolicy, None), vec!["b"]);
        assert_eq!(s.targets("q", ErrorKind::Timeout, None), vec!["z"]);
        let request = vec!["r".to_owned()];
        assert_eq!(
            s.targets("a", ErrorKind::Timeout, Some(&request)),
            vec!["r"]
        );
        let no_star = FallbackSettings {
            generic: Vec::new(),
            ..settings()
        };
        assert_eq!(no_star.targets("q", ErrorKind::Timeout, None), vec!["d"]);
    }
}
