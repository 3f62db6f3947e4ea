//! One run: a fresh `Store`, instantiate from the pre-linked component, call,
//! and turn whatever happened into a [`RunReport`]. Runs execute on the
//! engine's own runtime (`engine::GuestRuntime`), never on the caller's.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gensail_host_api::Transcript;
use semver::Version;
use serde::Serialize;
use serde::ser::SerializeMap;
use sha2::{Digest, Sha256};
use wasmtime::component::ResourceTableError;
use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};

use crate::bindings::AlgorithmPre;
use crate::bindings::exports::gensail::algorithm::plugin;
use crate::bindings::gensail::algorithm::types as wit;
use crate::engine::{EPOCH_TICK, Engine};
use crate::guest::{self, MAX_BACKTRACE_FRAMES, MAX_ERROR_MESSAGE_BYTES, MAX_FRAME_NAME_BYTES, clip};
use crate::limits::Limits;
use crate::sandbox::RunState;
use crate::{EngineError, LoadError, LoadedAlgorithm};

/// The kind of error a plugin reported itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlgorithmErrorKind {
    /// The config was unusable.
    InvalidConfig,
    /// The transcript was unusable.
    InvalidTranscript,
    /// Anything else.
    Failed,
}

/// How a guest misused a host call. Each is the guest's fault, not the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuestFault {
    /// A string it passed is not UTF-8.
    InvalidUtf8,
    /// It asked for more random bytes at once than the host serves.
    RandomRequestTooLarge,
    /// It used a handle (a stream, a pollable) it does not hold, or of the wrong type.
    InvalidHandle,
    /// It opened more handles than the host's table holds.
    HandleTableFull,
    /// Another call the host refused (the message says which).
    HostCallRefused,
}

impl GuestFault {
    /// The fault's name on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidUtf8 => "invalid_utf8",
            Self::RandomRequestTooLarge => "random_request_too_large",
            Self::InvalidHandle => "invalid_handle",
            Self::HandleTableFull => "handle_table_full",
            Self::HostCallRefused => "host_call_refused",
        }
    }
}

/// Why a run produced no output. Each one ends that run alone.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// The guest executed its whole instruction budget.
    #[error("fuel exhausted: the run used all {limit} units of fuel it was allowed")]
    FuelExhausted {
        /// The fuel limit.
        limit: u64,
    },
    /// The wall-clock deadline passed.
    #[error("timed out after {} ms, the run's time limit", limit.as_millis())]
    Timeout {
        /// The deadline.
        limit: Duration,
    },
    /// The guest tried to grow its memory past the limit.
    #[error("memory limit exceeded: the plugin tried to use more than {limit_bytes} bytes of memory")]
    MemoryLimit {
        /// The memory limit.
        limit_bytes: u64,
    },
    /// The guest trapped (a panic, an `unreachable`, a stack overflow, ...).
    #[error("the plugin trapped: {message}")]
    Trap {
        /// The trap and, when there is one, the guest's last words on stderr (its panic message).
        message: String,
        /// The guest's call stack at the trap.
        backtrace: Option<String>,
    },
    /// The output is larger than the output limit.
    #[error("output too large: {size} bytes, the limit is {limit}")]
    OutputTooLarge {
        /// Size of the output.
        size: u64,
        /// The output limit.
        limit: u64,
    },
    /// The output is not JSON.
    #[error("output is not valid JSON: {reason}")]
    InvalidOutput {
        /// The parser's complaint.
        reason: String,
    },
    /// The plugin returned an error of its own.
    #[error("the algorithm reported an error ({kind:?}): {message}")]
    Algorithm {
        /// Which kind.
        kind: AlgorithmErrorKind,
        /// The plugin's message.
        message: String,
    },
    /// The guest misused a host call (see [`GuestFault`]).
    #[error("the plugin misused a host call ({}): {message}", fault.as_str())]
    GuestFault {
        /// What it did.
        fault: GuestFault,
        /// The host's words on it, bounded.
        message: String,
    },
    /// The host could not run the plugin (e.g. it could not be instantiated).
    #[error("the host could not run the plugin: {message}")]
    Host {
        /// What went wrong.
        message: String,
    },
}

impl RunError {
    /// A stable, machine-readable name of the error kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::FuelExhausted { .. } => "fuel_exhausted",
            Self::Timeout { .. } => "timeout",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::Trap { .. } => "trap",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::InvalidOutput { .. } => "invalid_output",
            Self::Algorithm { .. } => "algorithm_error",
            Self::GuestFault { .. } => "guest_fault",
            Self::Host { .. } => "host_error",
        }
    }
}

impl Serialize for RunError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("kind", self.kind())?;
        map.serialize_entry("message", &self.to_string())?;
        match self {
            Self::Trap { backtrace: Some(b), .. } => map.serialize_entry("backtrace", b)?,
            Self::Algorithm { kind, .. } => map.serialize_entry("algorithm_error", kind)?,
            Self::GuestFault { fault, .. } => map.serialize_entry("fault", fault)?,
            _ => {}
        }
        map.end()
    }
}

/// Everything about one run: what it produced or why it failed, and what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The algorithm ID.
    pub algorithm_id: String,
    /// The exact version that ran.
    pub version: Version,
    /// Hex sha256 of the component that ran.
    pub component_sha256: String,
    /// `completed` or `failed`.
    pub status: &'static str,
    /// The output, when the run completed.
    pub output: Option<serde_json::Value>,
    /// Why it failed, when it failed.
    pub error: Option<RunError>,
    /// Guest stdout, stderr and host log lines, bounded.
    pub logs: String,
    /// Whether the log hit its limit.
    pub logs_truncated: bool,
    /// Fuel (roughly, instructions) consumed.
    pub fuel_consumed: u64,
    /// Wall time, instantiation included, in milliseconds (fractional).
    pub wall_time_ms: f64,
    /// Largest linear memory the guest held, in bytes.
    pub peak_memory_bytes: u64,
    /// The limits the run was held to.
    pub limits: Limits,
}

impl RunReport {
    /// The output, or why there is none.
    pub fn outcome(&self) -> Result<&serde_json::Value, &RunError> {
        match (&self.output, &self.error) {
            (Some(o), None) => Ok(o),
            (_, Some(e)) => Err(e),
            (None, None) => unreachable!("a report has an output or an error"),
        }
    }
}

impl Engine {
    /// Runs the algorithm loaded under `id`.
    pub async fn run(&self, id: &str, transcript: &Transcript, config_json: &str) -> Result<RunReport, EngineError> {
        let algorithm = self
            .registry()
            .get(id)
            .ok_or_else(|| EngineError::UnknownAlgorithm(id.to_owned()))?;
        Ok(self.run_loaded(&algorithm, transcript, config_json).await)
    }

    /// Runs a specific loaded version (the one a caller already holds, even if
    /// the registry has moved on to a newer one). The run executes on the
    /// engine's guest runtime: the caller's threads never run guest code.
    pub async fn run_loaded(
        &self,
        algorithm: &Arc<LoadedAlgorithm>,
        transcript: &Transcript,
        config_json: &str,
    ) -> RunReport {
        let input = to_wit(transcript);
        let config = if config_json.trim().is_empty() {
            "{}".to_owned()
        } else {
            config_json.to_owned()
        };
        let (engine, task_algorithm) = (self.clone(), algorithm.clone());
        // Hashing the transcript for the seed is work too: on the guest runtime.
        let run = self.inner.guests.spawn(async move {
            let seed = run_seed(&task_algorithm.info.sha256, &config, &input);
            engine.run_here(&task_algorithm, &input, &config, seed).await
        });
        match run.await {
            Ok(report) => report,
            Err(ended) => RunReport::failed(
                algorithm,
                RunError::Host {
                    message: format!("the run's task ended before it reported: {ended}"),
                },
            ),
        }
    }

    async fn run_here(
        &self,
        algorithm: &LoadedAlgorithm,
        input: &wit::Transcript,
        config: &str,
        seed: [u8; 32],
    ) -> RunReport {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .expect("run semaphore is never closed");
        let limits = algorithm.limits;
        let started = Instant::now();
        let mut store = new_store(self, &limits, seed);
        let called = with_deadline(&limits, async {
            let instance = algorithm
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(Phase::Instantiate)?;
            instance
                .gensail_algorithm_plugin()
                .call_run(&mut store, input, config)
                .await
                .map_err(Phase::Call)
        })
        .await;
        let wall_time = started.elapsed();
        let outcome = match called {
            Err(timeout) => Err(timeout),
            Ok(Err(failed)) => Err(classify(failed, &store, &limits)),
            Ok(Ok(Err(e))) => Err(from_plugin_error(e)),
            Ok(Ok(Ok(text))) => parse_output(&text, &limits),
        };
        let (logs, logs_truncated) = store.data().log.take();
        let (output, error) = match outcome {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        RunReport {
            algorithm_id: algorithm.info.id.clone(),
            version: algorithm.info.version.clone(),
            component_sha256: algorithm.info.sha256.clone(),
            status: if error.is_none() { "completed" } else { "failed" },
            output,
            error,
            logs,
            logs_truncated,
            fuel_consumed: limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0)),
            wall_time_ms: wall_time.as_secs_f64() * 1000.0,
            peak_memory_bytes: store.data().memory.peak,
            limits,
        }
    }
}

impl RunReport {
    /// A run that failed before the guest ran at all.
    fn failed(algorithm: &LoadedAlgorithm, error: RunError) -> Self {
        RunReport {
            algorithm_id: algorithm.info.id.clone(),
            version: algorithm.info.version.clone(),
            component_sha256: algorithm.info.sha256.clone(),
            status: "failed",
            output: None,
            error: Some(error),
            logs: String::new(),
            logs_truncated: false,
            fuel_consumed: 0,
            wall_time_ms: 0.0,
            peak_memory_bytes: 0,
            limits: algorithm.limits,
        }
    }
}

/// Where a call failed: instantiation failures are the host's (a full
/// instance pool, say), failures inside the call are the guest's doing.
enum Phase {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
}

/// The seed of every random source a run's guest can read: the sha256 of the
/// run's inputs (component, config, transcript), so the same inputs give the
/// same bytes and a run is a function of them.
pub(crate) fn run_seed(component_sha256: &str, config: &str, transcript: &wit::Transcript) -> [u8; 32] {
    let mut t = Sha256::new();
    let field = |t: &mut Sha256, bytes: &[u8]| {
        t.update((bytes.len() as u64).to_le_bytes());
        t.update(bytes);
    };
    field(&mut t, transcript.language.as_deref().unwrap_or("").as_bytes());
    t.update(transcript.duration_ms.to_le_bytes());
    for segment in &transcript.segments {
        field(&mut t, segment.speaker.as_bytes());
        field(&mut t, segment.text.as_bytes());
        t.update(segment.start_ms.to_le_bytes());
        t.update(segment.end_ms.to_le_bytes());
        t.update(
            segment
                .confidence
                .map_or(u64::MAX, |c| c.to_bits() as u64)
                .to_le_bytes(),
        );
        t.update(segment.channel.map_or(u64::MAX, u64::from).to_le_bytes());
    }
    let transcript_sha256 = t.finalize();
    Sha256::new()
        .chain_update(component_sha256.as_bytes())
        .chain_update(Sha256::digest(config.as_bytes()))
        .chain_update(transcript_sha256)
        .finalize()
        .into()
}

/// Calls `metadata()` under the engine's default limits (a plugin that loops
/// or traps while describing itself is refused at load time), on the guest
/// runtime. Its random sources are seeded from the component alone, so
/// metadata is a function of the component.
pub(crate) async fn call_metadata(
    engine: &Engine,
    pre: &AlgorithmPre<RunState>,
    component_sha256: &str,
) -> Result<plugin::AlgorithmMetadata, LoadError> {
    let (task_engine, pre) = (engine.clone(), pre.clone());
    let seed: [u8; 32] = Sha256::new()
        .chain_update(component_sha256.as_bytes())
        .chain_update(b"metadata")
        .finalize()
        .into();
    let call = async move {
        let engine = task_engine;
        let _permit = engine
            .inner
            .permits
            .acquire()
            .await
            .expect("run semaphore is never closed");
        let limits = engine.config().default_limits;
        let mut store = new_store(&engine, &limits, seed);
        let called = with_deadline(&limits, async {
            let instance = pre.instantiate_async(&mut store).await.map_err(Phase::Instantiate)?;
            instance
                .gensail_algorithm_plugin()
                .call_metadata(&mut store)
                .await
                .map_err(Phase::Call)
        })
        .await;
        match called {
            Ok(Ok(meta)) => Ok(meta),
            Ok(Err(failed)) => Err(LoadError::Metadata(classify(failed, &store, &limits).to_string())),
            Err(e) => Err(LoadError::Metadata(e.to_string())),
        }
    };
    engine
        .inner
        .guests
        .spawn(call)
        .await
        .map_err(|e| LoadError::Metadata(format!("the metadata() call ended before it answered: {e}")))?
}

fn new_store(engine: &Engine, limits: &Limits, seed: [u8; 32]) -> Store<RunState> {
    let mut store = Store::new(
        &engine.inner.wasmtime,
        RunState::new(limits.log_bytes, limits.memory_bytes, seed),
    );
    store.limiter(|state| &mut state.memory);
    store
        .set_fuel(limits.fuel)
        .expect("fuel is enabled in the engine config");
    // Every tick the guest yields to the executor, so it never holds a tokio
    // worker for long; once the deadline has passed it is interrupted instead.
    let deadline = Instant::now() + limits.timeout;
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store.set_epoch_deadline(1);
    store
}

/// Bounds a call by the run's deadline. Guest code is interrupted by the
/// epoch callback; this also bounds time the guest spends blocked in a host
/// call (a WASI sleep, say), which no epoch can interrupt.
async fn with_deadline<T>(limits: &Limits, call: impl Future<Output = T>) -> Result<T, RunError> {
    let grace = EPOCH_TICK * 4;
    tokio::time::timeout(limits.timeout + grace, call)
        .await
        .map_err(|_| RunError::Timeout { limit: limits.timeout })
}

/// What went wrong in a call, from bounded pieces only: a guest chooses its
/// function names and its messages, so nothing here formats them whole.
fn classify(failed: Phase, store: &Store<RunState>, limits: &Limits) -> RunError {
    let (error, in_call) = match failed {
        Phase::Instantiate(e) => (e, false),
        Phase::Call(e) => (e, true),
    };
    if store.data().memory.hit_limit {
        return RunError::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => RunError::FuelExhausted { limit: limits.fuel },
        Some(Trap::Interrupt) => RunError::Timeout { limit: limits.timeout },
        Some(trap) => {
            let stderr = store.data().log.stderr_tail();
            let message = if stderr.is_empty() {
                trap.to_string()
            } else {
                clip(&format!("{trap}; guest stderr: {stderr}"), MAX_ERROR_MESSAGE_BYTES)
            };
            let backtrace = error.downcast_ref::<WasmBacktrace>().map(bounded_backtrace);
            RunError::Trap { message, backtrace }
        }
        None if in_call => RunError::GuestFault {
            fault: fault_of(&error),
            message: clip(&error.root_cause().to_string(), MAX_ERROR_MESSAGE_BYTES),
        },
        None => RunError::Host {
            message: clip(&error.root_cause().to_string(), MAX_ERROR_MESSAGE_BYTES),
        },
    }
}

/// Which guest fault an error from a host call is. wasmtime is pinned, and
/// the sandbox tests provoke each of these, so a changed message shows there.
fn fault_of(error: &wasmtime::Error) -> GuestFault {
    for cause in error.chain() {
        if cause.is::<guest::InvalidUtf8>() || cause.is::<std::str::Utf8Error>() {
            return GuestFault::InvalidUtf8;
        }
        match cause.downcast_ref::<ResourceTableError>() {
            Some(ResourceTableError::Full) => return GuestFault::HandleTableFull,
            Some(_) => return GuestFault::InvalidHandle,
            None => {}
        }
    }
    let text = error.root_cause().to_string();
    if text.starts_with("requested len") && text.contains("exceeds limit") {
        GuestFault::RandomRequestTooLarge
    } else if text.starts_with("unknown handle index") {
        GuestFault::InvalidHandle
    } else if text.contains("invalid utf-8") {
        GuestFault::InvalidUtf8
    } else {
        GuestFault::HostCallRefused
    }
}

/// The guest's call stack, one frame a line, at most
/// [`MAX_BACKTRACE_FRAMES`] frames with names cut to [`MAX_FRAME_NAME_BYTES`].
/// Names are never demangled (the engine is built without wasmtime's
/// `demangle` feature): a crafted name would make the demangler's output grow
/// without bound.
fn bounded_backtrace(backtrace: &WasmBacktrace) -> String {
    let mut out = String::new();
    for (i, frame) in backtrace.frames().iter().take(MAX_BACKTRACE_FRAMES).enumerate() {
        let module = frame.module().name().unwrap_or("<module>");
        let _ = write!(out, "{i:>3}: {}!", clip(module, MAX_FRAME_NAME_BYTES));
        match frame.func_name() {
            Some(name) => out.push_str(&clip(name, MAX_FRAME_NAME_BYTES)),
            None => {
                let _ = write!(out, "<function {}>", frame.func_index());
            }
        }
        out.push('\n');
    }
    if backtrace.frames().len() > MAX_BACKTRACE_FRAMES {
        let _ = writeln!(
            out,
            "  … {} more frames",
            backtrace.frames().len() - MAX_BACKTRACE_FRAMES
        );
    }
    out
}

fn from_plugin_error(e: wit::AlgorithmError) -> RunError {
    let (kind, message) = match e {
        wit::AlgorithmError::InvalidConfig(m) => (AlgorithmErrorKind::InvalidConfig, m),
        wit::AlgorithmError::InvalidTranscript(m) => (AlgorithmErrorKind::InvalidTranscript, m),
        wit::AlgorithmError::Failed(m) => (AlgorithmErrorKind::Failed, m),
    };
    RunError::Algorithm {
        kind,
        message: clip(&message, MAX_ERROR_MESSAGE_BYTES),
    }
}

fn parse_output(text: &str, limits: &Limits) -> Result<serde_json::Value, RunError> {
    let size = text.len() as u64;
    if size > limits.output_bytes {
        return Err(RunError::OutputTooLarge {
            size,
            limit: limits.output_bytes,
        });
    }
    serde_json::from_str(text).map_err(|e| RunError::InvalidOutput { reason: e.to_string() })
}

fn to_wit(t: &Transcript) -> wit::Transcript {
    wit::Transcript {
        language: t.language.clone(),
        duration_ms: t.duration_ms,
        segments: t
            .segments
            .iter()
            .map(|s| wit::Segment {
                speaker: s.speaker.clone(),
                start_ms: s.start_ms,
                end_ms: s.end_ms,
                text: s.text.clone(),
                confidence: s.confidence,
                channel: s.channel,
            })
            .collect(),
    }
}
