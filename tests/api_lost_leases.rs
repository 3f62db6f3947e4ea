//! Crash-loop protection: a job whose workers keep dying on it (a plugin that
//! takes the process down) is not reclaimed forever. Workers that die are
//! played by the test (claims that are never settled); time is the server's
//! manual clock.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use common::api::TestServer;

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
