//! Prints a real webhook body (appointment_scheduling on the dental booking
//! call) for docs/webhooks.md: `cargo test --test api_webhook_example -- --nocapture`.
//! It also checks the documented fields are there, so the doc's example cannot drift silently.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use common::api::TestServer;
use common::receiver::Receiver;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_payload_fields() {
    let s = TestServer::start_with(|c| c.webhook_allowlist = "127.0.0.1".into()).await;
    let t = s.tenant("Acme").await;
    let receiver = Receiver::start().await;
    s.request(
        reqwest::Method::PUT,
        Some(&t.workspace_key),
        &format!("/api/v1/config/workspace/{}/webhook", t.workspace),
        Some(json!({"url": receiver.url})),
    )
    .await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plugins/fixtures/dental_booking.txt"
    ))
    .unwrap();
    s.ok(
        &t.workspace_key,
        "/api/v1/calls/transcript",
        json!({"transcript": text, "algorithm_ids": ["appointment_scheduling"], "source_call_id": "call-123", "recording_url": "https://recordings.example.com/call-123.mp3", "contacted_at": "2026-01-22T09:30:00Z"}),
        202,
    )
    .await;
    let got = receiver.wait_for(1).await;
    let body = got[0].json();
    println!("{}", serde_json::to_string_pretty(&body).unwrap());
    for field in [
        "algorithm_run_id",
        "algorithm_id",
        "algorithm_version",
        "job_id",
        "parent_job_id",
        "recording_url",
        "recording_duration",
        "contacted_date",
        "contacted_time",
        "answered_by",
        "insurance_type",
    ] {
        assert!(body["call"].get(field).is_some(), "call.{field} missing");
    }
    for field in ["name", "phone", "email", "date_of_birth", "additional_spellings"] {
        assert!(
            body["data"][0]["patient"].get(field).is_some(),
            "patient.{field} missing"
        );
    }
    assert_eq!(body["data"][0]["appointment"]["patient_type"], "New Patient");
}
