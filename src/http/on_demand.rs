//! `POST /api/v1/jobs/{job_id}/run-algorithms`: on-demand execution, the
//! primary spec. Checks run in the order DESIGN.md fixes: body (422), job
//! (404), access (403), status (400), transcript (400), availability (400),
//! idempotency (200), then the child job (202). Idempotency and the child's
//! creation are one transaction (`Store::run_on_demand`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
#[allow(unused_imports)]
use super::openapi::*;
use super::validate;
use crate::state::AppState;
use crate::store::OnDemand;

/// Creates a child job that runs the requested algorithms on the job's transcript.
#[utoipa::path(post, path = "/api/v1/jobs/{job_id}/run-algorithms", tag = "on-demand", params(("job_id" = i64, Path, description = "The job whose transcript to analyse")), request_body = RunAlgorithmsRequest, responses((status = 202, description = "On-demand analysis job created", body = RunAlgorithmsAccepted), (status = 200, description = "Algorithms already ran on this job", body = AlreadyRan), (status = 400, description = "Job is still {status}. Wait for completion. / Job has no usable transcript / Algorithms not available: [...]", body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn run_algorithms(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(job_id): ApiPath<i64>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Response> {
    let body = body
        .as_object()
        .ok_or_else(|| ApiError::unprocessable("Body must be a JSON object with algorithm_ids"))?;
    let algorithm_ids = validate::algorithm_ids(body.get("algorithm_ids"))?;
    let analytics_only = validate::flag(body, "analytics_only", true)?;
    let force_rerun = validate::flag(body, "force_rerun", false)?;

    let job = state.store.job(job_id).await?;
    let workspace = caller.check_job(&state, &job).await?;
    if !job.status.analysis_done() {
        return Err(ApiError::bad_request(format!(
            "Job is still {}. Wait for completion.",
            job.status
        )));
    }
    let transcript = match &job.transcript_sha256 {
        Some(sha) => Some((sha, state.store.transcript_summary(sha).await?)),
        None => None,
    };
    if transcript.is_none_or(|(_, summary)| summary.speech_segment_count <= 0) {
        return Err(ApiError::bad_request("Job has no usable transcript"));
    }
    let missing = state.store.unavailable(&workspace, &algorithm_ids).await?;
    if !missing.is_empty() {
        return Err(validate::not_available(&missing));
    }

    let runs = state.store.new_runs(workspace.id, &algorithm_ids).await?;
    let (child, existing) = match state
        .store
        .run_on_demand(&job, runs, analytics_only, force_rerun)
        .await?
    {
        OnDemand::AlreadyRan(existing) => {
            return Ok((
                StatusCode::OK,
                Json(json!({
                    "message": "Algorithms already ran on this job",
                    "existing_runs": existing,
                    "hint": "Use force_rerun=true to run again",
                })),
            )
                .into_response());
        }
        OnDemand::Created { child, existing } => (child, existing),
    };
    state.wake_worker();
    let to_run = &child.requested_algorithm_ids;

    let mut answer = json!({
        "job_id": child.job_id,
        "parent_job_id": job.job_id,
        "algorithm_ids": to_run,
        "status": child.status,
        "message": "On-demand analysis job created",
    });
    if !existing.is_empty() {
        answer["existing_runs"] = json!(existing);
    }
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}
