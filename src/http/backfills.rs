//! Backfills: `run-algorithms` over stored calls in one request. Each
//! selected call gets a child job exactly when a `run-algorithms` request
//! would have made one (see [`crate::batch::backfills`]).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::batches::{self, JobsSelector, Snapshot};
use super::error::ErrorBody;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use super::validate;
use crate::batch::Progress;
use crate::jobs::BatchStatus;
use crate::state::AppState;
use crate::store::{BackfillCall, BackfillRow, NewBackfill};

/// Body of `POST /backfills`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// 1 to 10 algorithm IDs, as `run-algorithms` takes them.
    #[schema(value_type = Vec<String>, min_items = 1, max_items = 10)]
    algorithm_ids: Option<Value>,
    /// The workspace (a workspace key may leave it out).
    workspace_id: Option<i64>,
    /// Which calls (default: every call of the workspace).
    #[serde(default)]
    jobs: JobsSelector,
    /// The child jobs' `analytics_only` (default true: no webhooks).
    #[schema(value_type = Option<bool>)]
    analytics_only: Option<Value>,
    /// Create a child job even where the algorithms already ran (default false).
    #[schema(value_type = Option<bool>)]
    force_rerun: Option<Value>,
}

/// 202 of `POST /backfills`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillCreated {
    /// ID.
    backfill_id: i64,
    /// `queued`.
    status: BatchStatus,
    /// Calls selected.
    total: i64,
}

/// `GET /backfills/{id}`: the backfill and its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillView {
    #[serde(flatten)]
    backfill: BackfillRow,
    #[serde(flatten)]
    progress: Progress,
}

/// A page of `GET /backfills`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillPage {
    /// Newest first.
    backfills: Vec<BackfillRow>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// A page of `GET /backfills/{id}/jobs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillCalls {
    /// Handled calls in selection order: the child job, or why none.
    jobs: Vec<BackfillCall>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// Query of the backfill lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Only this workspace (`GET /backfills` only).
    workspace_id: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Runs algorithms over stored calls, as `run-algorithms` on each would.
#[utoipa::path(post, path = "/api/v1/backfills", tag = "experiments", request_body = BackfillRequest,
    responses((status = 202, description = "Backfill queued", body = BackfillCreated),
        (status = 400, description = "Algorithms not available: [...]", body = ErrorBody),
        (status = 422, description = "A field is wrong: empty selection, too many calls", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BackfillRequest>,
) -> ApiResult<Response> {
    let algorithm_ids = validate::algorithm_ids(body.algorithm_ids.as_ref())?;
    let analytics_only = validate::flag(body.analytics_only.as_ref(), "analytics_only", true)?;
    let force_rerun = validate::flag(body.force_rerun.as_ref(), "force_rerun", false)?;
    let workspace = caller.workspace(&state, body.workspace_id).await?;
    let missing = state.store.unavailable(&workspace, &algorithm_ids).await?;
    if !missing.is_empty() {
        return Err(validate::not_available(&missing));
    }
    let new = NewBackfill {
        algorithm_ids,
        analytics_only,
        force_rerun,
        selection: body.jobs.selection(&state, &workspace)?,
        key_id: Some(caller.0.id),
    };
    let backfill = batches::created(state.store.create_backfill(&new).await?, &state, "backfill")?;
    state.wake_worker();
    let answer = BackfillCreated {
        backfill_id: backfill.backfill_id,
        // What creating it did; a worker may have taken it up since.
        status: BatchStatus::Queued,
        total: backfill.total,
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// Backfills the key reaches, newest first.
#[utoipa::path(get, path = "/api/v1/backfills", tag = "experiments", params(PageQuery), responses((status = 200, body = BackfillPage)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<BackfillPage>> {
    let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    let before = batches::cursor(query.cursor.as_deref())?;
    let limit = batches::page_size(query.limit, 50, 200)?;
    if let Some(w) = query.workspace_id {
        caller.workspace(&state, Some(w)).await?;
    }
    let backfills = state
        .store
        .list_backfills(&caller.scope(), query.workspace_id, before, limit)
        .await?;
    let next_cursor = batches::next_cursor(&backfills, limit, |b| b.backfill_id);
    Ok(Json(BackfillPage { backfills, next_cursor }))
}

/// The backfill in the caller's scope (404, then 403).
async fn find(state: &AppState, caller: &Caller, id: i64) -> ApiResult<BackfillRow> {
    let backfill = state.store.backfill(id).await?;
    batches::in_scope(state, caller, backfill.workspace_id, "backfill").await?;
    Ok(backfill)
}

fn view(state: &AppState, backfill: BackfillRow) -> BackfillView {
    BackfillView {
        progress: Progress::new(
            backfill.total,
            backfill.handled(),
            backfill.started_at.as_deref(),
            state.store.clock().now(),
        ),
        backfill,
    }
}

/// One backfill: counts and progress.
#[utoipa::path(get, path = "/api/v1/backfills/{backfill_id}", tag = "experiments",
    params(("backfill_id" = i64, Path, description = "The backfill")), responses((status = 200, body = BackfillView)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<BackfillView>> {
    let backfill = find(&state, &caller, id).await?;
    Ok(Json(view(&state, backfill)))
}

/// The calls handled so far: each child job created, or why none was.
#[utoipa::path(get, path = "/api/v1/backfills/{backfill_id}/jobs", tag = "experiments",
    params(("backfill_id" = i64, Path, description = "The backfill"), PageQuery), responses((status = 200, body = BackfillCalls)))]
pub async fn jobs(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<BackfillCalls>> {
    let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    find(&state, &caller, id).await?;
    let after = batches::cursor(query.cursor.as_deref())?.unwrap_or(0);
    let limit = batches::page_size(query.limit, 100, 1000)?;
    let jobs = state.store.backfill_calls(id, after, limit).await?;
    let next_cursor = batches::next_cursor(&jobs, limit, |c| c.item_id);
    Ok(Json(BackfillCalls { jobs, next_cursor }))
}

/// Stops a backfill: calls not yet handled never are; child jobs already created run on.
#[utoipa::path(post, path = "/api/v1/backfills/{backfill_id}/cancel", tag = "experiments",
    params(("backfill_id" = i64, Path, description = "The backfill")),
    responses((status = 200, body = BackfillView), (status = 409, description = "It has already ended", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<BackfillView>> {
    find(&state, &caller, id).await?;
    if !state.store.cancel_backfill(id).await? {
        return Err(ApiError::Conflict(format!(
            "Backfill {id} has already ended ({})",
            state.store.backfill(id).await?.status
        )));
    }
    Ok(Json(view(&state, state.store.backfill(id).await?)))
}

/// Progress as Server-Sent Events: `progress` when it changes, then `done`.
#[utoipa::path(get, path = "/api/v1/backfills/{backfill_id}/events", tag = "experiments",
    params(("backfill_id" = i64, Path, description = "The backfill")),
    responses((status = 200, description = "text/event-stream: `progress` events, then one `done`")))]
pub async fn events(State(state): State<AppState>, caller: Caller, ApiPath(id): ApiPath<i64>) -> ApiResult<Response> {
    find(&state, &caller, id).await?;
    Ok(batches::progress_events(move || {
        let state = state.clone();
        async move {
            let b = state.store.backfill(id).await?;
            let counts = vec![b.created, b.skipped_existing, b.skipped_invalid, b.completed, b.failed];
            let ended = b.status.is_final();
            Ok(Snapshot {
                counts,
                ended,
                data: serde_json::to_value(view(&state, b)).expect("views serialize"),
            })
        }
    })
    .into_response())
}
