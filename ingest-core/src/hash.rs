//! The keyed hashes whose output is stored: dedup keys, the cookieless
//! visitor id, the CRM's business ids and visit ids. Each is SHA-256 over a
//! list of parts, every part prefixed with its length so that no two
//! different lists hash alike, cut to a number of bytes and written as
//! lowercase hex.
//!
//! Two framings exist because both are already in stored keys: dedup keys
//! write each length as decimal text and `:` ([`text_framed`]); the rest
//! write it as 8 little-endian bytes ([`framed`]). Changing either would
//! change every key stored with it (a resent event would no longer match
//! its first copy), so the tests pin one known output of each.
//!
//! Not an HMAC: the secret, where there is one (the visitor's daily salt),
//! is the first part.

use sha2::{Digest, Sha256};

/// SHA-256 of `parts`, each after its length as a little-endian `u64`, as
/// `bytes` bytes of hex (at most 32).
pub fn framed(parts: &[&str], bytes: usize) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize()[..bytes])
}

/// SHA-256 of `parts`, each after its length in decimal and `:` (the dedup
/// key's framing), as `bytes` bytes of hex (at most 32).
pub fn text_framed(parts: &[&str], bytes: usize) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.len().to_string().as_bytes());
        hasher.update(b":");
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize()[..bytes])
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known outputs, computed outside Rust (Python's hashlib over the same
    // framing): a change here changes keys already stored.
    #[test]
    fn framings_are_pinned() {
        assert_eq!(
            framed(&["salt-1", "demo", "203.0.113.9", "UA"], 16),
            "21f9899a3758521729946996983900bb"
        );
        assert_eq!(
            framed(&["cl-abc", "1700000000000", "ins-1"], 12),
            "0aa9e216126b7fd9a1b48a7c"
        );
        assert_eq!(
            text_framed(&["business-v1", "Order Confirmed", "ins-1"], 16),
            "308ecb494767e990bba9535d811a41ea"
        );
    }

    #[test]
    fn lengths_keep_part_lists_apart() {
        assert_ne!(framed(&["ab", "c"], 16), framed(&["a", "bc"], 16));
        assert_ne!(text_framed(&["ab", "c"], 16), text_framed(&["a", "bc"], 16));
        assert_eq!(hex(&[0x00, 0x0f, 0xa5]), "000fa5");
    }
}
