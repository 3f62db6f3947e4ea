//! Algorithm runs, and the worker's leased claims on jobs.

use gensail_engine::RunReport;
use serde::Serialize;

use super::db::query;
use super::{Backend, JobRow, Store, StoreError, StoreResult, from_json, placeholders};
use crate::jobs::{AlgorithmStatus, JobStatus, RunStatus, transitions};

/// A run as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunRow {
    /// ID.
    pub algorithm_run_id: i64,
    /// The job it belongs to.
    pub job_id: i64,
    /// The algorithm.
    pub algorithm_id: String,
    /// Where the run is.
    pub status: RunStatus,
    /// The exact version that ran.
    pub algorithm_version: Option<String>,
    /// sha256 of the component that ran.
    pub component_sha256: Option<String>,
    /// The config it ran with.
    pub config: serde_json::Value,
    /// sha256 of that config, to compare runs.
    pub config_sha256: String,
    /// The algorithm's output.
    pub result: Option<serde_json::Value>,
    /// Why it failed: `{kind, message, ...}`.
    pub error: Option<serde_json::Value>,
    /// Fuel consumed.
    pub fuel_consumed: Option<i64>,
    /// Wall time, ms.
    pub duration_ms: Option<f64>,
    /// Peak linear memory, bytes.
    pub peak_memory_bytes: Option<i64>,
    /// The run's log (plugin stdout, stderr and log lines).
    pub logs: Option<String>,
    /// Whether the log hit its limit.
    pub logs_truncated: Option<bool>,
    /// Created (with its job).
    pub created_at: String,
    /// Started.
    pub started_at: Option<String>,
    /// Finished.
    pub finished_at: Option<String>,
}

fn run(r: &super::Row) -> StoreResult<RunRow> {
    let json = |col: &str| r.get::<Option<&str>, _>(col).map(from_json).transpose();
    Ok(RunRow {
        algorithm_run_id: r.get("id"),
        job_id: r.get("job_id"),
        algorithm_id: r.get("algorithm_id"),
        status: r.try_get("status")?,
        algorithm_version: r.get("algorithm_version"),
        component_sha256: r.get("component_sha256"),
        config: from_json(r.get::<&str, _>("config"))?,
        config_sha256: r.get("config_sha256"),
        result: json("result")?,
        error: json("error")?,
        fuel_consumed: r.get("fuel_consumed"),
        duration_ms: r.get("duration_ms"),
        peak_memory_bytes: r.get("peak_memory_bytes"),
        logs: r.get("logs"),
        logs_truncated: r.get::<Option<i64>, _>("logs_truncated").map(|v| v != 0),
        created_at: r.get("created_at"),
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
    })
}

/// A run that makes a request idempotent (`existing_runs` in the API).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ExistingRun {
    /// The run.
    pub algorithm_run_id: i64,
    /// Its algorithm.
    pub algorithm_id: String,
    /// `completed`, `pending` or `running`.
    pub status: RunStatus,
    /// The job it belongs to (the call's root job or one below it).
    pub job_id: i64,
    /// The version that ran; null while pending or running.
    pub algorithm_version: Option<String>,
    /// The algorithm's active version now (null when disabled), so a client
    /// sees a result from an older version and can choose `force_rerun`.
    pub active_version: Option<String>,
}

/// A job a worker holds the lease on, with the runs still to do.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// The job.
    pub job: JobRow,
    /// Runs not completed yet: (run ID, algorithm, config JSON).
    pub runs: Vec<(i64, String, String)>,
    /// How many times a worker has lost its lease on this job, this claim
    /// included when it took the job from a worker whose lease expired.
    pub lost_leases: i64,
}

/// A job a worker may take (`j`; `$3` = now, `$4` = queued, `$5` =
/// analyzing) in one lane (`lane`: a condition on `backfill_id`): work
/// left, no live lease.
macro_rules! claimable {
    ($j:literal, $lane:literal) => {
        concat!(
            $j,
            ".status IN ($4, $5) AND (",
            $j,
            ".lease_expires_at IS NULL OR ",
            $j,
            ".lease_expires_at < $3) AND ",
            $j,
            ".backfill_id ",
            $lane
        )
    };
}

/// The fair choice (see [`Store::claim_job`]) in one lane: the workspace
/// with the fewest jobs under a live lease, then the oldest waiting job, then
/// that workspace's oldest claimable job. Each subquery is an index range on
/// `jobs(workspace_id, status, id)`, per workspace, so the cost follows the
/// number of workspaces, not the length of a backlog.
macro_rules! fair_claim {
    ($lane:literal) => {
        concat!(
            "SELECT j.id FROM jobs j WHERE j.workspace_id = (
                 SELECT w.id FROM workspaces w
                 WHERE EXISTS (SELECT 1 FROM jobs c WHERE c.workspace_id = w.id AND ",
            claimable!("c", $lane),
            ")
                 ORDER BY (SELECT COUNT(*) FROM jobs b WHERE b.workspace_id = w.id AND b.status = $5
                           AND b.lease_expires_at >= $3),
                          (SELECT MIN(c.id) FROM jobs c WHERE c.workspace_id = w.id AND ",
            claimable!("c", $lane),
            ")
                 LIMIT 1)
             AND ",
            claimable!("j", $lane),
            " ORDER BY j.id LIMIT 1"
        )
    };
}

/// The oldest claimable job of a lane in the deployment.
macro_rules! oldest_claim {
    ($lane:literal) => {
        concat!(
            "SELECT j.id FROM jobs j WHERE ",
            claimable!("j", $lane),
            " ORDER BY j.id LIMIT 1"
        )
    };
}

/// Which jobs a claim takes: interactive work (ingestion, `run-algorithms`,
/// retries) always before batch work (a backfill's child jobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Jobs a client is waiting for.
    Interactive,
    /// A backfill's child jobs.
    Batch,
}

impl Lane {
    /// The fair choice and the oldest-job fallback of this lane.
    fn choices(self) -> (&'static str, &'static str) {
        match self {
            Self::Interactive => (fair_claim!("IS NULL"), oldest_claim!("IS NULL")),
            Self::Batch => (fair_claim!("IS NOT NULL"), oldest_claim!("IS NOT NULL")),
        }
    }
}

impl Store {
    /// A job's runs, oldest first.
    pub async fn runs_for_job(&self, job_id: i64) -> StoreResult<Vec<RunRow>> {
        let rows = query("SELECT * FROM algorithm_runs WHERE job_id = $1 ORDER BY id")
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run).collect()
    }

    /// One run.
    pub async fn run(&self, id: i64) -> StoreResult<RunRow> {
        let row = query("SELECT * FROM algorithm_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("run"))?;
        run(&row)
    }

    /// Runs of these algorithms on a call (its root job and every job below
    /// it) that count as "already ran": completed, or still pending or
    /// running. Failed runs do not count. One per algorithm (the newest), in
    /// request order.
    pub(super) async fn existing_runs_in(
        tx: &mut super::Conn,
        root_job_id: i64,
        algorithm_ids: &[String],
    ) -> StoreResult<Vec<ExistingRun>> {
        let rows = query(
            "WITH RECURSIVE call_jobs(id) AS (
                 SELECT CAST($1 AS BIGINT)
                 UNION ALL SELECT j.id FROM jobs j JOIN call_jobs c ON j.parent_job_id = c.id
             )
             SELECT r.id, r.algorithm_id, r.status, r.job_id, r.algorithm_version,
                    CASE WHEN a.status = $3 THEN a.version END AS active_version
             FROM algorithm_runs r LEFT JOIN algorithms a ON a.id = r.algorithm_id
             WHERE r.job_id IN (SELECT id FROM call_jobs)
               AND r.status <> $2
             ORDER BY r.id DESC",
        )
        .bind(root_job_id)
        .bind(RunStatus::Failed)
        .bind(AlgorithmStatus::Active)
        .fetch_all(&mut *tx)
        .await?;
        let found = rows
            .iter()
            .map(|r| {
                let status: RunStatus = r.try_get("status")?;
                Ok(ExistingRun {
                    algorithm_run_id: r.get("id"),
                    algorithm_id: r.get("algorithm_id"),
                    algorithm_version: (status == RunStatus::Completed)
                        .then(|| r.get("algorithm_version"))
                        .flatten(),
                    status,
                    job_id: r.get("job_id"),
                    active_version: r.get("active_version"),
                })
            })
            .collect::<StoreResult<Vec<ExistingRun>>>()?;
        Ok(algorithm_ids
            .iter()
            .filter_map(|id| found.iter().find(|r| &r.algorithm_id == id).cloned())
            .collect())
    }

    /// Claims a job that has work and no live lease: `queued` or `analyzing`
    /// jobs whose lease is absent or expired (a dead worker's, counted in
    /// `lost_leases` and said in the job's log; a worker that stops cleanly
    /// releases its jobs instead). Its pending and running runs are marked
    /// running; completed and failed runs are final and stay as they are.
    ///
    /// Claims are fair across workspaces, deployment-wide: the job comes from
    /// the workspace with the fewest jobs under a live lease (on any worker),
    /// and among equals from the one whose oldest waiting job is oldest; within
    /// a workspace, jobs go oldest first. So one workspace's thousands of
    /// ingested calls take at most its share of the run slots while another
    /// workspace has work waiting. This claims interactive jobs only; a
    /// backfill's child jobs are [`Store::claim_batch_job`]'s.
    pub async fn claim_job(&self, worker: &str, lease_until: &str) -> StoreResult<Option<ClaimedJob>> {
        self.claim_in(worker, lease_until, Lane::Interactive).await
    }

    /// [`Store::claim_job`] for batch work: a backfill's child jobs, taken
    /// only when the worker found no interactive job.
    pub async fn claim_batch_job(&self, worker: &str, lease_until: &str) -> StoreResult<Option<ClaimedJob>> {
        self.claim_in(worker, lease_until, Lane::Batch).await
    }

    async fn claim_in(&self, worker: &str, lease_until: &str, lane: Lane) -> StoreResult<Option<ClaimedJob>> {
        let (fair, oldest) = lane.choices();
        let now = self.now();
        // One transaction: the lease, the job's move to analyzing, its log
        // line and its runs' move to running are taken together or not at all.
        let mut tx = self.pool.begin().await?;
        let mut claimed = self.claim_next(&mut tx, worker, lease_until, &now, fair).await?;
        // PostgreSQL: another worker may hold the lock on the fair choice (the
        // only waiting job of its workspace) for the moment of its own claim;
        // rather than idle, this worker takes the oldest job not locked.
        if claimed.is_none() && self.backend() == Backend::Postgres {
            claimed = self.claim_next(&mut tx, worker, lease_until, &now, oldest).await?;
        }
        let Some(row) = claimed else { return Ok(None) };
        let job_id: i64 = row.get("id");
        let lost_leases: i64 = row.get("lost_leases");
        let previous_owner: Option<String> = row.get("previous_lease_owner");
        if row.try_get::<JobStatus, _>("status")? == JobStatus::Queued {
            Self::move_job(&mut tx, job_id, JobStatus::Queued, JobStatus::Analyzing, &now).await?;
        }
        if let Some(previous) = previous_owner {
            let message = format!(
                "taken back by {worker} from {previous}, whose lease expired before it finished (lost lease {lost_leases}); \
                 completed and failed runs are kept, the rest run again"
            );
            Self::add_event_in(&mut tx, job_id, "warn", &message, &now).await?;
        }
        // Every run not yet final starts now (one write for all of them): a
        // run that completed or failed keeps its result, error and delivery.
        let sources = transitions::run_sources(RunStatus::Running);
        let sql = format!(
            "UPDATE algorithm_runs SET status = $1, started_at = $2, attempts = attempts + 1
             WHERE job_id = $3 AND status IN ({}) RETURNING id, algorithm_id, config",
            placeholders(4, sources.len())
        );
        let mut query = query(&sql).bind(RunStatus::Running).bind(&now).bind(job_id);
        for from in sources {
            query = query.bind(from);
        }
        let mut runs: Vec<(i64, String, String)> = query
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| (r.get("id"), r.get("algorithm_id"), r.get("config")))
            .collect();
        runs.sort_by_key(|r| r.0);
        let job = Self::job_in(&mut tx, job_id).await?;
        tx.commit().await?;
        Ok(Some(ClaimedJob { job, runs, lost_leases }))
    }

    /// One claim attempt: leases the job `choice` picks (SQL selecting one
    /// job ID, over the parameters `claimable!` names) to `worker`.
    async fn claim_next(
        &self,
        tx: &mut super::Conn,
        worker: &str,
        lease_until: &str,
        now: &str,
        choice: &str,
    ) -> StoreResult<Option<super::Row>> {
        // PostgreSQL: concurrent workers skip a job another is claiming instead
        // of both taking it; SQLite has one writer at a time and needs no lock.
        Ok(query(&format!(
            "UPDATE jobs SET lease_owner = $1, lease_expires_at = $2, updated_at = $3,
                 lost_leases = lost_leases + CASE WHEN lease_owner IS NULL THEN 0 ELSE 1 END,
                 previous_lease_owner = lease_owner
             WHERE id = ({choice}{})
             RETURNING id, status, lost_leases, previous_lease_owner",
            self.skip_locked()
        ))
        .bind(worker)
        .bind(lease_until)
        .bind(now)
        .bind(JobStatus::Queued)
        .bind(JobStatus::Analyzing)
        .fetch_optional(&mut *tx)
        .await?)
    }

    /// Gives a job back without losing the lease (a worker stopping cleanly):
    /// any worker takes it at once, and it does not count as a lost lease.
    pub async fn release_lease(&self, job_id: i64, worker: &str) -> StoreResult<()> {
        query("UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2")
            .bind(job_id)
            .bind(worker)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Extends a worker's lease; false when the lease was lost to another worker.
    pub async fn renew_lease(&self, job_id: i64, worker: &str, lease_until: &str) -> StoreResult<bool> {
        let changed = query("UPDATE jobs SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3")
            .bind(lease_until)
            .bind(job_id)
            .bind(worker)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(changed == 1)
    }

    /// Stores a run's report and, when the job delivers webhooks, its
    /// delivery, in one transaction (the outbox). A run already final (settled
    /// by a worker whose lease this one outlived) is left alone: no run is
    /// settled twice, and none gets a second delivery.
    pub async fn finish_run(&self, run_id: i64, report: &RunReport) -> StoreResult<bool> {
        let error = report
            .error
            .as_ref()
            .map(|e| serde_json::to_string(e).expect("errors serialize"));
        let now = self.now();
        let to = if report.error.is_none() {
            RunStatus::Completed
        } else {
            RunStatus::Failed
        };
        let sources = transitions::run_sources(to);
        let sql = format!(
            "UPDATE algorithm_runs SET status = $1, algorithm_version = $2, component_sha256 = $3, result = $4, error = $5,
                 fuel_consumed = $6, duration_ms = $7, peak_memory_bytes = $8, logs = $9, logs_truncated = $10, finished_at = $11
             WHERE id = $12 AND status IN ({})",
            placeholders(13, sources.len())
        );
        let mut tx = self.pool.begin().await?;
        let mut query = query(&sql)
            .bind(to)
            .bind(report.version.to_string())
            .bind(&report.component_sha256)
            .bind(report.output.as_ref().map(|o| o.to_string()))
            .bind(error)
            .bind(report.fuel_consumed as i64)
            .bind(report.wall_time_ms)
            .bind(report.peak_memory_bytes as i64)
            .bind(&report.logs)
            .bind(report.logs_truncated as i64)
            .bind(&now)
            .bind(run_id);
        for from in sources {
            query = query.bind(from);
        }
        let changed = query.execute(&mut *tx).await?.rows_affected();
        Self::commit_settled_run(tx, run_id, changed == 1, &now).await
    }

    /// Fails a run the engine could not even start (its algorithm is not
    /// loaded); a failed run is delivered like any other.
    pub async fn fail_run(&self, run_id: i64, error: serde_json::Value) -> StoreResult<()> {
        let now = self.now();
        let sources = transitions::run_sources(RunStatus::Failed);
        let sql = format!(
            "UPDATE algorithm_runs SET status = $1, error = $2, finished_at = $3 WHERE id = $4 AND status IN ({})",
            placeholders(5, sources.len())
        );
        let mut tx = self.pool.begin().await?;
        let mut query = query(&sql)
            .bind(RunStatus::Failed)
            .bind(error.to_string())
            .bind(&now)
            .bind(run_id);
        for from in sources {
            query = query.bind(from);
        }
        let changed = query.execute(&mut *tx).await?.rows_affected();
        Self::commit_settled_run(tx, run_id, changed == 1, &now)
            .await
            .map(|_| ())
    }

    /// Ends the transaction that settled a run: a run that was settled now
    /// gets its webhook delivery in the same transaction (the outbox).
    async fn commit_settled_run(mut tx: super::db::Tx, run_id: i64, settled: bool, now: &str) -> StoreResult<bool> {
        if settled {
            Self::enqueue_delivery(&mut tx, run_id, now).await?;
        }
        tx.commit().await?;
        Ok(settled)
    }

    /// Settles a job whose runs are all done: `completed` when every run
    /// completed (or there were none), `failed` when none did, else `partial`.
    /// Releases the lease. Returns the final status, or `None` when runs are
    /// left or the lease passed to another worker.
    pub async fn finish_job(&self, job_id: i64, worker: &str) -> StoreResult<Option<JobStatus>> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        // One statement that writes first: SQLite takes the write lock here and
        // waits for it, instead of failing to upgrade a read snapshot.
        let sources = transitions::run_sources(RunStatus::Running);
        let sql = format!(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL, updated_at = $2
             WHERE id = $1 AND lease_owner = $3
               AND NOT EXISTS (SELECT 1 FROM algorithm_runs WHERE job_id = $1 AND status IN ({}))
             RETURNING status,
                 (SELECT COUNT(*) FROM algorithm_runs WHERE job_id = $1) AS total,
                 (SELECT COUNT(*) FROM algorithm_runs WHERE job_id = $1 AND status = $4) AS failed",
            placeholders(5, sources.len())
        );
        // Runs still to do are those a claim would start: the ones that may become running.
        let mut release = query(&sql).bind(job_id).bind(&now).bind(worker).bind(RunStatus::Failed);
        for from in sources {
            release = release.bind(from);
        }
        let Some(row) = release.fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        let (from, total, failed): (JobStatus, i64, i64) =
            (row.try_get("status")?, row.get("total"), row.get("failed"));
        let outcome = JobStatus::outcome(total, failed);
        // While webhook deliveries are pending the job is `publishing`; the
        // delivery worker sets the outcome when the last one settles.
        let status = if Self::has_pending_deliveries(&mut tx, job_id).await? {
            JobStatus::Publishing
        } else {
            outcome
        };
        let error = (outcome == JobStatus::Failed).then_some("every algorithm run failed");
        Self::move_job_recording(&mut tx, job_id, from, status, Some((outcome, error)), &now).await?;
        let message = format!(
            "{outcome}: {} of {total} runs completed, {failed} failed (worker {worker})",
            total - failed
        );
        Self::add_event_in(
            &mut tx,
            job_id,
            if failed > 0 { "warn" } else { "info" },
            &message,
            &now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(status))
    }
}
