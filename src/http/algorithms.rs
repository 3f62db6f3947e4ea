//! Algorithms: what a workspace may run, assignment and scope (platform keys).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
#[allow(unused_imports)]
use super::openapi::*;
use super::error::{ApiError, ApiJson, ApiResult};
use crate::app::AppState;
use crate::store::Scope;

/// Query of `GET /algorithms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    workspace_id: Option<i64>,
}

/// `GET /algorithms`: what the workspace may run (the key's own workspace, or
/// the one named). A platform key without a workspace sees every algorithm.
#[utoipa::path(get, path = "/api/v1/algorithms", tag = "algorithms", params(("workspace_id" = Option<i64>, Query)), responses((status = 200, body = AnyObject), (status = 403, body = ErrorBody), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, caller: Caller, query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>) -> ApiResult<Json<Value>> {
    let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    if caller.scope() == Scope::Platform && query.workspace_id.is_none() {
        let mut all = Vec::new();
        for loaded in state.engine.registry().list() {
            all.push(state.store.algorithm(&loaded.info.id).await?);
        }
        return Ok(Json(json!({ "algorithms": all })));
    }
    let workspace = caller.workspace(&state, query.workspace_id).await?;
    let algorithms = state.store.available_algorithms(&workspace).await?;
    Ok(Json(json!({ "workspace_id": workspace.id, "algorithms": algorithms })))
}

/// Body of `POST /workspaces/{id}/algorithms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    algorithm_id: String,
    config: Option<Value>,
}

/// `POST /workspaces/{id}/algorithms`: makes an algorithm available to (and
/// run by default in) a workspace, with an optional config.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/algorithms", tag = "platform", params(("workspace_id" = i64, Path)), request_body = AnyObject, responses((status = 201, body = AnyObject), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(workspace_id): Path<i64>,
    ApiJson(body): ApiJson<Assign>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_platform()?;
    if body.config.as_ref().is_some_and(|c| !c.is_object()) {
        return Err(ApiError::unprocessable("config must be a JSON object"));
    }
    state.store.workspace(workspace_id).await?;
    state.store.algorithm(&body.algorithm_id).await.map_err(|_| ApiError::NotFound(format!("Algorithm {} not found", body.algorithm_id)))?;
    state.store.assign_algorithm(workspace_id, &body.algorithm_id, body.config.as_ref()).await?;
    Ok((StatusCode::CREATED, Json(json!({"workspace_id": workspace_id, "algorithm_id": body.algorithm_id, "config": body.config}))))
}

/// `DELETE /workspaces/{id}/algorithms/{algorithm_id}`.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/algorithms/{algorithm_id}", tag = "platform", params(("workspace_id" = i64, Path), ("algorithm_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn unassign(State(state): State<AppState>, caller: Caller, Path((workspace_id, algorithm_id)): Path<(i64, String)>) -> ApiResult<StatusCode> {
    caller.require_platform()?;
    state.store.unassign_algorithm(workspace_id, &algorithm_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PATCH /algorithms/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeChange {
    scope_type: String,
    scope_id: Option<i64>,
}

/// `PATCH /algorithms/{id}`: scope an algorithm to a partner or organization,
/// to assigned workspaces only (`workspace`), or make it global.
#[utoipa::path(patch, path = "/api/v1/algorithms/{algorithm_id}", tag = "platform", params(("algorithm_id" = String, Path)), request_body = AnyObject, responses((status = 200, body = AnyObject), (status = 422, body = ErrorBody), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn set_scope(
    State(state): State<AppState>,
    caller: Caller,
    Path(algorithm_id): Path<String>,
    ApiJson(body): ApiJson<ScopeChange>,
) -> ApiResult<Json<Value>> {
    caller.require_platform()?;
    match (body.scope_type.as_str(), body.scope_id) {
        ("global" | "workspace", None) => {}
        ("workspace", Some(_)) => return Err(ApiError::unprocessable("scope_type workspace takes no scope_id: assign the algorithm to workspaces instead")),
        ("global", Some(_)) => return Err(ApiError::unprocessable("a global algorithm has no scope_id")),
        ("partner", Some(id)) => {
            state.store.partner(id).await?;
        }
        ("organization", Some(id)) => {
            state.store.organization(id).await?;
        }
        ("partner" | "organization", None) => return Err(ApiError::unprocessable(format!("scope_id is required for scope_type {}", body.scope_type))),
        (other, _) => {
            return Err(ApiError::unprocessable(format!(
                "scope_type must be global, partner, organization or workspace (assigned workspaces only), not {other:?}"
            )));
        }
    }
    Ok(Json(serde_json::to_value(state.store.set_algorithm_scope(&algorithm_id, &body.scope_type, body.scope_id).await?).map_err(anyhow::Error::from)?))
}
