//! The API's one error type: every failure is `{"detail": "..."}` with the
//! right status; internal causes are logged, never sent.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::store::StoreError;

/// Every error: `{"detail": "..."}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to change.
    pub detail: String,
}

/// An error answer.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is well-formed but cannot be done as asked.
    BadRequest(String),
    /// 401: no key, or not a valid one.
    Unauthorized(String),
    /// 403: the key may not reach this.
    Forbidden(String),
    /// 404.
    NotFound(String),
    /// 409: conflicts with the current state.
    Conflict(String),
    /// 413: the upload is larger than accepted.
    PayloadTooLarge(String),
    /// 415: the body is not in a format the endpoint takes.
    UnsupportedMediaType(String),
    /// 422: the body or query is malformed.
    Unprocessable(String),
    /// 429, with the headers that say when to come back.
    TooManyRequests(HeaderMap),
    /// 503: the service cannot take this now (its storage is full); retry
    /// after the seconds given.
    Unavailable(String, u64),
    /// 500: logged with its cause, answered without it.
    Internal(anyhow::Error),
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 422 with a message.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::Unprocessable(message.into())
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// The `detail` the client is told (where an answer is not a response:
    /// an event stream's error event).
    pub fn detail(&self) -> String {
        match self {
            Self::BadRequest(d)
            | Self::Unauthorized(d)
            | Self::Forbidden(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::PayloadTooLarge(d)
            | Self::UnsupportedMediaType(d)
            | Self::Unprocessable(d)
            | Self::Unavailable(d, _) => d.clone(),
            Self::TooManyRequests(_) => RATE_LIMITED.to_owned(),
            Self::Internal(_) => INTERNAL.to_owned(),
        }
    }
}

/// The `detail` of a 429.
const RATE_LIMITED: &str = "Rate limit exceeded: wait for Retry-After seconds, then retry with backoff";

/// The `detail` of a 500 (its cause is logged, never told).
const INTERNAL: &str = "Internal server error";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, detail, headers) = match self {
            Self::BadRequest(d) => (StatusCode::BAD_REQUEST, d, None),
            Self::Unauthorized(d) => (StatusCode::UNAUTHORIZED, d, None),
            Self::Forbidden(d) => (StatusCode::FORBIDDEN, d, None),
            Self::NotFound(d) => (StatusCode::NOT_FOUND, d, None),
            Self::Conflict(d) => (StatusCode::CONFLICT, d, None),
            Self::PayloadTooLarge(d) => (StatusCode::PAYLOAD_TOO_LARGE, d, None),
            Self::UnsupportedMediaType(d) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, d, None),
            Self::Unprocessable(d) => (StatusCode::UNPROCESSABLE_ENTITY, d, None),
            Self::TooManyRequests(h) => (StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED.to_owned(), Some(h)),
            Self::Unavailable(d, retry_after) => {
                let mut h = HeaderMap::new();
                h.insert(axum::http::header::RETRY_AFTER, retry_after.into());
                (StatusCode::SERVICE_UNAVAILABLE, d, Some(h))
            }
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL.to_owned(), None)
            }
        };
        let mut response = (status, Json(ErrorBody { detail })).into_response();
        if let Some(h) = headers {
            response.headers_mut().extend(h);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => {
                let mut what = what.to_owned();
                what[..1].make_ascii_uppercase();
                Self::NotFound(format!("{what} not found"))
            }
            StoreError::Conflict(message) => Self::Conflict(message),
            text if text.is_unstorable_text() => Self::Unprocessable(
                "Text in the request contains a character that cannot be stored (the NUL character, \\u0000): remove it"
                    .into(),
            ),
            full if full.is_storage_full() => {
                tracing::error!(error = %full, "storage is full: writes are refused until space is freed");
                Self::Unavailable(STORAGE_FULL.into(), STORAGE_RETRY_SECONDS)
            }
            other => Self::Internal(other.into()),
        }
    }
}

/// What a client is told while the database cannot write for lack of space.
pub const STORAGE_FULL: &str = "The service's storage is full, so nothing was changed; retry after Retry-After seconds (operators: free disk space; the service recovers by itself)";

/// Retry-After while storage is full.
const STORAGE_RETRY_SECONDS: u64 = 30;

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

/// `Json<T>` whose rejection is an [`ApiError`]: a body that is not JSON, or
/// not the right shape, is a 422 `{"detail": ...}` naming the problem.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(value)) => value,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(body_too_large()),
            Err(rejection) => return Err(ApiError::Unprocessable(json_rejection_detail(&rejection))),
        };
        from_json_object(value, "Body").map(Self)
    }
}

/// Reads a JSON body (`what`: "Body", or a JSON part of one) into `T`. It
/// must be an object: serde alone would also take an array as a struct's
/// fields in order (`["Acme"]` as `{"name": "Acme"}`). A wrong field is named.
pub fn from_json_object<T: DeserializeOwned>(value: serde_json::Value, what: &str) -> ApiResult<T> {
    if !value.is_object() {
        return Err(ApiError::unprocessable(format!("{what} must be a JSON object")));
    }
    serde_path_to_error::deserialize(value)
        .map_err(|e| ApiError::Unprocessable(format!("{what} has the wrong shape: {e}")))
}

/// A raw body (endpoints whose body is optional or not JSON) whose rejection
/// is an [`ApiError`]: over the limit is 413 naming the limit.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(body_too_large()),
            Err(rejection) => Err(ApiError::Unprocessable(bytes_rejection_detail(&rejection))),
        }
    }
}

fn body_too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "Body is larger than this endpoint accepts: at most {} MiB (a 10-hour transcript is about 5 MB)",
        super::MAX_BODY_BYTES >> 20
    ))
}

fn bytes_rejection_detail(rejection: &BytesRejection) -> String {
    format!("Body could not be read: {}", rejection.body_text())
}

/// `Path<T>` whose rejection is an [`ApiError`]: an ID in the path that does
/// not parse is a 422 naming the parameter and what it must be, in JSON.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => {
                // axum names the parameter only for structs; the route's own
                // names come from the raw parameters.
                let names: Vec<(String, String)> = RawPathParams::from_request_parts(parts, state)
                    .await
                    .map(|raw| raw.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
                    .unwrap_or_default();
                Err(path_rejection(&rejection, &names))
            }
        }
    }
}

fn path_rejection(rejection: &PathRejection, raw: &[(String, String)]) -> ApiError {
    use axum::extract::path::ErrorKind;
    let PathRejection::FailedToDeserializePathParams(e) = rejection else {
        return ApiError::Internal(anyhow::anyhow!("path parameters missing: {}", rejection.body_text()));
    };
    let (name, value, expected_type) = match e.kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => (format!("Path parameter {key}"), value, *expected_type),
        ErrorKind::ParseErrorAtIndex {
            value, expected_type, ..
        }
        | ErrorKind::ParseError { value, expected_type } => {
            let name = raw.iter().find(|(_, v)| v == value).map_or_else(
                || "A path parameter".to_owned(),
                |(key, _)| format!("Path parameter {key}"),
            );
            (name, value, *expected_type)
        }
        _ => return ApiError::Unprocessable(format!("Path is not valid: {}", e.body_text())),
    };
    let expected = if expected_type.starts_with('i') || expected_type.starts_with('u') {
        format!("a whole number from 1 to {}", i64::MAX)
    } else {
        format!("a {expected_type}")
    };
    ApiError::Unprocessable(format!("{name} must be {expected}; not {value:?}"))
}

fn json_rejection_detail(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "Send the body as JSON with Content-Type: application/json".to_owned()
        }
        JsonRejection::JsonSyntaxError(e) => format!(
            "Body is not valid JSON: {}",
            e.body_text()
                .trim_start_matches("Failed to parse the request body as JSON: ")
        ),
        other => other.body_text(),
    }
}
