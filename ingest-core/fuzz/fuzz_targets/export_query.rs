#![no_main]
// Properties: ingest_core::fuzzing::export_query.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ingest_core::fuzzing::export_query(data));
