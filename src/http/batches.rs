//! What experiments and backfills share over HTTP: the `jobs` selector of
//! their request bodies, the refusals of a selection, their cursors, and
//! their progress as Server-Sent Events.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::validate;
use crate::state::AppState;
use crate::store::{Created, Selection, Workspace};

/// Which calls a batch covers: root jobs (one per call) of the workspace,
/// newest first.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsSelector {
    /// Only jobs in these statuses (`["completed", "partial"]`).
    #[schema(value_type = Option<Vec<String>>)]
    status: Option<Vec<String>>,
    /// Created since: `30d`, `12h`, `15m` or an RFC 3339 time.
    since: Option<String>,
    /// Only calls of this company.
    source_company_id: Option<String>,
    /// Exactly these root jobs (instead of the filters above).
    job_ids: Option<Vec<i64>>,
    /// At most this many calls (default and largest: the operator's maximum, 100,000 unless set).
    #[schema(minimum = 1)]
    limit: Option<i64>,
}

impl JobsSelector {
    /// The selection in `workspace`, checked.
    pub fn selection(self, state: &AppState, workspace: &Workspace) -> ApiResult<Selection> {
        let max = state.max_batch_calls;
        let status = validate::statuses(self.status.iter().flatten().map(String::as_str))
            .map_err(|e| ApiError::unprocessable(format!("jobs.{}", e.detail())))?;
        let since = self
            .since
            .as_deref()
            .map(|s| validate::since(state, s))
            .transpose()
            .map_err(|e| ApiError::unprocessable(format!("jobs.{}", e.detail())))?;
        if let Some(limit) = self.limit
            && !(1..=max).contains(&limit)
        {
            return Err(ApiError::unprocessable(format!(
                "jobs.limit must be between 1 and {max} (the operator's maximum calls per batch)"
            )));
        }
        if let Some(ids) = &self.job_ids {
            if ids.is_empty() || ids.len() as i64 > max {
                return Err(ApiError::unprocessable(format!(
                    "jobs.job_ids must list 1 to {max} job IDs"
                )));
            }
            if self.status.is_some() || self.since.is_some() || self.source_company_id.is_some() {
                return Err(ApiError::unprocessable(
                    "jobs.job_ids names the calls itself: leave out status, since and source_company_id",
                ));
            }
        }
        Ok(Selection {
            workspace_id: workspace.id,
            status,
            since,
            source_company_id: self.source_company_id,
            job_ids: self.job_ids,
            cap: self.limit.unwrap_or(max + 1),
            limit: self.limit,
        })
    }
}

/// The created batch, or why the selection cannot make one (422).
pub fn created<T>(created: Created<T>, state: &AppState, what: &str) -> ApiResult<T> {
    match created {
        Created::Created(batch) => Ok(batch),
        Created::Empty => Err(ApiError::unprocessable(format!(
            "jobs: the selection has no calls{}; widen it (status, since, source_company_id) or name job_ids",
            if what == "experiment" { " with a transcript" } else { "" }
        ))),
        Created::OverMax => Err(ApiError::unprocessable(format!(
            "jobs: the selection has more than {} calls, the most one {what} may cover; narrow it or set jobs.limit",
            state.max_batch_calls
        ))),
        Created::Missing(ids) => {
            let shown: Vec<i64> = ids.iter().copied().take(20).collect();
            let more = if ids.len() > shown.len() {
                format!(" and {} more", ids.len() - shown.len())
            } else {
                String::new()
            };
            Err(ApiError::unprocessable(format!(
                "jobs.job_ids: {shown:?}{more} are not root jobs of this workspace{}",
                if what == "experiment" { " with a transcript" } else { "" }
            )))
        }
    }
}

/// The workspace a batch of `workspace_id` belongs to, when the key reaches it.
pub async fn in_scope(state: &AppState, caller: &Caller, workspace_id: i64, what: &str) -> ApiResult<()> {
    let workspace = state.store.workspace(workspace_id).await?;
    if caller.reaches(&workspace) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("Not authorized to access this {what}")))
    }
}

/// A `cursor` query value: the `next_cursor` of a previous page.
pub fn cursor(value: Option<&str>) -> ApiResult<Option<i64>> {
    value
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| ApiError::unprocessable("cursor must be the next_cursor of a previous page"))
        })
        .transpose()
}

/// The `next_cursor` of a page: the last row's ID when the page is full.
pub fn next_cursor<T>(page: &[T], limit: i64, id: impl Fn(&T) -> i64) -> Option<String> {
    (page.len() as i64 == limit)
        .then(|| page.last().map(|r| id(r).to_string()))
        .flatten()
}

/// A page size within `1..=max`, `default` when absent.
pub fn page_size(limit: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::unprocessable(format!("limit must be between 1 and {max}")))
    }
}

/// How often a progress stream looks; it sends only when something changed.
const EVENT_INTERVAL: Duration = Duration::from_millis(500);

/// One look at a batch for its event stream.
pub struct Snapshot {
    /// The event's data.
    pub data: serde_json::Value,
    /// What counts as a change (the counts, not the rate that moves with time).
    pub counts: Vec<i64>,
    /// Whether it has ended.
    pub ended: bool,
}

/// Progress as Server-Sent Events: `read` looks at the batch. A `progress`
/// event each time its counts change (looked at every 500 ms), then one
/// `done` event, and the stream ends.
pub fn progress_events<F, Fut>(read: F) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ApiResult<Snapshot>> + Send,
{
    struct Watch<F> {
        read: F,
        last: Option<Vec<i64>>,
        ended: bool,
        first: bool,
    }
    let start = Watch {
        read,
        last: None,
        ended: false,
        first: true,
    };
    let stream = futures_util::stream::unfold(start, |mut w| async move {
        if w.ended {
            return None;
        }
        loop {
            if !w.first {
                tokio::time::sleep(EVENT_INTERVAL).await;
            }
            w.first = false;
            let snapshot = match (w.read)().await {
                Ok(snapshot) => snapshot,
                Err(e) => {
                    w.ended = true;
                    let event = Event::default().event("error").data(e.detail());
                    return Some((Ok(event), w));
                }
            };
            if snapshot.ended {
                w.ended = true;
                let event = Event::default().event("done").data(snapshot.data.to_string());
                return Some((Ok(event), w));
            }
            if w.last.as_ref() != Some(&snapshot.counts) {
                w.last = Some(snapshot.counts);
                let event = Event::default().event("progress").data(snapshot.data.to_string());
                return Some((Ok(event), w));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
