//! Algorithm versions: publishing a component, the version history,
//! activating and rolling back, and comparing a version with the active one
//! on stored jobs.
//!
//! A publish is validated exactly as the engine validates a load (world, ID,
//! semver, WIT compatibility), compiled, stored in the database, and — unless
//! the manifest says `"activate": false` or the golden gate finds a
//! regression — active at once in this process; runs in flight finish on the
//! version they started with.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{StatusCode, header};
use gensail_engine::LoadError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::algorithms::{AlgorithmView, check_scope, describe, managed, may_manage, visible};
use super::auth::Caller;
use super::error::ErrorBody;
use super::error::{ApiBytes, ApiError, ApiPath, ApiResult, from_json_object};
use crate::jobs::{AlgorithmScope, AlgorithmStatus};
use crate::lifecycle::{self, Manifest, PublishError, PublishOutcome, Publisher};
use crate::state::AppState;
use crate::store::Scope;
use crate::store::VersionRow;

/// A component's bytes, as the body of a raw publish (`application/wasm`).
pub struct ComponentBytes;

impl utoipa::PartialSchema for ComponentBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for ComponentBytes {}

/// Manifest fields a raw `application/wasm` publish takes from the query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryManifest {
    algorithm_id: Option<String>,
    scope_type: Option<AlgorithmScope>,
    scope_id: Option<i64>,
    description: Option<String>,
    activate: Option<bool>,
    golden_gate: Option<bool>,
    /// Comma-separated job IDs.
    golden_job_ids: Option<String>,
}

impl QueryManifest {
    /// Whether no manifest field came in the query string.
    fn is_empty(&self) -> bool {
        let Self {
            algorithm_id,
            scope_type,
            scope_id,
            description,
            activate,
            golden_gate,
            golden_job_ids,
        } = self;
        algorithm_id.is_none()
            && scope_type.is_none()
            && scope_id.is_none()
            && description.is_none()
            && activate.is_none()
            && golden_gate.is_none()
            && golden_job_ids.is_none()
    }

    fn into_manifest(self) -> ApiResult<Manifest> {
        let golden_job_ids = match self.golden_job_ids.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|id| {
                    id.trim().parse::<i64>().map_err(|_| {
                        ApiError::unprocessable(format!("golden_job_ids must be comma-separated job IDs, not {id:?}"))
                    })
                })
                .collect::<ApiResult<_>>()?,
        };
        Ok(Manifest {
            algorithm_id: self.algorithm_id,
            scope_type: self.scope_type,
            scope_id: self.scope_id,
            description: self.description,
            activate: self.activate,
            golden_gate: self.golden_gate,
            golden_job_ids,
            ..Manifest::default()
        })
    }
}

/// `POST /algorithms`: publishes a component. Send it as `application/wasm`
/// (manifest fields in the query string), or as `multipart/form-data` with a
/// `component` part and an optional `manifest` part (JSON).
#[utoipa::path(post, path = "/api/v1/algorithms", tag = "algorithms", request_body(content = ComponentBytes, content_type = "application/wasm", description = "The component; or multipart/form-data with parts component and manifest"), responses((status = 201, description = "Published", body = PublishOutcome), (status = 200, description = "This exact component was already published", body = PublishOutcome), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<QueryManifest>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> ApiResult<(StatusCode, Json<PublishOutcome>)> {
    if !matches!(caller.scope(), Scope::Platform | Scope::Partner(_)) {
        return Err(ApiError::Forbidden(
            "Publishing algorithms needs a platform key, or a partner key for the partner's own algorithms".into(),
        ));
    }
    let Query(query) = query.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    let (bytes, manifest) = read_upload(&state, query, request).await?;
    if caller.scope() != Scope::Platform {
        check_lowered_limits(&state, &manifest)?;
    }
    // Everything the caller may be refused for is checked before the
    // component is compiled: a refused publish costs the server nothing.
    let named_scope = match manifest.algorithm_id.as_deref() {
        Some(id) => {
            gensail_engine::check_algorithm_id(id)
                .map_err(|e| ApiError::unprocessable(format!("algorithm_id: {e}")))?;
            Some(publish_scope(&state, &caller, &manifest, id).await?)
        }
        None if caller.scope() == Scope::Platform => None,
        None => {
            return Err(ApiError::unprocessable(
                "algorithm_id is required for partner keys: name the ID the component's metadata() gives (e.g. ?algorithm_id=churn_risk_v1, or \"algorithm_id\" in the multipart manifest)",
            ));
        }
    };
    for job_id in &manifest.golden_job_ids {
        check_golden_job(&state, &caller, *job_id).await?;
    }
    if !state.publishing_keys.insert(caller.0.id) {
        return Err(ApiError::Conflict(
            "A publish with this key is still compiling; wait for its answer before sending another".into(),
        ));
    }
    let prepared = lifecycle::prepare(&state.engine, &bytes, &manifest).await;
    state.publishing_keys.remove(&caller.0.id);
    let candidate = prepared.map_err(publish_error)?;
    let id = candidate.info.id.clone();
    let scope = match (named_scope, manifest.algorithm_id.as_deref()) {
        (Some(scope), Some(named)) if named == id => scope,
        (_, Some(named)) => {
            return Err(ApiError::unprocessable(format!(
                "The manifest's algorithm_id is {named}, but the component's metadata().id is {id}: publish it under {id}, or rebuild it"
            )));
        }
        _ => publish_scope(&state, &caller, &manifest, &id).await?,
    };
    let outcome = lifecycle::commit(
        &state,
        &candidate,
        &bytes,
        &manifest,
        scope,
        Publisher {
            source: "api",
            key_id: Some(caller.0.id),
        },
    )
    .await
    .map_err(publish_error)?;
    let status = if outcome.already_published {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(outcome)))
}

/// The component bytes and manifest of a publish request, with the size limit applied.
async fn read_upload(state: &AppState, query: QueryManifest, request: Request) -> ApiResult<(Bytes, Manifest)> {
    let limit = state.max_component_bytes;
    let too_large = |size: Option<usize>| {
        ApiError::PayloadTooLarge(match size {
            Some(size) => format!(
                "The component is {size} bytes; this server accepts components of at most {limit} bytes (GENSAIL_MAX_COMPONENT_BYTES)"
            ),
            None => format!(
                "The upload is larger than this server accepts: components of at most {limit} bytes (GENSAIL_MAX_COMPONENT_BYTES)"
            ),
        })
    };
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (bytes, manifest) = if content_type.starts_with("multipart/form-data") {
        if !query.is_empty() {
            return Err(ApiError::unprocessable(
                "With multipart/form-data, put the manifest in its `manifest` part, not in the query string",
            ));
        }
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::BadRequest(format!("Not a valid multipart body: {}", e.body_text())))?;
        let (mut component, mut manifest) = (None, Manifest::default());
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large(None)),
                Err(e) => {
                    return Err(ApiError::BadRequest(format!(
                        "Not a valid multipart body: {}",
                        e.body_text()
                    )));
                }
            };
            let name = field.name().unwrap_or("").to_owned();
            let data = match field.bytes().await {
                Ok(data) => data,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large(None)),
                Err(e) => {
                    return Err(ApiError::BadRequest(format!(
                        "Cannot read the {name:?} part: {}",
                        e.body_text()
                    )));
                }
            };
            match name.as_str() {
                "component" => component = Some(data),
                "manifest" => {
                    let value = serde_json::from_slice(&data)
                        .map_err(|e| ApiError::unprocessable(format!("The manifest part is not valid JSON: {e}")))?;
                    manifest = from_json_object(value, "The manifest part")?
                }
                other => {
                    return Err(ApiError::unprocessable(format!(
                        "Unknown part {other:?}: send `component` (the .wasm file) and optionally `manifest` (JSON)"
                    )));
                }
            }
        }
        let component = component
            .ok_or_else(|| ApiError::unprocessable("The multipart body has no `component` part (the .wasm file)"))?;
        (component, manifest)
    } else if content_type.is_empty()
        || content_type.starts_with("application/wasm")
        || content_type.starts_with("application/octet-stream")
    {
        let body = axum::body::to_bytes(request.into_body(), limit + 1)
            .await
            .map_err(|_| too_large(None))?;
        (body, query.into_manifest()?)
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Send the component as application/wasm (manifest fields in the query string) or as multipart/form-data with parts `component` and `manifest`, not {content_type}"
        )));
    };
    if bytes.len() > limit {
        return Err(too_large(Some(bytes.len())));
    }
    if bytes.is_empty() {
        return Err(ApiError::BadRequest(
            "The body is empty: send the .wasm component".into(),
        ));
    }
    Ok((bytes, manifest))
}

/// The scope a version of `id` is published in: the existing algorithm's,
/// when the caller may manage it, or a new ID's (see [`new_scope`]).
async fn publish_scope(
    state: &AppState,
    caller: &Caller,
    manifest: &Manifest,
    id: &str,
) -> ApiResult<(AlgorithmScope, Option<i64>)> {
    match state.store.algorithm(id).await {
        Ok(existing) => {
            if !may_manage(state, caller, existing.scope_type, existing.scope_id).await? {
                return Err(ApiError::Forbidden(format!(
                    "Not authorized to publish versions of {id}: the ID belongs to another scope; choose another algorithm ID"
                )));
            }
            let differs = manifest.scope_type.is_some_and(|t| t != existing.scope_type)
                || (manifest.scope_type.is_some() && manifest.scope_id != existing.scope_id);
            if differs {
                return Err(ApiError::Conflict(format!(
                    "{id} is already scoped {}{}; a publish does not change the scope: use PATCH /api/v1/algorithms/{id}",
                    existing.scope_type,
                    existing.scope_id.map(|s| format!(" {s}")).unwrap_or_default()
                )));
            }
            Ok((existing.scope_type, existing.scope_id))
        }
        Err(crate::store::StoreError::NotFound(_)) => new_scope(state, caller, manifest).await,
        Err(e) => Err(e.into()),
    }
}

/// The scope of a new ID: the manifest's, checked against what the caller may
/// publish; by default global (platform keys) or the key's partner.
async fn new_scope(state: &AppState, caller: &Caller, manifest: &Manifest) -> ApiResult<(AlgorithmScope, Option<i64>)> {
    let scope = match (manifest.scope_type, caller.scope()) {
        (Some(t), _) => (t, manifest.scope_id),
        (None, Scope::Partner(p)) => (AlgorithmScope::Partner, Some(p)),
        (None, _) => (AlgorithmScope::Global, None),
    };
    check_scope(state, scope.0, scope.1).await?;
    if !may_manage(state, caller, scope.0, scope.1).await? {
        return Err(ApiError::Forbidden(format!(
            "A partner key publishes only algorithms scoped to its own partner or one of its organizations, not scope_type {}{}",
            scope.0,
            scope.1.map(|s| format!(" {s}")).unwrap_or_default()
        )));
    }
    Ok(scope)
}

/// Runs cost the whole service's CPU and memory, so only platform keys may
/// raise an algorithm's limits above the server's defaults; others may lower them.
fn check_lowered_limits(state: &AppState, manifest: &Manifest) -> ApiResult<()> {
    let defaults = state.engine.config().default_limits;
    let limits = &manifest.limits;
    let raised: Vec<String> = [
        ("fuel", limits.fuel, defaults.fuel),
        ("timeout_ms", limits.timeout_ms, defaults.timeout.as_millis() as u64),
        ("memory_bytes", limits.memory_bytes, defaults.memory_bytes),
        ("output_bytes", limits.output_bytes, defaults.output_bytes),
        ("log_bytes", limits.log_bytes, defaults.log_bytes),
    ]
    .into_iter()
    .filter_map(|(name, asked, default)| {
        asked
            .filter(|a| *a > default)
            .map(|a| format!("{name} {a} (default {default})"))
    })
    .collect();
    if raised.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "Only platform keys may raise limits above the server's defaults: {}",
            raised.join(", ")
        )))
    }
}

/// A golden job must exist, be reachable by the caller and have a transcript.
async fn check_golden_job(state: &AppState, caller: &Caller, job_id: i64) -> ApiResult<()> {
    let job = state
        .store
        .job(job_id)
        .await
        .map_err(|_| ApiError::NotFound(format!("Golden job {job_id} not found")))?;
    caller.check_job(state, &job).await?;
    if job.transcript_sha256.is_none() {
        return Err(ApiError::unprocessable(format!(
            "Golden job {job_id} has no transcript yet; name jobs that have one"
        )));
    }
    Ok(())
}

fn publish_error(e: PublishError) -> ApiError {
    match e {
        PublishError::Invalid(LoadError::NotWasm | LoadError::CoreModule) => ApiError::BadRequest(e.to_string()),
        PublishError::Invalid(_) | PublishError::Manifest(_) | PublishError::GateFailed(_) => {
            ApiError::Unprocessable(e.to_string())
        }
        PublishError::Conflict(message) => ApiError::Conflict(message),
        PublishError::Store(e) => e.into(),
    }
}

/// `GET /algorithms/{id}/versions`: every published version, newest first,
/// with its sha256, source and whether it is active.
#[utoipa::path(get, path = "/api/v1/algorithms/{algorithm_id}/versions", tag = "algorithms", params(("algorithm_id" = String, Path)), responses((status = 200, body = VersionHistory), (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(algorithm_id): ApiPath<String>,
) -> ApiResult<Json<VersionHistory>> {
    let row = visible(&state, &caller, &algorithm_id).await?;
    Ok(Json(VersionHistory {
        active_version: (row.status == AlgorithmStatus::Active).then_some(row.version),
        status: row.status,
        versions: state.store.versions(&algorithm_id).await?,
        algorithm_id,
    }))
}

/// `GET /algorithms/{id}/versions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionHistory {
    algorithm_id: String,
    /// Whether workspaces can run it.
    status: AlgorithmStatus,
    /// The version new runs use; null unless the algorithm is active.
    active_version: Option<String>,
    /// Every published version, newest first.
    versions: Vec<VersionRow>,
}

/// Body of `activate` (required version) and `rollback` (optional version).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionChoice {
    /// A published version, e.g. `1.2.0`.
    #[schema(example = "1.2.0")]
    version: Option<String>,
}

/// `POST /algorithms/{id}/activate` `{"version": "5.1.0"}`: new runs use that
/// published version (older or newer than the current one).
#[utoipa::path(post, path = "/api/v1/algorithms/{algorithm_id}/activate", tag = "algorithms", params(("algorithm_id" = String, Path)), request_body = VersionChoice, responses((status = 200, body = AlgorithmView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(algorithm_id): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<AlgorithmView>> {
    let choice = version_choice(&body)?;
    let Some(version) = choice.version else {
        return Err(ApiError::unprocessable(
            "Name the version to activate: {\"version\": \"1.2.0\"}",
        ));
    };
    switch(&state, &caller, &algorithm_id, &version, "activate").await
}

/// `POST /algorithms/{id}/rollback` (optional `{"version": "5.0.0"}`): goes
/// back to the version that was active before the current one, or to the one named.
#[utoipa::path(post, path = "/api/v1/algorithms/{algorithm_id}/rollback", tag = "algorithms", params(("algorithm_id" = String, Path)), request_body(content = VersionChoice, description = "Optional; default: the version active before the current one"), responses((status = 200, body = AlgorithmView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(algorithm_id): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<AlgorithmView>> {
    let choice = version_choice(&body)?;
    managed(&state, &caller, &algorithm_id).await?;
    let version = match choice.version {
        Some(v) => v,
        None => state.store.previous_version(&algorithm_id).await?.ok_or_else(|| {
            ApiError::Conflict(format!("{algorithm_id} has no earlier active version to roll back to; see GET /api/v1/algorithms/{algorithm_id}/versions"))
        })?,
    };
    switch(&state, &caller, &algorithm_id, &version, "rollback").await
}

fn version_choice(body: &[u8]) -> ApiResult<VersionChoice> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(VersionChoice::default());
    }
    let value = serde_json::from_slice(body).map_err(|e| {
        ApiError::unprocessable(format!(
            "Body is not valid JSON: {e}; send {{\"version\": \"1.2.0\"}} or nothing"
        ))
    })?;
    from_json_object(value, "Body")
}

/// Makes `version` the active one: loaded first (so a version that does not
/// load is refused before anything changes), then recorded, then served.
async fn switch(
    state: &AppState,
    caller: &Caller,
    id: &str,
    version: &str,
    action: &str,
) -> ApiResult<Json<AlgorithmView>> {
    managed(state, caller, id).await?;
    if let Err(crate::store::StoreError::NotFound(_)) = state.store.version(id, version).await {
        let known: Vec<String> = state.store.versions(id).await?.into_iter().map(|v| v.version).collect();
        return Err(ApiError::NotFound(format!(
            "{id} has no version {version}; published versions: {}",
            known.join(", ")
        )));
    }
    let loaded = lifecycle::load_version(&state.engine, &state.store, id, version).await?;
    state
        .store
        .activate_version(id, version, action, Some(caller.0.id))
        .await?;
    lifecycle::sync(&state.engine, &state.store, id, Some(&loaded)).await?;
    Ok(Json(describe(state, state.store.algorithm(id).await?).await?))
}

/// Body of `compare`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    /// 1 to 20 stored jobs (default: the algorithm's golden jobs).
    #[schema(min_items = 1, max_items = 20)]
    job_ids: Option<Vec<i64>>,
}

/// Most jobs one comparison runs (each runs both versions).
const MAX_COMPARE_JOBS: usize = 20;

/// `POST /algorithms/{id}/versions/{version}/compare` `{"job_ids": [..]}`:
/// runs that version beside the active one on the jobs' transcripts (default:
/// the algorithm's golden jobs) and reports output differences, fuel and time
/// ratios. Nothing is stored.
#[utoipa::path(post, path = "/api/v1/algorithms/{algorithm_id}/versions/{version}/compare", tag = "algorithms", params(("algorithm_id" = String, Path), ("version" = String, Path)), request_body = CompareRequest, responses((status = 200, body = lifecycle::golden::GoldenReport), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn compare(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((algorithm_id, version)): ApiPath<(String, String)>,
    super::error::ApiJson(body): super::error::ApiJson<CompareRequest>,
) -> ApiResult<Json<lifecycle::golden::GoldenReport>> {
    visible(&state, &caller, &algorithm_id).await?;
    let Some(active) = state.engine.registry().get(&algorithm_id) else {
        return Err(ApiError::Conflict(format!(
            "{algorithm_id} has no active version to compare with"
        )));
    };
    let job_ids = match body.job_ids {
        Some(ids) => ids,
        None => state.store.goldens(&algorithm_id).await?,
    };
    if job_ids.is_empty() || job_ids.len() > MAX_COMPARE_JOBS {
        return Err(ApiError::unprocessable(format!(
            "job_ids must name 1 to {MAX_COMPARE_JOBS} jobs (the algorithm's golden jobs are used when it is absent; {algorithm_id} has {})",
            state.store.goldens(&algorithm_id).await?.len()
        )));
    }
    for job_id in &job_ids {
        check_golden_job(&state, &caller, *job_id).await?;
    }
    if let Err(crate::store::StoreError::NotFound(_)) = state.store.version(&algorithm_id, &version).await {
        return Err(ApiError::NotFound(format!("{algorithm_id} has no version {version}")));
    }
    let candidate = lifecycle::load_version(&state.engine, &state.store, &algorithm_id, &version).await?;
    Ok(Json(
        lifecycle::golden::compare(&state, &active, &candidate, &job_ids).await?,
    ))
}
