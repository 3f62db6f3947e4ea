//! The webhook outbox: one delivery per run of a job that delivers, written
//! with the run; claimed by the delivery worker with a lease; every attempt
//! recorded.

use serde::Serialize;

use super::db::query;
use super::{Entity, Store, StoreError, StoreResult};
use crate::jobs::{DeliveryStatus, JobStatus, transitions};

/// A delivery the worker holds.
#[derive(Debug, Clone)]
pub struct DeliveryWork {
    /// Row ID.
    pub id: i64,
    /// The stable delivery ID sent to the receiver.
    pub delivery_id: String,
    /// The job.
    pub job_id: i64,
    /// The run whose result is delivered.
    pub algorithm_run_id: i64,
    /// Whose endpoint.
    pub entity: Entity,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    /// 2xx.
    Delivered,
    /// Try again at this time.
    Retry(String),
    /// Gave up after the last attempt.
    Failed,
    /// The receiver answered 410 Gone: the endpoint is disabled.
    Disabled,
}

/// One attempt as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    /// When.
    pub at: String,
    /// The receiver's status code, if it answered.
    pub status_code: Option<i64>,
    /// How long the request took.
    pub latency_ms: Option<f64>,
    /// What went wrong.
    pub error: Option<String>,
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// The stable delivery ID (header `webhook-id`).
    pub delivery_id: String,
    /// The run delivered.
    pub algorithm_run_id: i64,
    /// Where the delivery is.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    /// The last status code.
    pub last_status_code: Option<i64>,
    /// The last error.
    pub last_error: Option<String>,
    /// Created with the run.
    pub created_at: String,
    /// Settled.
    pub finished_at: Option<String>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<AttemptView>,
}

impl Store {
    /// The nearest level (workspace, organization, partner) with a webhook endpoint.
    pub async fn nearest_endpoint(&self, workspace_id: i64) -> StoreResult<Option<Entity>> {
        let workspace = self.workspace(workspace_id).await?;
        for entity in [
            Entity::Workspace(workspace.id),
            Entity::Organization(workspace.organization_id),
            Entity::Partner(workspace.partner_id),
        ] {
            if self.endpoint(entity).await?.is_some() {
                return Ok(Some(entity));
            }
        }
        Ok(None)
    }

    /// Adds the delivery of a finished run when its job delivers (inside the run's transaction).
    pub(super) async fn enqueue_delivery(tx: &mut super::Conn, run_id: i64, now: &str) -> StoreResult<()> {
        let delivery_id = format!("dlv_{}", hex::encode(rand::random::<[u8; 16]>()));
        query(
            "INSERT INTO deliveries (delivery_id, job_id, algorithm_run_id, entity_type, entity_id, status, next_attempt_at, created_at)
             SELECT $1, j.id, r.id, j.webhook_entity_type, j.webhook_entity_id, $4, $2, $2
             FROM algorithm_runs r JOIN jobs j ON j.id = r.job_id
             WHERE r.id = $3 AND j.webhook_entity_type IS NOT NULL AND j.analytics_only = 0
             ON CONFLICT (algorithm_run_id, entity_type, entity_id) DO NOTHING",
        )
        .bind(delivery_id)
        .bind(now)
        .bind(run_id)
        .bind(DeliveryStatus::Pending)
        .execute(tx)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` due deliveries whose lease is absent or expired.
    pub async fn claim_deliveries(
        &self,
        worker: &str,
        lease_until: &str,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryWork>> {
        let now = self.now();
        let rows = query(&format!(
            "UPDATE deliveries SET lease_owner = $1, lease_expires_at = $2
             WHERE id IN (SELECT id FROM deliveries WHERE status = $5 AND next_attempt_at <= $3
                                 AND (lease_expires_at IS NULL OR lease_expires_at < $3) ORDER BY next_attempt_at LIMIT $4{})
             RETURNING id, delivery_id, job_id, algorithm_run_id, entity_type, entity_id, attempts",
            self.skip_locked()
        ))
        .bind(worker)
        .bind(lease_until)
        .bind(&now)
        .bind(limit)
        .bind(DeliveryStatus::Pending)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(DeliveryWork {
                    id: r.get("id"),
                    delivery_id: r.get("delivery_id"),
                    job_id: r.get("job_id"),
                    algorithm_run_id: r.get("algorithm_run_id"),
                    entity: Entity::parse(r.get("entity_type"), r.get("entity_id"))?,
                    attempts: r.get("attempts"),
                })
            })
            .collect())
    }

    /// Records an attempt and its outcome; when it settles the job's last
    /// pending delivery, the job leaves `publishing` for its analysis outcome.
    pub async fn record_attempt(
        &self,
        work: &DeliveryWork,
        status_code: Option<u16>,
        latency_ms: Option<f64>,
        error: Option<&str>,
        outcome: &AttemptOutcome,
    ) -> StoreResult<()> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        // The job leaves `publishing` below when no delivery is pending. The
        // worker settling the job decides `publishing` from the same rows, so
        // the two must not interleave: without the lock each could miss the
        // other's commit and leave the job publishing for good.
        self.lock_job(&mut tx, work.job_id).await?;
        let (status, next) = match outcome {
            AttemptOutcome::Delivered => (DeliveryStatus::Delivered, None),
            AttemptOutcome::Retry(at) => (DeliveryStatus::Pending, Some(at.as_str())),
            AttemptOutcome::Failed => (DeliveryStatus::Failed, None),
            AttemptOutcome::Disabled => (DeliveryStatus::Disabled, None),
        };
        // A claimed delivery is pending (a redeliver meanwhile keeps it so).
        transitions::check_delivery(DeliveryStatus::Pending, status)?;
        query(
            "UPDATE deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = COALESCE($2, next_attempt_at),
                 last_status_code = $3, last_error = $4, lease_owner = NULL, lease_expires_at = NULL, finished_at = $5
             WHERE id = $6",
        )
        .bind(status)
        .bind(next)
        .bind(status_code.map(i64::from))
        .bind(error)
        .bind((status != DeliveryStatus::Pending).then_some(&now))
        .bind(work.id)
        .execute(&mut *tx)
        .await?;
        query("INSERT INTO delivery_attempts (delivery_id, at, status_code, latency_ms, error) VALUES ($1, $2, $3, $4, $5)")
            .bind(work.id)
            .bind(&now)
            .bind(status_code.map(i64::from))
            .bind(latency_ms)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        if matches!(outcome, AttemptOutcome::Disabled) {
            query(
                "UPDATE webhook_endpoints SET disabled_at = $1, disabled_reason = 'the receiver answered 410 Gone' WHERE entity_type = $2 AND entity_id = $3",
            )
            .bind(&now)
            .bind(work.entity.type_name())
            .bind(work.entity.id())
            .execute(&mut *tx)
            .await?;
        }
        // One read after the lock: the job's status, its outcome, and whether
        // any of its deliveries is still pending.
        let job = query(
            "SELECT status, analysis_outcome,
                 (SELECT COUNT(*) FROM deliveries WHERE job_id = $1 AND status = $2) AS pending
             FROM jobs WHERE id = $1",
        )
        .bind(work.job_id)
        .bind(DeliveryStatus::Pending)
        .fetch_one(&mut *tx)
        .await?;
        let status: JobStatus = job.try_get("status")?;
        if status == JobStatus::Publishing && job.get::<i64, _>("pending") == 0 {
            let outcome: Option<JobStatus> = job.try_get("analysis_outcome")?;
            let outcome =
                outcome.ok_or_else(|| StoreError::Corrupt(format!("job {} publishes no outcome", work.job_id)))?;
            Self::move_job(&mut tx, work.job_id, JobStatus::Publishing, outcome, &now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Queues every delivery of a job again, keeping their delivery IDs (a
    /// replay); the job is `publishing` until they settle. Returns how many.
    pub async fn redeliver(&self, job_id: i64) -> StoreResult<u64> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        // Taken first, as when a delivery settles: the job's status is decided below.
        self.lock_job(&mut tx, job_id).await?;
        // Every status may go back to pending (a redeliver): the transition
        // table lists it, and its tests check that.
        let queued = query(
            "UPDATE deliveries SET status = $1, next_attempt_at = $2, lease_owner = NULL, lease_expires_at = NULL, finished_at = NULL
             WHERE job_id = $3",
        )
        .bind(DeliveryStatus::Pending)
        .bind(&now)
        .bind(job_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if queued > 0 {
            // A job whose analysis is over publishes again; one still
            // analyzing (or already publishing) publishes when it settles.
            let job = Self::job_in(&mut tx, job_id).await?;
            if job.status.analysis_done() {
                Self::move_job(&mut tx, job_id, job.status, JobStatus::Publishing, &now).await?;
            }
            Self::add_event_in(
                &mut tx,
                job_id,
                "info",
                &format!("{queued} webhook deliveries queued again (redeliver)"),
                &now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// Whether any of a job's deliveries is still pending (inside `tx`).
    pub(super) async fn has_pending_deliveries(tx: &mut super::Conn, job_id: i64) -> StoreResult<bool> {
        Ok(
            query("SELECT 1 FROM deliveries WHERE job_id = $1 AND status = $2 LIMIT 1")
                .bind(job_id)
                .bind(DeliveryStatus::Pending)
                .fetch_optional(&mut *tx)
                .await?
                .is_some(),
        )
    }

    /// A job's deliveries with their attempts.
    pub async fn deliveries_for_job(&self, job_id: i64) -> StoreResult<Vec<DeliveryView>> {
        let rows = query("SELECT * FROM deliveries WHERE job_id = $1 ORDER BY id")
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let attempts = query(
                "SELECT at, status_code, latency_ms, error FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
            )
            .bind(r.get::<i64, _>("id"))
            .fetch_all(&self.pool)
            .await?;
            let status: DeliveryStatus = r.try_get("status")?;
            out.push(DeliveryView {
                delivery_id: r.get("delivery_id"),
                algorithm_run_id: r.get("algorithm_run_id"),
                next_attempt_at: (status == DeliveryStatus::Pending).then(|| r.get("next_attempt_at")),
                status,
                attempts: r.get("attempts"),
                last_status_code: r.get("last_status_code"),
                last_error: r.get("last_error"),
                created_at: r.get("created_at"),
                finished_at: r.get("finished_at"),
                attempt_log: attempts
                    .iter()
                    .map(|a| AttemptView {
                        at: a.get("at"),
                        status_code: a.get("status_code"),
                        latency_ms: a.get("latency_ms"),
                        error: a.get("error"),
                    })
                    .collect(),
            });
        }
        Ok(out)
    }
}
