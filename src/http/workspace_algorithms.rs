//! Workspace algorithms: which algorithms a workspace runs by default, and
//! the config each runs with there (platform keys assign; any key reaching
//! the workspace reads).
//!
//! A config is checked by the algorithm itself before it is stored: the
//! active version runs once on an empty transcript with it, and a config the
//! plugin calls invalid is refused with the plugin's own words. A run records
//! the sha256 of the config it ran with, so a result can be traced to it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gensail_engine::{AlgorithmErrorKind, RunError};
use gensail_host_api::Transcript;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ErrorBody;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use crate::store::config_sha256;

/// Body of `POST /workspaces/{id}/algorithms`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The algorithm to assign.
    algorithm_id: String,
    /// Its config in this workspace (a JSON object; default: the algorithm's default config).
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
}

/// One algorithm assigned to a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct Assignment {
    algorithm_id: String,
    /// The workspace's own config; null: the algorithm's default applies.
    config: Option<Value>,
    /// The config runs use here.
    effective_config: Value,
    /// sha256 of the effective config (what runs record as `config_sha256`).
    config_sha256: String,
}

/// `GET /workspaces/{id}/algorithms`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Assignments {
    workspace_id: i64,
    /// By algorithm ID.
    algorithms: Vec<Assignment>,
}

/// 201 of `POST /workspaces/{id}/algorithms`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Assigned {
    workspace_id: i64,
    algorithm_id: String,
    /// The config given; null: the algorithm's default applies.
    config: Option<Value>,
    /// sha256 of the config runs use here.
    config_sha256: String,
}

/// `GET /workspaces/{id}/algorithms`: the workspace's assigned algorithms,
/// each with the config it runs with there and that config's sha256 (what
/// runs record as `config_sha256`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/algorithms", tag = "algorithms", params(("workspace_id" = i64, Path)), responses((status = 200, body = Assignments), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(workspace_id): ApiPath<i64>,
) -> ApiResult<Json<Assignments>> {
    let workspace = caller.workspace(&state, Some(workspace_id)).await?;
    let mut assigned = Vec::new();
    for (algorithm_id, config) in state.store.workspace_assignments(workspace.id).await? {
        let effective = state.store.algorithm_config(workspace.id, &algorithm_id).await?;
        assigned.push(Assignment {
            algorithm_id,
            config,
            config_sha256: config_sha256(&effective),
            effective_config: effective,
        });
    }
    Ok(Json(Assignments {
        workspace_id: workspace.id,
        algorithms: assigned,
    }))
}

/// `POST /workspaces/{id}/algorithms`: makes an algorithm available to (and
/// run by default in) a workspace, with an optional config; assigning again
/// replaces the config. Later runs use it; queued runs keep the config they
/// were created with.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/algorithms", tag = "platform", params(("workspace_id" = i64, Path)), request_body = Assign, responses((status = 201, body = Assigned), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(workspace_id): ApiPath<i64>,
    ApiJson(body): ApiJson<Assign>,
) -> ApiResult<(StatusCode, Json<Assigned>)> {
    caller.require_platform()?;
    if body.config.as_ref().is_some_and(|c| !c.is_object()) {
        return Err(ApiError::unprocessable("config must be a JSON object"));
    }
    state.store.workspace(workspace_id).await?;
    state
        .store
        .algorithm(&body.algorithm_id)
        .await
        .map_err(|_| ApiError::NotFound(format!("Algorithm {} not found", body.algorithm_id)))?;
    if let Some(config) = &body.config {
        check_config(&state, &body.algorithm_id, config).await?;
    }
    state
        .store
        .assign_algorithm(workspace_id, &body.algorithm_id, body.config.as_ref())
        .await?;
    let effective = state.store.algorithm_config(workspace_id, &body.algorithm_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(Assigned {
            workspace_id,
            algorithm_id: body.algorithm_id,
            config: body.config,
            config_sha256: config_sha256(&effective),
        }),
    ))
}

/// `DELETE /workspaces/{id}/algorithms/{algorithm_id}`.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/algorithms/{algorithm_id}", tag = "platform", params(("workspace_id" = i64, Path), ("algorithm_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn unassign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((workspace_id, algorithm_id)): ApiPath<(i64, String)>,
) -> ApiResult<StatusCode> {
    caller.require_platform()?;
    state.store.unassign_algorithm(workspace_id, &algorithm_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the active version whether it accepts `config`: one run on an empty
/// transcript; only the plugin's own `invalid-config` answer refuses it (a
/// plugin that checks its config later, or not at all, is not second-guessed).
async fn check_config(state: &AppState, algorithm_id: &str, config: &Value) -> ApiResult<()> {
    let Some(algorithm) = state.engine.registry().get(algorithm_id) else {
        return Ok(());
    };
    let empty = Transcript {
        language: None,
        duration_ms: 0,
        segments: Vec::new(),
    };
    let report = state.engine.run_loaded(&algorithm, &empty, &config.to_string()).await;
    match report.error {
        Some(RunError::Algorithm {
            kind: AlgorithmErrorKind::InvalidConfig,
            message,
        }) => Err(ApiError::unprocessable(format!(
            "config is not valid for {algorithm_id} {}: {message}",
            algorithm.info.version
        ))),
        _ => Ok(()),
    }
}
