//! Crash recovery: a job taken back from a dead worker keeps what is final
//! (a failed run keeps its error and its one delivery), and a job whose
//! workers keep dying on it (a plugin that takes the process down) is not
//! reclaimed forever. Workers that die are played by the test (claims that
//! are never settled); time is the server's manual clock.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use common::api::TestServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_taken_back_after_a_crash_keeps_its_failed_run_and_its_one_delivery() {
    let s = TestServer::start_with(|c| {
        c.worker = false;
        c.webhook_allowlist = "127.0.0.1".into();
    })
    .await;
    let t = s.tenant("Acme").await;
    // Nothing listens there: deliveries stay pending, and this test counts them.
    let hook = format!("/api/v1/config/workspace/{}/webhook", t.workspace);
    let put = s
        .request(
            reqwest::Method::PUT,
            Some(&t.workspace_key),
            &hook,
            Some(json!({"url": "http://127.0.0.1:9/hooks"})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let job = s
        .ingest(
            &t.workspace_key,
            t.workspace,
            "dental_booking.txt",
            &["sentiment_v1", "rise_dds_v5"],
        )
        .await;
    let store = s.state.store.clone();
    let claimed = store
        .claim_job("crashed-worker", &gensail::clock::format(s.clock.now_plus(30)))
        .await
        .unwrap()
        .expect("a job to claim");
    // The dead worker stored a failure for the first run (and so its
    // delivery), then died with the second still running.
    let failed = claimed.runs[0].0;
    store
        .fail_run(
            failed,
            json!({"kind": "host_error", "message": "failed before the crash"}),
        )
        .await
        .unwrap();
    s.clock.advance(chrono::Duration::seconds(31));

    let s = s
        .restart(|c| {
            c.worker = true;
            c.webhook_allowlist = "127.0.0.1".into();
        })
        .await;
    s.state.wake_worker();
    // Its analysis ends (its deliveries wait for a receiver that is not there).
    assert_eq!(s.wait_publishing(&t.workspace_key, job).await, "publishing");
    let runs = s.runs(&t.workspace_key, job).await;
    let kept = runs.iter().find(|r| r["algorithm_run_id"] == failed).unwrap();
    assert_eq!(kept["status"], "failed");
    assert_eq!(
        kept["error"]["message"], "failed before the crash",
        "the failure is kept, not re-run"
    );
    assert!(runs.iter().any(|r| r["status"] == "completed"));
    let deliveries = s
        .get(&t.workspace_key, &format!("/api/v1/jobs/{job}/deliveries"))
        .await
        .body;
    let deliveries = deliveries["deliveries"].as_array().unwrap();
    for run in &runs {
        let of_run = deliveries
            .iter()
            .filter(|d| d["algorithm_run_id"] == run["algorithm_run_id"])
            .count();
        assert_eq!(of_run, 1, "one delivery for run {}", run["algorithm_run_id"]);
    }
    let log = s.get(&t.workspace_key, &format!("/api/v1/jobs/{job}/logs")).await.body;
    assert!(
        log["events"].as_array().unwrap().iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("from crashed-worker, whose lease expired")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_whose_workers_keep_dying_fail_with_lost_lease() {
    let s = TestServer::start_with(|c| {
        c.worker = false;
        c.worker_config.max_lost_leases = 2;
    })
    .await;
    let t = s.tenant("Acme").await;
    let job = s
        .ingest(&t.workspace_key, t.workspace, "dental_booking.txt", &["sentiment_v1"])
        .await;
    let store = s.state.store.clone();

    let lease = |s: &TestServer| gensail::clock::format(s.clock.now_plus(30));

    // A worker that stops cleanly gives the job back: not a lost lease.
    let first = store
        .claim_job("stops-cleanly", &lease(&s))
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(first.lost_leases, 0);
    store.release_lease(job, "stops-cleanly").await.unwrap();
    // The next worker takes it at once, and dies; its lease runs out.
    let second = store
        .claim_job("dies-first", &lease(&s))
        .await
        .unwrap()
        .expect("the released job");
    assert_eq!(second.lost_leases, 0);
    s.clock.advance(chrono::Duration::seconds(31));
    // The next takes it from the dead one (one lease lost), and dies too.
    let third = store
        .claim_job("dies-second", &lease(&s))
        .await
        .unwrap()
        .expect("the dead worker's job");
    assert_eq!(third.lost_leases, 1);
    s.clock.advance(chrono::Duration::seconds(31));

    // A real worker takes it from the second dead one (two lost: the limit)
    // and fails the run instead of running it a third time.
    let s = s
        .restart(|c| {
            c.worker = true;
            c.worker_config.max_lost_leases = 2;
        })
        .await;
    let settled = s.wait(&t.workspace_key, job).await;
    assert_eq!(settled["status"], "failed", "{settled}");
    let runs = s.runs(&t.workspace_key, job).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["error"]["kind"], "lost_lease", "{}", runs[0]);
    assert!(
        runs[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stopped 2 times"),
        "{}",
        runs[0]["error"]
    );
    let metrics = reqwest::get(format!("{}/metrics", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"gensail_lost_lease_runs_total{algorithm_id="sentiment_v1"} 1"#),
        "{metrics}"
    );
}
