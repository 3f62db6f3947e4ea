//! Algorithms: what a key may run, one algorithm's state, its scope, and
//! disabling and enabling it. Versions (publish, activate, rollback, compare)
//! are in `algorithm_versions`; workspace assignment in `workspace_algorithms`.
//!
//! Who may do what: any key sees global algorithms and those available to a
//! workspace it reaches. Platform keys manage every algorithm; a partner key
//! manages the algorithms scoped to its partner or to one of its organizations.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::ErrorBody;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::jobs::{AlgorithmScope, AlgorithmStatus};
use crate::state::AppState;
use crate::store::{AlgorithmRow, Scope, VersionRow};

/// Query of `GET /algorithms`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The workspace whose algorithms to list (default: the key's own).
    workspace_id: Option<i64>,
}

/// `GET /algorithms`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlgorithmList {
    /// The workspace listed; absent when a platform key lists every algorithm.
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace_id: Option<i64>,
    /// By ID.
    algorithms: Vec<AlgorithmRow>,
}

/// `GET /algorithms/{id}`: an algorithm with its versions and golden jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlgorithmView {
    #[serde(flatten)]
    algorithm: AlgorithmRow,
    /// The version new runs use; null until one is activated.
    active_version: Option<String>,
    /// The version this server has loaded (null: none).
    loaded_version: Option<String>,
    /// What `rollback` goes back to.
    previous_version: Option<String>,
    /// Every published version, newest first.
    versions: Vec<VersionRow>,
    /// Jobs the golden gate compares new versions on.
    golden_job_ids: Vec<i64>,
}

/// Body of `PATCH /algorithms/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeChange {
    /// Which workspaces it is available to besides those it is assigned to.
    scope_type: AlgorithmScope,
    /// The partner or organization (only for those scopes).
    scope_id: Option<i64>,
}

/// `GET /algorithms`: what the workspace may run (the key's own workspace, or
/// the one named). A platform key without a workspace sees every algorithm.
#[utoipa::path(get, path = "/api/v1/algorithms", tag = "algorithms", params(ListQuery), responses((status = 200, body = AlgorithmList), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AlgorithmList>> {
    let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    if caller.scope() == Scope::Platform && query.workspace_id.is_none() {
        return Ok(Json(AlgorithmList {
            workspace_id: None,
            algorithms: state.store.all_algorithms().await?,
        }));
    }
    let workspace = caller.workspace(&state, query.workspace_id).await?;
    Ok(Json(AlgorithmList {
        workspace_id: Some(workspace.id),
        algorithms: state.store.available_algorithms(&workspace).await?,
    }))
}

/// `PATCH /algorithms/{id}`: scope an algorithm to a partner or organization,
/// to assigned workspaces only (`workspace`), or make it global.
#[utoipa::path(patch, path = "/api/v1/algorithms/{algorithm_id}", tag = "platform", params(("algorithm_id" = String, Path)), request_body = ScopeChange, responses((status = 200, body = AlgorithmRow), (status = 404, body = ErrorBody)))]
pub async fn set_scope(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(algorithm_id): ApiPath<String>,
    ApiJson(body): ApiJson<ScopeChange>,
) -> ApiResult<Json<AlgorithmRow>> {
    caller.require_platform()?;
    check_scope(&state, body.scope_type, body.scope_id).await?;
    Ok(Json(
        state
            .store
            .set_algorithm_scope(&algorithm_id, body.scope_type, body.scope_id)
            .await?,
    ))
}

/// Checks a scope: its type is known and its `scope_id` names an existing
/// partner or organization when (and only when) the type needs one.
pub(super) async fn check_scope(state: &AppState, scope_type: AlgorithmScope, scope_id: Option<i64>) -> ApiResult<()> {
    match (scope_type, scope_id) {
        (AlgorithmScope::Global | AlgorithmScope::Workspace, None) => Ok(()),
        (AlgorithmScope::Workspace, Some(_)) => Err(ApiError::unprocessable(
            "scope_type workspace takes no scope_id: assign the algorithm to workspaces instead",
        )),
        (AlgorithmScope::Global, Some(_)) => Err(ApiError::unprocessable("a global algorithm has no scope_id")),
        (AlgorithmScope::Partner, Some(id)) => state
            .store
            .partner(id)
            .await
            .map(|_| ())
            .map_err(|_| ApiError::NotFound(format!("Partner {id} not found"))),
        (AlgorithmScope::Organization, Some(id)) => state
            .store
            .organization(id)
            .await
            .map(|_| ())
            .map_err(|_| ApiError::NotFound(format!("Organization {id} not found"))),
        (AlgorithmScope::Partner | AlgorithmScope::Organization, None) => Err(ApiError::unprocessable(format!(
            "scope_id is required for scope_type {scope_type}"
        ))),
    }
}

/// Whether the caller manages algorithms of this scope (publishes versions,
/// activates, rolls back, disables).
pub(super) async fn may_manage(
    state: &AppState,
    caller: &Caller,
    scope_type: AlgorithmScope,
    scope_id: Option<i64>,
) -> ApiResult<bool> {
    Ok(match (caller.scope(), scope_type, scope_id) {
        (Scope::Platform, _, _) => true,
        (Scope::Partner(p), AlgorithmScope::Partner, Some(id)) => p == id,
        (Scope::Partner(p), AlgorithmScope::Organization, Some(id)) => {
            state.store.organization(id).await.is_ok_and(|o| o.partner_id == p)
        }
        _ => false,
    })
}

/// The algorithm, if the caller may see it; 404 otherwise (an algorithm out
/// of reach is not revealed).
pub(super) async fn visible(state: &AppState, caller: &Caller, id: &str) -> ApiResult<AlgorithmRow> {
    let not_found = || ApiError::NotFound(format!("Algorithm {id} not found"));
    let row = match state.store.algorithm(id).await {
        Ok(row) => row,
        Err(crate::store::StoreError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    if may_manage(state, caller, row.scope_type, row.scope_id).await?
        || state.store.algorithm_visible(id, caller.scope()).await?
    {
        Ok(row)
    } else {
        Err(not_found())
    }
}

/// The algorithm, if the caller manages it: 404 when it cannot see it, 403 when it can but does not manage it.
pub(super) async fn managed(state: &AppState, caller: &Caller, id: &str) -> ApiResult<AlgorithmRow> {
    let row = visible(state, caller, id).await?;
    if may_manage(state, caller, row.scope_type, row.scope_id).await? {
        Ok(row)
    } else {
        Err(ApiError::Forbidden(format!(
            "Not authorized to manage {id}: it is a {} algorithm; platform keys manage every algorithm, partner keys only their own",
            row.scope_type
        )))
    }
}

/// `GET /algorithms/{id}`: the algorithm, its active version, its version
/// history and golden jobs.
#[utoipa::path(get, path = "/api/v1/algorithms/{algorithm_id}", tag = "algorithms", params(("algorithm_id" = String, Path)), responses((status = 200, body = AlgorithmView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(algorithm_id): ApiPath<String>,
) -> ApiResult<Json<AlgorithmView>> {
    let row = visible(&state, &caller, &algorithm_id).await?;
    Ok(Json(describe(&state, row).await?))
}

/// An algorithm with what `GET /algorithms/{id}` adds to the row.
pub(super) async fn describe(state: &AppState, row: AlgorithmRow) -> ApiResult<AlgorithmView> {
    let id = row.algorithm_id.clone();
    Ok(AlgorithmView {
        active_version: (row.status != AlgorithmStatus::Inactive).then(|| row.version.clone()),
        loaded_version: state.engine.registry().get(&id).map(|a| a.info.version.to_string()),
        previous_version: state.store.previous_version(&id).await?,
        versions: state.store.versions(&id).await?,
        golden_job_ids: state.store.goldens(&id).await?,
        algorithm: row,
    })
}

/// `POST /algorithms/{id}/disable`: new runs of the algorithm are refused
/// (requests naming it get 400 "Algorithms not available"); runs in flight
/// finish; queued runs fail as `unavailable`. Its versions are kept.
#[utoipa::path(post, path = "/api/v1/algorithms/{algorithm_id}/disable", tag = "algorithms", params(("algorithm_id" = String, Path)), responses((status = 200, body = AlgorithmView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(algorithm_id): ApiPath<String>,
) -> ApiResult<Json<AlgorithmView>> {
    set_status(&state, &caller, &algorithm_id, AlgorithmStatus::Disabled).await
}

/// `POST /algorithms/{id}/enable`: serves the active version again.
#[utoipa::path(post, path = "/api/v1/algorithms/{algorithm_id}/enable", tag = "algorithms", params(("algorithm_id" = String, Path)), responses((status = 200, body = AlgorithmView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(algorithm_id): ApiPath<String>,
) -> ApiResult<Json<AlgorithmView>> {
    set_status(&state, &caller, &algorithm_id, AlgorithmStatus::Active).await
}

async fn set_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    status: AlgorithmStatus,
) -> ApiResult<Json<AlgorithmView>> {
    let row = managed(state, caller, id).await?;
    if row.status == AlgorithmStatus::Inactive {
        return Err(ApiError::Conflict(format!(
            "{id} has no active version yet: activate one with POST /api/v1/algorithms/{id}/activate {{\"version\": \"{}\"}}",
            row.version
        )));
    }
    if row.status != status {
        if status == AlgorithmStatus::Active {
            // Load before the database says it serves, so a version that no longer loads is refused here.
            let loaded = crate::lifecycle::load_version(&state.engine, &state.store, id, &row.version).await?;
            state.store.set_algorithm_status(id, status, Some(caller.0.id)).await?;
            crate::lifecycle::sync(&state.engine, &state.store, id, Some(&loaded)).await?;
        } else {
            state.store.set_algorithm_status(id, status, Some(caller.0.id)).await?;
            crate::lifecycle::sync(&state.engine, &state.store, id, None).await?;
        }
    }
    Ok(Json(describe(state, state.store.algorithm(id).await?).await?))
}
