//! The one unsafe call of this crate: asking a loaded library whether it exports a symbol.
#![allow(unsafe_code)]

/// Whether `library` exports `symbol` (a name without a trailing NUL).
pub fn exports(library: &libloading::Library, symbol: &[u8]) -> bool {
    // SAFETY: the symbol is only looked up, never called or read: its type, a raw pointer,
    // makes no claim about what is there, and the `Symbol` is dropped before `library`.
    unsafe { library.get::<*const std::ffi::c_void>(symbol) }.is_ok()
}
