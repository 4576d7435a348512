//! Mixpanel's answers: `1`/`0`, `verbose` JSON, JSONP, the 1x1 GIF, a
//! redirect, and `/import`'s JSON in Mixpanel's shape.

use super::{ImportParams, TrackParams};
use crate::auth::redirect_allowed;
use crate::dialect::Reply;
use crate::error::{FieldError, IngestError};
use serde_json::{json, Value};

pub const GIF: &str = "image/gif";
pub const JAVASCRIPT: &str = "application/javascript";

/// A 1x1 transparent GIF for `img=1`: header, a two-colour palette, a
/// graphic control extension marking colour 0 transparent, one pixel of
/// colour 0 (LZW: clear code, 0, end code) and the trailer.
pub const PIXEL_GIF: [u8; 43] = [
    b'G', b'I', b'F', b'8', b'9', b'a', // signature and version
    0x01, 0x00, 0x01, 0x00, // width 1, height 1
    0x80, 0x00, 0x00, // global palette of 2 colours, background 0, no aspect
    0x00, 0x00, 0x00, 0xff, 0xff, 0xff, // palette: black, white
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, // transparency on colour 0
    0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, // image 1x1 at 0,0
    0x02, 0x02, 0x44, 0x01, 0x00, // LZW minimum size 2, one 2-byte block
    0x3b, // trailer
];

/// The answer to a validated `/track` or `/engage` request. Mixpanel
/// answers success when at least one item was valid.
pub fn track_reply(params: &TrackParams, accepted: usize, errors: &[FieldError], redirect_hosts: &[String]) -> Reply {
    if accepted > 0 || errors.is_empty() {
        track_ok(params, redirect_hosts)
    } else {
        track_error(params, &IngestError::Invalid(errors.to_vec()), redirect_hosts)
    }
}

pub fn track_ok(params: &TrackParams, redirect_hosts: &[String]) -> Reply {
    respond(params, 200, 1, None, redirect_hosts)
}

/// Refusals of the request's content answer 200 with `0`, as Mixpanel does;
/// the rest keep their status, because mixpanel-browser retries a batch on
/// 429 and 5xx and halves it on 413, and drops it on anything else.
pub fn track_error(params: &TrackParams, err: &IngestError, redirect_hosts: &[String]) -> Reply {
    let status = match err.status() {
        400 => 200,
        other => other,
    };
    respond(params, status, 0, Some(err.message()), redirect_hosts).retry_after_for(err)
}

fn respond(params: &TrackParams, status: u16, outcome: u8, error: Option<String>, redirect_hosts: &[String]) -> Reply {
    // GET is allowed, so no cache may answer in our place.
    let no_store = |reply: Reply| reply.with_header("Cache-Control", "no-store");
    if let Some(target) = params
        .redirect
        .as_deref()
        .filter(|t| redirect_allowed(t, redirect_hosts))
    {
        // The person clicked a link: they go on even if the event failed.
        return no_store(Reply::empty(302).with_header("Location", target));
    }
    let verbose = json!({ "status": outcome, "error": error });
    if params.img {
        return no_store(Reply {
            status,
            content_type: GIF,
            body: PIXEL_GIF.to_vec(),
            headers: Vec::new(),
        });
    }
    if let Some(callback) = params.callback.as_deref() {
        let payload = if params.verbose {
            verbose.to_string()
        } else {
            outcome.to_string()
        };
        return no_store(Reply {
            status,
            content_type: JAVASCRIPT,
            body: format!("{callback}({payload})").into_bytes(),
            headers: vec![("X-Content-Type-Options", "nosniff".to_owned())],
        });
    }
    if params.verbose {
        return no_store(Reply::json(status, &verbose));
    }
    no_store(Reply::text(status, outcome.to_string()))
}

/// The JSON answer to a validated `/import` request (see [`settle_import`]
/// for which answer a request gets).
pub fn import_reply(params: &ImportParams, imported: usize, errors: &[FieldError]) -> Reply {
    if (params.strict || params.verbose) && !errors.is_empty() {
        return failed_validation(params, imported, errors);
    }
    let mut body = json!({"code": 200, "num_records_imported": imported, "status": "OK"});
    if params.verbose {
        body["status"] = json!(1);
        body["error"] = Value::Null;
    }
    Reply::json(200, &body)
}

/// Errors of `/import` in Mixpanel's shape:
/// `{"code":401,"error":"…","status":"Unauthorized"}`, the status being the
/// reason phrase (as in Mixpanel's published OpenAPI description of the
/// ingestion API), or 0 for the Python client (`verbose=1`).
pub fn import_error(params: &ImportParams, err: &IngestError) -> Reply {
    if let IngestError::Invalid(errors) = err {
        return failed_validation(params, 0, errors);
    }
    let code = err.status();
    let status = if params.verbose { json!(0) } else { json!(reason(code)) };
    Reply::json(code, &json!({"code": code, "error": err.message(), "status": status})).retry_after_for(err)
}

/// Mixpanel lists one row per failed event: its first problem.
/// Mixpanel's `error` for an import with invalid events.
const FAILED_VALIDATION: &str = "some data points in the request failed validation";

pub(super) fn failed_validation(params: &ImportParams, imported: usize, errors: &[FieldError]) -> Reply {
    let mut rows = Vec::new();
    let mut last = None;
    for e in errors {
        if last == Some(e.index) {
            continue;
        }
        last = Some(e.index);
        let mut row = json!({"index": e.index, "field": e.field, "message": format!("'{}' {}", e.field, e.message)});
        if let Some(id) = &e.insert_id {
            row["$insert_id"] = json!(id);
        }
        rows.push(row);
    }
    let status = if params.verbose { json!(0) } else { json!("Bad Request") };
    // The libraries that ask for `verbose` show `error` alone: name the first
    // problem there too.
    let error = match rows
        .first()
        .and_then(|r| r["message"].as_str())
        .filter(|_| params.verbose)
    {
        Some(first) => format!("{FAILED_VALIDATION}: event {}: {first}", rows[0]["index"]),
        None => FAILED_VALIDATION.to_owned(),
    };
    Reply::json(
        400,
        &json!({
            "code": 400,
            "error": error,
            "failed_records": rows,
            "num_records_imported": imported,
            "status": status,
        }),
    )
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "error",
    }
}
