//! HTTP plumbing shared by every route: bodies with a size cap, the request
//! facts the core needs, CORS, and turning a core [`Reply`] into a Response.

use futures_util::StreamExt;
use ingest_core::dialect::Reply;
use ingest_core::payload::WireBody;
use ingest_core::{IngestError, RequestContext};
use worker::{D1Database, Env, Headers, Request, Response, Result};

pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// Reads the body as it streams in, keeping at most [`MAX_BODY_BYTES`]: a
/// `Content-Length` past it is refused before reading, and a body without
/// one (chunked) is refused once it passes the cap. Reading goes on,
/// dropping everything, for at most [`BODY_DRAIN_BYTES`] more, so a client
/// slightly over the cap finishes sending and reads its 413; then the
/// stream is dropped and the rest never read, so a hostile upload costs us
/// at most those two, not its length. (A client that only reads answers
/// after sending a larger body may then see the connection closed instead.)
///
/// [`MAX_BODY_BYTES`]: ingest_core::limits::MAX_BODY_BYTES
/// [`BODY_DRAIN_BYTES`]: ingest_core::limits::BODY_DRAIN_BYTES
pub async fn read_body(req: &mut Request) -> std::result::Result<Vec<u8>, IngestError> {
    let mut body = WireBody::expect(header(req, "content-length").as_deref())?;
    // A request without a body has no stream: that is an empty body.
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new());
    };
    let mut refused = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| IngestError::BadEncoding("request body"))?;
        if let Err(e) = body.push(&chunk) {
            refused.get_or_insert(e);
        }
        if !body.read_on() {
            break;
        }
    }
    match refused {
        Some(e) => Err(e),
        None => Ok(body.into_bytes()),
    }
}

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The request URL's query string ("" when it has none).
pub fn query(req: &Request) -> std::result::Result<String, IngestError> {
    let url = req.url().map_err(|_| IngestError::BadRequest("bad URL".into()))?;
    Ok(url.query().unwrap_or("").to_owned())
}

/// The D1 database for a request's handler: missing is a 503, not a 500.
pub fn database(env: &Env) -> std::result::Result<D1Database, IngestError> {
    env.d1(crate::bindings::DB).map_err(|_| IngestError::Unavailable)
}

/// The facts about a request that validation, bots and identity use.
pub fn request_context(req: &Request) -> RequestContext {
    let cf = req.cf();
    RequestContext {
        received_at_ms: now_ms(),
        user_agent: header(req, "user-agent"),
        // Cloudflare sets this on every request; the IP is hashed, never kept.
        ip: header(req, "cf-connecting-ip"),
        country: cf.as_ref().and_then(|cf| cf.country()),
        region: cf.as_ref().and_then(|cf| cf.region()).filter(|r| !r.is_empty()),
        city: cf.as_ref().and_then(|cf| cf.city()).filter(|c| !c.is_empty()),
        verified_bot: cf.is_some_and(|cf| cf.verified_bot_category().is_some_and(|c| !c.is_empty())),
        request_id: crate::pipeline::random_uuid(),
    }
}

/// CORS for endpoints that browsers call from other origins. The origin is
/// echoed with credentials allowed, because Mixpanel's and Vemetric's
/// browser libraries send with `withCredentials`, which `*` does not satisfy.
/// No cookie of ours rides on these requests, so echoing grants nothing.
pub fn cors(headers: &Headers, origin: Option<&str>) {
    match origin {
        Some(origin) => {
            let _ = headers.set("Access-Control-Allow-Origin", origin);
            let _ = headers.set("Access-Control-Allow-Credentials", "true");
            let _ = headers.append("Vary", "Origin");
        }
        None => {
            let _ = headers.set("Access-Control-Allow-Origin", "*");
        }
    }
    let _ = headers.set("Access-Control-Expose-Headers", "Retry-After");
}

/// The answer to a CORS preflight on a browser-facing endpoint.
pub fn preflight(req: &Request) -> Result<Response> {
    let headers = Headers::new();
    cors(&headers, header(req, "origin").as_deref());
    headers.set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")?;
    let asked = header(req, "access-control-request-headers");
    headers.set(
        "Access-Control-Allow-Headers",
        asked
            .as_deref()
            .unwrap_or("Content-Type, Content-Encoding, Authorization, Token, Allow-Cookies"),
    )?;
    headers.set("Access-Control-Max-Age", "86400")?;
    Ok(Response::empty()?.with_status(204).with_headers(headers))
}

/// Which CORS answer a route family gets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Pages on any origin send here.
    Browser,
    /// Server SDKs and the dashboard on our own origin: no CORS at all.
    Server,
}

/// A server API's streamed 200 (the raw export): the same headers as
/// [`to_response`] gives server replies.
pub fn stream_response<S>(stream: S, content_type: &str) -> Result<Response>
where
    S: futures_util::TryStream + 'static,
    S::Ok: Into<Vec<u8>>,
    S::Error: Into<worker::Error>,
{
    let headers = Headers::new();
    headers.set("Content-Type", content_type)?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    headers.set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")?;
    Ok(Response::from_stream(stream)?.with_headers(headers))
}

pub fn to_response(reply: Reply, audience: Audience, origin: Option<&str>) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", reply.content_type)?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    for (name, value) in &reply.headers {
        headers.set(name, value)?;
    }
    match audience {
        Audience::Browser => cors(&headers, origin),
        // Export, stats and server APIs: nothing here is ever a document.
        Audience::Server => headers.set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")?,
    }
    let response = if reply.body.is_empty() && matches!(reply.status, 204 | 304) {
        Response::empty()?
    } else {
        Response::from_bytes(reply.body)?
    };
    Ok(response.with_status(reply.status).with_headers(headers))
}
