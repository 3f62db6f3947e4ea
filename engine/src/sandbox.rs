//! What one run's `Store` holds: a WASI context that grants nothing, the
//! bounded run log, and the memory limiter.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::gensail::algorithm::host::{self, LogLevel};
use crate::bindings::gensail::algorithm::types;

/// Store data of one run.
pub(crate) struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) log: RunLog,
    pub(crate) memory: MemoryLimiter,
}

impl RunState {
    pub(crate) fn new(log_bytes: u64, memory_bytes: u64) -> Self {
        let log = RunLog::new(log_bytes as usize);
        // Nothing ambient: no preopened directories, environment, arguments or
        // sockets (all off by default; said again here so a reader need not
        // know the defaults). Guest stdout and stderr go to the run log.
        let wasi = WasiCtxBuilder::new()
            .stdout(log.stream(Stream::Stdout))
            .stderr(log.stream(Stream::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
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

impl host::Host for RunState {
    fn log(&mut self, level: LogLevel, message: String, fields: Vec<(String, String)>) {
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        let mut line = format!("{level}: {message}");
        for (k, v) in fields {
            line.push_str(&format!(" {k}={v}"));
        }
        line.push('\n');
        self.log.append(Stream::Host, line.as_bytes());
    }
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
            buf.stderr_tail.extend_from_slice(bytes);
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
        let mut out = Vec::with_capacity(bytes.len() + 16);
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            if buf.open_line != Some(tag) {
                if buf.open_line.is_some() {
                    out.push(b'\n');
                }
                out.extend_from_slice(prefix);
            }
            out.extend_from_slice(piece);
            buf.open_line = if piece.ends_with(b"\n") { None } else { Some(tag) };
        }
        let room = buf.capacity.saturating_sub(buf.text.len());
        if out.len() <= room {
            buf.text.extend_from_slice(&out);
        } else {
            buf.text.extend_from_slice(&out[..room]);
            buf.truncated = true;
        }
    }

    /// The log text and whether it was truncated.
    pub(crate) fn take(&self) -> (String, bool) {
        let buf = self.0.lock().expect("run log lock");
        let mut text = String::from_utf8_lossy(&buf.text).into_owned();
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
        assert!(
            text.starts_with("stdout: hello \nstderr: oops\nstdout: world"),
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
