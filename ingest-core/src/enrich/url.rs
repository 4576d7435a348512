//! What a page URL says about a visit: the path the reports group by, the
//! site's host, and the campaign parameters in its query.

use url::Url;

/// Campaign parameters, as Google Analytics named them and every analytics
/// tool reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Campaign {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
    /// `ref=` / `source=` (Plausible's and many newsletters' tag), used as
    /// the source when `utm_source` is absent.
    pub referral_tag: Option<String>,
    /// A paid-click id from an ad network (`gclid`, `msclkid`, …).
    pub paid_click: bool,
}

impl Campaign {
    pub fn is_empty(&self) -> bool {
        self.source.is_none() && self.medium.is_none() && self.campaign.is_none() && self.referral_tag.is_none()
    }
}

/// Query parameters ad networks add to paid clicks only.
const PAID_CLICK_IDS: [&str; 6] = ["gclid", "gbraid", "wbraid", "dclid", "msclkid", "twclid"];

/// The parsed parts of a page URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageUrl {
    /// The path without query and fragment; `/` for an empty path. A
    /// hash-routed app (`/#/orders`) keeps its route: the fragment is the
    /// page there.
    pub path: String,
    /// The host, lower case, without a leading `www.`.
    pub hostname: Option<String>,
    pub campaign: Campaign,
}

/// Parses an absolute page URL; `None` when it is not one.
pub fn parse_page(url: &str) -> Option<PageUrl> {
    let parsed = Url::parse(url.trim()).ok()?;
    let mut path = match parsed.path() {
        "" => "/".to_owned(),
        p => p.to_owned(),
    };
    if let Some(route) = parsed.fragment().filter(|f| f.starts_with('/')) {
        // `/#/orders/7?tab=2`: the route, without its own query.
        let route = route.split('?').next().unwrap_or(route);
        if path == "/" {
            path = format!("/#{route}");
        } else {
            path = format!("{}#{route}", path.trim_end_matches('/'));
        }
    }
    let mut campaign = Campaign::default();
    for (key, value) in parsed.query_pairs() {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let slot = match key.as_ref() {
            "utm_source" => &mut campaign.source,
            "utm_medium" => &mut campaign.medium,
            "utm_campaign" => &mut campaign.campaign,
            "utm_term" => &mut campaign.term,
            "utm_content" => &mut campaign.content,
            "ref" | "source" => &mut campaign.referral_tag,
            k if PAID_CLICK_IDS.contains(&k) => {
                campaign.paid_click = true;
                continue;
            }
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.to_owned());
        }
    }
    Some(PageUrl {
        path,
        hostname: parsed.host_str().map(normalise_host),
        campaign,
    })
}

/// Lower case, without a trailing dot or a leading `www.`: the form hosts
/// are compared and shown in.
pub fn normalise_host(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match host.strip_prefix("www.") {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_drops_query_and_fragment() {
        let p = parse_page("https://WWW.Shop.Example/blog/post?id=7#comments").expect("absolute URL");
        assert_eq!(p.path, "/blog/post");
        assert_eq!(p.hostname.as_deref(), Some("shop.example"));
        let root = parse_page("https://shop.example").expect("absolute URL");
        assert_eq!(root.path, "/");
    }

    #[test]
    fn hash_routes_are_pages() {
        assert_eq!(
            parse_page("https://a.test/#/orders/7?tab=2").map(|p| p.path),
            Some("/#/orders/7".into())
        );
        assert_eq!(
            parse_page("https://a.test/app/#/settings").map(|p| p.path),
            Some("/app#/settings".into())
        );
        // A plain anchor is not a route.
        assert_eq!(
            parse_page("https://a.test/doc#install").map(|p| p.path),
            Some("/doc".into())
        );
    }

    #[test]
    fn campaign_parameters_are_read_once_each() {
        let p = parse_page(
            "https://a.test/?utm_source=Newsletter&utm_medium=email&utm_campaign=dec+sale&utm_term=shoes\
             &utm_content=hero%20banner&utm_source=second&ref=ignored-order",
        )
        .expect("absolute URL");
        assert_eq!(p.campaign.source.as_deref(), Some("Newsletter"));
        assert_eq!(p.campaign.medium.as_deref(), Some("email"));
        assert_eq!(p.campaign.campaign.as_deref(), Some("dec sale"));
        assert_eq!(p.campaign.term.as_deref(), Some("shoes"));
        assert_eq!(p.campaign.content.as_deref(), Some("hero banner"));
        assert_eq!(p.campaign.referral_tag.as_deref(), Some("ignored-order"));
        assert!(!p.campaign.paid_click);
        assert!(parse_page("https://a.test/?gclid=abc").is_some_and(|p| p.campaign.paid_click));
        assert!(parse_page("https://a.test/?utm_source=").is_some_and(|p| p.campaign.is_empty()));
    }

    #[test]
    fn relative_or_broken_urls_are_not_pages() {
        assert_eq!(parse_page("/relative/path"), None);
        assert_eq!(parse_page("not a url"), None);
        assert_eq!(parse_page(""), None);
    }

    #[test]
    fn hosts_compare_in_one_form() {
        assert_eq!(normalise_host("WWW.Example.COM."), "example.com");
        assert_eq!(normalise_host("www."), "www");
        assert_eq!(normalise_host("wwwx.example"), "wwwx.example");
    }
}
