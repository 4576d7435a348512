//! Server-side bot rules. Bot events are answered as a success (so crawlers
//! learn nothing) and counted by reason instead of stored.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotReason {
    /// No `User-Agent` header at all, or only blanks.
    MissingUserAgent,
    /// The user agent matches the maintained `isbot` pattern list.
    UserAgentPattern,
    /// Cloudflare's bot management marked the client a verified bot.
    VerifiedBot,
}

impl BotReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BotReason::MissingUserAgent => "missing_user_agent",
            BotReason::UserAgentPattern => "user_agent_pattern",
            BotReason::VerifiedBot => "verified_bot",
        }
    }
}

fn patterns() -> &'static isbot::Bots {
    // Compiling the pattern list costs milliseconds; do it once per isolate.
    static BOTS: OnceLock<isbot::Bots> = OnceLock::new();
    BOTS.get_or_init(isbot::Bots::default)
}

/// Decides whether a request comes from a bot, and why. Server SDKs
/// (Mixpanel's Python library, curl) send their own non-browser agents, so
/// this applies only to endpoints browsers use.
pub fn classify(user_agent: Option<&str>, verified_bot: bool) -> Option<BotReason> {
    if verified_bot {
        return Some(BotReason::VerifiedBot);
    }
    match user_agent.map(str::trim) {
        None | Some("") => Some(BotReason::MissingUserAgent),
        Some(ua) if patterns().is_bot(ua) => Some(BotReason::UserAgentPattern),
        Some(_) => None,
    }
}

/// The verdict for endpoints that servers use too (Mixpanel's `/track`,
/// `/engage` and `/groups`, Vemetric, the CRM API): server SDKs send their
/// own non-browser agents, so an agent is judged only when it presents
/// itself as a browser (`Mozilla/`, as crawlers do too). A verified bot is
/// a bot whatever its agent says: Cloudflare verified it as one. (Only our
/// tracker's `/collect`, which browsers alone use, takes [`classify`]
/// whole.)
pub fn classify_shared(user_agent: Option<&str>, verified_bot: bool) -> Option<BotReason> {
    let looks_like_browser = user_agent.is_some_and(|ua| ua.starts_with("Mozilla/"));
    if looks_like_browser || verified_bot {
        classify(user_agent, verified_bot)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";

    #[test]
    fn browsers_pass() {
        assert_eq!(classify(Some(CHROME), false), None);
        assert_eq!(
            classify(Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"), false),
            None
        );
    }

    #[test]
    fn crawlers_and_missing_agents_are_bots() {
        let google = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        assert_eq!(classify(Some(google), false), Some(BotReason::UserAgentPattern));
        assert_eq!(classify(Some("curl/8.5.0"), false), Some(BotReason::UserAgentPattern));
        assert_eq!(classify(None, false), Some(BotReason::MissingUserAgent));
        assert_eq!(classify(Some("   "), false), Some(BotReason::MissingUserAgent));
        assert_eq!(classify(Some(CHROME), true), Some(BotReason::VerifiedBot));
    }

    #[test]
    fn shared_endpoints_judge_browsers_and_verified_bots_only() {
        let google = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        assert_eq!(classify_shared(Some(google), false), Some(BotReason::UserAgentPattern));
        assert_eq!(classify_shared(Some(CHROME), false), None);
        // Server SDKs and scripts: not judged by their agent.
        for server in [Some("mixpanel-python/4.10.1"), Some("curl/8.5.0"), Some(""), None] {
            assert_eq!(classify_shared(server, false), None, "{server:?}");
        }
        // A verified bot is one whatever it sends.
        assert_eq!(
            classify_shared(Some("Googlebot-Image/1.0"), true),
            Some(BotReason::VerifiedBot)
        );
        assert_eq!(classify_shared(None, true), Some(BotReason::VerifiedBot));
    }
}
