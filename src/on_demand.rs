//! `run-algorithms` as a use case: the checks a call must pass and the child
//! job that follows. The API's `POST /jobs/{id}/run-algorithms` and a
//! backfill's worker both come here, so a backfill does exactly what N
//! run-algorithms calls would.

use crate::state::AppState;
use crate::store::{BackfillClaim, JobRow, OnDemand, StoreError, Workspace};

/// Why `run-algorithms` refuses a job (the API answers 400 with these words;
/// a backfill records them as the call's `skipped_invalid` reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The job's analysis has not finished.
    NotDone(crate::jobs::JobStatus),
    /// No transcript, or one with no speech.
    NoTranscript,
    /// These algorithms are not available to the workspace.
    Unavailable(Vec<String>),
}

impl Refusal {
    /// The spec's words.
    pub fn detail(&self) -> String {
        match self {
            Self::NotDone(status) => format!("Job is still {status}. Wait for completion."),
            Self::NoTranscript => "Job has no usable transcript".to_owned(),
            Self::Unavailable(ids) => {
                let quoted: Vec<String> = ids
                    .iter()
                    .map(|id| format!("'{}'", id.replace('\\', "\\\\").replace('\'', "\\'")))
                    .collect();
                format!("Algorithms not available: [{}]", quoted.join(", "))
            }
        }
    }
}

/// Checks a job (already found, in the caller's scope) as `run-algorithms`
/// does, in the order DESIGN.md fixes, then creates the child job for what
/// has not run yet (see [`crate::store::Store::run_on_demand`]).
pub async fn run_algorithms(
    state: &AppState,
    job: &JobRow,
    workspace: &Workspace,
    algorithm_ids: &[String],
    analytics_only: bool,
    force_rerun: bool,
    backfill: Option<&BackfillClaim>,
) -> Result<Result<OnDemand, Refusal>, StoreError> {
    if !job.status.analysis_done() {
        return Ok(Err(Refusal::NotDone(job.status)));
    }
    let usable = match &job.transcript_sha256 {
        Some(sha) => state.store.transcript_summary(sha).await?.speech_segment_count > 0,
        None => false,
    };
    if !usable {
        return Ok(Err(Refusal::NoTranscript));
    }
    let missing = state.store.unavailable(workspace, algorithm_ids).await?;
    if !missing.is_empty() {
        return Ok(Err(Refusal::Unavailable(missing)));
    }
    let runs = state.store.new_runs(workspace.id, algorithm_ids).await?;
    let done = state
        .store
        .run_on_demand(job, runs, analytics_only, force_rerun, backfill)
        .await?;
    if matches!(done, OnDemand::Created { .. }) {
        state.wake_worker();
    }
    Ok(Ok(done))
}
