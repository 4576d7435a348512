//! Reading events back: paging for `GET /public/events` (Emp-Mix) and date
//! ranges for the raw NDJSON export and stats.

use crate::error::IngestError;
use crate::limits::{EXPORT_DEFAULT_LIMIT, EXPORT_MAX_LIMIT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    /// 1-based.
    pub page: u32,
}

impl Page {
    pub fn offset(self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.limit)
    }

    /// Reads `limit` and `page` from a query string. A limit past the maximum
    /// is an error, not silently cut, so a client never believes it has
    /// everything when it does not.
    pub fn from_query(query: &str) -> Result<Page, IngestError> {
        let mut page = Page { limit: EXPORT_DEFAULT_LIMIT, page: 1 };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "limit" => {
                    page.limit = positive(&value, "limit")?;
                    if page.limit > EXPORT_MAX_LIMIT {
                        return Err(IngestError::BadRequest(format!("limit must be at most {EXPORT_MAX_LIMIT}")));
                    }
                }
                "page" => page.page = positive(&value, "page")?,
                _ => {}
            }
        }
        Ok(page)
    }
}

fn positive(value: &str, name: &str) -> Result<u32, IngestError> {
    match value.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(IngestError::BadRequest(format!("{name} must be a whole number of at least 1"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_offsets() {
        assert_eq!(Page::from_query(""), Ok(Page { limit: 50, page: 1 }));
        let p = Page::from_query("limit=10&page=3").expect("valid");
        assert_eq!((p.limit, p.page, p.offset()), (10, 3, 20));
    }

    #[test]
    fn limit_at_and_past_maximum() {
        assert_eq!(Page::from_query("limit=10000").map(|p| p.limit), Ok(EXPORT_MAX_LIMIT));
        assert!(Page::from_query("limit=10001").is_err());
        for bad in ["limit=0", "limit=-1", "limit=x", "page=0", "page=1.5"] {
            assert!(Page::from_query(bad).is_err(), "{bad}");
        }
    }
}
