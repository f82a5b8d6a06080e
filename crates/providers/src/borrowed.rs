//! Pieces for parsing upstream payloads without allocating: [`Str`], a string borrowed from
//! the received bytes unless it holds escapes, and [`InlineFirst`], an array whose first
//! element needs no heap allocation.
//!
//! serde borrows a `Cow<str>` only when it is a field's whole type (`#[serde(borrow)]` then
//! picks the borrowing deserializer); inside an `Option` (or any other wrapper) the `Cow` is
//! always owned, which costs an allocation per string. Stream events are parsed into structs
//! whose string fields are `Option<Str>`, so a text event allocates nothing for its text.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

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

/// A JSON array with its first element stored inline: a stream event's array of one (Gemini's
/// one candidate with its one part) is read without a heap allocation, which a `Vec` would
/// cost per array.
#[derive(Debug)]
pub struct InlineFirst<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for InlineFirst<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> InlineFirst<T> {
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(&self.rest)
    }

    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for InlineFirst<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(InlineFirstVisitor(PhantomData))
    }
}

struct InlineFirstVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for InlineFirstVisitor<T> {
    type Value = InlineFirst<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut elements: A) -> Result<Self::Value, A::Error> {
        let mut array = InlineFirst {
            first: elements.next_element()?,
            rest: Vec::new(),
        };
        if array.first.is_some() {
            while let Some(element) = elements.next_element()? {
                array.rest.push(element);
            }
        }
        Ok(array)
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

    #[test]
    fn arrays_of_any_length_keep_their_order() {
        for json in ["[]", "[1]", "[1,2]", "[1,2,3]"] {
            let expected: Vec<u32> = serde_json::from_str(json).unwrap();
            let array: InlineFirst<u32> = serde_json::from_str(json).unwrap();
            assert_eq!(array.iter().copied().collect::<Vec<_>>(), expected);
            assert_eq!(array.len(), expected.len());
            assert_eq!(array.is_empty(), expected.is_empty());
        }
        assert!(serde_json::from_str::<InlineFirst<u32>>("{}").is_err());
        assert!(serde_json::from_str::<InlineFirst<u32>>("[1,\"x\"]").is_err());
    }
}
