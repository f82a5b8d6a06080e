//! [`Str`]: a string of a parsed upstream payload, borrowed from the received bytes unless it
//! holds escapes.
//!
//! serde borrows a `Cow<str>` only when it is a field's whole type (`#[serde(borrow)]` then
//! picks the borrowing deserializer); inside an `Option` (or any other wrapper) the `Cow` is
//! always owned, which costs an allocation per string. Stream events are parsed into structs
//! whose string fields are `Option<Str>`, so a text event allocates nothing for its text.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::Deserialize;

/// A borrowed-when-possible string field of an upstream payload; reads as a `&str`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

impl Deref for Str<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Str<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, formatter)
    }
}

impl<'a> Str<'a> {
    /// The string as the `Cow` it was read into, to keep it borrowed past the struct.
    pub fn into_cow(self) -> Cow<'a, str> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Fields<'a> {
        #[serde(default, borrow)]
        plain: Option<Str<'a>>,
        #[serde(default, borrow)]
        escaped: Option<Str<'a>>,
        #[serde(default, borrow)]
        absent: Option<Str<'a>>,
    }

    #[test]
    fn optional_strings_are_borrowed_unless_escaped() {
        let fields: Fields<'_> =
            serde_json::from_str(r#"{"plain": "hello", "escaped": "a\nb"}"#).unwrap();
        let plain = fields.plain.unwrap();
        assert!(matches!(plain.0, Cow::Borrowed("hello")));
        let escaped = fields.escaped.unwrap();
        assert!(matches!(escaped.0, Cow::Owned(_)));
        assert_eq!(&*escaped, "a\nb");
        assert!(fields.absent.is_none());
    }
}
