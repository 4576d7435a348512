//! Typed errors. Each dialect's encoder turns these into that API's own error
//! shape; the status code is decided once, here.

use serde::Serialize;
use thiserror::Error;

/// One problem with one field of one event in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Position of the event in the request (0 for single-event requests).
    pub index: usize,
    /// Dotted path of the field, e.g. `properties.time`.
    pub field: String,
    pub message: String,
    /// The event's `$insert_id` when it had one, for Mixpanel's
    /// `failed_records`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insert_id: Option<String>,
}

impl FieldError {
    /// `'field' is invalid: message`, or `'field' message` when the message
    /// already says so (seed 001's time error is quoted with its own "is
    /// invalid:").
    pub fn sentence(&self) -> String {
        if self.message.starts_with("is invalid: ") {
            format!("'{}' {}", self.field, self.message)
        } else {
            format!("'{}' is invalid: {}", self.field, self.message)
        }
    }

    pub fn new(index: usize, field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            index,
            field: field.into(),
            message: message.into(),
            insert_id: None,
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum IngestError {
    #[error("request exceeds max limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body was within [`crate::limits::MAX_BODY_BYTES`] on the wire
    /// but inflates past `limit`.
    #[error("decompressed request exceeds max limit of {limit} bytes")]
    InflatedTooLarge { limit: usize },
    #[error("compressed body expands more than {ratio} times")]
    CompressionRatio { ratio: usize },
    #[error("request body is empty")]
    EmptyBody,
    #[error("body is not valid {0}")]
    BadEncoding(&'static str),
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    BadRequest(String),
    /// A refusal the CRM API documents by name ([`crate::dialect::crm::error`]).
    #[error("{}", .0.message())]
    Refused(crate::dialect::crm::Refusal),
    #[error("JSON holds more than {limit} objects and arrays")]
    TooComplex { limit: usize },
    #[error("JSON holds more than {limit} values in its objects and arrays")]
    TooManyElements { limit: usize },
    #[error("too many events: {count}, at most {limit} per request")]
    TooManyEvents { count: usize, limit: usize },
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("this key may not use this endpoint")]
    Forbidden,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("unsupported content type")]
    UnsupportedMediaType,
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<FieldError>),
    #[error("storage is unavailable, retry later")]
    Unavailable,
    #[error("too many requests")]
    RateLimited { retry_after_seconds: u32 },
}

impl IngestError {
    /// The HTTP status every dialect uses for this error, unless its API
    /// documents another (Mixpanel `/track` answers 200 with body `0`).
    pub fn status(&self) -> u16 {
        match self {
            IngestError::PayloadTooLarge { .. }
            | IngestError::InflatedTooLarge { .. }
            | IngestError::CompressionRatio { .. } => 413,
            IngestError::TooManyEvents { .. }
            | IngestError::TooComplex { .. }
            | IngestError::TooManyElements { .. } => 413,
            IngestError::Unauthorized => 401,
            IngestError::Forbidden => 403,
            IngestError::MethodNotAllowed => 405,
            IngestError::UnsupportedMediaType => 415,
            IngestError::Unavailable => 503,
            IngestError::RateLimited { .. } => 429,
            IngestError::EmptyBody
            | IngestError::BadEncoding(_)
            | IngestError::InvalidJson(_)
            | IngestError::BadRequest(_)
            | IngestError::Refused(_)
            | IngestError::Invalid(_) => 400,
        }
    }

    /// Short message for APIs that carry one string.
    pub fn message(&self) -> String {
        match self {
            IngestError::Invalid(errors) => match errors.first() {
                Some(first) if errors.len() == 1 => first.sentence(),
                Some(first) => format!("{} (and {} more)", first.sentence(), errors.len() - 1),
                None => "invalid event".to_string(),
            },
            other => other.to_string(),
        }
    }
}
