//! An in-memory [`Host`] for tests: a settable clock, a cookie jar that
//! understands `Max-Age=0`, localStorage as a map, and a record of every
//! beacon, fetch and timer the tracker asked for.

use crate::host::{Host, Read};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// A page's `beforeSend` hook, as a test writes it.
type Hook = Box<dyn Fn(&str) -> String>;

pub struct Fake {
    now: Cell<f64>,
    seed: Cell<u32>,
    reads: RefCell<BTreeMap<u32, String>>,
    jar: RefCell<BTreeMap<String, String>>,
    cookie_log: RefCell<Vec<String>>,
    storage: RefCell<BTreeMap<String, String>>,
    storage_touched: Cell<usize>,
    /// Keys read from localStorage, in order.
    loaded: RefCell<Vec<String>>,
    beacon_ok: Cell<bool>,
    beacons: RefCell<Vec<(String, String)>>,
    posts: RefCell<Vec<(String, String, bool, u32)>>,
    /// Every body sent, by beacon or fetch, in the order they left.
    sends: RefCell<Vec<String>>,
    wakes: RefCell<Vec<f64>>,
    /// The page's `beforeSend` hook, if a test set one.
    hook: RefCell<Option<Hook>>,
}

impl Fake {
    pub fn new() -> Fake {
        let fake = Fake {
            now: Cell::new(1_700_000_000_000.0),
            seed: Cell::new(0x9e37_79b9),
            reads: RefCell::default(),
            jar: RefCell::default(),
            cookie_log: RefCell::default(),
            storage: RefCell::default(),
            storage_touched: Cell::new(0),
            loaded: RefCell::default(),
            beacon_ok: Cell::new(true),
            beacons: RefCell::default(),
            posts: RefCell::default(),
            sends: RefCell::default(),
            wakes: RefCell::default(),
            hook: RefCell::default(),
        };
        fake.set_read(Read::Href, "https://site.test/");
        fake.set_read(Read::Host, "site.test");
        fake.set_read(Read::Title, "Home");
        fake.set_read(Read::Screen, "1280x720");
        fake.set_read(
            Read::Agent,
            "mozilla/5.0 (x11; linux x86_64) chrome/130.0.0.0 safari/537.36,chromium",
        );
        fake
    }

    pub fn set_hook(&self, hook: impl Fn(&str) -> String + 'static) {
        *self.hook.borrow_mut() = Some(Box::new(hook));
    }
    pub fn set_read(&self, what: Read, value: &str) {
        self.reads.borrow_mut().insert(what as u32, value.into());
    }
    pub fn advance(&self, ms: f64) {
        self.now.set(self.now.get() + ms);
    }
    pub fn refuse_beacons(&self) {
        self.beacon_ok.set(false);
    }
    pub fn accept_beacons(&self) {
        self.beacon_ok.set(true);
    }
    pub fn beacons(&self) -> Vec<(String, String)> {
        self.beacons.borrow().clone()
    }
    pub fn posts(&self) -> Vec<(String, String, bool, u32)> {
        self.posts.borrow().clone()
    }
    /// Every body sent, by beacon or fetch, in the order they left.
    pub fn bodies(&self) -> Vec<String> {
        self.sends.borrow().clone()
    }
    pub fn last_wake(&self) -> Option<f64> {
        self.wakes.borrow().last().copied()
    }
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.borrow().get(name).cloned()
    }
    pub fn last_cookie(&self) -> String {
        self.cookie_log.borrow().last().cloned().unwrap_or_default()
    }
    pub fn cookie_writes(&self) -> usize {
        self.cookie_log.borrow().len()
    }
    pub fn stored(&self, key: &str) -> Option<String> {
        self.storage.borrow().get(key).cloned()
    }
    pub fn set_stored(&self, key: &str, value: &str) {
        self.storage.borrow_mut().insert(key.into(), value.into());
    }
    /// Reads and writes of localStorage and the cookie so far.
    pub fn storage_touched(&self) -> usize {
        self.storage_touched.get() + self.cookie_log.borrow().len()
    }
    /// Keys read from localStorage so far.
    pub fn loaded(&self) -> Vec<String> {
        self.loaded.borrow().clone()
    }
    /// Writes of localStorage and the cookie so far.
    pub fn writes(&self) -> usize {
        self.storage_touched.get() - self.loaded.borrow().len() + self.cookie_log.borrow().len()
    }
}

impl Host for Fake {
    fn now(&self) -> f64 {
        self.now.get()
    }
    fn random(&self) -> u32 {
        // xorshift32: distinct values, repeatable runs.
        let mut x = self.seed.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed.set(x);
        x
    }
    fn read(&self, what: Read) -> String {
        if what == Read::Cookie {
            let jar = self.jar.borrow();
            return jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
        }
        self.reads.borrow().get(&(what as u32)).cloned().unwrap_or_default()
    }
    fn load(&self, key: &str) -> String {
        self.storage_touched.set(self.storage_touched.get() + 1);
        self.loaded.borrow_mut().push(key.into());
        self.storage.borrow().get(key).cloned().unwrap_or_default()
    }
    fn store(&self, key: &str, value: &str) {
        self.storage_touched.set(self.storage_touched.get() + 1);
        if value.is_empty() {
            self.storage.borrow_mut().remove(key);
        } else {
            self.storage.borrow_mut().insert(key.into(), value.into());
        }
    }
    fn set_cookie(&self, cookie: &str) {
        self.cookie_log.borrow_mut().push(cookie.into());
        let mut parts = cookie.split("; ");
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        if parts.any(|p| p == "Max-Age=0") {
            self.jar.borrow_mut().remove(name);
        } else {
            self.jar.borrow_mut().insert(name.into(), value.into());
        }
    }
    fn beacon(&self, url: &str, body: &str) -> bool {
        if self.beacon_ok.get() {
            self.beacons.borrow_mut().push((url.into(), body.into()));
            self.sends.borrow_mut().push(body.into());
        }
        self.beacon_ok.get()
    }
    fn post(&self, url: &str, body: &str, keepalive: bool, id: u32) {
        self.posts.borrow_mut().push((url.into(), body.into(), keepalive, id));
        self.sends.borrow_mut().push(body.into());
    }
    fn wake(&self, ms: f64) {
        self.wakes.borrow_mut().push(ms);
    }
    fn hook(&self, event: &str) -> String {
        match &*self.hook.borrow() {
            Some(hook) => hook(event),
            None => event.into(),
        }
    }
}
