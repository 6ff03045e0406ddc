//! Producing a table on a thread of its own, batch by batch.
//!
//! A driver's cursor usually borrows its connection, so a reader that steps rows lazily
//! would have to own both: awkward in safe Rust. [`spawn`] runs the reading code on a
//! thread instead, handing batches through a bounded channel: the read returns as soon as
//! the schema is known, the host consumes batch *n* while batch *n + 1* is being read, and
//! at most `depth` batches wait in between, so memory stays flat however many rows come.
//!
//! Use it when [`ReadRequest::stream`](crate::ReadRequest::stream) is set:
//!
//! ```
//! use std::sync::Arc;
//! use plugboard_api::arrow_array::{Int64Array, RecordBatch, RecordBatchReader};
//! use plugboard_api::arrow_schema::{DataType, Field, Schema};
//! use plugboard_api::stream;
//!
//! let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
//! let reader = stream::spawn(2, {
//!     let schema = Arc::clone(&schema);
//!     move |sink| {
//!         sink.schema(Arc::clone(&schema))?;
//!         for start in (0..10_i64).step_by(4) {
//!             let x = Int64Array::from_iter_values(start..(start + 4).min(10));
//!             sink.send(RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(x)])?)?;
//!         }
//!         Ok(())
//!     }
//! })?;
//! assert_eq!(reader.schema(), schema);
//! let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
//! assert_eq!(rows, 10);
//! # Ok::<(), plugboard_api::PluginError>(())
//! ```
//!
//! When the host stops reading (it failed to write, or was interrupted) the next
//! [`Sink::send`] returns [`Stopped`], and `?` ends the producer early. A panic on the
//! thread reaches the host as an error of kind `panic`, like any other in a plugin.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};

use crate::PluginError;

enum Message {
    Schema(SchemaRef),
    Batch(RecordBatch),
    Error(PluginError),
}

/// The producer's end: where batches go.
pub struct Sink {
    tx: SyncSender<Message>,
    schema: Option<SchemaRef>,
}

/// The host stopped reading; the producer should return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl From<Stopped> for PluginError {
    fn from(_: Stopped) -> Self {
        PluginError::internal("the host stopped reading the stream")
    }
}

impl Sink {
    /// Fixes the stream's schema. Needed only before the first batch when there may be
    /// none; otherwise the first batch's schema is the stream's.
    pub fn schema(&mut self, schema: SchemaRef) -> Result<(), Stopped> {
        if self.schema.is_none() {
            self.schema = Some(schema.clone());
            self.tx.send(Message::Schema(schema)).map_err(|_| Stopped)?;
        }
        Ok(())
    }

    /// Hands a batch over, waiting while `depth` batches are still unread.
    pub fn send(&mut self, batch: RecordBatch) -> Result<(), Stopped> {
        self.schema(batch.schema())?;
        self.tx.send(Message::Batch(batch)).map_err(|_| Stopped)
    }

    /// Whether a schema (or a batch) was sent yet.
    pub fn started(&self) -> bool {
        self.schema.is_some()
    }
}

/// Runs `produce` on a new thread and returns a reader of what it sends, once the schema
/// is known. An error before the schema is this call's error (so it can be retried like
/// any failed read); an error after it ends the stream with that error.
pub fn spawn<F>(depth: usize, produce: F) -> Result<ThreadReader, PluginError>
where
    F: FnOnce(&mut Sink) -> Result<(), PluginError> + Send + 'static,
{
    let (tx, rx) = sync_channel(depth.max(1));
    std::thread::Builder::new()
        .name("plugboard-stream".into())
        .spawn(move || {
            let mut sink = Sink { tx, schema: None };
            let result =
                catch_unwind(AssertUnwindSafe(|| produce(&mut sink))).unwrap_or_else(|payload| {
                    Err(crate::ffi::panic_error("reading a batch", &*payload))
                });
            let outcome = match result {
                Ok(()) if sink.started() => return,
                Ok(()) => PluginError::internal("the reader ended without a schema"),
                Err(e) => e,
            };
            // Nobody may be listening any more: nothing to do then.
            let _ = sink.tx.send(Message::Error(outcome));
        })
        .map_err(|e| PluginError::internal(format!("cannot start a reader thread: {e}")))?;
    match rx.recv() {
        Ok(Message::Schema(schema)) => Ok(ThreadReader {
            schema,
            rx: Some(rx),
        }),
        Ok(Message::Error(e)) => Err(e),
        Ok(Message::Batch(_)) | Err(_) => Err(PluginError::internal(
            "the reader thread ended before its schema",
        )),
    }
}

/// The host's end of [`spawn`]: a [`RecordBatchReader`].
pub struct ThreadReader {
    schema: SchemaRef,
    /// `None` once the stream ended (the producer finished, failed or is gone).
    rx: Option<Receiver<Message>>,
}

impl Iterator for ThreadReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = match self.rx.as_ref()?.recv() {
            Ok(Message::Batch(b)) => return Some(Ok(b)),
            Ok(Message::Schema(_)) => Some(Err(ArrowError::SchemaError(
                "the reader sent a second schema".into(),
            ))),
            Ok(Message::Error(e)) => Some(Err(ArrowError::ExternalError(Box::new(e)))),
            Err(_) => None,
        };
        // After an error or the end, the channel is done: dropping it stops the producer.
        self.rx = None;
        item
    }
}

impl RecordBatchReader for ThreadReader {
    fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn batch(schema: &SchemaRef, start: i64) -> RecordBatch {
        let x = Int64Array::from_iter_values(start..start + 3);
        RecordBatch::try_new(Arc::clone(schema), vec![Arc::new(x)]).expect("batch")
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]))
    }

    #[test]
    fn an_error_before_the_schema_is_the_reads_error_and_after_it_ends_the_stream() {
        let early = spawn(1, |_| Err(PluginError::query("no such table: t")));
        assert_eq!(
            early.err().map(|e| e.to_string()),
            Some("query error: no such table: t".to_owned())
        );

        let s = schema();
        let mut reader = spawn(1, move |sink| {
            sink.send(batch(&s, 0))?;
            Err(PluginError::query("row 4: not an integer"))
        })
        .expect("reader");
        assert_eq!(reader.next().expect("first").expect("ok").num_rows(), 3);
        let e = reader.next().expect("error").expect_err("an error");
        assert!(e.to_string().contains("query error: row 4"), "{e}");
        assert!(reader.next().is_none(), "the stream is over after an error");
    }

    #[test]
    fn a_panic_is_an_error_of_kind_panic() {
        let s = schema();
        let mut reader = spawn(1, move |sink| {
            sink.send(batch(&s, 0))?;
            panic!("boom");
        })
        .expect("reader");
        assert!(reader.next().expect("first").is_ok());
        let e = reader.next().expect("error").expect_err("an error");
        assert!(
            e.to_string()
                .contains("plugin panicked during reading a batch: boom"),
            "{e}"
        );
        assert!(
            spawn(1, |_| panic!("early")).is_err(),
            "a panic before the schema fails the read"
        );
    }

    #[test]
    fn the_producer_runs_at_most_depth_ahead_and_stops_when_the_reader_is_dropped() {
        let sent = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let s = schema();
        let mut reader = spawn(2, {
            let sent = Arc::clone(&sent);
            move |sink| {
                let result = (0..1_000).try_for_each(|i| {
                    sink.send(batch(&s, i * 3))?;
                    sent.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), Stopped>(())
                });
                done_tx.send(result).expect("report");
                Ok(())
            }
        })
        .expect("reader");
        assert!(reader.next().is_some());
        std::thread::sleep(std::time::Duration::from_millis(100));
        // One taken, two waiting in the channel, and the producer blocked on the next.
        assert!(sent.load(Ordering::SeqCst) <= 4, "{sent:?}");
        drop(reader);
        let result = done_rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the producer returned");
        assert_eq!(result, Err(Stopped));
        assert!(sent.load(Ordering::SeqCst) < 10);
    }

    #[test]
    fn an_empty_stream_needs_its_schema() {
        let s = schema();
        let mut reader = spawn(1, move |sink| Ok(sink.schema(s)?)).expect("reader");
        assert_eq!(reader.schema().fields().len(), 1);
        assert!(reader.next().is_none());
        assert!(spawn(1, |_| Ok(())).is_err());
    }
}
