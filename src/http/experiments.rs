//! Experiments: two algorithm versions compared over stored calls, in one
//! request. `POST /experiments` fixes both versions and selects the calls;
//! workers run them (see [`crate::batch`]); the summary, the per-call
//! results and a progress stream are read here.

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::batches::{self, JobsSelector, Snapshot};
use super::error::ErrorBody;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::batch::Progress;
use crate::batch::compare::Summary;
use crate::batch::experiments::{SideError, resolve_side};
use crate::jobs::BatchStatus;
use crate::state::AppState;
use crate::store::{ExperimentRow, ItemRow, NewExperiment, Side};

/// Most pointers one experiment compares.
const MAX_COMPARE: usize = 20;

/// Body of `POST /experiments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentRequest {
    /// What to call it (default: `baseline vs candidate`).
    name: Option<String>,
    /// Algorithm ID, optionally pinned: `rise_dds_v4` or `rise_dds_v4@1.0.0`.
    baseline: String,
    /// Algorithm ID, optionally pinned; another ID or another version of the same one.
    candidate: String,
    /// The workspace (a workspace key may leave it out).
    workspace_id: Option<i64>,
    /// Which calls (default: every call of the workspace with a transcript).
    #[serde(default)]
    jobs: JobsSelector,
    /// JSON pointers to compare (`["/outcome"]`); default: the whole output.
    #[serde(default)]
    compare: Vec<String>,
    /// Each side's config (default: the workspace's assigned config).
    #[serde(default)]
    config: SidesConfig,
}

/// `config` of `POST /experiments`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SidesConfig {
    /// The baseline's config object.
    baseline: Option<serde_json::Map<String, Value>>,
    /// The candidate's config object.
    candidate: Option<serde_json::Map<String, Value>>,
}

/// 202 of `POST /experiments`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentCreated {
    /// ID.
    experiment_id: i64,
    /// `queued`.
    status: BatchStatus,
    /// Calls selected.
    total: i64,
    /// The baseline as it will run.
    baseline: Side,
    /// The candidate as it will run.
    candidate: Side,
}

/// `GET /experiments/{id}`: the experiment, its progress and its summary.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentView {
    #[serde(flatten)]
    experiment: ExperimentRow,
    #[serde(flatten)]
    progress: Progress,
    /// Over the calls done so far (final once completed).
    summary: Summary,
}

/// A page of `GET /experiments`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentPage {
    /// Newest first (without summaries; read one experiment for its summary).
    experiments: Vec<ExperimentRow>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// Query of `GET /experiments`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this workspace.
    workspace_id: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Which calls `/results` lists.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Only {
    /// Every done call.
    #[default]
    All,
    /// Calls that do not agree (a path differs, or a side failed).
    Differ,
}

/// How `/results` is written.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One page as JSON, with `next_cursor`.
    #[default]
    Json,
    /// Every call from the cursor on, as CSV.
    Csv,
    /// Every call from the cursor on, one JSON object a line.
    Jsonl,
}

/// Query of `GET /experiments/{id}/results`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// `all` (default) or `differ`.
    #[param(inline)]
    only: Option<Only>,
    /// `json` (default, paged), `csv` or `jsonl` (the whole export).
    #[param(inline)]
    format: Option<Format>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size of `json`.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A page of `GET /experiments/{id}/results`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsPage {
    /// Per call.
    results: Vec<ItemRow>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// The data of an experiment's `progress` and `done` events.
#[derive(Debug, Serialize)]
struct ProgressEvent {
    experiment_id: i64,
    status: BatchStatus,
    total: i64,
    done: i64,
    failed: i64,
    memoized: i64,
    #[serde(flatten)]
    progress: Progress,
}

/// Compares two algorithm versions over stored calls.
#[utoipa::path(post, path = "/api/v1/experiments", tag = "experiments", request_body = ExperimentRequest,
    responses((status = 202, description = "Experiment queued", body = ExperimentCreated),
        (status = 422, description = "A field is wrong: unknown or unavailable algorithm, empty selection, too many calls", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ExperimentRequest>,
) -> ApiResult<Response> {
    let workspace = caller.workspace(&state, body.workspace_id).await?;
    let name = body
        .name
        .unwrap_or_else(|| format!("{} vs {}", body.baseline, body.candidate));
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(ApiError::unprocessable("name must be 1 to 200 characters"));
    }
    if body.compare.len() > MAX_COMPARE {
        return Err(ApiError::unprocessable(format!(
            "compare lists {} pointers; at most {MAX_COMPARE}",
            body.compare.len()
        )));
    }
    if let Some(bad) = body
        .compare
        .iter()
        .find(|p| !(p.is_empty() || p.starts_with('/')) || p.len() > 200)
    {
        return Err(ApiError::unprocessable(format!(
            "compare: {bad:?} is not a JSON pointer (RFC 6901, such as \"/outcome\"; at most 200 characters)"
        )));
    }
    let side = |field: &'static str, spec: String, config: Option<serde_json::Map<String, Value>>| {
        let (state, workspace) = (&state, &workspace);
        async move {
            resolve_side(state, workspace, field, &spec, config.map(Value::Object))
                .await
                .map_err(|e| match e {
                    SideError::Unavailable(detail) => ApiError::unprocessable(detail),
                    SideError::Store(e) => e.into(),
                })
        }
    };
    let baseline = side("baseline", body.baseline, body.config.baseline).await?;
    let candidate = side("candidate", body.candidate, body.config.candidate).await?;
    let selection = body.jobs.selection(&state, &workspace)?;
    let new = NewExperiment {
        name,
        baseline,
        candidate,
        compare: body.compare,
        selection,
        key_id: Some(caller.0.id),
    };
    let experiment = batches::created(state.store.create_experiment(&new).await?, &state, "experiment")?;
    state.wake_worker();
    let answer = ExperimentCreated {
        experiment_id: experiment.experiment_id,
        // What creating it did; a worker may have taken it up since.
        status: BatchStatus::Queued,
        total: experiment.total,
        baseline: experiment.baseline,
        candidate: experiment.candidate,
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// Experiments the key reaches, newest first.
#[utoipa::path(get, path = "/api/v1/experiments", tag = "experiments", params(ListQuery), responses((status = 200, body = ExperimentPage)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ExperimentPage>> {
    let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    let before = batches::cursor(query.cursor.as_deref())?;
    let limit = batches::page_size(query.limit, 50, 200)?;
    if let Some(w) = query.workspace_id {
        caller.workspace(&state, Some(w)).await?;
    }
    let experiments = state
        .store
        .list_experiments(&caller.scope(), query.workspace_id, before, limit)
        .await?;
    let next_cursor = batches::next_cursor(&experiments, limit, |e| e.experiment_id);
    Ok(Json(ExperimentPage {
        experiments,
        next_cursor,
    }))
}

/// The experiment in the caller's scope (404, then 403).
async fn find(state: &AppState, caller: &Caller, id: i64) -> ApiResult<ExperimentRow> {
    let experiment = state.store.experiment(id).await?;
    batches::in_scope(state, caller, experiment.workspace_id, "experiment").await?;
    Ok(experiment)
}

fn progress(state: &AppState, e: &ExperimentRow) -> Progress {
    Progress::new(e.total, e.done, e.started_at.as_deref(), state.store.clock().now())
}

/// One experiment: versions, progress, summary.
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}", tag = "experiments",
    params(("experiment_id" = i64, Path, description = "The experiment")), responses((status = 200, body = ExperimentView)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ExperimentView>> {
    let experiment = find(&state, &caller, id).await?;
    let summary = crate::batch::experiments::summarize(&state, &experiment).await?;
    Ok(Json(ExperimentView {
        progress: progress(&state, &experiment),
        experiment,
        summary,
    }))
}

/// Stops an experiment: calls not yet run are never run.
#[utoipa::path(post, path = "/api/v1/experiments/{experiment_id}/cancel", tag = "experiments",
    params(("experiment_id" = i64, Path, description = "The experiment")),
    responses((status = 200, body = ExperimentRow), (status = 409, description = "It has already ended", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ExperimentRow>> {
    find(&state, &caller, id).await?;
    if !state.store.cancel_experiment(id).await? {
        return Err(ApiError::Conflict(format!(
            "Experiment {id} has already ended ({})",
            state.store.experiment(id).await?.status
        )));
    }
    Ok(Json(state.store.experiment(id).await?))
}

/// Per call: both outcomes and the differing paths.
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/results", tag = "experiments",
    params(("experiment_id" = i64, Path, description = "The experiment"), ResultsQuery),
    responses((status = 200, description = "JSON page, or CSV / JSON lines of every call", body = ResultsPage)))]
pub async fn results(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    query: Result<Query<ResultsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    let experiment = find(&state, &caller, id).await?;
    let after = batches::cursor(query.cursor.as_deref())?.unwrap_or(0);
    let only_differ = matches!(query.only.unwrap_or_default(), Only::Differ);
    let format = query.format.unwrap_or_default();
    if let Format::Json = format {
        let limit = batches::page_size(query.limit, 100, 1000)?;
        let results = state
            .store
            .experiment_items(experiment.experiment_id, after, limit, only_differ)
            .await?;
        let next_cursor = batches::next_cursor(&results, limit, |r| r.item_id);
        return Ok(Json(ResultsPage { results, next_cursor }).into_response());
    }
    let (content_type, csv) = match format {
        Format::Csv => ("text/csv; charset=utf-8", true),
        _ => ("application/x-ndjson", false),
    };
    // The export is written a page at a time, so its size never sits in memory.
    let pages = futures_util::stream::unfold(Some((state, after, true)), move |next| async move {
        let (state, after, first) = next?;
        let mut out = Vec::new();
        if first && csv {
            out.extend_from_slice(CSV_HEADER.as_bytes());
        }
        match state.store.experiment_items(id, after, 500, only_differ).await {
            Ok(page) if page.is_empty() => (!out.is_empty()).then_some((Ok(out), None)),
            Ok(page) => {
                let last = page.last().map_or(after, |r| r.item_id);
                for item in &page {
                    if csv {
                        csv_row(&mut out, item);
                    } else {
                        serde_json::to_writer(&mut out, item).expect("rows serialize");
                        out.push(b'\n');
                    }
                }
                Some((Ok(out), Some((state, last, false))))
            }
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(pages)).into_response())
}

/// The CSV export's columns.
const CSV_HEADER: &str =
    "job_id,source_call_id,differing_paths,baseline_output,candidate_output,baseline_error,candidate_error\n";

fn csv_row(out: &mut Vec<u8>, item: &ItemRow) {
    let json = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            item.job_id.to_string(),
            item.source_call_id.clone().unwrap_or_default(),
            item.differing_paths.as_ref().map(|p| p.join(" ")).unwrap_or_default(),
            json(&item.baseline.output),
            json(&item.candidate.output),
            json(&item.baseline.error),
            json(&item.candidate.error),
        ])
        .expect("CSV into memory");
    out.extend(writer.into_inner().expect("CSV into memory"));
}

/// Progress as Server-Sent Events: `progress` when it changes, then `done`.
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/events", tag = "experiments",
    params(("experiment_id" = i64, Path, description = "The experiment")),
    responses((status = 200, description = "text/event-stream: `progress` events, then one `done`")))]
pub async fn events(State(state): State<AppState>, caller: Caller, ApiPath(id): ApiPath<i64>) -> ApiResult<Response> {
    find(&state, &caller, id).await?;
    Ok(batches::progress_events(move || {
        let state = state.clone();
        async move {
            let e = state.store.experiment(id).await?;
            let event = ProgressEvent {
                progress: progress(&state, &e),
                experiment_id: e.experiment_id,
                status: e.status,
                total: e.total,
                done: e.done,
                failed: e.failed,
                memoized: e.memoized,
            };
            Ok(Snapshot {
                counts: vec![e.done, e.failed, e.memoized],
                ended: e.status.is_final(),
                data: serde_json::to_value(event).expect("events serialize"),
            })
        }
    })
    .into_response())
}
