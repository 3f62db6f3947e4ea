//! Host memory is bounded by the guests' limits, not by what they write: a
//! real `gensail serve` process (not the in-process test server, whose memory
//! every other test shares) runs hostile guests that try to make the host
//! copy hundreds of MB, and its peak RSS (`VmHWM`) stays under a bound
//! computed from its run slots and their memory limit.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PLATFORM: &str = "gs_serve_memory_platform_token_0123456789";
const SLOTS: u64 = 2;
const GUEST_MEMORY: u64 = 128 << 20;

/// The server process; killed when dropped, however the test ends.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A kibibyte figure from `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

async fn call(client: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client.request(method, url).bearer_auth(PLATFORM);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_cannot_make_the_server_hold_more_than_their_limits() {
    let data = tempfile::tempdir().unwrap();
    let plugins = data.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("GENSAIL_PLUGIN_WASM_DIR")).join("hostile.wasm"),
        plugins.join("hostile.wasm"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_gensail"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data.path())
            .arg("--plugins-dir")
            .arg(&plugins)
            .env("GENSAIL_PLATFORM_TOKEN", PLATFORM)
            .env("GENSAIL_MAX_CONCURRENT_RUNS", SLOTS.to_string())
            .env("GENSAIL_RUN_MEMORY_BYTES", GUEST_MEMORY.to_string())
            .env("GENSAIL_RUN_TIMEOUT_MS", "60000")
            .env("GENSAIL_WORKER_POLL_MS", "50")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = serve.0.id();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let algorithms = client
            .get(format!("{base}/algorithms/hostile_v1"))
            .bearer_auth(PLATFORM)
            .send()
            .await;
        if algorithms.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let post = |path: &str, body: Value| {
        let (client, url) = (client.clone(), format!("{base}{path}"));
        async move { call(&client, reqwest::Method::POST, &url, Some(body)).await }
    };
    let (_, partner) = post("/partners", json!({"name": "memory"})).await;
    let (_, organization) = post(
        "/organizations",
        json!({"partner_id": partner["id"], "name": "memory org"}),
    )
    .await;
    let transcript = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plugins/fixtures/dental_booking.txt"
    ))
    .unwrap();
    // One workspace per attack, each with the hostile guest configured for it.
    let modes = [
        "stderr_flood",
        "stderr_one_write",
        "log_bomb",
        "huge_error",
        "huge_output",
        "random_bomb",
        "memory",
    ];
    let mut workspaces = Vec::new();
    for mode in modes {
        let (_, workspace) = post(
            "/workspaces",
            json!({"organization_id": organization["id"], "name": mode}),
        )
        .await;
        let id = workspace["id"].as_i64().unwrap();
        let (status, body) = post(
            &format!("/workspaces/{id}/algorithms"),
            json!({"algorithm_id": "hostile_v1", "config": {"mode": mode}}),
        )
        .await;
        assert!(status < 300, "{mode}: {status} {body}");
        workspaces.push((mode, id));
    }
    // What the server holds before any run is the baseline.
    let baseline = status_bytes(pid, "VmRSS");

    let mut jobs = Vec::new();
    for _ in 0..2 {
        for (mode, workspace) in &workspaces {
            let (status, job) = post(
                "/calls/transcript",
                json!({"workspace_id": workspace, "transcript": transcript, "algorithm_ids": ["hostile_v1"]}),
            )
            .await;
            assert_eq!(status, 202, "{mode}: {job}");
            jobs.push((*mode, job["job_id"].as_i64().unwrap()));
        }
    }
    for (mode, job) in jobs {
        loop {
            let (_, body) = call(&client, reqwest::Method::GET, &format!("{base}/jobs/{job}"), None).await;
            if ["completed", "partial", "failed"].contains(&body["status"].as_str().unwrap_or("")) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "{mode}: job {job} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The server still answers, and stored nothing unbounded.
        let (_, runs) = call(&client, reqwest::Method::GET, &format!("{base}/jobs/{job}/runs"), None).await;
        let stored = runs.to_string().len();
        assert!(stored < 200 << 10, "{mode}: the runs of job {job} are {stored} bytes");
    }
    let peak = status_bytes(pid, "VmHWM");
    // Each slot may hold its guest's memory and one copy of what the guest
    // returns (never more than that memory); 256 MiB is room for the rest.
    let bound = baseline + SLOTS * 2 * GUEST_MEMORY + (256 << 20);
    assert!(
        peak <= bound,
        "peak RSS {} MiB over the bound {} MiB (baseline {} MiB)",
        peak >> 20,
        bound >> 20,
        baseline >> 20
    );
}
