//! The job worker: claims jobs with a lease, runs their algorithms through
//! the engine, stores each run as it finishes, and settles the job.
//!
//! A job is claimed by writing a lease (owner + expiry) on it; the worker
//! renews the lease while it works. A worker that dies stops renewing, its
//! lease expires, and any worker picks the job up again: runs already
//! completed are kept, the rest run (a run is only ever stored as completed
//! once; see `Store::finish_run`).
//!
//! When no interactive job waits, the worker takes batch work (a backfill's
//! child jobs, chunks of experiments and backfills; see [`crate::batch`]),
//! with at most half its slots, so an interactive job never waits for a batch.

use std::sync::Arc;
use std::time::Duration;

use gensail_host_api::Transcript;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::batch;
use crate::clock;
use crate::state::AppState;
use crate::store::ClaimedJob;

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's name in leases.
    pub id: String,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// How often to look for work (and for expired leases) when not woken.
    pub poll_interval: Duration,
    /// Jobs worked on at once (their runs share the engine's concurrency bound).
    pub max_jobs: usize,
    /// How long shutdown waits for jobs in flight before releasing them.
    pub shutdown_grace: Duration,
    /// Leases a job may lose (its worker died mid-run) before its unfinished
    /// runs fail with `lost_lease` instead of being run again.
    pub max_lost_leases: i64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            id: format!(
                "worker-{}-{}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 4]>())
            ),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            max_jobs: 2 * std::thread::available_parallelism().map_or(2, |n| n.get()),
            shutdown_grace: Duration::from_secs(30),
            max_lost_leases: 3,
        }
    }
}

/// The worker loop.
pub struct Worker {
    state: AppState,
    config: Arc<WorkerConfig>,
}

impl Worker {
    /// A worker over the shared state.
    pub fn new(state: AppState, config: WorkerConfig) -> Self {
        Self {
            state,
            config: Arc::new(config),
        }
    }

    fn lease_until(&self) -> String {
        lease_until(&self.state, &self.config)
    }

    /// Claims and processes jobs until `stop` turns true; then waits up to the
    /// grace period for jobs in flight and releases the leases of the rest.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.config.max_jobs.max(1)));
        let batch_slots = Arc::new(Semaphore::new(batch_share(self.config.max_jobs)));
        let mut tasks: JoinSet<i64> = JoinSet::new();
        let mut in_flight: Vec<i64> = Vec::new();
        let mut backoff = CLAIM_BACKOFF_START;
        while !*stop.borrow() {
            let mut interactive_idle = false;
            while let Ok(permit) = slots.clone().try_acquire_owned() {
                match self.state.store.claim_job(&self.config.id, &self.lease_until()).await {
                    Ok(Some(claimed)) => {
                        in_flight.push(claimed.job.job_id);
                        let (state, config) = (self.state.clone(), self.config.clone());
                        tasks.spawn(async move {
                            let id = claimed.job.job_id;
                            process(&state, &config, claimed).await;
                            drop(permit);
                            id
                        });
                    }
                    Ok(None) => {
                        backoff = CLAIM_BACKOFF_START;
                        interactive_idle = true;
                        break;
                    }
                    Err(e) => {
                        // A database that cannot write (a full disk) fails every
                        // claim: wait, longer each time, instead of retrying at
                        // every wake-up.
                        tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot claim jobs");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stop.changed() => {}
                        }
                        backoff = (backoff * 2).min(CLAIM_BACKOFF_MAX);
                        break;
                    }
                }
            }
            // Batch work only when no interactive job waits, and at most its share of the slots.
            while interactive_idle && !*stop.borrow() {
                let Ok(batch) = batch_slots.clone().try_acquire_owned() else {
                    break;
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    break;
                };
                match self.claim_batch().await {
                    Ok(Some(work)) => {
                        if let BatchWork::Job(claimed) = &work {
                            in_flight.push(claimed.job.job_id);
                        }
                        let (state, config) = (self.state.clone(), self.config.clone());
                        tasks.spawn(async move {
                            let id = work.run(&state, &config).await;
                            drop((permit, batch));
                            id
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot claim batch work");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = self.state.work_available.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = stop.changed() => {}
                Some(done) = tasks.join_next() => {
                    if let Ok(id) = done { in_flight.retain(|j| *j != id); }
                }
            }
        }
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            while let Some(done) = tasks.join_next().await {
                if let Ok(id) = done {
                    in_flight.retain(|j| *j != id);
                }
            }
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
            for job_id in &in_flight {
                // Give the job back so another worker takes it at once.
                let _ = self.state.store.release_lease(*job_id, &self.config.id).await;
                tracing::warn!(job_id, "released unfinished job at shutdown");
            }
        }
    }
}

impl Worker {
    /// The next batch work: a backfill's child job, else a chunk of an
    /// experiment's calls, else a chunk of a backfill's calls.
    async fn claim_batch(&self) -> Result<Option<BatchWork>, crate::store::StoreError> {
        let (store, worker, lease) = (&self.state.store, &self.config.id, self.lease_until());
        if let Some(job) = store.claim_batch_job(worker, &lease).await? {
            return Ok(Some(BatchWork::Job(Box::new(job))));
        }
        if let Some(chunk) = store.claim_experiment_items(worker, &lease, batch::CHUNK).await? {
            return Ok(Some(BatchWork::Experiment(Box::new(chunk))));
        }
        Ok(store
            .claim_backfill_items(worker, &lease, batch::CHUNK)
            .await?
            .map(|chunk| BatchWork::Backfill(Box::new(chunk))))
    }
}

/// Slots batch work may hold: half the worker's, at least one, so an
/// interactive job always finds a free slot while a batch runs.
fn batch_share(max_jobs: usize) -> usize {
    (max_jobs / 2).max(1)
}

/// One piece of batch work a worker took.
enum BatchWork {
    /// A backfill's child job.
    Job(Box<ClaimedJob>),
    /// Calls of an experiment.
    Experiment(Box<crate::store::ExperimentChunk>),
    /// Calls of a backfill.
    Backfill(Box<crate::store::BackfillChunk>),
}

impl BatchWork {
    /// Does the work; returns the job ID it held, if any (0 otherwise).
    async fn run(self, state: &AppState, config: &WorkerConfig) -> i64 {
        match self {
            Self::Job(claimed) => {
                let id = claimed.job.job_id;
                process(state, config, *claimed).await;
                id
            }
            Self::Experiment(chunk) => {
                batch::experiments::process(state, &config.id, *chunk).await;
                0
            }
            Self::Backfill(chunk) => {
                batch::backfills::process(state, &config.id, *chunk).await;
                0
            }
        }
    }
}

/// The first wait after a failed claim; it doubles up to [`CLAIM_BACKOFF_MAX`].
const CLAIM_BACKOFF_START: Duration = Duration::from_millis(250);
/// The longest wait between failed claims.
const CLAIM_BACKOFF_MAX: Duration = Duration::from_secs(8);

fn lease_until(state: &AppState, config: &WorkerConfig) -> String {
    let lease = chrono::Duration::from_std(config.lease).unwrap_or(chrono::Duration::seconds(30));
    clock::format(state.store.clock().now() + lease)
}

/// Runs a claimed job's remaining runs concurrently and settles the job.
async fn process(state: &AppState, config: &WorkerConfig, claimed: ClaimedJob) {
    let job_id = claimed.job.job_id;
    if claimed.lost_leases >= config.max_lost_leases {
        return give_up_lost(state, config, claimed).await;
    }
    let heartbeat = {
        let (state, config) = (state.clone(), config.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(config.lease / 3).await;
                match state
                    .store
                    .renew_lease(job_id, &config.id, &lease_until(&state, &config))
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => tracing::warn!(job_id, error = %e, "cannot renew lease"),
                }
            }
        })
    };
    let transcript = match &claimed.job.transcript_sha256 {
        Some(sha) => state.store.transcript(sha).await.ok(),
        None => None,
    };
    let mut runs = JoinSet::new();
    for (run_id, algorithm_id, config_json) in claimed.runs {
        let (state, transcript) = (state.clone(), transcript.clone());
        runs.spawn(async move {
            execute_run(&state, job_id, run_id, &algorithm_id, &config_json, transcript.as_ref()).await
        });
    }
    while let Some(done) = runs.join_next().await {
        if let Err(e) = done {
            tracing::error!(job_id, error = %e, "run task failed");
        }
    }
    heartbeat.abort();
    settle(state, config, job_id).await;
}

/// Settles a job whose runs are done, and lets the delivery worker look at
/// once (runs of a delivering job wrote deliveries).
async fn settle(state: &AppState, config: &WorkerConfig, job_id: i64) {
    state.deliveries_due.notify_one();
    match state.store.finish_job(job_id, &config.id).await {
        Ok(Some(status)) => tracing::info!(job_id, status = %status, "job settled"),
        Ok(None) => tracing::warn!(job_id, "job not settled: runs left or lease lost"),
        Err(e) => tracing::error!(job_id, error = %e, "cannot settle job"),
    }
}

/// A job whose workers keep dying on it (a plugin that crashes the process,
/// say): its unfinished runs fail with `lost_lease`, delivered like any other
/// failure, and the job settles instead of crash-looping the next worker.
async fn give_up_lost(state: &AppState, config: &WorkerConfig, claimed: ClaimedJob) {
    let job_id = claimed.job.job_id;
    for (run_id, algorithm_id, _) in &claimed.runs {
        tracing::error!(
            job_id,
            run_id,
            algorithm_id,
            lost_leases = claimed.lost_leases,
            "run failed: its worker lost the lease {} times; not running it again",
            claimed.lost_leases
        );
        state.metrics.lost_lease(algorithm_id);
        let error = serde_json::json!({
            "kind": "lost_lease",
            "message": format!(
                "the run was abandoned: workers running it stopped {} times without finishing (the limit is {}); \
                 if the algorithm can crash the process, report it to its author",
                claimed.lost_leases, config.max_lost_leases
            ),
        });
        if let Err(e) = state.store.fail_run(*run_id, error).await {
            tracing::error!(job_id, run_id, error = %e, "cannot fail a lost run");
        }
    }
    settle(state, config, job_id).await;
}

async fn execute_run(
    state: &AppState,
    job_id: i64,
    run_id: i64,
    algorithm_id: &str,
    config_json: &str,
    transcript: Option<&Transcript>,
) {
    let store = &state.store;
    let outcome = async {
        let Some(transcript) = transcript else {
            store
                .fail_run(
                    run_id,
                    json!({"kind": "no_transcript", "message": "the job has no transcript"}),
                )
                .await?;
            return Ok::<_, crate::store::StoreError>(format!("{algorithm_id} failed: the job has no transcript"));
        };
        let Some(algorithm) = state.engine.registry().get(algorithm_id) else {
            let message = format!(
                "algorithm {algorithm_id} is not active on this server (disabled, or its version failed to load)"
            );
            store
                .fail_run(run_id, json!({"kind": "unavailable", "message": message}))
                .await?;
            return Ok(format!("{algorithm_id} failed: {message}"));
        };
        let report = state.engine.run_loaded(&algorithm, transcript, config_json).await;
        store.finish_run(run_id, &report).await?;
        state.metrics.record_run(&report);
        Ok(match &report.error {
            None => format!(
                "{algorithm_id} {} completed in {:.1} ms",
                report.version, report.wall_time_ms
            ),
            Some(e) => format!("{algorithm_id} {} failed: {e}", report.version),
        })
    }
    .await;
    match outcome {
        Ok(message) => {
            let level = if message.contains(" failed: ") { "warn" } else { "info" };
            if let Err(e) = store.add_event(job_id, level, &message).await {
                tracing::warn!(job_id, error = %e, "cannot write job event");
            }
        }
        Err(e) => tracing::error!(job_id, run_id, error = %e, "cannot store run"),
    }
}
