#![no_main]
// Properties: ingest_core::fuzzing::empmix.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ingest_core::fuzzing::empmix(data));
