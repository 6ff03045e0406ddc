#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plugboard::fuzzing::disk_entry(data));
