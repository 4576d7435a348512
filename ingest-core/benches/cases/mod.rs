//! The requests both benchmarks run: each built once from a fixed recipe, so
//! every run and every machine decodes the same bytes. A case has two sides:
//! `ours`, the path the worker takes from request bytes to validated events,
//! and `baseline`, the least work that turns the same bytes into a
//! `serde_json::Value` (plain parsing, plus inflating or base64 where the
//! bytes carry it).

// Shared by the two bench targets, each of which uses only part of it.
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use ingest_core::auth::KeyKind;
use ingest_core::dialect::{browser, empmix, mixpanel, vemetric};
use ingest_core::payload::decode_body;
use ingest_core::validate::{self, Admission};
use ingest_core::{Dialect, RequestContext};
use serde_json::{json, Value};
use std::io::{Read, Write};

/// The arrival time every case is validated against (2026-01-01T00:00:00Z),
/// so event times stay inside the accepted window however old the fixture.
pub const RECEIVED_AT_MS: i64 = 1_767_225_600_000;
/// Events are spread over the hour before arrival (inside `/track`'s 3 hours).
const SPREAD_MS: i64 = 60 * 60 * 1000;
const PROJECT: &str = "demo";
const TOKEN: &str = "demo-token";
const SECRET: &str = "demo-secret";
const CHROME_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
/// The cookieless visitor id the worker would pass for anonymous events.
const ANONYMOUS_ID: &str = "anon-2f1c9a0e5b7d4c38";

/// Events per `/import` request in the import cases (the endpoint's limit).
pub const IMPORT_EVENTS: usize = 2000;
/// Events per Emp-Mix bulk request (the endpoint's limit).
pub const BULK_EVENTS: usize = 1000;
/// Batch sizes for the per-event cost curve.
pub const SCALING_SIZES: [usize; 5] = [1, 10, 100, 1000, 2000];

/// Which request a case sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Mixpanel `/import`, a JSON array body.
    ImportJson,
    /// Mixpanel `/import`, newline-delimited JSON.
    ImportNdjson,
    /// Mixpanel `/import`, the JSON array gzipped (`Content-Encoding: gzip`).
    ImportGzip,
    /// Mixpanel `GET /track?data=<base64>` as mixpanel-browser sends it.
    TrackBase64,
    /// Vemetric `POST /e`, one page view.
    Vemetric,
    /// Emp-Mix `POST /public/track/bulk`.
    EmpMixBulk,
    /// Our tracker's `POST /collect`, one page view.
    Collect,
}

/// One named case: a kind of request and how many events it carries.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub kind: Kind,
    pub events: usize,
    /// What the request is, for the report.
    pub what: &'static str,
    /// What the baseline does with the same bytes, for the report.
    pub baseline: &'static str,
}

/// The cases of the decode table, in report order.
pub const CASES: [Case; 7] = [
    Case {
        name: "mixpanel_import_json",
        kind: Kind::ImportJson,
        events: IMPORT_EVENTS,
        what: "Mixpanel /import, JSON array of 2000 events",
        baseline: "serde_json::from_slice::<Value>",
    },
    Case {
        name: "mixpanel_import_ndjson",
        kind: Kind::ImportNdjson,
        events: IMPORT_EVENTS,
        what: "Mixpanel /import, NDJSON of 2000 events",
        baseline: "serde_json StreamDeserializer::<Value> over the lines",
    },
    Case {
        name: "mixpanel_import_gzip",
        kind: Kind::ImportGzip,
        events: IMPORT_EVENTS,
        what: "Mixpanel /import, gzip of the 2000-event JSON array",
        baseline: "flate2 gunzip, then serde_json::from_slice::<Value>",
    },
    Case {
        name: "mixpanel_track_base64_get",
        kind: Kind::TrackBase64,
        events: 1,
        what: "Mixpanel GET /track?data=<base64>&ip=1 (one mixpanel-browser event)",
        baseline: "form-decode `data`, base64-decode, serde_json::from_slice::<Value>",
    },
    Case {
        name: "vemetric_event",
        kind: Kind::Vemetric,
        events: 1,
        what: "Vemetric POST /e, one page view with customData and userData",
        baseline: "serde_json::from_slice::<Value>",
    },
    Case {
        name: "empmix_bulk_1000",
        kind: Kind::EmpMixBulk,
        events: BULK_EVENTS,
        what: "Emp-Mix POST /public/track/bulk, 1000 events",
        baseline: "serde_json::from_slice::<Value>",
    },
    Case {
        name: "collect_pageview",
        kind: Kind::Collect,
        events: 1,
        what: "our tracker's POST /collect, one page view",
        baseline: "serde_json::from_slice::<Value>",
    },
];

/// A case's request, built once.
pub struct Prepared {
    pub case: Case,
    /// The request body as it arrives (gzip for `ImportGzip`).
    pub body: Vec<u8>,
    /// The query string (without `?`).
    pub query: String,
    pub content_type: Option<&'static str>,
    pub content_encoding: Option<&'static str>,
    request: RequestContext,
}

/// The `/import` case at another batch size, for the cost curve.
pub fn import_of(events: usize) -> Case {
    Case { events, ..CASES[0] }
}

/// A case by name; `import_scaling/N` is the `/import` JSON case at N events.
pub fn find(name: &str) -> Option<Case> {
    if let Some(size) = name.strip_prefix("import_scaling/") {
        return size
            .parse()
            .ok()
            .filter(|n| (1..=IMPORT_EVENTS).contains(n))
            .map(import_of);
    }
    CASES.iter().copied().find(|c| c.name == name)
}

/// A deterministic 32-hex-digit id (the shape our tracker makes), so every
/// event has its own `$insert_id`.
fn hex_id(seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = String::with_capacity(32);
    for _ in 0..2 {
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 29;
        out.push_str(&format!("{x:016x}"));
    }
    out
}

fn event_time_ms(i: usize, n: usize) -> i64 {
    RECEIVED_AT_MS - SPREAD_MS + (i as i64 * SPREAD_MS) / n.max(1) as i64
}

/// One server-side event as the Mixpanel Python client or a pipeline sends it.
fn import_event(i: usize, n: usize) -> Value {
    let names = ["Purchase", "Signup", "Page View", "Add To Cart", "Search"];
    json!({
        "event": names[i % names.len()],
        "properties": {
            "time": event_time_ms(i, n) / 1000,
            "distinct_id": format!("user-{}", i % 137),
            "$insert_id": hex_id(i as u64),
            "$os": "Linux",
            "$browser": "Chrome",
            "$current_url": format!("https://shop.example/products/{}", i % 50),
            "plan": if i.is_multiple_of(3) { "pro" } else { "free" },
            "amount": (i % 200) as f64 * 0.5 + 4.99,
            "items": i % 7,
            "coupon": Value::Null,
            "tags": ["spring", "sale"],
            "utm_source": "newsletter",
        }
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

fn json_array(n: usize) -> Vec<u8> {
    let events: Vec<Value> = (0..n).map(|i| import_event(i, n)).collect();
    serde_json::to_vec(&events).expect("fixture serialises")
}

/// What mixpanel-browser puts in one `/track` event.
fn browser_mixpanel_event() -> Value {
    json!({
        "event": "$mp_web_page_view",
        "properties": {
            "$os": "Linux",
            "$browser": "Chrome",
            "$current_url": "https://shop.example/products/42?utm_source=newsletter",
            "$browser_version": 130,
            "$screen_height": 1080,
            "$screen_width": 1920,
            "mp_lib": "web",
            "$lib_version": "2.83.0",
            "$insert_id": "k4c1w2n8q0x7m3z5",
            "time": (RECEIVED_AT_MS - 1500) as f64 / 1000.0,
            "distinct_id": "$device:19a3f0c2e51-0b1c3d2e4f5a6-4c2f-8e3d",
            "$device_id": "19a3f0c2e51-0b1c3d2e4f5a6-4c2f-8e3d",
            "$initial_referrer": "$direct",
            "$initial_referring_domain": "$direct",
            "current_page_title": "Blue Mug | Shop",
            "current_domain": "shop.example",
            "current_url_path": "/products/42",
            "token": TOKEN,
        }
    })
}

fn vemetric_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "name": "$$pageView",
        "url": "https://shop.example/products/42",
        "contextId": "8461930275",
        "identifier": "user-42",
        "displayName": "Ann",
        "customData": {"plan": "pro", "experiment": "b", "cart_items": 3},
        "userData": {"set": {"plan": "pro"}, "setOnce": {"first_seen": "2025-12-31"}},
        "Token": TOKEN,
        "Allow-Cookies": "false",
        "V-SDK": "web",
        "V-SDK-Version": "0.6.1",
    }))
    .expect("fixture serialises")
}

fn empmix_bulk(n: usize) -> Vec<u8> {
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "event": if i.is_multiple_of(2) { "Signup" } else { "Login" },
                "distinct_id": format!("user-{}", i % 97),
                "timestamp": event_time_ms(i, n),
                "insert_id": hex_id(100_000 + i as u64),
                "properties": {"plan": "pro", "source": "api", "seats": i % 9, "trial": i.is_multiple_of(4)},
            })
        })
        .collect();
    serde_json::to_vec(&json!({"apiKey": SECRET, "events": events})).expect("fixture serialises")
}

fn collect_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "t": TOKEN,
        "e": [{
            "n": "$pageview",
            "i": hex_id(7),
            "ts": RECEIVED_AT_MS - 250,
            "u": "https://shop.example/products/42",
            "r": "https://search.example/?q=mug",
            "h": "Blue Mug | Shop",
            "s": "1920x1080",
            "d": hex_id(8),
            "p": {"variant": "b"},
        }]
    }))
    .expect("fixture serialises")
}

fn request_context() -> RequestContext {
    RequestContext {
        received_at_ms: RECEIVED_AT_MS,
        user_agent: Some(CHROME_UA.to_owned()),
        ip: Some("127.0.0.1".to_owned()),
        country: Some("DE".to_owned()),
        region: None,
        city: None,
        verified_bot: false,
        request_id: "bench-request".into(),
    }
}

impl Prepared {
    pub fn new(case: Case) -> Prepared {
        let mut prepared = Prepared {
            case,
            body: Vec::new(),
            query: String::new(),
            content_type: None,
            content_encoding: None,
            request: request_context(),
        };
        match case.kind {
            Kind::ImportJson => {
                prepared.body = json_array(case.events);
                prepared.content_type = Some("application/json");
                prepared.query = "strict=1".into();
            }
            Kind::ImportNdjson => {
                let n = case.events;
                let lines: Vec<String> = (0..n).map(|i| import_event(i, n).to_string()).collect();
                prepared.body = (lines.join("\n") + "\n").into_bytes();
                prepared.content_type = Some("application/x-ndjson");
                prepared.query = "strict=1".into();
            }
            Kind::ImportGzip => {
                prepared.body = gzip(&json_array(case.events));
                prepared.content_type = Some("application/json");
                prepared.content_encoding = Some("gzip");
                prepared.query = "strict=1".into();
            }
            Kind::TrackBase64 => {
                let data = STANDARD.encode(serde_json::to_vec(&browser_mixpanel_event()).expect("serialises"));
                let data: String = form_urlencoded::byte_serialize(data.as_bytes()).collect();
                prepared.query = format!("data={data}&ip=1&_=1767225598500");
            }
            Kind::Vemetric => {
                prepared.body = vemetric_body();
                prepared.content_type = Some("text/plain;charset=UTF-8");
            }
            Kind::EmpMixBulk => {
                prepared.body = empmix_bulk(case.events);
                prepared.content_type = Some("application/json");
            }
            Kind::Collect => {
                prepared.body = collect_body();
                prepared.content_type = Some("text/plain;charset=UTF-8");
            }
        }
        prepared
    }

    /// The admission the worker's route would give this request; the key
    /// kind follows the endpoint.
    fn context(&self, dialect: Dialect) -> Admission<'_> {
        Admission {
            project: PROJECT,
            // The benchmarked Emp-Mix request is a bulk one (secret key).
            key: match dialect {
                Dialect::MixpanelImport | Dialect::EmpMix | Dialect::Crm => KeyKind::Secret,
                _ => KeyKind::Public,
            },
            request: &self.request,
            anonymous_id: Some(ANONYMOUS_ID),
        }
    }

    /// The worker's path for this request, from the bytes as they arrive to
    /// validated events, without the network, auth lookups and the queue.
    /// Returns (events accepted, field errors).
    pub fn ours(&self) -> (usize, usize) {
        match self.case.kind {
            Kind::ImportJson | Kind::ImportNdjson | Kind::ImportGzip => {
                let Ok(body) = decode_body(&self.body, self.content_encoding) else {
                    return (0, 1);
                };
                let Ok(request) = mixpanel::decode_import(&self.query, &body, self.content_type) else {
                    return (0, 1);
                };
                let imported =
                    mixpanel::finish_import(request.items, &request.params, &self.context(Dialect::MixpanelImport));
                (imported.events.len(), imported.errors.len())
            }
            Kind::TrackBase64 => {
                // The worker reads the parameters once for the shape of an
                // error reply, then decodes.
                let params = mixpanel::TrackParams::parse(&self.query, &[]).unwrap_or_default();
                let Ok(request) = mixpanel::decode_track(&self.query, &[]) else {
                    return (0, 1);
                };
                let cx = self.context(Dialect::MixpanelTrack);
                let (events, errors) = mixpanel::finish_track(request.items, &params, &cx);
                (events.len(), errors.len())
            }
            Kind::Vemetric => {
                let Ok(body) = decode_body(&self.body, None) else {
                    return (0, 1);
                };
                let headers = vemetric::Headers::default();
                let Ok(request) = vemetric::decode_event(&body, &headers) else {
                    return (0, 1);
                };
                match vemetric::finish_event(request, &self.context(Dialect::Vemetric)) {
                    Ok(_) => (1, 0),
                    Err(errors) => (0, errors.len()),
                }
            }
            Kind::EmpMixBulk => {
                let Ok(body) = decode_body(&self.body, None) else {
                    return (0, 1);
                };
                let Ok(request) = empmix::decode_bulk(&body) else {
                    return (0, 1);
                };
                let (events, errors) = validate::finish_all(
                    request.drafts,
                    &self.context(Dialect::EmpMix).as_dialect(Dialect::EmpMix, false),
                );
                (events.len(), errors.len())
            }
            Kind::Collect => {
                let Ok(body) = decode_body(&self.body, None) else {
                    return (0, 1);
                };
                let Ok(batch) = browser::decode(&body) else {
                    return (0, 1);
                };
                let (events, errors) = browser::finish(batch.drafts, &self.context(Dialect::Browser));
                (events.len(), errors.len())
            }
        }
    }

    /// The raw parse of the same bytes. Returns how many top-level values
    /// (or array items) it produced, so the work cannot be optimised away.
    pub fn baseline(&self) -> usize {
        let parse = |bytes: &[u8]| match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Array(items)) => items.len(),
            Ok(_) => 1,
            Err(_) => 0,
        };
        match self.case.kind {
            Kind::ImportNdjson => serde_json::Deserializer::from_slice(&self.body)
                .into_iter::<Value>()
                .take_while(Result::is_ok)
                .count(),
            Kind::ImportGzip => {
                let mut inflated = Vec::new();
                if MultiGzDecoder::new(&self.body[..]).read_to_end(&mut inflated).is_err() {
                    return 0;
                }
                parse(&inflated)
            }
            Kind::TrackBase64 => {
                let data = form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == "data");
                match data.and_then(|(_, v)| STANDARD.decode(v.as_bytes()).ok()) {
                    Some(json) => parse(&json),
                    None => 0,
                }
            }
            _ => parse(&self.body),
        }
    }

    /// Fails loudly when a fixture stopped being valid: a benchmark of a
    /// request that is refused measures the wrong thing.
    pub fn check(&self) {
        let (accepted, errors) = self.ours();
        assert_eq!(
            (accepted, errors),
            (self.case.events, 0),
            "{}: every event must be accepted",
            self.case.name
        );
        assert!(self.baseline() > 0, "{}: the baseline must parse", self.case.name);
    }
}
