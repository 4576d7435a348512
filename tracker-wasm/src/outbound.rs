//! Which clicked links are outbound: links to another host, and, when the
//! site asks for them (`data-outbound="downloads mailto tel"`), file
//! downloads, `mailto:` and `tel:` links.

use crate::text;

/// File extensions that make a link a download, comma separated.
pub const DOWNLOAD_EXTENSIONS: &str = "7z,apk,avi,bz2,csv,deb,dmg,doc,docx,epub,exe,gz,iso,key,m4a,mov,mp3,mp4,msi,\
odp,ods,odt,pdf,pkg,ppt,pptx,rar,rpm,rtf,tar,tgz,txt,wav,wma,wmv,xls,xlsx,xz,zip";

/// The outbound kinds beyond links to other hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    pub downloads: bool,
    pub mailto: bool,
    pub tel: bool,
}

impl Extras {
    pub const NONE: Extras = Extras {
        downloads: false,
        mailto: false,
        tel: false,
    };

    /// Words separated by spaces or commas: `downloads`, `mailto`, `tel`.
    pub fn parse(words: &str) -> Extras {
        let mut extras = Extras::default();
        for word in text::words(words) {
            match word {
                "downloads" | "download" => extras.downloads = true,
                "mailto" => extras.mailto = true,
                "tel" => extras.tel = true,
                _ => {}
            }
        }
        extras
    }
}

/// The extension of a path's last segment (`pdf` in `/a/b.pdf`), if any.
pub fn extension(path: &str) -> Option<&str> {
    // Where the last segment starts, and its last dot.
    let (mut segment, mut dot) = (0, 0);
    for (i, b) in path.bytes().enumerate() {
        match b {
            b'/' => (segment, dot) = (i + 1, 0),
            b'.' => dot = i,
            _ => {}
        }
    }
    let ext = text::from(path, dot + 1);
    (dot > segment && !ext.is_empty()).then_some(ext)
}

/// A link as the browser parsed it: `a.protocol`, `a.host` (the URL parser
/// lower-cases hosts, so they compare exactly) and `a.pathname`, which the
/// loader lower-cases for the download extensions.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub protocol: &'a str,
    pub host: &'a str,
    pub path: &'a str,
}

/// Whether a click on `link` from a page on `page_host` (`location.host`)
/// is an outbound-link event.
pub fn is_outbound(link: Link<'_>, page_host: &str, extras: Extras) -> bool {
    match link.protocol {
        "mailto:" => extras.mailto,
        "tel:" => extras.tel,
        "http:" | "https:" => {
            link.host != page_host
                || extras.downloads
                    && extension(link.path).is_some_and(|ext| text::words(DOWNLOAD_EXTENSIONS).any(|d| d == ext))
        }
        // javascript:, data:, blob: and the like go nowhere else.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const PAGE: &str = "site.test";
    const ALL: Extras = Extras {
        downloads: true,
        mailto: true,
        tel: true,
    };

    fn link<'a>(protocol: &'a str, host: &'a str, path: &'a str) -> Link<'a> {
        Link { protocol, host, path }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn other_hosts_are_outbound() {
        let none = Extras::NONE;
        assert!(is_outbound(link("https:", "other.test", "/"), PAGE, none));
        assert!(
            is_outbound(link("http:", "www.site.test", "/"), PAGE, none),
            "a subdomain is another host"
        );
        assert!(
            is_outbound(link("https:", "site.test:8443", "/"), PAGE, none),
            "so is another port"
        );
        assert!(!is_outbound(link("https:", "site.test", "/about"), PAGE, none));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn other_schemes_only_when_asked() {
        let none = Extras::NONE;
        assert!(!is_outbound(link("mailto:", "", "hi@site.test"), PAGE, none));
        assert!(is_outbound(link("mailto:", "", "hi@site.test"), PAGE, ALL));
        assert!(!is_outbound(link("tel:", "", "+15550100"), PAGE, none));
        assert!(is_outbound(link("tel:", "", "+15550100"), PAGE, ALL));
        assert!(!is_outbound(link("javascript:", "", "void(0)"), PAGE, ALL));
        assert!(!is_outbound(link("blob:", "", "https://site.test/x"), PAGE, ALL));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn same_host_downloads_by_extension() {
        let downloads = Extras {
            downloads: true,
            ..Extras::NONE
        };
        assert!(is_outbound(
            link("https:", "site.test", "/files/report.pdf"),
            PAGE,
            downloads
        ));
        assert!(is_outbound(link("https:", "site.test", "/a.tar.gz"), PAGE, downloads));
        assert!(!is_outbound(
            link("https:", "site.test", "/files/report.pdf"),
            PAGE,
            Extras::NONE
        ));
        assert!(!is_outbound(link("https:", "site.test", "/page.html"), PAGE, downloads));
        assert!(!is_outbound(link("https:", "site.test", "/v1.2/"), PAGE, downloads));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn extensions_of_paths() {
        assert_eq!(extension("/d/report.PDF"), Some("PDF"));
        assert_eq!(extension("/archive.tar.gz"), Some("gz"));
        assert_eq!(extension("/v1.2/docs"), None);
        assert_eq!(extension("/.hidden"), None);
        assert_eq!(extension("/"), None);
        assert_eq!(extension(""), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn extras_words() {
        assert_eq!(Extras::parse("downloads mailto tel"), ALL);
        assert_eq!(
            Extras::parse("mailto,tel"),
            Extras {
                downloads: false,
                mailto: true,
                tel: true
            }
        );
        assert_eq!(Extras::parse(""), Extras::NONE);
        assert_eq!(Extras::parse("everything"), Extras::NONE);
    }

    // In Chromium: the parts the loader hands over are the browser's own
    // parsing of an <a> (relative links resolved, `protocol` with its colon).
    #[wasm_bindgen_test]
    fn browser_link_parts() {
        let parts = |href: &str| {
            let script = format!(
                "(() => {{ const a = document.createElement('a'); a.href = {href:?}; \
                 return [a.protocol, a.host, a.pathname.toLowerCase(), location.host].join('\\n') }})()"
            );
            js_sys::eval(&script)
                .ok()
                .and_then(|v| v.as_string())
                .unwrap_or_default()
        };
        let check = |href: &str, extras: Extras| {
            let text = parts(href);
            let p: Vec<&str> = text.split('\n').collect();
            assert_eq!(p.len(), 4, "{text}");
            is_outbound(
                Link {
                    protocol: p[0],
                    host: p[1],
                    path: p[2],
                },
                p[3],
                extras,
            )
        };
        assert!(!check("/docs/intro", Extras::NONE));
        assert!(check("https://elsewhere.test/x", Extras::NONE));
        assert!(check("HTTPS://ElseWhere.TEST/X", Extras::NONE));
        assert!(check(
            "files/report.pdf?dl=1#top",
            Extras {
                downloads: true,
                ..Extras::NONE
            }
        ));
        assert!(check("/files/REPORT.PDF", ALL), "as js/core.js: the path lower-cased");
        assert!(check("mailto:hi@site.test", ALL));
        assert!(!check("javascript:void(0)", ALL));
    }
}
