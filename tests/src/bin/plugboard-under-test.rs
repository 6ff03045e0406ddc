//! The `plugboard` binary, built inside this crate so its integration tests can run it
//! (`CARGO_BIN_EXE_*` only names binaries of the crate under test). Same function as
//! `host/src/main.rs`.
fn main() -> std::process::ExitCode {
    plugboard::cli::main()
}
