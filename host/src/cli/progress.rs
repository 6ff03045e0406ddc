//! Progress on standard error for reads that take a while: a spinner until the first
//! batch, then rows, bytes, rows per second and the time so far, on one line redrawn in
//! place and wiped when the read ends. Only on a terminal (see [`Progress::wanted`]).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use polars::prelude::DataFrame;

/// Nothing shows for reads quicker than this.
const DELAY: Duration = Duration::from_secs(1);
/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(100);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// A read's progress line; dropping it (or [`Progress::finish`]) wipes the line.
pub(super) struct Progress {
    shared: Arc<Shared>,
    ticker: Option<JoinHandle<()>>,
}

struct Shared {
    label: String,
    started: Instant,
    rows: AtomicU64,
    bytes: AtomicU64,
    done: Mutex<bool>,
    wake: Condvar,
}

impl Progress {
    /// Whether to show progress: standard error is a terminal, nothing asked for quiet or
    /// logs (which would break the line), and the result is not also being printed to
    /// that terminal as it streams.
    pub(super) fn wanted(quiet: bool, verbose: u8, streams_to_terminal: bool) -> bool {
        use std::io::IsTerminal;
        !quiet && verbose == 0 && !streams_to_terminal && std::io::stderr().is_terminal()
    }

    /// Starts timing `label` (`reading "chinook"`); draws only if `show` and only once
    /// [`DELAY`] has passed.
    pub(super) fn start(label: String, show: bool) -> Self {
        let shared = Arc::new(Shared {
            label,
            started: Instant::now(),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            done: Mutex::new(false),
            wake: Condvar::new(),
        });
        let ticker = show
            .then(|| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("plugboard-progress".to_owned())
                    .spawn(move || tick(&shared))
                    .ok()
            })
            .flatten();
        Self { shared, ticker }
    }

    /// Counts a batch that arrived.
    pub(super) fn batch(&self, df: &DataFrame) {
        self.shared
            .rows
            .fetch_add(df.height() as u64, Ordering::Relaxed);
        self.shared
            .bytes
            .fetch_add(df.estimated_size() as u64, Ordering::Relaxed);
    }

    /// Since the read started.
    pub(super) fn elapsed(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// Stops the line and wipes it; what prints next starts on a clean line.
    pub(super) fn finish(self) {
        drop(self);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        *self
            .shared
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

fn tick(shared: &Shared) {
    let mut drawn = false;
    let mut frame = 0usize;
    let mut done = shared.done.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let wait = if drawn {
            TICK
        } else {
            DELAY.saturating_sub(shared.started.elapsed())
        };
        if !*done {
            done = shared
                .wake
                .wait_timeout(done, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let mut err = std::io::stderr().lock();
        if *done {
            if drawn {
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            }
            return;
        }
        if shared.started.elapsed() < DELAY {
            continue;
        }
        let line = line(
            &shared.label,
            SPINNER[frame % SPINNER.len()],
            shared.rows.load(Ordering::Relaxed),
            shared.bytes.load(Ordering::Relaxed),
            shared.started.elapsed(),
        );
        frame += 1;
        drawn = true;
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }
}

/// The line: `⠙ reading "chinook" · 1.2 s` before the first batch, then
/// `⠙ reading "chinook" · 1,048,576 rows · 24.0 MiB · 512,000 rows/s · 2.0 s`.
fn line(label: &str, spin: char, rows: u64, bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if rows == 0 {
        return format!("{spin} {label} · {secs:.1} s");
    }
    let rate = (rows as f64 / secs.max(1e-3)) as u64;
    format!(
        "{spin} {label} · {} rows · {} · {} rows/s · {secs:.1} s",
        thousands(rows),
        crate::disk::show_bytes(bytes),
        thousands(rate)
    )
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_before_and_after_the_first_batch() {
        assert_eq!(
            line("reading \"pg\"", '⠋', 0, 0, Duration::from_millis(1250)),
            "⠋ reading \"pg\" · 1.2 s"
        );
        assert_eq!(
            line(
                "reading \"pg\"",
                '⠙',
                1_048_576,
                24 << 20,
                Duration::from_secs(2)
            ),
            "⠙ reading \"pg\" · 1,048,576 rows · 24.0 MiB · 524,288 rows/s · 2.0 s"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }

    #[test]
    fn a_quick_read_draws_nothing_and_a_finish_returns_at_once() {
        let p = Progress::start("reading".to_owned(), true);
        let since = Instant::now();
        p.finish();
        assert!(since.elapsed() < DELAY, "finish waited for the ticker");
    }
}
