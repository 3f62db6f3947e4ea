//! The algorithm lifecycle over real HTTP: publishing while serving, refused
//! uploads, directory hot-load, versions and rollback, the golden gate,
//! scopes, per-workspace config, and restarts.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::api::TestServer;
use common::crafted::compile_bomb;
use common::wasm;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The same component with a custom section appended: other bytes, same ID and version.
fn with_custom_section(mut bytes: Vec<u8>) -> Vec<u8> {
    let name = b"gensail-test";
    let payload = b"rebuilt";
    bytes.push(0); // custom section
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    bytes
}

async fn assign(s: &TestServer, workspace: i64, algorithm_id: &str, config: Value) -> Value {
    s.ok(
        &s.platform,
        &format!("/api/v1/workspaces/{workspace}/algorithms"),
        json!({"algorithm_id": algorithm_id, "config": config}),
        201,
    )
    .await
}

async fn algorithm(s: &TestServer, token: &str, id: &str) -> Value {
    let r = s.get(token, &format!("/api/v1/algorithms/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// IDs a key's workspace can run, per `GET /algorithms`.
async fn runnable(s: &TestServer, token: &str) -> Vec<String> {
    let r = s.get(token, "/api/v1/algorithms").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["algorithm_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls until `check` holds (the watcher and the worker run on real time).
async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn metric(s: &TestServer, line_prefix: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

// Several runtime threads, as in the service: a CPU-bound run must not share
// the only thread with the HTTP server (see docs/decisions.md, Engine).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publishing_while_serving_lets_in_flight_runs_finish_on_their_version() {
    // Room for a run that lasts a few seconds.
    let s = TestServer::start_with(|c| {
        c.engine.default_limits.fuel = 200_000_000_000;
        c.engine.default_limits.timeout = Duration::from_secs(60);
    })
    .await;
    let t = s.tenant("acme").await;
    assign(
        &s,
        t.workspace,
        "hostile_v1",
        json!({"mode": "busy", "iterations": 5_000_000_000u64}),
    )
    .await;
    let slow = s
        .ingest(&t.workspace_key, t.workspace, "support_resolved.json", &["hostile_v1"])
        .await;
    eventually("the slow run to start", async || {
        s.runs(&s.platform, slow).await[0]["status"] == "running"
    })
    .await;

    // A client keeps reading while the new version is published.
    let reader = {
        let (base, token) = (s.base.clone(), s.platform.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            for _ in 0..40 {
                statuses.push(
                    client
                        .get(format!("{base}/api/v1/algorithms/hostile_v1"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap()
                        .status(),
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            statuses
        })
    };
    let next = wasm("hostile_next");
    let r = s.publish(&s.platform, next.clone(), "").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["activated"], true);
    assert_eq!(r.body["previous_version"], "0.1.0");
    assert_eq!(r.body["version"]["version"], "0.2.0");
    assert_eq!(r.body["version"]["component_sha256"], sha256(&next));
    assert_eq!(
        s.runs(&t.workspace_key, slow).await[0]["status"],
        "running",
        "the run must still be in flight after the switch"
    );

    assign(&s, t.workspace, "hostile_v1", json!({"mode": "version"})).await;
    let later = s.finished_job(&t, "support_resolved.json", &["hostile_v1"]).await;
    let run = &s.runs(&t.workspace_key, later).await[0];
    assert_eq!(
        (run["algorithm_version"].as_str(), run["result"]["version"].as_str()),
        (Some("0.2.0"), Some("0.2.0"))
    );
    assert_eq!(run["component_sha256"], sha256(&next));

    s.wait(&s.platform, slow).await;
    let run = &s.runs(&t.workspace_key, slow).await[0];
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["algorithm_version"], "0.1.0");
    assert_eq!(run["component_sha256"], sha256(&wasm("hostile")));
    let statuses = reader.await.unwrap();
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
}

#[tokio::test]
async fn bad_uploads_are_refused_precisely_and_change_nothing() {
    let s = TestServer::start_with(|c| c.max_component_bytes = 1 << 20).await;
    let t = s.tenant("acme").await;
    let before = s.get(&s.platform, "/api/v1/algorithms/hostile_v1/versions").await.body;
    let all_before = s.get(&s.platform, "/api/v1/algorithms").await.body;

    let r = s.publish(&s.platform, b"hello, not wasm".to_vec(), "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.detail().contains("not a WebAssembly component"), "{}", r.detail());

    let r = s.publish(&s.platform, b"\0asm\x01\0\0\0".to_vec(), "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.detail().contains("core WebAssembly module, not a component"),
        "{}",
        r.detail()
    );

    let r = s.publish(&s.platform, wasm("wit_v2"), "").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.detail().contains("gensail:algorithm@2.0.0") && r.detail().contains("gensail:algorithm@1.0.0"),
        "{}",
        r.detail()
    );

    let r = s.publish(&s.platform, vec![0u8; (1 << 20) + 10], "").await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.detail().contains("at most 1048576 bytes"), "{}", r.detail());

    let r = s
        .publish_multipart(&s.platform, wasm("hostile_next"), &json!({"activate": "yes"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.detail().contains("manifest"), "{}", r.detail());
    let r = s
        .publish_multipart(&s.platform, wasm("hostile_next"), &json!({"scope": "global"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.detail().contains("unknown field `scope`"), "{}", r.detail());

    let r = s
        .request(
            reqwest::Method::POST,
            Some(&s.platform),
            "/api/v1/algorithms",
            Some(json!({"component": "base64?"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);

    for key in [&t.workspace_key, &t.organization_key] {
        let r = s.publish(key, wasm("hostile_next"), "").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }

    // Same version, other bytes: a version never changes.
    let r = s.publish(&s.platform, with_custom_section(wasm("hostile")), "").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.detail()
            .contains("hostile_v1 0.1.0 is already published with a different component"),
        "{}",
        r.detail()
    );

    assert_eq!(
        s.get(&s.platform, "/api/v1/algorithms/hostile_v1/versions").await.body,
        before
    );
    assert_eq!(s.get(&s.platform, "/api/v1/algorithms").await.body, all_before);

    // Exactly the published component again: nothing to do.
    let r = s.publish(&s.platform, wasm("hostile"), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["already_published"], true);

    // A downgrade is refused, naming both versions and the way back.
    assert_eq!(
        s.publish(&s.platform, wasm("hostile_next"), "").await.status,
        StatusCode::CREATED
    );
    let versions = s.get(&s.platform, "/api/v1/algorithms/hostile_v1/versions").await.body;
    let r = s.publish(&s.platform, with_custom_section(wasm("hostile")), "").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = s.publish(&s.platform, wasm("hostile"), "").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "0.1.0 exactly as published is still a known version: {}",
        r.body
    );
    assert_eq!(
        algorithm(&s, &s.platform, "hostile_v1").await["active_version"],
        "0.2.0",
        "publishing a known older version does not activate it"
    );
    assert_eq!(
        s.get(&s.platform, "/api/v1/algorithms/hostile_v1/versions").await.body,
        versions
    );
}

#[tokio::test]
async fn a_version_older_than_the_newest_is_refused_as_a_downgrade() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(|c| c.plugins_dir = Some(dir.path().to_owned())).await;
    assert_eq!(
        s.publish(&s.platform, wasm("hostile_next"), "").await.status,
        StatusCode::CREATED
    );
    let r = s.publish(&s.platform, wasm("hostile"), "").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.detail().contains("already has version 0.2.0") && r.detail().contains("0.1.0 is not"),
        "{}",
        r.detail()
    );
    assert!(
        r.detail().contains("/api/v1/algorithms/hostile_v1/rollback"),
        "{}",
        r.detail()
    );
    let versions = s.get(&s.platform, "/api/v1/algorithms/hostile_v1/versions").await.body;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn the_plugins_directory_hot_loads_new_and_changed_files_and_refuses_broken_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(|c| c.plugins_dir = Some(dir.path().to_owned())).await;
    let t = s.tenant("acme").await;
    assert_eq!(
        s.get(&s.platform, "/api/v1/algorithms/hostile_v1").await.status,
        StatusCode::NOT_FOUND
    );
    let loaded = async |version: &str| {
        s.state
            .engine
            .registry()
            .get("hostile_v1")
            .is_some_and(|a| a.info.version.to_string() == version)
    };

    // New file.
    write_atomically(&dir.path().join("hostile.wasm"), &wasm("hostile"));
    eventually("hostile 0.1.0 to load", async || loaded("0.1.0").await).await;
    assert_eq!(
        algorithm(&s, &s.platform, "hostile_v1").await["versions"][0]["source"],
        "directory"
    );

    // Changed file, written in place (the watcher waits for the write to settle).
    std::fs::write(dir.path().join("hostile.wasm"), wasm("hostile_next")).unwrap();
    eventually("hostile 0.2.0 to replace 0.1.0", async || loaded("0.2.0").await).await;

    // A broken file and an incompatible one are refused; 0.2.0 keeps serving.
    write_atomically(&dir.path().join("broken.wasm"), b"\0asm garbage");
    write_atomically(&dir.path().join("future.wasm"), &wasm("wit_v2"));
    eventually("two refusals", async || {
        metric(&s, "gensail_plugin_files_total{outcome=\"refused\"}").await >= 2.0
    })
    .await;
    assert!(loaded("0.2.0").await);
    assert_eq!(
        algorithm(&s, &s.platform, "hostile_v1").await["active_version"],
        "0.2.0"
    );
    assert_eq!(
        s.get(&s.platform, "/api/v1/algorithms/wit_v2").await.status,
        StatusCode::NOT_FOUND
    );

    // A removed file unloads nothing: jobs keep running on it.
    std::fs::remove_file(dir.path().join("hostile.wasm")).unwrap();
    eventually("the removal to be seen", async || {
        metric(&s, "gensail_plugin_files_total{outcome=\"removed\"}").await >= 1.0
    })
    .await;
    let job = s.finished_job(&t, "support_resolved.json", &["hostile_v1"]).await;
    let run = &s.runs(&t.workspace_key, job).await[0];
    assert_eq!(
        (run["status"].as_str(), run["algorithm_version"].as_str()),
        (Some("completed"), Some("0.2.0"))
    );
}

#[tokio::test]
async fn rollback_activate_disable_and_enable() {
    let s = TestServer::start().await;
    let t = s.tenant("acme").await;
    assert_eq!(
        s.publish(&s.platform, wasm("hostile_next"), "").await.status,
        StatusCode::CREATED
    );
    let path = |action: &str| format!("/api/v1/algorithms/hostile_v1/{action}");

    let r = s.ok(&s.platform, &path("rollback"), json!({}), 200).await;
    assert_eq!(
        (
            r["active_version"].as_str(),
            r["loaded_version"].as_str(),
            r["previous_version"].as_str()
        ),
        (Some("0.1.0"), Some("0.1.0"), Some("0.2.0"))
    );
    let job = s.finished_job(&t, "support_resolved.json", &["hostile_v1"]).await;
    assert_eq!(s.runs(&t.workspace_key, job).await[0]["algorithm_version"], "0.1.0");

    // Rolling back again undoes the rollback.
    let r = s
        .request(reqwest::Method::POST, Some(&s.platform), &path("rollback"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "an empty body is fine: {}", r.body);
    assert_eq!(r.body["active_version"], "0.2.0");

    let r = s
        .post(&s.platform, &path("rollback"), json!({"version": "9.9.9"}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.detail(),
        "hostile_v1 has no version 9.9.9; published versions: 0.2.0, 0.1.0"
    );
    let r = s.post(&s.platform, &path("activate"), json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = s
        .ok(&s.platform, &path("activate"), json!({"version": "0.1.0"}), 200)
        .await;
    assert_eq!(r["active_version"], "0.1.0");

    let versions = s.get(&t.workspace_key, &path("versions")).await.body;
    let listed: Vec<(&str, bool)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_str().unwrap(), v["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(listed, vec![("0.2.0", false), ("0.1.0", true)]);
    assert_eq!(versions["versions"][1]["component_sha256"], sha256(&wasm("hostile")));

    // Only managers change it.
    for key in [&t.partner_key, &t.workspace_key] {
        assert_eq!(
            s.post(key, &path("rollback"), json!({})).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            s.post(key, &path("disable"), json!({})).await.status,
            StatusCode::FORBIDDEN
        );
    }

    // Disabled: not listed, not runnable, not accepted in requests.
    let r = s.ok(&s.platform, &path("disable"), json!({}), 200).await;
    assert_eq!(
        (r["status"].as_str(), r["loaded_version"].as_str()),
        (Some("disabled"), None)
    );
    assert!(!runnable(&s, &t.workspace_key).await.contains(&"hostile_v1".to_owned()));
    let r = s
        .post(
            &t.workspace_key,
            &format!("/api/v1/jobs/{job}/run-algorithms"),
            json!({"algorithm_ids": ["hostile_v1"], "force_rerun": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.detail(), "Algorithms not available: ['hostile_v1']");
    let r = s.post(&s.platform, &path("rollback"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "a rollback re-enables: {}", r.body);
    assert_eq!(
        s.ok(&s.platform, &path("disable"), json!({}), 200).await["status"],
        "disabled"
    );

    let r = s.ok(&s.platform, &path("enable"), json!({}), 200).await;
    assert_eq!(
        (r["status"].as_str(), r["loaded_version"].as_str()),
        (Some("active"), Some("0.2.0"))
    );
    assert!(runnable(&s, &t.workspace_key).await.contains(&"hostile_v1".to_owned()));
}

#[tokio::test]
async fn the_golden_gate_refuses_regressions_and_reports_differences() {
    let s = TestServer::start().await;
    let t = s.tenant("acme").await;
    assign(&s, t.workspace, "hostile_v1", json!({"mode": "new_versions_fail"})).await;
    let golden = s.finished_job(&t, "support_resolved.json", &["hostile_v1"]).await;

    // 0.2.0 fails where 0.1.0 succeeds: refused, nothing stored.
    let r = s
        .publish_multipart(&s.platform, wasm("hostile_next"), &json!({"golden_job_ids": [golden]}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.detail().contains(&format!(
            "hostile_v1 0.2.0 failed on golden jobs [{golden}] where the active version 0.1.0 succeeded"
        )),
        "{}",
        r.detail()
    );
    assert!(
        r.detail().contains("version 0.2.0 regressed"),
        "the plugin's own error is named: {}",
        r.detail()
    );
    let a = algorithm(&s, &s.platform, "hostile_v1").await;
    assert_eq!(
        (a["versions"].as_array().unwrap().len(), a["golden_job_ids"].clone()),
        (1, json!([]))
    );

    // Stored without activating, with the comparison in the answer.
    let r = s
        .publish_multipart(
            &s.platform,
            wasm("hostile_next"),
            &json!({"golden_job_ids": [golden], "activate": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["activated"], false);
    assert_eq!(r.body["golden"]["regressions"], json!([golden]));
    let a = algorithm(&s, &s.platform, "hostile_v1").await;
    assert_eq!(
        (a["active_version"].as_str(), a["golden_job_ids"].clone()),
        (Some("0.1.0"), json!([golden]))
    );

    // Compared again on the stored goldens once the config no longer trips it.
    assign(&s, t.workspace, "hostile_v1", json!({"mode": "version"})).await;
    let report = s
        .ok(
            &s.platform,
            "/api/v1/algorithms/hostile_v1/versions/0.2.0/compare",
            json!({}),
            200,
        )
        .await;
    assert_eq!(
        (report["active_version"].as_str(), report["candidate_version"].as_str()),
        (Some("0.1.0"), Some("0.2.0"))
    );
    assert_eq!(report["regressions"], json!([]));
    let job = &report["jobs"][0];
    assert_eq!(
        (job["job_id"].as_i64(), job["output_identical"].as_bool()),
        (Some(golden), Some(false))
    );
    assert_eq!(job["differences"], json!(["$.version"]));
    assert!(
        job["fuel_ratio"].as_f64().unwrap() > 0.0 && job["time_ratio"].as_f64().unwrap() > 0.0,
        "{job}"
    );

    // A key that cannot reach a job cannot compare on it.
    let other = s.tenant("other").await;
    let r = s
        .post(
            &other.workspace_key,
            "/api/v1/algorithms/hostile_v1/versions/0.2.0/compare",
            json!({"job_ids": [golden]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    let r = s
        .ok(
            &s.platform,
            "/api/v1/algorithms/hostile_v1/activate",
            json!({"version": "0.2.0"}),
            200,
        )
        .await;
    assert_eq!(r["active_version"], "0.2.0");
}

#[tokio::test]
async fn publishing_and_seeing_algorithms_follow_scope() {
    let s = TestServer::start_with(|c| c.plugins_dir = None).await;
    let (a, b) = (s.tenant("a").await, s.tenant("b").await);
    let a_org2 = s
        .ok(
            &s.platform,
            "/api/v1/organizations",
            json!({"partner_id": a.partner, "name": "a org 2"}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let a_ws2 = s.workspace(a_org2, "a ws 2").await;
    let a_ws2_key = s.key("workspace", a_ws2).await;

    // A partner key may lower limits, not raise them.
    let r = s
        .publish_multipart(
            &a.partner_key,
            wasm("hostile"),
            &json!({"limits": {"fuel": 1_000_000_000_000u64, "timeout_ms": 1000}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(
        r.detail().contains("fuel 1000000000000 (default 20000000000)") && !r.detail().contains("timeout_ms"),
        "{}",
        r.detail()
    );

    // A partner key names the ID up front; its rights on it are checked
    // before anything is compiled.
    let compiled = s.state.engine.compile_stats().compiled;
    let r = s.publish(&a.partner_key, wasm("hostile"), "").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.detail().contains("algorithm_id is required for partner keys"),
        "{}",
        r.detail()
    );
    let r = s
        .publish(&a.partner_key, compile_bomb(990_000), "algorithm_id=sentiment_v1")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "someone else's ID: {}", r.body);
    let r = s
        .publish(&a.partner_key, compile_bomb(990_000), "algorithm_id=bomb_v1")
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.detail().contains("990000 functions") && r.detail().contains("at most 50000"),
        "{}",
        r.detail()
    );
    assert_eq!(
        s.state.engine.compile_stats().compiled,
        compiled,
        "nothing was compiled"
    );
    let r = s
        .publish(&a.partner_key, wasm("hostile"), "algorithm_id=not_hostile_v1")
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.detail()
            .contains("algorithm_id is not_hostile_v1, but the component's metadata().id is hostile_v1"),
        "{}",
        r.detail()
    );

    // A partner key publishes only into its own partner.
    let r = s
        .publish(
            &a.partner_key,
            wasm("hostile"),
            "algorithm_id=hostile_v1&scope_type=global",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = s
        .publish(
            &a.partner_key,
            wasm("hostile"),
            &format!(
                "algorithm_id=hostile_v1&scope_type=organization&scope_id={}",
                b.organization
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = s
        .publish(
            &a.partner_key,
            wasm("hostile"),
            &format!(
                "algorithm_id=hostile_v1&scope_type=organization&scope_id={}",
                a.organization
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (
            r.body["algorithm"]["scope_type"].as_str(),
            r.body["algorithm"]["scope_id"].as_i64()
        ),
        (Some("organization"), Some(a.organization))
    );

    // Who sees it: exactly the keys reaching organization a.
    let hostile = "hostile_v1".to_owned();
    assert!(runnable(&s, &a.workspace_key).await.contains(&hostile));
    assert!(!runnable(&s, &a_ws2_key).await.contains(&hostile));
    assert!(!runnable(&s, &b.workspace_key).await.contains(&hostile));
    for (key, status) in [
        (&s.platform, StatusCode::OK),
        (&a.partner_key, StatusCode::OK),
        (&a.organization_key, StatusCode::OK),
        (&a.workspace_key, StatusCode::OK),
        (&a_ws2_key, StatusCode::NOT_FOUND),
        (&b.partner_key, StatusCode::NOT_FOUND),
        (&b.organization_key, StatusCode::NOT_FOUND),
        (&b.workspace_key, StatusCode::NOT_FOUND),
    ] {
        assert_eq!(s.get(key, "/api/v1/algorithms/hostile_v1").await.status, status);
    }

    // Versions of it: its partner and the platform; another partner may not, and a publish keeps the scope.
    assert_eq!(
        s.publish(&b.partner_key, wasm("hostile_next"), "algorithm_id=hostile_v1")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = s
        .publish(
            &a.partner_key,
            wasm("hostile_next"),
            "algorithm_id=hostile_v1&scope_type=global",
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.detail().contains("PATCH /api/v1/algorithms/hostile_v1"),
        "{}",
        r.detail()
    );
    assert_eq!(
        s.publish(&a.partner_key, wasm("hostile_next"), "algorithm_id=hostile_v1")
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        s.post(&b.partner_key, "/api/v1/algorithms/hostile_v1/rollback", json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.post(&a.organization_key, "/api/v1/algorithms/hostile_v1/rollback", json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.ok(&a.partner_key, "/api/v1/algorithms/hostile_v1/rollback", json!({}), 200)
            .await["active_version"],
        "0.1.0"
    );

    // It runs where it is visible and is refused elsewhere.
    let job = s.finished_job(&a, "support_resolved.json", &["hostile_v1"]).await;
    assert_eq!(s.runs(&a.workspace_key, job).await[0]["status"], "completed");
    let text = std::fs::read_to_string(format!(
        "{}/plugins/fixtures/support_resolved.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let body = json!({"workspace_id": b.workspace, "transcript": serde_json::from_str::<Value>(&text).unwrap(), "algorithm_ids": ["hostile_v1"]});
    let r = s.post(&b.workspace_key, "/api/v1/calls/transcript", body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // The platform sees everything, with status and scope.
    let all = s.get(&s.platform, "/api/v1/algorithms").await.body;
    let row = all["algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["algorithm_id"] == "hostile_v1")
        .unwrap()
        .clone();
    assert_eq!(
        (
            row["status"].as_str(),
            row["version"].as_str(),
            row["scope_type"].as_str()
        ),
        (Some("active"), Some("0.1.0"), Some("organization"))
    );
}

#[tokio::test]
async fn a_config_change_shows_in_the_next_runs_config_hash() {
    let s = TestServer::start().await;
    let t = s.tenant("acme").await;
    let first = assign(
        &s,
        t.workspace,
        "competitor_mentions_v1",
        json!({"competitors": ["Gong"]}),
    )
    .await;
    let job = s
        .finished_job(&t, "sales_competitors.txt", &["competitor_mentions_v1"])
        .await;
    let run = &s.runs(&t.workspace_key, job).await[0];
    assert_eq!(
        (run["config"].clone(), &run["config_sha256"]),
        (json!({"competitors": ["Gong"]}), &first["config_sha256"])
    );

    let second = assign(
        &s,
        t.workspace,
        "competitor_mentions_v1",
        json!({"competitors": ["Gong", "Chorus"]}),
    )
    .await;
    assert_ne!(second["config_sha256"], first["config_sha256"]);
    let listed = s
        .get(
            &t.workspace_key,
            &format!("/api/v1/workspaces/{}/algorithms", t.workspace),
        )
        .await
        .body;
    assert_eq!(listed["algorithms"][0]["config_sha256"], second["config_sha256"]);

    // Re-run with the updated config: the child's run carries the new hash.
    let r = s
        .ok(
            &t.workspace_key,
            &format!("/api/v1/jobs/{job}/run-algorithms"),
            json!({"algorithm_ids": ["competitor_mentions_v1"], "force_rerun": true}),
            202,
        )
        .await;
    let child = r["job_id"].as_i64().unwrap();
    s.wait(&t.workspace_key, child).await;
    let rerun = &s.runs(&t.workspace_key, child).await[0];
    assert_eq!(rerun["config_sha256"], second["config_sha256"]);
    assert_ne!(rerun["result"], run["result"], "Chorus is mentioned in the call too");

    // The plugin itself refuses a config it cannot use; the stored one stays.
    let r = s
        .post(
            &s.platform,
            &format!("/api/v1/workspaces/{}/algorithms", t.workspace),
            json!({"algorithm_id": "competitor_mentions_v1", "config": {"competitors": 5}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.detail()
            .starts_with("config is not valid for competitor_mentions_v1 1."),
        "{}",
        r.detail()
    );
    let listed = s
        .get(
            &t.workspace_key,
            &format!("/api/v1/workspaces/{}/algorithms", t.workspace),
        )
        .await
        .body;
    assert_eq!(listed["algorithms"][0]["config_sha256"], second["config_sha256"]);
}

#[tokio::test]
async fn a_restart_keeps_every_published_version_and_the_active_one() {
    let s = TestServer::start().await;
    let t = s.tenant("acme").await;
    assert_eq!(
        s.publish(&t.partner_key, wasm("hostile_next"), "algorithm_id=hostile_v1")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.publish(&s.platform, wasm("hostile_next"), "").await.status,
        StatusCode::CREATED
    );
    s.ok(&s.platform, "/api/v1/algorithms/hostile_v1/rollback", json!({}), 200)
        .await;
    let before = algorithm(&s, &s.platform, "hostile_v1").await;

    // Same plugins directory (hostile 0.1.0 is a known version: nothing changes)…
    let s = s.restart(|_| {}).await;
    assert_eq!(algorithm(&s, &s.platform, "hostile_v1").await, before);
    // …and none at all: the versions come from the database.
    let s = s.restart(|c| c.plugins_dir = None).await;
    let after = algorithm(&s, &s.platform, "hostile_v1").await;
    assert_eq!(after, before);
    assert_eq!(
        (after["active_version"].as_str(), after["loaded_version"].as_str()),
        (Some("0.1.0"), Some("0.1.0"))
    );
    assert_eq!(after["versions"].as_array().unwrap().len(), 2);
    let job = s.finished_job(&t, "support_resolved.json", &["hostile_v1"]).await;
    assert_eq!(s.runs(&t.workspace_key, job).await[0]["algorithm_version"], "0.1.0");
}
