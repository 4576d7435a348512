//! How rows travel to D1: a statement binds at most 100 parameters, so a
//! batch of rows goes in as JSON arrays (read back with `json_each(?1)`),
//! one bound parameter each, every array at most
//! [`D1_JSON_CHUNK_MAX_BYTES`].

use crate::limits::D1_JSON_CHUNK_MAX_BYTES;

/// Cuts rows (each serialised as one JSON object) into JSON arrays of at
/// most [`D1_JSON_CHUNK_MAX_BYTES`]; a single row larger than that gets an
/// array of its own. A row serde_json cannot write is left out.
pub fn json_chunks<T: serde::Serialize>(rows: impl IntoIterator<Item = T>) -> Vec<String> {
    chunks_within(rows, D1_JSON_CHUNK_MAX_BYTES)
}

fn chunks_within<T: serde::Serialize>(rows: impl IntoIterator<Item = T>, cap: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::from("[");
    for row in rows {
        let Ok(text) = serde_json::to_string(&row) else {
            continue;
        };
        if current.len() > 1 && current.len() + text.len() + 2 > cap {
            current.push(']');
            chunks.push(std::mem::replace(&mut current, String::from("[")));
        }
        if current.len() > 1 {
            current.push(',');
        }
        current.push_str(&text);
    }
    if current.len() > 1 {
        current.push(']');
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn nothing_makes_no_chunk() {
        assert!(json_chunks(Vec::<Value>::new()).is_empty());
    }

    #[test]
    fn rows_stay_whole_and_in_order() {
        let rows: Vec<Value> = (0..5).map(|i| json!({ "i": i })).collect();
        let chunks = json_chunks(&rows);
        assert_eq!(chunks, [r#"[{"i":0},{"i":1},{"i":2},{"i":3},{"i":4}]"#]);
    }

    /// `"aaaa"` is 6 bytes: two rows make `["aaaa","aaaa"]`, 15 bytes.
    #[test]
    fn chunk_size_at_and_past_the_cap() {
        let rows = ["aaaa"; 4];
        assert_eq!(chunks_within(rows, 15), [r#"["aaaa","aaaa"]"#, r#"["aaaa","aaaa"]"#]);
        assert_eq!(chunks_within(rows, 14), [r#"["aaaa"]"#; 4]);
        // A row past the cap alone is still sent, alone.
        assert_eq!(chunks_within(["a".repeat(20)], 15).len(), 1);
        for chunk in json_chunks(vec!["x".repeat(1000); 2000]) {
            assert!(chunk.len() <= D1_JSON_CHUNK_MAX_BYTES);
            assert!(serde_json::from_str::<Vec<String>>(&chunk).is_ok());
        }
    }

    #[test]
    fn a_row_json_cannot_write_is_left_out() {
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        let good = std::collections::HashMap::new();
        assert_eq!(json_chunks([bad, good]), ["[{}]"]);
    }
}
