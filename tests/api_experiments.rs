//! Experiments and backfills over real HTTP: summaries checked against
//! outputs computed directly by the engine, memoized runs, cancel, a
//! restart with a dead worker's calls, backfills run twice, scope rules, the
//! CSV export read back, and the progress stream.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::api::{Tenant, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The dental fixtures: calls rise_dds_v4 and v5 both classify.
const DENTAL: &[&str] = &[
    "dental_billing.txt",
    "dental_booking.txt",
    "dental_cancel.txt",
    "dental_cancel_then_reschedule.txt",
    "dental_emergency_booked.txt",
    "dental_existing_checkup.txt",
    "dental_insurance_question.txt",
    "dental_missed_opportunity.txt",
    "dental_reschedule.txt",
];

/// Polls an experiment or a backfill (with the platform key) until it ends.
async fn wait_batch(s: &TestServer, path: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let r = s.get(&s.platform, path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if ["completed", "cancelled", "failed"].contains(&r.body["status"].as_str().unwrap()) {
            return r.body;
        }
        assert!(std::time::Instant::now() < deadline, "{path} did not end: {}", r.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ingests each fixture with `algorithm_ids` and waits for all of them.
async fn calls(s: &TestServer, t: &Tenant, fixtures: &[&str], algorithm_ids: &[&str]) -> Vec<i64> {
    let mut ids = Vec::new();
    for f in fixtures {
        ids.push(s.ingest(&s.platform, t.workspace, f, algorithm_ids).await);
    }
    for id in &ids {
        s.wait(&s.platform, *id).await;
    }
    ids
}

async fn all_results(s: &TestServer, token: &str, experiment: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = s
            .get(
                token,
                &format!("/api/v1/experiments/{experiment}/results?limit=4{cursor}"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        out.extend(r.body["results"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

async fn text(s: &TestServer, token: &str, path: &str) -> (StatusCode, String) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_across_two_ids_matches_outputs_computed_directly() {
    let s = TestServer::start().await;
    let t = s.tenant("Smile").await;
    let jobs = calls(&s, &t, DENTAL, &["sentiment_v1"]).await;
    let listed_before = s.get(&s.platform, "/api/v1/jobs?limit=500").await.body["jobs"]
        .as_array()
        .unwrap()
        .len();

    let r = s
        .post(
            &t.workspace_key,
            "/api/v1/experiments",
            json!({"name": "v4 vs v5", "baseline": "rise_dds_v4", "candidate": "rise_dds_v5",
                   "jobs": {"status": ["completed", "partial"], "since": "30d", "limit": 10000},
                   "compare": ["/outcome"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["status"], "queued");
    assert_eq!(r.body["total"], DENTAL.len());
    let id = r.body["experiment_id"].as_i64().unwrap();
    let done = wait_batch(&s, &format!("/api/v1/experiments/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!((done["done"].as_i64(), done["progress"].as_f64()), (Some(9), Some(1.0)));
    for side in ["baseline", "candidate"] {
        assert!(done[side]["component_sha256"].as_str().unwrap().len() == 64, "{done}");
        assert!(done[side]["config_sha256"].as_str().unwrap().len() == 64);
        assert!(done[side]["version"].is_string());
    }

    // The same runs made directly by the engine, on the stored transcripts.
    let engine = common::engine();
    let (v4, v5) = (common::wasm("rise_dds_v4"), common::wasm("rise_dds_v5"));
    let v4 = engine.load("rise_dds_v4", &v4, Default::default()).await.unwrap();
    let v5 = engine.load("rise_dds_v5", &v5, Default::default()).await.unwrap();
    let mut confusion: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut agree = 0;
    let results = all_results(&s, &t.workspace_key, id).await;
    assert_eq!(results.len(), DENTAL.len());
    for (job, fixture) in jobs.iter().zip(DENTAL) {
        let transcript = common::fixture(fixture);
        let b = engine.run_loaded(&v4, &transcript, "{}").await.output.unwrap();
        let c = engine.run_loaded(&v5, &transcript, "{}").await.output.unwrap();
        let row = results.iter().find(|r| r["job_id"] == *job).unwrap();
        assert_eq!(row["baseline"]["output"], b, "{fixture}");
        assert_eq!(row["candidate"]["output"], c, "{fixture}");
        assert_eq!(row["source_call_id"], format!("call-{fixture}"));
        let same = b["outcome"] == c["outcome"];
        agree += i64::from(same);
        let expected_paths: Vec<&str> = if same { vec![] } else { vec!["/outcome"] };
        assert_eq!(row["differing_paths"], json!(expected_paths), "{fixture}");
        *confusion
            .entry(b["outcome"].as_str().unwrap().to_owned())
            .or_default()
            .entry(c["outcome"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let summary = &done["summary"];
    assert_eq!(summary["compared"], 9);
    assert_eq!(summary["agree"], agree);
    assert_eq!(summary["paths"]["/outcome"]["differ"], 9 - agree);
    assert_eq!(summary["paths"]["/outcome"]["confusion_matrix"], json!(confusion));
    assert!(summary["cost"]["fuel_ratio"].as_f64().unwrap() > 0.0, "{summary}");

    // Only the differing calls; the CSV export read back gives the same rows.
    let differ = s
        .get(
            &t.workspace_key,
            &format!("/api/v1/experiments/{id}/results?only=differ"),
        )
        .await
        .body;
    assert_eq!(differ["results"].as_array().unwrap().len() as i64, 9 - agree);
    let (status, csv) = text(
        &s,
        &t.workspace_key,
        &format!("/api/v1/experiments/{id}/results?format=csv"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "job_id",
            "source_call_id",
            "differing_paths",
            "baseline_output",
            "candidate_output",
            "baseline_error",
            "candidate_error"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 9);
    for row in &rows {
        let job: i64 = row[0].parse().unwrap();
        let json_row = results.iter().find(|r| r["job_id"] == job).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&row[3]).unwrap(),
            json_row["baseline"]["output"]
        );
        assert_eq!(
            serde_json::from_str::<Value>(&row[4]).unwrap(),
            json_row["candidate"]["output"]
        );
        assert_eq!(&row[5], "");
    }
    let (_, jsonl) = text(
        &s,
        &t.workspace_key,
        &format!("/api/v1/experiments/{id}/results?format=jsonl"),
    )
    .await;
    assert_eq!(jsonl.lines().count(), 9);

    // Experiments create no jobs, and their runs never count as "already ran".
    let listed_after = s.get(&s.platform, "/api/v1/jobs?limit=500").await.body["jobs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(listed_before, listed_after);
    let r = s
        .post(
            &t.workspace_key,
            &format!("/api/v1/jobs/{}/run-algorithms", jobs[0]),
            json!({"algorithm_ids": ["rise_dds_v5"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    // Listed, newest first.
    let page = s.get(&t.workspace_key, "/api/v1/experiments").await.body;
    assert_eq!(page["experiments"][0]["experiment_id"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_versions_of_one_id_side_by_side_and_a_second_run_is_memoized() {
    let s = TestServer::start().await;
    let t = s.tenant("Versions").await;
    let fixtures = ["support_resolved.json", "sales_competitors.txt", "angry_support.txt"];
    let jobs = calls(&s, &t, &fixtures, &["internal_metrics_v1"]).await;
    let r = s.publish(&s.platform, common::wasm("hostile_next"), "").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let body = json!({"baseline": "hostile_v1@0.1.0", "candidate": "hostile_v1", "workspace_id": t.workspace,
                      "jobs": {"job_ids": jobs}, "compare": ["/version", "/segments"],
                      "config": {"baseline": {"mode": "version"}, "candidate": {"mode": "version"}}});
    let first = s
        .ok(&t.organization_key, "/api/v1/experiments", body.clone(), 202)
        .await;
    assert_eq!(
        (
            first["baseline"]["version"].as_str(),
            first["candidate"]["version"].as_str()
        ),
        (Some("0.1.0"), Some("0.2.0"))
    );
    let first = wait_batch(&s, &format!("/api/v1/experiments/{}", first["experiment_id"])).await;
    assert_eq!(first["status"], "completed", "{first}");
    assert_eq!(first["memoized"], 0);
    let paths = &first["summary"]["paths"];
    assert_eq!(paths["/version"]["differ"], 3);
    assert_eq!(paths["/version"]["confusion_matrix"], json!({"0.1.0": {"0.2.0": 3}}));
    assert_eq!(paths["/segments"]["differ"], 0);
    assert_eq!(paths["/segments"]["mean_difference"], 0.0);
    assert_eq!(first["summary"]["agree"], 0);

    // The same experiment again: every run is reused, none is made.
    let second = s.ok(&t.organization_key, "/api/v1/experiments", body, 202).await;
    let second = wait_batch(&s, &format!("/api/v1/experiments/{}", second["experiment_id"])).await;
    assert_eq!(second["memoized"], 6, "{second}");
    assert_eq!(second["summary"]["paths"], first["summary"]["paths"]);
    let results = all_results(&s, &t.organization_key, second["experiment_id"].as_i64().unwrap()).await;
    assert!(
        results
            .iter()
            .all(|r| r["baseline"]["memoized"] == true && r["candidate"]["memoized"] == true)
    );

    // A production run of the same component, config and transcript is reused too.
    let r = s
        .post(
            &t.workspace_key,
            "/api/v1/experiments",
            json!({"baseline": "internal_metrics_v1", "candidate": "internal_metrics_v1", "jobs": {"job_ids": jobs}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let third = wait_batch(&s, &format!("/api/v1/experiments/{}", r.body["experiment_id"])).await;
    assert_eq!(third["memoized"], 6, "{third}");
    assert_eq!(third["summary"]["agreement_rate"], 1.0);
    let results = all_results(&s, &t.workspace_key, third["experiment_id"].as_i64().unwrap()).await;
    assert!(
        results.iter().all(|r| r["baseline"]["run_source"] == "production"),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_an_experiment_and_a_restart_resumes_a_dead_workers_calls_once() {
    let s = TestServer::start().await;
    let t = s.tenant("Resume").await;
    let jobs = calls(&s, &t, &DENTAL[..6], &["sentiment_v1"]).await;
    // No worker: the experiments stay as created.
    let mut s = s.restart(|c| c.worker = false).await;
    let body = json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "jobs": {"job_ids": jobs}});
    let cancelled = s.ok(&t.workspace_key, "/api/v1/experiments", body.clone(), 202).await["experiment_id"]
        .as_i64()
        .unwrap();
    let r = s
        .post(
            &t.workspace_key,
            &format!("/api/v1/experiments/{cancelled}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{}",
        r.body
    );
    let r = s
        .post(
            &t.workspace_key,
            &format!("/api/v1/experiments/{cancelled}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // A backfill cancels the same way.
    let backfill = s
        .ok(
            &t.workspace_key,
            "/api/v1/backfills",
            json!({"algorithm_ids": ["sentiment_v1"], "jobs": {"job_ids": jobs}}),
            202,
        )
        .await["backfill_id"]
        .as_i64()
        .unwrap();
    let r = s
        .post(
            &t.workspace_key,
            &format!("/api/v1/backfills/{backfill}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{}",
        r.body
    );
    let r = s
        .post(
            &t.workspace_key,
            &format!("/api/v1/backfills/{backfill}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    let id = s.ok(&t.workspace_key, "/api/v1/experiments", body, 202).await["experiment_id"]
        .as_i64()
        .unwrap();
    // A worker takes a chunk and dies holding it.
    let lease = gensail::clock::format(s.clock.now_plus(30));
    let held = s
        .state
        .store
        .claim_experiment_items("dead-worker", &lease, 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.items.len(), 4);
    s.shutdown().await;
    let s = s.restart(|_| {}).await;
    // The four calls wait for the dead worker's lease; the other two run.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while s.get(&s.platform, &format!("/api/v1/experiments/{id}")).await.body["done"] != 2 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.clock.advance(chrono::Duration::seconds(31));
    s.state.wake_worker();
    let done = wait_batch(&s, &format!("/api/v1/experiments/{id}")).await;
    assert_eq!(
        (done["status"].as_str(), done["done"].as_i64(), done["total"].as_i64()),
        (Some("completed"), Some(6), Some(6)),
        "{done}"
    );
    assert_eq!(all_results(&s, &t.workspace_key, id).await.len(), 6);
    // The cancelled experiment was never taken up again.
    let cancelled = s
        .get(&t.workspace_key, &format!("/api/v1/experiments/{cancelled}"))
        .await
        .body;
    assert_eq!(
        (cancelled["status"].as_str(), cancelled["done"].as_i64()),
        (Some("cancelled"), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_creates_child_jobs_once_and_a_second_creates_none() {
    let s = TestServer::start().await;
    let t = s.tenant("Backfill").await;
    let jobs = calls(&s, &t, &DENTAL[..4], &["internal_metrics_v1"]).await;
    // One of the calls already has sentiment: it is skipped, as run-algorithms would.
    let r = s
        .post(
            &t.workspace_key,
            &format!("/api/v1/jobs/{}/run-algorithms", jobs[0]),
            json!({"algorithm_ids": ["sentiment_v1"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    s.wait(&s.platform, r.body["job_id"].as_i64().unwrap()).await;
    // A call still waiting for its transcript is refused with run-algorithms' reason.
    let waiting = s
        .ok(&t.workspace_key, "/api/v1/calls/audio", json!({"workspace_id": t.workspace, "recording_url": "https://example.com/a.mp3", "algorithm_ids": ["sentiment_v1"]}), 202)
        .await["job_id"]
        .as_i64()
        .unwrap();

    let body = json!({"algorithm_ids": ["sentiment_v1", "competitor_mentions_v1"], "jobs": {"since": "1d"}});
    let r = s.post(&t.workspace_key, "/api/v1/backfills", body.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["total"], 5);
    let id = r.body["backfill_id"].as_i64().unwrap();
    let done = wait_batch(&s, &format!("/api/v1/backfills/{id}")).await;
    assert_eq!(
        (
            done["created"].as_i64(),
            done["skipped_existing"].as_i64(),
            done["skipped_invalid"].as_i64(),
            done["completed"].as_i64()
        ),
        (Some(4), Some(0), Some(1), Some(4)),
        "{done}"
    );
    let calls = s
        .get(&t.workspace_key, &format!("/api/v1/backfills/{id}/jobs"))
        .await
        .body;
    let calls = calls["jobs"].as_array().unwrap();
    let refused = calls.iter().find(|c| c["job_id"] == waiting).unwrap();
    assert_eq!(refused["outcome"], "skipped_invalid");
    assert!(
        refused["reason"].as_str().unwrap().starts_with("Job is still"),
        "{refused}"
    );
    // The first call's child runs only what had not run: competitor mentions.
    let first = calls.iter().find(|c| c["job_id"] == jobs[0]).unwrap();
    let child = s
        .get(&t.workspace_key, &format!("/api/v1/jobs/{}", first["child_job_id"]))
        .await
        .body;
    assert_eq!(
        child["requested_algorithm_ids"],
        json!(["competitor_mentions_v1"]),
        "{child}"
    );
    assert_eq!(child["parent_job_id"], jobs[0]);

    // Run again: everything already ran.
    let again = s.ok(&t.workspace_key, "/api/v1/backfills", body, 202).await;
    let again = wait_batch(&s, &format!("/api/v1/backfills/{}", again["backfill_id"])).await;
    assert_eq!(
        (again["created"].as_i64(), again["skipped_existing"].as_i64()),
        (Some(0), Some(4)),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_refuse_bad_fields_and_stay_in_their_scope() {
    let s = TestServer::start_with(|c| c.max_batch_calls = 2).await;
    let t = s.tenant("Mine").await;
    let other = s.tenant("Theirs").await;
    let jobs = calls(&s, &t, &DENTAL[..3], &["sentiment_v1"]).await;
    let post = async |token: &str, body: Value| s.post(token, "/api/v1/experiments", body).await;

    let r = post(
        &t.workspace_key,
        json!({"baseline": "nope_v1", "candidate": "rise_dds_v5"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.detail().starts_with("baseline: algorithm \"nope_v1\""),
        "{}",
        r.detail()
    );
    let r = post(
        &t.workspace_key,
        json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5@9.9.9"}),
    )
    .await;
    assert!(
        r.detail()
            .starts_with("candidate: rise_dds_v5 has no published version 9.9.9"),
        "{}",
        r.detail()
    );
    let r = post(
        &t.workspace_key,
        json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5"}),
    )
    .await;
    assert!(r.detail().contains("more than 2 calls"), "{}", r.detail());
    let r = post(
        &t.workspace_key,
        json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "jobs": {"limit": 3}}),
    )
    .await;
    assert!(
        r.detail().starts_with("jobs.limit must be between 1 and 2"),
        "{}",
        r.detail()
    );
    let r = post(
        &t.workspace_key,
        json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "jobs": {"status": ["failed"]}}),
    )
    .await;
    assert!(
        r.detail().starts_with("jobs: the selection has no calls"),
        "{}",
        r.detail()
    );
    let r = post(
        &t.workspace_key,
        json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "jobs": {"status": ["done"]}}),
    )
    .await;
    assert!(
        r.detail().starts_with("jobs.status \"done\" is not a job status"),
        "{}",
        r.detail()
    );
    let r = post(
        &t.workspace_key,
        json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "jobs": {"job_ids": [jobs[0], 999999]}}),
    )
    .await;
    assert!(r.detail().starts_with("jobs.job_ids: [999999]"), "{}", r.detail());
    let r = post(
        &t.workspace_key,
        json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "compare": ["outcome"]}),
    )
    .await;
    assert!(
        r.detail().starts_with("compare: \"outcome\" is not a JSON pointer"),
        "{}",
        r.detail()
    );
    let r = post(
        &t.workspace_key,
        json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "colour": "red"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.detail().contains("colour"), "{}", r.detail());
    // Partner and organization keys must name the workspace, and only their own.
    let r = post(
        &t.partner_key,
        json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "jobs": {"limit": 2}}),
    )
    .await;
    assert!(r.detail().starts_with("workspace_id is required"), "{}", r.detail());
    let r = post(
        &other.partner_key,
        json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "workspace_id": t.workspace}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Another workspace's calls cannot be named.
    let r = post(
        &other.workspace_key,
        json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "jobs": {"job_ids": [jobs[0]]}}),
    )
    .await;
    assert!(r.detail().starts_with("jobs.job_ids:"), "{}", r.detail());
    // Nothing was created by any of these.
    assert_eq!(
        s.get(&s.platform, "/api/v1/experiments").await.body["experiments"],
        json!([])
    );

    let r = post(&t.partner_key, json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "workspace_id": t.workspace, "jobs": {"limit": 2}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["experiment_id"].as_i64().unwrap();
    let b = s
        .ok(
            &t.workspace_key,
            "/api/v1/backfills",
            json!({"algorithm_ids": ["sentiment_v1"], "jobs": {"limit": 1}}),
            202,
        )
        .await["backfill_id"]
        .as_i64()
        .unwrap();
    for path in [
        format!("/api/v1/experiments/{id}"),
        format!("/api/v1/experiments/{id}/results"),
        format!("/api/v1/experiments/{id}/events"),
        format!("/api/v1/backfills/{b}"),
        format!("/api/v1/backfills/{b}/jobs"),
        format!("/api/v1/backfills/{b}/events"),
    ] {
        for key in [&other.workspace_key, &other.organization_key, &other.partner_key] {
            let (status, _) = text(&s, key, &path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
        for key in [&t.workspace_key, &t.organization_key, &t.partner_key] {
            let (status, _) = text(&s, key, &path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
        }
    }
    for path in [
        format!("/api/v1/experiments/{id}/cancel"),
        format!("/api/v1/backfills/{b}/cancel"),
    ] {
        assert_eq!(
            s.post(&other.workspace_key, &path, json!({})).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        s.get(&other.partner_key, "/api/v1/experiments").await.body["experiments"],
        json!([])
    );
    assert_eq!(
        s.get(&other.partner_key, "/api/v1/backfills").await.body["backfills"],
        json!([])
    );
    let r = s.get(&t.workspace_key, "/api/v1/experiments/424242").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_streams_as_server_sent_events_until_done() {
    let s = TestServer::start().await;
    let t = s.tenant("Stream").await;
    let jobs = calls(&s, &t, &DENTAL[..3], &["sentiment_v1"]).await;
    let id = s
        .ok(
            &t.workspace_key,
            "/api/v1/experiments",
            json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "jobs": {"job_ids": jobs}}),
            202,
        )
        .await["experiment_id"]
        .as_i64()
        .unwrap();
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/experiments/{id}/events", s.base))
        .bearer_auth(&t.workspace_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    // The stream ends by itself after its `done` event.
    let body = tokio::time::timeout(Duration::from_secs(60), response.text())
        .await
        .unwrap()
        .unwrap();
    let events: Vec<(&str, Value)> = body
        .split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name, serde_json::from_str(data).unwrap()))
        })
        .collect();
    let (last_name, last) = events.last().unwrap();
    assert_eq!(*last_name, "done", "{body}");
    assert_eq!(
        (
            last["status"].as_str(),
            last["done"].as_i64(),
            last["progress"].as_f64()
        ),
        (Some("completed"), Some(3), Some(1.0))
    );
    assert!(events[..events.len() - 1].iter().all(|(name, _)| *name == "progress"));
    // No two progress events carry the same counts.
    let counts: Vec<&Value> = events.iter().map(|(_, e)| &e["done"]).collect();
    assert!(
        counts.windows(2).all(|w| w[0] != w[1] || w[1] == &json!(3)),
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_jobs_are_claimed_before_a_backfills_child_jobs() {
    let s = TestServer::start().await;
    let t = s.tenant("Lanes").await;
    let jobs = calls(&s, &t, &DENTAL[..2], &["internal_metrics_v1"]).await;
    let s = s.restart(|c| c.worker = false).await;
    let b = s
        .ok(
            &t.workspace_key,
            "/api/v1/backfills",
            json!({"algorithm_ids": ["sentiment_v1"], "jobs": {"job_ids": [jobs[0]]}}),
            202,
        )
        .await["backfill_id"]
        .as_i64()
        .unwrap();
    let store = &s.state.store;
    let lease = gensail::clock::format(s.clock.now_plus(30));
    // The backfill's call becomes a child job (batch work)...
    let chunk = store.claim_backfill_items("w", &lease, 8).await.unwrap().unwrap();
    gensail::batch::backfills::process(&s.state, "w", chunk).await;
    let backfill_child = s
        .get(&t.workspace_key, &format!("/api/v1/backfills/{b}/jobs"))
        .await
        .body["jobs"][0]["child_job_id"]
        .as_i64()
        .unwrap();
    // ...and a client's run-algorithms comes after it.
    let interactive = s
        .ok(
            &t.workspace_key,
            &format!("/api/v1/jobs/{}/run-algorithms", jobs[1]),
            json!({"algorithm_ids": ["sentiment_v1"]}),
            202,
        )
        .await["job_id"]
        .as_i64()
        .unwrap();
    assert!(interactive > backfill_child);
    let first = store.claim_job("w", &lease).await.unwrap().unwrap();
    assert_eq!(
        first.job.job_id, interactive,
        "the interactive job goes first although it is newer"
    );
    assert!(
        store.claim_job("w", &lease).await.unwrap().is_none(),
        "claim_job never takes batch work"
    );
    let batch = store.claim_batch_job("w", &lease).await.unwrap().unwrap();
    assert_eq!(batch.job.job_id, backfill_child);
}

async fn cli(s: &TestServer, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gensail"))
        .args(args)
        .env("GENSAIL_SERVER", &s.base)
        .env("GENSAIL_TOKEN", token)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_an_experiment_and_a_backfill_in_one_command_each() {
    let s = TestServer::start().await;
    let t = s.tenant("Cli").await;
    calls(&s, &t, &DENTAL[..4], &["internal_metrics_v1"]).await;
    let token = t.workspace_key.as_str();

    let (ok, out, err) = cli(
        &s,
        token,
        &[
            "experiments",
            "run",
            "--baseline",
            "rise_dds_v4",
            "--candidate",
            "rise_dds_v5",
            "--since",
            "30d",
            "--compare",
            "/outcome",
        ],
    )
    .await;
    assert!(ok, "{err}");
    // Not a terminal: no progress bar in the output, only the summary.
    assert!(!err.contains('█') && !out.contains('█'), "{err}");
    assert!(
        out.contains("baseline  rise_dds_v4") && out.contains("candidate rise_dds_v5"),
        "{out}"
    );
    assert!(out.contains("calls             4 of 4"), "{out}");
    assert!(
        out.contains("agreement") && out.contains("/outcome:") && out.contains("baseline \\ candidate"),
        "{out}"
    );
    let id: i64 = err
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .parse()
        .unwrap();

    let (ok, out, _) = cli(&s, token, &["experiments", "show", &id.to_string(), "--json"]).await;
    assert!(ok);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (shown["status"].as_str(), shown["summary"]["compared"].as_i64()),
        (Some("completed"), Some(4))
    );

    let (ok, out, _) = cli(
        &s,
        token,
        &["experiments", "results", &id.to_string(), "--format", "csv"],
    )
    .await;
    assert!(ok);
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    assert_eq!(reader.records().count(), 4);

    let (ok, out, err) = cli(
        &s,
        token,
        &["backfill", "--algorithms", "sentiment_v1", "--since", "30d", "--json"],
    )
    .await;
    assert!(ok, "{err}");
    let done: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            done["status"].as_str(),
            done["created"].as_i64(),
            done["completed"].as_i64()
        ),
        (Some("completed"), Some(4), Some(4)),
        "{done}"
    );

    // An error answer is the server's detail and a failing exit.
    let (ok, _, err) = cli(
        &s,
        token,
        &[
            "experiments",
            "run",
            "--baseline",
            "nope_v1",
            "--candidate",
            "rise_dds_v5",
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("422") && err.contains("baseline: algorithm \"nope_v1\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_over_many_calls_costs_one_request_of_the_rate_limit() {
    let s = TestServer::start_with(|c| c.rate_limits.workspace_per_minute = 3).await;
    let t = s.tenant("Budget").await;
    calls(&s, &t, &DENTAL[..5], &["sentiment_v1"]).await;
    // Five calls, two algorithms: ten runs, one request.
    let r = s
        .post(
            &t.workspace_key,
            "/api/v1/experiments",
            json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.headers["x-ratelimit-remaining"], "2");
    let done = wait_batch(&s, &format!("/api/v1/experiments/{}", r.body["experiment_id"])).await;
    assert_eq!(done["done"], 5);
    let r = s
        .post(
            &t.workspace_key,
            "/api/v1/backfills",
            json!({"algorithm_ids": ["competitor_mentions_v1"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.headers["x-ratelimit-remaining"].to_str().unwrap()),
        (StatusCode::ACCEPTED, "1")
    );
    let r = s.get(&t.workspace_key, "/api/v1/experiments").await;
    assert_eq!(r.headers["x-ratelimit-remaining"], "0");
    let r = s
        .post(
            &t.workspace_key,
            "/api/v1/experiments",
            json!({"baseline": "rise_dds_v4", "candidate": "rise_dds_v5"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        s.get(&s.platform, "/api/v1/experiments").await.body["experiments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_another_workspace_are_never_reused() {
    let s = TestServer::start().await;
    let mine = s.tenant("Mine").await;
    let theirs = s.tenant("Theirs").await;
    // The same calls in both workspaces; only theirs ran internal_metrics_v1.
    let jobs = calls(&s, &mine, &DENTAL[..3], &["sentiment_v1"]).await;
    calls(&s, &theirs, &DENTAL[..3], &["internal_metrics_v1"]).await;
    let body =
        json!({"baseline": "internal_metrics_v1", "candidate": "internal_metrics_v1", "jobs": {"job_ids": jobs}});
    let id = s.ok(&mine.workspace_key, "/api/v1/experiments", body, 202).await["experiment_id"]
        .as_i64()
        .unwrap();
    let done = wait_batch(&s, &format!("/api/v1/experiments/{id}")).await;
    assert_eq!(
        (done["done"].as_i64(), done["memoized"].as_i64()),
        (Some(3), Some(0)),
        "{done}"
    );
    let results = all_results(&s, &mine.workspace_key, id).await;
    assert!(
        results.iter().all(|r| r["baseline"]["run_source"] == "experiment"),
        "{results:?}"
    );
}
