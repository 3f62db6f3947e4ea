//! Webhook configuration per partner, organization or workspace:
//! `PUT/GET/DELETE /config/{entity_type}/{entity_id}/webhook` and
//! `.../webhook-credential`. Secrets are write-only: reads return hints.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ErrorBody;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::jobs::AuthType;
use crate::secrets::hint;
use crate::state::AppState;
use crate::store::{CredentialRow, Entity};

/// Body of `PUT .../webhook`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    /// `https://` (or `http://`) URL on a public address.
    url: String,
}

/// Body of `PUT .../webhook-credential`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialBody {
    /// How requests authenticate besides the signature.
    auth_type: AuthType,
    /// `bearer` only.
    token: Option<String>,
    /// `hmac` only: at least 16 characters.
    #[schema(min_length = 16)]
    secret: Option<String>,
    /// `hmac` only.
    key_id: Option<String>,
    /// `basic` only; no `:`.
    username: Option<String>,
    /// `basic` only.
    password: Option<String>,
}

/// An entity's webhook endpoint (its signing secret only as a hint).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// `partner`, `organization` or `workspace`.
    entity_type: &'static str,
    entity_id: i64,
    url: String,
    /// `whsec_...` once, when the endpoint is created; absent afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
    /// The signing secret's last characters.
    signing_secret_hint: String,
    /// Deliveries stopped (the receiver answered 410 Gone); a PUT enables it again.
    disabled: bool,
    disabled_at: Option<String>,
    disabled_reason: Option<String>,
    created_at: String,
    updated_at: String,
}

/// An entity's outbound credential: its type and a hint, never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    /// `partner`, `organization` or `workspace`.
    entity_type: &'static str,
    entity_id: i64,
    auth_type: AuthType,
    key_id: Option<String>,
    username: Option<String>,
    /// The secret's last characters.
    secret_hint: Option<String>,
    updated_at: String,
}

/// The entity a path names, after checking it exists and the key covers it.
async fn entity(state: &AppState, caller: &Caller, entity_type: &str, id: i64) -> ApiResult<Entity> {
    let entity = Entity::parse(entity_type, id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "Unknown entity type {entity_type:?}: use partner, organization or workspace"
        ))
    })?;
    if !state.store.entity_exists(entity).await? {
        return Err(ApiError::NotFound(format!(
            "{} {id} not found",
            capitalised(entity.type_name())
        )));
    }
    if caller.covers(state, entity).await? {
        Ok(entity)
    } else {
        Err(ApiError::Forbidden(format!(
            "Not authorized to configure {entity_type} {id}"
        )))
    }
}

fn capitalised(word: &str) -> String {
    let mut w = word.to_owned();
    w[..1].make_ascii_uppercase();
    w
}

/// `PUT .../webhook`: sets the URL. A new endpoint gets a signing secret,
/// returned in this answer only.
#[utoipa::path(put, path = "/api/v1/config/{entity_type}/{entity_id}/webhook", tag = "webhooks", params(("entity_type" = String, Path, description = "partner, organization or workspace"), ("entity_id" = i64, Path)), request_body = EndpointBody, responses((status = 200, description = "The endpoint; signing_secret only when just created", body = EndpointView), (status = 400, description = "URL refused (scheme, credentials, private address)", body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((entity_type, id)): ApiPath<(String, i64)>,
    ApiJson(body): ApiJson<EndpointBody>,
) -> ApiResult<Json<EndpointView>> {
    let entity = entity(&state, &caller, &entity_type, id).await?;
    let url = state
        .outbound
        .check(body.url.trim())
        .await
        .map_err(ApiError::BadRequest)?;
    let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 24]>()));
    let created = state
        .store
        .put_endpoint(entity, url.as_str(), &state.secrets.seal(&secret), &hint(&secret))
        .await?;
    let endpoint = state
        .store
        .endpoint(entity)
        .await?
        .ok_or_else(|| anyhow::anyhow!("endpoint vanished after write"))?;
    Ok(Json(endpoint_view(entity, endpoint, created.then_some(secret))))
}

fn endpoint_view(entity: Entity, e: crate::store::EndpointRow, signing_secret: Option<String>) -> EndpointView {
    EndpointView {
        entity_type: entity.type_name(),
        entity_id: entity.id(),
        url: e.url,
        signing_secret,
        signing_secret_hint: e.signing_secret_hint,
        disabled: e.disabled_at.is_some(),
        disabled_at: e.disabled_at,
        disabled_reason: e.disabled_reason,
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

/// `GET .../webhook`.
#[utoipa::path(get, path = "/api/v1/config/{entity_type}/{entity_id}/webhook", tag = "webhooks", params(("entity_type" = String, Path, description = "partner, organization or workspace"), ("entity_id" = i64, Path)), responses((status = 200, body = EndpointView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((entity_type, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<EndpointView>> {
    let entity = entity(&state, &caller, &entity_type, id).await?;
    let endpoint = state
        .store
        .endpoint(entity)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No webhook is configured for {entity_type} {id}")))?;
    Ok(Json(endpoint_view(entity, endpoint, None)))
}

/// `DELETE .../webhook`.
#[utoipa::path(delete, path = "/api/v1/config/{entity_type}/{entity_id}/webhook", tag = "webhooks", params(("entity_type" = String, Path, description = "partner, organization or workspace"), ("entity_id" = i64, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((entity_type, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    let entity = entity(&state, &caller, &entity_type, id).await?;
    state.store.delete_endpoint(entity).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn required<'a>(value: &'a Option<String>, field: &str, auth_type: AuthType) -> ApiResult<&'a str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::unprocessable(format!("{field} is required for auth_type {auth_type}")))
}

/// `PUT .../webhook-credential`.
#[utoipa::path(put, path = "/api/v1/config/{entity_type}/{entity_id}/webhook-credential", tag = "webhooks", params(("entity_type" = String, Path, description = "partner, organization or workspace"), ("entity_id" = i64, Path)), request_body = CredentialBody, responses((status = 200, description = "Type and hint, never the secret", body = CredentialView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((entity_type, id)): ApiPath<(String, i64)>,
    ApiJson(body): ApiJson<CredentialBody>,
) -> ApiResult<Json<CredentialView>> {
    let auth = body.auth_type;
    let unexpected: Vec<&str> = [
        ("token", body.token.is_some() && auth != AuthType::Bearer),
        ("secret", body.secret.is_some() && auth != AuthType::Hmac),
        ("key_id", body.key_id.is_some() && auth != AuthType::Hmac),
        ("username", body.username.is_some() && auth != AuthType::Basic),
        ("password", body.password.is_some() && auth != AuthType::Basic),
    ]
    .into_iter()
    .filter_map(|(f, bad)| bad.then_some(f))
    .collect();
    let (secret, key_id, username) = match auth {
        AuthType::None => (None, None, None),
        AuthType::Bearer => (Some(required(&body.token, "token", auth)?), None, None),
        AuthType::Hmac => {
            let secret = required(&body.secret, "secret", auth)?;
            if secret.len() < 16 {
                return Err(ApiError::unprocessable("secret must be at least 16 characters"));
            }
            (Some(secret), Some(required(&body.key_id, "key_id", auth)?), None)
        }
        AuthType::Basic => {
            let user = required(&body.username, "username", auth)?;
            if user.contains(':') {
                return Err(ApiError::unprocessable("username must not contain ':'"));
            }
            (Some(required(&body.password, "password", auth)?), None, Some(user))
        }
    };
    if !unexpected.is_empty() {
        return Err(ApiError::unprocessable(format!(
            "{} not used by auth_type {auth}",
            unexpected.join(", ")
        )));
    }
    let entity = entity(&state, &caller, &entity_type, id).await?;
    let row = CredentialRow {
        auth_type: auth,
        secret_enc: secret.map(|s| state.secrets.seal(s)),
        secret_hint: secret.map(hint),
        key_id: key_id.map(str::to_owned),
        username: username.map(str::to_owned),
        updated_at: String::new(),
    };
    state.store.put_credential(entity, &row).await?;
    get_credential(State(state), caller, ApiPath((entity_type, id))).await
}

/// `GET .../webhook-credential`: the type and a hint, never the secret.
#[utoipa::path(get, path = "/api/v1/config/{entity_type}/{entity_id}/webhook-credential", tag = "webhooks", params(("entity_type" = String, Path, description = "partner, organization or workspace"), ("entity_id" = i64, Path)), responses((status = 200, body = CredentialView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((entity_type, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<CredentialView>> {
    let entity = entity(&state, &caller, &entity_type, id).await?;
    let c = state
        .store
        .credential(entity)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No webhook credential is configured for {entity_type} {id}")))?;
    Ok(Json(CredentialView {
        entity_type: entity.type_name(),
        entity_id: entity.id(),
        auth_type: c.auth_type,
        key_id: c.key_id,
        username: c.username,
        secret_hint: c.secret_hint,
        updated_at: c.updated_at,
    }))
}

/// `DELETE .../webhook-credential`.
#[utoipa::path(delete, path = "/api/v1/config/{entity_type}/{entity_id}/webhook-credential", tag = "webhooks", params(("entity_type" = String, Path, description = "partner, organization or workspace"), ("entity_id" = i64, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((entity_type, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    let entity = entity(&state, &caller, &entity_type, id).await?;
    state.store.delete_credential(entity).await?;
    Ok(StatusCode::NO_CONTENT)
}
