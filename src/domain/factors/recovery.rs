//! Recovery codes: ten, shown once, stored as SHA-256, each good for one sign-in.

use crate::crypto::{self, sha256};

/// How many a user is given at a time.
pub const COUNT: usize = 10;
/// RFC 4648's base32 alphabet, lowercase: 32 symbols, so a random byte maps to one
/// without bias, and no 0/O or 1/I/l to mistake.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new code: ten symbols (50 bits) as `xxxxx-xxxxx`.
pub fn new_code() -> String {
    let bytes = crypto::random::<10>();
    let chars: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// The digest stored for a code as typed: case, spaces and dashes do not count.
pub fn digest(typed: &str) -> [u8; 32] {
    let normal: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    sha256(normal.as_bytes())
}

/// Whether `typed` has the shape of a recovery code (rather than a TOTP code).
pub fn looks_like(typed: &str) -> bool {
    let n = typed.chars().filter(|c| c.is_ascii_alphanumeric()).count();
    n == 10 && typed.chars().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_typed_loosely() {
        let a = new_code();
        assert_eq!(a.len(), 11);
        assert_ne!(a, new_code());
        assert_eq!(digest(&a), digest(&a.to_uppercase().replace('-', " ")));
        assert!(looks_like("abcde-fgh23") && !looks_like("123456"));
    }
}
