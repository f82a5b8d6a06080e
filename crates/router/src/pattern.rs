//! Wildcard model names: `*` matches any text, and what it matched replaces the `*` of the
//! deployment's upstream model (`openai/*` serves `openai/gpt-4o` as upstream `gpt-4o`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The literal pieces between the `*`s; `n` stars make `n + 1` pieces.
    pieces: Vec<String>,
}

impl Pattern {
    pub fn is_pattern(name: &str) -> bool {
        name.contains('*')
    }

    pub fn new(pattern: &str) -> Self {
        Self {
            pieces: pattern.split('*').map(str::to_owned).collect(),
        }
    }

    /// More literal characters = more specific; tried first.
    pub fn specificity(&self) -> usize {
        self.pieces.iter().map(String::len).sum()
    }

    /// What each `*` matched, or `None` when the name does not match. Earlier stars take as
    /// much as they can, as a greedy regular expression would.
    pub fn captures(&self, name: &str) -> Option<Vec<String>> {
        let (first, rest) = self.pieces.split_first()?;
        let remainder = name.strip_prefix(first.as_str())?;
        let mut captures = Vec::with_capacity(rest.len());
        if match_rest(rest, remainder, &mut captures) {
            Some(captures)
        } else {
            None
        }
    }

    /// Replaces each `*` of `template` with the captures in order (extra stars become empty).
    pub fn substitute(template: &str, captures: &[String]) -> String {
        let mut out = String::with_capacity(template.len() + 16);
        let mut captures = captures.iter();
        for (index, piece) in template.split('*').enumerate() {
            if index > 0 {
                out.push_str(captures.next().map_or("", String::as_str));
            }
            out.push_str(piece);
        }
        out
    }
}

fn match_rest(pieces: &[String], text: &str, captures: &mut Vec<String>) -> bool {
    let Some((piece, rest)) = pieces.split_first() else {
        return text.is_empty();
    };
    if rest.is_empty() {
        // The last star takes everything up to the final literal suffix.
        return match text.strip_suffix(piece.as_str()) {
            Some(captured) => {
                captures.push(captured.to_owned());
                true
            }
            None => false,
        };
    }
    // Greedy: try the longest capture first.
    let mut candidates: Vec<usize> = text
        .match_indices(piece.as_str())
        .map(|(at, _)| at)
        .collect();
    candidates.reverse();
    for at in candidates {
        captures.push(text[..at].to_owned());
        if match_rest(rest, &text[at + piece.len()..], captures) {
            return true;
        }
        captures.pop();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_and_substitution() {
        let pattern = Pattern::new("openai/*");
        assert_eq!(
            pattern.captures("openai/gpt-4o"),
            Some(vec!["gpt-4o".to_owned()])
        );
        assert_eq!(pattern.captures("anthropic/x"), None);
        assert_eq!(Pattern::substitute("*", &["gpt-4o".to_owned()]), "gpt-4o");
        assert_eq!(
            Pattern::substitute("fixed-model", &["x".to_owned()]),
            "fixed-model"
        );
        let two = Pattern::new("team-*/model-*");
        assert_eq!(
            two.captures("team-a/b/model-c"),
            Some(vec!["a/b".to_owned(), "c".to_owned()])
        );
        assert_eq!(Pattern::new("*").captures(""), Some(vec![String::new()]));
    }

    #[test]
    fn literal_length_orders_specificity() {
        assert!(
            Pattern::new("openai/gpt-*").specificity() > Pattern::new("openai/*").specificity()
        );
    }
}
