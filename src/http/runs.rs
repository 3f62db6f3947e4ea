//! Algorithm runs: `GET /jobs/{id}/runs` and `GET /algorithm-runs/{id}`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiPath, ApiResult};
use super::jobs::visible_job;
#[allow(unused_imports)]
use super::openapi::*;
use crate::state::AppState;

/// `GET /jobs/{id}/runs`: every run of the job, with results.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}/runs", tag = "runs", params(("job_id" = i64, Path)), responses((status = 200, description = "{job_id, runs}", body = AnyObject), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn for_job(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(job_id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    visible_job(&state, &caller, job_id).await?;
    Ok(Json(
        json!({ "job_id": job_id, "runs": state.store.runs_for_job(job_id).await? }),
    ))
}

/// `GET /algorithm-runs/{id}`.
#[utoipa::path(get, path = "/api/v1/algorithm-runs/{run_id}", tag = "runs", params(("run_id" = i64, Path)), responses((status = 200, body = AnyObject), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(run_id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let run = state.store.run(run_id).await?;
    let job = state.store.job(run.job_id).await?;
    caller.check_job(&state, &job).await?;
    Ok(Json(serde_json::to_value(run).map_err(anyhow::Error::from)?))
}
