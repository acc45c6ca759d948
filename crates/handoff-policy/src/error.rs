//! The crate's two error types: a request that cannot be evaluated
//! ([`PolicyError`]) and a pack or test file that cannot be read
//! ([`PackError`]). A deny is a [`crate::Decision`], never an error; problems
//! inside a pack are [`crate::Diagnostic`]s.

use crate::pack::{MAX_PACK_BYTES, MAX_PACK_FILES};
use crate::value::{
    MAX_GATHERED_ENTITIES, MAX_PROPERTY_DEPTH, MAX_REQUEST_BYTES, MAX_REQUEST_VALUES,
};

/// Why a request could not be evaluated at all. Callers answer it with
/// `decision: false` and the message in the response context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// An AuthZEN `type` that is not a valid Cedar entity type name.
    #[error("invalid entity type \"{0}\"")]
    InvalidType(String),
    /// An identity id whose `<kind>:` prefix contradicts its type.
    #[error("id \"{id}\" does not match type \"{kind}\"")]
    InvalidId {
        /// The AuthZEN type.
        kind: String,
        /// The id as given.
        id: String,
    },
    /// An action name that is not a valid Cedar action.
    #[error("invalid action name \"{0}\"")]
    InvalidAction(String),
    /// Properties or context nest too deep.
    #[error("{0} nest deeper than {MAX_PROPERTY_DEPTH} levels")]
    TooDeep(&'static str),
    /// Properties and context together are too large.
    #[error(
        "request properties and context are too large: at most {MAX_REQUEST_VALUES} values and {MAX_REQUEST_BYTES} bytes of text"
    )]
    TooLarge,
    /// A value in properties or context that Cedar cannot hold.
    #[error("invalid value in {part}: {message}")]
    InvalidValue {
        /// Where the value was (`context`, `subject properties`, …).
        part: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A chain longer than [`crate::MAX_HOPS`].
    #[error("a chain of {0} hops is longer than the limit of {max}", max = crate::MAX_HOPS)]
    TooManyHops(usize),
    /// The entities a request reaches exceed [`crate::MAX_GATHERED_ENTITIES`].
    #[error("the request reaches more than {MAX_GATHERED_ENTITIES} entities")]
    TooManyEntities,
    /// Cedar refused the request or its entities (for example a cycle in
    /// entity parents introduced by request properties).
    #[error("cannot evaluate the request: {0}")]
    Evaluation(String),
}

/// Why a pack directory or a tests file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A file or directory could not be read.
    #[error("cannot read \"{path}\": {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A pack file is not UTF-8.
    #[error("\"{0}\" is not utf-8 text")]
    NotUtf8(String),
    /// The pack is larger than [`crate::MAX_PACK_BYTES`].
    #[error("the pack is larger than {MAX_PACK_BYTES} bytes")]
    TooLarge,
    /// The pack has more than [`crate::MAX_PACK_FILES`] files.
    #[error("the pack has more than {MAX_PACK_FILES} files")]
    TooManyFiles,
    /// `tests.json` is malformed.
    #[error("tests.json:{line}:{column}: {message}")]
    Tests {
        /// 1-based line.
        line: u32,
        /// 1-based column.
        column: u32,
        /// What is wrong.
        message: String,
    },
}

pub(crate) use handoff_core::identity::shorten;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_input_is_shortened_in_messages() {
        let err = PolicyError::InvalidType(shorten(&"x".repeat(500)));
        assert!(err.to_string().len() < 100, "{err}");
        let short = shorten(&"é".repeat(100));
        assert!(short.ends_with('…'));
        assert!(short.len() <= 64 + '…'.len_utf8());
    }

    #[test]
    fn messages_are_lowercase_without_trailing_period() {
        let msgs = [
            PolicyError::TooLarge.to_string(),
            PolicyError::TooManyHops(40).to_string(),
            PackError::TooLarge.to_string(),
            PackError::NotUtf8("a.cedar".into()).to_string(),
        ];
        for m in msgs {
            assert!(m.chars().next().is_some_and(|c| !c.is_uppercase()), "{m}");
            assert!(!m.ends_with('.'), "{m}");
        }
    }
}
