//! Cookieless identity: without consent the tracker sends no device id, and
//! the visitor is a keyed hash of (daily salt, project, IP, user agent). The
//! salt is random, lives in KV and changes every UTC day, so yesterday's
//! hashes cannot be linked to today's and the IP cannot be recovered.

use crate::hash::framed;

/// Prefix that marks a cookieless id, so reports can tell them apart.
pub const COOKIELESS_PREFIX: &str = "cl-";

/// KV key of the salt for one UTC day (`YYYY-MM-DD`).
pub fn salt_key(day: &str) -> String {
    format!("salt:{day}")
}

pub fn cookieless_id(salt: &str, project: &str, ip: &str, user_agent: &str) -> String {
    // 32 hex characters fit the id limits and the insert_id alphabet.
    format!("{COOKIELESS_PREFIX}{}", framed(&[salt, project, ip, user_agent], 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Visitor ids already stored must not change: a known id, computed
    /// outside Rust.
    #[test]
    fn a_known_id_is_pinned() {
        assert_eq!(
            cookieless_id("salt-1", "demo", "203.0.113.9", "UA"),
            "cl-21f9899a3758521729946996983900bb"
        );
    }

    #[test]
    fn same_inputs_same_id_any_change_another() {
        let id = cookieless_id("salt-1", "demo", "203.0.113.9", "UA");
        assert_eq!(id, cookieless_id("salt-1", "demo", "203.0.113.9", "UA"));
        assert!(id.starts_with(COOKIELESS_PREFIX));
        assert!(!id.contains("203.0.113.9"));
        assert_ne!(id, cookieless_id("salt-2", "demo", "203.0.113.9", "UA"));
        assert_ne!(id, cookieless_id("salt-1", "demo2", "203.0.113.9", "UA"));
        assert_ne!(id, cookieless_id("salt-1", "demo", "203.0.113.8", "UA"));
        assert_ne!(id, cookieless_id("salt-1", "demo", "203.0.113.9", "UA2"));
        assert_eq!(salt_key("2026-11-23"), "salt:2026-11-23");
    }
}
