//! Several servers on one database, as a scaled-out deployment runs: API
//! servers (`serve --no-worker`, in this process) and `gensail worker`
//! processes (the real binary) sharing PostgreSQL when
//! `GENSAIL_TEST_POSTGRES_URL` is set (CI), else one SQLite file.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::nodes::{ApiNode, PLATFORM, Workers, database, worker, worker_polling};
use common::receiver::Receiver;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;

/// The database every node of a test shares.
async fn shared_database(dir: &Path) -> String {
    match common::api::fresh_database().await {
        Some(url) => url,
        None => {
            if std::env::var("GENSAIL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("GENSAIL_REQUIRE_POSTGRES=1 but GENSAIL_TEST_POSTGRES_URL is not set");
            }
            format!("sqlite://{}", dir.join("shared.db").display())
        }
    }
}

async fn job_status(db: &sqlx::AnyPool, job_id: i64) -> String {
    sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn eventually<F: AsyncFn() -> bool>(what: &str, within: Duration, check: F) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_api_servers_and_two_workers_complete_1000_child_jobs_once_each() {
    const CHILDREN: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let url = shared_database(dir.path()).await;
    let a = ApiNode::start(&url, &dir.path().join("a")).await;
    let b = ApiNode::start(&url, &dir.path().join("b")).await;
    let _workers = Workers(vec![
        worker(&url, &dir.path().join("w1"), 30),
        worker(&url, &dir.path().join("w2"), 30),
    ]);
    let receiver = Receiver::start().await;
    let ws = a.workspace().await;
    let (status, endpoint) = a
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/config/workspace/{ws}/webhook"),
            PLATFORM,
            Some(json!({"url": receiver.url})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{endpoint}");
    let secret = endpoint["signing_secret"].as_str().unwrap().to_owned();

    let parent = a.ingest(ws, &["internal_metrics_v1"], true).await;
    let db = database(&url).await;
    eventually("the parent job to complete", Duration::from_secs(60), async || {
        job_status(&db, parent).await == "completed"
    })
    .await;
    // Child jobs through both API servers, eight requests at a time.
    let nodes = Arc::new([a.base.clone(), b.base.clone()]);
    let mut creators = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let nodes = nodes.clone();
        creators.spawn(async move {
            let client = reqwest::Client::new();
            for i in (lane..CHILDREN).step_by(8) {
                let r = client
                    .post(format!("{}/api/v1/jobs/{parent}/run-algorithms", nodes[i % 2]))
                    .bearer_auth(PLATFORM)
                    .json(&json!({"algorithm_ids": ["internal_metrics_v1"], "force_rerun": true, "analytics_only": false}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::ACCEPTED, "{}", r.text().await.unwrap());
            }
        });
    }
    while let Some(done) = creators.join_next().await {
        done.unwrap();
    }

    eventually("every child job to complete", Duration::from_secs(300), async || {
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status <> 'completed'")
            .fetch_one(&db)
            .await
            .unwrap();
        open == 0
    })
    .await;
    let children: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE parent_job_id = $1")
        .bind(parent)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(children, CHILDREN as i64);

    // No run executed to completion twice: one run per child, run once, one "completed" event per job.
    let runs =
        sqlx::query("SELECT COUNT(*) AS n, MAX(attempts) AS most FROM algorithm_runs WHERE status = 'completed'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        (runs.get::<i64, _>("n"), runs.get::<i64, _>("most")),
        (CHILDREN as i64 + 1, 1)
    );
    let completions: Vec<(i64, i64)> = sqlx::query("SELECT job_id, COUNT(*) AS n FROM job_events WHERE message LIKE 'internal_metrics_v1 % completed in %' GROUP BY job_id")
        .fetch_all(&db)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("job_id"), r.get("n")))
        .collect();
    assert_eq!(completions.len(), CHILDREN + 1);
    assert!(
        completions.iter().all(|(_, n)| *n == 1),
        "a run completed twice: {:?}",
        completions.iter().filter(|(_, n)| *n != 1).collect::<Vec<_>>()
    );
    // Both workers took part.
    let settled_by: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT message FROM job_events WHERE message LIKE 'completed:%'")
            .fetch_all(&db)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| {
                m.rsplit_once("(worker ")
                    .map(|(_, w)| w.trim_end_matches(')').to_owned())
            })
            .collect();
    assert_eq!(settled_by.len(), 2, "{settled_by:?}");

    // Every child's run was delivered, signed, under one delivery ID per run.
    let received = receiver.wait_for(CHILDREN).await;
    let mut ids_per_run: HashMap<i64, HashSet<String>> = HashMap::new();
    for r in &received {
        let t: i64 = r
            .header("x-signature")
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            gensail::delivery::verify(&secret, r.header("x-signature"), &r.body, t, 0),
            "bad signature"
        );
        ids_per_run
            .entry(r.json()["call"]["algorithm_run_id"].as_i64().unwrap())
            .or_default()
            .insert(r.header("webhook-id").to_owned());
    }
    assert_eq!(ids_per_run.len(), CHILDREN);
    assert!(
        ids_per_run.values().all(|ids| ids.len() == 1),
        "a run was delivered under two IDs"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_on_a_killed_worker_completes_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let url = shared_database(dir.path()).await;
    let api = ApiNode::start(&url, &dir.path().join("api")).await;
    api.publish(common::wasm("hostile")).await;
    let ws = api.workspace().await;
    api.post(
        &format!("/api/v1/workspaces/{ws}/algorithms"),
        json!({"algorithm_id": "hostile_v1", "config": {"mode": "busy", "iterations": 2_000_000_000u64}}),
    )
    .await;
    let mut workers = Workers(vec![worker(&url, &dir.path().join("w1"), 2)]);
    let job = api.ingest(ws, &["hostile_v1"], true).await;
    let db = database(&url).await;
    eventually(
        "the first worker to start the run",
        Duration::from_secs(30),
        async || {
            let status: String = sqlx::query_scalar("SELECT status FROM algorithm_runs WHERE job_id = $1")
                .bind(job)
                .fetch_one(&db)
                .await
                .unwrap();
            status == "running"
        },
    )
    .await;
    workers.0[0].kill().unwrap(); // SIGKILL: no chance to release the lease
    workers.0[0].wait().unwrap();
    workers.0.push(worker(&url, &dir.path().join("w2"), 2));

    eventually(
        "the other worker to settle the job",
        Duration::from_secs(180),
        async || ["completed", "partial", "failed"].contains(&job_status(&db, job).await.as_str()),
    )
    .await;
    assert_eq!(job_status(&db, job).await, "completed");
    let run = sqlx::query("SELECT status, attempts, algorithm_version FROM algorithm_runs WHERE job_id = $1")
        .bind(job)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        (
            run.get::<String, _>("status"),
            run.get::<i64, _>("attempts"),
            run.get::<String, _>("algorithm_version")
        ),
        ("completed".into(), 2, "0.1.0".into())
    );
    let completions: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM job_events WHERE job_id = $1 AND message LIKE 'hostile_v1 % completed in %'",
    )
    .bind(job)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(completions, 1);
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_published_on_one_server_serves_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let url = shared_database(dir.path()).await;
    let a = ApiNode::start(&url, &dir.path().join("a")).await;
    let b = ApiNode::start(&url, &dir.path().join("b")).await;
    let serves = |node: &ApiNode, version: Option<&str>| {
        let loaded = node
            .state
            .engine
            .registry()
            .get("hostile_v1")
            .map(|a| a.info.version.to_string());
        loaded.as_deref() == version
    };

    a.publish(common::wasm("hostile")).await;
    eventually("B to load 0.1.0", Duration::from_secs(10), async || {
        serves(&b, Some("0.1.0"))
    })
    .await;
    b.publish(common::wasm("hostile_next")).await;
    eventually("A to load 0.2.0", Duration::from_secs(10), async || {
        serves(&a, Some("0.2.0"))
    })
    .await;
    a.post("/api/v1/algorithms/hostile_v1/rollback", json!({})).await;
    eventually("B to roll back to 0.1.0", Duration::from_secs(10), async || {
        serves(&b, Some("0.1.0"))
    })
    .await;
    b.post("/api/v1/algorithms/hostile_v1/disable", json!({})).await;
    eventually("A to unload it", Duration::from_secs(10), async || serves(&a, None)).await;
    // What B says matches what A serves.
    let (_, seen) = b
        .call(reqwest::Method::GET, "/api/v1/algorithms/hostile_v1", PLATFORM, None)
        .await;
    assert_eq!(
        (seen["status"].as_str(), seen["active_version"].as_str()),
        (Some("disabled"), Some("0.1.0"))
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_worker_in_another_process_is_woken_by_new_work() {
    let dir = tempfile::tempdir().unwrap();
    let url = shared_database(dir.path()).await;
    if url.starts_with("sqlite:") {
        // SQLite workers in other processes find work by polling only.
        return eprintln!("skipped on SQLite: no NOTIFY");
    }
    let api = ApiNode::start(&url, &dir.path().join("api")).await;
    let ws = api.workspace().await;
    // A worker that would not poll again for ten minutes.
    let _workers = Workers(vec![worker_polling(&url, &dir.path().join("w"), 30, 600_000)]);
    let db = database(&url).await;
    eventually("the worker to listen", Duration::from_secs(30), async || {
        let listening: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%gensail_work%'")
                .fetch_one(&db)
                .await
                .unwrap();
        listening > 0
    })
    .await;
    let job = api.ingest(ws, &["internal_metrics_v1"], true).await;
    eventually(
        "the notified worker to complete the job",
        Duration::from_secs(20),
        async || job_status(&db, job).await == "completed",
    )
    .await;
    api.shutdown().await;
}

#[tokio::test]
async fn a_server_with_another_secret_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = shared_database(dir.path()).await;
    let first = ApiNode::start(&url, &dir.path().join("a")).await;
    let mut config = gensail::app::ServeConfig::new(dir.path().join("b"));
    config.database_url = Some(url.clone());
    config.secret_key = Some("17".repeat(32));
    let clock: gensail::clock::SharedClock = Arc::new(gensail::clock::SystemClock);
    let error = gensail::app::build_state(&config, clock)
        .await
        .err()
        .expect("a second key is refused")
        .to_string();
    assert!(
        error.contains("give every server of the deployment the same GENSAIL_SECRET_KEY"),
        "{error}"
    );
    first.shutdown().await;
}
