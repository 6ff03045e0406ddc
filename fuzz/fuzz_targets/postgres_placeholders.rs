#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plugboard_postgres::fuzzing::placeholders(data));
