//! Several servers on one database, as a scaled-out deployment runs: API
//! servers (`serve --no-worker`, in this process) and `gensail worker`
//! processes (the real binary) sharing PostgreSQL when
//! `GENSAIL_TEST_POSTGRES_URL` is set (CI), else one SQLite file.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use gensail::app::{AppState, ServeConfig, Server, build_state};
use gensail::clock::{SharedClock, SystemClock};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

const PLATFORM: &str = "gs_multi_node_platform_token_0123456789";
const SECRET_KEY: &str = "4242424242424242424242424242424242424242424242424242424242424242";

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

/// An API server (no worker) in this process, on the real clock.
struct ApiNode {
    base: String,
    state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl ApiNode {
    async fn start(database_url: &str, data: &Path) -> Self {
        let mut config = ServeConfig::new(data.to_path_buf());
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.database_url = Some(database_url.to_owned());
        config.engine.cache_dir = Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache"));
        config.platform_token = Some(PLATFORM.into());
        config.secret_key = Some(SECRET_KEY.into());
        config.worker = false;
        config.webhook_allowlist = "127.0.0.1".into();
        config.algorithm_sync_interval = Duration::from_millis(100);
        let clock: SharedClock = Arc::new(SystemClock);
        let (state, _) = build_state(&config, clock).await.expect("node state");
        let server = Server::bind(state.clone(), &config).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Self { base, state, stop: Some(stop), handle: Some(handle) }
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.call(reqwest::Method::POST, path, PLATFORM, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    async fn publish(&self, component: Vec<u8>) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/algorithms", self.base))
            .bearer_auth(PLATFORM)
            .header("content-type", "application/wasm")
            .body(component)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }
}

/// A `gensail worker` process.
fn worker(database_url: &str, data: &Path, lease_seconds: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gensail"))
        .args(["worker", "--data-dir"])
        .arg(data)
        .env("DATABASE_URL", database_url)
        .env("GENSAIL_SECRET_KEY", SECRET_KEY)
        .env("GENSAIL_WEBHOOK_ALLOWLIST", "127.0.0.1")
        .env("GENSAIL_WORKER_LEASE_SECONDS", lease_seconds.to_string())
        .env("GENSAIL_WORKER_POLL_MS", "50")
        .env("GENSAIL_ALGORITHM_SYNC_MS", "100")
        .env("GENSAIL_RUN_FUEL", "200000000000")
        .stdout(Stdio::null())
        .spawn()
        .expect("start gensail worker")
}

/// Kills the workers when the test ends, however it ends.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A direct connection to the shared database, for what the API does not show.
async fn database(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new().max_connections(2).connect(url).await.unwrap()
}

async fn eventually<F: AsyncFn() -> bool>(what: &str, within: Duration, check: F) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A partner → organization → workspace; returns the workspace ID.
async fn workspace(node: &ApiNode) -> i64 {
    let partner = node.post("/api/v1/partners", json!({"name": "acme"})).await["id"].as_i64().unwrap();
    let organization = node.post("/api/v1/organizations", json!({"partner_id": partner, "name": "acme org"})).await["id"].as_i64().unwrap();
    node.post("/api/v1/workspaces", json!({"organization_id": organization, "name": "acme ws"})).await["id"].as_i64().unwrap()
}

async fn ingest(node: &ApiNode, workspace: i64, algorithm_ids: &[&str], analytics_only: bool) -> i64 {
    let transcript = std::fs::read_to_string(format!("{}/plugins/fixtures/support_resolved.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let body = json!({"workspace_id": workspace, "transcript": serde_json::from_str::<Value>(&transcript).unwrap(),
                      "algorithm_ids": algorithm_ids, "analytics_only": analytics_only});
    node.post("/api/v1/calls/transcript", body).await["job_id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_api_servers_and_two_workers_complete_1000_child_jobs_once_each() {
    const CHILDREN: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let url = shared_database(dir.path()).await;
    let a = ApiNode::start(&url, &dir.path().join("a")).await;
    let b = ApiNode::start(&url, &dir.path().join("b")).await;
    let _workers = Workers(vec![worker(&url, &dir.path().join("w1"), 30), worker(&url, &dir.path().join("w2"), 30)]);
    let receiver = Receiver::start().await;
    let ws = workspace(&a).await;
    let (status, endpoint) = a.call(reqwest::Method::PUT, &format!("/api/v1/config/workspace/{ws}/webhook"), PLATFORM, Some(json!({"url": receiver.url}))).await;
    assert_eq!(status, StatusCode::OK, "{endpoint}");
    let secret = endpoint["signing_secret"].as_str().unwrap().to_owned();

    let parent = ingest(&a, ws, &["internal_metrics_v1"], true).await;
    let db = database(&url).await;
    eventually("the parent job to complete", Duration::from_secs(60), async || {
        let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1").bind(parent).fetch_one(&db).await.unwrap();
        status == "completed"
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
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status <> 'completed'").fetch_one(&db).await.unwrap();
        open == 0
    })
    .await;
    let children: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE parent_job_id = $1").bind(parent).fetch_one(&db).await.unwrap();
    assert_eq!(children, CHILDREN as i64);

    // No run executed to completion twice: one run per child, run once, one "completed" event per job.
    let runs = sqlx::query("SELECT COUNT(*) AS n, MAX(attempts) AS most FROM algorithm_runs WHERE status = 'completed'").fetch_one(&db).await.unwrap();
    assert_eq!((runs.get::<i64, _>("n"), runs.get::<i64, _>("most")), (CHILDREN as i64 + 1, 1));
    let completions: Vec<(i64, i64)> = sqlx::query("SELECT job_id, COUNT(*) AS n FROM job_events WHERE message LIKE 'internal_metrics_v1 % completed in %' GROUP BY job_id")
        .fetch_all(&db)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("job_id"), r.get("n")))
        .collect();
    assert_eq!(completions.len(), CHILDREN + 1);
    assert!(completions.iter().all(|(_, n)| *n == 1), "a run completed twice: {:?}", completions.iter().filter(|(_, n)| *n != 1).collect::<Vec<_>>());
    // Both workers took part.
    let settled_by: HashSet<String> = sqlx::query_scalar::<_, String>("SELECT message FROM job_events WHERE message LIKE 'completed:%'")
        .fetch_all(&db)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.rsplit_once("(worker ").map(|(_, w)| w.trim_end_matches(')').to_owned()))
        .collect();
    assert_eq!(settled_by.len(), 2, "{settled_by:?}");

    // Every child's run was delivered, signed, under one delivery ID per run.
    let received = receiver.wait_for(CHILDREN).await;
    let mut ids_per_run: HashMap<i64, HashSet<String>> = HashMap::new();
    for r in &received {
        let t: i64 = r.header("x-signature").split(',').find_map(|p| p.strip_prefix("t=")).unwrap().parse().unwrap();
        assert!(gensail::delivery::verify(&secret, r.header("x-signature"), &r.body, t, 0), "bad signature");
        ids_per_run.entry(r.json()["call"]["algorithm_run_id"].as_i64().unwrap()).or_default().insert(r.header("webhook-id").to_owned());
    }
    assert_eq!(ids_per_run.len(), CHILDREN);
    assert!(ids_per_run.values().all(|ids| ids.len() == 1), "a run was delivered under two IDs");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_on_a_killed_worker_completes_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let url = shared_database(dir.path()).await;
    let api = ApiNode::start(&url, &dir.path().join("api")).await;
    api.publish(common::wasm("hostile")).await;
    let ws = workspace(&api).await;
    api.post(&format!("/api/v1/workspaces/{ws}/algorithms"), json!({"algorithm_id": "hostile_v1", "config": {"mode": "busy", "iterations": 3_000_000_000u64}})).await;
    let mut workers = Workers(vec![worker(&url, &dir.path().join("w1"), 2)]);
    let job = ingest(&api, ws, &["hostile_v1"], true).await;
    let db = database(&url).await;
    eventually("the first worker to start the run", Duration::from_secs(30), async || {
        let status: String = sqlx::query_scalar("SELECT status FROM algorithm_runs WHERE job_id = $1").bind(job).fetch_one(&db).await.unwrap();
        status == "running"
    })
    .await;
    workers.0[0].kill().unwrap(); // SIGKILL: no chance to release the lease
    workers.0[0].wait().unwrap();
    workers.0.push(worker(&url, &dir.path().join("w2"), 2));

    eventually("the other worker to complete the job", Duration::from_secs(60), async || {
        let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1").bind(job).fetch_one(&db).await.unwrap();
        status == "completed"
    })
    .await;
    let run = sqlx::query("SELECT status, attempts, algorithm_version FROM algorithm_runs WHERE job_id = $1").bind(job).fetch_one(&db).await.unwrap();
    assert_eq!((run.get::<String, _>("status"), run.get::<i64, _>("attempts"), run.get::<String, _>("algorithm_version")), ("completed".into(), 2, "0.1.0".into()));
    let completions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_events WHERE job_id = $1 AND message LIKE 'hostile_v1 % completed in %'").bind(job).fetch_one(&db).await.unwrap();
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
        let loaded = node.state.engine.registry().get("hostile_v1").map(|a| a.info.version.to_string());
        loaded.as_deref() == version
    };

    a.publish(common::wasm("hostile")).await;
    eventually("B to load 0.1.0", Duration::from_secs(10), async || serves(&b, Some("0.1.0"))).await;
    b.publish(common::wasm("hostile_next")).await;
    eventually("A to load 0.2.0", Duration::from_secs(10), async || serves(&a, Some("0.2.0"))).await;
    a.post("/api/v1/algorithms/hostile_v1/rollback", json!({})).await;
    eventually("B to roll back to 0.1.0", Duration::from_secs(10), async || serves(&b, Some("0.1.0"))).await;
    b.post("/api/v1/algorithms/hostile_v1/disable", json!({})).await;
    eventually("A to unload it", Duration::from_secs(10), async || serves(&a, None)).await;
    // What B says matches what A serves.
    let (_, seen) = b.call(reqwest::Method::GET, "/api/v1/algorithms/hostile_v1", PLATFORM, None).await;
    assert_eq!((seen["status"].as_str(), seen["active_version"].as_str()), (Some("disabled"), Some("0.1.0")));
    a.shutdown().await;
    b.shutdown().await;
}
