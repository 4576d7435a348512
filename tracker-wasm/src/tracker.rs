//! The tracker's state machine: settings, consent, identity and page state,
//! turning page events and commands into finished events for [`Delivery`].
//!
//! An event is written when it happens (name, insert_id, time, page URL,
//! properties) and finished when consent is known: with `d` (and `id`) under
//! `granted`, without any id under `denied`. Under `pending`, and while a
//! prerendered page is not shown, events wait in memory, unfinished. Each
//! event gets its insert_id once and is handed to delivery once, so a change
//! of consent never sends anything twice. A finished event passes the page's
//! `beforeSend` hook on its way to delivery.
//!
//! Every event carries the URL of the page view it belongs to: the one the
//! last pageview counted (in manual mode, the one the page gave), or the
//! page's own before the first.

use crate::bots::{self, BotReason, Signals};
use crate::config::Config;
use crate::delivery::{Delivery, Flush};
use crate::engagement::Engagement;
use crate::host::{flag, Host, Read};
use crate::identity::{self, Consent, OPTOUT_KEY, USER_KEY};
use crate::json::{join, props_ok, quote, revenue, write_u64};
use crate::outbound::{self, Link};
use crate::pageview::{Nav, Pages};
use crate::site;
use crate::text::{self, add};
use alloc::string::String;

/// The pageview event's name.
pub const PAGEVIEW: &str = "$pageview";
/// Visible time and deepest scroll of a page view (see [`crate::engagement`]).
pub const ENGAGEMENT: &str = "$engagement";
/// A "not found" page (`data-404` or `edgetrack("404")`).
pub const NOT_FOUND: &str = "$404";
/// A form submission (`data-forms`); its `form` property names the form.
pub const FORM_SUBMIT: &str = "$form_submit";
/// Events waiting for consent or for a prerendered page to be shown.
pub const MAX_WAITING_EVENTS: usize = 100;
/// Characters in an event name (the server's `MAX_EVENT_NAME_CHARS`).
pub const MAX_EVENT_NAME_CHARS: usize = 255;
/// Bytes kept of a URL, referrer or title (the server allows 8192
/// characters, `MAX_STRING_CHARS`).
pub const MAX_TEXT_BYTES: usize = 8192;

/// The page's commands: `js/core.js` passes `edgetrack(name, ...)`'s name
/// as its index in this list, which it keeps in the same order.
pub const COMMANDS: [&str; 8] = [
    "track", "identify", "reset", "consent", "optout", "pageview", "props", "404",
];
const TRACK: u32 = 0;
const IDENTIFY: u32 = 1;
const RESET: u32 = 2;
const CONSENT: u32 = 3;
const OPTOUT: u32 = 4;
const PAGEVIEW_COMMAND: u32 = 5;
const PROPS: u32 = 6;
const NOT_FOUND_COMMAND: u32 = 7;

/// Why no event is recorded at all right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// `start` has not run, or the settings lack a token or endpoint.
    NotStarted,
    Bot(BotReason),
    /// Do-Not-Track or Global Privacy Control, with `data-respect-dnt`.
    DoNotTrack,
    OptedOut,
    /// A page on localhost, loopback or `file:`, without `data-local`.
    Local,
    /// A host that is not one of `data-domains`.
    OtherDomain,
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
    /// Not the site's page to count ([`Ignored::Local`], [`Ignored::OtherDomain`]).
    elsewhere: Option<Ignored>,
    /// `location.hostname`, read at start.
    hostname: String,
    optout: bool,
    /// `optout` was said in this page (it then wins over the stored flag).
    optout_said: bool,
    device: String,
    user: String,
    /// Properties on every event (`data-et-prop-*` and `props`): a JSON
    /// object, or empty.
    props: String,
    pages: Pages,
    engagement: Engagement,
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
            elsewhere: None,
            hostname: String::new(),
            optout: false,
            optout_said: false,
            device: String::new(),
            user: String::new(),
            props: String::new(),
            pages: Pages::new(false),
            engagement: Engagement::new(),
            waiting: String::new(),
            out: Delivery::new(String::new(), String::new()),
        }
    }

    /// The loader's settings text (see [`Config`]); none after start.
    pub fn configure(&mut self, lines: &str) {
        if !self.started {
            self.cfg.set(lines);
        }
    }

    pub fn start(&mut self) {
        let endpoint = self.cfg.endpoint();
        let token = self.cfg.text("token");
        if self.started || token.is_empty() || endpoint.is_empty() {
            return;
        }
        self.started = true;
        self.out = Delivery::new(endpoint, token.into());
        self.pages = Pages::new(self.cfg.has("spa", "hash"));
        self.bot = bots::classify(&Signals::read(&self.host));
        self.dnt = self.cfg.on("respect-dnt")
            && (flag(&self.host, Read::DoNotTrack) || flag(&self.host, Read::PrivacyControl));
        self.hostname = self.host.read(Read::Host);
        self.elsewhere = if !self.cfg.on("local") && site::is_local(&self.hostname) {
            Some(Ignored::Local)
        } else if cfg!(feature = "domains") && !site::is_ours(&self.hostname, self.cfg.text("domains")) {
            Some(Ignored::OtherDomain)
        } else {
            None
        };
        // A denied start touches nothing: a cookie from an earlier grant
        // stays until consent is withdrawn by command.
        self.consent = self.cfg.consent();
        self.apply();
    }

    /// Why events are dropped right now, if they are.
    pub fn ignored(&self) -> Option<Ignored> {
        match self.bot {
            _ if !self.started => Some(Ignored::NotStarted),
            Some(reason) if reason.is_final() => Some(Ignored::Bot(reason)),
            _ if self.dnt => Some(Ignored::DoNotTrack),
            _ if self.elsewhere.is_some() => self.elsewhere,
            _ if self.optout => Some(Ignored::OptedOut),
            _ => None,
        }
    }

    /// Storage is ours to use: consent, a shown page of the site, not a
    /// bot, no DNT.
    fn may_store(&self) -> bool {
        self.consent == Consent::Granted && self.started && self.bot.is_none() && !self.dnt && self.elsewhere.is_none()
    }

    /// Brings identity and storage in line with consent and opt-out, and
    /// finishes the waiting events once consent is known.
    fn apply(&mut self) {
        // Bots, DNT and other sites get nothing; a prerendered page waits
        // to be shown.
        if self.bot.is_some() || self.dnt || self.elsewhere.is_some() || self.consent == Consent::Pending {
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

    /// A page command by number (see [`COMMANDS`]). `arg` is its text (an
    /// event name, a user id, a mode, a URL), `props` a JSON object or
    /// empty; `amount` and `currency` are a `track`'s `$revenue`.
    pub fn command(&mut self, op: u32, arg: &str, props: &str, amount: &str, currency: &str) {
        if !self.started {
            return;
        }
        match op {
            TRACK => {
                let money = if cfg!(feature = "revenue") {
                    revenue(amount, currency).unwrap_or_default()
                } else {
                    String::new()
                };
                self.record(arg, &join(props, &money), false);
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
            PAGEVIEW_COMMAND if cfg!(feature = "manual") => {
                let url = if arg.is_empty() {
                    String::from(self.pages.report_url(&self.host.read(Read::Href)))
                } else {
                    String::from(arg)
                };
                self.view(url);
            }
            PROPS if cfg!(feature = "props") && props_ok(props) => self.props = String::from(props),
            NOT_FOUND_COMMAND if cfg!(feature = "not-found") => {
                self.record(NOT_FOUND, "", false);
            }
            _ => {}
        }
    }

    /// A page event ([`Nav`] code), with the viewport's bottom edge and the
    /// page's height in pixels (for the scroll depth).
    pub fn page(&mut self, code: u32, bottom: u32, height: u32) {
        let Some(nav) = Nav::from_code(code) else { return };
        if !self.started {
            return;
        }
        let now = self.host.now();
        let engagement = cfg!(feature = "engagement");
        match nav {
            Nav::Scroll | Nav::Show if !engagement => return,
            Nav::Scroll => return self.engagement.scrolled(bottom, height),
            Nav::Show => return self.engagement.shown(now),
            Nav::Hide => {
                if engagement {
                    self.engagement.scrolled(bottom, height);
                    self.engagement.hidden(now);
                    self.engage();
                }
                return self.out.flush(&self.host, Flush::Hiding);
            }
            Nav::Activate if engagement => self.engagement.shown(now),
            _ => {}
        }
        if nav == Nav::Activate && self.bot == Some(BotReason::Prerendered) {
            self.bot = bots::classify(&Signals::read(&self.host));
            self.apply();
        }
        if cfg!(feature = "not-found") && nav == Nav::Load && self.cfg.on("404") {
            self.record(NOT_FOUND, "", false);
        }
        if cfg!(feature = "manual") && self.cfg.on("manual") {
            return;
        }
        let href = self.host.read(Read::Href);
        if let Some(url) = self.pages.visit(nav, &href, self.bot == Some(BotReason::Prerendered)) {
            self.view(url);
        }
    }

    /// A new page view at `url`: the previous one's engagement is closed,
    /// and the pageview leaves at once, with whatever waits in the open
    /// batch (a visitor who leaves within a second is still counted).
    fn view(&mut self, url: String) {
        self.engage();
        self.pages.url = url;
        if cfg!(feature = "engagement") {
            self.engagement.start(self.host.now(), !flag(&self.host, Read::Hidden));
        }
        if self.record(PAGEVIEW, "", true) {
            self.out.flush(&self.host, Flush::Now);
        }
    }

    /// Records the current page view's `$engagement`, if there is one and
    /// it is worth sending.
    fn engage(&mut self) {
        if cfg!(feature = "engagement") && !self.pages.url.is_empty() {
            if let Some(props) = self.engagement.report(self.host.now()) {
                self.record(ENGAGEMENT, &props, false);
            }
        }
    }

    /// A click on a link (parts as the browser parsed them).
    pub fn click(&mut self, href: &str, link: Link<'_>) {
        if let Some(name) = outbound::event(link, &self.hostname, &self.cfg) {
            self.now(name, "{\"href\":", href);
        }
    }

    /// A form submission; `form` is its id, name or action.
    pub fn form(&mut self, form: &str) {
        if cfg!(feature = "forms") && self.cfg.on("forms") {
            self.now(FORM_SUBMIT, "{\"form\":", form);
        }
    }

    /// An event with one text property (`{"key":` in `key`), sent at once:
    /// the browser may be leaving the page.
    fn now(&mut self, name: &str, key: &str, value: &str) {
        let mut props = String::from(key);
        quote(&mut props, cut(value));
        add(&mut props, "}");
        if self.record(name, &props, false) {
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
    /// it is dropped ([`Tracker::ignored`], a path the site excludes, a bad
    /// name, too large, too many waiting). A pageview carries the page's
    /// referrer, title and screen. `props` (a JSON object or empty) joins
    /// the page-wide properties; properties the server would refuse are
    /// left out.
    fn record(&mut self, name: &str, props: &str, pageview: bool) -> bool {
        if self.ignored().is_some() || name.is_empty() || text::chars(name) > MAX_EVENT_NAME_CHARS {
            return false;
        }
        let href;
        let url = if self.pages.url.is_empty() {
            href = self.host.read(Read::Href);
            self.pages.report_url(&href)
        } else {
            &self.pages.url
        };
        if cfg!(feature = "paths")
            && !site::allowed(site::path_of(url), self.cfg.text("include"), self.cfg.text("exclude"))
        {
            return false;
        }
        let mut event = String::new();
        member(&mut event, "{\"n\":", name);
        member(&mut event, ",\"i\":", &identity::random_id(&self.host));
        add(&mut event, ",\"ts\":");
        write_u64(&mut event, self.host.now() as u64);
        member(&mut event, ",\"u\":", url);
        if pageview {
            member(&mut event, ",\"r\":", &self.host.read(Read::Referrer));
            member(&mut event, ",\"h\":", &self.host.read(Read::Title));
            member(&mut event, ",\"s\":", &self.host.read(Read::Screen));
        }
        let props = if cfg!(feature = "props") {
            join(&self.props, props)
        } else {
            String::from(props)
        };
        if props_ok(&props) {
            add(&mut event, ",\"p\":");
            add(&mut event, &props);
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

    /// Adds the ids consent allows, closes the event, passes it through the
    /// page's hook and hands it over. An event the hook drops (or turns into
    /// anything but a JSON object) is not sent.
    fn finish(&mut self, open: &str) -> bool {
        let mut event = String::from(open);
        if self.consent == Consent::Granted {
            member(&mut event, ",\"d\":", &self.device);
            member(&mut event, ",\"id\":", &self.user);
        }
        add(&mut event, "}");
        let event = if cfg!(feature = "hook") {
            self.host.hook(&event)
        } else {
            event
        };
        event.starts_with("{") && self.out.push(&self.host, &event)
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
