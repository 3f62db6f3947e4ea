//! Batch work over stored calls: experiments (two algorithm versions
//! compared call by call) and backfills (`run-algorithms` over history).
//!
//! Both are durable: a batch is a row and one item per selected call;
//! workers lease items in chunks, and an item's result is written only while
//! its worker still holds it and it is not done, so a restart or a killed
//! worker resumes where it was without counting a call twice. Batch work
//! yields to interactive work: the job worker takes a chunk only when it
//! found no interactive job, and never gives batches more than their share
//! of its slots (see `worker.rs`).
//!
//! # Layout
//! - [`compare`]: when two outputs agree, where they differ, the experiment summary.
//! - [`experiments`]: running a chunk of an experiment (memoized runs) and its summary.
//! - [`backfills`]: handling a chunk of a backfill through the `run-algorithms` use case.

pub mod backfills;
pub mod compare;
pub mod experiments;

use serde::Serialize;

/// Calls a worker leases at once: small enough that a chunk of ordinary runs
/// finishes well inside a lease, large enough that claiming, looking up
/// reusable runs and storing results cost little per call.
pub const CHUNK: i64 = 16;

/// How far a batch is, and how fast it goes.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Progress {
    /// Done / total, 0 to 1.
    pub progress: f64,
    /// Calls done per second since it started.
    pub rate_per_second: Option<f64>,
    /// Seconds left at that rate.
    pub eta_seconds: Option<f64>,
}

impl Progress {
    /// From the counts and the start time (RFC 3339), at `now`.
    pub fn new(total: i64, done: i64, started_at: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> Self {
        let progress = if total > 0 {
            (done as f64 / total as f64).min(1.0)
        } else {
            1.0
        };
        let elapsed = started_at
            .and_then(crate::clock::parse)
            .map(|start| (now - start).num_milliseconds() as f64 / 1000.0)
            .filter(|s| *s > 0.0);
        let rate = elapsed.filter(|_| done > 0).map(|s| done as f64 / s);
        Self {
            progress: (progress * 10_000.0).round() / 10_000.0,
            rate_per_second: rate.map(|r| (r * 100.0).round() / 100.0),
            eta_seconds: rate.map(|r| ((total - done).max(0) as f64 / r).round()),
        }
    }
}
