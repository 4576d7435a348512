//! Which clicked links are events: a link to a file (by its extension,
//! `data-file-types`, `$file_download`) and a link that leaves the site
//! (`$outbound_link`): to another host than the page's and the site's own
//! domains (`data-domains`), or, when the site asks for them
//! (`data-outbound="mailto tel"`), `mailto:` and `tel:`.

use crate::config::Config;
use crate::text;

/// The outbound-link event's name; its `href` property is the target.
pub const OUTBOUND_LINK: &str = "$outbound_link";
/// The file-download event's name; its `href` property is the file's URL.
pub const FILE_DOWNLOAD: &str = "$file_download";

/// File extensions that make a link a download unless `data-file-types`
/// gives others, comma separated.
pub const FILE_TYPES: &str = "7z,apk,avi,bz2,csv,deb,dmg,doc,docx,epub,exe,gz,iso,key,m4a,mov,mp3,mp4,msi,\
odp,ods,odt,pdf,pkg,ppt,pptx,rar,rpm,rtf,tar,tgz,txt,wav,wma,wmv,xls,xlsx,xz,zip";

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

/// A link as the browser parsed it: `a.protocol`, `a.hostname` (the URL
/// parser lower-cases host names, so they compare exactly) and `a.pathname`,
/// which the loader lower-cases for the file extensions.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub protocol: &'a str,
    pub host: &'a str,
    pub path: &'a str,
}

/// The event a click on `link` makes on a page at `page_host`
/// (`location.hostname`), if any.
pub fn event(link: Link<'_>, page_host: &str, cfg: &Config) -> Option<&'static str> {
    let types = match cfg.text("file-types") {
        "" => FILE_TYPES,
        mine => mine,
    };
    let leaves = match link.protocol {
        "mailto:" => cfg.has("outbound", "mailto"),
        "tel:" => cfg.has("outbound", "tel"),
        "http:" | "https:" => {
            if cfg!(feature = "downloads")
                && extension(link.path).is_some_and(|ext| text::words(types).any(|t| t == ext))
            {
                return Some(FILE_DOWNLOAD);
            }
            link.host != page_host && !(cfg!(feature = "domains") && cfg.has("domains", link.host))
        }
        // javascript:, data:, blob: and the like go nowhere else.
        _ => false,
    };
    leaves.then_some(OUTBOUND_LINK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const PAGE: &str = "site.test";

    fn link<'a>(protocol: &'a str, host: &'a str, path: &'a str) -> Link<'a> {
        Link { protocol, host, path }
    }

    fn with(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::new();
        let lines: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        c.set(&lines.join("\n"));
        c
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn other_hosts_are_outbound() {
        let cfg = Config::new();
        let of = |l| event(l, PAGE, &cfg);
        assert_eq!(of(link("https:", "other.test", "/")), Some(OUTBOUND_LINK));
        assert_eq!(
            of(link("http:", "www.site.test", "/")),
            Some(OUTBOUND_LINK),
            "a subdomain is another host"
        );
        assert_eq!(
            of(link("https:", "site.test", "/about")),
            None,
            "another port is the same host"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_sites_own_domains_are_not_outbound() {
        let cfg = with(&[("domains", "site.test www.site.test")]);
        assert_eq!(event(link("https:", "www.site.test", "/"), PAGE, &cfg), None);
        assert_eq!(event(link("https:", "site.test", "/"), "www.site.test", &cfg), None);
        assert_eq!(
            event(link("https:", "other.test", "/"), PAGE, &cfg),
            Some(OUTBOUND_LINK)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn other_schemes_only_when_asked() {
        let none = with(&[("outbound", "downloads")]);
        let all = with(&[("outbound", "mailto tel")]);
        assert_eq!(event(link("mailto:", "", "hi@site.test"), PAGE, &none), None);
        assert_eq!(
            event(link("mailto:", "", "hi@site.test"), PAGE, &all),
            Some(OUTBOUND_LINK)
        );
        assert_eq!(event(link("tel:", "", "+15550100"), PAGE, &none), None);
        assert_eq!(event(link("tel:", "", "+15550100"), PAGE, &all), Some(OUTBOUND_LINK));
        assert_eq!(event(link("javascript:", "", "void(0)"), PAGE, &all), None);
        assert_eq!(event(link("blob:", "", "https://site.test/x"), PAGE, &all), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn files_by_extension_on_any_host() {
        let cfg = Config::new();
        let of = |l| event(l, PAGE, &cfg);
        assert_eq!(
            of(link("https:", "site.test", "/files/report.pdf")),
            Some(FILE_DOWNLOAD)
        );
        assert_eq!(
            of(link("https:", "cdn.test", "/a.tar.gz")),
            Some(FILE_DOWNLOAD),
            "a file elsewhere"
        );
        assert_eq!(of(link("https:", "site.test", "/page.html")), None);
        assert_eq!(of(link("https:", "site.test", "/v1.2/")), None);
        assert_eq!(of(link("mailto:", "", "report.pdf")), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn file_types_replace_the_list() {
        let mine = with(&[("file-types", "js, py")]);
        assert_eq!(
            event(link("https:", PAGE, "/lib/app.js"), PAGE, &mine),
            Some(FILE_DOWNLOAD)
        );
        assert_eq!(
            event(link("https:", PAGE, "/report.pdf"), PAGE, &mine),
            None,
            "no longer listed"
        );
        let off = with(&[("file-types", "none")]);
        assert_eq!(event(link("https:", PAGE, "/report.pdf"), PAGE, &off), None);
        assert_eq!(
            event(link("https:", "other.test", "/report.pdf"), PAGE, &off),
            Some(OUTBOUND_LINK),
            "a file elsewhere is then an outbound link"
        );
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

    // In Chromium: the parts the loader hands over are the browser's own
    // parsing of an <a> (relative links resolved, `protocol` with its colon).
    #[wasm_bindgen_test]
    fn browser_link_parts() {
        let parts = |href: &str| {
            let script = format!(
                "(() => {{ const a = document.createElement('a'); a.href = {href:?}; \
                 return [a.protocol, a.hostname, a.pathname.toLowerCase(), location.hostname].join('\\n') }})()"
            );
            js_sys::eval(&script)
                .ok()
                .and_then(|v| v.as_string())
                .unwrap_or_default()
        };
        let all = with(&[("outbound", "mailto tel")]);
        let check = |href: &str| {
            let text = parts(href);
            let p: Vec<&str> = text.split('\n').collect();
            assert_eq!(p.len(), 4, "{text}");
            event(
                Link {
                    protocol: p[0],
                    host: p[1],
                    path: p[2],
                },
                p[3],
                &all,
            )
        };
        assert_eq!(check("/docs/intro"), None);
        assert_eq!(check("https://elsewhere.test/x"), Some(OUTBOUND_LINK));
        assert_eq!(check("HTTPS://ElseWhere.TEST/X"), Some(OUTBOUND_LINK));
        assert_eq!(check("files/report.pdf?dl=1#top"), Some(FILE_DOWNLOAD));
        assert_eq!(
            check("/files/REPORT.PDF"),
            Some(FILE_DOWNLOAD),
            "as js/core.js: the path lower-cased"
        );
        assert_eq!(check("mailto:hi@site.test"), Some(OUTBOUND_LINK));
        assert_eq!(check("javascript:void(0)"), None);
    }
}
