//! A real server on 127.0.0.1:0 with a real SQLite file, the real bundled
//! plugins plus the hostile test guest, and a manual clock; and a client.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use gensail::app::{ServeConfig, Server, build_state};
use gensail::clock::{ManualClock, SharedClock};
use gensail::state::AppState;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A response: status, JSON body, headers.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn detail(&self) -> &str {
        self.body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no detail in {} {}", self.status, self.body))
    }
}

/// The server under test.
pub struct TestServer {
    pub base: String,
    pub platform: String,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    pub data: Arc<tempfile::TempDir>,
    /// The PostgreSQL database of this server (None: SQLite in `data`).
    pub database_url: Option<String>,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub const PLATFORM_TOKEN: &str = "gs_test_platform_token_0123456789abcdef";

fn plugins_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("extra-plugins")
}

/// A directory with the hostile guest in it, for `--plugins-dir` (set up once per test binary).
fn hostile_plugins_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(copy_hostile).clone()
}

fn copy_hostile() -> PathBuf {
    let dir = plugins_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let src = PathBuf::from(env!("GENSAIL_PLUGIN_WASM_DIR")).join("hostile.wasm");
    let dst = dir.join("hostile.wasm");
    if std::fs::read(&dst).ok() != std::fs::read(&src).ok() {
        let tmp = dir.join(format!(".hostile-{}.wasm", std::process::id()));
        std::fs::copy(&src, &tmp).unwrap();
        std::fs::rename(&tmp, &dst).unwrap();
    }
    dir
}

/// The PostgreSQL server the suite runs against, when `GENSAIL_TEST_POSTGRES_URL`
/// names one (`.ci/run` starts it); otherwise every server uses SQLite.
pub fn postgres_url() -> Option<String> {
    std::env::var("GENSAIL_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A new, empty database on the test PostgreSQL server (one per test server,
/// so tests never see each other's rows), or None for SQLite.
pub async fn fresh_database() -> Option<String> {
    Some(super::nodes::create_database(&postgres_url()?).await)
}

impl TestServer {
    /// Every stored byte as the database would give it to someone reading its
    /// files: the SQLite file and WAL, or every PostgreSQL row as text. For
    /// "this secret is not stored in clear" checks.
    pub async fn stored_bytes(&self) -> Vec<u8> {
        use sqlx::{Connection, Row};
        let Some(url) = &self.database_url else {
            let mut bytes = std::fs::read(self.data.path().join("gensail.db")).unwrap();
            bytes.extend(std::fs::read(self.data.path().join("gensail.db-wal")).unwrap_or_default());
            return bytes;
        };
        let mut conn = sqlx::postgres::PgConnection::connect(url).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let mut bytes = Vec::new();
        for table in tables {
            for row in sqlx::query(&format!("SELECT t::text AS row FROM {table} t"))
                .fetch_all(&mut conn)
                .await
                .unwrap()
            {
                bytes.extend(row.get::<String, _>("row").into_bytes());
            }
        }
        bytes
    }

    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServeConfig)) -> Self {
        let data = Arc::new(tempfile::tempdir().unwrap());
        let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 1, 22, 12, 0, 0).unwrap());
        Self::launch(data, fresh_database().await, clock, configure).await
    }

    async fn launch(
        data: Arc<tempfile::TempDir>,
        database_url: Option<String>,
        clock: Arc<ManualClock>,
        configure: impl FnOnce(&mut ServeConfig),
    ) -> Self {
        // The server's warnings and errors (a 500's cause) appear in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("gensail=warn")
            .with_test_writer()
            .try_init();
        let mut config = ServeConfig::new(data.path().to_path_buf());
        config.database_url = database_url.clone();
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.engine.cache_dir = Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache"));
        // Compiles go through the bounded child process, as in the service.
        config.engine.compiler = Some(gensail_engine::CompilerProcess::new(
            env!("CARGO_BIN_EXE_gensail").into(),
        ));
        config.platform_token = Some(PLATFORM_TOKEN.into());
        config.plugins_dir = Some(hostile_plugins_dir());
        config.worker_config.poll_interval = Duration::from_millis(25);
        config.worker_config.shutdown_grace = Duration::from_secs(5);
        config.delivery.poll_interval = Duration::from_millis(25);
        configure(&mut config);
        let shared: SharedClock = clock.clone();
        let (state, _) = build_state(&config, shared).await.expect("server state");
        let server = Server::bind(state.clone(), &config).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            platform: PLATFORM_TOKEN.into(),
            clock,
            state,
            data,
            database_url,
            client: reqwest::Client::new(),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stops gracefully and starts again on the same data (a restart).
    pub async fn restart(mut self, configure: impl FnOnce(&mut ServeConfig)) -> Self {
        self.shutdown().await;
        Self::launch(
            self.data.clone(),
            self.database_url.clone(),
            self.clock.clone(),
            configure,
        )
        .await
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::send(req).await
    }

    /// A request with a raw JSON-typed body of any bytes, as a careless or hostile client sends it.
    pub async fn raw(&self, method: reqwest::Method, token: &str, path: &str, body: Vec<u8>) -> Reply {
        let req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        Self::send(req).await
    }

    async fn send(req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        Reply { status, body, headers }
    }

    /// `POST /api/v1/algorithms` with the component as `application/wasm`; `query` is the manifest ("" or "activate=false&…").
    pub async fn publish(&self, token: &str, component: Vec<u8>, query: &str) -> Reply {
        let req = self
            .client
            .post(format!("{}/api/v1/algorithms?{query}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/wasm")
            .body(component);
        Self::send(req).await
    }

    /// `POST /api/v1/algorithms` as multipart with a manifest part.
    pub async fn publish_multipart(&self, token: &str, component: Vec<u8>, manifest: &Value) -> Reply {
        let form = reqwest::multipart::Form::new()
            .part(
                "component",
                reqwest::multipart::Part::bytes(component).file_name("plugin.wasm"),
            )
            .part("manifest", reqwest::multipart::Part::text(manifest.to_string()));
        Self::send(
            self.client
                .post(format!("{}/api/v1/algorithms", self.base))
                .bearer_auth(token)
                .multipart(form),
        )
        .await
    }

    /// The runs of a job.
    pub async fn runs(&self, token: &str, job_id: i64) -> Vec<Value> {
        let r = self.get(token, &format!("/api/v1/jobs/{job_id}/runs")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["runs"].as_array().unwrap().clone()
    }

    pub async fn get(&self, token: &str, path: &str) -> Reply {
        self.request(reqwest::Method::GET, Some(token), path, None).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Reply {
        self.request(reqwest::Method::POST, Some(token), path, Some(body)).await
    }

    /// POST that must answer `status`; returns the body.
    pub async fn ok(&self, token: &str, path: &str, body: Value, status: u16) -> Value {
        let r = self.post(token, path, body).await;
        assert_eq!(r.status.as_u16(), status, "POST {path}: {}", r.body);
        r.body
    }

    /// A partner with an organization and a workspace, and a key for each.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let partner = self
            .ok(&self.platform, "/api/v1/partners", json!({"name": name}), 201)
            .await["id"]
            .as_i64()
            .unwrap();
        let organization = self
            .ok(
                &self.platform,
                "/api/v1/organizations",
                json!({"partner_id": partner, "name": format!("{name} org")}),
                201,
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let workspace = self.workspace(organization, &format!("{name} ws")).await;
        let key = |scope_type: &'static str, scope_id: i64| async move {
            self.ok(
                &self.platform,
                "/api/v1/keys",
                json!({"scope_type": scope_type, "scope_id": scope_id}),
                201,
            )
            .await["token"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        Tenant {
            partner,
            organization,
            workspace,
            partner_key: key("partner", partner).await,
            organization_key: key("organization", organization).await,
            workspace_key: key("workspace", workspace).await,
        }
    }

    pub async fn workspace(&self, organization: i64, name: &str) -> i64 {
        self.ok(
            &self.platform,
            "/api/v1/workspaces",
            json!({"organization_id": organization, "name": name}),
            201,
        )
        .await["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn key(&self, scope_type: &str, scope_id: i64) -> String {
        self.ok(
            &self.platform,
            "/api/v1/keys",
            json!({"scope_type": scope_type, "scope_id": scope_id}),
            201,
        )
        .await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Ingests a fixture call with these algorithms; returns the job ID.
    pub async fn ingest(&self, token: &str, workspace: i64, fixture: &str, algorithm_ids: &[&str]) -> i64 {
        let text =
            std::fs::read_to_string(format!("{}/plugins/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let transcript: Value = if fixture.ends_with(".json") {
            serde_json::from_str(&text).unwrap()
        } else {
            Value::String(text)
        };
        let body = json!({"workspace_id": workspace, "transcript": transcript, "algorithm_ids": algorithm_ids, "source_call_id": format!("call-{fixture}")});
        self.ok(token, "/api/v1/calls/transcript", body, 202).await["job_id"]
            .as_i64()
            .unwrap()
    }

    /// Polls a job until it reaches a final status (the worker runs on real time).
    /// Polls with the platform key (not rate limited, so a slow machine's many
    /// polls never spend the caller's budget), then reads the job once as `token`.
    pub async fn wait(&self, token: &str, job_id: i64) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.get(&self.platform, &format!("/api/v1/jobs/{job_id}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            if ["completed", "partial", "failed", "skipped"].contains(&r.body["status"].as_str().unwrap()) {
                let r = self.get(token, &format!("/api/v1/jobs/{job_id}")).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                return r.body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {job_id} did not finish: {}",
                r.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until the job has finished its analysis (publishing or final); returns the status.
    pub async fn wait_publishing(&self, token: &str, job_id: i64) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        assert_eq!(
            self.get(token, &format!("/api/v1/jobs/{job_id}")).await.status,
            StatusCode::OK
        );
        loop {
            let status = self.get(&self.platform, &format!("/api/v1/jobs/{job_id}")).await.body["status"]
                .as_str()
                .unwrap()
                .to_owned();
            if status != "analyzing" && status != "queued" {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "job {job_id} stayed {status}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Ingests and waits.
    pub async fn finished_job(&self, t: &Tenant, fixture: &str, algorithm_ids: &[&str]) -> i64 {
        let id = self.ingest(&t.workspace_key, t.workspace, fixture, algorithm_ids).await;
        self.wait(&t.workspace_key, id).await;
        id
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A partner → organization → workspace with a key of each scope.
pub struct Tenant {
    pub partner: i64,
    pub organization: i64,
    pub workspace: i64,
    pub partner_key: String,
    pub organization_key: String,
    pub workspace_key: String,
}
