//! Child jobs per second with 1, 2 and 4 `gensail worker` processes sharing
//! one database (docs/performance.md, "Scale-out").
//!
//! A backlog of child jobs is created through an API server first, then the
//! workers start; the figure is completions per second between the first and
//! the last completion, so process start-up is not counted.
//!
//! ```sh
//! GENSAIL_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:55432/postgres cargo bench --bench scale_out
//! ```
//! Without the variable only SQLite is measured.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

#[path = "../tests/common/nodes.rs"]
mod nodes;

use std::time::{Duration, Instant};

use nodes::{ApiNode, PLATFORM, Workers, database, worker};
use serde_json::json;
use sqlx::Row;

/// Child jobs in each measurement.
const CHILDREN: usize = 2000;
/// The algorithm every child runs (cheap: the figure is about coordination).
const ALGORITHM: &str = "internal_metrics_v1";

async fn wait_until<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(900);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Completions per second of `CHILDREN` child jobs with `workers` worker processes.
async fn measure(database_url: &str, workers: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let api = ApiNode::start(database_url, &dir.path().join("api")).await;
    let db = database(database_url).await;
    let ws = api.workspace().await;
    // The parent job, run by a worker that then stops.
    let parent = {
        let _one = Workers(vec![worker(database_url, &dir.path().join("parent-worker"), 30)]);
        let parent = api.ingest(ws, &[ALGORITHM], true).await;
        wait_until("the parent job", async || {
            sqlx::query_scalar::<_, String>("SELECT status FROM jobs WHERE id = $1")
                .bind(parent)
                .fetch_one(&db)
                .await
                .unwrap()
                == "completed"
        })
        .await;
        parent
    };
    // The backlog, eight requests at a time.
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let base = api.base.clone();
        lanes.spawn(async move {
            let client = reqwest::Client::new();
            for _ in (lane..CHILDREN).step_by(8) {
                let r = client
                    .post(format!("{base}/api/v1/jobs/{parent}/run-algorithms"))
                    .bearer_auth(PLATFORM)
                    .json(&json!({"algorithm_ids": [ALGORITHM], "force_rerun": true}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
            }
        });
    }
    while let Some(done) = lanes.join_next().await {
        done.unwrap();
    }
    let _workers = Workers(
        (0..workers)
            .map(|i| worker(database_url, &dir.path().join(format!("w{i}")), 30))
            .collect(),
    );
    wait_until("the backlog", async || {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE parent_job_id = $1 AND status = 'completed'")
            .bind(parent)
            .fetch_one(&db)
            .await
            .unwrap()
            == CHILDREN as i64
    })
    .await;
    let span =
        sqlx::query("SELECT MIN(completed_at) AS first, MAX(completed_at) AS last FROM jobs WHERE parent_job_id = $1")
            .bind(parent)
            .fetch_one(&db)
            .await
            .unwrap();
    let parse = |t: String| chrono::DateTime::parse_from_rfc3339(&t).unwrap();
    let (first, last) = (parse(span.get("first")), parse(span.get("last")));
    let seconds = (last - first).num_microseconds().unwrap() as f64 / 1e6;
    api.shutdown().await;
    (CHILDREN - 1) as f64 / seconds
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sqlite_dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for workers in [1, 2, 4] {
        let url = format!(
            "sqlite://{}",
            sqlite_dir.path().join(format!("bench-{workers}.db")).display()
        );
        rows.push(("SQLite", workers, measure(&url, workers).await));
    }
    if let Ok(admin) = std::env::var("GENSAIL_BENCH_POSTGRES_URL") {
        for workers in [1, 2, 4] {
            let url = nodes::create_database(&admin).await;
            rows.push(("PostgreSQL", workers, measure(&url, workers).await));
        }
    } else {
        eprintln!("GENSAIL_BENCH_POSTGRES_URL is not set: PostgreSQL not measured");
    }
    println!("| database | workers | child jobs/s |");
    println!("| --- | --- | --- |");
    for (database, workers, rate) in rows {
        println!("| {database} | {workers} | {rate:.0} |");
    }
}
