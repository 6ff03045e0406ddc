//! PostgreSQL's binary COPY format, decoded as it arrives: the 19-byte header (and its
//! extension area), then per row a 16-bit field count and each field as a 32-bit length
//! (-1 for NULL) and its bytes, then the trailer, a count of -1.
//!
//! The server sends a row per CopyData message, so a row is nearly always whole in one
//! message and its values are read straight from it; a row split across messages (another
//! server, a proxy) is put together in a buffer of its own first.

use plugboard_api::PluginError;

use crate::Batcher;

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
const HEADER: usize = 19;

#[derive(Debug, PartialEq, Eq)]
enum State {
    Header,
    Rows,
    /// The trailer was read.
    Done,
}

/// Decodes one COPY stream into a [`Batcher`]'s builders.
pub(crate) struct Decoder {
    state: State,
    /// The start of a row (or header) that the last message ended inside.
    carry: Vec<u8>,
}

fn malformed(what: &str) -> PluginError {
    PluginError::internal(format!("unexpected COPY data: {what}"))
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

impl Decoder {
    pub(crate) fn new() -> Self {
        Self {
            state: State::Header,
            carry: Vec::new(),
        }
    }

    /// Decodes the rows that `chunk` completes, keeping the rest for the next one.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        batcher: &mut Batcher<'_>,
    ) -> Result<(), PluginError> {
        if self.carry.is_empty() {
            let used = self.decode(chunk, batcher)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            let mut carry = std::mem::take(&mut self.carry);
            carry.extend_from_slice(chunk);
            let used = self.decode(&carry, batcher)?;
            carry.drain(..used);
            self.carry = carry;
        }
        Ok(())
    }

    /// The stream ended: it must have ended with its trailer.
    pub(crate) fn finish(&self) -> Result<(), PluginError> {
        match self.state {
            State::Done => Ok(()),
            State::Header => Err(malformed("the stream ended inside its header")),
            State::Rows => Err(malformed("the stream ended without its trailer")),
        }
    }

    /// Decodes every whole row at the start of `buf`; returns the bytes used.
    fn decode(&mut self, buf: &[u8], batcher: &mut Batcher<'_>) -> Result<usize, PluginError> {
        let mut at = 0;
        if self.state == State::Header {
            if buf.len() < HEADER {
                return Ok(0);
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err(malformed("bad signature"));
            }
            let extension = u32::from_be_bytes([buf[15], buf[16], buf[17], buf[18]]) as usize;
            let Some(end) = HEADER.checked_add(extension).filter(|&e| e <= buf.len()) else {
                return Ok(0);
            };
            at = end;
            self.state = State::Rows;
        }
        while self.state == State::Rows {
            let Some(count) = buf.get(at..at + 2) else {
                break;
            };
            let count = i16::from_be_bytes([count[0], count[1]]);
            if count == -1 {
                self.state = State::Done;
                at += 2;
                break;
            }
            if usize::try_from(count).ok() != Some(batcher.columns.len()) {
                return Err(malformed("a row with the wrong number of fields"));
            }
            // The row's end, if it is all here; its values are pushed only then.
            let mut end = at + 2;
            for _ in 0..batcher.columns.len() {
                if buf.len() < end + 4 {
                    return Ok(at);
                }
                let len = be_i32(buf, end);
                end += 4;
                if len > 0 {
                    end += len as usize;
                }
            }
            if end > buf.len() {
                return Ok(at);
            }
            let mut field = at + 2;
            for column in &mut batcher.columns {
                let len = be_i32(buf, field);
                field += 4;
                let value = if len < 0 {
                    None
                } else {
                    let value = &buf[field..field + len as usize];
                    field += len as usize;
                    Some(value)
                };
                column.push(value).map_err(PluginError::internal)?;
            }
            at = end;
            batcher.row_done()?;
        }
        if self.state == State::Done {
            // What follows the trailer (nothing, from a server) is not rows.
            return Ok(buf.len());
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use plugboard_api::arrow_array::{Array as _, Int64Array, RecordBatch, StringViewArray};
    use plugboard_api::arrow_schema::{DataType, Field, Schema};
    use tokio_postgres::types::Type;

    use super::*;
    use crate::types::{ColumnBuilder, column_kind};

    /// A COPY stream of `(id int8, name text)` rows, with a header extension.
    fn stream(rows: &[(i64, Option<&str>)]) -> Vec<u8> {
        let mut s = SIGNATURE.to_vec();
        s.extend(0u32.to_be_bytes()); // flags
        s.extend(3u32.to_be_bytes()); // extension length
        s.extend(b"ext");
        for (id, name) in rows {
            s.extend(2i16.to_be_bytes());
            s.extend(8i32.to_be_bytes());
            s.extend(id.to_be_bytes());
            match name {
                Some(n) => {
                    s.extend((n.len() as i32).to_be_bytes());
                    s.extend(n.as_bytes());
                }
                None => s.extend((-1i32).to_be_bytes()),
            }
        }
        s.extend((-1i16).to_be_bytes());
        s
    }

    /// Decodes `chunks` in batches of 2 rows.
    fn decode(chunks: &[&[u8]]) -> Result<Vec<RecordBatch>, PluginError> {
        let columns = || {
            vec![
                ColumnBuilder::new("id", column_kind("id", &Type::INT8).unwrap(), 2),
                ColumnBuilder::new("name", column_kind("name", &Type::TEXT).unwrap(), 2),
            ]
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8View, true),
        ]));
        let mut batches = Vec::new();
        let mut emit = |b| {
            batches.push(b);
            Ok(())
        };
        let mut batcher = Batcher {
            schema,
            fixed: false,
            columns: columns(),
            fresh: &columns,
            size: 2,
            rows: 0,
            read: 0,
            emit: &mut emit,
        };
        let mut decoder = Decoder::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut batcher)?;
        }
        decoder.finish()?;
        batcher.flush()?;
        drop(batcher);
        Ok(batches)
    }

    fn rows(batches: &[RecordBatch]) -> Vec<(i64, Option<String>)> {
        batches
            .iter()
            .flat_map(|b| {
                let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                let names = b
                    .column(1)
                    .as_any()
                    .downcast_ref::<StringViewArray>()
                    .unwrap();
                (0..b.num_rows())
                    .map(|i| {
                        let name = (!names.is_null(i)).then(|| names.value(i).to_owned());
                        (ids.value(i), name)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    const ROWS: [(i64, Option<&str>); 3] = [(1, Some("ünï")), (-2, None), (3, Some(""))];

    fn expected() -> Vec<(i64, Option<String>)> {
        ROWS.iter()
            .map(|(i, n)| (*i, n.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn a_whole_stream_decodes_in_batches() {
        let batches = decode(&[&stream(&ROWS)]).unwrap();
        assert_eq!(
            batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(rows(&batches), expected());
    }

    #[test]
    fn rows_split_anywhere_across_messages_decode_the_same() {
        let s = stream(&ROWS);
        for cut in 0..=s.len() {
            let batches = decode(&[&s[..cut], &s[cut..]]).unwrap();
            assert_eq!(rows(&batches), expected(), "cut at {cut}");
        }
        // And a byte per message.
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(rows(&decode(&bytes).unwrap()), expected());
    }

    #[test]
    fn a_stream_cut_short_or_malformed_is_an_error() {
        let s = stream(&ROWS);
        for cut in [0, 5, HEADER + 3, HEADER + 10, s.len() - 1] {
            let e = decode(&[&s[..cut]]).unwrap_err();
            assert!(
                e.message().contains("the stream ended"),
                "cut at {cut}: {e:?}"
            );
        }
        let mut bad = s.clone();
        bad[0] = b'X';
        assert!(
            decode(&[&bad])
                .unwrap_err()
                .message()
                .contains("bad signature")
        );
        let mut three = s;
        three[HEADER + 3 + 1] = 3; // the first row's field count
        let e = decode(&[&three]).unwrap_err();
        assert!(e.message().contains("wrong number of fields"), "{e:?}");
    }
}
