//! Where a visit came from: the referrer's host, named when it is a well
//! known search engine, social network or mail service.
//!
//! The table below is our own. Snowplow's referer-parser list is the
//! reference such tables are usually built from, but no maintained crate
//! embeds it (the crates that read it load a file at run time, which a
//! Worker has no file system for). Each entry matches a host either by a
//! "brand" label (`google` matches google.com, www.google.co.uk and
//! google.fr) or by a host suffix (`news.ycombinator.com`).

use super::url::normalise_host;
use url::Url;

/// What kind of site a referrer is, for the channel rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Search,
    Social,
    Email,
    /// Any other site: a referral.
    Other,
}

enum Pattern {
    /// The registrable label: `google` in `www.google.co.uk`.
    Brand(&'static str),
    /// This host or any host below it.
    Suffix(&'static str),
}

use Pattern::{Brand, Suffix};
use SourceKind::{Email, Search, Social};

/// Checked in order: a more specific entry (Gmail) comes before a broader
/// one (Google).
const KNOWN: &[(Pattern, &str, SourceKind)] = &[
    // Mail first: webmail hosts sit below search brands.
    (Suffix("mail.google.com"), "Gmail", Email),
    (Suffix("com.google.android.gm"), "Gmail", Email),
    (Suffix("outlook.live.com"), "Outlook.com", Email),
    (Suffix("outlook.office.com"), "Outlook.com", Email),
    (Suffix("outlook.office365.com"), "Outlook.com", Email),
    (Suffix("mail.yahoo.com"), "Yahoo! Mail", Email),
    (Suffix("mail.proton.me"), "Proton Mail", Email),
    (Suffix("mail.aol.com"), "AOL Mail", Email),
    (Suffix("mail.yandex.ru"), "Yandex Mail", Email),
    (Suffix("mail.ru"), "Mail.ru", Email),
    (Suffix("web.de"), "WEB.DE", Email),
    (Suffix("gmx.net"), "GMX", Email),
    (Suffix("gmx.de"), "GMX", Email),
    (Suffix("fastmail.com"), "Fastmail", Email),
    // Social networks and communities.
    (Suffix("news.ycombinator.com"), "Hacker News", Social),
    (Suffix("t.co"), "X (Twitter)", Social),
    (Brand("twitter"), "X (Twitter)", Social),
    (Suffix("x.com"), "X (Twitter)", Social),
    (Suffix("com.twitter.android"), "X (Twitter)", Social),
    (Suffix("l.facebook.com"), "Facebook", Social),
    (Suffix("lm.facebook.com"), "Facebook", Social),
    (Suffix("m.facebook.com"), "Facebook", Social),
    (Brand("facebook"), "Facebook", Social),
    (Suffix("fb.me"), "Facebook", Social),
    (Suffix("com.facebook.katana"), "Facebook", Social),
    (Brand("instagram"), "Instagram", Social),
    (Suffix("l.instagram.com"), "Instagram", Social),
    (Brand("linkedin"), "LinkedIn", Social),
    (Suffix("lnkd.in"), "LinkedIn", Social),
    (Suffix("com.linkedin.android"), "LinkedIn", Social),
    (Brand("reddit"), "Reddit", Social),
    (Suffix("com.reddit.frontpage"), "Reddit", Social),
    (Suffix("github.com"), "GitHub", Social),
    (Suffix("gist.github.com"), "GitHub", Social),
    (Suffix("gitlab.com"), "GitLab", Social),
    (Suffix("stackoverflow.com"), "Stack Overflow", Social),
    (Suffix("stackexchange.com"), "Stack Exchange", Social),
    (Brand("youtube"), "YouTube", Social),
    (Suffix("youtu.be"), "YouTube", Social),
    (Suffix("com.google.android.youtube"), "YouTube", Social),
    (Brand("pinterest"), "Pinterest", Social),
    (Suffix("pin.it"), "Pinterest", Social),
    (Brand("tiktok"), "TikTok", Social),
    (Suffix("threads.net"), "Threads", Social),
    (Suffix("bsky.app"), "Bluesky", Social),
    (Suffix("mastodon.social"), "Mastodon", Social),
    (Suffix("mstdn.social"), "Mastodon", Social),
    (Brand("vk"), "VKontakte", Social),
    (Suffix("tumblr.com"), "Tumblr", Social),
    (Suffix("medium.com"), "Medium", Social),
    (Suffix("substack.com"), "Substack", Social),
    (Suffix("quora.com"), "Quora", Social),
    (Suffix("discord.com"), "Discord", Social),
    (Suffix("discordapp.com"), "Discord", Social),
    (Suffix("slack.com"), "Slack", Social),
    (Suffix("t.me"), "Telegram", Social),
    (Suffix("web.telegram.org"), "Telegram", Social),
    (Suffix("org.telegram.messenger"), "Telegram", Social),
    (Suffix("web.whatsapp.com"), "WhatsApp", Social),
    (Suffix("producthunt.com"), "Product Hunt", Social),
    (Suffix("lobste.rs"), "Lobsters", Social),
    (Suffix("dev.to"), "DEV", Social),
    (Suffix("xing.com"), "XING", Social),
    (Suffix("snapchat.com"), "Snapchat", Social),
    (Suffix("twitch.tv"), "Twitch", Social),
    (Suffix("weibo.com"), "Weibo", Social),
    // Search engines.
    (Brand("google"), "Google", Search),
    (Suffix("com.google.android.googlequicksearchbox"), "Google", Search),
    (Suffix("bing.com"), "Bing", Search),
    (Suffix("duckduckgo.com"), "DuckDuckGo", Search),
    (Suffix("search.yahoo.com"), "Yahoo!", Search),
    (Brand("yahoo"), "Yahoo!", Search),
    (Brand("yandex"), "Yandex", Search),
    (Suffix("ya.ru"), "Yandex", Search),
    (Suffix("baidu.com"), "Baidu", Search),
    (Suffix("ecosia.org"), "Ecosia", Search),
    (Suffix("search.brave.com"), "Brave Search", Search),
    (Suffix("startpage.com"), "Startpage", Search),
    (Suffix("qwant.com"), "Qwant", Search),
    (Suffix("naver.com"), "Naver", Search),
    (Suffix("seznam.cz"), "Seznam", Search),
    (Suffix("search.aol.com"), "AOL", Search),
    (Suffix("ask.com"), "Ask", Search),
    (Suffix("kagi.com"), "Kagi", Search),
    (Suffix("perplexity.ai"), "Perplexity", Search),
    (Suffix("chatgpt.com"), "ChatGPT", Search),
    (Suffix("chat.openai.com"), "ChatGPT", Search),
    (Suffix("sogou.com"), "Sogou", Search),
    (Suffix("so.com"), "360 Search", Search),
    (Suffix("search.lilo.org"), "Lilo", Search),
    (Suffix("mojeek.com"), "Mojeek", Search),
];

/// A referrer, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// A well-known name (`Google`) or the referrer's host (`blog.example`).
    pub name: String,
    pub kind: SourceKind,
}

/// Names the site a referrer URL belongs to. `None` for no referrer, a
/// referrer that is not a URL, Mixpanel's `$direct`, and a referrer on the
/// site's own host (`own_host`, normalised), which is navigation inside the
/// site and not a source.
pub fn from_referrer(referrer: &str, own_host: Option<&str>) -> Option<Source> {
    let referrer = referrer.trim();
    if referrer.is_empty() || referrer == "$direct" {
        return None;
    }
    let parsed = Url::parse(referrer).ok()?;
    let host = match parsed.scheme() {
        "http" | "https" => normalise_host(parsed.host_str()?),
        // Android apps send `android-app://com.package/…`.
        "android-app" => parsed.host_str()?.to_ascii_lowercase(),
        _ => return None,
    };
    if host.is_empty() || own_host.is_some_and(|own| own == host) {
        return None;
    }
    Some(name_host(&host))
}

/// The known name of a host, or the host itself as a referral.
pub fn name_host(host: &str) -> Source {
    for (pattern, name, kind) in KNOWN {
        if matches(pattern, host) {
            return Source {
                name: (*name).to_owned(),
                kind: *kind,
            };
        }
    }
    Source {
        name: host.to_owned(),
        kind: SourceKind::Other,
    }
}

/// The kind of a source given by name, as `utm_source` often is
/// (`utm_source=google`, `utm_source=Facebook`).
pub fn kind_of_name(name: &str) -> Option<SourceKind> {
    let wanted = name.trim();
    KNOWN
        .iter()
        .find(|(pattern, known, _)| {
            known.eq_ignore_ascii_case(wanted) || matches!(pattern, Brand(b) if b.eq_ignore_ascii_case(wanted))
        })
        .map(|(_, _, kind)| *kind)
}

fn matches(pattern: &Pattern, host: &str) -> bool {
    match pattern {
        Suffix(suffix) => host == *suffix || host.strip_suffix(suffix).is_some_and(|head| head.ends_with('.')),
        Brand(brand) => {
            // `brand` followed only by short, TLD-like labels: google.com,
            // google.co.uk, www.google.de; not googleusercontent.com or
            // google.evil.example.
            let labels: Vec<&str> = host.split('.').collect();
            labels.iter().enumerate().any(|(i, label)| {
                let tail = &labels[i + 1..];
                label == brand && (1..=2).contains(&tail.len()) && tail.iter().all(|t| (2..=3).contains(&t.len()))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(referrer: &str) -> Option<(String, SourceKind)> {
        from_referrer(referrer, Some("shop.example")).map(|s| (s.name, s.kind))
    }

    #[test]
    fn search_engines_in_every_country() {
        for url in [
            "https://www.google.com/",
            "https://www.google.co.uk/search?q=x",
            "https://google.de/",
            "android-app://com.google.android.googlequicksearchbox/",
        ] {
            assert_eq!(name(url), Some(("Google".into(), Search)), "{url}");
        }
        assert_eq!(name("https://www.bing.com/search?q=a"), Some(("Bing".into(), Search)));
        assert_eq!(name("https://duckduckgo.com/"), Some(("DuckDuckGo".into(), Search)));
    }

    #[test]
    fn look_alikes_are_plain_referrals() {
        assert_eq!(
            name("https://google.evil.example/"),
            Some(("google.evil.example".into(), SourceKind::Other))
        );
        assert_eq!(
            name("https://googleusercontent.com/x"),
            Some(("googleusercontent.com".into(), SourceKind::Other))
        );
        assert_eq!(
            name("https://notgithub.com/"),
            Some(("notgithub.com".into(), SourceKind::Other))
        );
    }

    #[test]
    fn social_and_mail() {
        assert_eq!(name("https://t.co/abc"), Some(("X (Twitter)".into(), Social)));
        assert_eq!(
            name("https://l.facebook.com/l.php?u=x"),
            Some(("Facebook".into(), Social))
        );
        assert_eq!(
            name("https://news.ycombinator.com/item?id=1"),
            Some(("Hacker News".into(), Social))
        );
        assert_eq!(name("https://github.com/org/repo"), Some(("GitHub".into(), Social)));
        assert_eq!(name("https://www.reddit.com/r/rust/"), Some(("Reddit".into(), Social)));
        assert_eq!(
            name("https://www.linkedin.com/feed/"),
            Some(("LinkedIn".into(), Social))
        );
        assert_eq!(name("https://mail.google.com/mail/u/0/"), Some(("Gmail".into(), Email)));
    }

    #[test]
    fn no_source_for_direct_internal_and_junk() {
        assert_eq!(name(""), None);
        assert_eq!(name("$direct"), None);
        assert_eq!(name("https://www.shop.example/cart"), None, "own host, with www");
        assert_eq!(name("not a url"), None);
        assert_eq!(name("javascript:alert(1)"), None);
        assert_eq!(
            name("https://blog.shop.example/post"),
            Some(("blog.shop.example".into(), SourceKind::Other)),
            "another host of the same site is a referral, as in Plausible"
        );
    }

    #[test]
    fn utm_source_names_have_kinds() {
        assert_eq!(kind_of_name("google"), Some(Search));
        assert_eq!(kind_of_name("Facebook"), Some(Social));
        assert_eq!(kind_of_name("twitter"), Some(Social));
        assert_eq!(kind_of_name("newsletter-42"), None);
    }
}
