//! Ingestion, the job lifecycle (skipped, requeue, transcribing, retry),
//! listing with filters and cursors, lookup, and resuming after a crash.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use common::api::TestServer;
use gensail::jobs::RunStatus;
use gensail::store::ClaimedJob;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_both_transcript_forms_and_refuse_bad_input_precisely() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let lines = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plugins/fixtures/dental_booking.txt"
    ))
    .unwrap();
    let job = s.ok(&t.workspace_key, "/api/v1/calls/transcript", json!({"transcript": lines, "algorithm_ids": ["appointment_scheduling"], "contacted_at": "2026-01-20T09:30:00Z"}), 202).await;
    assert_eq!(job["status"], "analyzing");
    let done = s.wait(&t.workspace_key, job["job_id"].as_i64().unwrap()).await;
    assert_eq!(done["contacted_at"], "2026-01-20T09:30:00.000000Z");
    let runs = s
        .get(&t.workspace_key, &format!("/api/v1/jobs/{}/runs", job["job_id"]))
        .await
        .body;
    assert_eq!(
        runs["runs"][0]["result"]["data"][0]["patient"]["name"],
        "Maria Gonzalez"
    );

    // Defaults to the workspace's assigned algorithms.
    s.ok(
        &s.platform,
        &format!("/api/v1/workspaces/{}/algorithms", t.workspace),
        json!({"algorithm_id": "internal_metrics_v1", "config": {"gap_threshold_ms": 500}}),
        201,
    )
    .await;
    let body = json!({"transcript": serde_json::from_str::<Value>(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/fixtures/support_resolved.json")).unwrap()).unwrap()});
    let job = s.ok(&t.workspace_key, "/api/v1/calls/transcript", body, 202).await["job_id"]
        .as_i64()
        .unwrap();
    let done = s.wait(&t.workspace_key, job).await;
    assert_eq!(done["requested_algorithm_ids"], json!(["internal_metrics_v1"]));
    let runs = s.get(&t.workspace_key, &format!("/api/v1/jobs/{job}/runs")).await.body;
    assert_eq!(runs["runs"][0]["config"], json!({"gap_threshold_ms": 500}));
    assert!(runs["runs"][0]["result"]["gaps"]["count"].as_u64().unwrap() > 1);

    for (body, status, words) in [
        (
            json!({"transcript": "no speaker on this line"}),
            422,
            "line 1 has no speaker label",
        ),
        (
            json!({"transcript": {"segments": [{"speaker": "A", "start_ms": 5, "end_ms": 1, "text": "x"}]}}),
            422,
            "segment 0 ends",
        ),
        (json!({"transcript": 42}), 422, "transcript must be an object"),
        (
            json!({"transcript": "Agent: hi", "contacted_at": "yesterday"}),
            422,
            "contacted_at must be an RFC 3339 time",
        ),
        (
            json!({"transcript": "Agent: hi", "algorithm_id": ["x"]}),
            422,
            "unknown field `algorithm_id`",
        ),
        (
            json!({"transcript": "Agent: hi", "algorithm_ids": ["nope_v1"]}),
            400,
            "Algorithms not available: ['nope_v1']",
        ),
    ] {
        let r = s.post(&t.workspace_key, "/api/v1/calls/transcript", body.clone()).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        assert!(r.detail().contains(words), "{body}: {}", r.detail());
    }
    // Partner and organization keys must name the workspace.
    let r = s
        .post(
            &t.partner_key,
            "/api/v1/calls/transcript",
            json!({"transcript": "Agent: hi"}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (
            422,
            "workspace_id is required for partner, organization and platform keys"
        )
    );
    let r = s
        .post(
            &t.partner_key,
            "/api/v1/calls/transcript",
            json!({"workspace_id": 424242, "transcript": "Agent: hi"}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.detail()), (404, "Workspace 424242 not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_calls_are_skipped_and_requeued_against_the_current_filter() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let short = s
        .ok(
            &t.workspace_key,
            "/api/v1/calls/transcript",
            json!({"transcript": "Agent: Hello?\nCaller: Wrong number, sorry.", "algorithm_ids": ["sentiment_v1"]}),
            202,
        )
        .await;
    assert_eq!(short["status"], "skipped");
    let id = short["job_id"].as_i64().unwrap();
    let job = s.get(&t.workspace_key, &format!("/api/v1/jobs/{id}")).await.body;
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("shorter than the workspace's minimum of 30 s"),
        "{job}"
    );
    assert_eq!(job["runs"]["total"], 0);

    let patch = |body: Value| {
        let s = &s;
        let key = t.workspace_key.clone();
        async move {
            s.request(
                reqwest::Method::PATCH,
                Some(&key),
                &format!("/api/v1/jobs/{id}/status"),
                Some(body),
            )
            .await
        }
    };
    // Still too short under the same filter: stays skipped.
    let r = patch(json!({"status": "queued"})).await;
    assert_eq!((r.status.as_u16(), r.body["status"].as_str()), (200, Some("skipped")));
    assert_eq!(patch(json!({"status": "completed"})).await.status, 422);
    // Lower the filter, requeue: it runs.
    let r = s
        .request(
            reqwest::Method::PATCH,
            Some(&s.platform),
            &format!("/api/v1/workspaces/{}", t.workspace),
            Some(json!({"min_duration_seconds": 0})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = patch(json!({"status": "queued"})).await;
    assert_eq!(r.body["status"], "analyzing", "{}", r.body);
    assert_eq!(s.wait(&t.workspace_key, id).await["status"], "completed");
    // Only skipped jobs can be requeued.
    let r = patch(json!({"status": "queued"})).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (
            400,
            &*format!("Only skipped jobs can be requeued; job {id} is completed")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_calls_wait_for_their_transcript() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let job = s
        .ok(&t.workspace_key, "/api/v1/calls/audio", json!({"recording_url": "https://calls.example.com/1.mp3", "duration_seconds": 120.5, "algorithm_ids": ["rise_dds_v5"]}), 202)
        .await["job_id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        s.get(&t.workspace_key, &format!("/api/v1/jobs/{job}")).await.body["status"],
        "transcribing"
    );
    let r = s.get(&t.workspace_key, &format!("/api/v1/jobs/{job}/transcript")).await;
    assert_eq!(r.status, 404);
    assert!(
        r.detail().contains("has no transcript yet (it is transcribing)"),
        "{}",
        r.detail()
    );
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plugins/fixtures/dental_reschedule.txt"
    ))
    .unwrap();
    let r = s
        .request(
            reqwest::Method::PUT,
            Some(&t.workspace_key),
            &format!("/api/v1/jobs/{job}/transcript"),
            Some(json!({"transcript": text})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    s.wait(&t.workspace_key, job).await;
    let runs = s.get(&t.workspace_key, &format!("/api/v1/jobs/{job}/runs")).await.body;
    assert_eq!(runs["runs"][0]["result"]["outcome"], "rescheduled");
    // The transcript reads back exactly as the algorithm got it, to replay the run.
    let r = s.get(&t.workspace_key, &format!("/api/v1/jobs/{job}/transcript")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let stored: gensail_host_api::Transcript = serde_json::from_value(r.body["transcript"].clone()).unwrap();
    assert_eq!(stored, gensail_host_api::Transcript::parse(&text).unwrap());
    assert_eq!(
        r.body["sha256"],
        s.get(&t.workspace_key, &format!("/api/v1/jobs/{job}")).await.body["transcript"]["sha256"]
    );
    let other = s.tenant("Other").await;
    for key in [&other.workspace_key, &other.organization_key, &other.partner_key] {
        assert_eq!(s.get(key, &format!("/api/v1/jobs/{job}/transcript")).await.status, 403);
    }
    let r = s
        .request(
            reqwest::Method::PUT,
            Some(&t.workspace_key),
            &format!("/api/v1/jobs/{job}/transcript"),
            Some(json!({"transcript": text})),
        )
        .await;
    assert_eq!(r.status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_since_and_cursor_pages() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let old = s.finished_job(&t, "dental_cancel.txt", &["sentiment_v1"]).await;
    s.clock.advance(chrono::Duration::days(40));
    let mut recent = Vec::new();
    for _ in 0..5 {
        recent.push(s.finished_job(&t, "dental_booking.txt", &["sentiment_v1"]).await);
    }
    let child = s
        .ok(
            &t.workspace_key,
            &format!("/api/v1/jobs/{}/run-algorithms", recent[0]),
            json!({"algorithm_ids": ["rise_dds_v5"]}),
            202,
        )
        .await["job_id"]
        .as_i64()
        .unwrap();
    s.wait(&t.workspace_key, child).await;

    // The spec's backfill query: completed jobs of the past 30 days.
    let r = s
        .get(&t.workspace_key, "/api/v1/jobs?status=completed&since=30d")
        .await
        .body;
    let ids: Vec<i64> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_i64().unwrap())
        .collect();
    assert!(
        !ids.contains(&old) && ids.contains(&child) && recent.iter().all(|j| ids.contains(j)),
        "{ids:?}"
    );
    assert!(r["jobs"][0].get("job_id").is_some());
    let r = s
        .get(&t.workspace_key, "/api/v1/jobs?since=2026-01-01T00:00:00Z")
        .await
        .body;
    assert!(r["jobs"].as_array().unwrap().iter().any(|j| j["job_id"] == old));
    let r = s
        .get(&t.workspace_key, &format!("/api/v1/jobs?parent_job_id={}", recent[0]))
        .await
        .body;
    assert_eq!(r["jobs"].as_array().unwrap().len(), 1);
    let r = s.get(&t.workspace_key, "/api/v1/jobs?status=skipped,failed").await.body;
    assert!(r["jobs"].as_array().unwrap().is_empty());

    // Pages of 2 walk every job exactly once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/jobs?limit=2&cursor={c}"),
            None => "/api/v1/jobs?limit=2".to_owned(),
        };
        let page = s.get(&t.workspace_key, &path).await.body;
        seen.extend(
            page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["job_id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 7);

    // Ages too large for the calendar once panicked the handler (an empty reply).
    for bad in [
        "status=done",
        "since=yesterday",
        "since=100000000d",
        "since=9999999999999d",
        "since=99999999999999999999h",
        "since=36501d",
        "limit=0",
        "cursor=abc",
        "cursor=-1",
        "cursor=0",
        "colour=red",
    ] {
        let r = s.get(&t.workspace_key, &format!("/api/v1/jobs?{bad}")).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
        assert!(r.body["detail"].is_string(), "{bad}: {}", r.body);
    }
    let century = s.get(&t.workspace_key, "/api/v1/jobs?since=36500d").await;
    assert_eq!(century.status, 200, "{}", century.body);
    let r = s
        .get(
            &t.workspace_key,
            "/api/v1/jobs/lookup?source_call_id=call-dental_cancel.txt",
        )
        .await
        .body;
    assert_eq!(r["jobs"][0]["job_id"], old);
    assert_eq!(
        s.get(&t.workspace_key, "/api/v1/jobs/lookup?source_call_id=nope")
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_reruns_the_failed_algorithms_as_a_child() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    s.ok(
        &s.platform,
        &format!("/api/v1/workspaces/{}/algorithms", t.workspace),
        json!({"algorithm_id": "hostile_v1", "config": {"mode": "error"}}),
        201,
    )
    .await;
    let job = s
        .finished_job(&t, "dental_booking.txt", &["sentiment_v1", "hostile_v1"])
        .await;
    let r = s
        .ok(&t.workspace_key, &format!("/api/v1/jobs/{job}/retry"), json!({}), 202)
        .await;
    assert_eq!(r["algorithm_ids"], json!(["hostile_v1"]));
    assert_eq!(r["parent_job_id"], job);
    // The fix: new config for the workspace, then retry by source ID.
    s.ok(
        &s.platform,
        &format!("/api/v1/workspaces/{}/algorithms", t.workspace),
        json!({"algorithm_id": "hostile_v1", "config": {"mode": "echo"}}),
        201,
    )
    .await;
    s.wait(&t.workspace_key, r["job_id"].as_i64().unwrap()).await;
    let r = s
        .ok(
            &t.workspace_key,
            "/api/v1/jobs/retry",
            json!({"source_call_id": "call-dental_booking.txt"}),
            202,
        )
        .await;
    assert_eq!(
        s.wait(&t.workspace_key, r["job_id"].as_i64().unwrap()).await["status"],
        "completed"
    );
    let completed = s.finished_job(&t, "dental_cancel.txt", &["sentiment_v1"]).await;
    let r = s
        .post(&t.workspace_key, &format!("/api/v1/jobs/{completed}/retry"), json!({}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        s.post(
            &t.workspace_key,
            &format!("/api/v1/jobs/{completed}/retry"),
            json!({"mode": "sideways"})
        )
        .await
        .status,
        422
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_interrupted_by_a_crash_resumes_without_running_anything_twice() {
    // No worker: the "crashed" worker below is played by the test.
    let s = TestServer::start_with(|c| c.worker = false).await;
    let t = s.tenant("Acme").await;
    let job = s
        .ingest(
            &t.workspace_key,
            t.workspace,
            "dental_booking.txt",
            &["sentiment_v1", "appointment_scheduling", "rise_dds_v5"],
        )
        .await;
    let store = s.state.store.clone();
    let lease = gensail::clock::format(s.clock.now_plus(30));
    let ClaimedJob { runs, .. } = store
        .claim_job("crashed-worker", &lease)
        .await
        .unwrap()
        .expect("job to claim");
    // The dead worker finished the first run; the others were running when it died.
    let transcript = store
        .transcript(&store.job(job).await.unwrap().transcript_sha256.unwrap())
        .await
        .unwrap();
    let report = s.state.engine.run(&runs[0].1, &transcript, &runs[0].2).await.unwrap();
    assert!(store.finish_run(runs[0].0, &report).await.unwrap());
    assert_eq!(store.run(runs[1].0).await.unwrap().status, RunStatus::Running);
    let first = store.run(runs[0].0).await.unwrap();

    // Restart with a worker. The lease is still live: nothing happens yet.
    let s = s.restart(|c| c.worker = true).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        s.get(&t.workspace_key, &format!("/api/v1/jobs/{job}")).await.body["status"],
        "analyzing"
    );
    // The lease expires (service clock), the new worker reclaims the job.
    s.clock.advance(chrono::Duration::seconds(31));
    s.state.wake_worker();
    assert_eq!(s.wait(&t.workspace_key, job).await["status"], "completed");
    let runs_now = s.get(&t.workspace_key, &format!("/api/v1/jobs/{job}/runs")).await.body;
    let runs_now = runs_now["runs"].as_array().unwrap();
    assert!(runs_now.iter().all(|r| r["status"] == "completed"));
    let again = runs_now
        .iter()
        .find(|r| r["algorithm_run_id"] == first.algorithm_run_id)
        .unwrap();
    let interrupted = store.run(runs[1].0).await.unwrap();
    assert_eq!(interrupted.status, RunStatus::Completed);
    assert_eq!(
        again["finished_at"].as_str(),
        first.finished_at.as_deref(),
        "the completed run was not run again"
    );
    assert_eq!(again["result"], first.result.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_with_backlogs_share_the_run_slots() {
    // No worker: each claim below is a run slot taking its next job.
    let s = TestServer::start_with(|c| c.worker = false).await;
    let backfill = s.tenant("Backfiller").await;
    let live = s.tenant("Live calls").await;
    // One workspace's backfill is queued first and is long; the other's calls come after it.
    let mut queued = std::collections::HashMap::new();
    for (t, n) in [(&backfill, 6), (&live, 2)] {
        for _ in 0..n {
            let job = s
                .ingest(&t.workspace_key, t.workspace, "dental_booking.txt", &["sentiment_v1"])
                .await;
            queued.entry(t.workspace).or_insert_with(Vec::new).push(job);
        }
    }
    let store = s.state.store.clone();
    let claim_all = |worker: &'static str| {
        let store = store.clone();
        let lease = gensail::clock::format(s.clock.now_plus(30));
        async move {
            let mut claims = Vec::new();
            for slot in 0..8 {
                let claimed = store.claim_job(&format!("{worker}-{slot}"), &lease).await.unwrap();
                claims.push(claimed.expect("a job for every slot").job);
            }
            assert!(
                store.claim_job(worker, &lease).await.unwrap().is_none(),
                "all 8 jobs are leased"
            );
            claims
        }
    };
    let (b, l) = (backfill.workspace, live.workspace);
    let claims = claim_all("worker").await;
    let workspaces: Vec<i64> = claims.iter().map(|j| j.workspace_id).collect();
    // The fewest jobs in flight goes next; among equals, the oldest waiting job.
    assert_eq!(workspaces, [b, l, b, l, b, b, b, b]);
    for (workspace, jobs) in &queued {
        let claimed: Vec<i64> = claims
            .iter()
            .filter(|j| j.workspace_id == *workspace)
            .map(|j| j.job_id)
            .collect();
        assert_eq!(&claimed, jobs, "a workspace's jobs go oldest first");
    }
    // Leases that ran out (dead workers) are not in flight: taken back, the
    // jobs are shared out the same way again.
    s.clock.advance(chrono::Duration::seconds(31));
    let again: Vec<i64> = claim_all("next").await.iter().map(|j| j.workspace_id).collect();
    assert_eq!(again, [b, l, b, l, b, b, b, b]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_paths_and_oversized_bodies_answer_json_naming_the_fix() {
    use reqwest::Method;
    let s = TestServer::start_with(|c| c.worker = false).await;
    let t = s.tenant("Acme").await;
    let job = s
        .ingest(&t.workspace_key, t.workspace, "dental_booking.txt", &["sentiment_v1"])
        .await;
    // Path IDs that do not parse: 422 in JSON, naming the parameter (was 400 text/plain).
    for (method, path, names) in [
        (Method::GET, "/api/v1/jobs/abc".to_owned(), "job_id"),
        (Method::GET, "/api/v1/jobs/9223372036854775808".to_owned(), "job_id"),
        (Method::GET, "/api/v1/algorithm-runs/1.5".to_owned(), "run_id"),
        (Method::DELETE, "/api/v1/keys/abc".to_owned(), "key_id"),
    ] {
        let r = s.request(method, Some(&s.platform), &path, None).await;
        assert_eq!(r.status, 422, "{path}: {}", r.body);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(names) && detail.contains("whole number"),
            "{path}: {detail}"
        );
    }
    // Bodies over the limit: 413 naming it, for JSON and for raw bodies alike (was 422).
    let over = vec![b' '; (16 << 20) + 1024];
    for path in [
        "/api/v1/calls/transcript".to_owned(),
        format!("/api/v1/jobs/{job}/retry"),
    ] {
        let r = s.raw(Method::POST, &t.workspace_key, &path, over.clone()).await;
        assert_eq!(r.status, 413, "{path}: {}", r.body);
        assert!(
            r.body["detail"].as_str().unwrap().contains("16 MiB"),
            "{path}: {}",
            r.body
        );
    }
    // Nothing was created by the refused requests.
    let jobs = s.get(&t.workspace_key, "/api/v1/jobs").await.body;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "{jobs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_refuses_a_move_the_transition_table_does_not_list() {
    use gensail::jobs::JobStatus;
    use gensail::store::StoreError;
    let s = TestServer::start_with(|c| c.worker = false).await;
    let t = s.tenant("Acme").await;
    let job = s
        .ingest(&t.workspace_key, t.workspace, "dental_booking.txt", &["sentiment_v1"])
        .await;
    let store = s.state.store.clone();
    let status = || async { store.job(job).await.unwrap().status };
    assert_eq!(status().await, JobStatus::Analyzing);
    // Not in the table: refused as an error, and nothing is written.
    for to in [JobStatus::Skipped, JobStatus::Transcribing, JobStatus::Queued] {
        let refused = store.set_job_status(job, JobStatus::Analyzing, to, None, "x").await;
        assert!(
            matches!(refused, Err(StoreError::Illegal(_))),
            "analyzing -> {to}: {refused:?}"
        );
        assert_eq!(status().await, JobStatus::Analyzing);
    }
    // A listed move from a status the job no longer has (a racing request
    // moved it first) changes nothing either, and says so.
    let stale = store
        .set_job_status(job, JobStatus::Skipped, JobStatus::Transcribing, None, "x")
        .await;
    assert!(matches!(stale, Ok(false)), "{stale:?}");
    assert_eq!(status().await, JobStatus::Analyzing);
    // A listed move from the status it has is written, with its log line.
    let moved = store
        .set_job_status(
            job,
            JobStatus::Analyzing,
            JobStatus::Failed,
            Some("stopped by hand"),
            "stopped by hand",
        )
        .await;
    assert!(matches!(moved, Ok(true)), "{moved:?}");
    let row = store.job(job).await.unwrap();
    assert_eq!(
        (row.status, row.error.as_deref()),
        (JobStatus::Failed, Some("stopped by hand"))
    );
    assert!(row.completed_at.is_some(), "a final status stamps completed_at");
    // And from a final status only what the table lists: failed -> analyzing is not.
    let back = store
        .set_job_status(job, JobStatus::Failed, JobStatus::Analyzing, None, "x")
        .await;
    assert!(matches!(back, Err(StoreError::Illegal(_))), "{back:?}");
}
