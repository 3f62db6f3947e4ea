//! The OpenAPI document (`GET /api/v1/openapi.json`), generated from the
//! handlers' `#[utoipa::path]` annotations, and the schemas they name. The
//! interactive page at `/docs` serves Swagger UI from the binary (no CDN).

use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{ObjectBuilder, Schema};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::{algorithm_versions, algorithms, calls, jobs, on_demand, runs, tenants, webhooks, workspace_algorithms};

/// Every error: `{"detail": "..."}`.
#[derive(ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to change.
    pub detail: String,
}

/// A JSON object (shape described in the API guide).
pub struct AnyObject;

impl PartialSchema for AnyObject {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("A JSON object; see docs/api.md"))
            .into()
    }
}

impl ToSchema for AnyObject {}

/// Body of `POST /jobs/{job_id}/run-algorithms`.
#[derive(ToSchema)]
pub struct RunAlgorithmsRequest {
    /// 1 to 10 algorithm IDs; duplicates are removed, first occurrence order kept.
    pub algorithm_ids: Vec<String>,
    /// Skip webhook delivery (default true).
    pub analytics_only: Option<bool>,
    /// Run even if the algorithms already ran (default false).
    pub force_rerun: Option<bool>,
}

/// A run that makes the request (partly) idempotent.
#[derive(ToSchema)]
pub struct ExistingRunDoc {
    /// The run.
    pub algorithm_run_id: i64,
    /// Its algorithm.
    pub algorithm_id: String,
    /// completed, pending or running.
    pub status: String,
    /// The job it belongs to (the call's root job or one below it).
    pub job_id: i64,
    /// The version that ran; null while pending or running.
    pub algorithm_version: Option<String>,
    /// The algorithm's active version now; null when disabled.
    pub active_version: Option<String>,
}

/// 202 of `run-algorithms` (and of retry).
#[derive(ToSchema)]
pub struct RunAlgorithmsAccepted {
    /// The child job.
    pub job_id: i64,
    /// The original job.
    pub parent_job_id: i64,
    /// What the child runs.
    pub algorithm_ids: Vec<String>,
    /// `analyzing`.
    pub status: String,
    /// `On-demand analysis job created`.
    pub message: String,
    /// Requested algorithms that already ran and are not run again.
    pub existing_runs: Option<Vec<ExistingRunDoc>>,
}

/// 200 of `run-algorithms` when everything already ran.
#[derive(ToSchema)]
pub struct AlreadyRan {
    /// `Algorithms already ran on this job`.
    pub message: String,
    /// The runs.
    pub existing_runs: Vec<ExistingRunDoc>,
    /// `Use force_rerun=true to run again`.
    pub hint: String,
}

/// 202 of ingestion.
#[derive(ToSchema)]
pub struct JobCreated {
    /// The job.
    pub job_id: i64,
    /// analyzing, transcribing or skipped.
    pub status: String,
}

/// A page of jobs.
#[derive(ToSchema)]
pub struct JobList {
    /// Jobs, newest first; each has `job_id`.
    pub jobs: Vec<AnyObject>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Body of `POST /calls/transcript`.
#[derive(ToSchema)]
pub struct IngestTranscriptDoc {
    /// Required for partner, organization and platform keys.
    pub workspace_id: Option<i64>,
    /// `{language?, duration_ms?, segments: [{speaker, start_ms, end_ms, text, confidence?}]}` or `Speaker: text` lines.
    pub transcript: AnyObject,
    /// Default: the workspace's assigned algorithms.
    pub algorithm_ids: Option<Vec<String>>,
    /// Default false.
    pub analytics_only: Option<bool>,
    /// Your call ID.
    pub source_call_id: Option<String>,
    /// Your company ID.
    pub source_company_id: Option<String>,
    /// Where the recording is.
    pub recording_url: Option<String>,
    /// RFC 3339.
    pub contacted_at: Option<String>,
}

/// Body of `POST /calls/audio`.
#[derive(ToSchema)]
pub struct IngestAudioDoc {
    /// Required for partner, organization and platform keys.
    pub workspace_id: Option<i64>,
    /// http(s) URL of the recording.
    pub recording_url: String,
    /// Length, for the duration filter.
    pub duration_seconds: Option<f64>,
    /// Default: the workspace's assigned algorithms.
    pub algorithm_ids: Option<Vec<String>>,
    /// Default false.
    pub analytics_only: Option<bool>,
    /// Your call ID.
    pub source_call_id: Option<String>,
    /// Your company ID.
    pub source_company_id: Option<String>,
    /// RFC 3339.
    pub contacted_at: Option<String>,
}

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
/// on each handler: every route is behind the key middleware (401) and its
/// rate limit (429), every body, query string and path parameter is parsed
/// by extractors whose rejection is a 422 naming the field, and every body is
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
                responses
                    .entry("401".into())
                    .or_insert_with(|| error("Missing, invalid or revoked API key").into());
                responses
                    .entry("429".into())
                    .or_insert_with(|| error("Rate limited; see Retry-After").into());
                if takes_input {
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
        jobs::list, jobs::lookup, jobs::get, jobs::logs, jobs::deliveries, jobs::attach_transcript, jobs::update_status, jobs::retry, jobs::retry_by_source,
        on_demand::run_algorithms,
        runs::for_job, runs::get,
        algorithms::list, algorithms::get, algorithms::set_scope, algorithms::disable, algorithms::enable,
        algorithm_versions::publish, algorithm_versions::versions, algorithm_versions::activate, algorithm_versions::rollback, algorithm_versions::compare,
        workspace_algorithms::list, workspace_algorithms::assign, workspace_algorithms::unassign,
        tenants::create_partner, tenants::create_organization, tenants::create_workspace, tenants::update_workspace, tenants::create_key, tenants::revoke_key,
        webhooks::put_endpoint, webhooks::get_endpoint, webhooks::delete_endpoint,
        webhooks::put_credential, webhooks::get_credential, webhooks::delete_credential,
    ),
    components(schemas(ErrorBody, RunAlgorithmsRequest, RunAlgorithmsAccepted, AlreadyRan, ExistingRunDoc, JobCreated, JobList, IngestTranscriptDoc, IngestAudioDoc)),
    modifiers(&Security, &CommonResponses),
    security(("bearer" = []), ("api_key" = [])),
)]
pub struct ApiDoc;
