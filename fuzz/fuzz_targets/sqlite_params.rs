#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plugboard_sqlite::fuzzing::params(data));
