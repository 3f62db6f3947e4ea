//! "Already ran" under concurrency and across a call's child jobs, on SQLite
//! and (in CI's second pass) PostgreSQL: identical requests sent at once
//! create one child job, and the spec's backfill loop over a listing that
//! includes child jobs never runs an algorithm twice on one call.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use common::api::TestServer;
use serde_json::{Value, json};

/// Every run of `algorithm_id` on the call whose root job is `root`.
async fn runs_on_call(s: &TestServer, root: i64, algorithm_id: &str) -> Vec<Value> {
    let mut jobs = vec![root];
    let mut runs = Vec::new();
    while let Some(job) = jobs.pop() {
        let children = s
            .get(&s.platform, &format!("/api/v1/jobs?parent_job_id={job}&limit=500"))
            .await
            .body;
        jobs.extend(
            children["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["job_id"].as_i64().unwrap()),
        );
        runs.extend(
            s.runs(&s.platform, job)
                .await
                .into_iter()
                .filter(|r| r["algorithm_id"] == algorithm_id),
        );
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_identical_requests_at_once_create_one_child_job() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let job = s.finished_job(&t, "dental_booking.txt", &["sentiment_v1"]).await;
    for algorithm in ["new_sentiment_v2", "competitor_mentions_v1", "qa_scoring_v1"] {
        // Twenty clients, each on its own connection, sent together.
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(20));
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let url = format!("{}/api/v1/jobs/{job}/run-algorithms", s.base);
            let (token, start) = (s.platform.clone(), start.clone());
            requests.spawn(async move {
                let client = reqwest::Client::new();
                start.wait().await;
                let r = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"algorithm_ids": [algorithm]}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            });
        }
        let answers = requests.join_all().await;
        let accepted: Vec<&Value> = answers.iter().filter(|r| r.0 == 202).map(|r| &r.1).collect();
        let already: Vec<&Value> = answers.iter().filter(|r| r.0 == 200).map(|r| &r.1).collect();
        assert_eq!(accepted.len(), 1, "{algorithm}: one 202 of 20");
        assert_eq!(already.len(), 19, "{algorithm}: nineteen 200s");
        let child = accepted[0]["job_id"].as_i64().unwrap();
        for body in already {
            assert_eq!(body["message"], "Algorithms already ran on this job");
            assert_eq!(body["hint"], "Use force_rerun=true to run again");
            assert_eq!(body["existing_runs"][0]["job_id"], child, "{body}");
            assert!(body["existing_runs"][0]["active_version"].is_string(), "{body}");
        }
        assert_eq!(runs_on_call(&s, job, algorithm).await.len(), 1, "{algorithm} runs once");
    }
    let children = s
        .get(&s.platform, &format!("/api/v1/jobs?parent_job_id={job}"))
        .await
        .body;
    assert_eq!(children["jobs"].as_array().unwrap().len(), 3);
    // force_rerun takes no lock and skips the check: it always runs.
    let forced = s
        .post(
            &s.platform,
            &format!("/api/v1/jobs/{job}/run-algorithms"),
            json!({"algorithm_ids": ["qa_scoring_v1"], "force_rerun": true}),
        )
        .await;
    assert_eq!(forced.status, 202, "{}", forced.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_specs_backfill_loop_runs_each_algorithm_once_per_call() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let mut roots = Vec::new();
    for fixture in ["dental_booking.txt", "dental_booking.txt", "dental_booking.txt"] {
        let root = s.finished_job(&t, fixture, &["sentiment_v1"]).await;
        // Each call already has a child job (an earlier on-demand run).
        let child = s
            .ok(
                &t.workspace_key,
                &format!("/api/v1/jobs/{root}/run-algorithms"),
                json!({"algorithm_ids": ["competitor_mentions_v1"]}),
                202,
            )
            .await["job_id"]
            .as_i64()
            .unwrap();
        s.wait(&t.workspace_key, child).await;
        roots.push(root);
    }
    // The loop as the spec writes it: every completed job, children included.
    let backfill = || async {
        let listed = s
            .get(&s.platform, "/api/v1/jobs?status=completed&since=30d&limit=500")
            .await
            .body;
        let mut statuses = Vec::new();
        for job in listed["jobs"].as_array().unwrap() {
            let r = s
                .post(
                    &s.platform,
                    &format!("/api/v1/jobs/{}/run-algorithms", job["job_id"]),
                    json!({"algorithm_ids": ["new_sentiment_v2"]}),
                )
                .await;
            statuses.push(r.status.as_u16());
        }
        statuses
    };
    let first = backfill().await;
    assert_eq!(first.len(), 6, "three calls, each a root and a child");
    assert_eq!(first.iter().filter(|s| **s == 202).count(), 3, "{first:?}");
    for root in &roots {
        assert_eq!(
            runs_on_call(&s, *root, "new_sentiment_v2").await.len(),
            1,
            "call {root}"
        );
    }
    // Once the children are done, a second pass creates nothing.
    let listed = s.get(&s.platform, "/api/v1/jobs?limit=500").await.body;
    for job in listed["jobs"].as_array().unwrap() {
        s.wait(&s.platform, job["job_id"].as_i64().unwrap()).await;
    }
    let second = backfill().await;
    assert!(second.iter().all(|s| *s == 200), "{second:?}");
    for root in &roots {
        let runs = runs_on_call(&s, *root, "new_sentiment_v2").await;
        assert_eq!(runs.len(), 1, "call {root}");
    }
    // The one-per-call listing a backfill should use.
    let roots_listed = s.get(&s.platform, "/api/v1/jobs?root_only=true&limit=500").await.body;
    let mut listed: Vec<i64> = roots_listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_i64().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, roots);
    // A completed run says which version produced it.
    let again = s
        .post(
            &s.platform,
            &format!("/api/v1/jobs/{}/run-algorithms", roots[0]),
            json!({"algorithm_ids": ["new_sentiment_v2"]}),
        )
        .await;
    let existing = &again.body["existing_runs"][0];
    assert_eq!(existing["status"], "completed");
    assert_eq!(existing["algorithm_version"], existing["active_version"], "{existing}");
}
