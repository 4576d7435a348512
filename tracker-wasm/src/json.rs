//! A tiny JSON object writer: serde would cost kilobytes in the module.

pub struct Object {
    out: String,
}

impl Object {
    pub fn new() -> Self {
        Object { out: String::from("{") }
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        quote(&mut self.out, key);
        self.out.push(':');
    }

    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        quote(&mut self.out, value);
    }

    pub fn num(&mut self, key: &str, value: f64) {
        self.key(key);
        // Times and counts are whole numbers well inside f64's exact range.
        self.out.push_str(&(value as i64).to_string());
    }

    /// Inserts already-encoded JSON.
    pub fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.push_str(json);
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

pub fn quote(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
