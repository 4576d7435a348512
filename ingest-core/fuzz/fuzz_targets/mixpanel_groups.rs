#![no_main]
// Properties: ingest_core::fuzzing::mixpanel_groups.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ingest_core::fuzzing::mixpanel_groups(data));
