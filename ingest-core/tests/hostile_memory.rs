//! Peak heap of the decode path for the most expensive bodies at the 2 MiB
//! wire limit, and for gzip bodies that inflate to the 10 MiB limit with as
//! many JSON elements as the element cap lets through: a Worker isolate has
//! 128 MB, so one public request must stay far below it. The whole path
//! (inflate, decode, validate, reply) runs through the fuzz checks of
//! `ingest_core::fuzzing`, which also assert the status and shape of each
//! answer.
//!
//! One test in this binary, so the counting allocator sees nothing else.

use ingest_core::fuzzing::{self, gzip_bytes};
use ingest_core::limits::{MAX_BODY_BYTES, MAX_ID_CHARS, MAX_INFLATED_BODY_BYTES, MAX_JSON_ELEMENTS};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, SeqCst) + bytes;
    PEAK.fetch_max(now, SeqCst);
}

// SAFETY: every call is passed straight to the system allocator; only
// counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap a request may take: the body's own copies, 16 bytes of parsed value
/// per body byte at worst (a number or empty string per 2 bytes), and room;
/// and never more than 96 MiB, whatever inflates. Natively a JSON value is
/// 32 bytes, in the Worker's wasm32 16, so the Worker needs less than this.
fn budget(body: usize) -> usize {
    (24 * body + 16 * 1024 * 1024).min(96 * 1024 * 1024)
}

/// `head`, then `item` joined by commas up to just under 2 MiB, then `tail`.
fn fill(head: &str, item: &str, tail: &str) -> String {
    let room = MAX_BODY_BYTES - head.len() - tail.len();
    let count = (room + 1) / (item.len() + 1);
    format!("{head}{}{tail}", vec![item; count].join(","))
}

/// A JSON body of exactly [`MAX_INFLATED_BODY_BYTES`], gzipped: `head`, then
/// `item` joined by commas `count` times, then `tail`, with a string of
/// random `a`/`b` put first in the outermost object or array to fill the
/// size. One letter in eight is a `b`, so the padding compresses about 12
/// times: the gzip is within the wire limit and the ratio cap, and the
/// items are what the parser pays for.
/// Leading NUL-ended fields (query, headers) stay uncompressed.
fn inflated(fields: &str, head: &str, item: &str, count: usize, tail: &str) -> Vec<u8> {
    let items = vec![item; count].join(",");
    let (open, rest) = head.split_at(1);
    let slot = if open == "{" { r#""pad":""# } else { "\"" };
    let close = "\",";
    let fixed = head.len() + slot.len() + close.len() + items.len() + tail.len();
    let mut seed = 11u32;
    let pad: String = (0..MAX_INFLATED_BODY_BYTES - fixed)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            if (seed >> 16) & 7 == 0 {
                'b'
            } else {
                'a'
            }
        })
        .collect();
    let json = format!("{open}{slot}{pad}{close}{rest}{items}{tail}");
    assert_eq!(json.len(), MAX_INFLATED_BODY_BYTES);
    let mut body = fields.as_bytes().to_vec();
    body.extend(gzip_bytes(json.as_bytes()));
    assert!(body.len() <= MAX_BODY_BYTES, "{} bytes of gzip", body.len());
    body
}

#[test]
fn the_costliest_bodies_stay_within_the_budget() {
    let small = r#"{"a":0}"#;
    let too_deep = r#"[[[[[[[[0]]]]]]]]"#;
    let huge_id = "x".repeat(1_000_000);
    let pairs = |n: usize| {
        (0..n)
            .map(|i| format!(r#""k{i}":{too_deep}"#))
            .collect::<Vec<_>>()
            .join(",")
    };
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "browser",
            "small objects",
            fill(r#"{"t":"demo-token","e":["#, small, "]}").into_bytes(),
        ),
        (
            "browser",
            "numbers",
            fill(r#"{"t":"demo-token","e":["#, "0", "]}").into_bytes(),
        ),
        (
            "browser",
            "empty strings",
            fill(r#"{"t":"demo-token","e":[{"p":{"s":["#, r#""""#, "]}}]}").into_bytes(),
        ),
        (
            "browser",
            "a 1 MB insert_id and errors",
            format!(
                r#"{{"t":"demo-token","e":[{{"n":"x","d":"d","i":"{huge_id}","p":{{{}}}}}]}}"#,
                pairs(2000)
            )
            .into_bytes(),
        ),
        (
            "browser",
            "a 255-character insert_id and errors",
            format!(
                r#"{{"t":"demo-token","e":[{{"n":"x","d":"d","i":"{}","p":{{{}}}}}]}}"#,
                "y".repeat(MAX_ID_CHARS),
                pairs(2400)
            )
            .into_bytes(),
        ),
        ("mixpanel_track", "small objects", fill("\0[", small, "]").into_bytes()),
        (
            "mixpanel_track",
            "a million pairs",
            format!("\0{}", "a&".repeat(MAX_BODY_BYTES / 2 - 1)).into_bytes(),
        ),
        (
            "mixpanel_import",
            "small objects",
            fill("strict=1\0\0[", small, "]").into_bytes(),
        ),
        (
            "mixpanel_import",
            "NDJSON objects",
            fill("\0application/x-ndjson\0", small, "")
                .replace(',', "\n")
                .into_bytes(),
        ),
        (
            "vemetric_event",
            "nested custom data",
            fill("\0\0\0\0{\"name\":\"e\",\"customData\":{\"x\":[", small, "]}}").into_bytes(),
        ),
        (
            "empmix",
            "small objects",
            fill("bulk\0{\"apiKey\":\"demo-secret\",\"events\":[", small, "]}").into_bytes(),
        ),
        (
            "crm",
            "small objects",
            fill("\0\0{\"user\":{\"_id\":\"u\"},\"event\":{\"x\":{\"a\":[", small, "]}}}").into_bytes(),
        ),
    ];
    let mut gzipped = Vec::new();
    for (target, what, body) in &cases {
        // The same bodies gzipped: ~10 KB that inflate to 2 MiB.
        if let Some(at) = body.iter().rposition(|b| *b == 0) {
            let mut packed = body[..=at].to_vec();
            packed.extend(gzip_bytes(&body[at + 1..]));
            gzipped.push((*target, format!("{what}, gzipped"), packed));
        } else {
            gzipped.push((*target, format!("{what}, gzipped"), gzip_bytes(body)));
        }
    }
    // Inflated to 10 MiB, with one element fewer than the cap besides the
    // padding and the request's own fields.
    let most = MAX_JSON_ELEMENTS - 8;
    let inflated_cases: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "browser",
            "numbers, inflated to 10 MiB".into(),
            inflated("", r#"{"t":"demo-token","e":["#, "0", most, "]}"),
        ),
        (
            "browser",
            "empty strings, inflated to 10 MiB".into(),
            inflated("", r#"{"t":"demo-token","e":[{"p":{"s":["#, r#""""#, most, "]}}]}"),
        ),
        (
            "mixpanel_track",
            "numbers, inflated to 10 MiB".into(),
            inflated("\0", "[", "0", most, "]"),
        ),
        (
            "mixpanel_import",
            "numbers, inflated to 10 MiB".into(),
            inflated("strict=1\0\0", "[", "0", most, "]"),
        ),
        (
            "vemetric_event",
            "numbers in custom data, inflated to 10 MiB".into(),
            inflated("\0\0\0\0", r#"{"name":"e","customData":{"x":["#, "0", most, "]}}"),
        ),
        (
            "empmix",
            "numbers, inflated to 10 MiB".into(),
            inflated("bulk\0", r#"{"apiKey":"demo-secret","events":["#, "0", most, "]}"),
        ),
        (
            "crm",
            "numbers, inflated to 10 MiB".into(),
            inflated("\0\0", r#"{"user":{"_id":"u"},"event":{"x":{"a":["#, "0", most, "]}}}"),
        ),
    ];
    let all = cases
        .into_iter()
        .map(|(t, w, b)| (t, w.to_owned(), b))
        .chain(gzipped)
        .chain(inflated_cases);
    let mut report = Vec::new();
    for (target, what, body) in all {
        let check = fuzzing::target(target).unwrap_or_else(|| panic!("no target {target}"));
        let before = CURRENT.load(SeqCst);
        PEAK.store(before, SeqCst);
        check(&body);
        let peak = PEAK.load(SeqCst) - before;
        let inflated = body.len().max(MAX_INFLATED_BODY_BYTES.min(body.len() * 200));
        report.push(format!(
            "{target} {what}: {} KiB body, peak {} KiB",
            body.len() / 1024,
            peak / 1024
        ));
        assert!(
            peak <= budget(inflated),
            "{target}, {what}: {} KiB body took {} MiB",
            body.len() / 1024,
            peak >> 20
        );
    }
    println!("{}", report.join("\n"));
}
