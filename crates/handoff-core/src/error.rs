//! The error every validating constructor in the core returns.

/// Input that breaks a domain rule. The message is safe to show to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// Which field or rule was broken (`id`, `owner`, `attributes`, ...).
    pub field: &'static str,
    /// A lowercase message, user input quoted.
    pub message: String,
}

impl Invalid {
    /// A new error about `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
