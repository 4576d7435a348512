#![no_main]
// Properties: ingest_core::fuzzing::crm.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ingest_core::fuzzing::crm(data));
