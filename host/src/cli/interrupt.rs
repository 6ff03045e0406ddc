//! Ctrl-C: the CLI stops at once with exit code 130, leaving no temporary file beside
//! `--output` and no half-written file in its place.
//!
//! A thread waits for SIGINT (through `signal-hook`'s safe iterator, so no `unsafe`
//! here). Plugins run blocking calls on the main thread, which a signal cannot safely
//! unwind; so the waiting thread does the cleanup and ends the process itself. A
//! connection the process held closes with it: the source sees its client go. Plugins
//! in worker processes share the terminal's process group, so Ctrl-C stops them too.
//!
//! A closed connection does not stop every source: PostgreSQL runs a query on until it
//! next writes to the client, MySQL until it ends. So before exiting, the thread asks
//! the plugin of every connection the command opened to cancel what it runs
//! ([`crate::Connection::cancel`]), and waits a moment for that.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Whether Ctrl-C cancels a statement (the shell) instead of ending the process.
static CANCELS: AtomicBool = AtomicBool::new(false);
/// A Ctrl-C the shell has not yet acted on.
static CANCEL: AtomicBool = AtomicBool::new(false);

/// The connections the command opened, to cancel on Ctrl-C.
static OPEN: Mutex<Vec<crate::Connection>> = Mutex::new(Vec::new());
/// How long the exit waits for the cancels (a cancel is a round trip to the source).
const CANCEL_PATIENCE: Duration = Duration::from_secs(2);

/// Ctrl-C cancels what `conn` runs before the process ends.
pub(super) fn cancel_on_interrupt(conn: &crate::Connection) {
    OPEN.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(conn.clone());
}

/// Asks every registered connection's plugin to cancel, waiting [`CANCEL_PATIENCE`] at
/// most: on another thread, since a cancel may block on its source.
fn cancel_open() {
    let open = std::mem::take(&mut *OPEN.lock().unwrap_or_else(PoisonError::into_inner));
    if open.is_empty() {
        return;
    }
    let (done, wait) = std::sync::mpsc::channel();
    let started = std::thread::Builder::new()
        .name("plugboard-cancel".to_owned())
        .spawn(move || {
            for conn in &open {
                if let Err(e) = conn.cancel() {
                    tracing::debug!(error = %e, "cancel on Ctrl-C failed");
                }
            }
            let _ = done.send(());
        });
    if started.is_ok() {
        let _ = wait.recv_timeout(CANCEL_PATIENCE);
    }
}

/// In the shell, Ctrl-C only asks to cancel the running statement ([`take_cancel`]);
/// outside it, it ends the process.
pub(super) fn cancel_instead_of_exit(on: bool) {
    CANCELS.store(on, Ordering::SeqCst);
}

/// Whether Ctrl-C was pressed since the last call.
pub(super) fn take_cancel() -> bool {
    CANCEL.swap(false, Ordering::SeqCst)
}

/// Starts the thread that turns SIGINT into a clean exit with code 130. If the signal
/// cannot be hooked, Ctrl-C keeps its default (the process ends, without the cleanup).
pub(super) fn install() {
    use signal_hook::consts::SIGINT;
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT]) else {
        return;
    };
    let started = std::thread::Builder::new()
        .name("plugboard-sigint".to_owned())
        .spawn(move || {
            for _ in signals.forever() {
                if CANCELS.load(Ordering::SeqCst) {
                    CANCEL.store(true, Ordering::SeqCst);
                    continue;
                }
                INTERRUPTED.store(true, Ordering::SeqCst);
                crate::export::remove_unfinished();
                cancel_open();
                // Over a progress line, if one is showing.
                let wipe = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                    "\r\x1b[2K"
                } else {
                    ""
                };
                eprintln!("{wipe}interrupted");
                std::process::exit(i32::from(super::exit::INTERRUPTED));
            }
        });
    if started.is_err() {
        tracing::debug!("cannot start the thread that handles Ctrl-C");
    }
}

/// Whether `e` is a plugin worker that SIGINT (Ctrl-C at the terminal they share) stopped.
pub(super) fn stopped_by_sigint(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::Error>(),
            Some(crate::Error::Worker { failure, .. }) if failure.contains("SIGINT")
        )
    })
}

/// Called before reporting an error: if Ctrl-C caused it (a worker it stopped, a pipe
/// it closed), the interrupt's exit is the one to happen, not an error line. Waits a
/// moment for the signal to arrive when `e` looks like its effect.
pub(super) fn wait_if_interrupted(e: &anyhow::Error) {
    let by_sigint = stopped_by_sigint(e);
    let patience = if by_sigint {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    let since = std::time::Instant::now();
    loop {
        if INTERRUPTED.load(Ordering::SeqCst) {
            // The handler thread is exiting the process.
            loop {
                std::thread::park();
            }
        }
        if since.elapsed() >= patience {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
