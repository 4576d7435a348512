//! A tiny JSON writer and a checker for property objects. serde and
//! `core::fmt` would cost kilobytes in the module; this is all we need.

use crate::text::add;
use alloc::string::String;

/// Bytes of a `p` object accepted from the page. It also bounds every string
/// inside below the server's 8192-character limit.
pub const MAX_PROPS_BYTES: usize = 8 * 1024;
/// Nesting of objects and arrays in `p`, the object itself counting as 1
/// (the server's `MAX_JSON_DEPTH`).
pub const MAX_PROPS_DEPTH: usize = 8;
/// Keys in one object of `p` (the server's `MAX_PROPERTIES`).
pub const MAX_PROPS_KEYS: usize = 255;
/// Characters in a key (the server's `MAX_PROPERTY_KEY_CHARS`).
pub const MAX_KEY_CHARS: usize = 255;

/// Integer digits a revenue amount may have: it is below 10^12, as the
/// server's `REVENUE_AMOUNT_LIMIT` requires.
pub const MAX_REVENUE_DIGITS: usize = 12;
/// Characters in a revenue amount's text (sign, digits and point).
pub const MAX_AMOUNT_CHARS: usize = 32;

/// Two JSON objects (texts from [`props_ok`] or ours, or "") as one: `b`'s
/// members after `a`'s, so that where both have a key, `b`'s value counts
/// (JSON parsers, the server's included, keep a repeated key's last value).
pub fn join(a: &str, b: &str) -> String {
    if a.len() <= 2 {
        return b.into();
    }
    if b.len() <= 2 {
        return a.into();
    }
    // `a` without its `}`, a comma, `b` without its `{`.
    let mut out = String::from(a.get(..a.len() - 1).unwrap_or(""));
    add(&mut out, ",");
    add(&mut out, crate::text::from(b, 1));
    out
}

/// `{"$revenue":{"amount":A,"currency":"C"}}` when `amount` is a decimal
/// number as JSON writes it (optional `-`, no leading zeros, an optional
/// fraction, at most [`MAX_REVENUE_DIGITS`] integer digits, at most
/// [`MAX_AMOUNT_CHARS`] characters: what `String(number)` gives for amounts
/// that size) and `currency` is three ASCII capital letters (an ISO 4217
/// code). Anything else is no revenue: the server would refuse the batch.
pub fn revenue(amount: &str, currency: &str) -> Option<String> {
    let digits = amount.strip_prefix("-").unwrap_or(amount).as_bytes();
    // Where the point is (or the end): the integer digits before it.
    let point = digits.iter().position(|b| *b == b'.').unwrap_or(digits.len());
    let ok = (1..=MAX_REVENUE_DIGITS).contains(&point)
        && (point == 1 || digits.first() != Some(&b'0'))
        && point + 1 != digits.len()
        && digits.iter().enumerate().all(|(i, b)| b.is_ascii_digit() || i == point)
        && amount.len() <= MAX_AMOUNT_CHARS
        && currency.len() == 3
        && currency.bytes().all(|b| b.is_ascii_uppercase());
    ok.then(|| {
        let mut out = String::from("{\"$revenue\":{\"amount\":");
        add(&mut out, amount);
        add(&mut out, ",\"currency\":");
        quote(&mut out, currency);
        add(&mut out, "}}");
        out
    })
}

/// Appends `text` as a JSON string. Quotes, backslashes and control
/// characters are escaped; everything else, non-ASCII included, is copied
/// as it is (valid JSON in UTF-8). Works on bytes: every byte escaped is
/// ASCII, so the runs copied between them are whole characters.
pub fn quote(out: &mut String, text: &str) {
    // SAFETY: bytes go out in the order they came from a `str`, with ASCII
    // escapes only in place of ASCII bytes, so the String stays UTF-8.
    let bytes = unsafe { out.as_mut_vec() };
    bytes.push(b'"');
    for b in text.bytes() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"\\u00",
            _ => {
                bytes.push(b);
                continue;
            }
        };
        bytes.extend_from_slice(escape);
        if escape.len() == 4 {
            bytes.push(HEX[usize::from(b >> 4) & 15]);
            bytes.push(HEX[usize::from(b) & 15]);
        }
    }
    bytes.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `n` in decimal (instead of `to_string`, which needs `core::fmt`).
pub fn write_u64(out: &mut String, n: u64) {
    // The largest power of ten not above n (u64::MAX has 20 digits, and
    // 10^19 still fits), then one digit per power, most significant first.
    let mut unit = 1u64;
    while n / unit >= 10 {
        unit *= 10;
    }
    loop {
        // SAFETY: an ASCII digit keeps the String UTF-8.
        unsafe { out.as_mut_vec() }.push(b'0' + (n / unit % 10) as u8);
        if unit == 1 {
            break;
        }
        unit /= 10;
    }
}

/// Whether `json` (the page's `JSON.stringify` of a props object) is one
/// object the server will accept: within [`MAX_PROPS_BYTES`], nested at most
/// [`MAX_PROPS_DEPTH`] deep, with at most [`MAX_PROPS_KEYS`] keys per object
/// and keys of at most [`MAX_KEY_CHARS`] characters. The server refuses a
/// whole batch for one bad event, so bad props must not leave the page.
pub fn props_ok(json: &str) -> bool {
    let bytes = json.as_bytes();
    if bytes.len() > MAX_PROPS_BYTES || bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return false;
    }
    // Keys seen in each open object (arrays keep a slot they never use).
    let mut keys = [0usize; MAX_PROPS_DEPTH];
    // Bit d set: the container at depth d is an array.
    let mut arrays = 0u32;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // Characters in the current (or last) string, for key lengths.
    let mut chars = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                continue;
            }
            // A character starts at every byte but UTF-8 continuations;
            // escapes count a little long, which only errs on caution.
            if b & 0xC0 != 0x80 {
                chars += 1;
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                chars = 0;
            }
            b'{' | b'[' => {
                if depth == MAX_PROPS_DEPTH {
                    return false;
                }
                if let Some(count) = keys.get_mut(depth) {
                    *count = 0;
                }
                arrays = (arrays & !(1 << depth)) | (u32::from(b == b'[') << depth);
                depth += 1;
            }
            b'}' | b']' => {
                if depth == 0 || (arrays >> (depth - 1) & 1 == 1) != (b == b']') {
                    return false;
                }
                depth -= 1;
                // The outer object must end the text.
                if depth == 0 && i + 1 != bytes.len() {
                    return false;
                }
            }
            b':' => {
                if depth == 0 || arrays >> (depth - 1) & 1 == 1 || chars > MAX_KEY_CHARS {
                    return false;
                }
                match keys.get_mut(depth - 1) {
                    Some(count) if *count < MAX_PROPS_KEYS => *count += 1,
                    _ => return false,
                }
            }
            _ => {}
        }
    }
    depth == 0 && !in_string
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn quoted(s: &str) -> String {
        let mut out = String::new();
        quote(&mut out, s);
        out
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn quotes_escapes_and_control_characters() {
        assert_eq!(quoted("plain"), r#""plain""#);
        assert_eq!(quoted("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quoted("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(quoted("\u{0}\u{1f}"), r#""\u0000\u001f""#);
        // Non-ASCII and the JS line separators stay as they are.
        assert_eq!(quoted("é😀\u{2028}"), "\"é😀\u{2028}\"");
    }

    // In Chromium: the browser's own JSON.parse reads back every string we
    // write, control characters, quotes, emoji and line separators included.
    #[wasm_bindgen_test]
    fn browser_json_parse_reads_back_our_strings() {
        let tricky = [
            "",
            "plain",
            "q\"b\\s/",
            "\u{0}\u{1}\u{8}\u{c}\u{1f}\u{7f}",
            "é😀\u{2028}\u{2029}</script>",
            "line\r\nnext\ttab",
        ];
        for text in tricky {
            let json = quoted(text);
            let back = js_sys::JSON::parse(&json).ok().and_then(|v| v.as_string());
            assert_eq!(back.as_deref(), Some(text), "{json}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn integers_without_fmt() {
        for n in [0u64, 7, 10, 1_700_000_000_123, u64::MAX] {
            let mut out = String::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn props_shape_and_limits() {
        assert!(props_ok("{}"));
        assert!(props_ok(r#"{"plan":"pro","n":3,"tags":["a","b"],"o":{"x":null}}"#));
        // Braces and colons inside strings are text.
        assert!(props_ok(r#"{"k":"}{:]["}"#));
        assert!(props_ok(r#"{"q":"say \"hi\": {"}"#));
        for bad in [
            "",
            "[]",
            "null",
            "\"x\"",
            "{",
            r#"{"a":1}}"#,
            "{}{}",
            r#"{"a":"1}"#,
            "{]",
            r#"{"a":[1}]}"#,
            r#"{"a":[1:2]}"#,
        ] {
            assert!(!props_ok(bad), "{bad}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn props_depth_at_and_past_limit() {
        let nested = |levels: usize| {
            let mut s = String::new();
            for _ in 1..levels {
                s.push_str("{\"a\":");
            }
            s.push_str("{}");
            for _ in 1..levels {
                s.push('}');
            }
            s
        };
        assert!(props_ok(&nested(MAX_PROPS_DEPTH)));
        assert!(!props_ok(&nested(MAX_PROPS_DEPTH + 1)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn props_keys_and_bytes_at_and_past_limit() {
        let object = |keys: usize| {
            let members: Vec<String> = (0..keys).map(|i| format!("\"k{i}\":0")).collect();
            format!("{{{}}}", members.join(","))
        };
        assert!(props_ok(&object(MAX_PROPS_KEYS)));
        assert!(!props_ok(&object(MAX_PROPS_KEYS + 1)));
        let key = |chars: usize| format!("{{\"{}\":1}}", "é".repeat(chars));
        assert!(props_ok(&key(MAX_KEY_CHARS)));
        assert!(!props_ok(&key(MAX_KEY_CHARS + 1)));
        let long = |bytes: usize| format!("{{\"v\":\"{}\"}}", "x".repeat(bytes - 8));
        assert!(props_ok(&long(MAX_PROPS_BYTES)));
        assert!(!props_ok(&long(MAX_PROPS_BYTES + 1)));
    }
    #[wasm_bindgen_test(unsupported = test)]
    fn joined_objects_keep_the_later_value() {
        assert_eq!(join("", ""), "");
        assert_eq!(join("{}", r#"{"a":1}"#), r#"{"a":1}"#);
        assert_eq!(join(r#"{"a":1}"#, ""), r#"{"a":1}"#);
        assert_eq!(join(r#"{"a":1}"#, "{}"), r#"{"a":1}"#);
        let both = join(r#"{"a":1,"b":2}"#, r#"{"b":3}"#);
        assert_eq!(both, r#"{"a":1,"b":2,"b":3}"#);
        let v: serde_json::Value = serde_json::from_str(&both).unwrap_or_default();
        assert_eq!(v, serde_json::json!({"a": 1, "b": 3}), "serde_json keeps the last");
        assert!(props_ok(&both));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn revenue_amounts_and_currencies() {
        let value =
            |a: &str, c: &str| revenue(a, c).map(|r| serde_json::from_str::<serde_json::Value>(&r).unwrap_or_default());
        assert_eq!(
            value("15.99", "USD"),
            Some(serde_json::json!({"$revenue": {"amount": 15.99, "currency": "USD"}}))
        );
        for (amount, currency) in [("0", "EUR"), ("-5", "EUR"), ("0.5", "JPY"), ("1234567", "IDR")] {
            assert!(value(amount, currency).is_some(), "{amount} {currency}");
        }
        let largest = "9".repeat(MAX_REVENUE_DIGITS);
        assert!(revenue(&largest, "EUR").is_some());
        assert!(revenue(&format!("{largest}.99"), "EUR").is_some());
        assert!(
            revenue(&format!("1{}", "0".repeat(MAX_REVENUE_DIGITS)), "EUR").is_none(),
            "10^12"
        );
        let long_fraction = format!("1.{}", "5".repeat(MAX_AMOUNT_CHARS - 2));
        assert!(revenue(&long_fraction, "EUR").is_some());
        assert!(revenue(&format!("{long_fraction}5"), "EUR").is_none());
        for amount in [
            "", "-", "1.", ".5", "1.2.3", "007", "00", "-01", "1e3", "1e+21", "NaN", "Infinity", "12,50", " 1", "+1",
            "0x10",
        ] {
            assert!(revenue(amount, "EUR").is_none(), "{amount:?}");
        }
        for currency in ["", "EU", "EURO", "eur", "Eur", "E1R", "€€€"] {
            assert!(revenue("1", currency).is_none(), "{currency:?}");
        }
    }
}
