//! Size limits on pack sources, checked before Cedar sees them.
//!
//! Cedar's parser, validator and evaluator recurse over the policy tree; a
//! policy nested a few hundred brackets deep, or a chain of thousands of
//! `&&`, overflows a 2 MiB thread stack (a tokio worker's) — at upload or,
//! worse, at every evaluation. So each policy may nest brackets at most
//! [`MAX_NESTING`] deep and hold at most [`MAX_OPERATORS`] operators (which
//! bounds the depth of operator chains), and schema text and JSON files may
//! nest at most [`MAX_NESTING`] deep. Real policies stay far below both.

use crate::diagnostic::Diagnostic;

/// Deepest bracket nesting in a policy or a schema.
pub(crate) const MAX_NESTING: usize = 16;
/// Most operators in one policy (`&&`, `==`, `.`, `in`, `if`, …).
pub(crate) const MAX_OPERATORS: usize = 128;

/// Word operators of the Cedar policy language.
const WORD_OPERATORS: [&str; 5] = ["in", "has", "like", "is", "if"];

/// Checks one policy file: nesting and operators per policy.
pub(crate) fn check_policies(file: &str, text: &str) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut depth = 0usize;
    let mut operators = 0usize;
    let mut reported = false;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let mut report = |diags: &mut Vec<Diagnostic>, message: String| {
            if !reported {
                diags.push(Diagnostic::at(file, text, i, message));
                reported = true;
            }
        };
        match c {
            '"' => skip_string(&mut chars),
            '/' if chars.peek().is_some_and(|(_, n)| *n == '/') => skip_line(&mut chars),
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    report(
                        &mut diags,
                        format!("brackets nest deeper than {MAX_NESTING} levels"),
                    );
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ';' if depth == 0 => {
                operators = 0;
                reported = false;
            }
            '&' | '|' | '=' | '!' | '<' | '>' | '+' | '-' | '*' | '.' => {
                // Two-character operators count once.
                if let Some((_, next)) = chars.peek()
                    && matches!(
                        (c, *next),
                        ('&', '&') | ('|', '|') | ('=', '=') | ('!', '=') | ('<', '=') | ('>', '=')
                    )
                {
                    chars.next();
                }
                operators += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = i + c.len_utf8();
                while let Some((j, n)) = chars.peek() {
                    if n.is_ascii_alphanumeric() || *n == '_' {
                        end = j + n.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                if WORD_OPERATORS.contains(&text.get(i..end).unwrap_or_default()) {
                    operators += 1;
                }
            }
            _ => {}
        }
        if operators > MAX_OPERATORS {
            let message = format!(
                "a policy has more than {MAX_OPERATORS} operators: split it, or use a set and `contains`"
            );
            if !reported {
                diags.push(Diagnostic::at(file, text, i, message));
                reported = true;
            }
        }
    }
    diags
}

/// Checks schema text: bracket nesting (`{`, `<`, `[`, `(`).
pub(crate) fn check_schema_text(file: &str, text: &str) -> Option<Diagnostic> {
    let mut depth = 0usize;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => skip_string(&mut chars),
            '/' if chars.peek().is_some_and(|(_, n)| *n == '/') => skip_line(&mut chars),
            '{' | '<' | '[' | '(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(Diagnostic::at(
                        file,
                        text,
                        i,
                        format!("types nest deeper than {MAX_NESTING} levels"),
                    ));
                }
            }
            '}' | '>' | ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Depth of a JSON value, computed without recursion.
pub(crate) fn json_depth(value: &serde_json::Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    max
}

fn skip_string(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) {
    let mut escaped = false;
    for (_, c) in chars.by_ref() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return,
            _ => {}
        }
    }
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) {
    for (_, c) in chars.by_ref() {
        if c == '\n' {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_policies_pass() {
        let text = "// a (comment [ with { brackets\n@id(\"x\") permit(principal in Team::\"a\", action, resource)\nwhen { (principal.a.b == \"(((\" && [1, [2]].contains(1)) || resource has x };";
        assert!(check_policies("p.cedar", text).is_empty());
    }

    #[test]
    fn deep_nesting_is_located() {
        let text = format!(
            "permit(principal, action, resource)\nwhen {{ {}true{} }};",
            "(".repeat(20),
            ")".repeat(20)
        );
        let d = check_policies("p.cedar", &text);
        assert_eq!(d.len(), 1);
        // `{` of `when` is level 1, so the 16th `(` is the 17th level.
        assert_eq!((d[0].line, d[0].column), (2, 7 + MAX_NESTING as u32));
        assert!(d[0].message.contains("nest deeper"));
    }

    #[test]
    fn operators_are_counted_per_policy() {
        let chain = vec!["true"; MAX_OPERATORS].join(" && ");
        let ok = format!("permit(principal, action, resource) when {{ {chain} }};\n").repeat(3);
        assert!(
            check_policies("p.cedar", &ok).is_empty(),
            "each policy has its own budget"
        );
        let long =
            format!("permit(principal, action, resource) when {{ {chain} && true && true }};");
        let d = check_policies("p.cedar", &long);
        assert_eq!(d.len(), 1);
        assert!(
            d[0].message
                .contains(&format!("more than {MAX_OPERATORS} operators")),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn schemas_and_json_are_bounded() {
        let deep = format!(
            "entity X = {{ x: {}String{} }};",
            "{ a: ".repeat(20),
            " }".repeat(20)
        );
        assert!(check_schema_text("schema.cedarschema", &deep).is_some());
        assert!(check_schema_text("s", "entity X = { a: Set<{ b: Long }> };").is_none());
        assert_eq!(json_depth(&serde_json::json!([{"a": [1]}])), 4);
        assert_eq!(json_depth(&serde_json::json!(1)), 1);
    }
}
