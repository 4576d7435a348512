//! Payload extraction in one place: size caps, gzip (by header or magic
//! bytes) with a decompressed-size and ratio cap, base64 in either alphabet,
//! form fields, JSON and NDJSON.
//!
//! Sizes are held twice: the body as it came, to [`MAX_BODY_BYTES`] (the
//! worker stops reading there), and a gzip body once inflated, to
//! [`MAX_INFLATED_BODY_BYTES`] and at most [`MAX_GZIP_RATIO`] times its
//! compressed size. So gzip lets a client send more than 2 MiB of JSON, as
//! Mixpanel's page advises, and what the larger text may cost the parser is
//! bounded by counting its objects, arrays and elements before parsing.

use crate::error::IngestError;
use crate::limits::{
    BODY_DRAIN_BYTES, MAX_BODY_BYTES, MAX_GZIP_RATIO, MAX_INFLATED_BODY_BYTES, MAX_JSON_CONTAINERS, MAX_JSON_ELEMENTS,
};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use flate2::read::MultiGzDecoder;
use serde_json::Value;
use std::io::Read;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Read the decompressor in slices this big so the cap is checked before the
/// output grows past it.
const INFLATE_CHUNK_BYTES: usize = 16 * 1024;

/// A request body read chunk by chunk as it streams in, held to
/// [`MAX_BODY_BYTES`]: the chunk that would pass the cap is refused and
/// nothing more is kept. The reader may go on reading (and dropping) at most
/// [`BODY_DRAIN_BYTES`] more, so that a client a little over the cap, still
/// sending, finishes and reads its 413 instead of having its connection
/// closed under it; past that it stops reading ([`WireBody::read_on`]), so
/// an upload of any length costs at most the cap plus the drain. A
/// `Content-Length` above the cap is refused before anything is read.
#[derive(Debug, Default)]
pub struct WireBody {
    bytes: Vec<u8>,
    /// Bytes read so far, kept or not.
    read: usize,
    too_large: bool,
}

impl WireBody {
    /// Refuses a declared length past the cap; an absent or unreadable
    /// header says nothing (chunked bodies have none) and the chunks decide.
    pub fn expect(content_length: Option<&str>) -> Result<Self, IngestError> {
        match content_length.and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(n) if n > MAX_BODY_BYTES as u64 => Err(IngestError::PayloadTooLarge { limit: MAX_BODY_BYTES }),
            _ => Ok(Self::default()),
        }
    }

    /// Takes the next chunk, or refuses it (and every later one) when the
    /// body would pass the cap; what was kept is let go then.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), IngestError> {
        self.read = self.read.saturating_add(chunk.len());
        if self.too_large || self.bytes.len() + chunk.len() > MAX_BODY_BYTES {
            self.too_large = true;
            self.bytes = Vec::new();
            return Err(IngestError::PayloadTooLarge { limit: MAX_BODY_BYTES });
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// Whether to read another chunk: always within the cap; past it only
    /// while the drain allows.
    pub fn read_on(&self) -> bool {
        !self.too_large || self.read <= MAX_BODY_BYTES + BODY_DRAIN_BYTES
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Checks the size on the wire, then inflates gzip when the header says so
/// or the bytes start with gzip's magic number.
pub fn decode_body(body: &[u8], content_encoding: Option<&str>) -> Result<Vec<u8>, IngestError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(IngestError::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    let declared_gzip = content_encoding.is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip"));
    match content_encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => {}
        Some(e) if e.is_empty() || e == "identity" || e == "gzip" => {}
        Some(_) => return Err(IngestError::UnsupportedMediaType),
    }
    if declared_gzip || body.starts_with(&GZIP_MAGIC) {
        return gunzip(body, MAX_INFLATED_BODY_BYTES);
    }
    Ok(body.to_vec())
}

/// Inflates with a cap on the output size and on the expansion ratio. The
/// output is checked before each slice is kept, so neither cap is passed by
/// more than one slice in memory.
pub fn gunzip(body: &[u8], cap: usize) -> Result<Vec<u8>, IngestError> {
    let ratio_cap = body.len().saturating_mul(MAX_GZIP_RATIO).max(INFLATE_CHUNK_BYTES);
    let mut decoder = MultiGzDecoder::new(body);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; INFLATE_CHUNK_BYTES];
    loop {
        let n = decoder.read(&mut chunk).map_err(|_| IngestError::BadEncoding("gzip"))?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > cap {
            return Err(IngestError::InflatedTooLarge { limit: cap });
        }
        if out.len() + n > ratio_cap {
            return Err(IngestError::CompressionRatio { ratio: MAX_GZIP_RATIO });
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decodes base64 in the standard or URL-safe alphabet, padded or not.
/// A `+` that a form decoder turned into a space is turned back, and line
/// breaks some clients insert are skipped.
///
/// Spaces at the ends are `+` too: trimming them first dropped a final `+`,
/// and with it the last byte, without an error. Text that only decodes
/// without its surrounding blanks is still accepted.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, IngestError> {
    let other_blanks = |c: char| c.is_whitespace() && c != ' ';
    decode_base64_text(text.trim_matches(other_blanks)).or_else(|e| match text.trim() {
        trimmed if trimmed.len() < text.len() => decode_base64_text(trimmed),
        _ => Err(e),
    })
}

fn decode_base64_text(text: &str) -> Result<Vec<u8>, IngestError> {
    let cleaned: String = text
        .chars()
        .filter(|c| *c != '\n' && *c != '\r')
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    let engine = if cleaned.contains(['-', '_']) {
        &URL_SAFE_LENIENT
    } else {
        &STANDARD_LENIENT
    };
    engine
        .decode(cleaned.as_bytes())
        .map_err(|_| IngestError::BadEncoding("base64"))
}

/// The first value of `name` in a `application/x-www-form-urlencoded` body or
/// query string.
pub fn form_field(encoded: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(encoded)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Reads a `data` value the way Mixpanel's clients send it: base64 JSON,
/// or plain JSON (some clients skip the base64 step).
pub fn data_param_json(data: &str) -> Result<Value, IngestError> {
    let trimmed = data.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return parse_json(trimmed.as_bytes());
    }
    parse_json(&decode_base64(data)?)
}

pub fn parse_json(bytes: &[u8]) -> Result<Value, IngestError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::EmptyBody);
    }
    check_shape(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| IngestError::InvalidJson(json_error_text(&e)))
}

/// Refuses JSON with more than [`MAX_JSON_CONTAINERS`] objects and arrays,
/// or more than [`MAX_JSON_ELEMENTS`] values inside them, before any is
/// built: parsing costs far more memory than the text when it is many small
/// values. Outside strings, `{` and `[` are the containers, and a container's
/// elements are its commas plus one when it is not empty; that is exact for
/// valid JSON (and NDJSON, whose strings cannot span lines). Invalid input
/// fails either here or in the parser.
fn check_shape(bytes: &[u8]) -> Result<(), IngestError> {
    let mut containers = 0usize;
    let mut elements = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // Just after `{` or `[`: the next token says whether it holds anything.
    let mut opened = false;
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if b.is_ascii_whitespace() {
            continue;
        }
        if opened && b != b'}' && b != b']' {
            elements += 1;
        }
        opened = false;
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                containers += 1;
                opened = true;
            }
            b',' => elements += 1,
            _ => {}
        }
        if containers > MAX_JSON_CONTAINERS {
            return Err(IngestError::TooComplex {
                limit: MAX_JSON_CONTAINERS,
            });
        }
        if elements > MAX_JSON_ELEMENTS {
            return Err(IngestError::TooManyElements {
                limit: MAX_JSON_ELEMENTS,
            });
        }
    }
    Ok(())
}

/// A JSON array, or newline-delimited JSON objects, as a list of values.
/// Which one is decided by the content type when given, else by the first
/// non-blank byte.
pub fn parse_json_or_ndjson(bytes: &[u8], content_type: Option<&str>) -> Result<Vec<Value>, IngestError> {
    let ndjson_declared = content_type.is_some_and(|t| t.contains("ndjson") || t.contains("jsonlines"));
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Err(IngestError::EmptyBody),
        Some(b'[') if !ndjson_declared => match parse_json(bytes)? {
            Value::Array(items) => Ok(items),
            _ => Err(IngestError::InvalidJson("expected an array".into())),
        },
        _ => {
            check_shape(bytes)?;
            let mut items = Vec::new();
            for (line_no, line) in bytes.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let value = serde_json::from_slice(line)
                    .map_err(|e| IngestError::InvalidJson(format!("line {}: {}", line_no + 1, json_error_text(&e))))?;
                items.push(value);
            }
            Ok(items)
        }
    }
}

/// serde_json's message without echoing input back.
fn json_error_text(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Eof => "unexpected end of input",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).ok();
        enc.finish().unwrap_or_default()
    }

    #[test]
    fn body_size_at_and_past_limit() {
        let at = vec![b' '; MAX_BODY_BYTES];
        assert_eq!(decode_body(&at, None).map(|b| b.len()), Ok(MAX_BODY_BYTES));
        let past = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            decode_body(&past, None),
            Err(IngestError::PayloadTooLarge { limit: MAX_BODY_BYTES })
        );
    }

    #[test]
    fn streamed_body_stops_at_the_limit() {
        let chunk = vec![b' '; 64 * 1024];
        let mut body = WireBody::expect(None).expect("no length is fine");
        for _ in 0..MAX_BODY_BYTES / chunk.len() {
            assert_eq!(body.push(&chunk), Ok(()));
            assert!(body.read_on());
        }
        // Exactly at the cap; the next byte is refused, and so is what follows.
        assert_eq!(
            body.push(b"x"),
            Err(IngestError::PayloadTooLarge { limit: MAX_BODY_BYTES })
        );
        assert_eq!(
            body.push(b""),
            Err(IngestError::PayloadTooLarge { limit: MAX_BODY_BYTES })
        );
        // Read on, dropping, up to the drain: at it, still; one byte past, stop.
        assert!(body.read_on());
        assert!(body.push(&vec![b' '; BODY_DRAIN_BYTES - 1]).is_err());
        assert!(body.read_on(), "read: cap + drain");
        assert!(body.push(b"y").is_err());
        assert!(!body.read_on(), "read: cap + drain + 1");
        assert!(body.into_bytes().is_empty(), "nothing of a refused body is kept");
        // A chunk that straddles the cap is refused whole.
        let mut body = WireBody::default();
        assert_eq!(body.push(&vec![b' '; MAX_BODY_BYTES - 1]), Ok(()));
        assert!(body.push(b"ab").is_err());
        // A body within the cap is kept whole.
        let mut body = WireBody::default();
        assert_eq!(body.push(&vec![b'a'; MAX_BODY_BYTES]), Ok(()));
        assert_eq!(body.into_bytes().len(), MAX_BODY_BYTES);
        // A declared length decides before any chunk.
        assert!(WireBody::expect(Some(&MAX_BODY_BYTES.to_string())).is_ok());
        assert_eq!(
            WireBody::expect(Some(&format!(" {} ", MAX_BODY_BYTES + 1))).err(),
            Some(IngestError::PayloadTooLarge { limit: MAX_BODY_BYTES })
        );
        assert!(
            WireBody::expect(Some("99999999999999999999999")).is_ok(),
            "unreadable: the chunks decide"
        );
        assert!(WireBody::expect(Some("soon")).is_ok());
    }

    #[test]
    fn gzip_by_header_or_magic() {
        let packed = gzip(br#"{"a":1}"#);
        assert_eq!(decode_body(&packed, Some("gzip")).ok(), Some(br#"{"a":1}"#.to_vec()));
        assert_eq!(decode_body(&packed, None).ok(), Some(br#"{"a":1}"#.to_vec()));
        assert_eq!(decode_body(b"{}", Some("br")), Err(IngestError::UnsupportedMediaType));
        assert_eq!(
            decode_body(&packed[..packed.len() / 2], Some("gzip")),
            Err(IngestError::BadEncoding("gzip"))
        );
        assert_eq!(
            decode_body(b"plain", Some("gzip")),
            Err(IngestError::BadEncoding("gzip"))
        );
    }

    /// Text of `len` letters drawn from `alphabet` by a fixed generator:
    /// an alphabet of two compresses about 7 times, of 26 about 1.6 times,
    /// so the ratio cap stays out of the way.
    fn letters(len: usize, alphabet: &[u8]) -> Vec<u8> {
        let mut seed = 7u32;
        (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                alphabet[(seed >> 16) as usize % alphabet.len()]
            })
            .collect()
    }

    /// `bytes` gzipped into exactly `total` bytes: the compressed member as
    /// usual, then empty members whose header comments fill the rest (a
    /// header field holds at most 64 KiB; a body may hold many members).
    fn gzip_exactly(bytes: &[u8], total: usize) -> Vec<u8> {
        let mut packed = gzip(bytes);
        let empty = gzip(b"").len();
        assert!(
            packed.len() + empty < total,
            "{} bytes do not fit in {total}",
            packed.len()
        );
        while packed.len() < total {
            // The comment ends with a NUL that the builder adds.
            let room = total - packed.len() - empty - 1;
            let comment = vec![b'c'; room.min(60_000)];
            let member = flate2::GzBuilder::new()
                .comment(comment)
                .write(Vec::new(), Compression::default())
                .finish()
                .unwrap_or_default();
            packed.extend(member);
        }
        assert_eq!(packed.len(), total);
        packed
    }

    #[test]
    fn wire_size_of_a_gzip_body_at_and_past_limit() {
        // The seed's cure for "Payload too large": 3 MiB of JSON-like text
        // arrives as exactly 2 MiB of gzip and is read whole.
        let text = letters(3 * 1024 * 1024, b"ab");
        let at = gzip_exactly(&text, MAX_BODY_BYTES);
        assert_eq!(decode_body(&at, Some("gzip")).map(|b| b.len()), Ok(text.len()));
        let past = gzip_exactly(&text, MAX_BODY_BYTES + 1);
        assert_eq!(
            decode_body(&past, Some("gzip")),
            Err(IngestError::PayloadTooLarge { limit: MAX_BODY_BYTES })
        );
    }

    #[test]
    fn inflated_size_at_and_past_limit() {
        const { assert!(MAX_INFLATED_BODY_BYTES > MAX_BODY_BYTES) };
        let text = letters(MAX_INFLATED_BODY_BYTES + 1, b"ab");
        let at = gzip(&text[..MAX_INFLATED_BODY_BYTES]);
        assert!(at.len() <= MAX_BODY_BYTES, "{} bytes of gzip", at.len());
        assert_eq!(
            decode_body(&at, Some("gzip")).map(|b| b.len()),
            Ok(MAX_INFLATED_BODY_BYTES)
        );
        assert_eq!(
            decode_body(&gzip(&text), None),
            Err(IngestError::InflatedTooLarge {
                limit: MAX_INFLATED_BODY_BYTES
            })
        );
        assert_eq!(
            IngestError::InflatedTooLarge {
                limit: MAX_INFLATED_BODY_BYTES
            }
            .to_string(),
            "decompressed request exceeds max limit of 10485760 bytes"
        );
        // gunzip keeps whatever cap it is given.
        let small = letters(1000, b"abcdefghijklmnopqrstuvwxyz");
        assert_eq!(gunzip(&gzip(&small), 1000).map(|b| b.len()), Ok(1000));
        assert_eq!(
            gunzip(&gzip(&small), 999),
            Err(IngestError::InflatedTooLarge { limit: 999 })
        );
    }

    #[test]
    fn gzip_ratio_at_and_past_limit() {
        // Zeros compress about a thousand times; the header comment pads
        // the body so that it inflates exactly 200 times, then one byte more.
        assert_eq!(MAX_GZIP_RATIO, 200, "the documented ratio, as a literal");
        let packed_len = 8 * 1024;
        let at = vec![0u8; packed_len * MAX_GZIP_RATIO];
        assert_eq!(
            decode_body(&gzip_exactly(&at, packed_len), Some("gzip")).map(|b| b.len()),
            Ok(at.len())
        );
        let past = vec![0u8; packed_len * MAX_GZIP_RATIO + 1];
        assert_eq!(
            decode_body(&gzip_exactly(&past, packed_len), Some("gzip")),
            Err(IngestError::CompressionRatio { ratio: MAX_GZIP_RATIO })
        );
    }

    #[test]
    fn base64_in_every_spelling() {
        let json = br#"{"event":"e?>","properties":{"k":"\u00ff~~"}}"#;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let std_text = STANDARD.encode(json);
        let url_text = URL_SAFE_NO_PAD.encode(json);
        assert!(std_text.contains('+') || std_text.contains('/') || url_text.contains('-') || url_text.contains('_'));
        assert_eq!(decode_base64(&std_text).ok().as_deref(), Some(&json[..]));
        assert_eq!(decode_base64(&url_text).ok().as_deref(), Some(&json[..]));
        assert_eq!(
            decode_base64(std_text.trim_end_matches('=')).ok().as_deref(),
            Some(&json[..])
        );
        assert_eq!(
            decode_base64(&std_text.replace('+', " ")).ok().as_deref(),
            Some(&json[..])
        );
        assert_eq!(decode_base64("!!!"), Err(IngestError::BadEncoding("base64")));
    }

    #[test]
    fn a_final_plus_read_as_a_space_is_kept() {
        // Regression (fuzz target base64): "ISHf0cL+" arrives as "ISHf0cL "
        // from a form decoder; trimming the space lost the sixth byte.
        use base64::engine::general_purpose::STANDARD;
        let bytes = [33, 33, 223, 209, 194, 254];
        let text = STANDARD.encode(bytes);
        assert!(text.ends_with('+'));
        assert_eq!(decode_base64(&text.replace('+', " ")).as_deref(), Ok(&bytes[..]));
        assert_eq!(
            decode_base64(" /+8").as_deref(),
            Ok(&[0xfb, 0xff, 0xbc][..]),
            "and a leading one"
        );
        // Blanks around a padded value are still only blanks.
        assert_eq!(decode_base64(" eyJhIjoxfQ== \r\n").as_deref(), Ok(&br#"{"a":1}"#[..]));
        assert_eq!(decode_base64("\teyJhIjoxfQ\n").as_deref(), Ok(&br#"{"a":1}"#[..]));
    }

    #[test]
    fn seed_example_decodes() {
        // The example `data` of Mixpanel's classic /track page.
        let data = "eyJldmVudCI6ICJnYW1lIiwgInByb3BlcnRpZXMiOiB7ImlwIjogIjEyMy4xMjMuMTIzLjEyMyIsICJ0b2tlbiI6ICJlM2JiNDEwMDMzMGMzNTcyMjc0MGZiOGM2ZjVhYmRkYyIsICJ0aW1lIjogMTI0NTYxMzg4NSwgImFjdGlvbiI6ICJwbGF5In19";
        let value = data_param_json(data).expect("decodes");
        assert_eq!(value["event"], "game");
        assert_eq!(value["properties"]["time"], 1_245_613_885);
    }

    #[test]
    fn containers_at_and_past_limit() {
        // Regression: 2 MiB of small objects took ~170 MiB to parse.
        let array = |n: usize| format!("[{}]", vec![r#"{"a":"[{\\"}"#; n].join(","));
        let at = array(MAX_JSON_CONTAINERS - 1);
        assert_eq!(
            parse_json(at.as_bytes()).map(|v| v.as_array().map(Vec::len)),
            Ok(Some(MAX_JSON_CONTAINERS - 1))
        );
        let past = array(MAX_JSON_CONTAINERS);
        assert_eq!(
            parse_json(past.as_bytes()),
            Err(IngestError::TooComplex {
                limit: MAX_JSON_CONTAINERS
            })
        );
        assert_eq!(
            IngestError::TooComplex {
                limit: MAX_JSON_CONTAINERS
            }
            .status(),
            413
        );
        let lines = |n: usize| vec![r#"{"a":["{"]}"#; n].join("\n");
        assert_eq!(
            parse_json_or_ndjson(lines(MAX_JSON_CONTAINERS / 2).as_bytes(), None).map(|v| v.len()),
            Ok(MAX_JSON_CONTAINERS / 2)
        );
        assert_eq!(
            parse_json_or_ndjson(lines(MAX_JSON_CONTAINERS / 2 + 1).as_bytes(), None),
            Err(IngestError::TooComplex {
                limit: MAX_JSON_CONTAINERS
            })
        );
        // Brackets inside strings, escaped quotes included, do not count.
        let text = format!(r#"{{"s":"{}\"{}"}}"#, "[".repeat(30_000), "{".repeat(30_000));
        assert!(parse_json(text.as_bytes()).is_ok());
    }

    #[test]
    fn elements_at_and_past_limit() {
        let zeros = |n: usize| format!("[{}]", vec!["0"; n].join(","));
        assert_eq!(
            parse_json(zeros(MAX_JSON_ELEMENTS).as_bytes()).map(|v| v.as_array().map(Vec::len)),
            Ok(Some(MAX_JSON_ELEMENTS))
        );
        assert_eq!(
            parse_json(zeros(MAX_JSON_ELEMENTS + 1).as_bytes()),
            Err(IngestError::TooManyElements {
                limit: MAX_JSON_ELEMENTS
            })
        );
        assert_eq!(
            IngestError::TooManyElements {
                limit: MAX_JSON_ELEMENTS
            }
            .status(),
            413
        );
        // Object members count once each, wherever they are nested, and in
        // NDJSON too; empty containers and commas in strings count nothing.
        let members = |n: usize| {
            format!(
                r#"{{"o":{{{}}}}}"#,
                (0..n).map(|i| format!(r#""k{i}":0"#)).collect::<Vec<_>>().join(",")
            )
        };
        assert!(parse_json(members(MAX_JSON_ELEMENTS - 1).as_bytes()).is_ok());
        assert_eq!(
            parse_json(members(MAX_JSON_ELEMENTS).as_bytes()),
            Err(IngestError::TooManyElements {
                limit: MAX_JSON_ELEMENTS
            })
        );
        let line = zeros(1024);
        let lines = vec![line.as_str(); MAX_JSON_ELEMENTS / 1024].join("\n");
        assert_eq!(
            parse_json_or_ndjson(lines.as_bytes(), Some("application/x-ndjson")).map(|v| v.len()),
            Ok(MAX_JSON_ELEMENTS / 1024)
        );
        assert_eq!(
            parse_json_or_ndjson(format!("{lines}\n[0]").as_bytes(), Some("application/x-ndjson")),
            Err(IngestError::TooManyElements {
                limit: MAX_JSON_ELEMENTS
            })
        );
        assert!(parse_json(format!(r#"[[],{{}},"{}"]"#, ",".repeat(MAX_JSON_ELEMENTS + 1)).as_bytes()).is_ok());
        // A plain body within the wire limit never meets the cap: 2 MiB of
        // `[0,0,…]` holds one element fewer.
        let densest = zeros((MAX_BODY_BYTES - 1) / 2);
        assert_eq!(densest.len(), MAX_BODY_BYTES - 1);
        assert_eq!(
            parse_json(densest.as_bytes()).map(|v| v.as_array().map(Vec::len)),
            Ok(Some(MAX_JSON_ELEMENTS - 1))
        );
    }

    #[test]
    fn form_fields_and_ndjson() {
        assert_eq!(form_field(b"a=1&data=eyJ9%3D&x", "data").as_deref(), Some("eyJ9="));
        assert_eq!(form_field(b"a=1", "data"), None);
        let items = parse_json_or_ndjson(b"{\"a\":1}\n\n{\"a\":2}\n", None).unwrap_or_default();
        assert_eq!(items.len(), 2);
        let items =
            parse_json_or_ndjson(b"[{\"a\":1},{\"a\":2},{\"a\":3}]", Some("application/json")).unwrap_or_default();
        assert_eq!(items.len(), 3);
        assert!(
            matches!(parse_json_or_ndjson(b"{\"a\":1}\n{oops", None), Err(IngestError::InvalidJson(m)) if m.starts_with("line 2"))
        );
        assert_eq!(parse_json_or_ndjson(b"  \n", None), Err(IngestError::EmptyBody));
    }
}
