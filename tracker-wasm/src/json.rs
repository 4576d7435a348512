//! A tiny JSON writer and a checker for property objects. serde and
//! `core::fmt` would cost kilobytes in the module; this is all we need.

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
}
