//! Jobs and child jobs: creation (with their pending runs, in one
//! transaction), reading, listing and lookup.

use gensail_host_api::Transcript;
use serde::Serialize;

use super::db::{query, query_scalar};
use super::{ExistingRun, Scope, Store, StoreError, StoreResult, from_json};
use crate::jobs::{JobKind, JobStatus, RunStatus, transitions};

/// A job as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobRow {
    /// ID.
    pub job_id: i64,
    /// The workspace it belongs to.
    pub workspace_id: i64,
    /// The job it was created from (child jobs).
    pub parent_job_id: Option<i64>,
    /// `ingest`, `on_demand` or `retry`.
    pub kind: JobKind,
    /// Lifecycle status.
    pub status: JobStatus,
    /// The algorithms this job runs.
    pub requested_algorithm_ids: Vec<String>,
    /// Whether webhook delivery is skipped.
    pub analytics_only: bool,
    /// The transcript's content hash.
    #[serde(skip)]
    pub transcript_sha256: Option<String>,
    /// The caller's call ID.
    pub source_call_id: Option<String>,
    /// The caller's company ID.
    pub source_company_id: Option<String>,
    /// Where the recording is.
    pub recording_url: Option<String>,
    /// When the call happened.
    pub contacted_at: Option<String>,
    /// Call length given at audio ingestion, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Why the job failed or was skipped.
    pub error: Option<String>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
    /// Reached a final status.
    pub completed_at: Option<String>,
}

fn job(r: &super::Row) -> StoreResult<JobRow> {
    Ok(JobRow {
        job_id: r.get("id"),
        workspace_id: r.get("workspace_id"),
        parent_job_id: r.get("parent_job_id"),
        kind: r.get("kind"),
        status: r.try_get("status")?,
        requested_algorithm_ids: from_json(r.get::<&str, _>("requested_algorithm_ids"))?,
        analytics_only: r.get::<i64, _>("analytics_only") != 0,
        transcript_sha256: r.get("transcript_sha256"),
        source_call_id: r.get("source_call_id"),
        source_company_id: r.get("source_company_id"),
        recording_url: r.get("recording_url"),
        contacted_at: r.get("contacted_at"),
        duration_seconds: r.get("duration_seconds"),
        error: r.get("error"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        completed_at: r.get("completed_at"),
    })
}

/// Where a new job's transcript comes from.
#[derive(Debug, Clone)]
pub enum TranscriptSource {
    /// None yet (an audio call waiting for its transcriber).
    None,
    /// A new transcript to store.
    New(Transcript),
    /// One already stored: a child job shares its parent's, so creating it
    /// costs the same whatever the transcript's size.
    Existing(String),
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The workspace.
    pub workspace_id: i64,
    /// The parent, for child jobs.
    pub parent_job_id: Option<i64>,
    /// `ingest`, `on_demand` or `retry`.
    pub kind: JobKind,
    /// Initial status (one of [`transitions::JOB_STARTS`]).
    pub status: JobStatus,
    /// The algorithms the job is for.
    pub algorithm_ids: Vec<String>,
    /// Pending runs to create with the job (none while it waits for a
    /// transcript or is skipped; they are created when it moves on).
    pub runs: Vec<NewRun>,
    /// Skip webhooks.
    pub analytics_only: bool,
    /// The transcript.
    pub transcript: TranscriptSource,
    /// The caller's call ID.
    pub source_call_id: Option<String>,
    /// The caller's company ID.
    pub source_company_id: Option<String>,
    /// Recording URL.
    pub recording_url: Option<String>,
    /// When the call happened.
    pub contacted_at: Option<String>,
    /// Call length, when known before a transcript.
    pub duration_seconds: Option<f64>,
    /// Why it was skipped, for jobs created `skipped`.
    pub error: Option<String>,
    /// First line of the job log.
    pub event: String,
}

/// A run to create with a job.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The algorithm.
    pub algorithm_id: String,
    /// The config it will run with (the workspace's, at creation time).
    pub config: serde_json::Value,
}

/// Filters of `GET /jobs`.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Statuses to include (any, when empty).
    pub statuses: Vec<JobStatus>,
    /// Created at or after.
    pub since: Option<String>,
    /// Children of this job only.
    pub parent_job_id: Option<i64>,
    /// Only jobs that are not child jobs (one per call).
    pub root_only: bool,
    /// One workspace only.
    pub workspace_id: Option<i64>,
    /// Jobs with a smaller ID than this (the cursor).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// The SQL condition for "a workspace the scope reaches", with the scope's ID as `$1`.
pub(super) fn scope_condition(scope: &Scope) -> &'static str {
    match scope {
        // A platform key has no scope ID: `$1` is NULL and every workspace matches.
        Scope::Platform => "$1 IS NULL",
        Scope::Partner(_) => {
            "workspace_id IN (SELECT w.id FROM workspaces w JOIN organizations o ON o.id = w.organization_id WHERE o.partner_id = $1)"
        }
        Scope::Organization(_) => "workspace_id IN (SELECT id FROM workspaces WHERE organization_id = $1)",
        Scope::Workspace(_) => "workspace_id = $1",
    }
}

impl Store {
    /// Creates a job with one pending run per algorithm, in one transaction.
    pub async fn create_job(&self, new: NewJob) -> StoreResult<JobRow> {
        let now = self.now();
        // Read before the transaction: a transaction that reads first cannot
        // always upgrade to a write under SQLite WAL.
        let webhook = if new.analytics_only {
            None
        } else {
            self.nearest_endpoint(new.workspace_id).await?
        };
        let mut tx = self.pool.begin().await?;
        let job_id = Self::insert_job(&mut tx, &new, webhook, &now).await?;
        tx.commit().await?;
        self.job(job_id).await
    }

    /// Writes a new job, its runs and its first log line inside `tx`.
    async fn insert_job(
        tx: &mut super::Conn,
        new: &NewJob,
        webhook: Option<super::Entity>,
        now: &str,
    ) -> StoreResult<i64> {
        let transcript_sha256 = match &new.transcript {
            TranscriptSource::None => None,
            TranscriptSource::New(t) => Some(Self::put_transcript(&mut *tx, t, now).await?),
            TranscriptSource::Existing(sha) => Some(sha.clone()),
        };
        transitions::check_job_start(new.status)?;
        let final_now = new.status.is_final().then_some(now);
        let job_id: i64 = query_scalar(
            "INSERT INTO jobs (workspace_id, parent_job_id, kind, status, requested_algorithm_ids, analytics_only, transcript_sha256,
                 source_call_id, source_company_id, recording_url, contacted_at, duration_seconds, error, created_at, updated_at, completed_at,
                 webhook_entity_type, webhook_entity_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16, $17) RETURNING id",
        )
        .bind(new.workspace_id)
        .bind(new.parent_job_id)
        .bind(new.kind)
        .bind(new.status)
        .bind(serde_json::to_string(&new.algorithm_ids).expect("strings serialize"))
        .bind(new.analytics_only as i64)
        .bind(&transcript_sha256)
        .bind(&new.source_call_id)
        .bind(&new.source_company_id)
        .bind(&new.recording_url)
        .bind(&new.contacted_at)
        .bind(new.duration_seconds)
        .bind(&new.error)
        .bind(now)
        .bind(final_now)
        .bind(webhook.map(|e| e.type_name()))
        .bind(webhook.map(|e| e.id()))
        .fetch_one(&mut *tx)
        .await?;
        Self::insert_runs(&mut *tx, job_id, &new.runs, now).await?;
        Self::add_event_in(&mut *tx, job_id, "info", &new.event, now).await?;
        Ok(job_id)
    }

    /// Creates a child job of `parent` in `analyzing` (see [`child_job`]).
    pub async fn create_child_job(
        &self,
        parent: &JobRow,
        kind: JobKind,
        runs: Vec<NewRun>,
        analytics_only: bool,
        event: String,
    ) -> StoreResult<JobRow> {
        self.create_job(child_job(parent, kind, runs, analytics_only, event)?)
            .await
    }

    /// The call's root job: `job_id` followed up through its parents (a
    /// job's parent never changes, so this needs no transaction).
    pub async fn root_job_id(&self, job_id: i64) -> StoreResult<i64> {
        query_scalar(
            "WITH RECURSIVE up(id, parent_job_id) AS (
                 SELECT id, parent_job_id FROM jobs WHERE id = $1
                 UNION ALL SELECT j.id, j.parent_job_id FROM jobs j JOIN up ON j.id = up.parent_job_id
             )
             SELECT id FROM up WHERE parent_job_id IS NULL",
        )
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("job"))
    }

    /// `run-algorithms` after its checks, as one transaction: unless
    /// `force_rerun`, it first locks the call's root job row (the statement
    /// that writes comes first: SQLite then holds its write lock, PostgreSQL
    /// the row lock, until commit), finds what already ran on the call, and
    /// creates the child job for the rest with the parent's log line. N
    /// identical requests at once give one child job; the others see it.
    /// `force_rerun` skips the check and takes no lock.
    pub async fn run_on_demand(
        &self,
        parent: &JobRow,
        runs: Vec<NewRun>,
        analytics_only: bool,
        force_rerun: bool,
        backfill: Option<&super::BackfillClaim>,
    ) -> StoreResult<OnDemand> {
        let root = self.root_job_id(parent.job_id).await?;
        let ids: Vec<String> = runs.iter().map(|r| r.algorithm_id.clone()).collect();
        // Reads before the transaction (see `create_job`).
        let webhook = if analytics_only {
            None
        } else {
            self.nearest_endpoint(parent.workspace_id).await?
        };
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let existing = if force_rerun {
            Vec::new()
        } else {
            query("UPDATE jobs SET updated_at = updated_at WHERE id = $1")
                .bind(root)
                .execute(&mut *tx)
                .await?;
            Self::existing_runs_in(&mut tx, root, &ids).await?
        };
        let to_run: Vec<NewRun> = runs
            .into_iter()
            .filter(|r| !existing.iter().any(|e| e.algorithm_id == r.algorithm_id))
            .collect();
        if to_run.is_empty() {
            tx.rollback().await?;
            return Ok(OnDemand::AlreadyRan(existing));
        }
        let names = to_run
            .iter()
            .map(|r| r.algorithm_id.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let event = format!("On-demand analysis job created from job {} for {names}", parent.job_id);
        let child = child_job(parent, JobKind::OnDemand, to_run, analytics_only, event)?;
        let child_id = Self::insert_job(&mut tx, &child, webhook, &now).await?;
        let line = format!("Child job {child_id} created to run {names}");
        Self::add_event_in(&mut tx, parent.job_id, "info", &line, &now).await?;
        if let Some(claim) = backfill {
            // The child and the backfill's record of it are one write: a
            // worker that dies between them cannot leave a call counted twice.
            if !Self::record_backfill_child(&mut tx, claim, child_id).await? {
                tx.rollback().await?;
                return Err(StoreError::Conflict(
                    "the backfill item is no longer held by this worker".into(),
                ));
            }
        }
        tx.commit().await?;
        Ok(OnDemand::Created {
            child: Box::new(self.job(child_id).await?),
            existing,
        })
    }
}

/// What `run-algorithms` did (see [`Store::run_on_demand`]).
#[derive(Debug)]
pub enum OnDemand {
    /// Every requested algorithm already ran on the call: no child job.
    AlreadyRan(Vec<ExistingRun>),
    /// A child job runs the rest; `existing` lists the requested algorithms
    /// that already ran and are not run again.
    Created {
        /// The child job.
        child: Box<JobRow>,
        /// What was skipped.
        existing: Vec<ExistingRun>,
    },
}

/// A child job of `parent` in `analyzing`: same workspace, the parent's
/// transcript (shared, not copied) and source references, its own
/// `analytics_only`.
fn child_job(
    parent: &JobRow,
    kind: JobKind,
    runs: Vec<NewRun>,
    analytics_only: bool,
    event: String,
) -> StoreResult<NewJob> {
    let transcript = parent
        .transcript_sha256
        .clone()
        .ok_or(StoreError::NotFound("transcript"))?;
    Ok(NewJob {
        workspace_id: parent.workspace_id,
        parent_job_id: Some(parent.job_id),
        kind,
        status: JobStatus::Analyzing,
        algorithm_ids: runs.iter().map(|r| r.algorithm_id.clone()).collect(),
        runs,
        analytics_only,
        transcript: TranscriptSource::Existing(transcript),
        source_call_id: parent.source_call_id.clone(),
        source_company_id: parent.source_company_id.clone(),
        recording_url: parent.recording_url.clone(),
        contacted_at: parent.contacted_at.clone(),
        duration_seconds: None,
        error: None,
        event,
    })
}

impl Store {
    async fn insert_runs(tx: &mut super::Conn, job_id: i64, runs: &[NewRun], now: &str) -> StoreResult<()> {
        for run in runs {
            let config = run.config.to_string();
            query(
                "INSERT INTO algorithm_runs (job_id, algorithm_id, status, config, config_sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(job_id)
            .bind(&run.algorithm_id)
            .bind(RunStatus::Pending)
            .bind(&config)
            .bind(super::config_sha256(&run.config))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Moves a job `from` → `to` inside `tx`: the one place a job's status
    /// changes after it is created. A move the table does not list is refused
    /// and nothing is written; the write happens only while the job is still
    /// `from`, so of two racing requests one moves it and the other gets
    /// `false`. `completed_at` is stamped when `to` is final, cleared otherwise.
    pub(super) async fn move_job(
        tx: &mut super::Conn,
        job_id: i64,
        from: JobStatus,
        to: JobStatus,
        now: &str,
    ) -> StoreResult<bool> {
        Self::move_job_recording(tx, job_id, from, to, None, now).await
    }

    /// [`Store::move_job`], recording in the same write the outcome of the
    /// job's analysis (and the error that goes with it), so settling a job
    /// costs one statement less.
    pub(super) async fn move_job_recording(
        tx: &mut super::Conn,
        job_id: i64,
        from: JobStatus,
        to: JobStatus,
        analysis: Option<(JobStatus, Option<&str>)>,
        now: &str,
    ) -> StoreResult<bool> {
        transitions::check_job(from, to)?;
        let changed = query(
            "UPDATE jobs SET status = $1, updated_at = $2, completed_at = $3,
                 analysis_outcome = COALESCE($6, analysis_outcome), error = COALESCE($7, error)
             WHERE id = $4 AND status = $5",
        )
        .bind(to)
        .bind(now)
        .bind(to.is_final().then_some(now))
        .bind(job_id)
        .bind(from)
        .bind(analysis.map(|(outcome, _)| outcome))
        .bind(analysis.and_then(|(_, error)| error))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Moves a job waiting for a transcript (or a requeued skipped job) on to
    /// analysis: attaches the transcript if one is given, creates its pending
    /// runs, sets the status. Only from `from`, so two racing requests
    /// cannot both succeed.
    pub async fn start_analysis(
        &self,
        job_id: i64,
        from: JobStatus,
        transcript: Option<&Transcript>,
        runs: &[NewRun],
        event: &str,
    ) -> StoreResult<bool> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        if !Self::move_job(&mut tx, job_id, from, JobStatus::Analyzing, &now).await? {
            return Ok(false);
        }
        let sha = match transcript {
            Some(t) => Some(Self::put_transcript(&mut tx, t, &now).await?),
            None => None,
        };
        query("UPDATE jobs SET transcript_sha256 = COALESCE($1, transcript_sha256), error = NULL WHERE id = $2")
            .bind(sha)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        query("DELETE FROM algorithm_runs WHERE job_id = $1 AND status = $2")
            .bind(job_id)
            .bind(RunStatus::Pending)
            .execute(&mut *tx)
            .await?;
        Self::insert_runs(&mut tx, job_id, runs, &now).await?;
        Self::add_event_in(&mut tx, job_id, "info", event, &now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves a job outside the worker (requeueing a skipped job to
    /// transcription, or keeping it skipped with a new reason), with its log line.
    pub async fn set_job_status(
        &self,
        job_id: i64,
        from: JobStatus,
        to: JobStatus,
        error: Option<&str>,
        event: &str,
    ) -> StoreResult<bool> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        if !Self::move_job(&mut tx, job_id, from, to, &now).await? {
            return Ok(false);
        }
        query("UPDATE jobs SET error = $1 WHERE id = $2")
            .bind(error)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        let level = if to == JobStatus::Skipped { "warn" } else { "info" };
        Self::add_event_in(&mut tx, job_id, level, event, &now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// How many jobs are in each status.
    pub async fn job_counts(&self) -> StoreResult<Vec<(JobStatus, i64)>> {
        let rows = query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("status")?, r.get("n")))).collect()
    }

    /// A job by ID.
    pub async fn job(&self, id: i64) -> StoreResult<JobRow> {
        Self::job_in(&self.pool, id).await
    }

    /// A job by ID, read inside a transaction.
    pub(super) async fn job_in<'c>(on: impl Into<super::db::On<'c>>, id: i64) -> StoreResult<JobRow> {
        let row = query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(on)
            .await?
            .ok_or(StoreError::NotFound("job"))?;
        job(&row)
    }

    /// IDs of a job's child jobs, oldest first.
    pub async fn child_job_ids(&self, id: i64) -> StoreResult<Vec<i64>> {
        let rows = query("SELECT id FROM jobs WHERE parent_job_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get("id")).collect())
    }

    /// Jobs a scope reaches, newest first, one page.
    pub async fn list_jobs(&self, scope: &Scope, filter: &JobFilter) -> StoreResult<Vec<JobRow>> {
        let mut sql = format!("SELECT * FROM jobs WHERE {}", scope_condition(scope));
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        let status_params: Vec<String> = filter.statuses.iter().map(|_| format!("${}", next())).collect();
        if !status_params.is_empty() {
            sql.push_str(&format!(" AND status IN ({})", status_params.join(", ")));
        }
        let since = filter.since.as_ref().map(|_| next());
        if let Some(p) = since {
            sql.push_str(&format!(" AND created_at >= ${p}"));
        }
        if let Some(p) = filter.parent_job_id.map(|_| next()) {
            sql.push_str(&format!(" AND parent_job_id = ${p}"));
        }
        if filter.root_only {
            sql.push_str(" AND parent_job_id IS NULL");
        }
        if let Some(p) = filter.workspace_id.map(|_| next()) {
            sql.push_str(&format!(" AND workspace_id = ${p}"));
        }
        if let Some(p) = filter.before_id.map(|_| next()) {
            sql.push_str(&format!(" AND id < ${p}"));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", next()));
        let mut query = query(&sql).bind(scope.id());
        for s in &filter.statuses {
            query = query.bind(*s);
        }
        if let Some(s) = &filter.since {
            query = query.bind(s);
        }
        if let Some(p) = filter.parent_job_id {
            query = query.bind(p);
        }
        if let Some(w) = filter.workspace_id {
            query = query.bind(w);
        }
        if let Some(b) = filter.before_id {
            query = query.bind(b);
        }
        let rows = query.bind(filter.limit).fetch_all(&self.pool).await?;
        rows.iter().map(job).collect()
    }

    /// Jobs a scope reaches with these source IDs, newest first.
    pub async fn lookup_jobs(
        &self,
        scope: &Scope,
        source_call_id: Option<&str>,
        source_company_id: Option<&str>,
    ) -> StoreResult<Vec<JobRow>> {
        let sql = format!(
            "SELECT * FROM jobs WHERE {} AND ($2 IS NULL OR source_call_id = $2) AND ($3 IS NULL OR source_company_id = $3) ORDER BY id DESC LIMIT 100",
            scope_condition(scope)
        );
        let rows = query(&sql)
            .bind(scope.id())
            .bind(source_call_id)
            .bind(source_company_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job).collect()
    }
}
