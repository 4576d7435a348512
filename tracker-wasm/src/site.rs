//! Which pages are measured at all: not a developer's own machine (unless
//! `data-local`), only the site's own domains (when `data-domains` names
//! them), and only the paths `data-include` and `data-exclude` allow.

use crate::text::{self, words};

/// A local host name: `localhost` and its subdomains, IPv4 loopback
/// (`127.x.x.x`), IPv6 loopback (`[::1]`), and no host at all (`file:`
/// pages, `about:` and `data:` frames). `location.hostname` lower-cases, so
/// the words compare exactly; no public name ends in `localhost`, and a
/// name of digits and dots is an IPv4 address.
pub fn is_local(hostname: &str) -> bool {
    hostname.is_empty()
        || hostname.ends_with("localhost")
        || hostname == "[::1]"
        || hostname.starts_with("127.") && hostname.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Whether `hostname` is one of `domains` (words, exactly); any host when
/// `domains` is empty.
pub fn is_ours(hostname: &str, domains: &str) -> bool {
    domains.is_empty() || words(domains).any(|d| d == hostname)
}

/// The path of an absolute URL: from the slash after the host to the
/// query or fragment; "/" when there is none.
pub fn path_of(url: &str) -> &str {
    let mut slashes = 0;
    for (i, b) in url.bytes().enumerate() {
        if b == b'/' {
            slashes += 1;
            if slashes == 3 {
                return text::before_any(text::from(url, i), b'?', b'#');
            }
        }
    }
    "/"
}

/// `s` without one trailing `/`, unless it is all there is.
fn trim(s: &[u8]) -> &[u8] {
    match s.split_last() {
        Some((b'/', rest)) if !rest.is_empty() => rest,
        _ => s,
    }
}

/// Whether `path` matches `pattern`, where `*` stands for any run of
/// characters (`/` included, so `/blog/*` covers every page below `/blog/`;
/// `**` is the same as `*`) and every other character for itself. A
/// trailing `/` is optional on both sides (`/about` matches `/about/`).
///
/// The classic one-star backtracking: on a mismatch, the last star takes
/// one more character. Every step moves forward in the path or in that
/// star's share of it, so the work is at most the product of the lengths,
/// whatever the pattern (no exponential case to guard against).
pub fn matches(pattern: &str, path: &str) -> bool {
    let (p, s) = (trim(pattern.as_bytes()), trim(path.as_bytes()));
    let (mut i, mut j) = (0, 0);
    // Where the pattern goes on after the last star, and where in the path
    // that star's share ends so far.
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        match p.get(i) {
            Some(b'*') => {
                i += 1;
                star = Some((i, j));
            }
            Some(c) if s.get(j) == Some(c) => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((after, taken)) => {
                    i = after;
                    j = taken + 1;
                    star = Some((after, j));
                }
                None => return false,
            },
        }
    }
    // The path is used up: the rest of the pattern must be stars (after
    // the slash a trimmed path lost).
    let rest = p.get(i..).unwrap_or_default();
    let rest = rest.strip_prefix(b"/").unwrap_or(rest);
    rest.iter().all(|c| *c == b'*')
}

/// Whether events on `path` are sent: it matches one of `include` (when
/// any are given) and none of `exclude`.
pub fn allowed(path: &str, include: &str, exclude: &str) -> bool {
    (include.is_empty() || words(include).any(|p| matches(p, path))) && !words(exclude).any(|p| matches(p, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn local_hosts() {
        for local in ["", "localhost", "app.localhost", "127.0.0.1", "127.1.2.3", "[::1]"] {
            assert!(is_local(local), "{local:?}");
        }
        for remote in [
            "example.com",
            "localhost.example.com",
            "127.example.com",
            "10.0.0.1",
            "192.168.1.2",
            "1270.0.0.1",
            "[2001:db8::1]",
        ] {
            assert!(!is_local(remote), "{remote:?}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn own_domains() {
        assert!(is_ours("anything.test", ""));
        assert!(is_ours("www.example.com", "example.com, www.example.com"));
        assert!(is_ours("example.com", "example.com www.example.com"));
        assert!(!is_ours("staging.example.com", "example.com,www.example.com"));
        assert!(!is_ours("example.com.evil.test", "example.com"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn paths_of_urls() {
        assert_eq!(path_of("https://a.test/blog/x?y=1#z"), "/blog/x");
        assert_eq!(path_of("https://a.test/#/users"), "/");
        assert_eq!(path_of("https://a.test"), "/");
        assert_eq!(path_of("https://a.test?q"), "/");
        assert_eq!(path_of("http://a.test:8080/p/"), "/p/");
        assert_eq!(path_of("file:///home/me/page.html"), "/home/me/page.html");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn stars_stand_for_any_run_of_characters() {
        assert!(matches("/blog/*", "/blog/hello"));
        assert!(matches("/blog/*", "/blog/2024/hello"), "across slashes too");
        assert!(matches("/blog/*", "/blog/"));
        assert!(matches("/blog/*", "/blog"), "the trailing slash is optional");
        assert!(matches("/blog/**", "/blog/2024/hello"), "** is the same as *");
        assert!(!matches("/blog/*", "/blogs/x"));
        assert!(matches("/*/settings", "/acme/settings"));
        assert!(matches("/*/settings", "/acme/team/settings"));
        assert!(!matches("/*/settings", "/acme/settings/x"));
        assert!(matches("/user-*", "/user-42"));
        assert!(matches("*", "/anything/at/all"));
        assert!(matches("/*.pdf", "/files/a.b.pdf"), "backtracks past an earlier '.'");
        assert!(!matches("/*.pdf", "/files/a.pdf.html"));
        assert!(matches("/a*b*c", "/aXbYbZc"));
        assert!(!matches("/a*b*c", "/aXbYc-"));
        assert!(matches("/about", "/about"));
        assert!(matches("/about", "/about/"));
        assert!(matches("/about/", "/about"));
        assert!(!matches("/about", "/about-us"));
        assert!(matches("/", "/"));
        assert!(!matches("/", "/x"));
        assert!(!matches("", "/"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn include_and_exclude() {
        assert!(allowed("/anything", "", ""));
        assert!(allowed("/blog/x", "/blog/** /docs/**", ""));
        assert!(allowed("/docs/a/b", "/blog/**, /docs/**", ""));
        assert!(!allowed("/shop", "/blog/** /docs/**", ""));
        assert!(!allowed("/admin/users", "", "/admin/**"));
        assert!(!allowed("/blog/draft-1", "/blog/**", "/blog/draft-*"));
        assert!(allowed("/blog/final", "/blog/**", "/blog/draft-*"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn many_stars_against_a_long_path_stay_quick() {
        // Exponential in the stars with plain recursion; here at most the
        // product of the lengths.
        let pattern = "/*a*a*a*a*a*a*a*a*a*a*b";
        let path = format!("/{}", "a".repeat(8000));
        assert!(!matches(pattern, &path));
        assert!(matches(pattern, &format!("{path}b")));
    }
}
