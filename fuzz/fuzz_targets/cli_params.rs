#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plugboard::fuzzing::cli_params(data));
