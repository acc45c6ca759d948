//! Scopes and audiences: the two sets a delegation narrows at every hop.
//!
//! A scope is a set of RFC 6749 §3.3 scope tokens. A token is an action
//! (`read`), an action on a resource type (`doc:read`) or either with a `*`
//! suffix that matches every token starting with what precedes it
//! (`doc:*`, `*`). An audience is a set of resource server identifiers
//! (RFC 8693 `audience` and `resource`); the empty set means "not
//! restricted". Neither knows about tokens or storage.

use crate::Invalid;
use crate::identity::shorten;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Most tokens in one scope.
pub const MAX_SCOPE_TOKENS: usize = 64;
/// Longest scope token, in bytes.
pub const MAX_SCOPE_TOKEN_LEN: usize = 128;
/// Most entries in one audience.
pub const MAX_AUDIENCE_ENTRIES: usize = 16;
/// Longest audience entry, in bytes.
pub const MAX_AUDIENCE_LEN: usize = 512;

/// A set of scope tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Parses a space-separated scope (RFC 6749 §3.3: `scope-token = 1*NQCHAR`,
    /// `NQCHAR = %x21 / %x23-5B / %x5D-7E`). A `*` may only end a token.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let mut tokens = BTreeSet::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            let valid_chars = token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid_chars || token.len() > MAX_SCOPE_TOKEN_LEN {
                return Err(Invalid::new(
                    "scope",
                    format!(
                        "invalid scope token \"{}\": 1 to {MAX_SCOPE_TOKEN_LEN} printable ascii characters without quotes or backslashes",
                        shorten(token)
                    ),
                ));
            }
            if token.trim_end_matches('*').contains('*') || token.ends_with("**") {
                return Err(Invalid::new(
                    "scope",
                    format!(
                        "invalid scope token \"{}\": \"*\" may only end a token",
                        shorten(token)
                    ),
                ));
            }
            tokens.insert(token.to_owned());
        }
        if tokens.len() > MAX_SCOPE_TOKENS {
            return Err(Invalid::new(
                "scope",
                format!("a scope holds at most {MAX_SCOPE_TOKENS} tokens"),
            ));
        }
        Ok(Self(tokens))
    }

    /// Whether the scope holds no token (it allows nothing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens, sorted.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether `token` (which may itself end in `*`) is covered by one of
    /// this scope's tokens: an equal token; a wildcard whose prefix starts
    /// it; or a bare action (`read`, `re*`: no `:`) matching the action part
    /// of a typed token (`Doc:read`), since a bare action allows that action
    /// on every resource type.
    pub fn covers(&self, token: &str) -> bool {
        let action = token.split_once(':').map(|(_, a)| a);
        self.0.iter().any(|mine| {
            let bare = !mine.contains(':');
            match mine.strip_suffix('*') {
                Some(prefix) => {
                    token.starts_with(prefix)
                        || (bare && action.is_some_and(|a| a.starts_with(prefix)))
                }
                None => mine == token || (bare && action == Some(mine.as_str())),
            }
        })
    }

    /// Checks that every token of `self` is covered by `parent`; the error
    /// names the first token that is not.
    pub fn within(&self, parent: &Self) -> Result<(), String> {
        match self.0.iter().find(|t| !parent.covers(t)) {
            Some(t) => Err(t.clone()),
            None => Ok(()),
        }
    }

    /// Whether this scope allows `action` on a resource of type
    /// `resource_type`: the token `action` or `<resource_type>:<action>`.
    pub fn allows(&self, resource_type: &str, action: &str) -> bool {
        self.covers(action) || self.covers(&format!("{resource_type}:{action}"))
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for t in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
            first = false;
        }
        Ok(())
    }
}

impl TryFrom<String> for Scope {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> Self {
        s.to_string()
    }
}

/// The resource servers a delegation may be presented to; empty means any.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Audience(BTreeSet<String>);

impl Audience {
    /// An audience from its entries: each 1 to 512 bytes of printable ASCII
    /// without spaces.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, Invalid> {
        let mut set = BTreeSet::new();
        for entry in entries {
            let entry = entry.as_ref();
            let ok = !entry.is_empty()
                && entry.len() <= MAX_AUDIENCE_LEN
                && entry.bytes().all(|b| (0x21..=0x7e).contains(&b));
            if !ok {
                return Err(Invalid::new(
                    "audience",
                    format!(
                        "invalid audience \"{}\": 1 to {MAX_AUDIENCE_LEN} printable ascii characters without spaces",
                        shorten(entry)
                    ),
                ));
            }
            set.insert(entry.to_owned());
        }
        if set.len() > MAX_AUDIENCE_ENTRIES {
            return Err(Invalid::new(
                "audience",
                format!("an audience holds at most {MAX_AUDIENCE_ENTRIES} entries"),
            ));
        }
        Ok(Self(set))
    }

    /// Not restricted: any resource server.
    pub fn any() -> Self {
        Self(BTreeSet::new())
    }

    /// Whether it is unrestricted.
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries, sorted (none when unrestricted).
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether a token for this audience may be presented to `server`.
    pub fn admits(&self, server: &str) -> bool {
        self.is_any() || self.0.contains(server)
    }

    /// Checks that `self` is no wider than `parent`; the error names the
    /// first entry outside it (or `*` when `self` is unrestricted and the
    /// parent is not).
    pub fn within(&self, parent: &Self) -> Result<(), String> {
        if parent.is_any() {
            return Ok(());
        }
        if self.is_any() {
            return Err("*".to_owned());
        }
        match self.0.iter().find(|a| !parent.0.contains(*a)) {
            Some(a) => Err(a.clone()),
            None => Ok(()),
        }
    }
}

impl TryFrom<Vec<String>> for Audience {
    type Error = Invalid;
    fn try_from(v: Vec<String>) -> Result<Self, Invalid> {
        Self::parse(&v)
    }
}

impl From<Audience> for Vec<String> {
    fn from(a: Audience) -> Self {
        a.0.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }

    #[test]
    fn scopes_parse_as_sets_of_rfc6749_tokens() {
        assert_eq!(scope("b a  a").to_string(), "a b");
        assert!(scope("").is_empty());
        for bad in ["a\"b", "a\\b", "é", "a*b", "a**", "*x"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        let long = "a".repeat(MAX_SCOPE_TOKEN_LEN + 1);
        assert!(Scope::parse(&long).is_err());
        let many: Vec<String> = (0..=MAX_SCOPE_TOKENS).map(|i| format!("t{i}")).collect();
        assert!(Scope::parse(&many.join(" ")).is_err());
    }

    #[test]
    fn wildcards_cover_prefixes_including_narrower_wildcards() {
        let parent = scope("doc:* read");
        assert!(parent.covers("doc:write"));
        assert!(parent.covers("doc:*"));
        assert!(parent.covers("doc:w*"));
        assert!(!parent.covers("*"));
        assert!(!parent.covers("do*"));
        assert!(!parent.covers("write"));
        assert_eq!(scope("doc:read read").within(&parent), Ok(()));
        assert_eq!(scope("read write").within(&parent), Err("write".into()));
        assert!(scope("*").covers("anything"));
    }

    #[test]
    fn a_bare_action_covers_it_on_every_resource_type() {
        let parent = scope("read re*");
        assert_eq!(scope("Doc:read").within(&parent), Ok(()));
        assert_eq!(scope("Doc:rename Doc:re*").within(&parent), Ok(()));
        assert_eq!(scope("Doc:write").within(&parent), Err("Doc:write".into()));
        assert_eq!(scope("Doc:*").within(&parent), Err("Doc:*".into()));
        assert_eq!(scope("read").within(&scope("Doc:read")), Err("read".into()));
    }

    proptest::proptest! {
        /// Narrowing is sound: whatever a child scope allows, its parent allows.
        #[test]
        fn a_scope_within_its_parent_allows_nothing_more(
            parent in proptest::sample::subsequence(POOL.to_vec(), 0..5),
            child in proptest::sample::subsequence(POOL.to_vec(), 0..5),
        ) {
            let parent = scope(&parent.join(" "));
            let child = scope(&child.join(" "));
            if child.within(&parent).is_ok() {
                for ty in ["Doc", "ticket", "x"] {
                    for action in ["read", "rename", "write", "close", "r"] {
                        proptest::prop_assert!(!child.allows(ty, action) || parent.allows(ty, action));
                    }
                }
            }
        }
    }

    const POOL: [&str; 12] = [
        "read",
        "re*",
        "r*",
        "*",
        "write",
        "Doc:read",
        "Doc:*",
        "Doc:re*",
        "D*",
        "ticket:close",
        "x:*",
        "close",
    ];

    #[test]
    fn allows_matches_bare_and_typed_actions() {
        let s = scope("read ticket:close");
        assert!(s.allows("Doc", "read"));
        assert!(s.allows("ticket", "close"));
        assert!(!s.allows("order", "close"));
    }

    #[test]
    fn audiences_narrow_and_empty_means_any() {
        let any = Audience::any();
        let a = Audience::parse(&["https://a"]).unwrap();
        let ab = Audience::parse(&["https://a", "https://b"]).unwrap();
        assert_eq!(a.within(&ab), Ok(()));
        assert_eq!(ab.within(&a), Err("https://b".into()));
        assert_eq!(any.within(&a), Err("*".into()));
        assert_eq!(a.within(&any), Ok(()));
        assert!(any.admits("x") && a.admits("https://a") && !a.admits("https://b"));
        assert!(Audience::parse(&["has space"]).is_err());
        assert!(Audience::parse(&[""]).is_err());
    }
}
