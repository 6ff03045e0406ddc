#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plugboard_adbc::fuzzing::placeholders(data));
