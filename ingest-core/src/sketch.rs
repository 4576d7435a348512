//! Unique counts that can be merged: a HyperLogLog++ sketch per rollup row,
//! so the visitors of a month are the merge of its days' sketches instead
//! of a scan of its events.
//!
//! Precision 14 (16,384 registers): a standard error of 0.81 % once the
//! sketch is dense, and HyperLogLog++'s sparse form below that, which
//! counts a few thousand visitors exactly. Stored as postcard bytes,
//! base64-encoded for a D1 text column behind a `.` (see [`PLAIN_MARK`]);
//! sketches written before that were deflated, and still read.

use crate::limits::MAX_ENCODED_SKETCH_BYTES;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use flate2::read::DeflateDecoder;
use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::hash::{BuildHasher, Hasher};
use std::io::Read;

/// Leads a sketch stored without deflate. Deflate saved little (a sparse
/// sketch's hashes are random; a dense one shrank by a third) and cost
/// more than half of each decode, which a dashboard load does thousands of
/// times (issue 15). `.` is outside base64's URL-safe alphabet, so it never
/// starts the deflated form.
pub const PLAIN_MARK: char = '.';

/// Register index bits: 2^14 registers.
pub const SKETCH_PRECISION: u8 = 14;

/// Visitor ids are hashed once by [`Sketch::insert`]; the sketch's own
/// hasher passes that 64-bit value through, so the stored sketches never
/// depend on a hash function a Rust release might change.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct PassThrough;

pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in so it still hashes.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SketchError {
    #[error("sketch is not valid base64")]
    Base64,
    #[error("sketch does not inflate")]
    Deflate,
    #[error("sketch bytes do not decode")]
    Decode,
    #[error("sketch does not have precision {SKETCH_PRECISION}")]
    Precision,
    #[error("sketch is larger than {MAX_ENCODED_SKETCH_BYTES} bytes")]
    TooLarge,
}

#[derive(Clone, Debug)]
pub struct Sketch(HyperLogLogPlus<u64, PassThrough>);

impl Default for Sketch {
    fn default() -> Self {
        Sketch::new()
    }
}

/// The 64-bit hash a visitor id is counted by.
pub fn hash_id(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

impl Sketch {
    pub fn new() -> Sketch {
        // The precision is a constant within the crate's range, so this
        // cannot fail; an empty sparse sketch is the fallback all the same.
        match HyperLogLogPlus::new(SKETCH_PRECISION, PassThrough) {
            Ok(h) => Sketch(h),
            Err(_) => unreachable_precision(),
        }
    }

    pub fn insert(&mut self, id: &str) {
        self.insert_hash(hash_id(id));
    }

    pub fn insert_hash(&mut self, hash: u64) {
        self.0.insert(&hash);
    }

    pub fn merge(&mut self, other: &Sketch) {
        // Every sketch here has the same precision (checked on decode).
        let _ = self.0.merge(&other.0);
    }

    /// The estimated number of distinct ids inserted.
    pub fn estimate(&mut self) -> u64 {
        self.0.count().round().max(0.0) as u64
    }

    pub fn encode(&mut self) -> String {
        // Counting first folds the sketch's temporary set into its sparse
        // list, which encodes smaller.
        let _ = self.0.count();
        let bytes = postcard::to_allocvec(&self.0).unwrap_or_default();
        let mut text = String::with_capacity(1 + bytes.len() * 4 / 3 + 4);
        text.push(PLAIN_MARK);
        URL_SAFE_NO_PAD.encode_string(bytes, &mut text);
        text
    }

    pub fn decode(text: &str) -> Result<Sketch, SketchError> {
        if text.len() > MAX_ENCODED_SKETCH_BYTES {
            return Err(SketchError::TooLarge);
        }
        let text = text.trim();
        let bytes = match text.strip_prefix(PLAIN_MARK) {
            Some(plain) => URL_SAFE_NO_PAD.decode(plain).map_err(|_| SketchError::Base64)?,
            None => {
                let compressed = URL_SAFE_NO_PAD.decode(text).map_err(|_| SketchError::Base64)?;
                let mut bytes = Vec::new();
                DeflateDecoder::new(compressed.as_slice())
                    .take((MAX_ENCODED_SKETCH_BYTES * 8) as u64)
                    .read_to_end(&mut bytes)
                    .map_err(|_| SketchError::Deflate)?;
                bytes
            }
        };
        // The crate keeps the precision private, but postcard writes it
        // first (the hasher before it is a unit struct, zero bytes): read
        // it there. Merging into an empty sketch, as this did before, took
        // two thirds of a decode (issue 15).
        if bytes.first() != Some(&SKETCH_PRECISION) {
            return Err(SketchError::Precision);
        }
        let inner: HyperLogLogPlus<u64, PassThrough> = postcard::from_bytes(&bytes).map_err(|_| SketchError::Decode)?;
        Ok(Sketch(inner))
    }
}

#[cold]
fn unreachable_precision() -> Sketch {
    // SKETCH_PRECISION is within 4..=18; the crate refuses nothing else.
    panic!("HyperLogLog precision {SKETCH_PRECISION} refused")
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::DeflateEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn sketch_of(range: std::ops::Range<u32>) -> Sketch {
        let mut s = Sketch::new();
        for i in range {
            s.insert(&format!("visitor-{i}"));
        }
        s
    }

    #[test]
    fn small_counts_are_exact_and_repeats_count_once() {
        let mut s = sketch_of(0..1000);
        for i in 0..1000 {
            s.insert(&format!("visitor-{i}"));
        }
        assert_eq!(s.estimate(), 1000);
        assert_eq!(Sketch::new().estimate(), 0);
    }

    #[test]
    fn merges_count_the_union() {
        let mut a = sketch_of(0..600);
        let b = sketch_of(400..1000);
        a.merge(&b);
        assert_eq!(a.estimate(), 1000);
    }

    #[test]
    fn large_counts_stay_within_two_percent() {
        let mut days: Vec<Sketch> = (0..10)
            .map(|d| sketch_of(d * 20_000..(d + 1) * 20_000 + 5_000))
            .collect();
        let mut total = Sketch::new();
        for day in &days {
            total.merge(day);
        }
        let estimate = total.estimate() as f64;
        let truth = 205_000.0;
        assert!(
            ((estimate - truth) / truth).abs() < 0.02,
            "estimate {estimate} for {truth}"
        );
        let one = days[0].estimate() as f64;
        assert!(((one - 25_000.0) / 25_000.0).abs() < 0.02, "day estimate {one}");
    }

    #[test]
    fn round_trips_through_text_in_both_forms() {
        for mut s in [sketch_of(0..10), sketch_of(0..50_000)] {
            let before = s.estimate();
            let text = s.encode();
            let mut back = Sketch::decode(&text).expect("decodes");
            assert_eq!(back.estimate(), before);
            // Still usable after the trip.
            back.insert("someone-new");
            assert!(back.estimate() >= before);
        }
        let dense = sketch_of(0..50_000).encode();
        assert!(dense.starts_with(PLAIN_MARK));
        assert!(dense.len() < 18 * 1024, "dense sketch is {} bytes", dense.len());
        assert!(sketch_of(0..10).encode().len() < 200);
    }

    /// Rows written before sketches were stored plain: deflated, no mark.
    fn deflated(sketch: &mut Sketch) -> String {
        let _ = sketch.0.count();
        let bytes = postcard::to_allocvec(&sketch.0).expect("encodes");
        let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
        deflater.write_all(&bytes).expect("writes");
        URL_SAFE_NO_PAD.encode(deflater.finish().expect("finishes"))
    }

    #[test]
    fn sketches_stored_deflated_still_read_and_merge_with_plain_ones() {
        for range in [0..10, 0..3_000, 0..50_000] {
            let mut old = sketch_of(range.clone());
            let text = deflated(&mut old);
            assert!(!text.starts_with(PLAIN_MARK));
            let mut back = Sketch::decode(&text).expect("the deflated form decodes");
            assert_eq!(back.estimate(), old.estimate(), "{range:?}");
        }
        let mut merged = Sketch::decode(&deflated(&mut sketch_of(0..600))).expect("decodes");
        merged.merge(&Sketch::decode(&sketch_of(400..1000).encode()).expect("decodes"));
        assert_eq!(merged.estimate(), 1000);
        // A mark on damaged text is still an error.
        assert_eq!(Sketch::decode(".%%%").err(), Some(SketchError::Base64));
        assert_eq!(Sketch::decode(".").err(), Some(SketchError::Precision));
    }

    #[test]
    fn damaged_text_is_an_error_not_a_panic() {
        assert_eq!(Sketch::decode("%%%").err(), Some(SketchError::Base64));
        assert_eq!(
            Sketch::decode("AAAA").err(),
            Some(SketchError::Deflate).or(Some(SketchError::Decode))
        );
        assert_eq!(
            Sketch::decode(&"A".repeat(MAX_ENCODED_SKETCH_BYTES + 1)).err(),
            Some(SketchError::TooLarge)
        );
        let mut other = HyperLogLogPlus::<u64, PassThrough>::new(12, PassThrough).expect("precision 12");
        let _ = other.count();
        let bytes = postcard::to_allocvec(&other).expect("encodes");
        let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
        deflater.write_all(&bytes).expect("writes");
        let text = URL_SAFE_NO_PAD.encode(deflater.finish().expect("finishes"));
        assert_eq!(Sketch::decode(&text).err(), Some(SketchError::Precision));
        // Our precision first, then bytes that are no sketch.
        let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
        deflater.write_all(&[SKETCH_PRECISION, 0xff, 0xff]).expect("writes");
        let text = URL_SAFE_NO_PAD.encode(deflater.finish().expect("finishes"));
        assert_eq!(Sketch::decode(&text).err(), Some(SketchError::Decode));
    }

    #[test]
    fn a_dense_sketch_of_another_precision_is_refused_too() {
        let mut other = HyperLogLogPlus::<u64, PassThrough>::new(15, PassThrough).expect("precision 15");
        for i in 0..100_000u64 {
            other.insert(&hash_id(&format!("v{i}")));
        }
        let _ = other.count();
        let bytes = postcard::to_allocvec(&other).expect("encodes");
        assert_eq!(bytes.first(), Some(&15), "postcard writes the precision first");
        let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
        deflater.write_all(&bytes).expect("writes");
        let text = URL_SAFE_NO_PAD.encode(deflater.finish().expect("finishes"));
        assert_eq!(Sketch::decode(&text).err(), Some(SketchError::Precision));
    }
}
