//! Jobs: listing, lookup, status, log, transcript attachment, requeue and retry.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::calls::JobCreated;
use super::error::ErrorBody;
use super::error::{ApiBytes, ApiError, ApiJson, ApiPath, ApiResult, from_json_object};
use super::on_demand::ChildJobCreated;
use super::validate;
use crate::jobs::{JobKind, JobStatus, RunStatus};
use crate::state::AppState;
use crate::store::{DeliveryView, JobEvent, JobFilter, JobRow, TranscriptSummary};

/// Default and largest page of `GET /jobs`.
const PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

/// Query of `GET /jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One status or several, comma separated (`completed,partial`).
    status: Option<String>,
    /// Created since: `30d`, `12h`, `15m` (at most 36500 days) or an RFC 3339 time.
    since: Option<String>,
    /// Only the child jobs of this job.
    parent_job_id: Option<i64>,
    /// `true`: only jobs that are not child jobs (one per call).
    root_only: Option<bool>,
    /// Only this workspace (it must be in the key's scope).
    workspace_id: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// A page of `GET /jobs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// Jobs, newest first.
    jobs: Vec<JobRow>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// The jobs `GET /jobs/lookup` found.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobMatches {
    /// Newest first.
    jobs: Vec<JobRow>,
}

/// `GET /jobs/{id}`: the job and what surrounds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    #[serde(flatten)]
    job: JobRow,
    /// Its child jobs, oldest first.
    child_job_ids: Vec<i64>,
    /// Summary of its transcript; null while it has none.
    transcript: Option<TranscriptSummary>,
    /// How many of its runs are in each status.
    runs: RunCounts,
}

/// How many of a job's runs are in each status.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunCounts {
    total: usize,
    pending: usize,
    running: usize,
    completed: usize,
    failed: usize,
}

/// `GET /jobs/{id}/deliveries`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDeliveries {
    job_id: i64,
    /// One per run and endpoint, with every attempt.
    deliveries: Vec<DeliveryView>,
}

/// `GET /jobs/{id}/logs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobLog {
    job_id: i64,
    /// Oldest first.
    events: Vec<JobEvent>,
}

/// 202 of a `redeliver` retry.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redelivered {
    job_id: i64,
    /// How many deliveries are due again.
    deliveries_queued: u64,
    /// `Deliveries queued again with the same delivery IDs`.
    message: &'static str,
}

/// `GET /jobs`: jobs the key reaches, newest first, cursor-paginated.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(ListQuery), responses((status = 200, body = JobPage)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<JobPage>> {
    let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    let statuses = query
        .status
        .as_deref()
        .map(|s| validate::statuses(s.split(',').map(str::trim).filter(|x| !x.is_empty())))
        .transpose()?
        .unwrap_or_default();
    let since = query.since.as_deref().map(|s| validate::since(&state, s)).transpose()?;
    let before_id = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| ApiError::unprocessable("cursor must be the next_cursor of a previous page"))
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    if let Some(w) = query.workspace_id {
        caller.workspace(&state, Some(w)).await?;
    }
    let filter = JobFilter {
        statuses,
        since,
        parent_job_id: query.parent_job_id,
        root_only: query.root_only.unwrap_or(false),
        workspace_id: query.workspace_id,
        before_id,
        limit: limit + 1,
    };
    let mut jobs = state.store.list_jobs(&caller.scope(), &filter).await?;
    let next_cursor = (jobs.len() as i64 > limit).then(|| {
        jobs.truncate(limit as usize);
        jobs.last().map(|j| j.job_id.to_string())
    });
    Ok(Json(JobPage {
        jobs,
        next_cursor: next_cursor.flatten(),
    }))
}

/// Query of `GET /jobs/lookup`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// Your call ID, as given at ingestion.
    source_call_id: Option<String>,
    /// Your company ID, as given at ingestion.
    source_company_id: Option<String>,
}

/// `GET /jobs/lookup`: jobs by the caller's own call / company IDs.
#[utoipa::path(get, path = "/api/v1/jobs/lookup", tag = "jobs", params(LookupQuery), responses((status = 200, body = JobMatches), (status = 404, body = ErrorBody)))]
pub async fn lookup(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<JobMatches>> {
    let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    if query.source_call_id.is_none() && query.source_company_id.is_none() {
        return Err(ApiError::unprocessable(
            "give source_call_id, source_company_id or both",
        ));
    }
    let jobs = state
        .store
        .lookup_jobs(
            &caller.scope(),
            query.source_call_id.as_deref(),
            query.source_company_id.as_deref(),
        )
        .await?;
    if jobs.is_empty() {
        return Err(ApiError::NotFound("No job found for these source IDs".into()));
    }
    Ok(Json(JobMatches { jobs }))
}

/// The job and everything around it that `GET /jobs/{id}` shows.
async fn job_view(state: &AppState, job: JobRow) -> ApiResult<JobView> {
    let children = state.store.child_job_ids(job.job_id).await?;
    let transcript = match &job.transcript_sha256 {
        Some(sha) => Some(state.store.transcript_summary(sha).await?),
        None => None,
    };
    let runs = state.store.runs_for_job(job.job_id).await?;
    let count = |s: RunStatus| runs.iter().filter(|r| r.status == s).count();
    Ok(JobView {
        job,
        child_job_ids: children,
        transcript,
        runs: RunCounts {
            total: runs.len(),
            pending: count(RunStatus::Pending),
            running: count(RunStatus::Running),
            completed: count(RunStatus::Completed),
            failed: count(RunStatus::Failed),
        },
    })
}

/// A job the caller may see (404, then 403).
pub async fn visible_job(state: &AppState, caller: &Caller, job_id: i64) -> ApiResult<JobRow> {
    let job = state.store.job(job_id).await?;
    caller.check_job(state, &job).await?;
    Ok(job)
}

/// `GET /jobs/{id}`.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}", tag = "jobs", params(("job_id" = i64, Path)), responses((status = 200, description = "Job status, parent, children, transcript summary, run counts", body = JobView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(job_id): ApiPath<i64>,
) -> ApiResult<Json<JobView>> {
    let job = visible_job(&state, &caller, job_id).await?;
    Ok(Json(job_view(&state, job).await?))
}

/// `GET /jobs/{id}/deliveries`: every webhook delivery of the job with each attempt.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}/deliveries", tag = "webhooks", params(("job_id" = i64, Path)), responses((status = 200, body = JobDeliveries), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(job_id): ApiPath<i64>,
) -> ApiResult<Json<JobDeliveries>> {
    visible_job(&state, &caller, job_id).await?;
    Ok(Json(JobDeliveries {
        job_id,
        deliveries: state.store.deliveries_for_job(job_id).await?,
    }))
}

/// `GET /jobs/{id}/logs`.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}/logs", tag = "jobs", params(("job_id" = i64, Path)), responses((status = 200, body = JobLog), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(job_id): ApiPath<i64>,
) -> ApiResult<Json<JobLog>> {
    visible_job(&state, &caller, job_id).await?;
    Ok(Json(JobLog {
        job_id,
        events: state.store.events(job_id).await?,
    }))
}

/// Body of `PUT /jobs/{id}/transcript`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachTranscript {
    /// `{language?, duration_ms?, segments: [{speaker, start_ms, end_ms, text, confidence?}]}`, or text of `Speaker: text` lines.
    transcript: Value,
}

/// `GET /jobs/{id}/transcript`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobTranscript {
    job_id: i64,
    /// sha256 of the stored form (the same for every job of the call).
    sha256: String,
    /// `{language?, duration_ms, segments: [{speaker, start_ms, end_ms, text, confidence?, channel?}]}`,
    /// exactly as algorithms receive it.
    #[schema(value_type = Object)]
    transcript: gensail_host_api::Transcript,
}

/// `GET /jobs/{id}/transcript`: the transcript algorithms ran on, to replay a run.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}/transcript", tag = "jobs", params(("job_id" = i64, Path)), responses((status = 200, body = JobTranscript), (status = 404, description = "No such job, or it has no transcript yet", body = ErrorBody)))]
pub async fn transcript(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(job_id): ApiPath<i64>,
) -> ApiResult<Json<JobTranscript>> {
    let job = visible_job(&state, &caller, job_id).await?;
    let Some(sha256) = job.transcript_sha256 else {
        return Err(ApiError::NotFound(format!(
            "Job {job_id} has no transcript yet (it is {}); attach one with PUT /api/v1/jobs/{job_id}/transcript",
            job.status
        )));
    };
    let transcript = state.store.transcript(&sha256).await?;
    Ok(Json(JobTranscript {
        job_id,
        sha256,
        transcript,
    }))
}

/// `PUT /jobs/{id}/transcript`: an external transcriber hands over the transcript.
#[utoipa::path(put, path = "/api/v1/jobs/{job_id}/transcript", tag = "jobs", params(("job_id" = i64, Path)), request_body = AttachTranscript, responses((status = 202, body = JobCreated), (status = 409, description = "Job is not transcribing", body = ErrorBody)))]
pub async fn attach_transcript(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(job_id): ApiPath<i64>,
    ApiJson(body): ApiJson<AttachTranscript>,
) -> ApiResult<(StatusCode, Json<JobCreated>)> {
    let transcript = validate::transcript(&body.transcript)?;
    let job = visible_job(&state, &caller, job_id).await?;
    if job.status != JobStatus::Transcribing {
        return Err(ApiError::Conflict(format!(
            "Job is {}; a transcript can only be attached while it is transcribing",
            job.status
        )));
    }
    let runs = state
        .store
        .new_runs(job.workspace_id, &job.requested_algorithm_ids)
        .await?;
    if !state
        .store
        .start_analysis(
            job_id,
            JobStatus::Transcribing,
            Some(&transcript),
            &runs,
            "Transcript attached; analysis started",
        )
        .await?
    {
        return Err(ApiError::Conflict(
            "Job changed status meanwhile; fetch it and try again".into(),
        ));
    }
    state.wake_worker();
    Ok((
        StatusCode::ACCEPTED,
        Json(JobCreated {
            job_id,
            status: JobStatus::Analyzing,
        }),
    ))
}

/// Body of `PATCH /jobs/{id}/status`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// Only `queued`: requeue a skipped job.
    #[schema(example = "queued")]
    status: String,
}

/// `PATCH /jobs/{id}/status`: requeue a skipped job; it is checked again
/// against the workspace's current filter and stays skipped if it still fails it.
#[utoipa::path(patch, path = "/api/v1/jobs/{job_id}/status", tag = "jobs", params(("job_id" = i64, Path)), request_body = StatusChange, responses((status = 200, body = JobView), (status = 400, description = "Only skipped jobs can be requeued", body = ErrorBody)))]
pub async fn update_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(job_id): ApiPath<i64>,
    ApiJson(body): ApiJson<StatusChange>,
) -> ApiResult<Json<JobView>> {
    if body.status != JobStatus::Queued.as_str() {
        return Err(ApiError::unprocessable(format!(
            "status can only be set to \"queued\" (to requeue a skipped job), not {:?}",
            body.status
        )));
    }
    let job = visible_job(&state, &caller, job_id).await?;
    requeue(&state, job).await.map(Json)
}

async fn requeue(state: &AppState, job: JobRow) -> ApiResult<JobView> {
    if job.status != JobStatus::Skipped {
        return Err(ApiError::bad_request(format!(
            "Only skipped jobs can be requeued; job {} is {}",
            job.job_id, job.status
        )));
    }
    let workspace = state.store.workspace(job.workspace_id).await?;
    let duration_ms = match &job.transcript_sha256 {
        Some(sha) => Some(state.store.transcript_summary(sha).await?.duration_ms as u64),
        None => job.duration_seconds.map(|s| (s * 1000.0) as u64),
    };
    if let Some(reason) = validate::skip_reason(&workspace, duration_ms) {
        state
            .store
            .set_job_status(
                job.job_id,
                JobStatus::Skipped,
                JobStatus::Skipped,
                Some(&reason),
                &format!("Requeue refused by the current filter: {reason}"),
            )
            .await?;
    } else if job.transcript_sha256.is_some() {
        let runs = state
            .store
            .new_runs(job.workspace_id, &job.requested_algorithm_ids)
            .await?;
        state
            .store
            .start_analysis(
                job.job_id,
                JobStatus::Skipped,
                None,
                &runs,
                "Requeued; passes the current filter; analysis started",
            )
            .await?;
        state.wake_worker();
    } else {
        state
            .store
            .set_job_status(
                job.job_id,
                JobStatus::Skipped,
                JobStatus::Transcribing,
                None,
                "Requeued; passes the current filter; waiting for its transcript",
            )
            .await?;
    }
    job_view(state, state.store.job(job.job_id).await?).await
}

/// Body of `POST /jobs/{id}/retry` and `POST /jobs/retry`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// `rerun` (default): run the failed algorithms again as a child job;
    /// `requeue`: requeue a skipped job; `redeliver`: send the job's webhook
    /// deliveries again under their delivery IDs.
    #[schema(value_type = Option<String>, pattern = "^(rerun|requeue|redeliver)$")]
    mode: Option<String>,
    /// `POST /jobs/retry` only: your call ID.
    source_call_id: Option<String>,
    /// `POST /jobs/retry` only: your company ID.
    source_company_id: Option<String>,
}

/// `POST /jobs/{id}/retry`.
#[utoipa::path(post, path = "/api/v1/jobs/{job_id}/retry", tag = "jobs", params(("job_id" = i64, Path)), request_body(content = RetryBody, description = "Optional; default mode rerun"), responses((status = 202, description = "rerun: the child job", body = ChildJobCreated), (status = 200, description = "requeue: the job", body = JobView), (status = 202, description = "redeliver", body = Redelivered), (status = 400, body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(job_id): ApiPath<i64>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    // The body is optional here: no body means the default mode.
    let body: RetryBody = if body.iter().all(u8::is_ascii_whitespace) {
        RetryBody::default()
    } else {
        let value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::unprocessable(format!("Body is not valid JSON: {e}")))?;
        from_json_object(value, "Body")?
    };
    if body.source_call_id.is_some() || body.source_company_id.is_some() {
        return Err(ApiError::unprocessable(
            "source IDs belong to POST /jobs/retry; this path names the job",
        ));
    }
    let job = visible_job(&state, &caller, job_id).await?;
    retry_job(&state, job, body.mode.as_deref()).await
}

/// `POST /jobs/retry`: retry the newest job with these source IDs.
#[utoipa::path(post, path = "/api/v1/jobs/retry", tag = "jobs", request_body = RetryBody, responses((status = 202, description = "rerun: the child job", body = ChildJobCreated), (status = 200, description = "requeue: the job", body = JobView), (status = 202, description = "redeliver", body = Redelivered), (status = 400, description = "Nothing to retry in this mode", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retry_by_source(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RetryBody>,
) -> ApiResult<Response> {
    if body.source_call_id.is_none() && body.source_company_id.is_none() {
        return Err(ApiError::unprocessable(
            "give source_call_id, source_company_id or both",
        ));
    }
    let jobs = state
        .store
        .lookup_jobs(
            &caller.scope(),
            body.source_call_id.as_deref(),
            body.source_company_id.as_deref(),
        )
        .await?;
    let job = jobs
        .into_iter()
        .find(|j| j.parent_job_id.is_none())
        .ok_or_else(|| ApiError::NotFound("No job found for these source IDs".into()))?;
    retry_job(&state, job, body.mode.as_deref()).await
}

async fn retry_job(state: &AppState, job: JobRow, mode: Option<&str>) -> ApiResult<Response> {
    match mode.unwrap_or("rerun") {
        "rerun" => Ok((StatusCode::ACCEPTED, Json(rerun_failed(state, job).await?)).into_response()),
        "requeue" => Ok(Json(requeue(state, job).await?).into_response()),
        "redeliver" => {
            let queued = state.store.redeliver(job.job_id).await?;
            if queued == 0 {
                return Err(ApiError::bad_request(
                    "Job has no webhook deliveries to send again (it is analytics_only, or no webhook was configured when it was created)",
                ));
            }
            state.deliveries_due.notify_one();
            let answer = Redelivered {
                job_id: job.job_id,
                deliveries_queued: queued,
                message: "Deliveries queued again with the same delivery IDs",
            };
            Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
        }
        other => Err(ApiError::unprocessable(format!(
            "mode {other:?} is not a retry mode: use \"rerun\", \"requeue\" or \"redeliver\""
        ))),
    }
}

/// Runs a job's failed algorithms again, as a child job with the parent's delivery settings.
async fn rerun_failed(state: &AppState, job: JobRow) -> ApiResult<ChildJobCreated> {
    if !matches!(job.status, JobStatus::Partial | JobStatus::Failed) {
        return Err(ApiError::bad_request(format!(
            "Job is {}; only partial or failed jobs have failed runs to retry",
            job.status
        )));
    }
    let failed: Vec<String> = state
        .store
        .runs_for_job(job.job_id)
        .await?
        .into_iter()
        .filter(|r| r.status == RunStatus::Failed)
        .map(|r| r.algorithm_id)
        .collect();
    if failed.is_empty() || job.transcript_sha256.is_none() {
        return Err(ApiError::bad_request("Job has no failed runs to retry"));
    }
    let runs = state.store.new_runs(job.workspace_id, &failed).await?;
    let event = format!("Retry of job {}: rerunning {}", job.job_id, failed.join(", "));
    let child = state
        .store
        .create_child_job(&job, JobKind::Retry, runs, job.analytics_only, event)
        .await?;
    state.wake_worker();
    Ok(ChildJobCreated {
        job_id: child.job_id,
        parent_job_id: job.job_id,
        algorithm_ids: failed,
        status: child.status,
        message: "Retry job created",
        existing_runs: None,
    })
}
