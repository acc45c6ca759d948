//! Diagnostics: one problem in a pack with its file, 1-based line and column
//! (counted in characters) and a lowercase message, plus the helpers that
//! turn Cedar's `miette` source spans, serde_json and toml positions into them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One problem in a pack, precise enough to jump to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The pack file, as named in [`crate::PackFiles`].
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// What is wrong, lowercase.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl Diagnostic {
    /// A diagnostic at byte `offset` of `text`.
    pub(crate) fn at(file: &str, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_column(text, offset);
        Self {
            file: file.to_owned(),
            line,
            column,
            message: lowercase_first(message.into()),
        }
    }

    /// A diagnostic at a 1-based line and column.
    pub(crate) fn at_line(
        file: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_owned(),
            line: u32::try_from(line.max(1)).unwrap_or(u32::MAX),
            column: u32::try_from(column.max(1)).unwrap_or(u32::MAX),
            message: lowercase_first(message.into()),
        }
    }

    /// A diagnostic for a Cedar error: placed at its first labelled span in
    /// `text` (which must be the text Cedar parsed), else at the first
    /// quoted name of the message found in `text`, else at 1:1.
    pub(crate) fn from_cedar(file: &str, text: &str, err: &dyn miette::Diagnostic) -> Self {
        let message = describe(err);
        let offset = first_label(err).or_else(|| find_quoted_name(text, &message));
        Self::at(file, text, offset.unwrap_or(0), message)
    }
}

/// A diagnostic for a Cedar error whose span may point into one of several
/// texts (the built-in and the operator's schema fragment): the file is the
/// one whose text at the span is what Cedar's source shows there.
pub(crate) fn from_cedar_in(
    candidates: &[(&str, &str)],
    err: &dyn miette::Diagnostic,
) -> Diagnostic {
    let label = err.labels().and_then(|mut l| l.next());
    if let (Some(label), Some(source)) = (label, err.source_code())
        && let Ok(contents) = source.read_span(label.inner(), 0, 0)
    {
        let (start, end) = (label.offset(), label.offset() + label.len());
        let data = contents.data();
        for (file, text) in candidates {
            if text.as_bytes().get(start..end) == Some(data) {
                return Diagnostic::from_cedar(file, text, err);
            }
        }
    }
    let (file, text) = candidates.first().copied().unwrap_or_default();
    Diagnostic::from_cedar(file, text, err)
}

/// 1-based line and character column of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// Byte offset of the first labelled span of a Cedar error.
pub(crate) fn first_label(err: &dyn miette::Diagnostic) -> Option<usize> {
    let mut labels = err.labels()?;
    let first = labels.next()?;
    Some(first.offset())
}

/// The message of a Cedar error: its text, its first label, the causes it
/// wraps and its help, joined into one lowercase line.
pub(crate) fn describe(err: &dyn miette::Diagnostic) -> String {
    let mut message = err.to_string();
    let label = err
        .labels()
        .and_then(|mut l| l.next())
        .and_then(|l| l.label().map(str::to_owned));
    if let Some(label) = label {
        message = format!("{message}: {label}");
    }
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    if let Some(related) = err.related() {
        for rel in related {
            let text = rel.to_string();
            if !message.contains(&text) {
                message = format!("{message}; {text}");
            }
        }
    }
    if let Some(help) = err.help() {
        message = format!("{message} ({help})");
    }
    lowercase_first(message.replace('\n', " "))
}

/// Lowercases the first character, unless the first word is a type name
/// in CamelCase or an acronym (kept as written).
pub(crate) fn lowercase_first(message: String) -> String {
    let first_word = message.split_whitespace().next().unwrap_or_default();
    let keep = first_word.chars().skip(1).any(char::is_uppercase);
    let mut chars = message.chars();
    match chars.next() {
        Some(c) if c.is_uppercase() && !keep => c.to_lowercase().chain(chars).collect(),
        _ => message,
    }
}

/// Finds the first name quoted in backticks or double quotes in `message`
/// as a JSON or Cedar string (`"name"`) in `text`, for errors Cedar reports
/// without a source span (JSON schemas, entities).
pub(crate) fn find_quoted_name(text: &str, message: &str) -> Option<usize> {
    for delim in ['`', '"'] {
        for name in message.split(delim).skip(1).step_by(2) {
            let name = name.trim_matches('"');
            if name.is_empty() {
                continue;
            }
            if let Some(i) = text.find(&format!("\"{name}\"")) {
                return Some(i);
            }
            if let Some(i) = text.find(name) {
                return Some(i);
            }
        }
    }
    None
}

/// Byte offsets of the top-level elements of a JSON array in `text`
/// (serde_json's `Value` keeps no positions). `text` must be valid JSON.
pub(crate) fn array_element_offsets(text: &str) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut expect_element = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if expect_element && depth == 1 && c != ']' {
            offsets.push(i);
            expect_element = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 && c == '[' {
                    expect_element = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expect_element = true,
            _ => {}
        }
    }
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "ab\nçd\nef";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(
            line_column(text, 5),
            (2, 2),
            "ç is one character of two bytes"
        );
        assert_eq!(
            line_column(text, 4),
            (2, 1),
            "inside a character rounds down"
        );
        assert_eq!(line_column(text, 999), (3, 3));
    }

    #[test]
    fn array_offsets_skip_nested_values_and_strings() {
        let text = "[\n  {\"a\": [1, 2], \"s\": \"x,]\\\"\"},\n  {\"b\": {}} ]";
        let offsets = array_element_offsets(text);
        assert_eq!(offsets.len(), 2);
        assert_eq!(&text[offsets[0]..offsets[0] + 1], "{");
        assert_eq!(line_column(text, offsets[1]), (3, 3));
        assert!(array_element_offsets("[]").is_empty());
    }

    #[test]
    fn messages_are_lowercased_unless_they_start_with_a_type_name() {
        assert_eq!(
            lowercase_first("Unexpected token".into()),
            "unexpected token"
        );
        assert_eq!(
            lowercase_first("Human is reserved".into()),
            "human is reserved"
        );
        assert_eq!(
            lowercase_first("EntityUID is bad".into()),
            "EntityUID is bad"
        );
    }

    #[test]
    fn quoted_names_are_found_in_text() {
        let text = "{\n  \"entityTypes\": {\"User\": {}}\n}";
        let at = find_quoted_name(text, "unknown type `User`").unwrap();
        assert_eq!(line_column(text, at), (2, 19));
        assert_eq!(find_quoted_name(text, "no names here"), None);
    }
}
