#![no_main]
// Properties: ingest_core::fuzzing::vemetric_event.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ingest_core::fuzzing::vemetric_event(data));
