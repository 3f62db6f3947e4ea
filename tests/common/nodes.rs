//! Servers of a scaled-out deployment, for the multi-node tests and the
//! scale-out benchmark: API servers in this process, `gensail worker`
//! processes from the real binary, one shared database.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use gensail::app::{ServeConfig, Server, build_state};
use gensail::clock::{SharedClock, SystemClock};
use gensail::state::AppState;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const PLATFORM: &str = "gs_multi_node_platform_token_0123456789";
pub const SECRET_KEY: &str = "4242424242424242424242424242424242424242424242424242424242424242";

/// A new, empty database on the PostgreSQL server at `admin_url`.
pub async fn create_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("gensail_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    let mut conn = sqlx::postgres::PgConnection::connect(admin_url)
        .await
        .expect("connect to the PostgreSQL server");
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create a database");
    let (base, _) = admin_url.rsplit_once('/').expect("a postgres URL ends with /DATABASE");
    format!("{base}/{name}")
}

/// An API server (no worker) in this process, on the real clock.
pub struct ApiNode {
    pub base: String,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl ApiNode {
    pub async fn start(database_url: &str, data: &Path) -> Self {
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
        Self {
            base,
            state,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.call(reqwest::Method::POST, path, PLATFORM, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    pub async fn publish(&self, component: Vec<u8>) -> Value {
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

    /// A partner → organization → workspace; returns the workspace ID.
    pub async fn workspace(&self) -> i64 {
        let partner = self.post("/api/v1/partners", json!({"name": "acme"})).await["id"]
            .as_i64()
            .unwrap();
        let organization = self
            .post(
                "/api/v1/organizations",
                json!({"partner_id": partner, "name": "acme org"}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        self.post(
            "/api/v1/workspaces",
            json!({"organization_id": organization, "name": "acme ws"}),
        )
        .await["id"]
            .as_i64()
            .unwrap()
    }

    /// Ingests the support call with these algorithms; returns the job ID.
    pub async fn ingest(&self, workspace: i64, algorithm_ids: &[&str], analytics_only: bool) -> i64 {
        let transcript = std::fs::read_to_string(format!(
            "{}/plugins/fixtures/support_resolved.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let body = json!({"workspace_id": workspace, "transcript": serde_json::from_str::<Value>(&transcript).unwrap(),
                          "algorithm_ids": algorithm_ids, "analytics_only": analytics_only});
        self.post("/api/v1/calls/transcript", body).await["job_id"]
            .as_i64()
            .unwrap()
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }
}

/// A `gensail worker` process that looks for work every 50 ms when idle.
pub fn worker(database_url: &str, data: &Path, lease_seconds: u64) -> Child {
    worker_polling(database_url, data, lease_seconds, 50)
}

/// A `gensail worker` process that looks for work every `poll_ms` when idle.
pub fn worker_polling(database_url: &str, data: &Path, lease_seconds: u64, poll_ms: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gensail"))
        .args(["worker", "--data-dir"])
        .arg(data)
        .env("DATABASE_URL", database_url)
        .env("GENSAIL_SECRET_KEY", SECRET_KEY)
        .env("GENSAIL_WEBHOOK_ALLOWLIST", "127.0.0.1")
        .env("GENSAIL_WORKER_LEASE_SECONDS", lease_seconds.to_string())
        .env("GENSAIL_WORKER_POLL_MS", poll_ms.to_string())
        .env("GENSAIL_ALGORITHM_SYNC_MS", "100")
        // Room for deliberately long runs on a busy machine.
        .env("GENSAIL_RUN_FUEL", "200000000000")
        .env("GENSAIL_RUN_TIMEOUT_MS", "120000")
        .stdout(Stdio::null())
        .spawn()
        .expect("start gensail worker")
}

/// Kills the workers when dropped, however the test ends.
pub struct Workers(pub Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A direct connection to the shared database, for what the API does not show.
pub async fn database(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap()
}
