//! Algorithm runs: `GET /jobs/{id}/runs` and `GET /algorithm-runs/{id}`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ErrorBody;
use super::error::{ApiPath, ApiResult};
use super::jobs::visible_job;
use crate::state::AppState;
use crate::store::RunRow;

/// `GET /jobs/{id}/runs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRuns {
    job_id: i64,
    /// Every run of the job, oldest first, with results.
    runs: Vec<RunRow>,
}

/// `GET /jobs/{id}/runs`: every run of the job, with results.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}/runs", tag = "runs", params(("job_id" = i64, Path)), responses((status = 200, body = JobRuns), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn for_job(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(job_id): ApiPath<i64>,
) -> ApiResult<Json<JobRuns>> {
    visible_job(&state, &caller, job_id).await?;
    Ok(Json(JobRuns {
        job_id,
        runs: state.store.runs_for_job(job_id).await?,
    }))
}

/// `GET /algorithm-runs/{id}`.
#[utoipa::path(get, path = "/api/v1/algorithm-runs/{run_id}", tag = "runs", params(("run_id" = i64, Path)), responses((status = 200, body = RunRow), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(run_id): ApiPath<i64>,
) -> ApiResult<Json<RunRow>> {
    let run = state.store.run(run_id).await?;
    let job = state.store.job(run.job_id).await?;
    caller.check_job(&state, &job).await?;
    Ok(Json(run))
}
