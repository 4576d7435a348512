//! Browser, operating system and device from the user agent, by Project
//! Woothee's parser (`woothee` crate: table-driven, microseconds a parse
//! and no start-up cost, which matters in a Worker isolate; ua-parser's
//! regex list takes a fifth of a second to compile).

use std::sync::OnceLock;
use woothee::parser::Parser;

/// Device classes, as Plausible and Umami report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Desktop,
    Mobile,
    Tablet,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "Desktop",
            Device::Mobile => "Mobile",
            Device::Tablet => "Tablet",
        }
    }
}

/// Screens narrower than this many CSS pixels are phones.
pub const MOBILE_MAX_SCREEN_WIDTH: u32 = 575;
/// Screens from the phone limit up to this width are tablets.
pub const TABLET_MAX_SCREEN_WIDTH: u32 = 991;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    pub browser: Option<String>,
    /// Major version only (`131`): minor versions split reports for nothing.
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub device: Option<Device>,
}

fn parser() -> &'static Parser {
    static PARSER: OnceLock<Parser> = OnceLock::new();
    PARSER.get_or_init(Parser::new)
}

fn known(text: &str) -> Option<&str> {
    (!text.is_empty() && text != "UNKNOWN").then_some(text)
}

/// One name per system family: Woothee says "Windows 10" and "Mac OSX",
/// reports say "Windows" and "macOS".
fn os_family(os: &str) -> &str {
    match os {
        o if o.starts_with("Windows") => "Windows",
        "Mac OSX" | "Mac OS Classic" => "macOS",
        "iPhone" | "iPad" | "iPod" => "iOS",
        other => other,
    }
}

/// Width of a `WIDTHxHEIGHT` screen.
fn screen_width(screen: &str) -> Option<u32> {
    screen.split('x').next()?.trim().parse().ok()
}

/// Reads a user agent; `screen` (our tracker's `WIDTHxHEIGHT`) decides the
/// device when present, as in Plausible: a user agent cannot tell an iPad
/// (which presents itself as a Mac) from a laptop, a screen width can.
pub fn parse(user_agent: Option<&str>, screen: Option<&str>) -> Agent {
    let mut agent = Agent::default();
    if let Some(found) = user_agent.filter(|ua| !ua.is_empty()).and_then(|ua| parser().parse(ua)) {
        agent.browser = known(found.name).map(str::to_owned);
        agent.browser_version = known(found.version)
            .and_then(|v| v.split('.').next())
            .filter(|major| !major.is_empty())
            .map(str::to_owned);
        agent.os = known(found.os).map(|os| os_family(os).to_owned());
        let ua = user_agent.unwrap_or_default();
        agent.device = match found.category {
            "pc" => Some(Device::Desktop),
            "smartphone" | "mobilephone" => Some(
                if found.os == "iPad" || (found.os == "Android" && !ua.contains("Mobile")) {
                    Device::Tablet
                } else {
                    Device::Mobile
                },
            ),
            _ => None,
        };
    }
    if let Some(width) = screen.and_then(screen_width).filter(|w| *w > 0) {
        agent.device = Some(if width <= MOBILE_MAX_SCREEN_WIDTH {
            Device::Mobile
        } else if width <= TABLET_MAX_SCREEN_WIDTH {
            Device::Tablet
        } else {
            Device::Desktop
        });
    }
    agent
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
    const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                        Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
                                 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                        Version/16.6 Mobile/15E148 Safari/604.1";
    const ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) \
                                  Chrome/124.0.0.0 Safari/537.36";
    const ANDROID_PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                                 Chrome/124.0.0.0 Mobile Safari/537.36";

    fn of(ua: &str) -> (Option<String>, Option<String>, Option<String>, Option<Device>) {
        let a = parse(Some(ua), None);
        (a.browser, a.browser_version, a.os, a.device)
    }

    #[test]
    fn browsers_systems_and_devices() {
        assert_eq!(
            of(CHROME_LINUX),
            (
                Some("Chrome".into()),
                Some("130".into()),
                Some("Linux".into()),
                Some(Device::Desktop)
            )
        );
        assert_eq!(
            of(EDGE),
            (
                Some("Edge".into()),
                Some("131".into()),
                Some("Windows".into()),
                Some(Device::Desktop)
            )
        );
        assert_eq!(
            of(SAFARI_IPHONE),
            (
                Some("Safari".into()),
                Some("17".into()),
                Some("iOS".into()),
                Some(Device::Mobile)
            )
        );
        assert_eq!(of(IPAD).3, Some(Device::Tablet));
        assert_eq!(of(IPAD).2, Some("iOS".into()));
        assert_eq!(of(ANDROID_TABLET).3, Some(Device::Tablet));
        assert_eq!(of(ANDROID_PHONE).3, Some(Device::Mobile));
    }

    #[test]
    fn server_libraries_and_empty_agents_say_nothing() {
        assert_eq!(parse(Some("mixpanel-python/5.4.1"), None), Agent::default());
        assert_eq!(parse(Some(""), None), Agent::default());
        assert_eq!(parse(None, None), Agent::default());
    }

    #[test]
    fn screen_width_decides_the_device_at_each_edge() {
        let device = |screen: &str| parse(Some(CHROME_LINUX), Some(screen)).device;
        assert_eq!(device("575x900"), Some(Device::Mobile));
        assert_eq!(device("576x900"), Some(Device::Tablet));
        assert_eq!(device("991x700"), Some(Device::Tablet));
        assert_eq!(device("992x700"), Some(Device::Desktop));
        // Unreadable screens leave the user agent's answer.
        assert_eq!(device("wide"), Some(Device::Desktop));
        assert_eq!(parse(Some(SAFARI_IPHONE), Some("0x0")).device, Some(Device::Mobile));
    }
}
