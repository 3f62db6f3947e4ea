//! `POST /api/v1/jobs/{job_id}/run-algorithms`, every example and error row of
//! the spec and every decided detail of DESIGN.md, over real HTTP.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use common::api::TestServer;
use serde_json::{Value, json};

fn path(job: i64) -> String {
    format!("/api/v1/jobs/{job}/run-algorithms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_usage_creates_an_analyzing_child_that_runs_only_the_requested_algorithms() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let parent = s
        .finished_job(&t, "sales_competitors.txt", &["internal_metrics_v1"])
        .await;
    let before = s.get(&t.workspace_key, &format!("/api/v1/jobs/{parent}")).await.body;
    let before_runs = s
        .get(&t.workspace_key, &format!("/api/v1/jobs/{parent}/runs"))
        .await
        .body;

    // The spec's first example, verbatim body.
    let r = s
        .post(
            &t.workspace_key,
            &path(parent),
            json!({"algorithm_ids": ["sentiment_v1", "competitor_mentions_v1"], "analytics_only": true}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let child = r.body["job_id"].as_i64().unwrap();
    assert_eq!(
        r.body,
        json!({"job_id": child, "parent_job_id": parent, "algorithm_ids": ["sentiment_v1", "competitor_mentions_v1"], "status": "analyzing", "message": "On-demand analysis job created"})
    );
    // Visible at once, referencing the parent, sharing its transcript.
    let job = s.get(&t.workspace_key, &format!("/api/v1/jobs/{child}")).await.body;
    assert_eq!(job["parent_job_id"], parent);
    assert_eq!(job["kind"], "on_demand");
    assert_eq!(job["analytics_only"], true);
    assert_eq!(job["transcript"]["sha256"], before["transcript"]["sha256"]);

    // Poll for results, as the spec does.
    let done = s.wait(&t.workspace_key, child).await;
    assert_eq!(done["status"], "completed");
    let runs = s
        .get(&t.workspace_key, &format!("/api/v1/jobs/{child}/runs"))
        .await
        .body;
    let runs = runs["runs"].as_array().unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r["algorithm_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["sentiment_v1", "competitor_mentions_v1"]);
    assert!(runs.iter().all(|r| r["status"] == "completed" && r["job_id"] == child));
    let competitors = runs
        .iter()
        .find(|r| r["algorithm_id"] == "competitor_mentions_v1")
        .unwrap();
    assert_eq!(
        competitors["result"]["mentioned"],
        json!(["Gong", "CallRail", "Chorus"])
    );
    assert_eq!(competitors["algorithm_version"], "1.0.0");
    assert_eq!(competitors["component_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(competitors["config_sha256"].as_str().unwrap().len(), 64);

    // The original job remains unchanged (apart from knowing its child).
    let mut after = s.get(&t.workspace_key, &format!("/api/v1/jobs/{parent}")).await.body;
    assert_eq!(after["child_job_ids"], json!([child]));
    after["child_job_ids"] = before["child_job_ids"].clone();
    assert_eq!(after, before);
    assert_eq!(
        s.get(&t.workspace_key, &format!("/api/v1/jobs/{parent}/runs"))
            .await
            .body,
        before_runs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_only_defaults_to_true_and_false_is_kept() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let parent = s.finished_job(&t, "dental_booking.txt", &["internal_metrics_v1"]).await;
    let a = s
        .ok(
            &t.workspace_key,
            &path(parent),
            json!({"algorithm_ids": ["appointment_scheduling"]}),
            202,
        )
        .await;
    assert_eq!(
        s.get(&t.workspace_key, &format!("/api/v1/jobs/{}", a["job_id"]))
            .await
            .body["analytics_only"],
        true
    );
    let b = s
        .ok(
            &t.workspace_key,
            &path(parent),
            json!({"algorithm_ids": ["rise_dds_v5"], "analytics_only": false}),
            202,
        )
        .await;
    assert_eq!(
        s.get(&t.workspace_key, &format!("/api/v1/jobs/{}", b["job_id"]))
            .await
            .body["analytics_only"],
        false
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_all_some_child_failed_and_force_rerun() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    s.ok(
        &s.platform,
        &format!("/api/v1/workspaces/{}/algorithms", t.workspace),
        json!({"algorithm_id": "hostile_v1", "config": {"mode": "panic"}}),
        201,
    )
    .await;
    let parent = s
        .finished_job(&t, "dental_booking.txt", &["sentiment_v1", "hostile_v1"])
        .await;
    let runs = s
        .get(&t.workspace_key, &format!("/api/v1/jobs/{parent}/runs"))
        .await
        .body;
    let sentiment_run = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["algorithm_id"] == "sentiment_v1")
        .unwrap()["algorithm_run_id"]
        .clone();

    // Everything requested already ran: 200 with the existing runs and a hint.
    let r = s
        .post(
            &t.workspace_key,
            &path(parent),
            json!({"algorithm_ids": ["sentiment_v1"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({
            "message": "Algorithms already ran on this job",
            "existing_runs": [{"algorithm_run_id": sentiment_run, "algorithm_id": "sentiment_v1", "status": "completed", "job_id": parent, "algorithm_version": "1.0.0", "active_version": "1.0.0"}],
            "hint": "Use force_rerun=true to run again"
        })
    );

    // Some ran: the child runs the rest and lists the skipped ones.
    let r = s
        .post(
            &t.workspace_key,
            &path(parent),
            json!({"algorithm_ids": ["sentiment_v1", "qa_scoring_v1"]}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["algorithm_ids"], json!(["qa_scoring_v1"]));
    assert_eq!(r.body["existing_runs"][0]["algorithm_id"], "sentiment_v1");
    let child = r.body["job_id"].as_i64().unwrap();

    // A run on a child job counts too (pending, running or completed alike).
    let r = s
        .post(
            &t.workspace_key,
            &path(parent),
            json!({"algorithm_ids": ["qa_scoring_v1"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["existing_runs"][0]["job_id"], child);
    s.wait(&t.workspace_key, child).await;

    // A failed run does not count: hostile_v1 panicked, so it runs again.
    let r = s
        .post(
            &t.workspace_key,
            &path(parent),
            json!({"algorithm_ids": ["hostile_v1"]}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(r.body.get("existing_runs").is_none());

    // force_rerun bypasses the check and creates a new job.
    let r = s
        .post(
            &t.workspace_key,
            &path(parent),
            json!({"algorithm_ids": ["sentiment_v1"], "force_rerun": true}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["algorithm_ids"], json!(["sentiment_v1"]));
    assert_ne!(r.body["job_id"].as_i64(), Some(child));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_deduplicated_and_at_most_ten() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let parent = s.finished_job(&t, "dental_booking.txt", &["internal_metrics_v1"]).await;
    let r = s
        .ok(
            &t.workspace_key,
            &path(parent),
            json!({"algorithm_ids": ["rise_dds_v5", "sentiment_v1", "rise_dds_v5", "sentiment_v1"]}),
            202,
        )
        .await;
    assert_eq!(r["algorithm_ids"], json!(["rise_dds_v5", "sentiment_v1"]));

    let eleven: Vec<String> = (0..11).map(|i| format!("algo_{i}")).collect();
    let r = s
        .post(&t.workspace_key, &path(parent), json!({"algorithm_ids": eleven}))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.detail().contains("11 distinct"), "{}", r.detail());
    // Ten distinct (with duplicates) passes validation and reaches the availability check.
    let mut ten: Vec<String> = (0..10).map(|i| format!("algo_{i}")).collect();
    ten.push("algo_0".into());
    let r = s
        .post(&t.workspace_key, &path(parent), json!({"algorithm_ids": ten}))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail()
            .starts_with("Algorithms not available: ['algo_0', 'algo_1', "),
        "{}",
        r.detail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_422() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let parent = s.finished_job(&t, "dental_booking.txt", &["internal_metrics_v1"]).await;
    for (body, words) in [
        (json!({}), "algorithm_ids is required"),
        (json!({"algorithm_ids": "sentiment_v1"}), "list of strings"),
        (json!({"algorithm_ids": [1, 2]}), "list of strings"),
        (json!({"algorithm_ids": []}), "must not be empty"),
        (
            json!({"algorithm_ids": ["sentiment_v1"], "analytics_only": "yes"}),
            "analytics_only must be true or false",
        ),
        (
            json!({"algorithm_ids": ["sentiment_v1"], "force_rerun": 1}),
            "force_rerun must be true or false",
        ),
        (json!(["sentiment_v1"]), "JSON object"),
    ] {
        let r = s.post(&t.workspace_key, &path(parent), body.clone()).await;
        assert_eq!(r.status, 422, "{body}");
        assert!(r.detail().contains(words), "{body}: {}", r.detail());
    }
    let raw = reqwest::Client::new()
        .post(format!("{}{}", s.base, path(parent)))
        .bearer_auth(&t.workspace_key)
        .header("content-type", "application/json")
        .body("{\"algorithm_ids\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 422);
    let body: Value = raw.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().starts_with("Body is not valid JSON"),
        "{body}"
    );
    // Nothing was created by any of these.
    assert_eq!(
        s.get(&t.workspace_key, &format!("/api/v1/jobs/{parent}")).await.body["child_job_ids"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_rows_of_the_spec_in_order() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let other = s.tenant("Other").await;
    let parent = s.finished_job(&t, "dental_booking.txt", &["internal_metrics_v1"]).await;
    let body = json!({"algorithm_ids": ["sentiment_v1"]});

    // Job must exist: 404. Auth must have access: 403.
    let r = s.post(&t.workspace_key, &path(999_999), body.clone()).await;
    assert_eq!((r.status.as_u16(), r.detail()), (404, "Job not found"));
    let r = s.post(&other.workspace_key, &path(parent), body.clone()).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.detail(), "Not authorized to access this job");
    // The body is checked before the job: a bad body on a missing job is 422.
    assert_eq!(s.post(&t.workspace_key, &path(999_999), json!({})).await.status, 422);

    // Job must be completed/partial/failed.
    let audio = s
        .ok(&t.workspace_key, "/api/v1/calls/audio", json!({"recording_url": "https://calls.example.com/a.mp3", "duration_seconds": 95.0, "algorithm_ids": ["sentiment_v1"]}), 202)
        .await["job_id"]
        .as_i64()
        .unwrap();
    let r = s.post(&t.workspace_key, &path(audio), body.clone()).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (400, "Job is still transcribing. Wait for completion.")
    );

    // Transcript must exist and be non-empty.
    let blank = json!({"segments": [{"speaker": "Agent", "start_ms": 0, "end_ms": 45000, "text": "   "}, {"speaker": "Caller", "start_ms": 45000, "end_ms": 90000, "text": ""}]});
    let empty_job = s
        .ok(
            &t.workspace_key,
            "/api/v1/calls/transcript",
            json!({"transcript": blank, "algorithm_ids": ["internal_metrics_v1"]}),
            202,
        )
        .await["job_id"]
        .as_i64()
        .unwrap();
    s.wait(&t.workspace_key, empty_job).await;
    let r = s.post(&t.workspace_key, &path(empty_job), body.clone()).await;
    assert_eq!((r.status.as_u16(), r.detail()), (400, "Job has no usable transcript"));

    // Algorithms must be available, listed in request order.
    let r = s
        .post(
            &t.workspace_key,
            &path(parent),
            json!({"algorithm_ids": ["unknown_algo"]}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (400, "Algorithms not available: ['unknown_algo']")
    );
    let r = s
        .post(
            &t.workspace_key,
            &path(parent),
            json!({"algorithm_ids": ["zeta_v9", "sentiment_v1", "alpha_v1"]}),
        )
        .await;
    assert_eq!(r.detail(), "Algorithms not available: ['zeta_v9', 'alpha_v1']");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_and_failed_jobs_can_be_rerun_on() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    s.ok(
        &s.platform,
        &format!("/api/v1/workspaces/{}/algorithms", t.workspace),
        json!({"algorithm_id": "hostile_v1", "config": {"mode": "loop"}}),
        201,
    )
    .await;
    let partial = s
        .ingest(
            &t.workspace_key,
            t.workspace,
            "dental_booking.txt",
            &["sentiment_v1", "hostile_v1"],
        )
        .await;
    let failed = s
        .ingest(&t.workspace_key, t.workspace, "dental_cancel.txt", &["hostile_v1"])
        .await;
    assert_eq!(s.wait(&t.workspace_key, partial).await["status"], "partial");
    let failed_job = s.wait(&t.workspace_key, failed).await;
    assert_eq!(failed_job["status"], "failed");
    assert_eq!(failed_job["error"], "every algorithm run failed");
    let runs = s
        .get(&t.workspace_key, &format!("/api/v1/jobs/{failed}/runs"))
        .await
        .body;
    let error = &runs["runs"][0]["error"];
    assert!(
        error["kind"] == "fuel_exhausted" || error["kind"] == "timeout",
        "{error}"
    );
    for job in [partial, failed] {
        assert_eq!(
            s.post(&t.workspace_key, &path(job), json!({"algorithm_ids": ["rise_dds_v5"]}))
                .await
                .status,
            202
        );
    }
    // The job log says what happened.
    let logs = s
        .get(&t.workspace_key, &format!("/api/v1/jobs/{failed}/logs"))
        .await
        .body;
    let messages: Vec<&str> = logs["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("hostile_v1 0.1.0 failed: ")),
        "{messages:?}"
    );
    assert!(messages.iter().any(|m| m.starts_with("Child job ")), "{messages:?}");
}
