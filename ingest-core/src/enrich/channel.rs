//! Channels: the handful of groups a marketer reads traffic in. The rules
//! follow the usual definitions (Google Analytics 4's default channel
//! group, which Plausible follows too), reduced to six groups; the first
//! rule that matches wins:
//!
//! 1. **Paid**: `utm_medium` names paid traffic (`cpc`, `ppc`, `cpm`,
//!    `cpv`, `cpa`, `paid…`, `display`, `banner`, `retargeting`), or the
//!    URL carries an ad network's click id (`gclid`, `msclkid`, …).
//! 2. **Email**: `utm_medium` or `utm_source` says email or newsletter, or
//!    the referrer is a webmail service.
//! 3. **Social**: `utm_medium` says social, `utm_source` names a social
//!    network, or the referrer is one.
//! 4. **Organic Search**: `utm_medium=organic`, `utm_source` names a search
//!    engine, or the referrer is one.
//! 5. **Referral**: any other referrer or campaign tag.
//! 6. **Direct**: no referrer and no campaign.

use super::source::{kind_of_name, Source, SourceKind};
use super::url::Campaign;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Direct,
    OrganicSearch,
    Paid,
    Social,
    Email,
    Referral,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Direct => "Direct",
            Channel::OrganicSearch => "Organic Search",
            Channel::Paid => "Paid",
            Channel::Social => "Social",
            Channel::Email => "Email",
            Channel::Referral => "Referral",
        }
    }
}

fn is_paid_medium(medium: &str) -> bool {
    matches!(
        medium,
        "cpc" | "ppc" | "cpm" | "cpv" | "cpa" | "display" | "banner" | "retargeting"
    ) || medium.starts_with("paid")
}

fn says_email(text: &str) -> bool {
    text.contains("email") || text.contains("e-mail") || text.contains("e_mail") || text.contains("newsletter")
}

fn says_social(medium: &str) -> bool {
    matches!(
        medium,
        "social" | "sm" | "social-network" | "social-media" | "social network" | "social media"
    )
}

pub fn classify(campaign: &Campaign, referrer: Option<&Source>) -> Channel {
    let medium = campaign
        .medium
        .as_deref()
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let tag = campaign.source.as_deref().or(campaign.referral_tag.as_deref());
    let tag_lower = tag.map(str::to_ascii_lowercase).unwrap_or_default();
    let tag_kind = tag.and_then(kind_of_name);
    let referrer_kind = referrer.map(|s| s.kind);

    if is_paid_medium(&medium) || campaign.paid_click {
        Channel::Paid
    } else if says_email(&medium) || says_email(&tag_lower) || referrer_kind == Some(SourceKind::Email) {
        Channel::Email
    } else if says_social(&medium) || tag_kind == Some(SourceKind::Social) || referrer_kind == Some(SourceKind::Social)
    {
        Channel::Social
    } else if medium == "organic"
        || tag_kind == Some(SourceKind::Search)
        || (tag.is_none() && referrer_kind == Some(SourceKind::Search))
    {
        Channel::OrganicSearch
    } else if referrer.is_some() || !campaign.is_empty() {
        Channel::Referral
    } else {
        Channel::Direct
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::source::name_host;

    fn campaign(source: Option<&str>, medium: Option<&str>) -> Campaign {
        Campaign {
            source: source.map(Into::into),
            medium: medium.map(Into::into),
            ..Campaign::default()
        }
    }

    #[test]
    fn each_rule_in_order() {
        let google = name_host("google.com");
        let facebook = name_host("facebook.com");
        let gmail = name_host("mail.google.com");
        let blog = name_host("blog.example");
        let none = Campaign::default();

        assert_eq!(classify(&none, None), Channel::Direct);
        assert_eq!(classify(&none, Some(&google)), Channel::OrganicSearch);
        assert_eq!(classify(&none, Some(&facebook)), Channel::Social);
        assert_eq!(classify(&none, Some(&gmail)), Channel::Email);
        assert_eq!(classify(&none, Some(&blog)), Channel::Referral);

        // Paid beats the referrer it came through.
        assert_eq!(
            classify(&campaign(Some("google"), Some("cpc")), Some(&google)),
            Channel::Paid
        );
        assert_eq!(
            classify(&campaign(None, Some("paid_social")), Some(&facebook)),
            Channel::Paid
        );
        let clicked = Campaign {
            paid_click: true,
            ..Campaign::default()
        };
        assert_eq!(classify(&clicked, Some(&google)), Channel::Paid);

        assert_eq!(classify(&campaign(Some("weekly"), Some("Email")), None), Channel::Email);
        assert_eq!(classify(&campaign(Some("newsletter"), None), None), Channel::Email);
        assert_eq!(classify(&campaign(Some("facebook"), None), None), Channel::Social);
        assert_eq!(classify(&campaign(Some("x"), Some("social")), None), Channel::Social);
        assert_eq!(classify(&campaign(Some("bing"), None), None), Channel::OrganicSearch);
        assert_eq!(
            classify(&campaign(Some("x"), Some("organic")), None),
            Channel::OrganicSearch
        );
        // A campaign tag of unknown kind is a referral even without a referrer.
        assert_eq!(classify(&campaign(Some("partner-site"), None), None), Channel::Referral);
        // A tagged link clicked on Google is the tag's, not search.
        assert_eq!(
            classify(&campaign(Some("partner-site"), None), Some(&google)),
            Channel::Referral
        );
    }
}
