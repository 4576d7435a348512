#![no_main]
// Properties: ingest_core::fuzzing::form.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ingest_core::fuzzing::form(data));
