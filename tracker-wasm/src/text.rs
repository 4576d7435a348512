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

/// Index of the last byte equal to `byte`.
pub fn rfind(s: &str, byte: u8) -> Option<usize> {
    s.bytes().rposition(|b| b == byte)
}

/// `s` from `from` on, or "" when out of range.
pub fn from(s: &str, from: usize) -> &str {
    s.get(from..).unwrap_or("")
}

/// `s` up to its first `sep`, or all of it.
pub fn before(s: &str, sep: u8) -> &str {
    let end = s.bytes().position(|b| b == sep).unwrap_or(s.len());
    s.get(..end).unwrap_or(s)
}

/// `s` after its first `sep`, or "" when there is none.
pub fn after(s: &str, sep: u8) -> &str {
    s.bytes().position(|b| b == sep).map_or("", |at| from(s, at + 1))
}

/// Pieces of `s` between `sep` bytes (empty pieces too).
pub fn split(s: &str, sep: u8) -> Split<'_> {
    Split {
        rest: s,
        a: sep,
        b: sep,
        done: false,
    }
}

/// Words separated by spaces or commas, as settings list them.
pub fn words(s: &str) -> Split<'_> {
    Split {
        rest: s,
        a: b' ',
        b: b',',
        done: false,
    }
}

pub struct Split<'a> {
    rest: &'a str,
    a: u8,
    b: u8,
    done: bool,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let rest = self.rest;
        match rest.bytes().position(|c| c == self.a || c == self.b) {
            Some(at) => {
                self.rest = from(rest, at + 1);
                rest.get(..at)
            }
            None => {
                self.done = true;
                Some(rest)
            }
        }
    }
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
        assert_eq!(rfind("a=b=c", b'='), Some(3));
        assert_eq!(rfind("abc", b'='), None);
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
    }
}
