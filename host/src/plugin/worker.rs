//! The host's side of an isolated plugin: its worker process, started, watched, stopped
//! and replaced.
//!
//! A [`Worker`] is one plugin's: it keeps one process (see [`super::serve`]) that serves
//! every connection of that plugin, over lanes (see [`super::wire`]). When the process
//! dies (a signal, an abort, `exit`), the calls in flight fail with what happened, the
//! connections it served are stale, and the next call starts a fresh process, unless the
//! plugin keeps crashing: then starts back off (see [`backoff`]). A call that goes
//! unanswered for the plugin's `read_timeout` stops the process.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use plugboard_api::{ApiRelease, ErrorKind, ExecuteRequest, Manifest, PluginError, ReadRequest};
use polars_arrow::datatypes::Field;
use polars_arrow::io::ipc::read::{StreamReader, StreamState, read_stream_metadata};

use super::wire::{self, END, IPC, MSG, Reply, Request, WireError};
use super::{Batches, PluginConnection};
use crate::config::plugins::Settings;
use crate::sys::loader::Batch;

/// Error kinds from here up are the host's own, for a worker that failed; a worker's
/// errors never carry them (see [`WireError::into_error`]).
pub(crate) const HOST_KINDS: u8 = 0xF0;
/// The worker died or broke its channel; the message says how (`crashed (SIGSEGV)`).
pub(crate) const DIED: ErrorKind = ErrorKind(0xF0);
/// The worker did not answer in time and was stopped; the message says how long.
pub(crate) const TIMED_OUT: ErrorKind = ErrorKind(0xF1);

/// How long a worker may take to load its library and say hello, unless `read_timeout`
/// is longer.
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest wait before another start after repeated crashes.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a worker's last line on standard error stays its last words.
const LAST_WORDS: Duration = Duration::from_secs(2);

/// The environment variable naming the program to run workers with.
pub const WORKER_ENV: &str = "PLUGBOARD_WORKER";

/// The program that runs workers: `PLUGBOARD_WORKER`, else this executable when it is the
/// CLI, else a `plugboard` beside this executable or in its parent folder (as
/// `target/debug/plugboard` is for a test in `target/debug/deps`).
pub(crate) fn default_program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(WORKER_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    if crate::cli::is_running() {
        return Some(exe);
    }
    let name = format!("plugboard{}", std::env::consts::EXE_SUFFIX);
    let dir = exe.parent()?;
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
}

/// The limits of an isolated plugin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub read_timeout: Option<Duration>,
    pub memory_limit: Option<u64>,
}

impl From<&Settings> for Limits {
    fn from(s: &Settings) -> Self {
        Self {
            read_timeout: s.read_timeout,
            memory_limit: s.memory_limit,
        }
    }
}

/// One isolated plugin and its worker process.
pub(crate) struct Worker {
    path: PathBuf,
    pin: Option<String>,
    program: PathBuf,
    limits: Limits,
    manifest: Manifest,
    api: ApiRelease,
    /// The process serving calls now, if one runs.
    current: Mutex<Current>,
    /// Crashes since the last call that succeeded.
    crashes: AtomicU32,
}

#[derive(Default)]
struct Current {
    process: Option<Arc<Process>>,
    /// No new process before this, after repeated crashes; and how the last one ended.
    not_before: Option<(Instant, String)>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("path", &self.path)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts a worker for the library at `path` and waits for its hello: the manifest,
    /// or the one-line reason it did not load.
    pub(crate) fn start(
        path: &Path,
        pin: Option<&str>,
        limits: Limits,
        program: Option<&Path>,
    ) -> Result<Arc<Self>, String> {
        let program = program.map(Path::to_path_buf).or_else(default_program).ok_or_else(|| {
            format!(
                "isolation = \"process\" needs the plugboard program to run its worker, and none was found (set {WORKER_ENV})"
            )
        })?;
        let (process, manifest, api) =
            Process::spawn(&program, path, pin, &limits, None).map_err(|e| match e {
                Failure::Refused(reason) => reason,
                other => format!("its worker {} while loading the library", other.describe()),
            })?;
        Ok(Arc::new(Self {
            path: path.to_path_buf(),
            pin: pin.map(str::to_owned),
            program,
            limits,
            manifest,
            api,
            current: Mutex::new(Current {
                process: Some(Arc::new(process)),
                not_before: None,
            }),
            crashes: AtomicU32::new(0),
        }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    pub(crate) fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    pub(crate) fn api(&self) -> &ApiRelease {
        &self.api
    }
    fn lock(&self) -> MutexGuard<'_, Current> {
        lock(&self.current)
    }

    /// The live process, or a new one.
    fn process(&self) -> Result<Arc<Process>, PluginError> {
        let mut current = self.lock();
        if let Some(p) = &current.process {
            if !p.has_ended() {
                return Ok(Arc::clone(p));
            }
            let p = Arc::clone(p);
            drop(current);
            self.ended(&p, p.fate());
            current = self.lock();
        }
        if let Some((at, last)) = &current.not_before {
            let now = Instant::now();
            if now < *at {
                return Err(PluginError::new(
                    DIED,
                    format!(
                        "{last} {} times in a row; its next worker starts in {}",
                        self.crashes.load(Ordering::Relaxed),
                        crate::duration::show(*at - now)
                    ),
                ));
            }
        }
        let (process, manifest, _) = Process::spawn(
            &self.program,
            &self.path,
            self.pin.as_deref(),
            &self.limits,
            Some(&self.manifest.name),
        )
        .map_err(|e| {
            let e = e.to_error();
            self.count_crash(&mut current, e.message());
            e
        })?;
        if manifest.name != self.manifest.name {
            return Err(PluginError::new(
                DIED,
                format!(
                    "restarted as another plugin ({:?}): the library at {} changed",
                    manifest.name,
                    self.path.display()
                ),
            ));
        }
        let process = Arc::new(process);
        current.process = Some(Arc::clone(&process));
        Ok(process)
    }

    /// `process` ended (`how`): it serves no more calls, and counts as a crash.
    fn ended(&self, process: &Arc<Process>, how: &str) {
        let mut current = self.lock();
        if current
            .process
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, process))
        {
            current.process = None;
            self.count_crash(&mut current, how);
        }
    }

    fn count_crash(&self, current: &mut Current, how: &str) {
        let n = self.crashes.fetch_add(1, Ordering::Relaxed) + 1;
        let wait = backoff(n);
        current.not_before = (!wait.is_zero()).then(|| (Instant::now() + wait, how.to_owned()));
        // The call's error says it too; this is for a service's log.
        tracing::info!(plugin = %self.manifest.name, "the worker {how}");
    }

    fn succeeded(&self) {
        if self.crashes.load(Ordering::Relaxed) != 0 {
            self.crashes.store(0, Ordering::Relaxed);
            self.lock().not_before = None;
        }
    }

    /// Opens a connection in the worker.
    pub(crate) fn connect(
        self: &Arc<Self>,
        request: &str,
        timeout: Option<Duration>,
    ) -> Result<RemoteConnection, PluginError> {
        let timeout = match (timeout, self.limits.read_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let remote = Remote {
            worker: Arc::clone(self),
            process: self.process()?,
            timeout,
        };
        let call = remote.call();
        let request = Request::Connect {
            request: request.to_owned(),
        };
        match call.run(&request)? {
            Reply::Connected { conn, target } => Ok(RemoteConnection {
                remote: remote.clone(),
                conn,
                target,
            }),
            other => Err(call.protocol(&format!("answered a connect with {other:?}"))),
        }
    }
}

/// The wait before the next start after `crashes` crashes in a row: none after the first
/// (one crash restarts at once), then 250 ms, doubling, up to [`MAX_BACKOFF`].
fn backoff(crashes: u32) -> Duration {
    if crashes < 2 {
        return Duration::ZERO;
    }
    Duration::from_millis(250)
        .checked_mul(2u32.saturating_pow(crashes - 2))
        .map_or(MAX_BACKOFF, |d| d.min(MAX_BACKOFF))
}

/// How a call to a worker failed.
#[derive(Debug)]
enum Failure {
    /// The process ended: `crashed (SIGSEGV)`, `exited with status 3`.
    Ended(String),
    /// No answer within the timeout; the process was stopped.
    TimedOut(Duration),
    /// The library did not load (at start only).
    Refused(String),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Ended(how) => how.clone(),
            Failure::TimedOut(d) => {
                format!("did not answer within {}", crate::duration::show(*d))
            }
            Failure::Refused(reason) => reason.clone(),
        }
    }

    fn to_error(&self) -> PluginError {
        match self {
            Failure::TimedOut(_) => PluginError::new(TIMED_OUT, self.describe()),
            Failure::Ended(_) => PluginError::new(DIED, self.describe()),
            Failure::Refused(reason) => PluginError::new(DIED, format!("did not load: {reason}")),
        }
    }
}

/// One running worker process.
struct Process {
    pid: u32,
    child: Mutex<Child>,
    control: UnixStream,
    /// Lanes that finished their last call, ready for the next.
    idle: Mutex<Vec<UnixStream>>,
    /// How it ended, once it has.
    fate: OnceLock<String>,
    /// Why the host stopped it, when it did.
    stopped: Mutex<Option<String>>,
    /// Its standard error and output, read by a thread: the last lines that were not log
    /// records, and when they came.
    last_words: Arc<Mutex<VecDeque<(Instant, String)>>>,
    output: Mutex<Option<std::thread::JoinHandle<()>>>,
    memory_limit: Option<u64>,
}

impl Process {
    /// Starts `program __worker` for the library at `path`, and waits for its hello.
    fn spawn(
        program: &Path,
        path: &Path,
        pin: Option<&str>,
        limits: &Limits,
        name: Option<&str>,
    ) -> Result<(Self, Manifest, ApiRelease), Failure> {
        let (control, theirs) = UnixStream::pair()
            .map_err(|e| Failure::Refused(format!("cannot make a socket for its worker: {e}")))?;
        let (output, output_writer) = std::io::pipe()
            .map_err(|e| Failure::Refused(format!("cannot make a pipe for its worker: {e}")))?;
        let output_copy = output_writer
            .try_clone()
            .map_err(|e| Failure::Refused(format!("cannot make a pipe for its worker: {e}")))?;
        let mut cmd = Command::new(program);
        cmd.arg(super::serve::WORKER_COMMAND)
            .arg("--plugin")
            .arg(path)
            .arg("--parent")
            .arg(std::process::id().to_string());
        if let Some(pin) = pin {
            cmd.arg("--sha256").arg(pin);
        }
        if let Some(limit) = limits.memory_limit {
            cmd.arg("--memory-limit").arg(limit.to_string());
        }
        // The worker gets no secrets but its connections' sections: none of the host's
        // own settings, above all no `PLUGBOARD_CONNECTIONS__…` overrides (every
        // connection's) and no secrets file path.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PLUGBOARD_") {
                cmd.env_remove(key);
            }
        }
        cmd.env(super::serve::LOG_ENV, log_filter())
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(output_copy))
            .stderr(Stdio::from(output_writer));
        let child = cmd.spawn().map_err(|e| {
            Failure::Refused(format!(
                "cannot start its worker {}: {e}",
                program.display()
            ))
        })?;
        // Our copies of the child's ends are closed by `cmd`'s drop.
        drop(cmd);
        let pid = child.id();
        let last_words = Arc::new(Mutex::new(VecDeque::new()));
        // Its name, once it said hello (the library's path until then).
        let label = Arc::new(OnceLock::new());
        if let Some(name) = name {
            let _ = label.set(name.to_owned());
        }
        let reader = {
            let (last_words, label) = (Arc::clone(&last_words), Arc::clone(&label));
            let path = path.display().to_string();
            std::thread::Builder::new()
                .name("worker-output".to_owned())
                .spawn(move || relay_output(output, &label, &path, &last_words))
                .ok()
        };
        let process = Self {
            pid,
            child: Mutex::new(child),
            control,
            idle: Mutex::new(Vec::new()),
            fate: OnceLock::new(),
            stopped: Mutex::new(None),
            last_words,
            output: Mutex::new(reader),
            memory_limit: limits.memory_limit,
        };
        let wait = limits
            .read_timeout
            .map_or(HELLO_TIMEOUT, |t| t.max(HELLO_TIMEOUT));
        let hello = process
            .control
            .set_read_timeout(Some(wait))
            .and_then(|()| wire::read_msg::<Reply>(&mut &process.control));
        match hello {
            Ok(Reply::Hello { manifest, api, pid }) => {
                tracing::debug!(plugin = %manifest.name, pid, "worker started");
                let _ = label.set(manifest.name.clone());
                let _ = process.control.set_read_timeout(None);
                Ok((process, manifest, api.into()))
            }
            Ok(Reply::LoadFailed { reason }) => {
                process.stop("refused to load".to_owned());
                Err(Failure::Refused(reason))
            }
            Ok(other) => {
                process.stop(format!("said {other:?} instead of hello"));
                Err(Failure::Ended(format!("said {other:?} instead of hello")))
            }
            Err(e) if is_timeout(&e) => {
                process.stop("did not say hello in time".to_owned());
                Err(Failure::TimedOut(wait))
            }
            Err(_) => Err(Failure::Ended(process.ended().to_owned())),
        }
    }

    fn has_ended(&self) -> bool {
        if self.fate.get().is_some() {
            return true;
        }
        let exited = lock(&self.child)
            .try_wait()
            .map(|s| s.is_some())
            .unwrap_or(true);
        if exited {
            self.ended();
        }
        exited
    }

    fn fate(&self) -> &str {
        self.fate.get().map_or("ended", String::as_str)
    }

    /// Waits for the process to end (it closed its channel, so it is ending) and says how
    /// it did. A process that closed its channel and lives on is stopped.
    fn ended(&self) -> &str {
        if let Some(f) = self.fate.get() {
            return f;
        }
        let mut child = lock(&self.child);
        if let Some(f) = self.fate.get() {
            return f;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(None) => {
                    self.note_stop("closed its channel".to_owned());
                    let _ = child.kill();
                    break child.wait().ok();
                }
                Err(_) => break None,
            }
        };
        drop(child);
        // Its last words are complete once its output is.
        if let Some(reader) = lock(&self.output).take() {
            let _ = reader.join();
        }
        let how = self.describe(status);
        tracing::debug!(pid = self.pid, "worker {how}");
        self.fate.get_or_init(|| how)
    }

    fn describe(&self, status: Option<std::process::ExitStatus>) -> String {
        if let Some(why) = lock(&self.stopped).clone() {
            return format!("was stopped ({why})");
        }
        let cutoff = Instant::now() - LAST_WORDS;
        let words: Vec<String> = lock(&self.last_words)
            .iter()
            .filter(|(at, _)| *at >= cutoff)
            .map(|(_, line)| line.clone())
            .collect();
        // A Rust abort explains itself (`memory allocation of … failed`, `fatal runtime
        // error: …`), sometimes followed by lines that say less.
        let telling = [
            "memory allocation",
            "fatal runtime error",
            "panicked",
            "error",
        ];
        let said = telling
            .iter()
            .find_map(|t| words.iter().rev().find(|w| w.contains(t)))
            .or(words.last())
            .map(|l| format!(": {l}"))
            .unwrap_or_default();
        let memory = || {
            let limit = self.memory_limit?;
            words
                .iter()
                .any(|w| w.contains("memory allocation") || w.contains("out of memory"))
                .then(|| {
                    format!(
                        "; its memory_limit is {}",
                        crate::cache::disk::show_bytes(limit)
                    )
                })
        };
        match status {
            None => "ended (its status is unknown)".to_owned(),
            Some(s) => match (s.signal(), s.code()) {
                (Some(sig), _) => format!(
                    "crashed ({}{said}){}",
                    signal_name(sig),
                    memory().unwrap_or_default()
                ),
                (None, Some(code)) => {
                    format!("exited with status {code}{}", memory().unwrap_or_default())
                }
                (None, None) => "ended".to_owned(),
            },
        }
    }

    fn note_stop(&self, why: String) {
        let mut stopped = lock(&self.stopped);
        if stopped.is_none() {
            *stopped = Some(why);
        }
    }

    /// Stops the process (SIGKILL) and waits for it.
    fn stop(&self, why: String) {
        self.note_stop(why);
        {
            let mut child = lock(&self.child);
            let _ = child.kill();
        }
        self.ended();
    }

    /// An idle lane, or a new one sent through the control lane.
    fn lane(&self) -> io::Result<UnixStream> {
        if let Some(lane) = lock(&self.idle).pop() {
            return Ok(lane);
        }
        let (mine, theirs) = UnixStream::pair()?;
        wire::send_lane(&self.control, &theirs)?;
        Ok(mine)
    }

    fn release(&self, lane: UnixStream) {
        lock(&self.idle).push(lane);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Closing the control lane ends the worker; it holds nothing to save.
        let _ = self.control.shutdown(std::net::Shutdown::Both);
        let mut child = lock(&self.child);
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The log filter workers run with: the host's own level.
fn log_filter() -> String {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF => "off",
        LevelFilter::ERROR => "error",
        LevelFilter::WARN => "warn",
        LevelFilter::INFO => "info",
        LevelFilter::DEBUG => "debug",
        _ => "trace",
    }
    .to_owned()
}

/// Relays a worker's standard error and output: its log records become the host's (at
/// their level), anything else is logged as a warning and kept as its possible last words.
/// Every line is redacted with the secrets of the plugin's connections first.
fn relay_output(
    output: std::io::PipeReader,
    name: &OnceLock<String>,
    path: &str,
    last_words: &Mutex<VecDeque<(Instant, String)>>,
) {
    let reader = io::BufReader::new(output);
    for line in reader.split(b'\n') {
        let Ok(line) = line else { return };
        let plugin = name.get().map_or(path, String::as_str);
        let line = String::from_utf8_lossy(&line);
        let line = crate::config::secrets::redact_plugin_text(plugin, line.trim_end());
        if line.trim().is_empty() {
            continue;
        }
        let (level, rest) = line.split_once(' ').unwrap_or(("", &line));
        let rest = rest.trim_start();
        match level {
            "ERROR" => tracing::error!(target: "worker", plugin, "{rest}"),
            "WARN" => tracing::warn!(target: "worker", plugin, "{rest}"),
            "INFO" => tracing::info!(target: "worker", plugin, "{rest}"),
            "DEBUG" => tracing::debug!(target: "worker", plugin, "{rest}"),
            "TRACE" => tracing::trace!(target: "worker", plugin, "{rest}"),
            _ => {
                // What a plugin prints is shown at -v; a crash's error quotes the gist.
                tracing::info!(target: "worker", plugin, "{line}");
                let mut words = lock(last_words);
                if words.len() == 8 {
                    words.pop_front();
                }
                let line: String = line.chars().take(300).collect();
                words.push_back((Instant::now(), line));
            }
        }
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        n => return format!("signal {n}"),
    };
    name.to_owned()
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One call on a process, with the timeout of its connection.
struct Call<'a> {
    worker: &'a Worker,
    process: &'a Arc<Process>,
    timeout: Option<Duration>,
}

impl Call<'_> {
    /// Sends `request` on a lane and reads the one-message reply; the lane goes back to
    /// the idle ones. A `Failed` reply is the plugin's error.
    fn run(&self, request: &Request) -> Result<Reply, PluginError> {
        let mut lane = self.lane()?;
        let reply = self.exchange(&mut lane, request)?;
        self.process.release(lane);
        match reply {
            Reply::Failed { error } => {
                self.worker.succeeded();
                Err(error.into_error())
            }
            other => {
                self.worker.succeeded();
                Ok(other)
            }
        }
    }

    fn lane(&self) -> Result<UnixStream, PluginError> {
        let lane = self.process.lane().map_err(|e| self.broken(&e))?;
        lane.set_read_timeout(self.timeout)
            .and_then(|()| lane.set_write_timeout(self.timeout))
            .map_err(|e| self.broken(&e))?;
        Ok(lane)
    }

    fn exchange(&self, lane: &mut UnixStream, request: &Request) -> Result<Reply, PluginError> {
        wire::write_msg(lane, request).map_err(|e| self.broken(&e))?;
        wire::read_msg(lane).map_err(|e| self.broken(&e))
    }

    /// The error for a lane that failed with `e`: a timeout stops the process; anything
    /// else means it ended (or broke its channel, and is stopped).
    fn broken(&self, e: &io::Error) -> PluginError {
        let failure = if is_timeout(e) {
            let t = self.timeout.unwrap_or_default();
            self.process.stop(format!(
                "it did not answer within {}",
                crate::duration::show(t)
            ));
            Failure::TimedOut(t)
        } else if e.kind() == io::ErrorKind::InvalidData {
            self.process
                .stop(format!("it sent a malformed message: {e}"));
            Failure::Ended(self.process.fate().to_owned())
        } else {
            Failure::Ended(self.process.ended().to_owned())
        };
        self.worker.ended(self.process, self.process.fate());
        failure.to_error()
    }

    fn protocol(&self, what: &str) -> PluginError {
        self.broken(&io::Error::new(io::ErrorKind::InvalidData, what.to_owned()))
    }
}

/// A connection that lives in a worker process.
pub(crate) struct RemoteConnection {
    remote: Remote,
    conn: u64,
    target: Option<String>,
}

impl RemoteConnection {
    fn expect_done(&self, request: &Request) -> Result<(), PluginError> {
        let call = self.remote.call();
        match call.run(request)? {
            Reply::Done => Ok(()),
            other => Err(call.protocol(&format!("answered {request:?} with {other:?}"))),
        }
    }
}

impl PluginConnection for RemoteConnection {
    fn stream(&self, request: &ReadRequest) -> Result<Batches, PluginError> {
        let call = self.remote.call();
        let mut lane = call.lane()?;
        let read = Request::Read {
            conn: self.conn,
            request: request.clone(),
        };
        match call.exchange(&mut lane, &read)? {
            Reply::Table => {}
            Reply::Failed { error } => {
                self.remote.process.release(lane);
                self.remote.worker.succeeded();
                return Err(error.into_error());
            }
            other => return Err(call.protocol(&format!("answered a read with {other:?}"))),
        }
        let ending = Arc::new(Mutex::new(Ending::Running));
        let mut frames = Frames {
            lane: Some(lane),
            frame: io::Cursor::new(Vec::new()),
            before: 0,
            ending: Arc::clone(&ending),
            process: Arc::clone(&self.remote.process),
        };
        let metadata = match read_stream_metadata(&mut frames) {
            Ok(m) => m,
            Err(e) => {
                let ending = std::mem::replace(&mut *lock(&ending), Ending::Running);
                return Err(self.remote.failure(ending, &e.to_string()));
            }
        };
        let fields: Vec<Field> = metadata.schema.iter_values().cloned().collect();
        let reader = StreamReader::new(frames, metadata, None);
        Ok(Batches::remote(
            fields,
            RemoteBatches {
                reader: Some(reader),
                ending,
                remote: self.remote.clone(),
            },
        ))
    }

    fn execute(&self, request: &ExecuteRequest) -> Result<u64, PluginError> {
        let call = self.remote.call();
        let execute = Request::Execute {
            conn: self.conn,
            request: request.clone(),
        };
        match call.run(&execute)? {
            Reply::Rows { affected } => Ok(affected),
            other => Err(call.protocol(&format!("answered an execute with {other:?}"))),
        }
    }

    fn ping(&self) -> Result<(), PluginError> {
        self.expect_done(&Request::Ping { conn: self.conn })
    }

    /// On a lane of its own, beside the calls it stops.
    fn cancel(&self) -> Result<(), PluginError> {
        self.expect_done(&Request::Cancel { conn: self.conn })
    }

    fn close(&self) {
        if !self.remote.process.has_ended() {
            let _ = self.expect_done(&Request::Close { conn: self.conn });
        }
    }

    fn target(&self) -> Option<String> {
        self.target.clone()
    }

    fn is_live(&self) -> bool {
        !self.remote.process.has_ended()
    }
}

/// Where a connection lives: its plugin's worker, the process serving it, and how long a
/// call may go unanswered. Its tables' streams keep a copy, to explain a failure.
#[derive(Clone)]
struct Remote {
    worker: Arc<Worker>,
    process: Arc<Process>,
    timeout: Option<Duration>,
}

impl Remote {
    fn call(&self) -> Call<'_> {
        Call {
            worker: &self.worker,
            process: &self.process,
            timeout: self.timeout,
        }
    }

    /// The error for a table whose frames ended as `ending` before it was whole.
    fn failure(&self, ending: Ending, what: &str) -> PluginError {
        let call = self.call();
        match ending {
            Ending::Failed(e) => e.into_error(),
            Ending::Broken(e) => call.broken(&e),
            Ending::Running | Ending::End => {
                call.protocol(&format!("sent a malformed table: {what}"))
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a table's frames ended.
#[derive(Debug)]
enum Ending {
    Running,
    End,
    Failed(WireError),
    Broken(io::Error),
}

/// A table's IPC frames as one byte stream, for polars' IPC reader: each frame holds whole
/// messages, so its seeks stay within one frame. At the table's end the lane goes back to
/// the idle ones; a table dropped before its end closes its lane (the worker stops
/// producing it).
struct Frames {
    lane: Option<UnixStream>,
    frame: io::Cursor<Vec<u8>>,
    /// Bytes of the frames before this one.
    before: u64,
    ending: Arc<Mutex<Ending>>,
    process: Arc<Process>,
}

impl Frames {
    fn end(&mut self, ending: Ending) {
        if matches!(ending, Ending::End | Ending::Failed(_))
            && let Some(lane) = self.lane.take()
        {
            self.process.release(lane);
        }
        self.lane = None;
        *lock(&self.ending) = ending;
    }
}

impl Read for Frames {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.frame.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(lane) = self.lane.as_mut() else {
                return Ok(0);
            };
            match wire::read_frame(lane) {
                Ok((IPC, payload)) => {
                    self.before += self.frame.get_ref().len() as u64;
                    self.frame = io::Cursor::new(payload);
                }
                Ok((END, _)) => {
                    self.end(Ending::End);
                    return Ok(0);
                }
                Ok((MSG, payload)) => {
                    match wire::parse::<Reply>(MSG, &payload) {
                        Ok(Reply::Failed { error }) => self.end(Ending::Failed(error)),
                        Ok(other) => self.end(Ending::Broken(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{other:?} in the middle of a table"),
                        ))),
                        Err(e) => self.end(Ending::Broken(e)),
                    }
                    return Ok(0);
                }
                Ok((tag, _)) => {
                    self.end(Ending::Broken(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a frame of unknown kind {tag}"),
                    )));
                    return Ok(0);
                }
                Err(e) => {
                    self.end(Ending::Broken(e));
                    return Ok(0);
                }
            }
        }
    }
}

impl Seek for Frames {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let SeekFrom::Current(delta) = pos else {
            return Err(io::Error::other(
                "a table's frames seek only from where they are",
            ));
        };
        let at = self.frame.position() as i64 + delta;
        if at < 0 || at as usize > self.frame.get_ref().len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an IPC message runs past its frame",
            ));
        }
        self.frame.set_position(at as u64);
        Ok(self.before + at as u64)
    }
}

/// A table streamed from a worker.
pub(crate) struct RemoteBatches {
    reader: Option<StreamReader<Frames>>,
    ending: Arc<Mutex<Ending>>,
    remote: Remote,
}

impl RemoteBatches {
    pub(crate) fn next_arrays(&mut self) -> Result<Option<Batch>, PluginError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let what = match reader.next() {
            Some(Ok(StreamState::Some(batch))) => {
                let height = batch.height();
                return Ok(Some((height, batch.into_arrays())));
            }
            None | Some(Ok(StreamState::Waiting)) => String::new(),
            Some(Err(e)) => e.to_string(),
        };
        self.reader = None;
        let ending = std::mem::replace(&mut *lock(&self.ending), Ending::Running);
        match ending {
            Ending::End if what.is_empty() => {
                self.remote.worker.succeeded();
                Ok(None)
            }
            ending => Err(self.remote.failure(ending, &what)),
        }
    }
}
