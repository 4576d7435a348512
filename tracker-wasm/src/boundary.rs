//! The numbers the module and its JavaScript share, read out of `js/*.js`
//! and held to the Rust constants: page event codes (`Nav`), the command
//! list, the `call` and `on` codes after them, and the `host` operations.
//! Both sides keep plain literals (nothing is generated, so t.js and t.wasm
//! pay no byte for this); the test is what keeps them in step, as ripgrep's
//! consistency test keeps its generated files in step with its flag list.
//! Native only: it reads the sources as text at compile time.

use crate::host::{op, Read};
use crate::pageview::Nav;
use crate::tracker::COMMANDS;
use std::collections::BTreeMap;

const CORE_JS: &str = include_str!("../js/core.js");
const HOST_JS: &str = include_str!("../js/host.js");

/// `const NAME = 12;` lines at the top level of a script.
fn numeric_consts(js: &str) -> BTreeMap<&str, u32> {
    js.lines()
        .filter_map(|line| {
            let rest = line
                .strip_prefix("export const ")
                .or_else(|| line.strip_prefix("const "))?;
            let (name, value) = rest.split_once(" = ")?;
            Some((name, value.strip_suffix(';')?.parse().ok()?))
        })
        .collect()
}

/// The text between `start` and the next `end` after it.
fn between<'a>(js: &'a str, start: &str, end: &str) -> &'a str {
    let from = js.find(start).unwrap_or_else(|| panic!("{start:?} not found")) + start.len();
    let len = js[from..].find(end).unwrap_or_else(|| panic!("{end:?} not found"));
    &js[from..from + len]
}

/// The top-level items of an array literal's text: commas at depth 0,
/// outside strings, after `//` comments are dropped.
fn array_items(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| if l.trim_start().starts_with("//") { "" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let mut items = vec![String::new()];
    let (mut depth, mut quote) = (0i32, None);
    for c in code.chars() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                items.push(String::new());
                continue;
            }
            _ => {}
        }
        items.last_mut().expect("one item").push(c);
    }
    items.retain(|i| !i.trim().is_empty());
    items.into_iter().map(|i| i.trim().to_owned()).collect()
}

#[test]
fn page_event_codes_match_nav() {
    let js = numeric_consts(CORE_JS);
    let expected = [
        ("LOAD", Nav::Load),
        ("HISTORY", Nav::History),
        ("HASH", Nav::Hash),
        ("RESTORE", Nav::Restore),
        ("ACTIVATE", Nav::Activate),
        ("HIDE", Nav::Hide),
        ("SHOW", Nav::Show),
        ("SCROLL", Nav::Scroll),
    ];
    for (name, nav) in expected {
        let code = js[name];
        assert_eq!(Nav::from_code(code), Some(nav), "core.js {name} = {code}");
    }
    // Every code Rust reads has a name in core.js.
    let named = expected.len() as u32;
    assert_eq!(Nav::from_code(named), None);
}

#[test]
fn commands_are_listed_in_the_same_order() {
    let list = between(CORE_JS, "const COMMANDS = [", "];");
    let js: Vec<String> = array_items(list)
        .iter()
        .map(|s| s.trim_matches('"').to_owned())
        .collect();
    assert_eq!(js, COMMANDS);
    let consts = numeric_consts(CORE_JS);
    assert_eq!(COMMANDS[consts["PROPS"] as usize], "props");
    // `pageview`'s URL argument is resolved by number in `run`.
    let pageview: usize = between(CORE_JS, "ET_MANUAL && op == ", ")").parse().expect("a number");
    assert_eq!(COMMANDS[pageview], "pageview");
}

#[test]
fn call_and_on_codes_match_lib() {
    let core = numeric_consts(CORE_JS);
    let host = numeric_consts(HOST_JS);
    assert_eq!(core["CLICK"], crate::CLICK);
    assert_eq!(core["FORM"], crate::FORM);
    assert_eq!(core["CONFIG"], crate::CONFIG);
    assert_eq!(host["START"], crate::START);
    assert_eq!(host["TICK"], crate::TICK);
    assert_eq!(host["DONE"], crate::DONE);
    // `on` codes follow the page event codes, `call` codes the commands.
    assert_eq!(crate::START, core["SCROLL"] + 1);
    assert_eq!(crate::CLICK as usize, COMMANDS.len());
}

#[test]
fn host_operations_match_host_rs() {
    // The probes table: one entry per `Read`, then LOAD and HOOK.
    let probes = array_items(between(HOST_JS, "const probes = [", "\n];"));
    let reads = Read::Hidden as u32 + 1;
    assert_eq!(probes.len() as u32, reads + 2, "{probes:#?}");
    assert_eq!(op::LOAD, reads);
    assert_eq!(op::HOOK, reads + 1);
    assert!(probes[op::LOAD as usize].contains("localStorage.getItem"));
    assert!(probes[op::HOOK as usize].contains("hooks.b"));
    assert!(probes[Read::Href as usize].contains("location.href"));
    assert!(probes[Read::Hidden as usize].contains("document.hidden"));
    // The operations after the probes, as host.js tests them.
    assert!(HOST_JS.contains(&format!("if (op < {}) {{", op::WRITE)));
    for (name, code) in [
        ("WRITE", op::WRITE),
        ("BEACON", op::BEACON),
        ("FETCH", op::FETCH),
        ("KEEPALIVE", op::KEEPALIVE),
        ("WAKE", op::WAKE),
        ("NOW", op::NOW),
        ("RANDOM", op::RANDOM),
    ] {
        // The comment that names them, and the test that runs each.
        assert!(
            HOST_JS.contains(&format!("{code} {name}")),
            "host.js names {code} {name}"
        );
        assert!(
            HOST_JS.contains(&format!("op == {code}")),
            "host.js runs op {code} ({name})"
        );
    }
    assert!(HOST_JS.contains(&format!("keepalive: op == {}", op::KEEPALIVE)));
}
