//! Prometheus metrics (`GET /metrics`): requests, jobs by status, runs by
//! algorithm and outcome, run durations and fuel. One registry per running
//! service (no global state, so tests can run several servers in a process).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// The route pattern (`/api/v1/jobs/{job_id}`), never the raw path.
    pub route: String,
    /// Status code.
    pub status: u16,
}

/// Labels of a run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// Algorithm ID.
    pub algorithm_id: String,
    /// `completed`, or the error kind (`timeout`, `trap`, ...).
    pub outcome: String,
}

/// Labels of a per-algorithm series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlgorithmLabels {
    /// Algorithm ID.
    pub algorithm_id: String,
}

/// Labels of counters by outcome alone (delivery attempts, plugin files).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// What happened: delivered, retry, failed or disabled (deliveries);
    /// published, unchanged, refused or removed (plugin files).
    pub outcome: String,
}

/// Labels of the jobs gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// Job status.
    pub status: String,
}

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests answered.
    pub requests: Family<RequestLabels, Counter>,
    /// Algorithm runs finished.
    pub runs: Family<RunLabels, Counter>,
    /// Run wall time in seconds.
    pub run_seconds: Family<AlgorithmLabels, Histogram>,
    /// Fuel consumed by runs.
    pub fuel: Family<AlgorithmLabels, Counter>,
    /// Jobs by status (set at scrape time from the database).
    pub jobs: Family<StatusLabels, Gauge>,
    /// Webhook delivery attempts by outcome.
    pub deliveries: Family<OutcomeLabels, Counter>,
    /// Files handled in the plugins directory by outcome.
    pub plugin_files: Family<OutcomeLabels, Counter>,
    /// Runs failed with `lost_lease`: their workers kept dying on them.
    pub lost_lease_runs: Family<AlgorithmLabels, Counter>,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("gensail");
        let requests = Family::<RequestLabels, Counter>::default();
        let runs = Family::<RunLabels, Counter>::default();
        let run_seconds = Family::<AlgorithmLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        let fuel = Family::<AlgorithmLabels, Counter>::default();
        let jobs = Family::<StatusLabels, Gauge>::default();
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "algorithm_runs",
            "Algorithm runs finished, by algorithm and outcome",
            runs.clone(),
        );
        registry.register(
            "algorithm_run_seconds",
            "Wall time of algorithm runs",
            run_seconds.clone(),
        );
        registry.register("algorithm_fuel", "Fuel consumed by algorithm runs", fuel.clone());
        registry.register("jobs", "Jobs by status", jobs.clone());
        registry.register(
            "webhook_delivery_attempts",
            "Webhook delivery attempts by outcome",
            deliveries.clone(),
        );
        let plugin_files = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "plugin_files",
            "Files handled in the plugins directory, by outcome",
            plugin_files.clone(),
        );
        let lost_lease_runs = Family::<AlgorithmLabels, Counter>::default();
        registry.register(
            "lost_lease_runs",
            "Runs failed because the workers running them lost their lease too often, by algorithm",
            lost_lease_runs.clone(),
        );
        Arc::new(Self {
            lost_lease_runs,
            registry,
            requests,
            runs,
            run_seconds,
            fuel,
            jobs,
            deliveries,
            plugin_files,
        })
    }

    /// Counts a plugins-directory file by outcome.
    pub fn plugin_file(&self, outcome: &str) {
        self.plugin_files
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a run failed because its workers kept losing the lease.
    pub fn lost_lease(&self, algorithm_id: &str) {
        self.lost_lease_runs
            .get_or_create(&AlgorithmLabels {
                algorithm_id: algorithm_id.to_owned(),
            })
            .inc();
    }

    /// Records a finished run.
    pub fn record_run(&self, report: &gensail_engine::RunReport) {
        let outcome = report.error.as_ref().map_or("completed", |e| e.kind()).to_owned();
        self.runs
            .get_or_create(&RunLabels {
                algorithm_id: report.algorithm_id.clone(),
                outcome,
            })
            .inc();
        let algorithm = AlgorithmLabels {
            algorithm_id: report.algorithm_id.clone(),
        };
        self.run_seconds
            .get_or_create(&algorithm)
            .observe(report.wall_time_ms / 1000.0);
        self.fuel.get_or_create(&algorithm).inc_by(report.fuel_consumed);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
