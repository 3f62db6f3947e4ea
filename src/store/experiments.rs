//! Experiments: two algorithm versions run over stored calls, their runs kept
//! against the experiment (never a job's), and each call's pair of outcomes.

use gensail_engine::RunReport;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::db::query;
use super::jobs::scope_condition;
use super::selection::{Items, Selection};
use super::{Scope, Store, StoreError, StoreResult, from_json, placeholders};
use crate::jobs::{BatchStatus, RunStatus};

/// One side of an experiment, fixed when it is created: the exact
/// component and config every call runs with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Side {
    /// The algorithm ID.
    pub algorithm_id: String,
    /// Its version.
    pub version: String,
    /// sha256 of the component.
    pub component_sha256: String,
    /// The config it runs with.
    pub config: Value,
    /// sha256 of that config.
    pub config_sha256: String,
}

/// An experiment to create.
#[derive(Debug, Clone)]
pub struct NewExperiment {
    /// What the client calls it.
    pub name: String,
    /// The version compared against.
    pub baseline: Side,
    /// The version under test.
    pub candidate: Side,
    /// JSON pointers compared (empty: the whole output).
    pub compare: Vec<String>,
    /// The calls.
    pub selection: Selection,
    /// The key that created it.
    pub key_id: Option<i64>,
}

/// An experiment as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExperimentRow {
    /// ID.
    pub experiment_id: i64,
    /// Its workspace.
    pub workspace_id: i64,
    /// What the client calls it.
    pub name: String,
    /// Where it is.
    pub status: BatchStatus,
    /// The version compared against.
    pub baseline: Side,
    /// The version under test.
    pub candidate: Side,
    /// JSON pointers compared (empty: the whole output).
    pub compare: Vec<String>,
    /// The calls it covers, as asked.
    pub selection: Selection,
    /// Calls selected.
    pub total: i64,
    /// Calls with both sides done.
    pub done: i64,
    /// Calls where at least one side failed.
    pub failed: i64,
    /// Runs reused from earlier runs of the same component, config and transcript.
    pub memoized: i64,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Created.
    pub created_at: String,
    /// A worker took its first call.
    pub started_at: Option<String>,
    /// Completed, cancelled or failed.
    pub finished_at: Option<String>,
    /// The summary written when it completed.
    #[serde(skip)]
    pub summary: Option<Value>,
}

fn experiment(r: &super::Row) -> StoreResult<ExperimentRow> {
    let json = |col: &str| from_json::<Value>(r.get::<&str, _>(col));
    Ok(ExperimentRow {
        experiment_id: r.get("id"),
        workspace_id: r.get("workspace_id"),
        name: r.get("name"),
        status: r.try_get("status")?,
        baseline: serde_json::from_value(json("baseline")?).map_err(corrupt)?,
        candidate: serde_json::from_value(json("candidate")?).map_err(corrupt)?,
        compare: serde_json::from_value(json("compare")?).map_err(corrupt)?,
        selection: serde_json::from_value(json("selection")?).map_err(corrupt)?,
        total: r.get("total"),
        done: r.get("done"),
        failed: r.get("failed"),
        memoized: r.get("memoized"),
        error: r.get("error"),
        created_at: r.get("created_at"),
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
        summary: r.get::<Option<&str>, _>("summary").map(from_json).transpose()?,
    })
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Where a run an experiment used is stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunSource {
    /// An experiment's own run (`experiment_runs`).
    Experiment,
    /// A production run of a job (`algorithm_runs`), reused.
    Production,
}

/// One side's outcome on one call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SideOutcome {
    /// Where its run is stored.
    pub run_source: RunSource,
    /// That run's ID.
    pub run_id: i64,
    /// `completed` or `failed`.
    pub status: RunStatus,
    /// Reused from an earlier run of the same component, config and transcript.
    pub memoized: bool,
    /// The output, when it completed.
    pub output: Option<Value>,
    /// Why it failed: `{kind, message, ...}`.
    pub error: Option<Value>,
    /// Fuel consumed.
    pub fuel_consumed: i64,
    /// Wall time, ms.
    pub duration_ms: f64,
}

impl SideOutcome {
    /// Whether it completed.
    pub fn completed(&self) -> bool {
        self.status == RunStatus::Completed
    }
}

/// One side's result before it is stored: reused, or run now.
#[derive(Debug)]
pub enum SideResult {
    /// A stored run of the same component, config and transcript.
    Reused(SideOutcome),
    /// A run made now, to be stored against the experiment.
    Ran(Box<RunReport>),
}

/// A call of a claimed chunk.
#[derive(Debug, Clone)]
pub struct ExperimentItem {
    /// The item.
    pub item_id: i64,
    /// The call's root job.
    pub job_id: i64,
    /// Its transcript.
    pub transcript_sha256: String,
}

/// A call's pair of outcomes, as `/results` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemRow {
    /// The item (the results' cursor).
    #[serde(skip)]
    pub item_id: i64,
    /// The call's root job.
    pub job_id: i64,
    /// The call's ID in the source system.
    pub source_call_id: Option<String>,
    /// The baseline's outcome.
    pub baseline: SideOutcome,
    /// The candidate's outcome.
    pub candidate: SideOutcome,
    /// Compared pointers whose values differ; null unless both completed.
    pub differing_paths: Option<Vec<String>>,
}

impl ItemRow {
    /// Both sides completed and every compared path agrees.
    pub fn agrees(&self) -> bool {
        self.differing_paths.as_ref().is_some_and(Vec::is_empty)
    }
}

/// A claimed chunk of one experiment's calls.
#[derive(Debug, Clone)]
pub struct ExperimentChunk {
    /// The experiment.
    pub experiment: ExperimentRow,
    /// Its calls, leased to the claiming worker.
    pub items: Vec<ExperimentItem>,
}

/// What creating a batch did.
#[derive(Debug)]
pub enum Created<T> {
    /// Created, with its calls.
    Created(T),
    /// The selection has no call.
    Empty,
    /// The selection has more calls than the limit (no `limit` was asked).
    OverMax,
    /// These named jobs are not root jobs of the workspace (with a transcript, for an experiment).
    Missing(Vec<i64>),
}

/// Run error kinds that follow from the component, config and transcript
/// alone, so a stored run that failed with one is reused like a completed
/// run. Timeouts, memory limits and host errors depend on the machine and
/// the moment, and are always run again.
const REUSABLE_ERRORS: &[&str] = &[
    "algorithm_error",
    "trap",
    "invalid_output",
    "output_too_large",
    "guest_fault",
];

impl Store {
    /// Creates an experiment and one item per selected call, in one
    /// transaction; nothing is written unless it has calls.
    pub async fn create_experiment(&self, new: &NewExperiment) -> StoreResult<Created<ExperimentRow>> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let id: i64 = query(
            "INSERT INTO experiments (workspace_id, name, status, baseline, candidate, compare, selection, total, created_by_key_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9) RETURNING id",
        )
        .bind(new.selection.workspace_id)
        .bind(new.name.as_str())
        .bind(BatchStatus::Queued)
        .bind(json_text(&new.baseline))
        .bind(json_text(&new.candidate))
        .bind(json_text(&new.compare))
        .bind(json_text(&new.selection))
        .bind(new.key_id)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?
        .get("id");
        if let Some(refused) = Self::fill_batch(tx, Items::Experiment, id, &new.selection).await? {
            return Ok(refused);
        }
        Ok(Created::Created(self.experiment(id).await?))
    }

    /// One experiment.
    pub async fn experiment(&self, id: i64) -> StoreResult<ExperimentRow> {
        let row = query("SELECT * FROM experiments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("experiment"))?;
        experiment(&row)
    }

    /// Experiments a scope reaches, newest first, one page.
    pub async fn list_experiments(
        &self,
        scope: &Scope,
        workspace_id: Option<i64>,
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<ExperimentRow>> {
        let sql = format!(
            "SELECT * FROM experiments WHERE {} AND ($2 IS NULL OR workspace_id = $2) AND ($3 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4",
            scope_condition(scope)
        );
        let rows = query(&sql)
            .bind(scope.id())
            .bind(workspace_id)
            .bind(before_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(experiment).collect()
    }

    /// Cancels a queued or running experiment; false when it had already ended.
    pub async fn cancel_experiment(&self, id: i64) -> StoreResult<bool> {
        self.end_batch(Items::Experiment, id, BatchStatus::Cancelled, None)
            .await
    }

    /// Fails an experiment that cannot go on, saying why.
    pub async fn fail_experiment(&self, id: i64, error: &str) -> StoreResult<bool> {
        self.end_batch(Items::Experiment, id, BatchStatus::Failed, Some(error))
            .await
    }

    /// Moves a queued or running batch to a final status (with the reason,
    /// for an experiment that failed; backfills have no such column).
    pub(super) async fn end_batch(
        &self,
        items: Items,
        id: i64,
        to: BatchStatus,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        let batches = items.batch_table();
        let set_error = if error.is_some() { ", error = $6" } else { "" };
        let sql = format!(
            "UPDATE {batches} SET status = $1, finished_at = $2{set_error} WHERE id = $3 AND status IN ($4, $5)"
        );
        let mut q = query(&sql)
            .bind(to)
            .bind(self.now())
            .bind(id)
            .bind(BatchStatus::Queued)
            .bind(BatchStatus::Running);
        if let Some(error) = error {
            q = q.bind(error);
        }
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Leases up to `n` calls of the oldest queued or running experiment that
    /// has calls nobody holds (never done, lease absent or expired), and marks
    /// it running (see `Store::lease_items`).
    pub async fn claim_experiment_items(
        &self,
        worker: &str,
        lease_until: &str,
        n: i64,
    ) -> StoreResult<Option<ExperimentChunk>> {
        let Some((id, rows)) = self
            .lease_items(Items::Experiment, ", transcript_sha256", worker, lease_until, n)
            .await?
        else {
            return Ok(None);
        };
        let items = rows
            .iter()
            .map(|r| ExperimentItem {
                item_id: r.get("id"),
                job_id: r.get("job_id"),
                transcript_sha256: r.get("transcript_sha256"),
            })
            .collect();
        Ok(Some(ExperimentChunk {
            experiment: self.experiment(id).await?,
            items,
        }))
    }

    /// A stored run of this component and config on this transcript that an
    /// experiment of `workspace_id` may reuse: one of the workspace's
    /// experiments', else one of its jobs'; completed, or failed for a reason
    /// the inputs alone decide. Never another workspace's: its run IDs and
    /// costs would tell that it has a call with the same transcript.
    ///
    /// Looked up for a chunk's transcripts at once: a map from transcript
    /// sha256 to the run, for those that have one.
    pub async fn reusable_runs(
        &self,
        side: &Side,
        transcripts: &[&str],
        workspace_id: i64,
    ) -> StoreResult<std::collections::HashMap<String, SideOutcome>> {
        let (completed, failed) = (RunStatus::Completed, RunStatus::Failed);
        let sources = [
            (
                RunSource::Experiment,
                "SELECT r.id, r.transcript_sha256, r.status, r.result, r.error, r.fuel_consumed, r.duration_ms
                 FROM experiment_runs r JOIN experiments e ON e.id = r.experiment_id
                 WHERE r.component_sha256 = $1 AND r.config_sha256 = $2 AND r.status IN ($3, $4)
                   AND e.workspace_id = $5 AND r.algorithm_id = $6 AND r.transcript_sha256 IN",
            ),
            (
                RunSource::Production,
                "SELECT r.id, j.transcript_sha256, r.status, r.result, r.error, r.fuel_consumed, r.duration_ms
                 FROM jobs j JOIN algorithm_runs r ON r.job_id = j.id AND r.algorithm_id = $6
                 WHERE r.component_sha256 = $1 AND r.config_sha256 = $2 AND r.status IN ($3, $4)
                   AND j.workspace_id = $5 AND j.transcript_sha256 IN",
            ),
        ];
        let mut found = std::collections::HashMap::new();
        for (source, select) in sources {
            let wanted: Vec<&str> = transcripts
                .iter()
                .copied()
                .filter(|t| !found.contains_key(*t))
                .collect();
            if wanted.is_empty() {
                break;
            }
            let sql = format!("{select} ({}) ORDER BY r.id DESC", placeholders(7, wanted.len()));
            let mut q = query(&sql)
                .bind(side.component_sha256.as_str())
                .bind(side.config_sha256.as_str())
                .bind(completed)
                .bind(failed)
                .bind(workspace_id)
                .bind(side.algorithm_id.as_str());
            for t in &wanted {
                q = q.bind(*t);
            }
            for r in &q.fetch_all(&self.pool).await? {
                let transcript: String = r.get("transcript_sha256");
                if found.contains_key(&transcript) {
                    continue;
                }
                let status: RunStatus = r.try_get("status")?;
                let error: Option<Value> = r.get::<Option<&str>, _>("error").map(from_json).transpose()?;
                let reusable = status == completed
                    || error
                        .as_ref()
                        .and_then(|e| e["kind"].as_str())
                        .is_some_and(|kind| REUSABLE_ERRORS.contains(&kind));
                if reusable {
                    let outcome = SideOutcome {
                        run_source: source,
                        run_id: r.get("id"),
                        status,
                        memoized: true,
                        output: r.get::<Option<&str>, _>("result").map(from_json).transpose()?,
                        error,
                        fuel_consumed: r.get::<Option<i64>, _>("fuel_consumed").unwrap_or(0),
                        duration_ms: r.get::<Option<f64>, _>("duration_ms").unwrap_or(0.0),
                    };
                    found.insert(transcript, outcome);
                }
            }
        }
        Ok(found)
    }

    /// Stores a claimed chunk's outcomes in one transaction: the runs made
    /// now, each call's pair (only while this worker still holds it and it is
    /// not done, so no call counts twice), and the experiment's counters.
    /// Returns how many of the experiment's calls are still not done.
    pub async fn finish_experiment_items(
        &self,
        chunk: &ExperimentChunk,
        worker: &str,
        results: Vec<(ExperimentItem, [SideResult; 2], Option<Vec<String>>)>,
    ) -> StoreResult<i64> {
        let now = self.now();
        let experiment = &chunk.experiment;
        let mut tx = self.pool.begin().await?;
        let (mut done, mut failed, mut memoized) = (0_i64, 0_i64, 0_i64);
        for (item, sides, differing) in results {
            let mut outcomes = Vec::with_capacity(2);
            for (result, side) in sides.into_iter().zip([&experiment.baseline, &experiment.candidate]) {
                outcomes.push(match result {
                    SideResult::Reused(outcome) => outcome,
                    SideResult::Ran(report) => {
                        Self::insert_experiment_run(&mut tx, experiment.experiment_id, side, &item, &report, &now)
                            .await?
                    }
                });
            }
            let changed = query(
                "UPDATE experiment_items SET done = 1, baseline = $1, candidate = $2, differing_paths = $3,
                     lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $4 AND lease_owner = $5 AND done = 0",
            )
            .bind(json_text(&outcomes[0]))
            .bind(json_text(&outcomes[1]))
            .bind(differing.as_ref().map(json_text))
            .bind(item.item_id)
            .bind(worker)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                done += 1;
                failed += i64::from(outcomes.iter().any(|o| !o.completed()));
                memoized += outcomes.iter().filter(|o| o.memoized).count() as i64;
            }
        }
        let left: i64 = query(
            "UPDATE experiments SET done = done + $1, failed = failed + $2, memoized = memoized + $3
             WHERE id = $4 RETURNING total - done AS left_to_do",
        )
        .bind(done)
        .bind(failed)
        .bind(memoized)
        .bind(experiment.experiment_id)
        .fetch_one(&mut *tx)
        .await?
        .get("left_to_do");
        tx.commit().await?;
        Ok(left)
    }

    async fn insert_experiment_run(
        tx: &mut super::Conn,
        experiment_id: i64,
        side: &Side,
        item: &ExperimentItem,
        report: &RunReport,
        now: &str,
    ) -> StoreResult<SideOutcome> {
        let status = if report.error.is_none() {
            RunStatus::Completed
        } else {
            RunStatus::Failed
        };
        let error = report
            .error
            .as_ref()
            .map(|e| serde_json::to_value(e).expect("errors serialize"));
        let id: i64 = query(
            "INSERT INTO experiment_runs (experiment_id, algorithm_id, algorithm_version, component_sha256, config,
                 config_sha256, transcript_sha256, status, result, error, fuel_consumed, duration_ms, peak_memory_bytes,
                 logs, logs_truncated, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
        )
        .bind(experiment_id)
        .bind(side.algorithm_id.as_str())
        .bind(report.version.to_string())
        .bind(report.component_sha256.as_str())
        .bind(side.config.to_string())
        .bind(side.config_sha256.as_str())
        .bind(item.transcript_sha256.as_str())
        .bind(status)
        .bind(report.output.as_ref().map(Value::to_string))
        .bind(error.as_ref().map(Value::to_string))
        .bind(report.fuel_consumed as i64)
        .bind(report.wall_time_ms)
        .bind(report.peak_memory_bytes as i64)
        .bind(report.logs.as_str())
        .bind(i64::from(report.logs_truncated))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .get("id");
        Ok(SideOutcome {
            run_source: RunSource::Experiment,
            run_id: id,
            status,
            memoized: false,
            output: report.output.clone(),
            error,
            fuel_consumed: report.fuel_consumed as i64,
            duration_ms: report.wall_time_ms,
        })
    }

    /// Marks a running experiment with every call done completed, with its
    /// summary; false when another worker did it first (or it was cancelled).
    pub async fn complete_experiment(&self, id: i64, summary: &Value) -> StoreResult<bool> {
        let changed = query(
            "UPDATE experiments SET status = $1, finished_at = $2, summary = $3
             WHERE id = $4 AND status = $5 AND done >= total",
        )
        .bind(BatchStatus::Completed)
        .bind(self.now())
        .bind(summary.to_string())
        .bind(id)
        .bind(BatchStatus::Running)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Done calls of an experiment in item order, after `after` (a cursor),
    /// at most `limit`; `only_differ` keeps the calls that do not agree.
    pub async fn experiment_items(
        &self,
        experiment_id: i64,
        after: i64,
        limit: i64,
        only_differ: bool,
    ) -> StoreResult<Vec<ItemRow>> {
        let differ = if only_differ {
            " AND (i.differing_paths IS NULL OR i.differing_paths <> '[]')"
        } else {
            ""
        };
        let sql = format!(
            "SELECT i.id, i.job_id, j.source_call_id, i.baseline, i.candidate, i.differing_paths
             FROM experiment_items i JOIN jobs j ON j.id = i.job_id
             WHERE i.experiment_id = $1 AND i.done = 1 AND i.id > $2{differ}
             ORDER BY i.id LIMIT $3"
        );
        let rows = query(&sql)
            .bind(experiment_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ItemRow {
                    item_id: r.get("id"),
                    job_id: r.get("job_id"),
                    source_call_id: r.get("source_call_id"),
                    baseline: from_json(r.get::<&str, _>("baseline"))?,
                    candidate: from_json(r.get::<&str, _>("candidate"))?,
                    differing_paths: r.get::<Option<&str>, _>("differing_paths").map(from_json).transpose()?,
                })
            })
            .collect()
    }
}

/// A value as JSON text, for a text column.
pub(super) fn json_text<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("stored values serialize")
}
