//! Cursor pagination shared by every list.

use crate::Invalid;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 500;
/// Longest cursor on the wire, in hex digits.
pub const MAX_CURSOR_LEN: usize = 1024;

/// A validated page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    /// Validates 1..=500; `None` means the default.
    pub fn new(n: Option<u32>) -> Result<Self, Invalid> {
        match n {
            None => Ok(Self(DEFAULT_LIMIT)),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Self(n)),
            Some(_) => Err(Invalid::new(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The size.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(DEFAULT_LIMIT)
    }
}

/// An opaque position in a list: the sort key of the last item returned.
/// Clients see it hex-encoded; it is not a secret, only opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// The cursor after `key`.
    pub fn after(key: &str) -> Self {
        Self(key.to_owned())
    }

    /// The key to continue after.
    pub fn key(&self) -> &str {
        &self.0
    }

    /// The wire form.
    pub fn encode(&self) -> String {
        self.0.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the wire form: lowercase hex, as [`Cursor::encode`] writes it,
    /// of at most [`MAX_CURSOR_LEN`] digits, spelling UTF-8.
    pub fn decode(s: &str) -> Result<Self, Invalid> {
        let bad = || Invalid::new("cursor", "invalid cursor");
        // `from_str_radix` alone would also take a sign (`+f`) and uppercase.
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if !s.len().is_multiple_of(2) || s.len() > MAX_CURSOR_LEN || !s.bytes().all(lower_hex) {
            return Err(bad());
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| {
                s.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<u8>, Invalid>>()?;
        String::from_utf8(bytes).map(Self).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor::after("agent:bot");
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("zz").is_err());
        assert!(Cursor::decode("abc").is_err());
        assert!(Cursor::decode("ff").is_err());
        assert!(
            Cursor::decode("4A").is_err(),
            "uppercase is not the wire form"
        );
        assert!(Cursor::decode("+6").is_err(), "a sign is not a hex digit");
        assert!(Cursor::decode(&"61".repeat(MAX_CURSOR_LEN / 2)).is_ok());
        assert!(Cursor::decode(&"61".repeat(MAX_CURSOR_LEN / 2 + 1)).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(Limit::new(None).unwrap().get(), DEFAULT_LIMIT);
        assert!(Limit::new(Some(0)).is_err());
        assert!(Limit::new(Some(MAX_LIMIT + 1)).is_err());
    }
}
