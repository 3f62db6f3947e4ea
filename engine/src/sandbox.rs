//! What one run's `Store` holds: a WASI context that grants nothing and
//! answers every clock and random source deterministically, the bounded run
//! log, and the memory limiter; and the `host` interface guests import.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};
use wasmtime::ResourceLimiter;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, ResourceTable, WasmList, WasmStr};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::gensail::algorithm::host::LogLevel;
use crate::bindings::gensail::algorithm::types;
use crate::guest::{self, MAX_LOG_FIELD_BYTES, MAX_LOG_FIELDS, MAX_LOG_MESSAGE_BYTES};
use crate::{WIT_PACKAGE, WIT_VERSION};

/// The wall-clock time every guest reads: 2020-01-01T00:00:00Z, always, so a
/// run is a function of its inputs (docs/authoring.md, "Determinism").
pub(crate) const GUEST_WALL_CLOCK: Duration = Duration::from_secs(1_577_836_800);

/// How far the guest's monotonic clock moves each time it is read. It moves
/// only when read, never with real time, so a guest that times itself sees
/// the same durations on every run.
pub(crate) const GUEST_MONOTONIC_STEP_NANOS: u64 = 1_000;

/// Largest `get-random-bytes` / `get-insecure-random-bytes` request served;
/// more is a guest fault (WASI's default, 64 MiB, lets a loop churn the
/// host's allocator).
pub(crate) const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// Handles (streams, pollables) one run may hold at once. A guest needs a
/// handful; wasmtime's default, a million, lets one run hold host memory for
/// each, and more is a guest fault.
pub(crate) const MAX_HANDLES: usize = 1024;

/// Store data of one run.
pub(crate) struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) log: RunLog,
    pub(crate) memory: MemoryLimiter,
}

impl RunState {
    /// `seed` makes every random source the guest can read deterministic:
    /// the sha256 of what the run is a function of (see `run::run_seed`).
    pub(crate) fn new(log_bytes: u64, memory_bytes: u64, seed: [u8; 32]) -> Self {
        let log = RunLog::new(log_bytes as usize);
        // Nothing ambient: no preopened directories, environment, arguments or
        // sockets (all off by default; said again here so a reader need not
        // know the defaults). Guest stdout and stderr go to the run log.
        let insecure_seed = derive(&seed, b"insecure-seed");
        let wasi = WasiCtxBuilder::new()
            .stdout(log.stream(Stream::Stdout))
            .stderr(log.stream(Stream::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(FixedWallClock)
            .monotonic_clock(CountingClock::default())
            .secure_random(StdRng::from_seed(seed))
            .insecure_random(StdRng::from_seed(derive(&seed, b"insecure")))
            .insecure_random_seed(u128::from_le_bytes(
                insecure_seed[..16].try_into().expect("16 of 32 bytes"),
            ))
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        Self {
            wasi,
            table,
            log,
            memory: MemoryLimiter::new(memory_bytes),
        }
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for RunState {}

/// A seed for one purpose, derived from the run's seed.
fn derive(seed: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(seed).chain_update(purpose).finalize().into()
}

/// The wall clock guests see: [`GUEST_WALL_CLOCK`], whatever the time.
struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        GUEST_WALL_CLOCK
    }
}

/// The monotonic clock guests see: starts at 0 and moves
/// [`GUEST_MONOTONIC_STEP_NANOS`] each time it is read.
#[derive(Default)]
struct CountingClock(std::sync::atomic::AtomicU64);

impl HostMonotonicClock for CountingClock {
    fn resolution(&self) -> u64 {
        GUEST_MONOTONIC_STEP_NANOS
    }

    fn now(&self) -> u64 {
        self.0
            .fetch_add(GUEST_MONOTONIC_STEP_NANOS, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Links the `host` interface (and the type-only `types` interface) for guests.
///
/// `log` is linked by hand rather than through the generated bindings so its
/// strings arrive as [`WasmStr`]: their length is checked in guest memory and
/// only a bounded prefix is copied (a guest's 100 MB message costs no 100 MB copy).
pub(crate) fn add_host_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    types::add_to_linker::<RunState, wasmtime::component::HasSelf<RunState>>(linker, |s| s)?;
    let mut host = linker.instance(&format!("{WIT_PACKAGE}/host@{WIT_VERSION}"))?;
    host.func_wrap(
        "log",
        |mut store: StoreContextMut<'_, RunState>,
         (level, message, fields): (LogLevel, WasmStr, WasmList<(WasmStr, WasmStr)>)| {
            let line = log_line(&mut store, level, &message, &fields)?;
            store.data().log.append(Stream::Host, line.as_bytes());
            Ok(())
        },
    )
}

/// One `host::log` call as a bounded line: `level: message k=v ...`.
fn log_line(
    store: &mut StoreContextMut<'_, RunState>,
    level: LogLevel,
    message: &WasmStr,
    fields: &WasmList<(WasmStr, WasmStr)>,
) -> wasmtime::Result<String> {
    let level = match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let text = |store: &StoreContextMut<'_, RunState>, s: &WasmStr, max: usize| {
        guest::copy_clipped(store, s, max).ok_or_else(|| wasmtime::Error::from(crate::guest::InvalidUtf8("a log line")))
    };
    let mut line = format!("{level}: {}", text(store, message, MAX_LOG_MESSAGE_BYTES)?);
    let pairs = fields
        .iter(&mut *store)?
        .take(MAX_LOG_FIELDS)
        .collect::<wasmtime::Result<Vec<(WasmStr, WasmStr)>>>()?;
    for (key, value) in &pairs {
        let key = text(store, key, MAX_LOG_FIELD_BYTES)?;
        let value = text(store, value, MAX_LOG_FIELD_BYTES)?;
        line.push_str(&format!(" {key}={value}"));
    }
    if fields.len() > MAX_LOG_FIELDS {
        line.push_str(&format!(" [{} more fields cut]", fields.len() - MAX_LOG_FIELDS));
    }
    line.push('\n');
    Ok(line)
}

/// Which source a log write came from; lines are prefixed with it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
    Host,
}

/// Keeps the tail of stderr apart from the bounded log, so a trap can still be
/// explained by the guest's panic message after a log flood.
const STDERR_TAIL_BYTES: usize = 2048;

#[derive(Default)]
struct LogBuffer {
    text: Vec<u8>,
    capacity: usize,
    truncated: bool,
    /// Stream of the last write that did not end in a newline, if any.
    open_line: Option<StreamTag>,
    stderr_tail: Vec<u8>,
}

impl LogBuffer {
    /// Appends what fits; marks the log truncated when something did not.
    fn push(&mut self, bytes: &[u8]) {
        let room = self.capacity.saturating_sub(self.text.len());
        if bytes.len() <= room {
            self.text.extend_from_slice(bytes);
        } else {
            self.text.extend_from_slice(&bytes[..room]);
            self.truncated = true;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct StreamTag(u8);

/// The run's log: guest stdout, stderr and host log lines in one bounded
/// buffer. Writes past the bound are dropped (the guest is not told, so a
/// chatty plugin does not fail) and the log is marked truncated.
#[derive(Clone)]
pub(crate) struct RunLog(Arc<Mutex<LogBuffer>>);

impl RunLog {
    fn new(capacity: usize) -> Self {
        Self(Arc::new(Mutex::new(LogBuffer {
            capacity,
            ..Default::default()
        })))
    }

    fn stream(&self, stream: Stream) -> LogStream {
        LogStream {
            log: self.clone(),
            stream,
        }
    }

    pub(crate) fn append(&self, stream: Stream, bytes: &[u8]) {
        let mut buf = self.0.lock().expect("run log lock");
        if stream == Stream::Stderr {
            let last = &bytes[bytes.len().saturating_sub(STDERR_TAIL_BYTES)..];
            buf.stderr_tail.extend_from_slice(last);
            let excess = buf.stderr_tail.len().saturating_sub(STDERR_TAIL_BYTES);
            buf.stderr_tail.drain(..excess);
        }
        if buf.truncated {
            return;
        }
        let tag = StreamTag(stream as u8);
        let prefix: &[u8] = match stream {
            Stream::Stdout => b"stdout: ",
            Stream::Stderr => b"stderr: ",
            Stream::Host => b"",
        };
        // Writes go straight into the bounded buffer: however large a write,
        // the host never holds more of it than the log has room for.
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            if buf.open_line != Some(tag) {
                if buf.open_line.is_some() {
                    buf.push(b"\n");
                }
                buf.push(prefix);
            }
            buf.push(piece);
            buf.open_line = if piece.ends_with(b"\n") { None } else { Some(tag) };
            if buf.truncated {
                return;
            }
        }
    }

    /// The log text and whether it was truncated.
    pub(crate) fn take(&self) -> (String, bool) {
        let buf = self.0.lock().expect("run log lock");
        // Guest bytes: not always UTF-8, and NUL is refused by PostgreSQL's text.
        let mut text = String::from_utf8_lossy(&buf.text).replace('\0', "\u{FFFD}");
        if buf.truncated {
            text.push_str(&format!("\n[log truncated at {} bytes]\n", buf.capacity));
        }
        (text, buf.truncated)
    }

    /// The last lines the guest wrote to stderr (its panic message, typically).
    pub(crate) fn stderr_tail(&self) -> String {
        let buf = self.0.lock().expect("run log lock");
        String::from_utf8_lossy(&buf.stderr_tail).trim().to_owned()
    }
}

/// One of the guest's output streams, writing into the run log.
#[derive(Clone)]
pub(crate) struct LogStream {
    log: RunLog,
    stream: Stream,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.log.append(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready; writes past the log bound are dropped, not refused.
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.log.append(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Holds the guest to its memory limit and remembers the peak it reached.
pub(crate) struct MemoryLimiter {
    limit: u64,
    current: u64,
    pub(crate) peak: u64,
    pub(crate) hit_limit: bool,
}

/// Tables are small (function references); this only stops a runaway guest.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl MemoryLimiter {
    fn new(limit: u64) -> Self {
        Self {
            limit,
            current: 0,
            peak: 0,
            hit_limit: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.current - current as u64 + desired as u64;
        if total > self.limit {
            self.hit_limit = true;
            // An error (not `Ok(false)`) traps at once: a Rust guest would only
            // abort on a refused grow anyway, with a less telling message.
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes reached (asked for {total})",
                self.limit
            ));
        }
        self.current = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_prefixes_streams_and_truncates() {
        let log = RunLog::new(40);
        log.append(Stream::Stdout, b"hello ");
        log.append(Stream::Stderr, b"oops\n");
        log.append(Stream::Stdout, b"world\n");
        let (text, truncated) = log.take();
        // The 40 bytes count the stream prefixes: the third line is cut at "worl".
        assert!(
            text.starts_with("stdout: hello \nstderr: oops\nstdout: worl\n"),
            "{text:?}"
        );
        assert!(truncated);
        assert!(text.ends_with("[log truncated at 40 bytes]\n"));
        assert_eq!(log.stderr_tail(), "oops");
    }

    #[test]
    fn limiter_tracks_peak_and_refuses_past_limit() {
        let mut m = MemoryLimiter::new(1000);
        assert!(m.memory_growing(0, 600, None).unwrap());
        assert!(m.memory_growing(600, 900, None).unwrap());
        assert!(m.memory_growing(900, 1001, None).is_err());
        assert!(m.hit_limit);
        assert_eq!(m.peak, 900);
    }
}
