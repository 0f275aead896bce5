//! Masking styles for column rules, and the keyed hash behind the `hash` style.

use std::str::FromStr;

use ring::hmac;

use super::MaskError;

/// Replacement for the `full` style, and for `last4` values too short to keep anything.
pub const FULL_MASK: &[u8] = b"****";
/// Prefix of `hash` output, so a hashed value is recognisable as one.
pub const HASH_PREFIX: &[u8] = b"hmac:";
/// Hex characters of the HMAC kept after [`HASH_PREFIX`] (64 bits: enough to join on).
pub const HASH_HEX_LEN: usize = 16;
/// Shortest hash key accepted.
pub const MIN_KEY_LEN: usize = 16;

/// How a column rule replaces a (non-NULL) value; NULL stays NULL under every style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaskStyle {
    /// `****`, whatever the value.
    Full,
    /// `****` followed by the last four characters; values of four characters or fewer become
    /// `****` (keeping all of them would be the clear value).
    Last4,
    /// `hmac:` and the first 16 hex digits of HMAC-SHA256 under the gateway's key: equal values
    /// give equal output, so joins and counts still work, but nothing is recoverable without
    /// the key.
    Hash,
    /// SQL NULL.
    Null,
}

impl FromStr for MaskStyle {
    type Err = MaskError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "last4" => Ok(Self::Last4),
            "hash" => Ok(Self::Hash),
            "null" => Ok(Self::Null),
            _ => Err(MaskError::UnknownStyle(s.to_string())),
        }
    }
}

/// The gateway's key for the `hash` style.
#[derive(Clone)]
pub struct HashKey(hmac::Key);

impl std::fmt::Debug for HashKey {
    // Key bytes must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(<redacted>)")
    }
}

impl HashKey {
    /// A key from secret bytes (at least [`MIN_KEY_LEN`]).
    pub fn new(secret: &[u8]) -> Result<Self, MaskError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(MaskError::KeyTooShort { min: MIN_KEY_LEN });
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }
}

/// What a style produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The value becomes SQL NULL; nothing was written.
    Null,
    /// The replacement was appended to the output.
    Value,
}

impl MaskStyle {
    /// Appends the masked form of `value` to `out` (or reports NULL). `key` is needed only by
    /// [`MaskStyle::Hash`]; without one the value is masked fully rather than passed.
    pub fn apply(self, key: Option<&HashKey>, value: &[u8], out: &mut Vec<u8>) -> Applied {
        match self {
            Self::Null => return Applied::Null,
            Self::Full => out.extend_from_slice(FULL_MASK),
            Self::Last4 => {
                out.extend_from_slice(FULL_MASK);
                out.extend_from_slice(last_four(value));
            }
            Self::Hash => match key {
                Some(key) => {
                    let tag = hmac::sign(&key.0, value);
                    out.extend_from_slice(HASH_PREFIX);
                    for b in tag.as_ref().iter().take(HASH_HEX_LEN / 2) {
                        out.extend_from_slice(&hex_byte(*b));
                    }
                }
                None => out.extend_from_slice(FULL_MASK),
            },
        }
        Applied::Value
    }
}

/// The last four characters, or nothing when the value has four or fewer. Characters are UTF-8
/// scalar values; a value that is not UTF-8 keeps its last four bytes only if they are ASCII.
fn last_four(value: &[u8]) -> &[u8] {
    let start = match std::str::from_utf8(value) {
        Ok(s) => s.char_indices().rev().nth(3).map(|(i, _)| i),
        Err(_) => value
            .len()
            .checked_sub(4)
            .filter(|&i| value.get(i..).is_some_and(|t| t.is_ascii())),
    };
    match start {
        // Four characters that are the whole value would be the value itself.
        Some(0) | None => &[],
        Some(i) => value.get(i..).unwrap_or_default(),
    }
}

fn hex_byte(b: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(style: MaskStyle, key: Option<&HashKey>, v: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        match style.apply(key, v, &mut out) {
            Applied::Null => None,
            Applied::Value => Some(out),
        }
    }

    #[test]
    fn style_names_parse_case_insensitively() {
        assert_eq!("FULL".parse(), Ok(MaskStyle::Full));
        assert_eq!("last4".parse(), Ok(MaskStyle::Last4));
        assert_eq!("Hash".parse(), Ok(MaskStyle::Hash));
        assert_eq!("null".parse(), Ok(MaskStyle::Null));
        assert_eq!(
            "last5".parse::<MaskStyle>(),
            Err(MaskError::UnknownStyle("last5".into()))
        );
    }

    #[test]
    fn full_and_null() {
        assert_eq!(run(MaskStyle::Full, None, b"secret").unwrap(), b"****");
        assert_eq!(run(MaskStyle::Full, None, b"").unwrap(), b"****");
        assert_eq!(run(MaskStyle::Null, None, b"secret"), None);
    }

    #[test]
    fn last4_keeps_four_characters_of_longer_values_only() {
        for (v, want) in [
            (&b"4111111111111234"[..], &b"****1234"[..]),
            (b"12345", b"****2345"),
            (b"1234", b"****"),
            (b"ab", b"****"),
            (b"", b"****"),
            (
                "caf\u{e9}s\u{fc}\u{df}".as_bytes(),
                "****\u{e9}s\u{fc}\u{df}".as_bytes(),
            ),
            (b"\xff\xfe\xfd\xfcabcd", b"****abcd"),
            (b"abcd\xff\xfe\xfd\xfc", b"****"),
        ] {
            assert_eq!(run(MaskStyle::Last4, None, v).unwrap(), want, "{v:?}");
        }
    }

    #[test]
    fn hash_is_stable_keyed_and_prefixed() {
        let k1 = HashKey::new(&[7; 32]).unwrap();
        let k2 = HashKey::new(&[8; 32]).unwrap();
        let a = run(MaskStyle::Hash, Some(&k1), b"ann@example.com").unwrap();
        assert_eq!(
            a,
            run(MaskStyle::Hash, Some(&k1), b"ann@example.com").unwrap()
        );
        assert_ne!(
            a,
            run(MaskStyle::Hash, Some(&k1), b"bob@example.com").unwrap()
        );
        assert_ne!(
            a,
            run(MaskStyle::Hash, Some(&k2), b"ann@example.com").unwrap()
        );
        assert_eq!(a.len(), HASH_PREFIX.len() + HASH_HEX_LEN);
        assert!(a.starts_with(HASH_PREFIX));
        assert!(a[HASH_PREFIX.len()..].iter().all(u8::is_ascii_hexdigit));
        assert_eq!(run(MaskStyle::Hash, None, b"x").unwrap(), b"****");
    }

    #[test]
    fn short_keys_are_rejected_and_keys_do_not_print() {
        assert_eq!(
            HashKey::new(&[1; 15]).unwrap_err(),
            MaskError::KeyTooShort { min: 16 }
        );
        let k = HashKey::new(b"0123456789abcdef-secret").unwrap();
        assert!(!format!("{k:?}").contains("secret"));
    }
}
