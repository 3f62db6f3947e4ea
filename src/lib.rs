//! gensail runs call-analytics algorithms as sandboxed WebAssembly plugins.
//!
//! This crate is the `gensail` binary: the HTTP API, the database, the job
//! worker and the command line, plus the bundled algorithms built from
//! `plugins/`. The wasmtime host is `gensail-engine`; the author SDK is
//! `gensail-host-api`. Data flows one way: HTTP handler → store (one
//! transaction) → job row → worker claims it → engine runs each algorithm →
//! runs stored.
//!
//! # Layout
//! - [`cli`]: argument parsing (clap): `serve`, `algorithms list | inspect | run`.
//! - [`app`]: start-up, serving with graceful shutdown.
//! - [`state`]: `AppState`, what handlers and workers share.
//! - [`http`]: the API, one file per resource.
//! - [`jobs`]: the job core's rules: job, run and delivery statuses and their transitions.
//! - [`store`]: every database read and write (sqlx; SQLite or PostgreSQL).
//! - [`lifecycle`]: publishing, activating and rolling back algorithm versions; directory hot-load.
//! - [`on_demand`]: the `run-algorithms` use case (its checks and the child job).
//! - [`worker`]: claims jobs with a lease and runs their algorithms; takes batch work when idle.
//! - [`batch`]: experiments and backfills over stored calls, run by the worker.
//! - [`delivery`]: sends signed webhooks from the outbox.
//! - [`ratelimit`]: per-key limits by scope.
//! - [`metrics`]: Prometheus metrics.
//! - [`outbound`]: the guard on outbound (webhook) addresses.
//! - [`secrets`]: encryption of stored webhook secrets.
//! - [`clock`]: the service clock (manual in tests).
//! - [`demo`]: `serve --demo` seed data.
//! - [`bundled`]: the bundled algorithm components, embedded at build time, and loading them.

pub mod app;
pub mod batch;
pub mod bundled;
pub mod cli;
pub mod clock;
pub mod delivery;
pub mod demo;
pub mod http;
pub mod jobs;
pub mod lifecycle;
pub mod metrics;
pub mod on_demand;
pub mod outbound;
pub mod ratelimit;
pub mod secrets;
pub mod state;
pub mod store;
pub mod worker;
