#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plugboard::fuzzing::arrow_import(data));
