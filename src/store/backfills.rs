//! Backfills: `run-algorithms` over stored calls, server-side. Each selected
//! call is an item; handling it creates a child job (marked with the
//! backfill, so it is batch work) or records why none was needed.

use serde::Serialize;

use super::db::query;
use super::experiments::{Created, json_text};
use super::jobs::scope_condition;
use super::selection::{Items, Selection};
use super::{Scope, Store, StoreError, StoreResult, from_json};
use crate::jobs::{BackfillOutcome, BatchStatus, JobStatus};

/// A backfill to create.
#[derive(Debug, Clone)]
pub struct NewBackfill {
    /// What to run on each call.
    pub algorithm_ids: Vec<String>,
    /// The children's `analytics_only`.
    pub analytics_only: bool,
    /// Run even where the algorithms already ran.
    pub force_rerun: bool,
    /// The calls.
    pub selection: Selection,
    /// The key that created it.
    pub key_id: Option<i64>,
}

/// A backfill as stored, with its counts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BackfillRow {
    /// ID.
    pub backfill_id: i64,
    /// Its workspace.
    pub workspace_id: i64,
    /// Where it is (stored: queued, running, cancelled or failed; completed
    /// once every call is handled and every child job has finished).
    pub status: BatchStatus,
    /// What runs on each call.
    pub algorithm_ids: Vec<String>,
    /// The children's `analytics_only`.
    pub analytics_only: bool,
    /// Whether calls where the algorithms already ran get a child job too.
    pub force_rerun: bool,
    /// The calls it covers, as asked.
    pub selection: Selection,
    /// Calls selected.
    pub total: i64,
    /// Child jobs created.
    pub created: i64,
    /// Calls where every algorithm already ran.
    pub skipped_existing: i64,
    /// Calls `run-algorithms` refuses (no usable transcript, not finished, ...).
    pub skipped_invalid: i64,
    /// Child jobs that finished with every run completed.
    pub completed: i64,
    /// Child jobs that finished with a failed run (`failed` or `partial`).
    pub failed: i64,
    /// Created.
    pub created_at: String,
    /// A worker took its first call.
    pub started_at: Option<String>,
    /// Completed or cancelled.
    pub finished_at: Option<String>,
}

impl BackfillRow {
    /// Calls handled so far: skipped, or with a finished child job.
    pub fn handled(&self) -> i64 {
        self.skipped_existing + self.skipped_invalid + self.completed + self.failed
    }
}

/// A call of a claimed chunk.
#[derive(Debug, Clone)]
pub struct BackfillItem {
    /// The item.
    pub item_id: i64,
    /// The call's root job.
    pub job_id: i64,
}

/// A claimed chunk of one backfill's calls.
#[derive(Debug, Clone)]
pub struct BackfillChunk {
    /// The backfill.
    pub backfill: BackfillRow,
    /// Its calls, leased to the claiming worker.
    pub items: Vec<BackfillItem>,
}

/// A worker's hold on one backfill item, for the write that records its child job.
#[derive(Debug, Clone)]
pub struct BackfillClaim {
    /// The backfill.
    pub backfill_id: i64,
    /// The item.
    pub item_id: i64,
    /// The worker holding it.
    pub worker: String,
}

/// One call a backfill skipped and why, or the child job it created.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BackfillCall {
    /// The call's root job.
    pub job_id: i64,
    /// What the backfill did.
    pub outcome: BackfillOutcome,
    /// The child job, when one was created.
    pub child_job_id: Option<i64>,
    /// Why the call was skipped, for `skipped_invalid`.
    pub reason: Option<String>,
    /// The item (the cursor).
    #[serde(skip)]
    pub item_id: i64,
}

const BACKFILL_COUNTS: &str = "SELECT b.*,
    (SELECT COUNT(*) FROM backfill_items i WHERE i.backfill_id = b.id AND i.outcome = $2) AS created,
    (SELECT COUNT(*) FROM backfill_items i WHERE i.backfill_id = b.id AND i.outcome = $3) AS skipped_existing,
    (SELECT COUNT(*) FROM backfill_items i WHERE i.backfill_id = b.id AND i.outcome = $4) AS skipped_invalid,
    (SELECT COUNT(*) FROM jobs j WHERE j.backfill_id = b.id AND j.status = $5) AS completed,
    (SELECT COUNT(*) FROM jobs j WHERE j.backfill_id = b.id AND j.status IN ($6, $7)) AS failed
  FROM backfills b";

fn backfill(r: &super::Row) -> StoreResult<BackfillRow> {
    let mut row = BackfillRow {
        backfill_id: r.get("id"),
        workspace_id: r.get("workspace_id"),
        status: r.try_get("status")?,
        algorithm_ids: from_json(r.get::<&str, _>("algorithm_ids"))?,
        analytics_only: r.get::<i64, _>("analytics_only") != 0,
        force_rerun: r.get::<i64, _>("force_rerun") != 0,
        selection: from_json(r.get::<&str, _>("selection"))?,
        total: r.get("total"),
        created: r.get("created"),
        skipped_existing: r.get("skipped_existing"),
        skipped_invalid: r.get("skipped_invalid"),
        completed: r.get("completed"),
        failed: r.get("failed"),
        created_at: r.get("created_at"),
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
    };
    // Completion is a fact of the counts, not a stored move: the last child
    // job to finish completes the backfill without anyone writing to it.
    if row.status == BatchStatus::Running && row.handled() >= row.total {
        row.status = BatchStatus::Completed;
    }
    Ok(row)
}

impl Store {
    /// Creates a backfill and one item per selected call, in one transaction;
    /// nothing is written unless it has calls.
    pub async fn create_backfill(&self, new: &NewBackfill) -> StoreResult<Created<BackfillRow>> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let id: i64 = query(
            "INSERT INTO backfills (workspace_id, status, algorithm_ids, analytics_only, force_rerun, selection, total, created_by_key_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8) RETURNING id",
        )
        .bind(new.selection.workspace_id)
        .bind(BatchStatus::Queued)
        .bind(json_text(&new.algorithm_ids))
        .bind(i64::from(new.analytics_only))
        .bind(i64::from(new.force_rerun))
        .bind(json_text(&new.selection))
        .bind(new.key_id)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?
        .get("id");
        if let Some(refused) = Self::fill_batch(tx, Items::Backfill, id, &new.selection).await? {
            return Ok(refused);
        }
        Ok(Created::Created(self.backfill(id).await?))
    }

    /// `BACKFILL_COUNTS` with `$1` bound and its count parameters (`$2`–`$7`).
    fn counted(sql: &str, first: Option<i64>) -> super::db::Query<'_> {
        query(sql)
            .bind(first)
            .bind(BackfillOutcome::Created)
            .bind(BackfillOutcome::SkippedExisting)
            .bind(BackfillOutcome::SkippedInvalid)
            .bind(JobStatus::Completed)
            .bind(JobStatus::Failed)
            .bind(JobStatus::Partial)
    }

    /// One backfill with its counts.
    pub async fn backfill(&self, id: i64) -> StoreResult<BackfillRow> {
        let sql = format!("{BACKFILL_COUNTS} WHERE b.id = $1");
        let row = Self::counted(&sql, Some(id))
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("backfill"))?;
        backfill(&row)
    }

    /// Backfills a scope reaches, newest first, one page.
    pub async fn list_backfills(
        &self,
        scope: &Scope,
        workspace_id: Option<i64>,
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<BackfillRow>> {
        let sql = format!(
            "{BACKFILL_COUNTS} WHERE {} AND ($8 IS NULL OR b.workspace_id = $8) AND ($9 IS NULL OR b.id < $9)
             ORDER BY b.id DESC LIMIT $10",
            scope_condition(scope)
        );
        let rows = Self::counted(&sql, scope.id())
            .bind(workspace_id)
            .bind(before_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(backfill).collect()
    }

    /// Cancels a backfill: calls not yet handled are never handled; child
    /// jobs already created run on. False when it had already ended.
    pub async fn cancel_backfill(&self, id: i64) -> StoreResult<bool> {
        let row = self.backfill(id).await?;
        if row.status.is_final() {
            return Ok(false);
        }
        self.end_batch(Items::Backfill, id, BatchStatus::Cancelled, None).await
    }

    /// Leases up to `n` unhandled calls of the oldest queued or running
    /// backfill that has some, and marks it running.
    pub async fn claim_backfill_items(
        &self,
        worker: &str,
        lease_until: &str,
        n: i64,
    ) -> StoreResult<Option<BackfillChunk>> {
        let Some((id, rows)) = self.lease_items(Items::Backfill, "", worker, lease_until, n).await? else {
            return Ok(None);
        };
        let items = rows
            .iter()
            .map(|r| BackfillItem {
                item_id: r.get("id"),
                job_id: r.get("job_id"),
            })
            .collect();
        Ok(Some(BackfillChunk {
            backfill: self.backfill(id).await?,
            items,
        }))
    }

    /// Records a child job a backfill created, inside the transaction that
    /// created it; false when the worker no longer holds the item.
    pub(super) async fn record_backfill_child(
        tx: &mut super::Conn,
        claim: &BackfillClaim,
        child_id: i64,
    ) -> StoreResult<bool> {
        query("UPDATE jobs SET backfill_id = $1 WHERE id = $2")
            .bind(claim.backfill_id)
            .bind(child_id)
            .execute(&mut *tx)
            .await?;
        let changed = query(
            "UPDATE backfill_items SET outcome = $1, child_job_id = $2, lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $3 AND lease_owner = $4 AND outcome IS NULL",
        )
        .bind(BackfillOutcome::Created)
        .bind(child_id)
        .bind(claim.item_id)
        .bind(claim.worker.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Records a call a backfill skipped, and why.
    pub async fn skip_backfill_item(
        &self,
        claim: &BackfillClaim,
        outcome: BackfillOutcome,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        query(
            "UPDATE backfill_items SET outcome = $1, reason = $2, lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $3 AND lease_owner = $4 AND outcome IS NULL",
        )
        .bind(outcome)
        .bind(reason)
        .bind(claim.item_id)
        .bind(claim.worker.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A backfill's handled calls in item order, after `after` (a cursor), at most `limit`.
    pub async fn backfill_calls(&self, backfill_id: i64, after: i64, limit: i64) -> StoreResult<Vec<BackfillCall>> {
        let rows = query(
            "SELECT id, job_id, outcome, child_job_id, reason FROM backfill_items
             WHERE backfill_id = $1 AND outcome IS NOT NULL AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(backfill_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BackfillCall {
                    item_id: r.get("id"),
                    job_id: r.get("job_id"),
                    outcome: r.try_get("outcome")?,
                    child_job_id: r.get("child_job_id"),
                    reason: r.get("reason"),
                })
            })
            .collect()
    }
}
