//! The worker's side: `plugboard __worker --plugin PATH …`, started by the host (see
//! [`super::worker`]) with a socket as its standard input.
//!
//! It loads the library with the same loader and checks as the host would, says hello
//! with the manifest (or why the library did not load), then serves each lane the host
//! sends it on a thread of its own until the host closes the control lane. It exits when
//! the host does: the control lane's end, and the parent-death signal, both say so.
//!
//! A worker holds only what the host sends it: the connect requests of the connections
//! it serves (each its own section), and their reads.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use polars_arrow::datatypes::ArrowSchema;
use polars_arrow::io::ipc::write::{StreamWriter, WriteOptions};
use polars_arrow::record_batch::RecordBatchT;

use super::wire::{self, END, IPC, Reply, Request, WireError};
use crate::sys::loader::{self, ForeignConnection, LoadedPlugin};

/// The hidden command that starts a worker.
pub const WORKER_COMMAND: &str = "__worker";
/// The log filter a worker runs with, set by the host from its own.
pub(crate) const LOG_ENV: &str = "PLUGBOARD_WORKER_LOG";
/// Stack size of the threads that run plugin calls: a main thread's, not a spawned one's.
const LANE_STACK: usize = 8 << 20;

struct Args {
    plugin: PathBuf,
    sha256: Option<String>,
    memory_limit: Option<u64>,
    parent: Option<u32>,
}

fn args(mut argv: impl Iterator<Item = std::ffi::OsString>) -> Result<Args, String> {
    let mut args = Args {
        plugin: PathBuf::new(),
        sha256: None,
        memory_limit: None,
        parent: None,
    };
    while let Some(flag) = argv.next() {
        let mut value = || {
            argv.next()
                .ok_or_else(|| format!("{} needs a value", flag.to_string_lossy()))
        };
        match flag.to_str() {
            Some("--plugin") => args.plugin = value()?.into(),
            Some("--sha256") => args.sha256 = Some(value()?.to_string_lossy().into_owned()),
            Some("--memory-limit") => {
                let v = value()?;
                args.memory_limit = Some(
                    v.to_str()
                        .and_then(|s| s.parse().ok())
                        .ok_or("--memory-limit takes a number of bytes")?,
                );
            }
            Some("--parent") => {
                let v = value()?;
                args.parent = v.to_str().and_then(|s| s.parse().ok());
            }
            _ => return Err(format!("unknown argument {}", flag.to_string_lossy())),
        }
    }
    if args.plugin.as_os_str().is_empty() {
        return Err("--plugin is required".to_owned());
    }
    Ok(args)
}

/// The worker's `main`: `argv` is what follows [`WORKER_COMMAND`].
pub fn main(argv: impl Iterator<Item = std::ffi::OsString>) -> ExitCode {
    let args = match args(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("plugboard worker: {e} (this command is started by the host, not by hand)");
            return ExitCode::FAILURE;
        }
    };
    // Die with the host, however it ends; and if it already ended, do not start.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if let Some(parent) = args.parent
        && rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(parent)
    {
        return ExitCode::FAILURE;
    }
    init_logging();
    let control = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => UnixStream::from(fd),
        Err(e) => {
            eprintln!("plugboard worker: no control lane: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(limit) = args.memory_limit {
        let rlimit = rustix::process::Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        };
        if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Data, rlimit) {
            let reason = format!("cannot set its memory limit: {e}");
            let _ = wire::write_msg(&mut &control, &Reply::LoadFailed { reason });
            return ExitCode::FAILURE;
        }
    }
    let plugin = match loader::load_pinned(&args.plugin, args.sha256.as_deref()) {
        Ok(p) => p,
        Err(reason) => {
            let _ = wire::write_msg(&mut &control, &Reply::LoadFailed { reason });
            return ExitCode::FAILURE;
        }
    };
    let hello = Reply::Hello {
        manifest: plugin.manifest.clone(),
        api: (&plugin.api).into(),
        pid: std::process::id(),
    };
    if wire::write_msg(&mut &control, &hello).is_err() {
        return ExitCode::FAILURE;
    }
    let state = Arc::new(State {
        plugin,
        connections: Mutex::new(HashMap::new()),
        next: AtomicU64::new(1),
    });
    // The control lane: new lanes, until the host closes it.
    loop {
        match wire::recv_control(&control) {
            Ok(Some((Request::Lane, fds))) => {
                for fd in fds {
                    let state = Arc::clone(&state);
                    let lane = UnixStream::from(fd);
                    let spawned = std::thread::Builder::new()
                        .name("lane".to_owned())
                        .stack_size(LANE_STACK)
                        .spawn(move || serve_lane(lane, &state));
                    if let Err(e) = spawned {
                        tracing::error!("cannot start a thread for a lane: {e}");
                    }
                }
            }
            Ok(Some(other)) => {
                tracing::error!("unexpected message on the control lane: {other:?}");
                return ExitCode::FAILURE;
            }
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("the control lane failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}

/// Log records go to standard error, one a line, `LEVEL target: message`: the host reads
/// them and logs them as its own.
fn init_logging() {
    let filter = std::env::var(LOG_ENV).unwrap_or_else(|_| "warn".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .try_init();
}

struct State {
    plugin: LoadedPlugin,
    connections: Mutex<HashMap<u64, Arc<ForeignConnection>>>,
    next: AtomicU64,
}

impl State {
    fn connection(&self, id: u64) -> Result<Arc<ForeignConnection>, WireError> {
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
            .ok_or_else(|| WireError {
                kind: plugboard_api::ErrorKind::INTERNAL.0,
                retryable: true,
                message: format!("no connection {id} in this worker"),
            })
    }
}

/// Serves one lane's calls, one at a time, until the host closes it.
fn serve_lane(mut lane: UnixStream, state: &State) {
    loop {
        let request: Request = match wire::read_msg(&mut lane) {
            Ok(r) => r,
            Err(_) => return,
        };
        if serve(&mut lane, state, request).is_err() {
            // The host went away mid-answer (a stream it dropped): this lane is done.
            return;
        }
    }
}

fn failed(e: &plugboard_api::PluginError) -> Reply {
    Reply::Failed { error: e.into() }
}

fn serve(lane: &mut UnixStream, state: &State, request: Request) -> std::io::Result<()> {
    let reply = match request {
        Request::Lane => Reply::Failed {
            error: WireError {
                kind: plugboard_api::ErrorKind::INTERNAL.0,
                retryable: false,
                message: "a lane is sent on the control lane".to_owned(),
            },
        },
        Request::Connect { request } => {
            register_secrets(state, &request);
            match state.plugin.connect(&request) {
                Ok(conn) => {
                    let id = state.next.fetch_add(1, Ordering::Relaxed);
                    let target = conn.target();
                    state
                        .connections
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id, Arc::new(conn));
                    Reply::Connected { conn: id, target }
                }
                Err(e) => failed(&e),
            }
        }
        Request::Read { conn, request } => {
            return match state.connection(conn) {
                Ok(c) => send_table(lane, &c, &request),
                Err(error) => wire::write_msg(lane, &Reply::Failed { error }),
            };
        }
        Request::Execute { conn, request } => match state.connection(conn) {
            Ok(c) => match c.execute(&request) {
                Ok(affected) => Reply::Rows { affected },
                Err(e) => failed(&e),
            },
            Err(error) => Reply::Failed { error },
        },
        Request::Ping { conn } => match state.connection(conn) {
            Ok(c) => match c.ping() {
                Ok(()) => Reply::Done,
                Err(e) => failed(&e),
            },
            Err(error) => Reply::Failed { error },
        },
        Request::Cancel { conn } => match state.connection(conn) {
            Ok(c) => match c.cancel() {
                Ok(()) => Reply::Done,
                Err(e) => failed(&e),
            },
            Err(error) => Reply::Failed { error },
        },
        Request::Close { conn } => {
            let c = state
                .connections
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&conn);
            if let Some(c) = c {
                c.close();
            }
            Reply::Done
        }
    };
    wire::write_msg(lane, &reply)
}

/// The plugin's own log records are redacted with the secrets of the sections it was
/// handed, here as in the host.
fn register_secrets(state: &State, request: &str) {
    let Ok(request) = serde_json::from_str::<plugboard_api::ConnectRequest>(request) else {
        return;
    };
    let Ok(table) =
        serde_json::from_value::<toml::Table>(serde_json::Value::Object(request.config))
    else {
        return;
    };
    let redactor = crate::config::schema::redactor(&state.plugin.manifest, &table);
    crate::config::secrets::register_plugin_secrets(&state.plugin.manifest.name, &redactor);
}

/// A table as Arrow IPC: `Table`, the schema, each batch as the plugin produced it, and
/// `END` (or `Failed`, for an error midway). Each batch is written before the next is
/// asked for, so the socket's buffer bounds what is in flight.
fn send_table(
    lane: &mut UnixStream,
    conn: &ForeignConnection,
    request: &plugboard_api::ReadRequest,
) -> std::io::Result<()> {
    let mut batches = match conn.stream(request) {
        Ok(b) => b,
        Err(e) => return wire::write_msg(lane, &failed(&e)),
    };
    let schema: Arc<ArrowSchema> = Arc::new(
        batches
            .fields()
            .iter()
            .map(|f| (f.name.clone(), f.clone()))
            .collect(),
    );
    let buf = Frame::default();
    let mut writer = StreamWriter::new(buf.clone(), WriteOptions { compression: None });
    if let Err(e) = writer.start(&schema, None) {
        let e = plugboard_api::PluginError::internal(format!("cannot encode the schema: {e}"));
        return wire::write_msg(lane, &failed(&e));
    }
    wire::write_msg(lane, &Reply::Table)?;
    buf.send(lane)?;
    loop {
        match batches.next_arrays() {
            Ok(Some((height, arrays))) => {
                let encoded = RecordBatchT::try_new(height, Arc::clone(&schema), arrays)
                    .and_then(|batch| writer.write(&batch, None));
                if let Err(e) = encoded {
                    let e =
                        plugboard_api::PluginError::internal(format!("cannot encode a batch: {e}"));
                    return wire::write_msg(lane, &failed(&e));
                }
                buf.send(lane)?;
            }
            Ok(None) => return wire::write_frame(lane, END, &[]),
            Err(e) => return wire::write_msg(lane, &failed(&e)),
        }
    }
}

/// Where the IPC writer puts one message at a time, to be sent as one frame.
#[derive(Clone, Default)]
struct Frame(Arc<Mutex<Vec<u8>>>);

impl Frame {
    /// Sends what was written as one frame, and keeps the buffer for the next batch (a
    /// fresh one a batch cost a large allocation, and its page faults, every time).
    fn send(&self, lane: &mut UnixStream) -> std::io::Result<()> {
        let mut bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let sent = wire::write_frame(lane, IPC, &bytes);
        bytes.clear();
        sent
    }
}

impl Write for Frame {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
