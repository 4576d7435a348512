//! String helpers that cannot panic. `str`'s own searching and slicing
//! carry panic paths whose messages format numbers and escaped strings,
//! which would drag `core::fmt` and Unicode tables into the module; these
//! search bytes and slice with `get`. Separators are ASCII, so every index
//! found is a character boundary.

use alloc::string::String;

/// Appends `s`. Not inlined: `push_str` expands to a capacity check and a
/// copy at each of the module's many call sites.
#[inline(never)]
pub fn add(out: &mut String, s: &str) {
    out.push_str(s);
}

/// `s` from `from` on, or "" when out of range.
pub fn from(s: &str, from: usize) -> &str {
    s.get(from..).unwrap_or("")
}

/// `s` up to its first `a` or `b` byte (or all of it), and the rest after
/// that byte (None when there is none). Both are whole `str`s: the
/// separators are ASCII. The one search behind [`before`], [`after`] and
/// [`Split`], so that the module has one copy of it.
fn cut(s: &str, a: u8, b: u8) -> (&str, Option<&str>) {
    match s.bytes().position(|c| c == a || c == b) {
        Some(at) => (s.get(..at).unwrap_or(""), Some(from(s, at + 1))),
        None => (s, None),
    }
}

/// `s` up to its first `sep`, or all of it.
pub fn before(s: &str, sep: u8) -> &str {
    cut(s, sep, sep).0
}

/// `s` up to its first `a` or `b`, or all of it.
pub fn before_any(s: &str, a: u8, b: u8) -> &str {
    cut(s, a, b).0
}

/// `s` after its first `sep`, or "" when there is none.
pub fn after(s: &str, sep: u8) -> &str {
    cut(s, sep, sep).1.unwrap_or("")
}

/// Pieces of `s` between `sep` bytes (empty pieces too).
pub fn split(s: &str, sep: u8) -> Split<'_> {
    Split {
        rest: Some(s),
        a: sep,
        b: sep,
    }
}

/// Words separated by spaces or commas, as settings list them.
pub fn words(s: &str) -> Split<'_> {
    Split {
        rest: Some(s),
        a: b' ',
        b: b',',
    }
}

/// See [`split`] and [`words`]; like `str::split`, but smaller in the module.
pub struct Split<'a> {
    /// What is left; None once the last piece was given.
    rest: Option<&'a str>,
    a: u8,
    b: u8,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (piece, rest) = cut(self.rest?, self.a, self.b);
        self.rest = rest;
        Some(piece)
    }
}

/// Lines in newline-separated text ("" has none).
pub fn lines(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'\n').count() + usize::from(!s.is_empty())
}

/// Characters in `s`: bytes that do not continue a UTF-8 sequence.
pub fn chars(s: &str) -> usize {
    s.bytes().filter(|b| b & 0xC0 != 0x80).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn finding_and_splitting() {
        assert_eq!(before("k=v=w", b'='), "k");
        assert_eq!(after("k=v=w", b'='), "v=w");
        assert_eq!(before("kv", b'='), "kv");
        assert_eq!(after("kv", b'='), "");
        assert_eq!(before("https://h/p#f", b'#'), "https://h/p");
        assert_eq!(from("abc", 1), "bc");
        assert_eq!(from("abc", 9), "");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn pieces_match_str_split() {
        for s in ["", "a", ",a,,b,", "é,ü,😀", "a b,c"] {
            let ours: Vec<&str> = split(s, b',').collect();
            let std: Vec<&str> = s.split(',').collect();
            assert_eq!(ours, std, "{s:?}");
        }
        let found: Vec<&str> = words("a b,c").collect();
        assert_eq!(found, ["a", "b", "c"]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn counts_characters() {
        assert_eq!(chars(""), 0);
        assert_eq!(chars("abc"), 3);
        assert_eq!(chars("é😀x"), 3);
        assert_eq!(lines(""), 0);
        assert_eq!(lines("a"), 1);
        assert_eq!(lines("\na\nb"), 3);
    }
}
