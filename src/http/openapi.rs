//! The OpenAPI document (`GET /api/v1/openapi.json`), generated from the
//! handlers' `#[utoipa::path]` annotations, and the schemas they name. The
//! interactive page at `/docs` serves Swagger UI from the binary (no CDN).

use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::{
    algorithm_versions, algorithms, backfills, calls, experiments, jobs, on_demand, runs, tenants, webhooks,
    workspace_algorithms,
};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
    }
}

/// The answers every `/api/v1` operation can give, added here once instead of
/// on each handler: every route is behind the key middleware (401), its scope
/// checks (403) and its rate limit (429); every body, query string and path
/// parameter is parsed by extractors whose rejection is a 422 naming the
/// field, and may name something that does not exist (404); every body is
/// read under a size limit (413 naming it); a write may find the storage
/// full (503 with Retry-After).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            // (operation, method, whether it writes): a write may find the storage full.
            let operations = [
                (&mut item.get, "get", false),
                (&mut item.put, "put", true),
                (&mut item.post, "post", true),
                (&mut item.delete, "delete", true),
                (&mut item.patch, "patch", true),
            ];
            for (operation, method, writes) in operations {
                let Some(operation) = operation else { continue };
                // Handler names repeat across resources (`get`, `list`): the
                // ID comes from the method and path, unique by construction.
                operation.operation_id = Some(operation_id(method, path));
                let takes_input = operation.request_body.is_some()
                    || operation
                        .parameters
                        .iter()
                        .flatten()
                        .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Path)));
                let responses = &mut operation.responses.responses;
                // OpenAPI requires a description on every response: the status's own words.
                for (code, response) in responses.iter_mut() {
                    if let RefOr::T(response) = response
                        && response.description.is_empty()
                    {
                        let reason = code.parse().ok().and_then(|c| axum::http::StatusCode::from_u16(c).ok());
                        response.description = reason.and_then(|c| c.canonical_reason()).unwrap_or("Answer").to_owned();
                    }
                }
                responses
                    .entry("401".into())
                    .or_insert_with(|| error("Missing, invalid or revoked API key").into());
                responses
                    .entry("429".into())
                    .or_insert_with(|| error("Rate limited; see Retry-After").into());
                responses.entry("403".into()).or_insert_with(|| {
                    error("The key's scope does not cover what the request names, or the operation needs a wider key")
                        .into()
                });
                if takes_input {
                    responses.entry("404".into()).or_insert_with(|| {
                        error("Something the request names (a job, workspace, algorithm, version…) does not exist")
                            .into()
                    });
                    responses.entry("422".into()).or_insert_with(|| {
                        error("The body, query or a path parameter does not parse, or breaks a rule; detail names it")
                            .into()
                    });
                }
                if operation.request_body.is_some() {
                    responses.entry("413".into()).or_insert_with(|| {
                        error("The body is larger than the endpoint accepts; detail names the limit").into()
                    });
                }
                if writes {
                    responses.entry("503".into()).or_insert_with(|| {
                        error("The service's storage is full; nothing was changed. Retry after Retry-After seconds")
                            .into()
                    });
                }
            }
        }
    }
}

/// `get_jobs_job_id_runs` for `GET /api/v1/jobs/{job_id}/runs`.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .trim_start_matches("/api/v1")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    format!("{method}_{}", words.join("_"))
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "gensail", description = "Call-analytics algorithms as sandboxed WebAssembly plugins: jobs, child jobs, algorithm runs."),
    paths(
        calls::ingest_transcript, calls::ingest_audio,
        jobs::list, jobs::lookup, jobs::get, jobs::logs, jobs::deliveries, jobs::attach_transcript, jobs::transcript, jobs::update_status, jobs::retry, jobs::retry_by_source,
        on_demand::run_algorithms,
        experiments::create, experiments::list, experiments::get, experiments::results, experiments::cancel, experiments::events,
        backfills::create, backfills::list, backfills::get, backfills::jobs, backfills::cancel, backfills::events,
        runs::for_job, runs::get,
        algorithms::list, algorithms::get, algorithms::set_scope, algorithms::disable, algorithms::enable,
        algorithm_versions::publish, algorithm_versions::versions, algorithm_versions::activate, algorithm_versions::rollback, algorithm_versions::compare,
        workspace_algorithms::list, workspace_algorithms::assign, workspace_algorithms::unassign,
        tenants::create_partner, tenants::create_organization, tenants::create_workspace, tenants::update_workspace, tenants::create_key, tenants::revoke_key,
        webhooks::put_endpoint, webhooks::get_endpoint, webhooks::delete_endpoint,
        webhooks::put_credential, webhooks::get_credential, webhooks::delete_credential,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security, &CommonResponses),
    security(("bearer" = []), ("api_key" = [])),
)]
pub struct ApiDoc;
