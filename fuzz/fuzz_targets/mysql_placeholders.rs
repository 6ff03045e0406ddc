#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plugboard_mysql::fuzzing::placeholders(data));
