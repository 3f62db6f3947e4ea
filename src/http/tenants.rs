//! The platform API: partners, organizations, workspaces and keys (platform keys only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ErrorBody;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::jobs::KeyScopeType;
use crate::state::AppState;
use crate::store::{Organization, Partner, Scope, Workspace};

/// Body of `POST /partners`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartner {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// Body of `POST /organizations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    /// The partner it belongs to.
    partner_id: i64,
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// Body of `POST /workspaces`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// The organization it belongs to.
    organization_id: i64,
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Calls shorter than this are skipped (default 30).
    #[schema(minimum = 0)]
    min_duration_seconds: Option<i64>,
}

/// Body of `POST /keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// The level the key reaches.
    scope_type: KeyScopeType,
    /// The partner, organization or workspace (none for platform keys).
    scope_id: Option<i64>,
}

/// 201 of `POST /keys`: the only time the token is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    id: i64,
    /// Send as `Authorization: Bearer <token>` or `X-API-Key`.
    token: String,
    scope_type: KeyScopeType,
    scope_id: Option<i64>,
    /// The token's last four characters, to tell keys apart.
    token_hint: String,
}

fn name(name: &str) -> ApiResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        Err(ApiError::unprocessable("name must be 1 to 200 characters"))
    } else {
        Ok(name)
    }
}

fn created<T>(value: T) -> ApiResult<(StatusCode, Json<T>)> {
    Ok((StatusCode::CREATED, Json(value)))
}

/// `POST /partners`.
#[utoipa::path(post, path = "/api/v1/partners", tag = "platform", request_body = NewPartner, responses((status = 201, body = Partner), (status = 403, body = ErrorBody)))]
pub async fn create_partner(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewPartner>,
) -> ApiResult<(StatusCode, Json<Partner>)> {
    caller.require_platform()?;
    created(state.store.create_partner(name(&body.name)?).await?)
}

/// `POST /organizations`.
#[utoipa::path(post, path = "/api/v1/organizations", tag = "platform", request_body = NewOrganization, responses((status = 201, body = Organization), (status = 404, body = ErrorBody)))]
pub async fn create_organization(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewOrganization>,
) -> ApiResult<(StatusCode, Json<Organization>)> {
    caller.require_platform()?;
    created(
        state
            .store
            .create_organization(body.partner_id, name(&body.name)?)
            .await?,
    )
}

/// `POST /workspaces`.
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "platform", request_body = NewWorkspace, responses((status = 201, body = Workspace), (status = 404, body = ErrorBody)))]
pub async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewWorkspace>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    caller.require_platform()?;
    if body.min_duration_seconds.is_some_and(|s| s < 0) {
        return Err(ApiError::unprocessable("min_duration_seconds must be 0 or more"));
    }
    created(
        state
            .store
            .create_workspace(body.organization_id, name(&body.name)?, body.min_duration_seconds)
            .await?,
    )
}

/// Body of `PATCH /workspaces/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSettings {
    /// Calls shorter than this are skipped.
    #[schema(minimum = 0)]
    min_duration_seconds: i64,
}

/// `PATCH /workspaces/{id}`: the ingestion filter.
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}", tag = "platform", params(("workspace_id" = i64, Path)), request_body = WorkspaceSettings, responses((status = 200, body = Workspace), (status = 404, body = ErrorBody)))]
pub async fn update_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<WorkspaceSettings>,
) -> ApiResult<Json<Workspace>> {
    caller.require_platform()?;
    if body.min_duration_seconds < 0 {
        return Err(ApiError::unprocessable("min_duration_seconds must be 0 or more"));
    }
    Ok(Json(state.store.set_min_duration(id, body.min_duration_seconds).await?))
}

/// `POST /keys`: a new key; its token is in this answer and nowhere else, ever.
#[utoipa::path(post, path = "/api/v1/keys", tag = "platform", request_body = NewKey, responses((status = 201, description = "The token is shown here only", body = KeyCreated), (status = 404, body = ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewKey>,
) -> ApiResult<(StatusCode, Json<KeyCreated>)> {
    caller.require_platform()?;
    let scope = match (body.scope_type, body.scope_id) {
        (KeyScopeType::Platform, None) => Scope::Platform,
        (KeyScopeType::Partner, Some(id)) => Scope::Partner(state.store.partner(id).await?.id),
        (KeyScopeType::Organization, Some(id)) => Scope::Organization(state.store.organization(id).await?.id),
        (KeyScopeType::Workspace, Some(id)) => Scope::Workspace(state.store.workspace(id).await?.id),
        (KeyScopeType::Platform, Some(_)) => return Err(ApiError::unprocessable("a platform key has no scope_id")),
        (level, None) => {
            return Err(ApiError::unprocessable(format!(
                "scope_id is required for scope_type {level}"
            )));
        }
    };
    let (key, token) = state.store.create_key(scope).await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            id: key.id,
            token,
            scope_type: scope.level(),
            scope_id: scope.id(),
            token_hint: key.token_hint,
        }),
    ))
}

/// `DELETE /keys/{id}`.
#[utoipa::path(delete, path = "/api/v1/keys/{key_id}", tag = "platform", params(("key_id" = i64, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    caller.require_platform()?;
    state.store.revoke_key(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
