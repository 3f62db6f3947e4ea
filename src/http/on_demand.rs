//! `POST /api/v1/jobs/{job_id}/run-algorithms`: on-demand execution, the
//! primary spec. Checks run in the order DESIGN.md fixes: body (422), job
//! (404), access (403), status (400), transcript (400), availability (400),
//! idempotency (200), then the child job (202). Idempotency and the child's
//! creation are one transaction (`Store::run_on_demand`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ErrorBody;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use super::validate;
use crate::jobs::JobStatus;
use crate::state::AppState;
use crate::store::{ExistingRun, OnDemand};

/// Body of `POST /jobs/{job_id}/run-algorithms`. The fields are read as
/// JSON values and checked by hand, so each error is the spec's own words.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RunAlgorithmsRequest {
    /// 1 to 10 algorithm IDs; duplicates are removed, first occurrence order kept.
    #[schema(value_type = Vec<String>, min_items = 1, max_items = 10)]
    algorithm_ids: Option<Value>,
    /// Skip webhook delivery (default true).
    #[schema(value_type = Option<bool>)]
    analytics_only: Option<Value>,
    /// Run even if the algorithms already ran on this call (default false).
    #[schema(value_type = Option<bool>)]
    force_rerun: Option<Value>,
}

/// 202 of `run-algorithms` and of a `rerun` retry: the child job.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChildJobCreated {
    /// The child job.
    pub job_id: i64,
    /// The job it was created from.
    pub parent_job_id: i64,
    /// What the child runs.
    pub algorithm_ids: Vec<String>,
    /// `analyzing`.
    pub status: JobStatus,
    /// `On-demand analysis job created` (or `Retry job created`).
    pub message: &'static str,
    /// Requested algorithms that already ran on the call and are not run again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_runs: Option<Vec<ExistingRun>>,
}

/// 200 of `run-algorithms` when every requested algorithm already ran on the call.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlreadyRan {
    /// `Algorithms already ran on this job`.
    message: &'static str,
    /// The runs.
    existing_runs: Vec<ExistingRun>,
    /// `Use force_rerun=true to run again`.
    hint: &'static str,
}

/// Creates a child job that runs the requested algorithms on the job's transcript.
#[utoipa::path(post, path = "/api/v1/jobs/{job_id}/run-algorithms", tag = "on-demand", params(("job_id" = i64, Path, description = "The job whose transcript to analyse")), request_body = RunAlgorithmsRequest, responses((status = 202, description = "On-demand analysis job created", body = ChildJobCreated), (status = 200, description = "Algorithms already ran on this job", body = AlreadyRan), (status = 400, description = "Job is still {status}. Wait for completion. / Job has no usable transcript / Algorithms not available: [...]", body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn run_algorithms(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(job_id): ApiPath<i64>,
    ApiJson(body): ApiJson<RunAlgorithmsRequest>,
) -> ApiResult<Response> {
    let algorithm_ids = validate::algorithm_ids(body.algorithm_ids.as_ref())?;
    let analytics_only = validate::flag(body.analytics_only.as_ref(), "analytics_only", true)?;
    let force_rerun = validate::flag(body.force_rerun.as_ref(), "force_rerun", false)?;

    let job = state.store.job(job_id).await?;
    let workspace = caller.check_job(&state, &job).await?;
    let done = crate::on_demand::run_algorithms(
        &state,
        &job,
        &workspace,
        &algorithm_ids,
        analytics_only,
        force_rerun,
        None,
    )
    .await?
    .map_err(|refusal| ApiError::bad_request(refusal.detail()))?;
    let (child, existing) = match done {
        OnDemand::AlreadyRan(existing) => {
            return Ok((
                StatusCode::OK,
                Json(AlreadyRan {
                    message: "Algorithms already ran on this job",
                    existing_runs: existing,
                    hint: "Use force_rerun=true to run again",
                }),
            )
                .into_response());
        }
        OnDemand::Created { child, existing } => (child, existing),
    };

    let answer = ChildJobCreated {
        job_id: child.job_id,
        parent_job_id: job.job_id,
        algorithm_ids: child.requested_algorithm_ids.clone(),
        status: child.status,
        message: "On-demand analysis job created",
        existing_runs: (!existing.is_empty()).then_some(existing),
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}
