//! Version comparison on stored jobs: runs two versions of an algorithm on
//! the same transcripts with the same config, and reports where the outputs
//! differ and what each cost. The golden gate of a publish and
//! `POST /algorithms/{id}/versions/{version}/compare` both use it.

use std::sync::Arc;

use gensail_engine::{LoadedAlgorithm, RunReport};
use serde::Serialize;

use crate::jobs::RunStatus;

use crate::batch::compare::{self, PathStyle, ratio};
use crate::state::AppState;
use crate::store::StoreError;

/// One version's run on a golden job.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunSummary {
    /// The version that ran.
    pub version: String,
    /// `completed` or `failed`.
    pub status: RunStatus,
    /// Why it failed (`kind: message`).
    pub error: Option<String>,
    /// Instructions consumed.
    pub fuel_consumed: u64,
    /// Wall time.
    pub wall_time_ms: f64,
}

/// The two versions on one job.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobComparison {
    /// The golden job.
    pub job_id: i64,
    /// The active version's run.
    pub active: RunSummary,
    /// The new version's run.
    pub candidate: RunSummary,
    /// Both completed with equal output.
    pub output_identical: bool,
    /// How many JSON paths differ (0 when identical or when either failed).
    pub difference_count: usize,
    /// The differing paths (`$.score`, `$.mentions[2].name`), at most 50.
    pub differences: Vec<String>,
    /// Candidate fuel / active fuel.
    pub fuel_ratio: Option<f64>,
    /// Candidate time / active time.
    pub time_ratio: Option<f64>,
}

/// The comparison over every golden job.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GoldenReport {
    /// The version serving now.
    pub active_version: String,
    /// The version compared with it.
    pub candidate_version: String,
    /// Per job.
    pub jobs: Vec<JobComparison>,
    /// Jobs where the active version completed and the candidate failed.
    pub regressions: Vec<i64>,
    /// Jobs with identical outputs.
    pub identical: usize,
    /// Jobs whose outputs differ.
    pub changed: usize,
    /// Total candidate fuel / total active fuel.
    pub fuel_ratio: Option<f64>,
    /// Total candidate time / total active time.
    pub time_ratio: Option<f64>,
}

impl GoldenReport {
    /// `job N: kind: message` for each regression, for error messages.
    pub fn regression_summary(&self) -> String {
        self.jobs
            .iter()
            .filter(|j| self.regressions.contains(&j.job_id))
            .map(|j| format!("job {}: {}", j.job_id, j.candidate.error.as_deref().unwrap_or("failed")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Runs `active` and `candidate` on each job's transcript, with the config the
/// algorithm has in that job's workspace. The caller has checked the jobs
/// exist and have transcripts.
pub async fn compare(
    state: &AppState,
    active: &Arc<LoadedAlgorithm>,
    candidate: &Arc<LoadedAlgorithm>,
    job_ids: &[i64],
) -> Result<GoldenReport, StoreError> {
    let id = &candidate.info.id;
    let mut jobs = Vec::with_capacity(job_ids.len());
    for &job_id in job_ids {
        let job = state.store.job(job_id).await?;
        let Some(sha) = job.transcript_sha256 else { continue };
        let transcript = state.store.transcript(&sha).await?;
        let config = match state.store.algorithm_config(job.workspace_id, id).await {
            Ok(config) => config.to_string(),
            Err(StoreError::NotFound(_)) => "{}".to_owned(),
            Err(e) => return Err(e),
        };
        let a = state.engine.run_loaded(active, &transcript, &config).await;
        let c = state.engine.run_loaded(candidate, &transcript, &config).await;
        jobs.push(compare_runs(job_id, &a, &c));
    }
    let regressions = jobs
        .iter()
        .filter(|j| j.active.status == RunStatus::Completed && j.candidate.status != RunStatus::Completed)
        .map(|j| j.job_id)
        .collect();
    let identical = jobs.iter().filter(|j| j.output_identical).count();
    let total = |f: fn(&RunSummary) -> f64| -> (f64, f64) {
        jobs.iter()
            .fold((0.0, 0.0), |(a, c), j| (a + f(&j.active), c + f(&j.candidate)))
    };
    let (active_fuel, candidate_fuel) = total(|r| r.fuel_consumed as f64);
    let (active_time, candidate_time) = total(|r| r.wall_time_ms);
    Ok(GoldenReport {
        active_version: active.info.version.to_string(),
        candidate_version: candidate.info.version.to_string(),
        changed: jobs.len() - identical,
        identical,
        regressions,
        fuel_ratio: ratio(candidate_fuel, active_fuel),
        time_ratio: ratio(candidate_time, active_time),
        jobs,
    })
}

fn compare_runs(job_id: i64, active: &RunReport, candidate: &RunReport) -> JobComparison {
    let (differences, count) = match (&active.output, &candidate.output) {
        (Some(a), Some(c)) => compare::differences(a, c, PathStyle::JsonPath),
        _ => (Vec::new(), 0),
    };
    let both_completed = active.output.is_some() && candidate.output.is_some();
    JobComparison {
        job_id,
        output_identical: both_completed && count == 0,
        difference_count: count,
        differences,
        fuel_ratio: ratio(candidate.fuel_consumed as f64, active.fuel_consumed as f64),
        time_ratio: ratio(candidate.wall_time_ms, active.wall_time_ms),
        active: summary(active),
        candidate: summary(candidate),
    }
}

fn summary(report: &RunReport) -> RunSummary {
    RunSummary {
        version: report.version.to_string(),
        status: if report.error.is_none() {
            RunStatus::Completed
        } else {
            RunStatus::Failed
        },
        error: report.error.as_ref().map(|e| format!("{}: {e}", e.kind())),
        fuel_consumed: report.fuel_consumed,
        wall_time_ms: report.wall_time_ms,
    }
}
