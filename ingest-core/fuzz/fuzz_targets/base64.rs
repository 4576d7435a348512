#![no_main]
// Properties: ingest_core::fuzzing::base64.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ingest_core::fuzzing::base64(data));
