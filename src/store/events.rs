//! The job log: what happened to a job, in order.

use serde::Serialize;

use super::db::query;
use super::{Store, StoreResult};

/// One line of a job's log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobEvent {
    /// When.
    pub at: String,
    /// `info`, `warn` or `error`.
    pub level: String,
    /// What happened.
    pub message: String,
}

impl Store {
    /// Appends to a job's log.
    pub async fn add_event(&self, job_id: i64, level: &str, message: &str) -> StoreResult<()> {
        Self::add_event_in(&self.pool, job_id, level, message, &self.now()).await
    }

    pub(super) async fn add_event_in<'c>(
        on: impl Into<super::db::On<'c>>,
        job_id: i64,
        level: &str,
        message: &str,
        now: &str,
    ) -> StoreResult<()> {
        query("INSERT INTO job_events (job_id, at, level, message) VALUES ($1, $2, $3, $4)")
            .bind(job_id)
            .bind(now)
            .bind(level)
            .bind(message)
            .execute(on)
            .await?;
        Ok(())
    }

    /// A job's log, oldest first.
    pub async fn events(&self, job_id: i64) -> StoreResult<Vec<JobEvent>> {
        let rows = query("SELECT at, level, message FROM job_events WHERE job_id = $1 ORDER BY id")
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| JobEvent {
                at: r.get("at"),
                level: r.get("level"),
                message: r.get("message"),
            })
            .collect())
    }
}
