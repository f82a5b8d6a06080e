//! Reasoning written inline: models run without Ollama's `think` (or on servers too old to
//! separate it) start their text with `<think>…</think>`. That block becomes OpenAI's
//! `reasoning_content` and the rest the `content`.
//!
//! The rules are those of Ollama's own thinking parser, so an answer reads the same whether
//! Ollama or the gateway separated it: the block counts only at the start of the text
//! (leading whitespace is skipped), whitespace right after `<think>` and right after
//! `</think>` is dropped, and a block never closed is reasoning to the end. Text that does not
//! start with the tag is content, unchanged.
//!
//! A stream may cut a tag anywhere (`<thi` + `nk>`), so [`ThinkSplitter`] holds back only what
//! could still be the start of a tag: at the beginning of the text (whitespace and a prefix of
//! `<think>`) and, while reasoning, a trailing prefix of `</think>`. Everything else is passed
//! through as it arrives, borrowed from the input.

use std::borrow::Cow;

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace (and perhaps part of `<think>`) seen yet.
    Start,
    /// Right after `<think>`: whitespace is dropped.
    Opened,
    /// Inside the block.
    Thinking,
    /// Right after `</think>`: whitespace is dropped.
    Closed,
    /// Plain content from here on.
    Text,
}

/// One piece of text split: reasoning first, then content (either may be empty).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split<'a> {
    pub reasoning: Cow<'a, str>,
    pub content: Cow<'a, str>,
}

impl Split<'_> {
    fn owned(reasoning: &str, content: &str) -> Split<'static> {
        let own = |text: &str| {
            if text.is_empty() {
                Cow::Borrowed("")
            } else {
                Cow::Owned(text.to_owned())
            }
        };
        Split {
            reasoning: own(reasoning),
            content: own(content),
        }
    }
}

/// Splits `<think>` blocks out of text that arrives in pieces.
#[derive(Debug)]
pub struct ThinkSplitter {
    state: State,
    /// What is held back because it may be part of a tag.
    held: String,
}

impl Default for ThinkSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl ThinkSplitter {
    pub fn new() -> Self {
        Self {
            state: State::Start,
            held: String::new(),
        }
    }

    /// Splits the next piece. Borrowed from `piece` unless something was held back before it.
    pub fn push<'a>(&mut self, piece: &'a str) -> Split<'a> {
        if self.state == State::Text {
            // The usual case once the block (if any) is over.
            return Split {
                reasoning: Cow::Borrowed(""),
                content: Cow::Borrowed(piece),
            };
        }
        if self.held.is_empty() {
            let (reasoning, content) = self.run(piece);
            return Split {
                reasoning: Cow::Borrowed(reasoning),
                content: Cow::Borrowed(content),
            };
        }
        let mut joined = std::mem::take(&mut self.held);
        joined.push_str(piece);
        let (reasoning, content) = self.run(&joined);
        Split::owned(reasoning, content)
    }

    /// At the end of the text: what was held back, as what it turned out to be.
    pub fn finish(&mut self) -> Split<'static> {
        let held = std::mem::take(&mut self.held);
        match self.state {
            // A lone prefix of `<think>` (or only whitespace) was plain text after all.
            State::Start => {
                self.state = State::Text;
                Split::owned("", &held)
            }
            // An unfinished `</think>` is part of the reasoning.
            State::Thinking => Split::owned(&held, ""),
            State::Opened | State::Closed | State::Text => Split::default(),
        }
    }

    /// Advances over `text` (nothing held on entry): its (reasoning, content), anything that
    /// may be part of a tag kept in `held`. Each of the two is written in one state only, and
    /// states only move forward, so each is one slice of `text`.
    fn run<'t>(&mut self, mut text: &'t str) -> (&'t str, &'t str) {
        let mut reasoning = "";
        loop {
            match self.state {
                State::Start => {
                    let trimmed = text.trim_start();
                    if let Some(after) = trimmed.strip_prefix(OPEN) {
                        self.state = State::Opened;
                        text = after;
                    } else if OPEN.starts_with(trimmed) {
                        self.held.push_str(text);
                        return (reasoning, "");
                    } else {
                        self.state = State::Text;
                    }
                }
                State::Opened | State::Closed => {
                    let trimmed = text.trim_start();
                    if trimmed.is_empty() {
                        return (reasoning, "");
                    }
                    self.state = if self.state == State::Opened {
                        State::Thinking
                    } else {
                        State::Text
                    };
                    text = trimmed;
                }
                State::Thinking => {
                    if let Some(at) = text.find(CLOSE) {
                        reasoning = &text[..at];
                        text = &text[at + CLOSE.len()..];
                        self.state = State::Closed;
                    } else {
                        let keep = partial_tag_at_end(text, CLOSE);
                        let (thought, maybe_tag) = text.split_at(text.len() - keep);
                        self.held.push_str(maybe_tag);
                        return (thought, "");
                    }
                }
                State::Text => return (reasoning, text),
            }
        }
    }
}

/// The length of the longest end of `text` that is a proper beginning of `tag`.
fn partial_tag_at_end(text: &str, tag: &str) -> usize {
    let longest = text.len().min(tag.len() - 1);
    (1..=longest)
        .rev()
        .find(|&length| text.as_bytes().ends_with(&tag.as_bytes()[..length]))
        .unwrap_or(0)
}

/// Splits a whole text (a non-streamed answer).
pub fn split_whole(text: &str) -> (Cow<'_, str>, Cow<'_, str>) {
    let mut splitter = ThinkSplitter::new();
    let Split { reasoning, content } = splitter.push(text);
    let rest = splitter.finish();
    (join(reasoning, rest.reasoning), join(content, rest.content))
}

fn join<'a>(first: Cow<'a, str>, second: Cow<'_, str>) -> Cow<'a, str> {
    if second.is_empty() {
        first
    } else if first.is_empty() {
        Cow::Owned(second.into_owned())
    } else {
        Cow::Owned(first.into_owned() + &second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (reasoning, content) of `pieces` fed in order, summed.
    fn feed(pieces: &[&str]) -> (String, String) {
        let mut splitter = ThinkSplitter::new();
        let (mut reasoning, mut content) = (String::new(), String::new());
        for piece in pieces {
            let split = splitter.push(piece);
            reasoning.push_str(&split.reasoning);
            content.push_str(&split.content);
        }
        let rest = splitter.finish();
        reasoning.push_str(&rest.reasoning);
        content.push_str(&rest.content);
        (reasoning, content)
    }

    fn pair(reasoning: &str, content: &str) -> (String, String) {
        (reasoning.to_owned(), content.to_owned())
    }

    #[test]
    fn whole_texts_split_like_ollamas_parser() {
        let cases = [
            ("<think>Hmm.</think>Yes", ("Hmm.", "Yes")),
            (
                "\n<think>\n  17*23 = 391\n</think>\n\n391",
                ("17*23 = 391\n", "391"),
            ),
            ("No tags here", ("", "No tags here")),
            ("  Leading space kept", ("", "  Leading space kept")),
            (
                "Text <think>inside</think> stays",
                ("", "Text <think>inside</think> stays"),
            ),
            ("<think>never closed", ("never closed", "")),
            ("<think></think>", ("", "")),
            (
                "<thinking>other tag</thinking>",
                ("", "<thinking>other tag</thinking>"),
            ),
            ("<thi", ("", "<thi")),
            ("   ", ("", "   ")),
            ("", ("", "")),
            ("<think>a</think>b</think>c", ("a", "b</think>c")),
            ("<think>x</thi", ("x</thi", "")),
        ];
        for (text, (reasoning, content)) in cases {
            assert_eq!(feed(&[text]), pair(reasoning, content), "{text:?}");
            let (whole_reasoning, whole_content) = split_whole(text);
            assert_eq!(
                (whole_reasoning.as_ref(), whole_content.as_ref()),
                (reasoning, content),
                "{text:?}"
            );
        }
    }

    #[test]
    fn every_split_of_a_stream_gives_the_same_text() {
        for text in [
            " \n<think>\nLet me see: é.</think>\n\nAnswer </think> é",
            "<think>a</thinkX</think>b",
            "<thinker>",
            "plain text",
        ] {
            let whole = feed(&[text]);
            let boundaries: Vec<usize> = (0..=text.len())
                .filter(|&at| text.is_char_boundary(at))
                .collect();
            for &first in &boundaries {
                for &second in boundaries.iter().filter(|&&at| at >= first) {
                    let pieces = [&text[..first], &text[first..second], &text[second..]];
                    assert_eq!(feed(&pieces), whole, "{pieces:?}");
                }
            }
            let singles: Vec<&str> = boundaries
                .windows(2)
                .map(|pair| &text[pair[0]..pair[1]])
                .collect();
            assert_eq!(feed(&singles), whole, "one character at a time: {text:?}");
        }
    }

    #[test]
    fn only_possible_tags_are_held_back() {
        let mut splitter = ThinkSplitter::new();
        assert_eq!(splitter.push(" <th"), Split::default());
        let split = splitter.push("ink>Plan");
        assert_eq!((&*split.reasoning, &*split.content), ("Plan", ""));
        // A trailing `</` may start the closing tag: held; the rest goes out at once.
        let split = splitter.push(" more </");
        assert_eq!(&*split.reasoning, " more ");
        let split = splitter.push("b> done</think> Out");
        assert_eq!((&*split.reasoning, &*split.content), ("</b> done", "Out"));
        // After the block, pieces are passed through borrowed.
        let piece = String::from(" and on");
        let split = splitter.push(&piece);
        assert!(matches!(split.content, Cow::Borrowed(" and on")));
        assert_eq!(splitter.finish(), Split::default());
        assert_eq!(partial_tag_at_end("abc</thi", CLOSE), 5);
        assert_eq!(partial_tag_at_end("abc", CLOSE), 0);
        assert_eq!(partial_tag_at_end("</think>", CLOSE), 0);
    }
}
