//! Request checks shared by several endpoints, with the messages callers see.

use chrono::Duration;

use super::error::ApiError;
use crate::jobs::JobStatus;
use crate::state::AppState;

/// Most algorithm IDs one request may name (after de-duplication).
pub const MAX_ALGORITHM_IDS: usize = 10;

/// Reads `algorithm_ids`: a non-empty list of strings, de-duplicated keeping
/// the first occurrence's order, at most [`MAX_ALGORITHM_IDS`] distinct.
pub fn algorithm_ids(value: Option<&serde_json::Value>) -> Result<Vec<String>, ApiError> {
    let Some(value) = value else {
        return Err(ApiError::unprocessable(
            "algorithm_ids is required: a list of 1 to 10 algorithm IDs",
        ));
    };
    let items = value
        .as_array()
        .ok_or_else(|| ApiError::unprocessable("algorithm_ids must be a list of strings"))?;
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let id = item
            .as_str()
            .ok_or_else(|| ApiError::unprocessable("algorithm_ids must be a list of strings"))?;
        if !ids.iter().any(|seen| seen == id) {
            ids.push(id.to_owned());
        }
    }
    if ids.is_empty() {
        return Err(ApiError::unprocessable(
            "algorithm_ids must not be empty: name 1 to 10 algorithm IDs",
        ));
    }
    if ids.len() > MAX_ALGORITHM_IDS {
        return Err(ApiError::unprocessable(format!(
            "algorithm_ids names {} distinct algorithms; at most {MAX_ALGORITHM_IDS} are allowed per request",
            ids.len()
        )));
    }
    Ok(ids)
}

/// Reads an optional boolean field.
pub fn flag(value: Option<&serde_json::Value>, name: &str, default: bool) -> Result<bool, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ApiError::unprocessable(format!(
            "{name} must be true or false, not {other}"
        ))),
    }
}

/// `Algorithms not available: ['a', 'b']`: the spec's exact wording, a Python-style list.
pub fn not_available(ids: &[String]) -> ApiError {
    ApiError::bad_request(crate::on_demand::Refusal::Unavailable(ids.to_vec()).detail())
}

/// Reads `since`: a relative age (`30d`, `12h`, `15m`) or an RFC 3339 time.
pub fn since(state: &AppState, since: &str) -> Result<String, ApiError> {
    let unreadable = || {
        ApiError::unprocessable(format!(
            "since must be an age such as 30d, 12h or 15m (at most {MAX_SINCE_DAYS}d), or an RFC 3339 time; not {since:?}"
        ))
    };
    match relative_age(since) {
        // Checked: an age reaching before the calendar's start is refused, not a panic.
        Some(age) => age
            .filter(|age| age.num_days() <= MAX_SINCE_DAYS)
            .and_then(|age| state.store.clock().now().checked_sub_signed(age))
            .map(crate::clock::format)
            .ok_or_else(unreadable),
        None => crate::clock::parse(since)
            .map(crate::clock::format)
            .ok_or_else(unreadable),
    }
}

/// The longest age `since` accepts: a century covers every stored call.
const MAX_SINCE_DAYS: i64 = 36_500;

/// `Some(age)` when `since` has the form of an age (`None` inside when its
/// number is too large to be a duration); `None` when it is not an age.
fn relative_age(since: &str) -> Option<Option<Duration>> {
    let (last, _) = since.char_indices().last()?;
    let (number, unit) = since.split_at(last);
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: Option<i64> = number.parse().ok();
    match unit {
        "d" => Some(n.and_then(Duration::try_days)),
        "h" => Some(n.and_then(Duration::try_hours)),
        "m" => Some(n.and_then(Duration::try_minutes)),
        _ => None,
    }
}

/// Reads job statuses (`completed`, `partial`), naming the words it knows.
pub fn statuses<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Vec<JobStatus>, ApiError> {
    words
        .into_iter()
        .map(|word| {
            JobStatus::parse(word).ok_or_else(|| {
                let all: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::unprocessable(format!("status {word:?} is not a job status ({})", all.join(", ")))
            })
        })
        .collect()
}

/// Reads a transcript given as a JSON object or as text (JSON or `Speaker: text` lines).
pub fn transcript(value: &serde_json::Value) -> Result<gensail_host_api::Transcript, ApiError> {
    let parsed = match value {
        serde_json::Value::String(text) => gensail_host_api::Transcript::parse(text),
        serde_json::Value::Object(_) => gensail_host_api::Transcript::parse(&value.to_string()),
        _ => {
            return Err(ApiError::unprocessable(
                "transcript must be an object with segments, or a string of `Speaker: text` lines",
            ));
        }
    };
    parsed.map_err(|e| ApiError::unprocessable(format!("transcript: {e}")))
}

/// Reads an RFC 3339 time, naming the field when it is not one.
pub fn time(name: &str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    value
        .map(|v| {
            crate::clock::parse(v).map(crate::clock::format).ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "{name} must be an RFC 3339 time such as 2026-01-22T12:00:00Z, not {v:?}"
                ))
            })
        })
        .transpose()
}

/// Why a call is skipped by the workspace's ingestion filter, if it is.
pub fn skip_reason(workspace: &crate::store::Workspace, duration_ms: Option<u64>) -> Option<String> {
    let duration_ms = duration_ms?;
    let min = workspace.min_duration_seconds.max(0) as u64;
    (duration_ms < min * 1000).then(|| {
        format!("Call is {:.1} s long, shorter than the workspace's minimum of {min} s (processing.filters.min_duration_seconds)", duration_ms as f64 / 1000.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detail(e: ApiError) -> String {
        match e {
            ApiError::Unprocessable(d) | ApiError::BadRequest(d) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dedupes_keeping_first_order() {
        assert_eq!(
            algorithm_ids(Some(&json!(["b", "a", "b", "c", "a"]))).unwrap(),
            ["b", "a", "c"]
        );
    }

    #[test]
    fn ten_distinct_is_the_limit() {
        let ten: Vec<String> = (0..10).map(|i| format!("a{i}")).collect();
        let mut with_dupes = ten.clone();
        with_dupes.extend(ten.clone());
        assert_eq!(algorithm_ids(Some(&json!(with_dupes))).unwrap().len(), 10);
        let mut eleven = ten;
        eleven.push("x".into());
        assert!(detail(algorithm_ids(Some(&json!(eleven))).unwrap_err()).contains("11 distinct"));
    }

    #[test]
    fn shapes() {
        assert!(detail(algorithm_ids(None).unwrap_err()).contains("required"));
        assert!(detail(algorithm_ids(Some(&json!("sentiment_v1"))).unwrap_err()).contains("list of strings"));
        assert!(detail(algorithm_ids(Some(&json!([1]))).unwrap_err()).contains("list of strings"));
        assert!(detail(algorithm_ids(Some(&json!([]))).unwrap_err()).contains("must not be empty"));
    }

    #[test]
    fn python_list_format() {
        assert_eq!(
            detail(not_available(&["unknown_algo".into()])),
            "Algorithms not available: ['unknown_algo']"
        );
        assert_eq!(
            detail(not_available(&["a".into(), "b".into()])),
            "Algorithms not available: ['a', 'b']"
        );
    }
}
