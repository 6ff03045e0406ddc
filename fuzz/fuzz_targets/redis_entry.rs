#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plugboard::fuzzing::let_guarded_panics_unwind();
    plugboard::fuzzing::redis_entry(data)
});
