//! `make bench`'s fast path to a full D1: generates a month of realistic
//! web traffic and writes, as SQL for the `sqlite3` shell, the rows the
//! queue consumer would have written for it: enriched events, visits and
//! rollups, all decided by ingest-core's own read model (`batch::process`,
//! the visit and rollup code), batch by batch as the consumer does, with
//! visits made final as the cron would. Loading that SQL into the local D1
//! file takes minutes where the HTTP path would take hours.
//!
//! Usage: `readmodel_fill EVENTS END_MS [PROJECT] > fill.sql`
//! (30 days ending at END_MS, UTC, a fixed seed: the same arguments give
//! the same rows).

use ingest_core::dedup::dedup_key;
use ingest_core::event::{Dialect, PageContext};
use ingest_core::readmodel::batch::{process, People, StoredEvent};
use ingest_core::readmodel::rollup::{Cell, Counters, Rollup, RowKey};
use ingest_core::readmodel::visit::{Visit, VISIT_GAP_MS};
use ingest_core::readmodel::Site;
use ingest_core::sketch::Sketch;
use ingest_core::zone::Zone;
use ingest_core::Event;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write};

const DAY_MS: i64 = 86_400_000;
const DAYS: i64 = 30;
/// Events per consumer batch (the queue's `max_batch_size` is 100 messages
/// of up to 100 events).
const BATCH: usize = 2_000;
/// Rows per INSERT statement.
const ROWS_PER_INSERT: usize = 200;
/// The cron keeps two hours of per-minute rows.
const MINUTES_KEPT_MS: i64 = 2 * 3_600_000;

/// xorshift64*: small, seeded, good enough for traffic shapes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// Zipf-like pick: low indexes far more often.
    fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) - 1.0) as usize % n
    }
}

const AGENTS: [&str; 8] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
];
const REFERRERS: [&str; 14] = [
    "https://www.google.com/",
    "https://www.google.de/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://t.co/abc",
    "https://www.reddit.com/r/rust/",
    "https://news.ycombinator.com/",
    "https://github.com/someone/project",
    "https://www.linkedin.com/",
    "https://www.facebook.com/",
    "https://blog.example.org/post",
    "https://lobste.rs/",
    "https://newsletter.example.net/issue-12",
    "https://forum.example.io/t/123",
];
const PLACES: [(&str, &str, &str); 16] = [
    ("US", "CA", "San Francisco"),
    ("US", "NY", "New York"),
    ("US", "TX", "Austin"),
    ("DE", "BE", "Berlin"),
    ("DE", "BY", "Munich"),
    ("GB", "ENG", "London"),
    ("FR", "IDF", "Paris"),
    ("NL", "NH", "Amsterdam"),
    ("IN", "KA", "Bengaluru"),
    ("BR", "SP", "São Paulo"),
    ("JP", "13", "Tokyo"),
    ("CA", "ON", "Toronto"),
    ("PL", "14", "Warsaw"),
    ("ES", "MD", "Madrid"),
    ("AU", "NSW", "Sydney"),
    ("SE", "AB", "Stockholm"),
];
const CAMPAIGNS: [(&str, &str, &str); 4] = [
    ("newsletter", "email", "december"),
    ("google", "cpc", "brand"),
    ("twitter", "social", "launch"),
    ("partner", "referral", "spring"),
];

fn paths() -> Vec<String> {
    let mut out = vec![
        "/".to_owned(),
        "/pricing".into(),
        "/docs".into(),
        "/blog".into(),
        "/about".into(),
    ];
    out.extend((0..120).map(|i| format!("/blog/post-{i}")));
    out.extend((0..150).map(|i| format!("/docs/page-{i}")));
    out.extend((0..25).map(|i| format!("/product/{i}")));
    out
}

fn sql_text(s: Option<&str>) -> String {
    match s {
        Some(s) => format!("'{}'", s.replace('\'', "''")),
        None => "NULL".into(),
    }
}

struct Totals {
    counters: Counters,
    sketch: Option<Sketch>,
}

fn fold(into: &mut BTreeMap<String, Totals>, key: String, cell: &Cell) {
    let t = into.entry(key).or_insert(Totals {
        counters: Counters::default(),
        sketch: None,
    });
    let c = &cell.counters;
    t.counters.visits += c.visits;
    t.counters.pageviews += c.pageviews;
    t.counters.events += c.events;
    t.counters.bounces += c.bounces;
    t.counters.duration_ms += c.duration_ms;
    t.counters.revenue_micros += c.revenue_micros;
    if !cell.visitors.is_empty() {
        let sketch = t.sketch.get_or_insert_with(Sketch::new);
        for h in &cell.visitors {
            sketch.insert_hash(*h);
        }
    }
}

/// The rollup rows of the whole dataset, keyed by their SQL key tuple.
#[derive(Default)]
struct Rollups {
    rows: BTreeMap<String, Totals>,
    hours: BTreeMap<String, Totals>,
    minutes: BTreeMap<String, Totals>,
}

impl Rollups {
    fn add(&mut self, r: &Rollup, keep_minutes_from: i64) {
        for (k, cell) in &r.rows {
            let RowKey {
                project,
                dim,
                period,
                value,
            } = k;
            let key = format!(
                "{}, {}, {}, {}",
                sql_text(Some(project)),
                sql_text(Some(dim)),
                sql_text(Some(period)),
                sql_text(Some(value))
            );
            fold(&mut self.rows, key, cell);
        }
        for ((p, h), cell) in &r.hours {
            fold(&mut self.hours, format!("{}, {h}", sql_text(Some(p))), cell);
        }
        for ((p, m), cell) in &r.minutes {
            if *m >= keep_minutes_from {
                fold(&mut self.minutes, format!("{}, {m}", sql_text(Some(p))), cell);
            }
        }
    }
}

struct Out<W: Write> {
    w: W,
    pending: Vec<String>,
    head: &'static str,
}

impl<W: Write> Out<W> {
    fn row(&mut self, head: &'static str, row: String) -> std::io::Result<()> {
        if self.head != head || self.pending.len() >= ROWS_PER_INSERT {
            self.flush()?;
            self.head = head;
        }
        self.pending.push(row);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            writeln!(self.w, "{} VALUES\n{};", self.head, self.pending.join(",\n"))?;
            self.pending.clear();
        }
        Ok(())
    }
}

const EVENTS_HEAD: &str = "INSERT INTO events (project, dedup_key, insert_id, event, distinct_id, device_id, time_ms, \
 received_at_ms, url, referrer, title, screen, properties, source, country, region, city, path, hostname, \
 referrer_source, channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, \
 device, visit_id)";
const VISITS_HEAD: &str = "INSERT OR REPLACE INTO visits (project, visit_id, visitor, start_ms, last_ms, entry, exit, \
 pageviews, events, bounced, hostname, source, channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content, \
 country, region, city, browser, browser_version, os, device, finalized, touched_ms, state)";

fn event_row(s: &StoredEvent<'_>) -> String {
    let e = s.event;
    let t = |x: &Option<String>| sql_text(x.as_deref());
    format!(
        "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
        sql_text(Some(&e.project)),
        sql_text(Some(&dedup_key(e))),
        sql_text(Some(&e.insert_id)),
        sql_text(Some(&e.name)),
        sql_text(Some(&e.distinct_id)),
        t(&e.device_id),
        e.time_ms,
        e.received_at_ms,
        t(&e.page.url),
        t(&e.page.referrer),
        t(&e.page.title),
        t(&e.page.screen),
        sql_text(Some(&Value::Object(e.properties.clone()).to_string())),
        sql_text(Some(e.source.as_str())),
        t(&e.country),
        t(&e.region),
        t(&e.city),
        t(&s.path),
        t(&s.hostname),
        t(&s.referrer_source),
        sql_text(Some(s.channel)),
        t(&s.utm_source),
        t(&s.utm_medium),
        t(&s.utm_campaign),
        t(&s.utm_term),
        t(&s.utm_content),
        t(&s.browser),
        t(&s.browser_version),
        t(&s.os),
        sql_text(s.device),
        t(&s.visit_id),
    )
}

fn visit_row(project: &str, v: &Visit, touched_ms: i64) -> String {
    let t = |x: &Option<String>| sql_text(x.as_deref());
    let a = &v.attributes;
    format!(
        "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
        sql_text(Some(project)),
        sql_text(Some(&v.visit_id)),
        sql_text(Some(&v.visitor)),
        v.start_ms,
        v.last_ms,
        t(&v.entry),
        t(&v.exit),
        v.pageviews,
        v.events,
        i64::from(v.bounced()),
        t(&a.hostname),
        t(&a.source),
        t(&a.channel),
        t(&a.utm_source),
        t(&a.utm_medium),
        t(&a.utm_campaign),
        t(&a.utm_term),
        t(&a.utm_content),
        t(&a.country),
        t(&a.region),
        t(&a.city),
        t(&a.browser),
        t(&a.browser_version),
        t(&a.os),
        t(&a.device),
        i64::from(v.finalized),
        touched_ms,
        sql_text(Some(&serde_json::to_string(v).unwrap_or_default())),
    )
}

fn rollup_rows<W: Write>(
    out: &mut Out<W>,
    head: &'static str,
    rows: &mut BTreeMap<String, Totals>,
) -> std::io::Result<()> {
    for (key, t) in rows.iter_mut() {
        let c = &t.counters;
        let visitors = t.sketch.as_mut().map(Sketch::encode);
        out.row(
            head,
            format!(
                "({key}, {}, {}, {}, {}, {}, {}, {})",
                sql_text(visitors.as_deref()),
                c.visits,
                c.pageviews,
                c.events,
                c.bounces,
                c.duration_ms,
                c.revenue_micros
            ),
        )?;
    }
    out.flush()
}

/// One visit's events: page views, each followed by an engagement report,
/// now and then a click on a link out or a custom event.
#[allow(clippy::too_many_arguments)]
fn visit_events(
    rng: &mut Rng,
    project: &str,
    visitor: &str,
    start: i64,
    paths: &[String],
    seq: &mut u64,
    out: &mut Vec<Event>,
) -> i64 {
    let pages = match rng.below(10) {
        0..=3 => 1,
        4..=6 => 2,
        7 | 8 => 3,
        _ => 4 + rng.below(4),
    };
    let place = PLACES[rng.skewed(PLACES.len())];
    let agent = AGENTS[rng.skewed(AGENTS.len())];
    let referrer = if rng.chance(0.4) {
        None
    } else {
        Some(REFERRERS[rng.skewed(REFERRERS.len())])
    };
    let campaign = rng.chance(0.1).then(|| CAMPAIGNS[rng.below(CAMPAIGNS.len())]);
    let mut t = start;
    let mut make = |t: i64, name: &str, url: String, referrer: Option<&str>, props: Map<String, Value>| {
        *seq += 1;
        Event {
            project: project.to_owned(),
            name: name.to_owned(),
            distinct_id: visitor.to_owned(),
            device_id: Some(visitor.to_owned()),
            time_ms: t,
            insert_id: format!("fill-{:016x}", *seq),
            page: PageContext {
                url: Some(url),
                referrer: referrer.map(str::to_owned),
                title: Some("A page".into()),
                screen: Some("1920x1080".into()),
            },
            properties: props,
            source: Dialect::Browser,
            received_at_ms: t + 200,
            user_agent: Some(agent.to_owned()),
            country: Some(place.0.to_owned()),
            region: Some(place.1.to_owned()),
            city: Some(place.2.to_owned()),
        }
    };
    for i in 0..pages {
        let path = &paths[rng.skewed(paths.len())];
        let mut url = format!("https://example.com{path}");
        if i == 0 {
            if let Some((s, m, c)) = campaign {
                url.push_str(&format!("?utm_source={s}&utm_medium={m}&utm_campaign={c}"));
            }
        }
        let first_referrer = if i == 0 { referrer } else { Some("https://example.com/") };
        out.push(make(t, "$pageview", url.clone(), first_referrer, Map::new()));
        let engaged = 2_000 + rng.below(120_000) as i64;
        t += engaged;
        let mut props = Map::new();
        props.insert("engaged_ms".into(), json!(engaged));
        props.insert("scroll_depth".into(), json!(rng.below(101)));
        out.push(make(t, "$engagement", url.clone(), first_referrer, props));
        if rng.chance(0.05) {
            let mut props = Map::new();
            props.insert(
                "href".into(),
                json!(format!("https://github.com/org/repo-{}", rng.below(20))),
            );
            out.push(make(t + 100, "$outbound_link", url.clone(), first_referrer, props));
        }
        if rng.chance(0.03) {
            let mut props = Map::new();
            props.insert("plan".into(), json!(["free", "pro", "team"][rng.below(3)]));
            out.push(make(t + 200, "Signup", url, first_referrer, props));
        }
        t += 1_000 + rng.below(20_000) as i64;
    }
    t
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let target: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let end_ms: i64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1_790_000_000_000);
    let project = args.get(3).cloned().unwrap_or_else(|| "demo".into());
    let zone = Zone::utc();
    let site = Site::plain(&project, &zone);
    let paths = paths();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start_ms = end_ms - DAYS * DAY_MS;
    // About 4.5 events a visit and 3 visits a visitor a month.
    let visits_wanted = target * 2 / 9;
    let pool = (visits_wanted / 3).max(1);
    let mut out = Out {
        w: BufWriter::with_capacity(1 << 20, std::io::stdout().lock()),
        pending: Vec::new(),
        head: EVENTS_HEAD,
    };
    writeln!(out.w, "PRAGMA synchronous = OFF;\nBEGIN;")?;

    let mut last_end: HashMap<String, i64> = HashMap::new();
    let mut open: HashMap<String, Vec<Visit>> = HashMap::new();
    let mut rollups = Rollups::default();
    let mut seq = 0u64;
    let mut written = 0usize;
    let mut extra_visitors = 0usize;
    let mut finalize = Rollup::default();
    let mut day = 0i64;
    while written < target && day < DAYS {
        let day_start = start_ms + day * DAY_MS;
        // Weekdays busier than weekends.
        let share = if day % 7 >= 5 { 0.75 } else { 1.1 };
        let visits_today = ((visits_wanted as f64 / DAYS as f64) * share) as usize;
        let mut events: Vec<Event> = Vec::new();
        let mut starts: Vec<i64> = (0..visits_today)
            .map(|_| day_start + rng.below(DAY_MS as usize) as i64)
            .collect();
        starts.sort_unstable();
        for start in starts {
            // A visitor whose last visit ended long enough ago (so that
            // visits never merge; a merge is the consumer's rare case).
            let mut visitor = None;
            for _ in 0..3 {
                let v = format!("v{:08}", rng.skewed(pool));
                if last_end.get(&v).is_none_or(|end| *end + VISIT_GAP_MS + 60_000 < start) {
                    visitor = Some(v);
                    break;
                }
            }
            let visitor = visitor.unwrap_or_else(|| {
                extra_visitors += 1;
                format!("w{extra_visitors:08}")
            });
            let end = visit_events(&mut rng, &project, &visitor, start, &paths, &mut seq, &mut events);
            last_end.insert(visitor, end);
        }
        events.sort_by_key(|e| e.time_ms);
        events.truncate(target - written);
        for batch in events.chunks(BATCH) {
            let first = batch.first().map_or(0, |e| e.time_ms);
            // Visits quiet for the gap are final: the cron's job.
            for visits in open.values_mut() {
                for mut v in visits.extract_if(.., |v| v.last_ms + VISIT_GAP_MS < first) {
                    finalize.finalize(&site, &v);
                    v.finalized = true;
                    out.row(VISITS_HEAD, visit_row(&project, &v, v.last_ms + VISIT_GAP_MS))?;
                }
            }
            open.retain(|_, visits| !visits.is_empty());
            let mut seen = std::collections::HashSet::new();
            let reach: Vec<(String, Visit)> = batch
                .iter()
                .filter(|e| seen.insert(e.distinct_id.as_str()))
                .filter_map(|e| open.get(&e.distinct_id))
                .flatten()
                .map(|v| (project.clone(), v.clone()))
                .collect();
            let result = process(batch, reach, &People::new(), |_| Some(Site::plain(&project, &zone)));
            assert!(result.merged.is_empty(), "generated visits never merge");
            for s in &result.events {
                out.row(EVENTS_HEAD, event_row(s))?;
            }
            for w in result.visits {
                let visits = open.entry(w.visit.visitor.clone()).or_default();
                match visits.iter_mut().find(|v| v.visit_id == w.visit.visit_id) {
                    Some(v) => *v = w.visit,
                    None => visits.push(w.visit),
                }
            }
            rollups.add(&result.rollup, end_ms - MINUTES_KEPT_MS);
            written += batch.len();
        }
        day += 1;
    }
    // Visits quiet by the end are final; the others stay open, as the
    // last half hour's are in a running system.
    for mut v in open.drain().flat_map(|(_, visits)| visits) {
        if v.last_ms + VISIT_GAP_MS < end_ms {
            finalize.finalize(&site, &v);
            v.finalized = true;
        }
        out.row(VISITS_HEAD, visit_row(&project, &v, v.last_ms))?;
    }
    rollups.add(&finalize, end_ms - MINUTES_KEPT_MS);
    out.flush()?;
    rollup_rows(
        &mut out,
        "INSERT INTO rollups (project, dim, period, value, visitors, visits, pageviews, events, bounces, duration_ms, revenue_micros)",
        &mut rollups.rows,
    )?;
    rollup_rows(
        &mut out,
        "INSERT INTO rollup_hours (project, hour_ms, visitors, visits, pageviews, events, bounces, duration_ms, revenue_micros)",
        &mut rollups.hours,
    )?;
    rollup_rows(
        &mut out,
        "INSERT INTO rollup_minutes (project, minute_ms, visitors, visits, pageviews, events, bounces, duration_ms, revenue_micros)",
        &mut rollups.minutes,
    )?;
    writeln!(out.w, "COMMIT;")?;
    out.w.flush()?;
    eprintln!("readmodel_fill: {written} events, {seq} generated, days {day}");
    Ok(())
}
