//! The Mixpanel family's unit tests: seeds 001 and 002 and the official
//! clients' requests, decoded, validated and answered.

use super::*;
use crate::auth::KeyKind;
use crate::dialect::{JSON, TEXT};
use crate::event::RequestContext;
use crate::event::{Dialect, EventDraft};
use crate::limits::MAX_CALLBACK_CHARS;
use crate::profile::ProfileOp;
use crate::validate::Admission;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

const NOW: i64 = 1_795_424_070_930;

fn request() -> RequestContext {
    RequestContext {
        received_at_ms: NOW,
        user_agent: Some("Mozilla/5.0".into()),
        ip: Some("203.0.113.9".into()),
        country: Some("DE".into()),
        region: None,
        city: None,
        verified_bot: false,
        request_id: "req-1".into(),
    }
}

/// A public token's request (`/track`, `/engage`).
fn cx<'a>(req: &'a RequestContext, anonymous_id: Option<&'a str>) -> Admission<'a> {
    Admission {
        project: "demo",
        key: KeyKind::Public,
        request: req,
        anonymous_id,
    }
}

/// A secret key's request (`/import`).
fn import_cx<'a>(req: &'a RequestContext, anonymous_id: Option<&'a str>) -> Admission<'a> {
    Admission {
        key: KeyKind::Secret,
        ..cx(req, anonymous_id)
    }
}

fn drafts(items: &[EventItem]) -> Vec<&EventDraft> {
    items.iter().filter_map(|i| i.as_ref().ok()).collect()
}

fn body_json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or_default()
}

fn fields(errors: &[FieldError]) -> Vec<(usize, &str)> {
    errors.iter().map(|e| (e.index, e.field.as_str())).collect()
}

/// The `/track` example of seed 002, as its URL carries it.
const SEED_QUERY: &str = "data=eyJldmVudCI6ICJnYW1lIiwgInByb3BlcnRpZXMiOiB7ImlwIjogIjEyMy4xMjMuMTIzLjEyMyIsICJ0b2tlbiI6ICJlM2JiNDEwMDMzMGMzNTcyMjc0MGZiOGM2ZjVhYmRkYyIsICJ0aW1lIjogMTI0NTYxMzg4NSwgImFjdGlvbiI6ICJwbGF5In19&ip=1";

#[test]
fn seed_track_example_decodes_and_is_too_old_for_track() {
    let req = decode_track(SEED_QUERY, b"").expect("decodes");
    assert_eq!(req.token.as_deref(), Some("e3bb4100330c35722740fb8c6f5abddc"));
    assert!(req.params.ip && req.params.geolocate && !req.params.verbose);
    let d = drafts(&req.items)[0].clone();
    assert_eq!(d.name, Some(json!("game")));
    assert_eq!(d.time, Some(json!(1_245_613_885)));
    assert_eq!(
        Value::Object(d.properties.clone()),
        json!({"action": "play"}),
        "ip and token never kept"
    );

    // 2009 is far more than three hours ago.
    let r = request();
    let (events, errors) = finish_track(req.items.clone(), &req.params, &cx(&r, Some("cl-x")));
    assert!(events.is_empty());
    assert_eq!(fields(&errors), [(0, "properties.time")]);

    // Received right then, it is fine, and the cookieless id is not needed.
    let then = RequestContext {
        received_at_ms: 1_245_613_885_000,
        ..request()
    };
    let (events, errors) = finish_track(req.items, &req.params, &cx(&then, Some("cl-x")));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(events[0].distinct_id, "cl-x", "ip=1 lets the visitor hash stand in");
    assert_eq!(events[0].source, Dialect::MixpanelTrack);
}

/// Issue 23 part 5: seed 002 ties the address standing in for a
/// missing distinct_id to `ip=1`; without it the event is nobody's.
#[test]
fn only_ip_1_lets_the_visitor_hash_stand_in_for_a_missing_id() {
    let event = json!({"event": "ping", "properties": {"token": "t", "time": 1_795_424_000}});
    let r = request();
    let outcome = |query: &str| {
        let req = decode_track(&format!("data={}&{query}", STANDARD.encode(event.to_string())), b"").expect("decodes");
        let (events, errors) = finish_track(req.items, &req.params, &cx(&r, Some("cl-x")));
        assert!(errors.is_empty(), "{errors:?}");
        let e = &events[0];
        (e.distinct_id.clone(), e.device_id.clone(), e.country.clone())
    };
    assert_eq!(outcome("ip=1"), ("cl-x".into(), Some("cl-x".into()), Some("DE".into())));
    assert_eq!(outcome("ip=0"), (String::new(), None, None));
    assert_eq!(outcome("verbose=1"), (String::new(), None, Some("DE".into())));
    // An id the client sent is never replaced.
    let known = json!({"event": "ping", "properties": {"token": "t", "distinct_id": "u-1"}});
    let req = decode_track(&format!("data={}&ip=1", STANDARD.encode(known.to_string())), b"").expect("decodes");
    let (events, _) = finish_track(req.items, &req.params, &cx(&r, Some("cl-x")));
    assert_eq!(
        (events[0].distinct_id.as_str(), events[0].device_id.as_deref()),
        ("u-1", None)
    );
}

/// What the Python client 5.4.1 posts for `track` (captured shape).
fn python_track_body() -> String {
    let event = json!({"event": "Signed Up", "properties": {"token": "TOKEN123", "distinct_id": "u-42",
        "time": 1_795_424_001.152_876_6_f64, "$insert_id": "0f8fad5bd9cb469fa16570867728950e",
        "mp_lib": "python", "$lib_version": "5.4.1", "plan": "pro"}});
    let encoded: String = form_urlencoded::byte_serialize(event.to_string().as_bytes()).collect();
    format!("data={encoded}&verbose=1&ip=0")
}

#[test]
fn python_client_form_body() {
    let req = decode_track("", python_track_body().as_bytes()).expect("decodes");
    assert_eq!(req.token.as_deref(), Some("TOKEN123"));
    let p = &req.params;
    assert!(p.verbose && !p.ip && !p.geolocate && !p.img && !p.test);
    let d = drafts(&req.items)[0];
    assert_eq!(d.insert_id, Some(json!("0f8fad5bd9cb469fa16570867728950e")));
    assert!(!d.properties.contains_key("mp_lib"));
    assert_eq!(d.properties["$lib_version"], "5.4.1");

    let r = request();
    let (events, errors) = finish_track(req.items, &req.params, &cx(&r, Some("cl-x")));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        events[0].time_ms, 1_795_424_001_153,
        "float seconds keep their milliseconds"
    );
    assert_eq!(events[0].country, None, "ip=0: not placed by the request's address");
    assert_eq!(events[0].distinct_id, "u-42");
}

#[test]
fn only_the_first_of_each_known_parameter_is_kept() {
    // Regression: every pair of a form body was kept as owned strings,
    // about 50 MiB for a 2 MiB body of `a&a&…`.
    let body = format!("{}&{}&data=second&verbose=0", "a&".repeat(100_000), python_track_body());
    let transport = Transport::new("?verbose=0&img=1&x=1", body.as_bytes());
    assert_eq!(transport.form.len(), 3, "data, verbose, ip");
    assert_eq!(transport.query.len(), 2, "verbose, img");
    assert_eq!(transport.get("verbose"), Some("1"), "the body's first value wins");
    assert_eq!(transport.get("img"), Some("1"), "the query fills in");
    let req = decode_track("", body.as_bytes()).expect("decodes");
    assert_eq!(req.token.as_deref(), Some("TOKEN123"));
}

/// mixpanel-browser 2.83.0, batched, default base64 payload.
fn browser_batch() -> Value {
    let event = |name: &str, id: &str| {
        json!({"event": name, "properties": {"$os": "Linux", "$browser": "Chrome",
            "$current_url": "https://shop.example.com/p?q=1", "$referrer": "https://google.com/",
            "$screen_height": 1080, "$screen_width": 1920, "mp_lib": "web", "$lib_version": "2.83.0",
            "$insert_id": id, "time": 1_795_424_065.918_f64, "distinct_id": "$device:18c2f",
            "$device_id": "18c2f", "token": "demo-token", "mp_sent_by_lib_version": "2.83.0"}})
    };
    json!([
        event("Signed Up", "k3j2h1g0f9e8d7c6"),
        event("$identify", "a1b2c3d4e5f6g7h8")
    ])
}

#[test]
fn browser_batch_in_base64_form_body() {
    let data: String =
        form_urlencoded::byte_serialize(STANDARD.encode(browser_batch().to_string()).as_bytes()).collect();
    let body = format!("data={data}");
    let req = decode_track("?verbose=1&ip=1&_=1795424070930", body.as_bytes()).expect("decodes");
    assert!(req.params.verbose && req.params.ip);
    assert_eq!(req.token.as_deref(), Some("demo-token"));
    let d = drafts(&req.items);
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].page.url.as_deref(), Some("https://shop.example.com/p?q=1"));
    assert_eq!(d[0].page.referrer.as_deref(), Some("https://google.com/"));
    assert_eq!(d[0].page.screen.as_deref(), Some("1920x1080"));
    assert_eq!(d[0].device_id, Some(json!("18c2f")));
    assert!(d[0].properties.keys().all(|k| !k.starts_with("mp_")));
    assert!(!d[0].properties.contains_key("$current_url"));

    let r = request();
    let (events, errors) = finish_track(req.items, &req.params, &cx(&r, None));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(events[1].name, "$identify");
    assert_eq!(events[0].time_ms, 1_795_424_065_918);
    assert_eq!(events[0].country.as_deref(), Some("DE"));
}

#[test]
fn every_transport_gives_the_same_events() {
    let one = json!({"event": "e", "properties": {"token": "t", "distinct_id": "u", "time": 1_795_424_000}});
    let text = one.to_string();
    let std = STANDARD.encode(&text);
    let url_safe = URL_SAFE_NO_PAD.encode(&text);
    let expected = decode_track(&format!("data={}", urlencode(&text)), b"")
        .expect("query json")
        .items;
    let bodies = [
        // sendBeacon: a form string posted as text/plain
        (String::new(), format!("data={}", urlencode(&std))),
        // a client that forgot to percent-encode base64: '+' arrives as ' '
        (String::new(), format!("data={std}")),
        (String::new(), format!("data={url_safe}")),
        (String::new(), format!("data={}", urlencode(&text))),
        // raw JSON body, parameters in the query
        ("verbose=1".to_owned(), text.clone()),
        (format!("data={}", urlencode(std.trim_end_matches('='))), String::new()),
    ];
    for (query, body) in bodies {
        let got = decode_track(&query, body.as_bytes()).map(|r| r.items);
        assert_eq!(got.as_ref().ok(), Some(&expected), "{query} | {body}");
    }
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[test]
fn batch_size_at_and_past_limit() {
    let one = json!({"event": "e", "properties": {"token": "t", "distinct_id": "u"}});
    let body = |n: usize| format!("data={}", urlencode(&Value::Array(vec![one.clone(); n]).to_string()));
    let at = decode_track("", body(MAX_BROWSER_BATCH_EVENTS).as_bytes()).map(|r| r.items.len());
    assert_eq!(at.ok(), Some(MAX_BROWSER_BATCH_EVENTS));
    assert!(matches!(
        decode_track("", body(MAX_BROWSER_BATCH_EVENTS + 1).as_bytes()),
        Err(IngestError::TooManyEvents { count: 51, limit: 50 })
    ));
    assert!(matches!(
        decode_engage("", body(MAX_BROWSER_BATCH_EVENTS + 1).as_bytes()),
        Err(IngestError::TooManyEvents { .. })
    ));
}

#[test]
fn shapes_the_request_cannot_have() {
    for (query, body) in [
        ("", &b""[..]),
        ("", b"verbose=1"),
        ("data=", b""),
        ("", b"data=%21%21%21"),
        ("", b"data=5"),
        ("", b"[]"),
        ("", b"{oops"),
    ] {
        let status = decode_track(query, body).err().map(|e| e.status());
        assert_eq!(status, Some(400), "{query} | {}", String::from_utf8_lossy(body));
    }
    let mixed = br#"[{"event":"a","properties":{"token":"t1"}},{"event":"b","properties":{"token":"t2"}}]"#;
    assert!(matches!(decode_track("", mixed), Err(IngestError::BadRequest(_))));
    // One bad item keeps its place; the others still decode.
    let partly = br#"[{"event":"a","properties":{"token":"t"}}, 7, {"event":"c","properties":[]}]"#;
    let req = decode_track("", partly).expect("decodes");
    assert_eq!(req.items.len(), 3);
    let errors: Vec<FieldError> = req.items.iter().filter_map(|i| i.clone().err()).flatten().collect();
    assert_eq!(fields(&errors), [(1, "event"), (2, "properties")]);
    assert_eq!(req.token.as_deref(), Some("t"));
}

#[test]
fn track_age_at_and_past_limit() {
    let at = |time_ms: i64| {
        let body = json!({"event": "e", "properties": {"token": "t", "distinct_id": "u", "time": time_ms}});
        let req = decode_track("", body.to_string().as_bytes()).expect("decodes");
        let r = request();
        finish_track(req.items, &req.params, &cx(&r, None)).1
    };
    assert!(at(NOW - crate::limits::MAX_TRACK_AGE_MS).is_empty());
    assert_eq!(
        fields(&at(NOW - crate::limits::MAX_TRACK_AGE_MS - 1)),
        [(0, "properties.time")]
    );
}

#[test]
fn funnel_event_from_the_seed_and_its_rules() {
    let props = |extra: Value| {
        let mut p = json!({"ip": "123.123.123.123", "token": "e3bc4100330c35722740fb8c6f5abddc",
            "time": 1_795_424_000, "gender": "male", "funnel": "My Funnel", "step": 1, "goal": "Impression",
            "distinct_id": "u"});
        if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                p.insert(k.clone(), v.clone());
            }
        }
        json!({"event": "mp_funnel", "properties": p}).to_string()
    };
    let run = |body: String| {
        let req = decode_track("", body.as_bytes()).expect("decodes");
        let r = request();
        finish_track(req.items, &req.params, &cx(&r, None))
    };
    let (events, errors) = run(props(json!({})));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(events[0].properties["funnel"], "My Funnel");
    let (_, errors) = run(props(json!({"step": 0, "funnel": "", "goal": null})));
    assert_eq!(
        fields(&errors),
        [(0, "properties.step"), (0, "properties.funnel"), (0, "properties.goal")]
    );
    let (_, errors) = run(props(json!({"step": 1.5})));
    assert_eq!(fields(&errors), [(0, "properties.step")]);
}

#[test]
fn callback_names_at_and_past_limit() {
    for good in ["cb", "jQuery1830_1700000000", "window.mp.cb", "$", "_a$1"] {
        let p = TrackParams::parse(&format!("callback={good}"), b"").expect(good);
        assert_eq!(p.callback.as_deref(), Some(good));
    }
    let at = "a".repeat(MAX_CALLBACK_CHARS);
    assert!(TrackParams::parse(&format!("callback={at}"), b"").is_ok());
    let past = "a".repeat(MAX_CALLBACK_CHARS + 1);
    for bad in [past.as_str(), "alert(1)", "a..b", "1a", "a-b", ".a", "a.", "x;y", "é"] {
        let err = TrackParams::parse(&format!("callback={}", urlencode(bad)), b"").err();
        let message = err.as_ref().map(IngestError::message).unwrap_or_default();
        assert!(matches!(err, Some(IngestError::BadRequest(_))), "{bad}");
        assert!(!message.contains(bad), "never reflected");
    }
    assert_eq!(TrackParams::parse("callback=", b"").map(|p| p.callback), Ok(None));
}

#[test]
fn track_replies_in_every_shape() {
    let plain = TrackParams::default();
    let ok = track_ok(&plain, &[]);
    assert_eq!((ok.status, ok.body.as_slice(), ok.content_type), (200, &b"1"[..], TEXT));
    let invalid = IngestError::Invalid(vec![FieldError::new(0, "event", "is required")]);
    let no = track_error(&plain, &invalid, &[]);
    assert_eq!((no.status, no.body.as_slice()), (200, &b"0"[..]));

    let verbose = TrackParams {
        verbose: true,
        ..TrackParams::default()
    };
    assert_eq!(body_json(&track_ok(&verbose, &[])), json!({"status": 1, "error": null}));
    let reply = track_error(&verbose, &invalid, &[]);
    assert_eq!(
        body_json(&reply),
        json!({"status": 0, "error": "'event' is invalid: is required"})
    );
    assert_eq!(reply.content_type, JSON);

    // Statuses that make mixpanel-browser retry or split are kept.
    let busy = track_error(&verbose, &IngestError::Unavailable, &[]);
    assert_eq!(busy.status, 503);
    assert!(busy.headers.iter().any(|(k, v)| *k == "Retry-After" && v == "5"));
    assert_eq!(
        track_error(&plain, &IngestError::TooManyEvents { count: 51, limit: 50 }, &[]).status,
        413
    );
    assert_eq!(track_error(&plain, &IngestError::Unauthorized, &[]).status, 401);

    let img = TrackParams {
        img: true,
        ..TrackParams::default()
    };
    let pixel = track_ok(&img, &[]);
    assert_eq!((pixel.content_type, pixel.body.as_slice()), (GIF, &PIXEL_GIF[..]));

    let jsonp = TrackParams {
        callback: Some("mp.cb".into()),
        ..TrackParams::default()
    };
    let reply = track_ok(&jsonp, &[]);
    assert_eq!(
        (reply.content_type, reply.body.as_slice()),
        (JAVASCRIPT, &b"mp.cb(1)"[..])
    );
    let jsonp_verbose = TrackParams { verbose: true, ..jsonp };
    assert_eq!(
        track_ok(&jsonp_verbose, &[]).body,
        br#"mp.cb({"error":null,"status":1})"#.to_vec()
    );
    assert!(reply
        .headers
        .iter()
        .any(|(k, v)| *k == "X-Content-Type-Options" && v == "nosniff"));
    assert!(reply.headers.iter().any(|(k, _)| *k == "Cache-Control"));

    // Partial success is success.
    let errors = [FieldError::new(1, "event", "is required")];
    assert_eq!(track_reply(&plain, 1, &errors, &[]).body, b"1".to_vec());
    assert_eq!(track_reply(&plain, 0, &errors, &[]).body, b"0".to_vec());
}

#[test]
fn pixel_is_a_well_formed_gif() {
    assert_eq!(&PIXEL_GIF[..6], b"GIF89a");
    assert_eq!(PIXEL_GIF[PIXEL_GIF.len() - 1], 0x3b);
    // Width and height are both 1 (little endian).
    assert_eq!(&PIXEL_GIF[6..10], &[1, 0, 1, 0]);
}

#[test]
fn redirect_reply_goes_on_even_after_a_failure() {
    let params = TrackParams {
        redirect: Some("https://example.com/next".into()),
        ..TrackParams::default()
    };
    let hosts = vec!["example.com".to_owned()];
    let reply = track_error(&params, &IngestError::Invalid(Vec::new()), &hosts);
    assert_eq!(reply.status, 302);
    assert!(reply
        .headers
        .iter()
        .any(|(k, v)| *k == "Location" && v == "https://example.com/next"));
    // Not allowed: the usual answer, no redirect.
    assert_eq!(track_ok(&params, &[]).status, 200);
}

#[test]
fn engage_python_and_browser_updates() {
    let python = json!({"$token": "TOKEN123", "$time": 1_795_424_001.5_f64, "$distinct_id": "u-42",
        "$set": {"plan": "pro"}});
    let body = format!("data={}&verbose=1&ip=0", urlencode(&python.to_string()));
    let req = decode_engage("", body.as_bytes()).expect("decodes");
    assert_eq!(req.token.as_deref(), Some("TOKEN123"));
    let r = request();
    let (updates, errors) = finish_engage(req.items, &req.params, &cx(&r, None));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(updates[0].distinct_id, "u-42");
    assert_eq!(updates[0].time_ms, 1_795_424_001_500);
    assert_eq!(updates[0].project, "demo");

    let browser = json!([{"$set": {"$browser": "Chrome", "name": "Ann"}, "$token": "demo-token",
        "$distinct_id": "u-1", "$device_id": "18c2f", "$user_id": "u-1"},
        {"$union": {"tags": ["a"]}, "$token": "demo-token", "$distinct_id": "u-1"}]);
    let body = format!("data={}", urlencode(&STANDARD.encode(browser.to_string())));
    let req = decode_engage("verbose=1", body.as_bytes()).expect("decodes");
    let (updates, errors) = finish_engage(req.items, &req.params, &cx(&r, None));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(updates.len(), 2);
    assert!(matches!(&updates[1].ops[..], [ProfileOp::Union(_)]));
}

/// The Node library's `people.set(id, props, {$ignore_time, $ip})`
/// (GET, base64, `ip=0` unless `geolocate`), and a browser's update.
#[test]
fn engage_modifiers_decide_last_seen_and_country() {
    let r = request();
    let run = |update: Value, query: &str| {
        let req = decode_engage(&format!("{query}&data={}", base64_param(&update)), b"").expect("decodes");
        let (updates, errors) = finish_engage(req.items, &req.params, &cx(&r, None));
        assert!(errors.is_empty(), "{errors:?}");
        crate::profile::apply(None, &updates[0].ops).map_or(Value::Null, Value::Object)
    };
    let set = |extra: Value| {
        let mut u = json!({"$token": "t", "$distinct_id": "u", "$set": {"plan": "pro"}});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            u[k] = v;
        }
        u
    };
    let seen = crate::time::utc_datetime(NOW);
    assert_eq!(run(set(json!({})), "ip=0"), json!({"plan": "pro", "$last_seen": seen}));
    assert_eq!(
        run(set(json!({})), "ip=1"),
        json!({"plan": "pro", "$last_seen": seen, "$country_code": "DE"})
    );
    assert_eq!(
        run(set(json!({"$ignore_time": true, "$ip": "0"})), "ip=1"),
        json!({"plan": "pro"})
    );
    assert_eq!(
        run(set(json!({"$ip": "198.51.100.7"})), "ip=1"),
        json!({"plan": "pro", "$last_seen": seen}),
        "an address we cannot place is not kept either"
    );
    let timed = set(json!({"$time": 1_700_000_000_999_i64}));
    assert_eq!(run(timed, "ip=0")["$last_seen"], "2023-11-14T22:13:20");
}

#[test]
fn engage_operations_come_in_a_fixed_order() {
    let update = json!({"$token": "t", "$distinct_id": "u", "$delete": "", "$unset": ["a"],
        "$remove": {"l": 1}, "$union": {"l": [2]}, "$append": {"l": 3}, "$add": {"n": 1},
        "$set_once": {"s": 1}, "$set": {"s": 2}});
    let req = decode_engage("", update.to_string().as_bytes()).expect("decodes");
    let ops = match &req.items[0] {
        Ok(d) => d.profile.ops.iter().map(ProfileOp::key).collect::<Vec<_>>(),
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(
        ops,
        [
            "$set",
            "$set_once",
            "$add",
            "$append",
            "$union",
            "$remove",
            "$unset",
            "$delete"
        ]
    );
}

#[test]
fn engage_errors_stay_with_their_update() {
    let body = json!([{"$token": "t", "$distinct_id": "u", "$set": 5},
        {"$token": "t", "$distinct_id": "u", "$unset": "a"},
        {"$token": "t", "$set": {"a": 1}},
        {"$token": "t", "$distinct_id": "u"},
        {"$token": "t", "$distinct_id": "u", "$add": {"n": "x"}},
        {"$token": "t", "$distinct_id": "u", "$unset": ["a", "b"]}]);
    let req = decode_engage("", body.to_string().as_bytes()).expect("decodes");
    let r = request();
    let (updates, errors) = finish_engage(req.items, &req.params, &cx(&r, Some("cl-x")));
    assert_eq!(updates.len(), 1);
    assert_eq!(
        fields(&errors),
        [
            (0, "$set"),
            (1, "$unset"),
            (2, "distinct_id"),
            (3, "ops"),
            (4, "$add.n")
        ]
    );
}

/// The import example of Mixpanel's documentation.
const IMPORT_ARRAY: &str = r#"[
  {"event": "Signup", "properties": {"time": 1618716477000,"distinct_id": "91304156-cafc-4673-a237-623d1129c801","$insert_id": "29fc2962-6d9c-455d-95ad-95b84f09b9e4","Referred by": "Friend","URL": "mixpanel.com/signup"}},
  {"event": "Purchase", "properties": {"time": 1618716477000,"distinct_id": "91304156-cafc-4673-a237-623d1129c801","$insert_id": "935d87b1-00cd-41b7-be34-b9d98dd08b42","Item": "Coffee", "Amount": 5.0}}
]"#;

#[test]
fn import_json_array_and_ndjson() {
    let req = decode_import(
        "strict=1&project_id=12345",
        IMPORT_ARRAY.as_bytes(),
        Some("application/json"),
    )
    .expect("decodes");
    assert_eq!(
        req.params,
        ImportParams {
            strict: true,
            verbose: false,
            project_id: Some("12345".into()),
            legacy: false,
            skip_geolocation: false,
        }
    );
    let r = request();
    let Imported { events, links, errors } = finish_import(req.items, &req.params, &import_cx(&r, Some("cl-x")));
    assert!(errors.is_empty() && links.is_empty(), "{errors:?}");
    assert_eq!(
        events[0].country.as_deref(),
        Some("DE"),
        "no ip=0: placed by the request"
    );
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].insert_id, "935d87b1-00cd-41b7-be34-b9d98dd08b42");
    assert_eq!(events[0].time_ms, 1_618_716_477_000);
    assert_eq!(events[0].source, Dialect::MixpanelImport);

    let ndjson: String = IMPORT_ARRAY
        .lines()
        .filter(|l| l.contains("event"))
        .map(|l| format!("{}\n", l.trim().trim_end_matches(',')))
        .collect();
    let req = decode_import("", ndjson.as_bytes(), Some("application/x-ndjson")).expect("decodes");
    assert_eq!(req.items.len(), 2);
}

#[test]
fn import_from_the_python_client_form() {
    let event = json!({"event": "SA Event", "properties": {"token": "TOKEN123", "distinct_id": "u",
        "time": 1_700_000_000, "$insert_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "mp_lib": "python"}});
    let body = format!("data={}&verbose=1&ip=0&api_key=legacy", urlencode(&event.to_string()));
    let req = decode_import(
        "project_id=12345",
        body.as_bytes(),
        Some("application/x-www-form-urlencoded"),
    )
    .expect("decodes");
    assert!(req.params.verbose && !req.params.strict);
    let d = drafts(&req.items)[0];
    assert!(!d.properties.contains_key("token") && !d.properties.contains_key("mp_lib"));
    let ok = import_reply(&req.params, 1, &[]);
    // The Python client reads a numeric status and the error.
    assert_eq!(
        body_json(&ok),
        json!({"code": 200, "num_records_imported": 1, "status": 1, "error": null})
    );
}

#[test]
fn import_requires_its_four_fields_and_real_ids() {
    let body = json!([
        {"event": "ok", "properties": {"time": 1_700_000_000, "distinct_id": "u", "$insert_id": "a-1"}},
        {"event": "e", "properties": {"distinct_id": "u", "$insert_id": "a-2"}},
        {"event": "e", "properties": {"time": 1_700_000_000, "$device_id": "d", "$insert_id": "a-3"}},
        {"event": "e", "properties": {"time": 1_700_000_000, "distinct_id": "u"}},
        {"properties": {"time": 1_700_000_000, "distinct_id": "u", "$insert_id": "a-5"}},
        {"event": "e", "properties": {"time": 1_700_000_000, "distinct_id": "Undefined", "$insert_id": "a-6"}},
        {"event": "e", "properties": {"time": 1_700_000_000, "distinct_id": -1, "$insert_id": "null"}},
        "not an event"
    ]);
    let req = decode_import("strict=1", body.to_string().as_bytes(), None).expect("decodes");
    let r = request();
    let Imported { events, errors, .. } = finish_import(req.items, &req.params, &import_cx(&r, Some("cl-x")));
    assert_eq!(events.len(), 1, "the cookieless id never stands in for imports");
    assert_eq!(
        fields(&errors),
        [
            (1, "properties.time"),
            (2, "properties.distinct_id"),
            (3, "properties.$insert_id"),
            (4, "event"),
            (5, "properties.distinct_id"),
            (6, "properties.distinct_id"),
            (6, "properties.$insert_id"),
            (7, "event"),
        ]
    );
    assert_eq!(errors[0].insert_id.as_deref(), Some("a-2"));

    let reply = import_reply(&req.params, events.len(), &errors);
    assert_eq!(reply.status, 400);
    let body = body_json(&reply);
    assert_eq!(body["error"], "some data points in the request failed validation");
    assert_eq!(
        (body["code"].clone(), body["status"].clone()),
        (json!(400), json!("Bad Request"))
    );
    assert_eq!(body["num_records_imported"], 1);
    let rows = body["failed_records"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 7, "one row per failed event");
    assert_eq!(
        rows[0],
        json!({"index": 1, "$insert_id": "a-2", "field": "properties.time",
        "message": "'properties.time' is required"})
    );
    assert!(rows[6].get("$insert_id").is_none());

    // Not strict: the invalid ones are skipped, and the count says so.
    let quiet = import_reply(&ImportParams::default(), 1, &errors);
    assert_eq!(
        body_json(&quiet),
        json!({"code": 200, "num_records_imported": 1, "status": "OK"})
    );
    // verbose=1 reads `status`: never 1 for a request that stored less
    // than it sent.
    let verbose = ImportParams {
        verbose: true,
        ..Default::default()
    };
    let told = import_reply(&verbose, 1, &errors);
    assert_eq!((told.status, body_json(&told)["status"].clone()), (400, json!(0)));
}

fn base64_param(value: &Value) -> String {
    urlencode(&STANDARD.encode(value.to_string()))
}

/// The Node library's `import` (GET, base64 `data`, `ip=0&verbose=0`)
/// and `import_batch` (form POST), whose documented examples carry no
/// `$insert_id`; and the Python library's form POST (`verbose=1`).
#[test]
fn the_older_data_import_is_all_or_nothing_and_answers_as_its_clients_read() {
    let r = request();
    let one = json!({"event": "Old", "properties": {"time": 1_700_000_000_000_i64, "distinct_id": "u", "token": "t"}});
    let get = decode_import(&format!("ip=0&verbose=0&data={}", base64_param(&one)), b"", None).expect("decodes");
    assert!(get.params.legacy && get.params.skip_geolocation && !get.params.verbose);
    let imported = finish_import(get.items, &get.params, &import_cx(&r, None));
    assert_eq!(imported.events[0].country, None, "ip=0: not placed");
    assert_eq!(imported.events[0].insert_id.len(), 32, "an id for the occurrence");
    let outcome = settle_import(&get.params, imported);
    assert_eq!((outcome.reply.status, outcome.reply.body.as_slice()), (200, &b"1"[..]));
    assert_eq!(outcome.events.len(), 1);

    // A batch with one bad event: nothing stored, `0` (or status 0).
    let batch = json!([one, {"event": "Bad", "properties": {"distinct_id": "u"}}]);
    let form = format!("data={}", base64_param(&batch));
    for (query, verbose) in [("ip=0&verbose=0", false), ("ip=0&verbose=1", true)] {
        let req = decode_import(query, form.as_bytes(), Some("application/x-www-form-urlencoded")).expect("decodes");
        assert!(req.params.legacy);
        let outcome = settle_import(&req.params, finish_import(req.items, &req.params, &import_cx(&r, None)));
        assert!(outcome.events.is_empty() && outcome.links.is_empty(), "all or nothing");
        assert_eq!(outcome.reply.status, 400);
        if verbose {
            let body = body_json(&outcome.reply);
            assert_eq!(
                (body["status"].clone(), body["num_records_imported"].clone()),
                (json!(0), json!(0))
            );
            assert_eq!(body["failed_records"][0]["index"], 1);
        } else {
            assert_eq!(outcome.reply.body, b"0");
        }
    }

    // Python's form (raw JSON in `data`, verbose=1): status 1 only
    // when every record was taken, a `$merge` counting as one.
    let merge = json!({"event": "$merge", "properties": {"$distinct_ids": ["a", "b"], "token": "t"}});
    let body = format!("data={}&verbose=1&ip=0", urlencode(&json!([one, merge]).to_string()));
    let req = decode_import("", body.as_bytes(), None).expect("decodes");
    let outcome = settle_import(&req.params, finish_import(req.items, &req.params, &import_cx(&r, None)));
    assert_eq!(
        body_json(&outcome.reply),
        json!({"code": 200, "num_records_imported": 2, "status": 1, "error": null})
    );
    assert_eq!((outcome.events.len(), outcome.links.len()), (1, 1));
    assert_eq!(
        (outcome.links[0].keep.as_str(), outcome.links[0].join.as_str()),
        ("a", "b")
    );

    // JSON imports still need `$insert_id` (seed 001).
    let json_body = json!([{"event": "e", "properties": {"time": 1_700_000_000, "distinct_id": "u"}}]);
    let req = decode_import("", json_body.to_string().as_bytes(), None).expect("decodes");
    assert!(!req.params.legacy);
    let imported = finish_import(req.items, &req.params, &import_cx(&r, None));
    assert_eq!(fields(&imported.errors), [(0, "properties.$insert_id")]);
    // No data anywhere: an empty request.
    assert_eq!(decode_import("ip=0&verbose=0", b"", None), Err(IngestError::EmptyBody));
}

#[test]
fn a_merge_in_a_json_import_keeps_the_indices_of_the_rest() {
    let body = json!([
        {"event": "$merge", "properties": {"$distinct_ids": ["x"]}},
        {"event": "e", "properties": {"distinct_id": "u", "$insert_id": "m-1"}},
        {"event": "$merge", "properties": {"$distinct_ids": ["x", "y"], "time": 1_700_000_000}},
    ]);
    let req = decode_import("strict=1", body.to_string().as_bytes(), None).expect("decodes");
    let r = request();
    let imported = finish_import(req.items, &req.params, &import_cx(&r, None));
    assert_eq!(
        fields(&imported.errors),
        [(0, "properties.$distinct_ids"), (1, "properties.time")]
    );
    assert_eq!(imported.links.len(), 1);
    assert_eq!(imported.links[0].time_ms, 1_700_000_000_000);
    let outcome = settle_import(&req.params, imported);
    assert_eq!(body_json(&outcome.reply)["num_records_imported"], 1);
}

/// Seed 001, "Common Errors": "Error: 'properties.time' is invalid:
/// must be specified as seconds since epoch".
#[test]
fn an_invalid_time_is_refused_in_the_seed_s_words() {
    let body = json!([{"event": "e", "properties": {"time": "yesterday", "distinct_id": "u", "$insert_id": "t-1"}}]);
    let req = decode_import("strict=1", body.to_string().as_bytes(), None).expect("decodes");
    let r = request();
    let outcome = settle_import(&req.params, finish_import(req.items, &req.params, &import_cx(&r, None)));
    assert_eq!(
        body_json(&outcome.reply)["failed_records"][0]["message"],
        "'properties.time' is invalid: must be specified as seconds since epoch"
    );
}
#[test]
fn import_count_at_and_past_limit() {
    let one = r#"{"event":"e","properties":{"time":1700000000,"distinct_id":"u","$insert_id":"x"}}"#;
    let body = |n: usize| format!("[{}]", vec![one; n].join(","));
    let at = decode_import("", body(MAX_IMPORT_EVENTS).as_bytes(), None).map(|r| r.items.len());
    assert_eq!(at.ok(), Some(MAX_IMPORT_EVENTS));
    assert!(matches!(
        decode_import("", body(MAX_IMPORT_EVENTS + 1).as_bytes(), None),
        Err(IngestError::TooManyEvents {
            count: 2001,
            limit: 2000
        })
    ));
    let ndjson = vec![one; MAX_IMPORT_EVENTS + 1].join("\n");
    assert!(matches!(
        decode_import("", ndjson.as_bytes(), None),
        Err(IngestError::TooManyEvents { .. })
    ));
    assert_eq!(decode_import("", b"  ", None), Err(IngestError::EmptyBody));
    assert!(matches!(
        decode_import("", b"[]", None),
        Err(IngestError::BadRequest(_))
    ));
}

#[test]
fn import_errors_in_mixpanel_shape() {
    let plain = ImportParams::default();
    let reply = import_error(&plain, &IngestError::Unauthorized);
    assert_eq!(reply.status, 401);
    assert_eq!(
        body_json(&reply),
        json!({"code": 401, "error": "missing or invalid credentials", "status": "Unauthorized"})
    );
    let too_big = import_error(&plain, &IngestError::PayloadTooLarge { limit: 2_097_152 });
    assert_eq!(
        body_json(&too_big)["error"],
        "request exceeds max limit of 2097152 bytes"
    );
    assert_eq!(body_json(&too_big)["status"], "Request Entity Too Large");
    let limited = import_error(&plain, &IngestError::RateLimited { retry_after_seconds: 7 });
    assert!(limited.headers.iter().any(|(k, v)| *k == "Retry-After" && v == "7"));
    let verbose = ImportParams {
        verbose: true,
        ..ImportParams::default()
    };
    assert_eq!(body_json(&import_error(&verbose, &IngestError::Forbidden))["status"], 0);
}
