//! Ingestion: `POST /api/v1/calls/transcript` and `POST /api/v1/calls/audio`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ErrorBody;
use super::error::{ApiJson, ApiResult};
use super::validate;
use crate::jobs::{JobKind, JobStatus};
use crate::state::AppState;
use crate::store::{NewJob, TranscriptSource, Workspace};

/// Body of `POST /calls/transcript`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestTranscript {
    /// Required for partner, organization and platform keys.
    workspace_id: Option<i64>,
    /// `{language?, duration_ms?, segments: [{speaker, start_ms, end_ms, text, confidence?}]}`, or text of `Speaker: text` lines.
    transcript: serde_json::Value,
    /// 1 to 10 algorithm IDs; default: the workspace's assigned algorithms.
    #[schema(value_type = Option<Vec<String>>, min_items = 1, max_items = 10)]
    algorithm_ids: Option<serde_json::Value>,
    /// Skip webhook delivery (default false).
    analytics_only: Option<bool>,
    /// Your call ID.
    source_call_id: Option<String>,
    /// Your company ID.
    source_company_id: Option<String>,
    /// Where the recording is.
    recording_url: Option<String>,
    /// When the call happened, RFC 3339.
    contacted_at: Option<String>,
}

/// Body of `POST /calls/audio`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestAudio {
    /// Required for partner, organization and platform keys.
    workspace_id: Option<i64>,
    /// http(s) URL of the recording.
    recording_url: String,
    /// Length, for the workspace's duration filter.
    #[schema(minimum = 0.0)]
    duration_seconds: Option<f64>,
    /// 1 to 10 algorithm IDs; default: the workspace's assigned algorithms.
    #[schema(value_type = Option<Vec<String>>, min_items = 1, max_items = 10)]
    algorithm_ids: Option<serde_json::Value>,
    /// Skip webhook delivery (default false).
    analytics_only: Option<bool>,
    /// Your call ID.
    source_call_id: Option<String>,
    /// Your company ID.
    source_company_id: Option<String>,
    /// When the call happened, RFC 3339.
    contacted_at: Option<String>,
}

/// 202 of ingestion (and of attaching a transcript): the job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobCreated {
    /// The job.
    pub job_id: i64,
    /// `analyzing`, `transcribing` or `skipped`.
    pub status: JobStatus,
}

/// The algorithms an ingested call runs: those named (checked), else the workspace's assigned ones.
async fn requested_algorithms(
    state: &AppState,
    workspace: &Workspace,
    named: Option<&serde_json::Value>,
) -> ApiResult<Vec<String>> {
    let Some(named) = named else {
        return Ok(state.store.assigned_algorithm_ids(workspace.id).await?);
    };
    let ids = validate::algorithm_ids(Some(named))?;
    let missing = state.store.unavailable(workspace, &ids).await?;
    if missing.is_empty() {
        Ok(ids)
    } else {
        Err(validate::not_available(&missing))
    }
}

/// Ingests a call with a ready transcript; it goes straight to analysis (or is skipped by the duration filter).
#[utoipa::path(post, path = "/api/v1/calls/transcript", tag = "calls", request_body = IngestTranscript, responses((status = 202, description = "Job created", body = JobCreated), (status = 400, description = "Algorithms not available", body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, description = "Malformed body or transcript", body = ErrorBody)))]
pub async fn ingest_transcript(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<IngestTranscript>,
) -> ApiResult<(StatusCode, Json<JobCreated>)> {
    let transcript = validate::transcript(&body.transcript)?;
    let contacted_at = validate::time("contacted_at", body.contacted_at.as_deref())?;
    let workspace = caller.workspace(&state, body.workspace_id).await?;
    let algorithm_ids = requested_algorithms(&state, &workspace, body.algorithm_ids.as_ref()).await?;
    let skipped = validate::skip_reason(&workspace, Some(transcript.duration_ms));
    let runs = if skipped.is_some() {
        Vec::new()
    } else {
        state.store.new_runs(workspace.id, &algorithm_ids).await?
    };
    let job = state
        .store
        .create_job(NewJob {
            workspace_id: workspace.id,
            parent_job_id: None,
            kind: JobKind::Ingest,
            status: if skipped.is_some() {
                JobStatus::Skipped
            } else {
                JobStatus::Analyzing
            },
            algorithm_ids,
            runs,
            analytics_only: body.analytics_only.unwrap_or(false),
            transcript: TranscriptSource::New(transcript),
            source_call_id: body.source_call_id,
            source_company_id: body.source_company_id,
            recording_url: body.recording_url,
            contacted_at,
            duration_seconds: None,
            event: skipped
                .clone()
                .unwrap_or_else(|| "Call ingested with a transcript".into()),
            error: skipped,
        })
        .await?;
    state.wake_worker();
    Ok((
        StatusCode::ACCEPTED,
        Json(JobCreated {
            job_id: job.job_id,
            status: job.status,
        }),
    ))
}

/// Ingests a call by audio URL; the job waits in `transcribing` until an
/// external transcriber attaches the transcript (`PUT /jobs/{id}/transcript`).
#[utoipa::path(post, path = "/api/v1/calls/audio", tag = "calls", request_body = IngestAudio, responses((status = 202, description = "Job created, waiting in transcribing", body = JobCreated)))]
pub async fn ingest_audio(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<IngestAudio>,
) -> ApiResult<(StatusCode, Json<JobCreated>)> {
    let contacted_at = validate::time("contacted_at", body.contacted_at.as_deref())?;
    if !(body.recording_url.starts_with("https://") || body.recording_url.starts_with("http://")) {
        return Err(super::error::ApiError::unprocessable(
            "recording_url must be an http(s) URL",
        ));
    }
    if body.duration_seconds.is_some_and(|d| !(d >= 0.0 && d.is_finite())) {
        return Err(super::error::ApiError::unprocessable(
            "duration_seconds must be a non-negative number",
        ));
    }
    let workspace = caller.workspace(&state, body.workspace_id).await?;
    let algorithm_ids = requested_algorithms(&state, &workspace, body.algorithm_ids.as_ref()).await?;
    let skipped = validate::skip_reason(&workspace, body.duration_seconds.map(|s| (s * 1000.0) as u64));
    let job = state
        .store
        .create_job(NewJob {
            workspace_id: workspace.id,
            parent_job_id: None,
            kind: JobKind::Ingest,
            status: if skipped.is_some() {
                JobStatus::Skipped
            } else {
                JobStatus::Transcribing
            },
            algorithm_ids,
            runs: Vec::new(),
            analytics_only: body.analytics_only.unwrap_or(false),
            transcript: TranscriptSource::None,
            source_call_id: body.source_call_id,
            source_company_id: body.source_company_id,
            recording_url: Some(body.recording_url),
            contacted_at,
            duration_seconds: body.duration_seconds,
            event: skipped
                .clone()
                .unwrap_or_else(|| "Call ingested by audio URL; waiting for its transcript".into()),
            error: skipped,
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobCreated {
            job_id: job.job_id,
            status: job.status,
        }),
    ))
}
