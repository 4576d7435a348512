use super::*;
use crate::fake::Fake;
use crate::host::js_host;
use wasm_bindgen_test::wasm_bindgen_test;

const URL: &str = "https://in.test/collect";

fn event(i: usize) -> String {
    format!("{{\"n\":\"e{i}\",\"i\":\"id{i}\"}}")
}

fn delivery() -> Delivery {
    Delivery::new(URL.into(), "tok".into())
}

/// Events in a body, by their names.
fn names(body: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["e"]
        .as_array()
        .map(|e| e.iter().map(|x| x["n"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default()
}

#[wasm_bindgen_test(unsupported = test)]
fn statuses() {
    assert_eq!(outcome(200), Outcome::Delivered);
    assert_eq!(outcome(202), Outcome::Delivered);
    assert_eq!(outcome(400), Outcome::Refused);
    assert_eq!(outcome(413), Outcome::Refused);
    assert_eq!(outcome(429), Outcome::Retry);
    assert_eq!(outcome(500), Outcome::Retry);
    assert_eq!(outcome(503), Outcome::Retry);
    assert_eq!(outcome(0), Outcome::Retry);
}

#[wasm_bindgen_test(unsupported = test)]
fn backoff_doubles_with_jitter_and_a_ceiling() {
    assert_eq!(backoff_ms(1, 0), RETRY_BASE_MS);
    assert_eq!(backoff_ms(2, 0), 2.0 * RETRY_BASE_MS);
    assert_eq!(backoff_ms(4, 0), 8.0 * RETRY_BASE_MS);
    assert_eq!(backoff_ms(40, 0), RETRY_MAX_MS);
    assert_eq!(backoff_ms(u32::MAX, 0), RETRY_MAX_MS);
    let most = backoff_ms(1, 1023);
    assert!(most > RETRY_BASE_MS && most < 1.25 * RETRY_BASE_MS, "{most}");
}

#[wasm_bindgen_test(unsupported = test)]
fn body_shape_and_token_escaping() {
    assert_eq!(body("t\"k", "{},{}"), "{\"t\":\"t\\\"k\",\"e\":[{},{}]}");
    let parsed: serde_json::Value = serde_json::from_str(&body("tok", &event(1))).unwrap_or_default();
    assert_eq!(parsed["t"], "tok");
    assert_eq!(parsed["e"][0]["i"], "id1");
}

#[wasm_bindgen_test(unsupported = test)]
fn events_wait_then_leave_in_one_fetch_whose_answer_is_known() {
    let host = Fake::new();
    let mut d = delivery();
    d.push(&host, &event(1));
    host.advance(10.0);
    d.push(&host, &event(2));
    assert_eq!(host.bodies().len(), 0, "nothing leaves before the delay");
    assert_eq!(
        host.last_wake(),
        Some(FLUSH_DELAY_MS - 10.0),
        "the timer aims at the first event's deadline"
    );
    d.flush(&host, Flush::Due);
    assert_eq!(host.bodies().len(), 0, "a timer that fires early sends nothing");
    host.advance(FLUSH_DELAY_MS);
    d.flush(&host, Flush::Due);
    assert_eq!(host.beacons().len(), 0, "no beacon while the page stays");
    let posts = host.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].0, URL);
    assert!(posts[0].2, "keepalive, so it survives a navigation");
    assert_eq!(names(&posts[0].1), ["e1", "e2"]);
    assert_eq!(d.waiting(), (0, 1, true), "kept until the answer comes");
    d.done(&host, posts[0].3, 202);
    assert_eq!(d.waiting(), (0, 0, false));
}

#[wasm_bindgen_test(unsupported = test)]
fn a_failed_send_while_visible_is_kept_not_lost() {
    // What a beacon cannot do: its `true` means queued, not delivered.
    let host = Fake::new();
    let mut d = delivery();
    d.push(&host, &event(1));
    d.flush(&host, Flush::Now);
    let first = host.posts()[0].3;
    d.done(&host, first, 0);
    assert_eq!(
        d.waiting(),
        (0, 1, false),
        "a network failure keeps the batch for a retry"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn a_full_batch_leaves_at_once_and_the_next_starts() {
    let host = Fake::new();
    let mut d = delivery();
    for i in 0..MAX_BATCH_EVENTS + 1 {
        d.push(&host, &event(i));
    }
    assert_eq!(host.posts().len(), 1);
    assert_eq!(names(&host.posts()[0].1).len(), MAX_BATCH_EVENTS);
    assert_eq!(d.waiting().0, 1);
    d.flush(&host, Flush::Hiding);
    assert_eq!(
        names(&host.beacons()[0].1),
        ["e50"],
        "on hide the open batch goes by beacon"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn batches_stay_within_bytes_and_huge_events_are_dropped() {
    let host = Fake::new();
    let mut d = delivery();
    let big = |i: usize| format!("{{\"n\":\"b{i}\",\"x\":\"{}\"}}", "b".repeat(25 * 1024));
    for i in 0..3 {
        assert!(d.push(&host, &big(i)));
    }
    assert_eq!(
        host.posts().len(),
        1,
        "a third 25 KB event would pass 60 KB: the first two leave"
    );
    assert!(host.posts()[0].1.len() <= MAX_BATCH_BYTES);
    assert_eq!(names(&host.posts()[0].1), ["b0", "b1"]);
    assert!(!d.push(&host, &"x".repeat(MAX_EVENT_BYTES + 1)));
    assert_eq!(d.waiting().0, 1);
}

#[wasm_bindgen_test(unsupported = test)]
fn refused_beacons_go_by_keepalive_fetch_one_at_a_time() {
    let host = Fake::new();
    host.refuse_beacons();
    let mut d = delivery();
    d.push(&host, &event(1));
    d.flush(&host, Flush::Now);
    d.push(&host, &event(2));
    d.flush(&host, Flush::Now);
    let posts = host.posts();
    assert_eq!(posts.len(), 1, "one fetch in flight at a time");
    assert!(posts[0].2, "a body under 64 KB goes with keepalive");
    assert_eq!(names(&posts[0].1), ["e1"]);
    assert_eq!(d.waiting(), (0, 2, true));
    d.done(&host, posts[0].3, 202);
    let posts = host.posts();
    assert_eq!(posts.len(), 2, "the answer sends the next");
    assert_eq!(names(&posts[1].1), ["e2"]);
    d.done(&host, posts[1].3, 200);
    assert_eq!(d.waiting(), (0, 0, false));
}

#[wasm_bindgen_test(unsupported = test)]
fn failures_retry_with_backoff_and_refusals_do_not() {
    let host = Fake::new();
    host.refuse_beacons();
    let mut d = delivery();
    d.push(&host, &event(1));
    d.flush(&host, Flush::Now);
    let first = host.posts()[0].clone();
    d.done(&host, first.3, 503);
    assert_eq!(d.waiting(), (0, 1, false));
    let wait = host.last_wake().unwrap_or(0.0);
    assert!(
        (RETRY_BASE_MS..=1.25 * RETRY_BASE_MS).contains(&wait),
        "retry after the base backoff, not {wait}"
    );
    d.flush(&host, Flush::Now);
    assert_eq!(host.posts().len(), 1, "not before the backoff");
    host.advance(wait);
    d.flush(&host, Flush::Due);
    let second = host.posts()[1].clone();
    assert_eq!(second.1, first.1, "the same body, so the same insert_ids");
    d.done(&host, second.3, 0);
    let doubled = host.last_wake().unwrap_or(0.0);
    assert!(
        doubled >= 2.0 * RETRY_BASE_MS,
        "doubled after a second failure: {doubled}"
    );
    host.advance(doubled);
    d.flush(&host, Flush::Due);
    d.done(&host, host.posts()[2].3, 400);
    assert_eq!(d.waiting(), (0, 0, false), "a 4xx is never resent");
    host.advance(RETRY_MAX_MS);
    d.flush(&host, Flush::Due);
    assert_eq!(host.posts().len(), 3);
    d.done(&host, 12345, 500);
    assert_eq!(
        d.waiting(),
        (0, 0, false),
        "an answer to no fetch of ours changes nothing"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn the_backlog_is_bounded() {
    let host = Fake::new();
    host.refuse_beacons();
    let mut d = delivery();
    for i in 0..MAX_UNSENT_BATCHES + 3 {
        d.push(&host, &event(i));
        d.flush(&host, Flush::Now);
    }
    assert_eq!(d.waiting().1, MAX_UNSENT_BATCHES, "a full backlog takes no more");
    let mut heavy = delivery();
    for i in 0..4 {
        heavy.push(
            &host,
            &format!("{{\"n\":\"h{i}\",\"x\":\"{}\"}}", "h".repeat(25 * 1024)),
        );
        heavy.flush(&host, Flush::Now);
    }
    assert_eq!(heavy.waiting().1, 2, "nor more than {MAX_UNSENT_BYTES} bytes");
}

#[wasm_bindgen_test(unsupported = test)]
fn the_backlog_is_stored_only_when_allowed_and_sent_by_the_next_page() {
    let host = Fake::new();
    host.refuse_beacons();
    let mut d = delivery();
    d.push(&host, &event(1));
    d.flush(&host, Flush::Now);
    assert_eq!(host.stored(QUEUE_KEY), None, "no storage without consent");
    assert_eq!(host.storage_touched(), 0);
    d.keep(&host);
    let stored = host.stored(QUEUE_KEY).unwrap_or_default();
    assert_eq!(names(&stored), ["e1"], "the backlog (in flight too) is kept");
    d.done(&host, host.posts()[0].3, 503);
    assert!(host.stored(QUEUE_KEY).is_some());

    // The next page load sends it again, by fetch.
    let next = Fake::new();
    next.set_stored(QUEUE_KEY, &stored);
    let mut later = delivery();
    later.keep(&next);
    assert_eq!(next.beacons().len(), 0);
    let resent = next.posts();
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].1, stored);
    later.done(&next, resent[0].3, 202);
    assert_eq!(next.stored(QUEUE_KEY), None, "delivered: the key is removed");

    // Anything else under our key is ignored.
    let odd = Fake::new();
    odd.set_stored(QUEUE_KEY, "not a body");
    let mut third = delivery();
    third.keep(&odd);
    assert_eq!(odd.posts().len(), 0);
}

#[wasm_bindgen_test(unsupported = test)]
fn hiding_beacons_each_body_once_and_keeps_it_until_a_fetch_confirms() {
    let host = Fake::new();
    host.refuse_beacons();
    let mut d = delivery();
    d.keep(&host);
    d.push(&host, &event(1));
    d.flush(&host, Flush::Now);
    d.done(&host, host.posts()[0].3, 502);
    d.push(&host, &event(2));
    d.flush(&host, Flush::Now);
    assert_eq!(d.waiting(), (0, 2, false));
    host.accept_beacons();
    d.flush(&host, Flush::Hiding);
    assert_eq!(host.beacons().len(), 2, "each waiting body gets a beacon");
    let stored = host.stored(QUEUE_KEY).unwrap_or_default();
    assert_eq!(
        stored.lines().map(names).collect::<Vec<_>>(),
        [["e1"], ["e2"]],
        "beaconed bodies stay stored"
    );
    assert_eq!(d.waiting(), (0, 2, false));
    let posts = host.posts().len();
    // pagehide after visibilitychange: nothing is sent twice.
    d.flush(&host, Flush::Hiding);
    assert_eq!(host.beacons().len(), 2);
    assert_eq!(host.posts().len(), posts, "no fetch right after the beacons");

    // A new event on the page again, hidden again: only it is beaconed.
    d.push(&host, &event(3));
    d.flush(&host, Flush::Hiding);
    let beacons = host.beacons();
    assert_eq!(beacons.len(), 3);
    assert_eq!(names(&beacons[2].1), ["e3"]);

    // The page stayed: a backoff later, fetches confirm the bodies one by
    // one, and each confirmed one leaves the backlog and storage.
    host.advance(RETRY_MAX_MS);
    d.flush(&host, Flush::Due);
    for expected in ["e1", "e2", "e3"] {
        let post = host.posts().last().cloned().unwrap_or_default();
        assert_eq!(names(&post.1), [expected]);
        d.done(&host, post.3, 202);
    }
    assert_eq!(d.waiting(), (0, 0, false));
    assert_eq!(host.stored(QUEUE_KEY), None);
    assert_eq!(host.beacons().len(), 3, "confirmed by fetch, never beaconed again");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_batch_beaconed_as_the_page_goes_is_sent_again_by_the_next_page() {
    // Offline at exit: the beacon is taken (queued) and then lost.
    let host = Fake::new();
    let mut d = delivery();
    d.keep(&host);
    for i in 1..=3 {
        d.push(&host, &event(i));
    }
    d.flush(&host, Flush::Hiding);
    assert_eq!(host.beacons().len(), 1);
    assert!(host.posts().is_empty());
    let stored = host.stored(QUEUE_KEY).unwrap_or_default();
    assert_eq!(names(&stored), ["e1", "e2", "e3"]);

    let next = Fake::new();
    next.set_stored(QUEUE_KEY, &stored);
    let mut later = delivery();
    later.keep(&next);
    let resent = next.posts();
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].1, stored, "the same body: the same insert_ids");
    later.done(&next, resent[0].3, 202);
    assert_eq!(next.stored(QUEUE_KEY), None);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_full_backlog_still_beacons_the_last_batch_and_forget_and_clear_drop_it() {
    let host = Fake::new();
    host.refuse_beacons();
    let mut d = delivery();
    d.keep(&host);
    for i in 0..MAX_UNSENT_BATCHES {
        d.push(&host, &event(i));
        d.flush(&host, Flush::Now);
    }
    assert_eq!(d.waiting().1, MAX_UNSENT_BATCHES);
    host.accept_beacons();
    d.push(&host, &event(99));
    d.flush(&host, Flush::Hiding);
    let beacons = host.beacons();
    assert!(
        beacons.iter().any(|(_, body)| names(body) == ["e99"]),
        "the batch the full backlog refused still gets its beacon"
    );
    assert_eq!(d.waiting().1, MAX_UNSENT_BATCHES);
    assert!(host.stored(QUEUE_KEY).is_some());
    d.forget(&host);
    assert_eq!(host.stored(QUEUE_KEY), None);
    d.clear();
    assert_eq!(d.waiting(), (0, 0, false));
}

// The real sendBeacon in Chromium takes a text/plain body to a closed port
// (it only queues the request), and refuses one over its budget.
#[wasm_bindgen_test]
fn browser_beacon_accepts_small_and_refuses_oversized() {
    let host = js_host();
    let url = "http://127.0.0.1:9/collect";
    assert!(host.beacon(url, "{\"t\":\"x\",\"e\":[]}"));
    assert!(!host.beacon(url, &"x".repeat(KEEPALIVE_BUDGET_BYTES + 1)));
}

// localStorage through the real host: the backlog survives as text.
#[wasm_bindgen_test]
fn browser_backlog_round_trips_through_local_storage() {
    let host = js_host();
    host.store(QUEUE_KEY, "");
    let mut d = Delivery::new("http://127.0.0.1:9/collect".into(), "tok".into());
    d.keep(&host);
    d.queue(&body("tok", &event(1)));
    d.save(&host);
    assert_eq!(host.load(QUEUE_KEY), body("tok", &event(1)));
    d.forget(&host);
    assert_eq!(host.load(QUEUE_KEY), "");
}
