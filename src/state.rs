//! What the HTTP handlers, the job worker, the delivery worker and the
//! algorithm lifecycle share: [`AppState`]. It imports only the parts below
//! it (store, engine, limits, metrics, secrets, outbound guard), so every
//! part can use it without importing the serve loop (`app.rs`).

use std::sync::Arc;

use gensail_engine::Engine;
use tokio::sync::Notify;

use crate::ratelimit::RateLimits;
use crate::store::Store;

/// What the handlers and the worker share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The wasmtime host with the loaded algorithms.
    pub engine: Engine,
    /// Per-key rate limits.
    pub rate_limits: RateLimits,
    /// Wakes the worker when work is created.
    pub work_available: Arc<Notify>,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Encrypts stored webhook secrets.
    pub secrets: crate::secrets::SecretBox,
    /// Checks webhook URLs against the address rules and allowlist.
    pub outbound: crate::outbound::OutboundGuard,
    /// Wakes the delivery worker when deliveries are written.
    pub deliveries_due: Arc<Notify>,
    /// Largest component a publish accepts.
    pub max_component_bytes: usize,
    /// Keys with a publish compiling now: one at a time per key, so one key
    /// cannot queue up the server's compiles.
    pub publishing_keys: Arc<dashmap::DashSet<i64>>,
    /// Most calls one experiment or backfill may select.
    pub max_batch_calls: i64,
    /// Versions experiments run that are not the active ones, loaded once
    /// per process, by component sha256.
    pub batch_versions: Arc<dashmap::DashMap<String, Arc<gensail_engine::LoadedAlgorithm>>>,
}

impl AppState {
    /// Tells the workers there is new work: this process's at once, other
    /// processes' through the database (PostgreSQL). Workers also poll, for
    /// leases that expire.
    pub fn wake_worker(&self) {
        self.work_available.notify_one();
        if self.store.backend() == crate::store::Backend::Postgres {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.announce_work().await {
                    tracing::warn!(error = %e, "cannot announce new work; workers will find it at their next poll");
                }
            });
        }
    }
}
