//! The wasmtime host of gensail: loads algorithm components, keeps a registry
//! of them, and runs them in a sandbox with hard limits.
//!
//! An algorithm is a WebAssembly component built against the WIT package
//! `gensail:algorithm` (see `wit/algorithm.wit`). The engine knows nothing of
//! HTTP or SQL: callers hand it component bytes and transcripts and get back
//! loaded algorithms and [`RunReport`]s.
//!
//! ```no_run
//! # async fn demo(bytes: Vec<u8>, transcript: gensail_host_api::Transcript) -> anyhow::Result<()> {
//! use gensail_engine::{Engine, EngineConfig, LimitOverrides};
//! let engine = Engine::new(EngineConfig::default())?;
//! let algorithm = engine.load("sentiment_v1", &bytes, LimitOverrides::default()).await?;
//! engine.registry().install(algorithm)?;
//! let report = engine.run("sentiment_v1", &transcript, "{}").await?;
//! println!("{}", serde_json::to_string_pretty(&report)?);
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`engine`](crate::Engine): the wasmtime `Engine`, linker, pooling allocator, epoch ticker,
//!   the concurrency bound and the guest runtime; entry points `load`, `inspect`, `run`.
//! - `bindings`: the one `bindgen!` of the WIT world.
//! - `cache`: compiled components on disk, keyed by content hash and engine configuration.
//! - `compiler`: compiling, in this process or in a child bounded in time and memory.
//! - `component`: validation of a component against the contract ([`ComponentInfo`], [`LoadedAlgorithm`]).
//! - [`registry`]: the concurrent map of loaded algorithms by ID ([`Registry`]).
//! - `sandbox`: the per-run store state: WASI with nothing granted and deterministic clocks
//!   and random sources, the bounded run log, the memory limiter, the `host` interface.
//! - `guest`: the bound on every string a guest hands the host (messages, logs, metadata, names).
//! - `run`: one run on the guest runtime: instantiate, call, classify the outcome
//!   ([`RunReport`], [`RunError`], [`GuestFault`]).
//! - [`limits`]: [`Limits`] and per-algorithm [`LimitOverrides`].
//! - [`error`]: [`LoadError`] and [`EngineError`].

#![deny(missing_docs)]

mod bindings;
mod cache;
mod compiler;
mod component;
mod engine;
pub mod error;
mod guest;
pub mod limits;
pub mod registry;
mod run;
mod sandbox;

pub use cache::CompileStats;
pub use compiler::{CompilerProcess, compile_in_this_process_for_parent};
pub use component::{ComponentInfo, LoadedAlgorithm, check_id as check_algorithm_id};
pub use engine::{Engine, EngineConfig};
pub use error::{EngineError, LoadError};
pub use guest::clip;
pub use limits::{LimitOverrides, Limits, ShapeLimits};
pub use registry::Registry;
pub use run::{AlgorithmErrorKind, GuestFault, RunError, RunReport};

/// The version of `gensail:algorithm` this host implements. Plugins built
/// against the same major version and a minor version no greater than this load.
pub const WIT_VERSION: semver::Version = semver::Version::new(1, 0, 0);

/// The WIT package name every plugin exports its `plugin` interface from.
pub const WIT_PACKAGE: &str = "gensail:algorithm";
