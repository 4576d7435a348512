//! The tracker's state machine: settings, consent, identity and page state,
//! turning page events and commands into finished events for [`Delivery`].
//!
//! An event is written when it happens (name, insert_id, time, page) and
//! finished when consent is known: with `d` (and `id`) under `granted`,
//! without any id under `denied`. Under `pending`, and while a prerendered
//! page is not shown, events wait in memory, unfinished. Each event gets its
//! insert_id once and is handed to delivery once, so a change of consent
//! never sends anything twice.

use crate::bots::{self, BotReason, Signals};
use crate::config::Config;
use crate::delivery::{Delivery, Flush};
use crate::host::{flag, Host, Read};
use crate::identity::{self, Consent, OPTOUT_KEY, USER_KEY};
use crate::json::{props_ok, quote, write_u64};
use crate::outbound::{self, Link};
use crate::pageview::{Nav, Pages};
use crate::text::{self, add};
use alloc::string::String;

/// The pageview event's name.
pub const PAGEVIEW: &str = "$pageview";
/// The outbound-link event's name; its `href` property is the target.
pub const OUTBOUND_LINK: &str = "$outbound_link";
/// Events waiting for consent or for a prerendered page to be shown.
pub const MAX_WAITING_EVENTS: usize = 100;
/// Characters in an event name (the server's `MAX_EVENT_NAME_CHARS`).
pub const MAX_EVENT_NAME_CHARS: usize = 255;
/// Bytes kept of a URL, referrer or title (the server allows 8192
/// characters, `MAX_STRING_CHARS`).
pub const MAX_TEXT_BYTES: usize = 8192;

/// The page's commands: `js/core.js` passes `edgetrack(name, ...)`'s name
/// as its index in this list, which it keeps in the same order.
pub const COMMANDS: [&str; 5] = ["track", "identify", "reset", "consent", "optout"];
const TRACK: u32 = 0;
const IDENTIFY: u32 = 1;
const RESET: u32 = 2;
const CONSENT: u32 = 3;
const OPTOUT: u32 = 4;

/// Why no event is recorded at all right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// `start` has not run, or the settings lack a token or endpoint.
    NotStarted,
    Bot(BotReason),
    /// Do-Not-Track or Global Privacy Control, with `data-respect-dnt`.
    DoNotTrack,
    OptedOut,
}

pub struct Tracker<H: Host> {
    pub host: H,
    cfg: Config,
    started: bool,
    consent: Consent,
    /// Automation found at start (or prerendering, until shown).
    bot: Option<BotReason>,
    /// Do-Not-Track or GPC, honoured.
    dnt: bool,
    optout: bool,
    /// `optout` was said in this page (it then wins over the stored flag).
    optout_said: bool,
    device: String,
    user: String,
    pages: Pages,
    /// Unfinished events (see the module docs), one per line.
    waiting: String,
    out: Delivery,
}

/// `text` cut to at most [`MAX_TEXT_BYTES`] bytes, on a character boundary.
fn cut(text: &str) -> &str {
    let mut end = MAX_TEXT_BYTES.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

impl<H: Host> Tracker<H> {
    pub const fn new(host: H) -> Tracker<H> {
        Tracker {
            host,
            cfg: Config::new(),
            started: false,
            consent: Consent::Pending,
            bot: None,
            dnt: false,
            optout: false,
            optout_said: false,
            device: String::new(),
            user: String::new(),
            pages: Pages::new(false),
            waiting: String::new(),
            out: Delivery::new(String::new(), String::new()),
        }
    }

    pub fn configure(&mut self, key: u32, value: &str) {
        if !self.started {
            self.cfg.set(key, value);
        }
    }

    pub fn start(&mut self) {
        let endpoint = self.cfg.endpoint();
        if self.started || self.cfg.token.is_empty() || endpoint.is_empty() {
            return;
        }
        self.started = true;
        self.out = Delivery::new(endpoint, self.cfg.token.clone());
        self.pages = Pages::new(self.cfg.hash);
        self.bot = bots::classify(&Signals::read(&self.host));
        self.dnt =
            self.cfg.respect_dnt && (flag(&self.host, Read::DoNotTrack) || flag(&self.host, Read::PrivacyControl));
        // A denied start touches nothing: a cookie from an earlier grant
        // stays until consent is withdrawn by command.
        self.consent = self.cfg.consent;
        self.apply();
    }

    /// Why events are dropped right now, if they are.
    pub fn ignored(&self) -> Option<Ignored> {
        match self.bot {
            _ if !self.started => Some(Ignored::NotStarted),
            Some(reason) if reason.is_final() => Some(Ignored::Bot(reason)),
            _ if self.dnt => Some(Ignored::DoNotTrack),
            _ if self.optout => Some(Ignored::OptedOut),
            _ => None,
        }
    }

    /// Storage is ours to use: consent, a shown page, not a bot, no DNT.
    fn may_store(&self) -> bool {
        self.consent == Consent::Granted && self.started && self.bot.is_none() && !self.dnt
    }

    /// Brings identity and storage in line with consent and opt-out, and
    /// finishes the waiting events once consent is known.
    fn apply(&mut self) {
        // Bots and DNT get nothing; a prerendered page waits to be shown.
        if self.bot.is_some() || self.dnt || self.consent == Consent::Pending {
            return;
        }
        // The visitor's own refusal is kept in every mode (see identity).
        if self.optout_said {
            self.host.store(OPTOUT_KEY, if self.optout { "1" } else { "" });
        } else {
            self.optout = self.host.load(OPTOUT_KEY) == "1";
        }
        if self.optout {
            self.waiting.clear();
            self.withdraw();
            return;
        }
        if self.may_store() {
            if self.user.is_empty() {
                let stored = self.host.load(USER_KEY);
                if identity::is_user_id(&stored) {
                    self.user = stored;
                }
            } else {
                self.host.store(USER_KEY, &self.user);
            }
            self.device = identity::device_id(&self.host, &self.cfg);
            self.out.keep(&self.host);
        }
        let waiting = core::mem::take(&mut self.waiting);
        for event in text::split(&waiting, b'\n') {
            if !event.is_empty() {
                self.finish(event);
            }
        }
    }

    /// Removes what consent allowed us to keep (the opt-out flag stays).
    fn withdraw(&mut self) {
        if self.may_store() {
            identity::write_device_cookie(&self.host, &self.cfg, "");
            self.host.store(USER_KEY, "");
            self.out.forget(&self.host);
        }
        self.device.clear();
    }

    /// A page command by number (see [`COMMANDS`]).
    pub fn command(&mut self, op: u32, arg: &str, props: &str) {
        if !self.started {
            return;
        }
        match op {
            TRACK => {
                self.record(arg, props, false);
            }
            IDENTIFY if identity::is_user_id(arg) => {
                self.user = String::from(arg);
                if self.may_store() && !self.optout {
                    self.host.store(USER_KEY, arg);
                }
            }
            RESET => {
                // A log-out: no user, and a new device from here on.
                self.user.clear();
                if self.may_store() && !self.optout {
                    self.host.store(USER_KEY, "");
                    self.device = identity::random_id(&self.host);
                    identity::write_device_cookie(&self.host, &self.cfg, &self.device);
                }
            }
            CONSENT => {
                if let Some(consent) = Consent::parse(arg).filter(|c| *c != self.consent) {
                    if consent == Consent::Denied {
                        self.withdraw();
                    }
                    self.consent = consent;
                    self.apply();
                }
            }
            OPTOUT => {
                self.optout = !matches!(arg, "false" | "0");
                self.optout_said = true;
                if self.optout {
                    self.out.clear();
                }
                self.apply();
            }
            _ => {}
        }
    }

    pub fn page(&mut self, code: u32) {
        let Some(nav) = Nav::from_code(code) else { return };
        if !self.started {
            return;
        }
        if nav == Nav::Hide {
            self.out.flush(&self.host, Flush::Hiding);
            return;
        }
        if nav == Nav::Activate && self.bot == Some(BotReason::Prerendered) {
            self.bot = bots::classify(&Signals::read(&self.host));
            self.apply();
        }
        let href = self.host.read(Read::Href);
        if self.pages.visit(nav, &href, self.bot == Some(BotReason::Prerendered)) && self.record(PAGEVIEW, "", true) {
            // A pageview leaves at once, with whatever waits in the open
            // batch: a visitor who leaves within a second is still counted.
            self.out.flush(&self.host, Flush::Now);
        }
    }

    /// A click on a link (parts as the browser parsed them).
    pub fn click(&mut self, href: &str, link: Link<'_>) {
        if !self.started || !outbound::is_outbound(link, &self.host.read(Read::Host), self.cfg.extras) {
            return;
        }
        let mut props = String::new();
        member(&mut props, "{\"href\":", href);
        add(&mut props, "}");
        if self.record(OUTBOUND_LINK, &props, false) {
            // The browser may be leaving: a beacon now, not after the delay.
            self.out.flush(&self.host, Flush::Now);
        }
    }

    pub fn tick(&mut self) {
        self.out.flush(&self.host, Flush::Due);
    }

    pub fn done(&mut self, id: u32, status: u32) {
        self.out.done(&self.host, id, status);
    }

    /// Writes an event and finishes it, or keeps it waiting; false when
    /// it is dropped ([`Tracker::ignored`], a bad name, too large, too many
    /// waiting). A pageview carries the page's referrer, title and screen.
    /// `props` is a JSON object or empty; one the server would refuse is
    /// left out.
    fn record(&mut self, name: &str, props: &str, pageview: bool) -> bool {
        if self.ignored().is_some() || name.is_empty() || text::chars(name) > MAX_EVENT_NAME_CHARS {
            return false;
        }
        let href = self.host.read(Read::Href);
        let mut event = String::new();
        member(&mut event, "{\"n\":", name);
        member(&mut event, ",\"i\":", &identity::random_id(&self.host));
        add(&mut event, ",\"ts\":");
        write_u64(&mut event, self.host.now() as u64);
        member(
            &mut event,
            ",\"u\":",
            if pageview {
                &self.pages.url
            } else {
                self.pages.report_url(&href)
            },
        );
        if pageview {
            member(&mut event, ",\"r\":", &self.host.read(Read::Referrer));
            member(&mut event, ",\"h\":", &self.host.read(Read::Title));
            member(&mut event, ",\"s\":", &self.host.read(Read::Screen));
        }
        if props_ok(props) {
            add(&mut event, ",\"p\":");
            add(&mut event, props);
        }
        if self.consent != Consent::Pending && self.bot.is_none() {
            return self.finish(&event);
        }
        // One line per event, after a leading newline.
        if text::lines(&self.waiting) > MAX_WAITING_EVENTS {
            return false;
        }
        add(&mut self.waiting, "\n");
        add(&mut self.waiting, &event);
        true
    }

    /// Adds the ids consent allows, closes the event and hands it over.
    fn finish(&mut self, open: &str) -> bool {
        let mut event = String::from(open);
        if self.consent == Consent::Granted {
            member(&mut event, ",\"d\":", &self.device);
            member(&mut event, ",\"id\":", &self.user);
        }
        add(&mut event, "}");
        self.out.push(&self.host, &event)
    }
}

/// Appends `prefix` and `value` as a JSON string, cut to [`MAX_TEXT_BYTES`];
/// nothing for an empty value (the server reads "" as absent anyway).
fn member(out: &mut String, prefix: &str, value: &str) {
    if !value.is_empty() {
        add(out, prefix);
        quote(out, cut(value));
    }
}

#[cfg(test)]
mod tests;
