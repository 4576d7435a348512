//! One module per API we speak. Each decodes its requests into
//! [`EventDraft`](crate::event::EventDraft)s (and profile operations) and
//! encodes its own responses and errors as a [`Reply`].

pub mod browser;
pub mod crm;
pub mod empmix;
pub mod mixpanel;
pub mod mixpanel_groups;
pub mod mixpanel_people;
pub mod plausible;
pub mod posthog;
pub mod umami;
pub mod vemetric;

/// An HTTP answer, built by a dialect and sent as is by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";

impl Reply {
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply {
            status,
            content_type: JSON,
            body: value.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: TEXT,
            body: body.into().into_bytes(),
            headers: Vec::new(),
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply::text(status, "")
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds `Retry-After` for the errors that have one.
    pub fn retry_after_for(self, error: &crate::IngestError) -> Reply {
        match error {
            crate::IngestError::Unavailable => self.with_header("Retry-After", "5"),
            crate::IngestError::RateLimited { retry_after_seconds } => {
                self.with_header("Retry-After", retry_after_seconds.to_string())
            }
            _ => self,
        }
    }
}

/// The request and admission the dialects' tests share: a browser's request
/// from a documentation address, opened with the public token.
#[cfg(test)]
pub(crate) mod test_request {
    use crate::event::RequestContext;
    use crate::validate::Admission;

    pub fn browser(received_at_ms: i64) -> RequestContext {
        RequestContext {
            received_at_ms,
            user_agent: Some("Mozilla/5.0".into()),
            ip: Some("203.0.113.9".into()),
            request_id: "req-1".into(),
            ..Default::default()
        }
    }

    pub fn public(request: &RequestContext) -> Admission<'_> {
        Admission {
            project: "demo",
            key: crate::auth::KeyKind::Public,
            request,
            anonymous_id: Some("cl-visitor"),
        }
    }
}
