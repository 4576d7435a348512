//! The worker's configuration (`edge-worker/wrangler.jsonc`) read as wrangler
//! reads it, and held to what the code assumes:
//! - the rate limiter and the core's slot arithmetic agree: a project's
//!   budget is counted in slots of the `RATE_LIMIT_PROJECT` binding, so its
//!   `limit` and `period` (development and production) are the constants in
//!   `limits.rs`;
//! - production declares every binding development has (environments do not
//!   inherit them) and holds no key or credential in its plain vars.

use ingest_core::limits::{RATE_LIMIT_PERIOD_SECONDS, RATE_LIMIT_SLOT_REQUESTS};
use serde_json::Value;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../edge-worker/wrangler.jsonc");

/// JSON with `//` and `/* */` comments, as wrangler.jsonc is written (no
/// trailing commas): the comments are cut outside strings, then parsed.
fn parse_jsonc(text: &str) -> Value {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            _ => out.push(c),
        }
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("wrangler.jsonc is JSON once comments go: {e}"))
}

fn config() -> Value {
    let text = std::fs::read_to_string(CONFIG).expect("wrangler.jsonc is readable");
    parse_jsonc(&text)
}

fn project_limiter(env: &Value) -> Vec<&Value> {
    env["ratelimits"]
        .as_array()
        .map(|all| all.iter().filter(|r| r["name"] == "RATE_LIMIT_PROJECT").collect())
        .unwrap_or_default()
}

#[test]
fn the_project_limiter_binding_is_one_slot_in_every_environment() {
    let config = config();
    for (name, env) in [("development", &config), ("production", &config["env"]["production"])] {
        let found = project_limiter(env);
        assert_eq!(found.len(), 1, "{name}: one RATE_LIMIT_PROJECT binding");
        assert_eq!(found[0]["simple"]["limit"], RATE_LIMIT_SLOT_REQUESTS, "{name}: limit");
        assert_eq!(
            found[0]["simple"]["period"], RATE_LIMIT_PERIOD_SECONDS,
            "{name}: period"
        );
    }
}

/// The names of one kind of binding (`binding`, or `name` for limiters).
fn names(env: &Value, kind: &str) -> Vec<String> {
    let list = match kind {
        "queues.producers" => &env["queues"]["producers"],
        "queues.consumers" => &env["queues"]["consumers"],
        _ => &env[kind],
    };
    let mut names: Vec<String> = list
        .as_array()
        .map(|all| {
            all.iter()
                .map(|b| {
                    ["binding", "name", "queue"]
                        .iter()
                        .find_map(|k| b[*k].as_str())
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn production_repeats_every_binding_and_keeps_secrets_out_of_its_vars() {
    let config = config();
    let production = &config["env"]["production"];
    for kind in [
        "kv_namespaces",
        "d1_databases",
        "r2_buckets",
        "ratelimits",
        "queues.producers",
        "queues.consumers",
    ] {
        assert!(!names(&config, kind).is_empty(), "development declares {kind}");
        assert_eq!(
            names(&config, kind),
            names(production, kind),
            "production declares the same {kind}"
        );
    }
    assert_eq!(production["triggers"], config["triggers"], "the same cron");
    let vars = production["vars"].as_object().expect("production has vars");
    for secret in ["PROJECTS", "HTTP_SINK_AUTHORIZATION"] {
        assert!(
            !vars.contains_key(secret),
            "{secret} is a secret in production, never a var"
        );
    }
    // Development's vars name every setting production sets, and nothing
    // in production's vars looks like a credential.
    let dev_vars = config["vars"].as_object().expect("development has vars");
    for (key, value) in vars {
        assert!(dev_vars.contains_key(key), "{key} is also a development var");
        let text = value.as_str().unwrap_or_default();
        assert!(
            !text.contains('@') && !text.to_lowercase().contains("password"),
            "{key} holds no credential"
        );
    }
}

#[test]
fn the_jsonc_reader_keeps_comment_marks_inside_strings() {
    let value = parse_jsonc("{\n // a comment\n \"a\": \"x // y /* z */\", /* b */ \"b\": \"\\\"//\"\n}");
    assert_eq!(value["a"], "x // y /* z */");
    assert_eq!(value["b"], "\"//");
}
