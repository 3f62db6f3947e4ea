//! The API's one error type: every failure is `{"detail": "..."}` with the
//! right status; internal causes are logged, never sent.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::store::StoreError;

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
}

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
            Self::TooManyRequests(h) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit exceeded: wait for Retry-After seconds, then retry with backoff".to_owned(),
                Some(h),
            ),
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error".to_owned(),
                    None,
                )
            }
        };
        let mut response = (status, Json(serde_json::json!({ "detail": detail }))).into_response();
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
            other => Self::Internal(other.into()),
        }
    }
}

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
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::Unprocessable(json_rejection_detail(&rejection))),
        }
    }
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
        JsonRejection::JsonDataError(e) => format!(
            "Body has the wrong shape: {}",
            e.body_text()
                .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        ),
        other => other.body_text(),
    }
}
