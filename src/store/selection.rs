//! Which stored calls an experiment or a backfill covers: the selection, and
//! the one statement that turns it into the batch's items.

use serde::{Deserialize, Serialize};

use super::db::{Conn, Row, Tx, query};
use super::experiments::Created;
use super::{Store, StoreResult, placeholders};
use crate::jobs::{BatchStatus, JobStatus};

/// Root jobs (one per call) of one workspace, newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Selection {
    /// The workspace.
    pub workspace_id: i64,
    /// Only jobs in these statuses (any when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<JobStatus>,
    /// Only jobs created at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only calls of this company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_company_id: Option<String>,
    /// Exactly these jobs (each must be a root job of the workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_ids: Option<Vec<i64>>,
    /// At most this many calls, as asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// How many items creating the batch inserts at most: `limit`, or when
    /// none was asked the operator's maximum plus one (a selection that
    /// reaches it is refused rather than cut).
    #[serde(skip)]
    pub cap: i64,
}

/// The table an item belongs to, and its batch column.
#[derive(Debug, Clone, Copy)]
pub(super) enum Items {
    /// `experiment_items`: calls with a transcript only (there is nothing to compare without).
    Experiment,
    /// `backfill_items`: every call; the backfill skips those `run-algorithms` would refuse.
    Backfill,
}

impl Items {
    /// The batch table: `experiments` or `backfills`.
    pub(super) fn batch_table(self) -> &'static str {
        self.names().1
    }

    /// (item table, batch table, the item's batch column, "not handled yet" on alias `x`).
    fn names(self) -> (&'static str, &'static str, &'static str, fn(&str) -> String) {
        match self {
            Self::Experiment => ("experiment_items", "experiments", "experiment_id", |x| {
                format!("{x}.done = 0")
            }),
            Self::Backfill => ("backfill_items", "backfills", "backfill_id", |x| {
                format!("{x}.outcome IS NULL")
            }),
        }
    }
}

impl Store {
    /// Leases up to `n` unhandled items (lease absent or expired) of the
    /// oldest queued or running batch that has some, marks the batch running,
    /// and returns its ID and the items' rows (`id`, `job_id`, and
    /// `returning`), oldest first.
    pub(super) async fn lease_items(
        &self,
        items: Items,
        returning: &str,
        worker: &str,
        lease_until: &str,
        n: i64,
    ) -> StoreResult<Option<(i64, Vec<Row>)>> {
        let (table, batches, column, open) = items.names();
        let now = self.now();
        let free = |x: &str| {
            format!(
                "{} AND ({x}.lease_expires_at IS NULL OR {x}.lease_expires_at < $3)",
                open(x)
            )
        };
        let sql = format!(
            "UPDATE {table} SET lease_owner = $1, lease_expires_at = $2
             WHERE id IN (
                 SELECT i.id FROM {table} i
                 WHERE i.{column} = (
                     SELECT b.id FROM {batches} b WHERE b.status IN ($4, $5)
                       AND EXISTS (SELECT 1 FROM {table} c WHERE c.{column} = b.id AND {})
                     ORDER BY b.id LIMIT 1)
                   AND {}
                 ORDER BY i.id LIMIT $6{})
             RETURNING id, {column}, job_id{returning}",
            free("c"),
            free("i"),
            self.skip_locked()
        );
        let mut tx = self.pool.begin().await?;
        let mut rows = query(&sql)
            .bind(worker)
            .bind(lease_until)
            .bind(&now)
            .bind(BatchStatus::Queued)
            .bind(BatchStatus::Running)
            .bind(n)
            .fetch_all(&mut *tx)
            .await?;
        let Some(batch_id) = rows.first().map(|r| r.get::<i64, _>(column)) else {
            return Ok(None);
        };
        query(&format!(
            "UPDATE {batches} SET status = $1, started_at = $2 WHERE id = $3 AND status = $4"
        ))
        .bind(BatchStatus::Running)
        .bind(&now)
        .bind(batch_id)
        .bind(BatchStatus::Queued)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.sort_by_key(|r| r.get::<i64, _>("id"));
        Ok(Some((batch_id, rows)))
    }
}

impl Store {
    /// Fills a batch just inserted in `tx` (row `id`): its items, then its
    /// total, and commits. A selection that cannot make a batch (no call,
    /// more than the maximum, a named job that is not one of its calls) is
    /// rolled back, and the answer says why.
    pub(super) async fn fill_batch<T>(
        mut tx: Tx,
        items: Items,
        id: i64,
        selection: &Selection,
    ) -> StoreResult<Option<Created<T>>> {
        let (table, batches, column, _) = items.names();
        let total = selection.insert_items(&mut tx, items, id).await?;
        let refused = if let Some(ids) = &selection.job_ids
            && (total as usize) < ids.len()
        {
            let found: Vec<i64> = query(&format!("SELECT job_id FROM {table} WHERE {column} = $1"))
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.get("job_id"))
                .collect();
            let mut missing: Vec<i64> = ids.iter().copied().filter(|j| !found.contains(j)).collect();
            missing.sort_unstable();
            missing.dedup();
            (!missing.is_empty()).then_some(Created::Missing(missing))
        } else {
            None
        };
        let refused = refused.or(if total == 0 {
            Some(Created::Empty)
        } else if selection.limit.is_none() && total as i64 >= selection.cap {
            Some(Created::OverMax)
        } else {
            None
        });
        if refused.is_some() {
            tx.rollback().await?;
            return Ok(refused);
        }
        query(&format!("UPDATE {batches} SET total = $1 WHERE id = $2"))
            .bind(total as i64)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(None)
    }
}

impl Selection {
    /// Inserts one item per selected call into the batch's item table and
    /// returns how many. At most `limit` rows are inserted.
    pub(super) async fn insert_items(&self, tx: &mut Conn, items: Items, batch_id: i64) -> StoreResult<u64> {
        let (table, column, extra, extra_value, transcript) = match items {
            Items::Experiment => (
                "experiment_items",
                "experiment_id",
                ", transcript_sha256",
                ", j.transcript_sha256",
                " AND j.transcript_sha256 IS NOT NULL",
            ),
            Items::Backfill => ("backfill_items", "backfill_id", "", "", ""),
        };
        let mut sql = format!(
            "INSERT INTO {table} ({column}, job_id{extra})
             SELECT $1, j.id{extra_value} FROM jobs j
             WHERE j.workspace_id = $2 AND j.parent_job_id IS NULL{transcript}"
        );
        let mut n = 3;
        if !self.status.is_empty() {
            sql.push_str(&format!(" AND j.status IN ({})", placeholders(n, self.status.len())));
            n += self.status.len();
        }
        if self.since.is_some() {
            sql.push_str(&format!(" AND j.created_at >= ${n}"));
            n += 1;
        }
        if self.source_company_id.is_some() {
            sql.push_str(&format!(" AND j.source_company_id = ${n}"));
            n += 1;
        }
        let ids = self.job_ids.as_deref().unwrap_or_default();
        if self.job_ids.is_some() {
            sql.push_str(&format!(" AND j.id IN ({})", placeholders(n, ids.len().max(1))));
            n += ids.len().max(1);
        }
        sql.push_str(&format!(" ORDER BY j.id DESC LIMIT ${n}"));
        let mut q = query(&sql).bind(batch_id).bind(self.workspace_id);
        for s in &self.status {
            q = q.bind(*s);
        }
        if let Some(since) = &self.since {
            q = q.bind(since.as_str());
        }
        if let Some(company) = &self.source_company_id {
            q = q.bind(company.as_str());
        }
        if self.job_ids.is_some() {
            if ids.is_empty() {
                q = q.bind(0_i64);
            }
            for id in ids {
                q = q.bind(*id);
            }
        }
        Ok(q.bind(self.cap).execute(&mut *tx).await?.rows_affected())
    }
}
