//! Hostile guests through the API, on SQLite and (in CI's second pass)
//! PostgreSQL: what a guest writes is stored bounded and as valid text, its
//! job settles, and the server answers throughout.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use common::api::TestServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_logs_and_messages_are_stored_bounded_and_as_valid_text() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    for (mode, status) in [("log_bomb", "completed"), ("huge_error", "failed")] {
        let workspace = s.workspace(t.organization, mode).await;
        s.ok(
            &s.platform,
            &format!("/api/v1/workspaces/{workspace}/algorithms"),
            json!({"algorithm_id": "hostile_v1", "config": {"mode": mode}}),
            201,
        )
        .await;
        let job = s
            .ingest(&s.platform, workspace, "dental_booking.txt", &["hostile_v1"])
            .await;
        let settled = s.wait(&s.platform, job).await;
        assert_eq!(settled["status"], status, "{mode}: {settled}");
        let runs = s.runs(&s.platform, job).await;
        let stored = serde_json::to_string(&runs).unwrap();
        assert!(stored.len() < 100 << 10, "{mode}: {} bytes stored", stored.len());
        assert!(!stored.contains("\\u0000"), "{mode}: a NUL byte was stored");
        match mode {
            // The NUL byte PostgreSQL refused (and re-ran the job for, forever).
            "log_bomb" => assert!(runs[0]["logs"].as_str().unwrap().starts_with("error: nul\u{FFFD}byte")),
            _ => assert!(
                runs[0]["error"]["message"]
                    .as_str()
                    .unwrap()
                    .ends_with("more bytes cut]"),
                "{}",
                runs[0]["error"]["message"].as_str().unwrap().len()
            ),
        }
        let logs = s.get(&s.platform, &format!("/api/v1/jobs/{job}/logs")).await;
        assert!(
            logs.body.to_string().len() < 100 << 10,
            "{mode}: the job log is bounded"
        );
    }
}
