//! Rate limits per API key, by the key's scope (workspace 50/min,
//! organization 120/min, partner 500/min by default), with governor's GCRA.
//!
//! Limits live in this process's memory: with several API servers each
//! enforces its own (documented in docs/operations.md). Platform keys are not
//! limited: they belong to the operators. The limiter reads the service clock,
//! so tests move time instead of sleeping.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};
use governor::clock::Clock as GovernorClock;
use governor::{Quota, RateLimiter};

use crate::clock::SharedClock;
use crate::store::{ApiKey, Scope};

/// Requests per minute for each key scope.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    /// Workspace keys.
    pub workspace_per_minute: u32,
    /// Organization keys.
    pub organization_per_minute: u32,
    /// Partner keys.
    pub partner_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            workspace_per_minute: 50,
            organization_per_minute: 120,
            partner_per_minute: 500,
        }
    }
}

/// governor's view of the service clock: time since the limiter was made.
#[derive(Clone)]
struct ServiceClock {
    clock: SharedClock,
    origin: DateTime<Utc>,
}

impl GovernorClock for ServiceClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        (self.clock.now() - self.origin).to_std().unwrap_or_default()
    }
}

type KeyedLimiter = RateLimiter<
    i64,
    governor::state::keyed::DefaultKeyedStateStore<i64>,
    ServiceClock,
    governor::middleware::StateInformationMiddleware,
>;

/// One keyed limiter per scope type.
#[derive(Clone)]
pub struct RateLimits {
    workspace: Arc<(KeyedLimiter, u32)>,
    organization: Arc<(KeyedLimiter, u32)>,
    partner: Arc<(KeyedLimiter, u32)>,
    clock: ServiceClock,
}

impl RateLimits {
    /// Limiters reading `clock`.
    pub fn new(config: RateLimitConfig, clock: SharedClock) -> Self {
        let clock = ServiceClock {
            origin: clock.now(),
            clock,
        };
        let make = |per_minute: u32| {
            let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
            Arc::new((
                RateLimiter::dashmap_with_clock(Quota::per_minute(n), clock.clone())
                    .with_middleware::<governor::middleware::StateInformationMiddleware>(),
                n.get(),
            ))
        };
        Self {
            workspace: make(config.workspace_per_minute),
            organization: make(config.organization_per_minute),
            partner: make(config.partner_per_minute),
            clock,
        }
    }

    /// Counts one request of `key`: the `X-RateLimit-*` headers to send, or,
    /// over the limit, the 429's headers with `Retry-After`.
    pub fn check(&self, key: &ApiKey) -> Result<HeaderMap, HeaderMap> {
        let limiter = match key.scope {
            Scope::Platform => return Ok(HeaderMap::new()),
            Scope::Workspace(_) => &self.workspace,
            Scope::Organization(_) => &self.organization,
            Scope::Partner(_) => &self.partner,
        };
        let (limiter, limit) = (&limiter.0, limiter.1);
        let per_request = 60.0 / limit as f64;
        match limiter.check_key(&key.id) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                // Seconds until the bucket is full again.
                let reset = ((limit - remaining) as f64 * per_request).ceil() as u64;
                Ok(headers(limit, remaining, reset, None))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now()).as_secs_f64().ceil().max(1.0) as u64;
                Err(headers(limit, 0, wait, Some(wait)))
            }
        }
    }

    /// Forgets keys idle long enough to be full again (bounded memory).
    pub fn retain_recent(&self) {
        for l in [&self.workspace, &self.organization, &self.partner] {
            l.0.retain_recent();
        }
    }
}

fn headers(limit: u32, remaining: u32, reset: u64, retry_after: Option<u64>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    if let Some(s) = retry_after {
        h.insert("retry-after", HeaderValue::from(s));
    }
    h
}
