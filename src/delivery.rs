//! The webhook delivery worker: sends each run's result, signed, from the
//! durable outbox; at least once, with exponential backoff and jitter,
//! `Retry-After` honoured, redirects not followed, 410 disabling the endpoint.
//!
//! Headers of every request: `X-Signature: t=<unix seconds>,v1=<hex
//! HMAC-SHA256 of "{t}.{body}">` (`,key=<key id>` with an HMAC credential),
//! `webhook-id` / `X-Delivery-Id` (the same on every retry and replay), and
//! the credential's `Authorization` for bearer and basic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;

use crate::clock;
use crate::jobs::AuthType;
use crate::state::AppState;
use crate::store::{AttemptOutcome, DeliveryWork, JobRow, RunRow};

/// How deliveries are retried.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// This worker's name in leases.
    pub id: String,
    /// First retry delay; each later one doubles (±50 % jitter).
    pub backoff_base: Duration,
    /// Longest delay between attempts.
    pub backoff_cap: Duration,
    /// Attempts before a delivery is given up (about three days with the defaults).
    pub max_attempts: i64,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// How often to look for due deliveries.
    pub poll_interval: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            id: format!(
                "delivery-{}-{}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 4]>())
            ),
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(12 * 3600),
            max_attempts: 15,
            timeout: Duration::from_secs(15),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Signs a body: `t=<t>,v1=<hex hmac>`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Verifies `X-Signature` against a raw body within `tolerance_seconds` of `now`
/// (what a receiver does; used by the tests and shown in docs/webhooks.md).
pub fn verify(secret: &str, header: &str, body: &str, now: i64, tolerance_seconds: i64) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1.push(value),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > tolerance_seconds {
        return false;
    }
    let expected = signature(secret, t, body);
    let expected = expected.rsplit("v1=").next().unwrap_or_default();
    v1.iter()
        .any(|candidate| subtle_eq(candidate.as_bytes(), expected.as_bytes()))
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The payload of one run (see docs/webhooks.md).
pub fn payload(job: &JobRow, run: &RunRow, recording_duration: Option<f64>, timestamp: &str) -> Value {
    let output = run.result.clone().unwrap_or(Value::Null);
    let mut call = json!({
        "algorithm_run_id": run.algorithm_run_id,
        "algorithm_id": run.algorithm_id,
        "algorithm_version": run.algorithm_version,
        "job_id": job.job_id,
        "parent_job_id": job.parent_job_id,
        "source_call_id": job.source_call_id,
        "source_company_id": job.source_company_id,
        "recording_url": job.recording_url,
        "recording_duration": recording_duration,
        "contacted_date": job.contacted_at.as_deref().map(|t| &t[..10]),
        "contacted_time": job.contacted_at.as_deref().and_then(|t| t.get(11..19)),
    });
    // The product's call-level fields, where the algorithm produces them.
    for field in [
        "call_sentiment",
        "call_sentiment_reason",
        "confidence_score",
        "answered_by",
        "insurance_type",
        "call_summary",
    ] {
        if let Some(v) = output.get(field) {
            call[field] = v.clone();
        }
    }
    let data = match output.get("data") {
        Some(Value::Array(items)) => Value::Array(items.clone()),
        _ if output.is_null() => json!([]),
        _ => json!([output]),
    };
    let mut body = json!({ "status": run.status, "timestamp": timestamp, "call": call, "data": data });
    if run.status == crate::jobs::RunStatus::Failed {
        body["error"] = run.error.clone().unwrap_or(Value::Null);
    }
    body
}

/// Sends due deliveries until `stop` turns true.
pub async fn run(state: AppState, config: DeliveryConfig, mut stop: watch::Receiver<bool>) {
    // Names resolve only through the outbound guard, so the address connected
    // to is one it allowed; no proxy, which would resolve names itself.
    let client = match reqwest::Client::builder()
        .dns_resolver(state.outbound.resolver())
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("gensail-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; deliveries stop");
            return;
        }
    };
    let config = Arc::new(config);
    while !*stop.borrow() {
        let lease = clock::format(
            state.store.clock().now()
                + chrono::Duration::from_std(config.timeout * 2).unwrap_or(chrono::Duration::seconds(60)),
        );
        match state.store.claim_deliveries(&config.id, &lease, 16).await {
            Ok(batch) if !batch.is_empty() => {
                let mut sends = tokio::task::JoinSet::new();
                for work in batch {
                    let (state, client, config) = (state.clone(), client.clone(), config.clone());
                    sends.spawn(async move { deliver(&state, &client, &config, work).await });
                }
                while sends.join_next().await.is_some() {}
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot claim deliveries"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = state.deliveries_due.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

async fn deliver(state: &AppState, client: &reqwest::Client, config: &DeliveryConfig, work: DeliveryWork) {
    let result = attempt(state, client, &work).await;
    let (status_code, latency, error, outcome) = match result {
        Attempt::Answered {
            status,
            latency,
            retry_after,
        } => {
            let outcome = if (200..300).contains(&status) {
                AttemptOutcome::Delivered
            } else if status == 410 {
                AttemptOutcome::Disabled
            } else {
                retry(
                    state,
                    config,
                    &work,
                    retry_after.filter(|_| matches!(status, 429 | 503)),
                )
            };
            let error = (!(200..300).contains(&status)).then(|| format!("receiver answered {status}"));
            (Some(status), Some(latency), error, outcome)
        }
        Attempt::NotSent(reason) => (None, None, Some(reason), retry(state, config, &work, None)),
        Attempt::Refused(reason) => (None, None, Some(reason), AttemptOutcome::Failed),
    };
    metrics_count(state, &outcome);
    if let Err(e) = state
        .store
        .record_attempt(&work, status_code, latency, error.as_deref(), &outcome)
        .await
    {
        tracing::error!(delivery_id = %work.delivery_id, error = %e, "cannot record delivery attempt");
    }
}

fn metrics_count(state: &AppState, outcome: &AttemptOutcome) {
    let label = match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Retry(_) => "retry",
        AttemptOutcome::Failed => "failed",
        AttemptOutcome::Disabled => "disabled",
    };
    state
        .metrics
        .deliveries
        .get_or_create(&crate::metrics::OutcomeLabels {
            outcome: label.to_owned(),
        })
        .inc();
}

/// The next attempt's time, or `Failed` after the last.
fn retry(
    state: &AppState,
    config: &DeliveryConfig,
    work: &DeliveryWork,
    retry_after: Option<Duration>,
) -> AttemptOutcome {
    if work.attempts + 1 >= config.max_attempts {
        return AttemptOutcome::Failed;
    }
    let delay = retry_after.unwrap_or_else(|| {
        let exp = config
            .backoff_base
            .saturating_mul(1u32 << work.attempts.clamp(0, 20) as u32)
            .min(config.backoff_cap);
        exp.mul_f64(0.5 + rand::random::<f64>())
    });
    let at = state.store.clock().now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
    AttemptOutcome::Retry(clock::format(at))
}

enum Attempt {
    Answered {
        status: u16,
        latency: f64,
        retry_after: Option<Duration>,
    },
    /// Not delivered for a reason that may pass (network, DNS, timeout).
    NotSent(String),
    /// Not deliverable at all (no endpoint any more, address refused).
    Refused(String),
}

async fn attempt(state: &AppState, client: &reqwest::Client, work: &DeliveryWork) -> Attempt {
    let loaded = async {
        let endpoint = state.store.endpoint(work.entity).await?;
        let credential = state.store.credential(work.entity).await?;
        let job = state.store.job(work.job_id).await?;
        let run = state.store.run(work.algorithm_run_id).await?;
        let duration = match &job.transcript_sha256 {
            Some(sha) => Some(state.store.transcript_summary(sha).await?.duration_ms as f64 / 1000.0),
            None => job.duration_seconds,
        };
        Ok::<_, crate::store::StoreError>((endpoint, credential, job, run, duration))
    }
    .await;
    let (endpoint, credential, job, run, duration) = match loaded {
        Ok(v) => v,
        Err(e) => return Attempt::NotSent(format!("cannot load the delivery: {e}")),
    };
    let Some(endpoint) = endpoint else {
        return Attempt::Refused("the webhook endpoint was removed".into());
    };
    if endpoint.disabled_at.is_some() {
        return Attempt::Refused(
            "the webhook endpoint is disabled (it answered 410 Gone); PUT its URL again to re-enable it".into(),
        );
    }
    // Checked again at send time: the name may resolve elsewhere by now.
    let url = match state.outbound.check(&endpoint.url).await {
        Ok(url) => url,
        Err(reason) => return Attempt::Refused(reason),
    };
    let now = state.store.clock().now();
    let body = payload(&job, &run, duration, &clock::format(now)).to_string();
    let (signing_secret, key_id) = match credential.as_ref().filter(|c| c.auth_type == AuthType::Hmac) {
        Some(c) => (c.secret_enc.as_deref().map(|s| state.secrets.open(s)), c.key_id.clone()),
        None => (Some(state.secrets.open(&endpoint.signing_secret_enc)), None),
    };
    let secret = match signing_secret {
        Some(Ok(s)) => s,
        _ => return Attempt::Refused("the signing secret cannot be read with this service key".into()),
    };
    let mut signature = signature(&secret, now.timestamp(), &body);
    if let Some(key) = key_id {
        signature.push_str(&format!(",key={key}"));
    }
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-signature", signature)
        .header("webhook-id", &work.delivery_id)
        .header("x-delivery-id", &work.delivery_id)
        .body(body);
    if let Some(c) = &credential {
        let secret = c.secret_enc.as_deref().map(|s| state.secrets.open(s));
        match (c.auth_type, secret) {
            (AuthType::Bearer, Some(Ok(token))) => request = request.bearer_auth(token),
            (AuthType::Basic, Some(Ok(password))) => {
                let pair = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{password}", c.username.clone().unwrap_or_default()));
                request = request.header("authorization", format!("Basic {pair}"));
            }
            (AuthType::Bearer | AuthType::Basic, _) => {
                return Attempt::Refused("the credential cannot be read with this service key".into());
            }
            _ => {}
        }
    }
    let started = Instant::now();
    match request.send().await {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // Read (and drop) at most 64 KiB of the answer, so a huge one cannot stall us.
            let mut read = 0usize;
            while read < 64 << 10 {
                match response.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    _ => break,
                }
            }
            Attempt::Answered {
                status,
                latency: started.elapsed().as_secs_f64() * 1000.0,
                retry_after,
            }
        }
        Err(e) => Attempt::NotSent(if e.is_timeout() {
            "the receiver did not answer in time".into()
        } else {
            format!("cannot reach the receiver: {e}")
        }),
    }
}
