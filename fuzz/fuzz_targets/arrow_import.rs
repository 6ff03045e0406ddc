#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plugboard::fuzzing::let_guarded_panics_unwind();
    plugboard::fuzzing::arrow_import(data)
});
