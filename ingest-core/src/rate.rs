//! Per-project rate budgets, one for the public token and one for the
//! secret key, so browsers cannot spend what servers need.
//!
//! Cloudflare's rate-limiting binding has one fixed `limit` per binding, so
//! a budget that each project sets for itself is built from slots: a budget
//! of N requests per period is N / [`RATE_LIMIT_SLOT_REQUESTS`] keys of the
//! binding, and each request is counted in one slot chosen at random, or in
//! a second, different one when the first is full. Requests are refused once
//! both choices are full, which with two choices happens when nearly the
//! whole budget is spent.

use crate::auth::KeyKind;
use crate::limits::{DEFAULT_PUBLIC_RATE_LIMIT, DEFAULT_SECRET_RATE_LIMIT, RATE_LIMIT_SLOT_REQUESTS};

/// A project's budgets: requests per period and Cloudflare location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub public: u32,
    pub secret: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            public: DEFAULT_PUBLIC_RATE_LIMIT,
            secret: DEFAULT_SECRET_RATE_LIMIT,
        }
    }
}

impl RateLimits {
    pub fn for_kind(&self, kind: KeyKind) -> u32 {
        match kind {
            KeyKind::Public => self.public,
            // The viewer key reads what the secret reads, from its budget.
            KeyKind::Secret | KeyKind::Viewer => self.secret,
        }
    }
}

/// Slots of a budget (the configuration only takes multiples of a slot).
pub fn slots(budget: u32) -> u32 {
    budget.div_ceil(RATE_LIMIT_SLOT_REQUESTS).max(1)
}

/// The limiter key of one slot of a project's budget for a kind of key.
pub fn slot_key(project: &str, kind: KeyKind, slot: u32) -> String {
    let kind = match kind {
        KeyKind::Public => "public",
        KeyKind::Secret => "secret",
        KeyKind::Viewer => "viewer",
    };
    format!("project:{project}:{kind}:{slot}")
}

/// The slots a request tries, in order: one from `first` (a uniform random
/// number in [0, 1)), then a different one from `second` when there are two
/// or more.
pub fn choices(slots: u32, first: f64, second: f64) -> (u32, Option<u32>) {
    let pick = |r: f64, n: u32| ((r.clamp(0.0, 1.0) * f64::from(n)) as u32).min(n.saturating_sub(1));
    let one = pick(first, slots);
    if slots < 2 {
        return (one, None);
    }
    // Any slot but `one`, evenly: a pick among the other slots - 1, shifted
    // past `one`.
    let other = pick(second, slots - 1);
    (one, Some(if other >= one { other + 1 } else { other }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_become_slots() {
        assert_eq!(slots(RATE_LIMIT_SLOT_REQUESTS), 1);
        assert_eq!(slots(RATE_LIMIT_SLOT_REQUESTS + 1), 2);
        assert_eq!(slots(DEFAULT_PUBLIC_RATE_LIMIT), 30);
        assert_eq!(slots(0), 1);
        assert_eq!(
            RateLimits::default().for_kind(KeyKind::Secret),
            DEFAULT_SECRET_RATE_LIMIT
        );
    }

    #[test]
    fn public_and_secret_budgets_never_share_a_key() {
        assert_eq!(slot_key("demo", KeyKind::Public, 3), "project:demo:public:3");
        assert_ne!(
            slot_key("demo", KeyKind::Public, 0),
            slot_key("demo", KeyKind::Secret, 0)
        );
    }

    #[test]
    fn two_different_slots_within_range() {
        assert_eq!(choices(1, 0.99, 0.5), (0, None));
        assert_eq!(choices(2, 0.0, 0.0), (0, Some(1)));
        assert_eq!(choices(2, 0.99, 0.99), (1, Some(0)));
        for n in [2u32, 3, 30, 10_000] {
            for i in 0..200 {
                let (a, b) = (f64::from(i) / 200.0, f64::from((i * 37) % 200) / 200.0);
                let (one, two) = choices(n, a, b);
                let two = two.expect("a second choice");
                assert!(one < n && two < n && one != two, "{n}: {one} {two}");
            }
            // The largest random number still lands inside.
            assert_eq!(choices(n, 1.0, 1.0).0, n - 1);
        }
        // Every slot is reachable as a second choice.
        let seconds: std::collections::BTreeSet<u32> = (0..300)
            .filter_map(|i| choices(3, 0.5, f64::from(i) / 300.0).1)
            .collect();
        assert_eq!(seconds.into_iter().collect::<Vec<_>>(), [0, 2]);
    }
}
