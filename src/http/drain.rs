//! Reads what a handler left of a request body before answering.
//!
//! A handler that refuses a request early (a path that does not parse, a
//! DELETE that takes no body, a body over the limit) leaves the rest of the
//! body unread, and hyper then closes the connection: a client still sending
//! gets a broken pipe instead of the answer. This layer keeps the body in a
//! shared slot; once the handler has answered, it reads and discards what is
//! left (up to [`DRAIN_BYTES`], for at most [`DRAIN_TIME`]), so the client
//! reads a JSON answer. Past those bounds the connection is closed as before.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

/// Most bytes read after the answer: what a JSON body may be.
const DRAIN_BYTES: usize = super::MAX_BODY_BYTES;

/// Longest time spent reading them.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The middleware (see the module docs).
pub async fn drain_unread_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let slot = Arc::new(Mutex::new(Some(body)));
    let response = next
        .run(Request::from_parts(parts, Body::new(Shared(slot.clone()))))
        .await;
    let rest = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(mut rest) = rest {
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            let mut read = 0;
            while let Some(Ok(frame)) = rest.frame().await {
                read += frame.data_ref().map_or(0, Bytes::len);
                if read > DRAIN_BYTES {
                    break;
                }
            }
        })
        .await;
    }
    response
}

/// The request body as the handler sees it; what it does not read stays in
/// the slot for the middleware.
struct Shared(Arc<Mutex<Option<Body>>>);

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(body) = slot.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            *slot = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}
