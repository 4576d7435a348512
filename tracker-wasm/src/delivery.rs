//! Getting events to the server: batches, fetch or beacon, retries with
//! backoff, and the backlog kept in localStorage across page loads.
//!
//! Finished events (JSON objects with their insert_id) gather in one open
//! batch, which leaves [`FLUSH_DELAY_MS`] after its first event, or at once
//! when it holds [`MAX_BATCH_EVENTS`] or another event would take it past
//! [`MAX_BATCH_BYTES`], or when the page is hidden or left.
//!
//! Every batch that leaves joins the backlog, and stays there until a
//! `fetch` answers for it: 2xx delivered, 4xx refused for good (never
//! resent), 429, 5xx and network errors retried after an exponential
//! backoff. The backlog goes one body at a time, oldest first, by `fetch`
//! with `keepalive` (one body of at most [`MAX_BATCH_BYTES`] always fits the
//! browser's 64 KB keepalive budget, so it survives the page closing too),
//! text/plain either way, so no CORS preflight.
//!
//! When the page is hidden or left, each body not sent yet gets one
//! `sendBeacon`, but stays in the backlog: a beacon's `true` only means
//! "queued", and one sent offline is lost without a word. If the page stays
//! (a tab switch), a fetch confirms those bodies a backoff later; if it goes,
//! the next page load sends them again from localStorage. The insert_ids make
//! the second copy harmless: the server stores each event once.
//!
//! The backlog is bounded ([`MAX_UNSENT_BATCHES`], [`MAX_UNSENT_BYTES`]) and
//! kept in localStorage only when consent allows.

use crate::host::Host;
use crate::json::quote;
use crate::text::{self, add};
use alloc::string::String;

/// How long a new event waits for company before its batch leaves.
pub const FLUSH_DELAY_MS: f64 = 1000.0;
/// Events in one batch (the server's `MAX_BROWSER_BATCH_EVENTS`).
pub const MAX_BATCH_EVENTS: usize = 50;
/// Bytes a browser lets keepalive requests (fetch keepalive and beacons)
/// have in flight at once.
pub const KEEPALIVE_BUDGET_BYTES: usize = 64 * 1024;
/// Bytes in one batch body: one body alone always fits the budget.
pub const MAX_BATCH_BYTES: usize = 60 * 1024;
/// Bytes in one event; larger ones are dropped when made.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Batches in the backlog, in memory and in localStorage (each holds at
/// most [`MAX_BATCH_EVENTS`] events); a full backlog takes no more.
pub const MAX_UNSENT_BATCHES: usize = 8;
/// Bytes of the backlog (localStorage has 5 MB per origin, shared with the
/// site).
pub const MAX_UNSENT_BYTES: usize = 64 * 1024;
/// The first retry waits this long; each failure in a row doubles it.
pub const RETRY_BASE_MS: f64 = 2_000.0;
/// The longest wait between retries: five minutes.
pub const RETRY_MAX_MS: f64 = 5.0 * 60.0 * 1000.0;
/// localStorage key of the backlog: batch bodies, one per line.
pub const QUEUE_KEY: &str = "et_q";

/// What a fetch's status means for its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The server refused the batch; sending it again would not help.
    Refused,
    Retry,
}

pub fn outcome(status: u32) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        429 => Outcome::Retry,
        400..=499 => Outcome::Refused,
        // 0 (network error, CORS failure), 5xx and anything unexpected.
        _ => Outcome::Retry,
    }
}

/// The wait before retrying after `failures` failures in a row, with up to
/// a quarter more chosen by `random` so that many pages do not retry in step.
pub fn backoff_ms(failures: u32, random: u32) -> f64 {
    let doublings = failures.saturating_sub(1).min(16);
    let wait = (RETRY_BASE_MS * f64::from(1u32 << doublings)).min(RETRY_MAX_MS);
    wait + wait * f64::from(random % 1024) / 4096.0
}

/// `{"t":token,"e":[events]}`
pub fn body(token: &str, events: &str) -> String {
    let mut body = String::with_capacity(events.len() + token.len() + 16);
    add(&mut body, "{\"t\":");
    quote(&mut body, token);
    add(&mut body, ",\"e\":[");
    add(&mut body, events);
    add(&mut body, "]}");
    body
}

/// A stored backlog that looks like ours: bodies, within the limits.
fn is_body(lines: &str) -> bool {
    lines.len() <= MAX_UNSENT_BYTES && lines.starts_with("{\"t\":") && lines.ends_with("]}")
}

/// How [`Delivery::flush`] treats the open batch and the backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// From the timer: only what is due.
    Due,
    /// Now (an outbound click): the open batch at once.
    Now,
    /// The page is going away: everything, by beacon.
    Hiding,
}

#[derive(Debug)]
pub struct Delivery {
    endpoint: String,
    token: String,
    /// The open batch: events joined by commas.
    open: String,
    open_events: usize,
    /// When the open batch leaves.
    flush_at: f64,
    /// The backlog: bodies, oldest first, one per line (as stored).
    unsent: String,
    /// The id of the fetch carrying the backlog's first body (0: none).
    flight: u32,
    /// The backlog's first bodies that this page already beaconed (or had
    /// in flight) when hidden: a second hide event does not send them again.
    beaconed: usize,
    /// Failed fetches in a row.
    failures: u32,
    /// When the backlog may be tried again.
    retry_at: f64,
    /// Consent allows localStorage.
    persist: bool,
    /// Our key is in localStorage.
    saved: bool,
}

impl Delivery {
    pub const fn new(endpoint: String, token: String) -> Delivery {
        Delivery {
            endpoint,
            token,
            open: String::new(),
            open_events: 0,
            flush_at: 0.0,
            unsent: String::new(),
            flight: 0,
            beaconed: 0,
            failures: 0,
            retry_at: 0.0,
            persist: false,
            saved: false,
        }
    }

    /// Takes a finished event. An event over [`MAX_EVENT_BYTES`] is dropped
    /// (false).
    pub fn push(&mut self, host: &impl Host, event: &str) -> bool {
        if event.len() > MAX_EVENT_BYTES {
            return false;
        }
        if self.open.len() + event.len() + self.token.len() + 16 > MAX_BATCH_BYTES {
            self.flush(host, Flush::Now);
        }
        if self.open_events > 0 {
            add(&mut self.open, ",");
        } else {
            self.flush_at = host.now() + FLUSH_DELAY_MS;
        }
        add(&mut self.open, event);
        self.open_events += 1;
        let mode = if self.open_events >= MAX_BATCH_EVENTS {
            Flush::Now
        } else {
            Flush::Due
        };
        self.flush(host, mode);
        true
    }

    /// Sends what `mode` says is due and sets the timer for the rest.
    pub fn flush(&mut self, host: &impl Host, mode: Flush) {
        let now = host.now();
        let hiding = mode == Flush::Hiding;
        if self.open_events > 0 && (mode != Flush::Due || now >= self.flush_at) {
            let body = body(&self.token, &self.open);
            self.open.clear();
            self.open_events = 0;
            // A full backlog takes no more; a page going away still gives
            // the batch its one beacon.
            if !self.queue(&body) && hiding {
                host.beacon(&self.endpoint, &body);
            }
        }
        if hiding {
            // One beacon for each body not beaconed yet (but the one a fetch
            // carries now); all stay in the backlog until a fetch confirms
            // them (see the module docs), and that fetch waits a backoff so
            // that a page going away does not send each body twice at once.
            let mut taken = true;
            for (i, line) in text::split(&self.unsent, b'\n').enumerate().skip(self.beaconed) {
                if !line.is_empty() && (i > 0 || self.flight == 0) {
                    taken &= host.beacon(&self.endpoint, line);
                }
            }
            self.beaconed = text::lines(&self.unsent);
            if taken {
                self.retry_at = self.retry_at.max(now + RETRY_BASE_MS);
            }
        }
        self.save(host);
        // The backlog's next body, unless one is in flight or waiting out
        // a backoff.
        let first = text::before(&self.unsent, b'\n');
        if self.flight == 0 && !first.is_empty() && now >= self.retry_at {
            self.flight = (host.random() | 1) & 0x7fff_ffff;
            host.post(
                &self.endpoint,
                first,
                first.len() <= KEEPALIVE_BUDGET_BYTES,
                self.flight,
            );
        }
        let mut due = if self.open_events > 0 {
            self.flush_at
        } else {
            f64::INFINITY
        };
        if self.flight == 0 && !self.unsent.is_empty() {
            due = due.min(self.retry_at);
        }
        if due.is_finite() {
            host.wake((due - now).max(0.0));
        }
    }

    /// A body for the backlog, unless it is full (false).
    fn queue(&mut self, body: &str) -> bool {
        let room = text::lines(&self.unsent) < MAX_UNSENT_BATCHES && self.unsent.len() + body.len() < MAX_UNSENT_BYTES;
        if room {
            append(&mut self.unsent, body);
        }
        room
    }

    /// The backlog's fetch answered (`status` 0: it failed).
    pub fn done(&mut self, host: &impl Host, id: u32, status: u32) {
        if id != self.flight || id == 0 {
            return;
        }
        self.flight = 0;
        if outcome(status) == Outcome::Retry {
            self.failures = self.failures.saturating_add(1);
            self.retry_at = host.now() + backoff_ms(self.failures, host.random());
        } else {
            if status < 300 {
                self.failures = 0;
            }
            self.unsent = String::from(text::after(&self.unsent, b'\n'));
            self.beaconed = self.beaconed.saturating_sub(1);
        }
        self.flush(host, Flush::Due);
    }

    /// Writes the backlog to localStorage when consent allows ("" removes
    /// the key).
    fn save(&mut self, host: &impl Host) {
        if self.persist && (self.saved || !self.unsent.is_empty()) {
            host.store(QUEUE_KEY, &self.unsent);
            self.saved = !self.unsent.is_empty();
        }
    }

    /// Consent allows storage: from now on the backlog is kept, and the one
    /// an earlier page left is sent again.
    pub fn keep(&mut self, host: &impl Host) {
        if !self.persist {
            self.persist = true;
            // Lines that are not bodies would be refused by the server (and
            // then dropped): a cheap look at the whole is enough here.
            let stored = host.load(QUEUE_KEY);
            if is_body(&stored) {
                append(&mut self.unsent, &stored);
            }
            self.flush(host, Flush::Due);
        }
    }

    /// No storage any more (consent withdrawn or opt-out): the stored
    /// backlog is removed; what is in memory still goes.
    pub fn forget(&mut self, host: &impl Host) {
        self.persist = false;
        self.saved = false;
        host.store(QUEUE_KEY, "");
    }

    /// Drops every event not sent yet (opt-out).
    pub fn clear(&mut self) {
        self.open.clear();
        self.open_events = 0;
        self.unsent.clear();
        self.beaconed = 0;
        // An answer still to come is for a body no longer here.
        self.flight = 0;
    }

    #[cfg(test)]
    pub fn waiting(&self) -> (usize, usize, bool) {
        let unsent = if self.unsent.is_empty() {
            0
        } else {
            self.unsent.split('\n').count()
        };
        (self.open_events, unsent, self.flight != 0)
    }
}

/// Adds a line to newline-separated text.
fn append(lines: &mut String, line: &str) {
    if !lines.is_empty() {
        add(lines, "\n");
    }
    add(lines, line);
}

#[cfg(test)]
mod tests;
