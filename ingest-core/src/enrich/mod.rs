//! Enrichment: what an event says beyond what it was sent with, worked out
//! once before it is stored, so reports group by stored columns instead of
//! parsing URLs and user agents on every read. Pure: the consumer calls
//! [`enrich`] on each event of a batch.

pub mod agent;
pub mod channel;
pub mod source;
pub mod url;

use crate::event::Event;
use serde_json::Value;

/// Event names that count as a page view, whatever the client calls it:
/// ours and PostHog's `$pageview` (Vemetric's `$$pageView`, Plausible's
/// `pageview` and Umami's page hits are stored as `$pageview` by their
/// decoders), and mixpanel-browser's `$mp_web_page_view`.
pub const PAGEVIEW_NAMES: [&str; 2] = ["$pageview", "$mp_web_page_view"];
/// The tracker's engagement report: visible time and scroll depth of a page.
pub const ENGAGEMENT: &str = "$engagement";
pub const OUTBOUND_LINK: &str = "$outbound_link";
pub const FILE_DOWNLOAD: &str = "$file_download";

pub fn is_pageview(name: &str) -> bool {
    PAGEVIEW_NAMES.contains(&name)
}

/// The columns enrichment adds to a stored event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrichment {
    pub path: Option<String>,
    pub hostname: Option<String>,
    /// The referrer's name (`Google`) or host; `None` for direct traffic.
    pub referrer_source: Option<String>,
    pub channel: &'static str,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub device: Option<&'static str>,
}

fn text_property(event: &Event, key: &str) -> Option<String> {
    match event.properties.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

pub fn enrich(event: &Event) -> Enrichment {
    let page = event.page.url.as_deref().and_then(url::parse_page);
    let mut campaign = page.as_ref().map(|p| p.campaign.clone()).unwrap_or_default();
    // mixpanel-browser and server SDKs send campaign tags as properties.
    for (slot, key) in [
        (&mut campaign.source, "utm_source"),
        (&mut campaign.medium, "utm_medium"),
        (&mut campaign.campaign, "utm_campaign"),
        (&mut campaign.term, "utm_term"),
        (&mut campaign.content, "utm_content"),
    ] {
        if slot.is_none() {
            *slot = text_property(event, key);
        }
    }
    let hostname = page.as_ref().and_then(|p| p.hostname.clone());
    let referrer = event
        .page
        .referrer
        .as_deref()
        .and_then(|r| source::from_referrer(r, hostname.as_deref()));
    let channel = channel::classify(&campaign, referrer.as_ref()).as_str();
    // A campaign's source names the visit's source, as in Plausible: a
    // newsletter link clicked in Gmail is the newsletter.
    let referrer_source = campaign
        .source
        .clone()
        .or_else(|| campaign.referral_tag.clone())
        .or(referrer.map(|s| s.name));

    let agent = agent::parse(event.user_agent.as_deref(), event.page.screen.as_deref());
    Enrichment {
        path: page.map(|p| p.path),
        hostname,
        referrer_source,
        channel,
        utm_source: campaign.source,
        utm_medium: campaign.medium,
        utm_campaign: campaign.campaign,
        utm_term: campaign.term,
        utm_content: campaign.content,
        // Mixpanel's libraries describe the browser themselves; a server
        // library's own agent says nothing about the person's browser.
        browser: agent.browser.or_else(|| text_property(event, "$browser")),
        browser_version: agent.browser_version.or_else(|| {
            match event.properties.get("$browser_version") {
                Some(Value::Number(n)) => n.as_f64().map(|v| (v.trunc() as i64).to_string()),
                _ => text_property(event, "$browser_version").map(|v| v.split('.').next().unwrap_or("").to_owned()),
            }
            .filter(|v| !v.is_empty())
        }),
        os: agent.os.or_else(|| text_property(event, "$os")),
        device: agent.device.map(agent::Device::as_str),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Dialect, PageContext};
    use serde_json::json;

    fn event(url: Option<&str>, referrer: Option<&str>, properties: Value) -> Event {
        Event {
            project: "p".into(),
            name: "$pageview".into(),
            distinct_id: "u".into(),
            device_id: None,
            time_ms: 1_700_000_000_000,
            insert_id: "i".into(),
            page: PageContext {
                url: url.map(Into::into),
                referrer: referrer.map(Into::into),
                title: None,
                screen: None,
            },
            properties: properties.as_object().cloned().unwrap_or_default(),
            source: Dialect::Browser,
            received_at_ms: 1_700_000_000_000,
            user_agent: Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0".into()),
            country: None,
            region: None,
            city: None,
        }
    }

    #[test]
    fn a_search_visit() {
        let e = enrich(&event(
            Some("https://www.shop.example/shoes?color=red"),
            Some("https://www.google.com/"),
            json!({}),
        ));
        assert_eq!(e.path.as_deref(), Some("/shoes"));
        assert_eq!(e.hostname.as_deref(), Some("shop.example"));
        assert_eq!(e.referrer_source.as_deref(), Some("Google"));
        assert_eq!(e.channel, "Organic Search");
        assert_eq!(e.browser.as_deref(), Some("Firefox"));
        assert_eq!(e.browser_version.as_deref(), Some("133"));
        assert_eq!(e.os.as_deref(), Some("Windows"));
        assert_eq!(e.device, Some("Desktop"));
    }

    #[test]
    fn a_tagged_newsletter_click_from_webmail() {
        let e = enrich(&event(
            Some("https://shop.example/?utm_source=weekly&utm_medium=email&utm_campaign=dec"),
            Some("https://mail.google.com/"),
            json!({}),
        ));
        assert_eq!(e.referrer_source.as_deref(), Some("weekly"));
        assert_eq!(e.utm_campaign.as_deref(), Some("dec"));
        assert_eq!(e.channel, "Email");
    }

    #[test]
    fn internal_navigation_is_direct() {
        let e = enrich(&event(
            Some("https://shop.example/b"),
            Some("https://shop.example/a"),
            json!({}),
        ));
        assert_eq!(e.referrer_source, None);
        assert_eq!(e.channel, "Direct");
    }

    #[test]
    fn mixpanel_properties_fill_what_the_request_lacks() {
        let mut ev = event(
            Some("https://shop.example/"),
            Some("$direct"),
            json!({"utm_source": "facebook", "utm_medium": "paid_social", "$browser": "Mobile Safari",
                   "$browser_version": 17.4, "$os": "iOS"}),
        );
        ev.user_agent = Some("mixpanel-node/0.24".into());
        let e = enrich(&ev);
        assert_eq!(e.utm_source.as_deref(), Some("facebook"));
        assert_eq!(e.channel, "Paid");
        assert_eq!(e.browser.as_deref(), Some("Mobile Safari"));
        assert_eq!(e.browser_version.as_deref(), Some("17"));
        assert_eq!(e.os.as_deref(), Some("iOS"));
        assert_eq!(e.device, None);
    }

    #[test]
    fn server_events_without_pages() {
        let e = enrich(&event(None, None, json!({})));
        assert_eq!(e.path, None);
        assert_eq!(e.hostname, None);
        assert_eq!(e.channel, "Direct");
    }

    #[test]
    fn pageview_names() {
        assert!(is_pageview("$pageview"));
        assert!(is_pageview("$mp_web_page_view"));
        assert!(!is_pageview("pageview"));
        assert!(!is_pageview(ENGAGEMENT));
    }
}
