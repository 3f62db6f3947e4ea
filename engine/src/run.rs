//! One run: a fresh `Store`, instantiate from the pre-linked component, call,
//! and turn whatever happened into a [`RunReport`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gensail_host_api::Transcript;
use semver::Version;
use serde::Serialize;
use serde::ser::SerializeMap;
use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};

use crate::bindings::AlgorithmPre;
use crate::bindings::exports::gensail::algorithm::plugin;
use crate::bindings::gensail::algorithm::types as wit;
use crate::engine::{EPOCH_TICK, Engine};
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
    /// the registry has moved on to a newer one).
    pub async fn run_loaded(
        &self,
        algorithm: &Arc<LoadedAlgorithm>,
        transcript: &Transcript,
        config_json: &str,
    ) -> RunReport {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .expect("run semaphore is never closed");
        let limits = algorithm.limits;
        let input = to_wit(transcript);
        let config = if config_json.trim().is_empty() {
            "{}"
        } else {
            config_json
        };
        let started = Instant::now();
        let mut store = new_store(self, &limits);
        let called = with_deadline(&limits, async {
            let instance = algorithm.pre.instantiate_async(&mut store).await?;
            instance
                .gensail_algorithm_plugin()
                .call_run(&mut store, &input, config)
                .await
        })
        .await;
        let wall_time = started.elapsed();
        let outcome = match called {
            Err(timeout) => Err(timeout),
            Ok(Err(trap)) => Err(classify(trap, &store, &limits)),
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

/// Calls `metadata()` under the engine's default limits (a plugin that loops
/// or traps while describing itself is refused at load time).
pub(crate) async fn call_metadata(
    engine: &Engine,
    pre: &AlgorithmPre<RunState>,
) -> Result<plugin::AlgorithmMetadata, LoadError> {
    let _permit = engine
        .inner
        .permits
        .acquire()
        .await
        .expect("run semaphore is never closed");
    let limits = engine.config().default_limits;
    let mut store = new_store(engine, &limits);
    let called = with_deadline(&limits, async {
        let instance = pre.instantiate_async(&mut store).await?;
        instance.gensail_algorithm_plugin().call_metadata(&mut store).await
    })
    .await;
    match called {
        Ok(Ok(meta)) => Ok(meta),
        Ok(Err(e)) => Err(LoadError::Metadata(classify(e, &store, &limits).to_string())),
        Err(e) => Err(LoadError::Metadata(e.to_string())),
    }
}

fn new_store(engine: &Engine, limits: &Limits) -> Store<RunState> {
    let mut store = Store::new(
        &engine.inner.wasmtime,
        RunState::new(limits.log_bytes, limits.memory_bytes),
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

fn classify(error: wasmtime::Error, store: &Store<RunState>, limits: &Limits) -> RunError {
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
                format!("{trap}; guest stderr: {stderr}")
            };
            let backtrace = error.downcast_ref::<WasmBacktrace>().map(|b| b.to_string());
            RunError::Trap { message, backtrace }
        }
        None => RunError::Host {
            message: format!("{error:#}"),
        },
    }
}

fn from_plugin_error(e: wit::AlgorithmError) -> RunError {
    let (kind, message) = match e {
        wit::AlgorithmError::InvalidConfig(m) => (AlgorithmErrorKind::InvalidConfig, m),
        wit::AlgorithmError::InvalidTranscript(m) => (AlgorithmErrorKind::InvalidTranscript, m),
        wit::AlgorithmError::Failed(m) => (AlgorithmErrorKind::Failed, m),
    };
    RunError::Algorithm { kind, message }
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
