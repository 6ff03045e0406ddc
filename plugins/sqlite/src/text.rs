//! The one module of this crate that uses `unsafe`: turning a batch of TEXT values, built
//! as bytes, into a UTF-8 column without validating each value when all of it is ASCII.
//!
//! SQLite does not promise that TEXT is valid UTF-8, so every value must be checked before
//! it may sit in a string column. Checking them one by one (`str::from_utf8` per value) was
//! 136 M of the 500 M instructions a 1M-row read spent beyond the bare stepping loop
//! (callgrind). Checking the batch's bytes in bulk for ASCII is a few instructions per
//! value; a batch with any non-ASCII byte is validated value by value as before.
#![allow(unsafe_code)]

use std::sync::Arc;

use plugboard_api::arrow_array::{ArrayRef, BinaryViewArray};

/// The high bit of each of a view's 12 inline bytes (bits 32..128 of the view).
const INLINE_HIGH_BITS: u128 = 0x8080_8080_8080_8080_8080_8080;
const MAX_INLINE: u32 = 12;

/// Whether every byte of every value is ASCII: the data buffers whole, and the inline
/// bytes of short values (a long value's 4-byte prefix is a copy of its buffer bytes; the
/// rest of its view is a buffer index and offset, not text).
fn all_ascii(bytes: &BinaryViewArray) -> bool {
    bytes.data_buffers().iter().all(|b| b.is_ascii())
        && bytes
            .views()
            .iter()
            .all(|&v| v as u32 > MAX_INLINE || (v >> 32) & INLINE_HIGH_BITS == 0)
}

/// The values as a UTF-8 column, or as they are (bytes) when some value is not UTF-8.
pub fn text_column(bytes: BinaryViewArray) -> ArrayRef {
    if all_ascii(&bytes) {
        // SAFETY: every byte of every value is below 0x80 (checked above, inline bytes
        // and buffers alike; unused inline bytes are zero), and ASCII is valid UTF-8.
        return Arc::new(unsafe { bytes.to_string_view_unchecked() });
    }
    match bytes.clone().to_string_view() {
        Ok(text) => Arc::new(text),
        Err(_) => Arc::new(bytes),
    }
}

#[cfg(test)]
mod tests {
    use plugboard_api::arrow_array::{Array, StringViewArray};
    use plugboard_api::arrow_schema::DataType;

    use super::*;

    #[test]
    fn ascii_unicode_and_invalid_bytes() {
        let values: [Option<&[u8]>; 5] = [
            Some(b"short"),
            None,
            Some(b"a value longer than twelve bytes"),
            Some(b""),
            Some(b"exactly12byt"),
        ];
        let ascii = text_column(BinaryViewArray::from_iter(values));
        let s = ascii
            .as_any()
            .downcast_ref::<StringViewArray>()
            .expect("text");
        assert_eq!(s.value(2), "a value longer than twelve bytes");
        assert!(s.is_null(1));

        let unicode: [Option<&[u8]>; 2] = [
            Some("café".as_bytes()),
            Some("ünïcödé, and long".as_bytes()),
        ];
        let col = text_column(BinaryViewArray::from_iter(unicode));
        assert_eq!(col.data_type(), &DataType::Utf8View, "valid UTF-8 is text");

        for bad in [&b"\xff"[..], &b"a long value, then \xc3"[..]] {
            let col = text_column(BinaryViewArray::from_iter([Some(&b"ok"[..]), Some(bad)]));
            assert_eq!(
                col.data_type(),
                &DataType::BinaryView,
                "{bad:?} stays bytes"
            );
        }
    }
}
