//! Fuzz target body (issue 13): the ADBC connector's parameter binding, without a driver:
//! which placeholders of a statement the given parameters fill, in which order, and the
//! one-row Arrow batch bound for them. A panic is a finding. `fuzz/` runs it (target
//! `adbc_placeholders`); `tests/tests/fuzz_corpus_adbc.rs` replays the corpus on stable.
//! The input layout is `plugboard_api::fuzz_input`'s, as for the other SQL connectors.
#![doc(hidden)]

use plugboard_api::Params;
pub use plugboard_api::fuzz_input::{Decoded, decode, encode};

/// Runs one input (see `plugboard_api::fuzz_input`): `mode` bit 0 binds strictly (as a
/// read does).
pub fn placeholders(data: &[u8]) {
    plugboard_api::fuzz_input::placeholders(
        data,
        |c| format!("\"{}\"", c.replace('"', "\"\"")),
        &run,
    );
}

/// What a read or an execute does with one statement before handing it to the driver.
fn run(statement: &str, own: &Params, shared: &Params, mode: u8) {
    let strict = mode & 1 != 0;
    if let Ok(Some((batch, names))) = crate::params::batch(statement, own, Some(shared), strict) {
        assert_eq!(
            batch.num_columns(),
            names.len(),
            "one column per bound name"
        );
        assert_eq!(batch.num_rows(), 1, "one row of values");
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len(), "each name is bound once");
    }
}
