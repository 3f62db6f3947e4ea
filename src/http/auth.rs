//! Who is calling: the API key middleware, the [`Caller`] extractor, and the
//! tenancy checks every handler uses.
//!
//! Every `/api/v1` request passes [`authenticate`]: the token (from
//! `Authorization: Bearer` or `x-api-key`) is looked up by its hash, the key's
//! rate limit is applied, and the answer carries the `X-RateLimit-*` headers.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{ApiKey, JobRow, Scope, Workspace};

/// The authenticated key behind a request.
#[derive(Debug, Clone)]
pub struct Caller(pub ApiKey);

impl Caller {
    /// The key's scope.
    pub fn scope(&self) -> Scope {
        self.0.scope
    }

    /// 403 unless this is a platform key.
    pub fn require_platform(&self) -> ApiResult<()> {
        match self.scope() {
            Scope::Platform => Ok(()),
            _ => Err(ApiError::Forbidden("This needs a platform key".into())),
        }
    }

    /// Whether the key reaches a workspace (platform keys reach all).
    pub fn reaches(&self, workspace: &Workspace) -> bool {
        match self.scope() {
            Scope::Platform => true,
            Scope::Partner(p) => workspace.partner_id == p,
            Scope::Organization(o) => workspace.organization_id == o,
            Scope::Workspace(w) => workspace.id == w,
        }
    }

    /// Whether the key's scope covers a partner, organization or workspace
    /// (the entity itself or one above it).
    pub async fn covers(&self, state: &AppState, entity: crate::store::Entity) -> ApiResult<bool> {
        use crate::store::Entity;
        Ok(match (self.scope(), entity) {
            (Scope::Platform, _) => true,
            (Scope::Partner(p), Entity::Partner(id)) => p == id,
            (Scope::Partner(p), Entity::Organization(id)) => state.store.organization(id).await?.partner_id == p,
            (Scope::Partner(_), Entity::Workspace(id)) => self.reaches(&state.store.workspace(id).await?),
            (Scope::Organization(o), Entity::Organization(id)) => o == id,
            (Scope::Organization(_), Entity::Workspace(id)) => self.reaches(&state.store.workspace(id).await?),
            (Scope::Workspace(w), Entity::Workspace(id)) => w == id,
            _ => false,
        })
    }

    /// The job's workspace, or 403 when the key does not reach it.
    pub async fn check_job(&self, state: &AppState, job: &JobRow) -> ApiResult<Workspace> {
        let workspace = state.store.workspace(job.workspace_id).await?;
        if self.reaches(&workspace) {
            Ok(workspace)
        } else {
            Err(ApiError::Forbidden("Not authorized to access this job".into()))
        }
    }

    /// The workspace a request acts on: the one named (which must be in
    /// scope), or a workspace key's own when none is named.
    pub async fn workspace(&self, state: &AppState, named: Option<i64>) -> ApiResult<Workspace> {
        let id = match (named, self.scope()) {
            (Some(id), _) => id,
            (None, Scope::Workspace(id)) => id,
            (None, _) => {
                return Err(ApiError::unprocessable(
                    "workspace_id is required for partner, organization and platform keys",
                ));
            }
        };
        let workspace = match state.store.workspace(id).await {
            Ok(w) => w,
            Err(crate::store::StoreError::NotFound(_)) => {
                return Err(ApiError::NotFound(format!("Workspace {id} not found")));
            }
            Err(e) => return Err(e.into()),
        };
        if self.reaches(&workspace) {
            Ok(workspace)
        } else {
            Err(ApiError::Forbidden(format!("Not authorized to access workspace {id}")))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("Missing API key".into()))
    }
}

/// The token from `Authorization: Bearer <token>` or `x-api-key: <token>`.
fn token(parts: &axum::http::HeaderMap) -> Option<&str> {
    let bearer = parts
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    bearer
        .or_else(|| parts.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim))
        .filter(|t| !t.is_empty())
}

/// Middleware: authenticates, rate-limits, and adds the rate-limit headers.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(token) = token(request.headers()) else {
        return ApiError::Unauthorized(
            "Missing API key: send Authorization: Bearer <token> or x-api-key: <token>".into(),
        )
        .into_response();
    };
    let key = match state.store.key_by_token(token).await {
        Ok(Some(key)) => key,
        Ok(None) => return ApiError::Unauthorized("Invalid API key".into()).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let headers = match state.rate_limits.check(&key) {
        Ok(headers) => headers,
        Err(headers) => return ApiError::TooManyRequests(headers).into_response(),
    };
    request.extensions_mut().insert(Caller(key));
    let mut response = next.run(request).await;
    response.headers_mut().extend(headers);
    response
}
