//! [`ErrorDetail`], the payload of every error: its message and its kind.

use std::fmt;

use super::*;

/// The payload of every [`StateStoreError`] variant: its message (password removed) and
/// its [`ErrorKind`].
///
/// It reads as the message: it displays as it, derefs to `str` and compares with
/// strings, and a `String` or `&str` turns into one (`StateStoreError::Other("...".into())`),
/// with no kind of its own: [`StateStoreError::kind`] then gives the variant's usual
/// kind. Two details are equal when their messages are.
#[derive(Clone)]
pub struct ErrorDetail {
    message: String,
    kind: Option<ErrorKind>,
}

impl ErrorDetail {
    /// A detail of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: Some(kind),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The kind it was made with; `None` for one made from a message alone.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.kind
    }

    /// The message, owned.
    pub fn into_message(self) -> String {
        self.message
    }

    /// The same kind, with its message rewritten by `reword` (what is wrong, said with
    /// more context).
    pub(crate) fn reworded(self, reword: impl FnOnce(&str) -> String) -> Self {
        Self {
            message: reword(&self.message),
            kind: self.kind,
        }
    }
}

impl fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// As the message alone, the way a `String` payload printed.
impl fmt::Debug for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}

impl std::ops::Deref for ErrorDetail {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl AsRef<str> for ErrorDetail {
    fn as_ref(&self) -> &str {
        &self.message
    }
}

impl PartialEq for ErrorDetail {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for ErrorDetail {}

impl std::hash::Hash for ErrorDetail {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.message.hash(state);
    }
}

impl PartialEq<str> for ErrorDetail {
    fn eq(&self, other: &str) -> bool {
        self.message == other
    }
}

impl PartialEq<&str> for ErrorDetail {
    fn eq(&self, other: &&str) -> bool {
        self.message == *other
    }
}

impl PartialEq<String> for ErrorDetail {
    fn eq(&self, other: &String) -> bool {
        &self.message == other
    }
}

impl PartialEq<ErrorDetail> for str {
    fn eq(&self, other: &ErrorDetail) -> bool {
        self == other.message
    }
}

impl PartialEq<ErrorDetail> for &str {
    fn eq(&self, other: &ErrorDetail) -> bool {
        *self == other.message
    }
}

impl PartialEq<ErrorDetail> for String {
    fn eq(&self, other: &ErrorDetail) -> bool {
        *self == other.message
    }
}

impl From<String> for ErrorDetail {
    fn from(message: String) -> Self {
        Self {
            message,
            kind: None,
        }
    }
}

impl From<&str> for ErrorDetail {
    fn from(message: &str) -> Self {
        Self::from(message.to_owned())
    }
}

impl From<ErrorDetail> for String {
    fn from(detail: ErrorDetail) -> Self {
        detail.message
    }
}
