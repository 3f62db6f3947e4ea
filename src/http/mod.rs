//! The HTTP API: one file per resource, each a set of handlers; the routes are
//! assembled here. Every `/api/v1` route is behind the API-key middleware.
//!
//! # Layout
//! - [`error`]: `ApiError` (`{"detail": ...}` with the right status) and the
//!   `ApiJson`, `ApiBytes` and `ApiPath` extractors, whose rejections are `ApiError`s.
//! - [`drain`]: reads what a handler left of a request body, so early refusals reach the client.
//! - [`auth`]: the key middleware, the `Caller` extractor, tenancy checks.
//! - [`validate`]: shared request checks and their messages.
//! - [`calls`]: ingestion. [`jobs`]: jobs. [`on_demand`]: `run-algorithms`.
//! - [`runs`]: algorithm runs. [`tenants`]: the platform API.
//! - [`algorithms`]: what a key may run, one algorithm, scope, disable/enable.
//! - [`algorithm_versions`]: publish, version history, activate, rollback, compare.
//! - [`workspace_algorithms`]: assignment to workspaces and per-workspace config.
//! - [`webhooks`]: webhook endpoint and credential configuration.
//! - [`experiments`]: version comparisons over stored calls. [`backfills`]:
//!   `run-algorithms` over stored calls. [`batches`]: what the two share
//!   (the `jobs` selector, cursors, progress events).
//! - [`openapi`]: the OpenAPI document and the offline Swagger UI at `/docs`.

pub mod algorithm_versions;
pub mod algorithms;
pub mod auth;
pub mod backfills;
pub mod batches;
pub mod calls;
pub mod drain;
pub mod error;
pub mod experiments;
pub mod jobs;
pub mod on_demand;
pub mod openapi;
pub mod runs;
pub mod tenants;
pub mod validate;
pub mod webhooks;
pub mod workspace_algorithms;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post, put};

use crate::state::AppState;
use error::ApiError;

/// Largest request body accepted (a 10-hour transcript is about 5 MB).
pub(crate) const MAX_BODY_BYTES: usize = 16 << 20;

/// Room for multipart framing and the manifest around a published component.
const PUBLISH_ALLOWANCE: usize = 1 << 20;

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/calls/transcript", post(calls::ingest_transcript))
        .route("/calls/audio", post(calls::ingest_audio))
        .route("/jobs", get(jobs::list))
        .route("/jobs/lookup", get(jobs::lookup))
        .route("/jobs/retry", post(jobs::retry_by_source))
        .route("/jobs/{job_id}", get(jobs::get))
        .route("/jobs/{job_id}/logs", get(jobs::logs))
        .route("/jobs/{job_id}/deliveries", get(jobs::deliveries))
        .route("/jobs/{job_id}/runs", get(runs::for_job))
        .route(
            "/jobs/{job_id}/transcript",
            put(jobs::attach_transcript).get(jobs::transcript),
        )
        .route("/jobs/{job_id}/status", patch(jobs::update_status))
        .route("/jobs/{job_id}/retry", post(jobs::retry))
        .route("/jobs/{job_id}/run-algorithms", post(on_demand::run_algorithms))
        .route("/algorithm-runs/{run_id}", get(runs::get))
        .route("/experiments", post(experiments::create).get(experiments::list))
        .route("/experiments/{experiment_id}", get(experiments::get))
        .route("/experiments/{experiment_id}/results", get(experiments::results))
        .route("/experiments/{experiment_id}/cancel", post(experiments::cancel))
        .route("/experiments/{experiment_id}/events", get(experiments::events))
        .route("/backfills", post(backfills::create).get(backfills::list))
        .route("/backfills/{backfill_id}", get(backfills::get))
        .route("/backfills/{backfill_id}/jobs", get(backfills::jobs))
        .route("/backfills/{backfill_id}/cancel", post(backfills::cancel))
        .route("/backfills/{backfill_id}/events", get(backfills::events))
        .route(
            "/algorithms",
            get(algorithms::list)
                .post(algorithm_versions::publish)
                .layer(axum::extract::DefaultBodyLimit::max(
                    state.max_component_bytes + PUBLISH_ALLOWANCE,
                )),
        )
        .route(
            "/algorithms/{algorithm_id}",
            get(algorithms::get).patch(algorithms::set_scope),
        )
        .route("/algorithms/{algorithm_id}/disable", post(algorithms::disable))
        .route("/algorithms/{algorithm_id}/enable", post(algorithms::enable))
        .route("/algorithms/{algorithm_id}/versions", get(algorithm_versions::versions))
        .route(
            "/algorithms/{algorithm_id}/activate",
            post(algorithm_versions::activate),
        )
        .route(
            "/algorithms/{algorithm_id}/rollback",
            post(algorithm_versions::rollback),
        )
        .route(
            "/algorithms/{algorithm_id}/versions/{version}/compare",
            post(algorithm_versions::compare),
        )
        .route("/partners", post(tenants::create_partner))
        .route("/organizations", post(tenants::create_organization))
        .route("/workspaces", post(tenants::create_workspace))
        .route("/workspaces/{workspace_id}", patch(tenants::update_workspace))
        .route(
            "/workspaces/{workspace_id}/algorithms",
            post(workspace_algorithms::assign).get(workspace_algorithms::list),
        )
        .route(
            "/workspaces/{workspace_id}/algorithms/{algorithm_id}",
            delete(workspace_algorithms::unassign),
        )
        .route(
            "/config/{entity_type}/{entity_id}/webhook",
            put(webhooks::put_endpoint)
                .get(webhooks::get_endpoint)
                .delete(webhooks::delete_endpoint),
        )
        .route(
            "/config/{entity_type}/{entity_id}/webhook-credential",
            put(webhooks::put_credential)
                .get(webhooks::get_credential)
                .delete(webhooks::delete_credential),
        )
        .route("/keys", post(tenants::create_key))
        .route("/keys/{key_id}", delete(tenants::revoke_key))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .route_layer(middleware::from_fn_with_state(state.clone(), count_requests));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .nest("/api/v1", api)
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs")
                .url("/api/v1/openapi.json", <openapi::ApiDoc as utoipa::OpenApi>::openapi()),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(drain::drain_unread_body))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not found: no such path; see /api/v1 routes in the API guide".into())
}

async fn method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(error::ErrorBody {
            detail: "Method not allowed on this path".into(),
        }),
    )
}

/// Counts requests by method, route pattern and status (a route layer, so the
/// pattern is known; unmatched paths are not counted).
async fn count_requests(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = crate::metrics::RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    response
}

/// Prometheus text format. Job counts are read from the database at scrape time.
async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    match state.store.job_counts().await {
        Ok(counts) => {
            for (status, n) in counts {
                state
                    .metrics
                    .jobs
                    .get_or_create(&crate::metrics::StatusLabels {
                        status: status.as_str().to_owned(),
                    })
                    .set(n);
            }
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// The answer of `/readyz`.
#[derive(serde::Serialize)]
struct Readiness {
    /// The database accepted a write.
    database: bool,
    /// Algorithms this server has loaded.
    algorithms_loaded: usize,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
}

/// Ready when the database answers and the bundled algorithms are loaded.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let written = state.store.check_writable().await;
    let algorithms = state.engine.registry().list().len();
    let status = if written.is_ok() && algorithms > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let database = written.is_ok();
    let detail = match written {
        Err(e) if e.is_storage_full() => Some(error::STORAGE_FULL),
        Err(e) => {
            tracing::error!(error = %e, "readiness: the database does not accept a write");
            Some("The database does not accept a write; see the server log")
        }
        Ok(()) if algorithms == 0 => Some("No algorithm is loaded yet"),
        Ok(()) => None,
    };
    let body = Readiness {
        database,
        algorithms_loaded: algorithms,
        detail,
    };
    (status, axum::Json(body))
}
