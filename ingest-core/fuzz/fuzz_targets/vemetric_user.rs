#![no_main]
// Properties: ingest_core::fuzzing::vemetric_user.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ingest_core::fuzzing::vemetric_user(data));
