//! API benchmarks (docs/performance.md). Run with `cargo bench --bench api`.
//!
//! (a) end-to-end child jobs per second (POST run-algorithms with 2 algorithms
//!     on a one-hour transcript, until completed) vs engine-only runs of the
//!     same 2 algorithms on the same transcript;
//! (b) child-job creation time for a 10-hour vs a 1-minute transcript;
//! (c) `GET /jobs/{id}` requests per second and p99 under concurrent load;
//! (d) `GET /jobs/{id}` latency, one client, idle and while hostile CPU-bound
//!     runs fill every run slot (and as many wait for one);
//! (e) an experiment, `rise_dds_v4` vs `rise_dds_v5` over a generated corpus
//!     of dental calls (`GENSAIL_BENCH_CALLS`, default 10,000): runs per second
//!     against the engine alone on the same runs, the memoized re-run against
//!     the first, and the start latency of interactive child jobs meanwhile.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gensail::app::{ServeConfig, Server, build_state};
use gensail::clock::{SharedClock, SystemClock};
use gensail::state::AppState;
use serde_json::{Value, json};

mod common;
use common::{corpus_call, transcript_of_words};

const TOKEN: &str = "gs_bench_platform_token_0123456789";
const ALGORITHMS: [&str; 2] = ["sentiment_v1", "internal_metrics_v1"];

struct Bench {
    base: String,
    client: reqwest::Client,
    state: AppState,
    _data: tempfile::TempDir,
}

async fn start(worker: bool) -> Bench {
    let data = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(data.path().to_path_buf());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.platform_token = Some(TOKEN.into());
    config.worker = worker;
    config.worker_config.poll_interval = Duration::from_millis(10);
    let clock: SharedClock = Arc::new(SystemClock);
    let (state, _) = build_state(&config, clock).await.unwrap();
    let server = Server::bind(state.clone(), &config).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));
    Bench {
        base,
        client: reqwest::Client::new(),
        state,
        _data: data,
    }
}

impl Bench {
    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn workspace(&self) -> i64 {
        let p = self.post("/api/v1/partners", json!({"name": "bench"})).await["id"]
            .as_i64()
            .unwrap();
        let o = self
            .post("/api/v1/organizations", json!({"partner_id": p, "name": "bench"}))
            .await["id"]
            .as_i64()
            .unwrap();
        self.post(
            "/api/v1/workspaces",
            json!({"organization_id": o, "name": "bench", "min_duration_seconds": 0}),
        )
        .await["id"]
            .as_i64()
            .unwrap()
    }

    async fn finished_job(&self, workspace: i64, words: usize, algorithm_ids: &[&str]) -> i64 {
        let t = transcript_of_words(words);
        let id = self
            .post(
                "/api/v1/calls/transcript",
                json!({"workspace_id": workspace, "transcript": t, "algorithm_ids": algorithm_ids}),
            )
            .await["job_id"]
            .as_i64()
            .unwrap();
        self.wait(id).await;
        id
    }

    async fn wait(&self, id: i64) {
        loop {
            let job = self.get(&format!("/api/v1/jobs/{id}")).await;
            if ["completed", "partial", "failed"].contains(&job["status"].as_str().unwrap()) {
                assert_eq!(job["status"], "completed");
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // `cargo bench --bench api -- creation` runs one part; no argument runs all.
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    runtime.block_on(async {
        if wanted("end_to_end") {
            end_to_end().await;
        }
        if wanted("creation") {
            creation().await;
        }
        if wanted("reads") {
            reads().await;
        }
        if wanted("latency") {
            latency().await;
        }
        if wanted("experiment") {
            experiment().await;
        }
    });
}

async fn end_to_end() {
    let b = start(true).await;
    let w = b.workspace().await;
    let parent = b.finished_job(w, 10_000, &["internal_metrics_v1"]).await;
    let n = 200;
    let started = Instant::now();
    let mut children = Vec::with_capacity(n);
    for _ in 0..n {
        let r = b
            .post(
                &format!("/api/v1/jobs/{parent}/run-algorithms"),
                json!({"algorithm_ids": ALGORITHMS, "force_rerun": true}),
            )
            .await;
        children.push(r["job_id"].as_i64().unwrap());
    }
    for c in &children {
        b.wait(*c).await;
    }
    let api_rate = n as f64 / started.elapsed().as_secs_f64();

    // The same work through the engine alone: pairs of runs, as concurrent as the worker's.
    let transcript = transcript_of_words(10_000);
    let engine = b.state.engine.clone();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (engine, transcript) = (engine.clone(), transcript.clone());
        tasks.spawn(async move {
            for _ in 0..n / 8 {
                for a in ALGORITHMS {
                    assert_eq!(engine.run(a, &transcript, "{}").await.unwrap().status, "completed");
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let engine_rate = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "(a) child jobs with {} algorithms on a 1-hour transcript: API + database {api_rate:.1} jobs/s, engine only {engine_rate:.1} pairs/s ({:.0} % kept)",
        ALGORITHMS.len(),
        100.0 * api_rate / engine_rate
    );
}

async fn creation() {
    // Without a worker, parents are marked done by hand so that only creation is timed.
    let mut medians = Vec::new();
    for (label, words) in [("1-minute", 150), ("10-hour", 100_000)] {
        let b = start(false).await;
        let w = b.workspace().await;
        let t = transcript_of_words(words);
        let id = b
            .post(
                "/api/v1/calls/transcript",
                json!({"workspace_id": w, "transcript": t, "algorithm_ids": ["sentiment_v1"]}),
            )
            .await["job_id"]
            .as_i64()
            .unwrap();
        let claimed = b
            .state
            .store
            .claim_job("bench", "9999-01-01T00:00:00.000000Z")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.job.job_id, id);
        for (run_id, _, _) in &claimed.runs {
            b.state.store.fail_run(*run_id, json!({"kind": "bench"})).await.unwrap();
        }
        b.state.store.finish_job(id, "bench").await.unwrap();
        let mut samples = Vec::new();
        for _ in 0..200 {
            let t0 = Instant::now();
            b.post(
                &format!("/api/v1/jobs/{id}/run-algorithms"),
                json!({"algorithm_ids": ALGORITHMS, "force_rerun": true}),
            )
            .await;
            samples.push(t0.elapsed());
        }
        let median = percentile(&mut samples, 0.5);
        println!(
            "(b) child-job creation, {label} transcript ({words} words): median {:.2} ms",
            median.as_secs_f64() * 1e3
        );
        medians.push(median);
    }
    println!(
        "(b) ratio 10-hour / 1-minute: {:.2}",
        medians[1].as_secs_f64() / medians[0].as_secs_f64()
    );
}

async fn reads() {
    let b = start(true).await;
    let w = b.workspace().await;
    let id = b.finished_job(w, 1_000, &ALGORITHMS).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, url) = (b.client.clone(), format!("{}/api/v1/jobs/{id}", b.base));
        tasks.spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let r = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
                samples.push(t0.elapsed());
            }
            samples
        });
    }
    let started = Instant::now();
    let mut all = Vec::new();
    while let Some(s) = tasks.join_next().await {
        all.extend(s.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    let p50 = percentile(&mut all, 0.5);
    let p99 = percentile(&mut all, 0.99);
    println!(
        "(c) GET /jobs/{{id}}, 16 concurrent clients (same process, same 2 cores): {rate:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

/// `n` sequential GETs of `url`, each timed, 2 ms apart.
async fn sequential_gets(b: &Bench, url: &str, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let r = b.client.get(url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        samples.push(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    samples
}

async fn latency() {
    let b = start(true).await;
    let w = b.workspace().await;
    let id = b.finished_job(w, 1_000, &ALGORITHMS).await;
    let url = format!("{}/api/v1/jobs/{id}", b.base);
    let mut idle = sequential_gets(&b, &url, 500).await;
    // Hostile guests that spin until their 15 s deadline, on every slot and
    // as many again waiting for one.
    let engine = b.state.engine.clone();
    let wasm = std::fs::read(std::path::Path::new(env!("GENSAIL_PLUGIN_WASM_DIR")).join("hostile.wasm")).unwrap();
    let hostile = engine
        .load(
            "hostile_v1",
            &wasm,
            gensail_engine::LimitOverrides {
                timeout_ms: Some(15_000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let slots = engine.config().max_concurrent_runs;
    let transcript = transcript_of_words(100);
    for _ in 0..slots * 2 {
        let (engine, hostile, transcript) = (engine.clone(), hostile.clone(), transcript.clone());
        tokio::spawn(async move { engine.run_loaded(&hostile, &transcript, r#"{"mode":"loop"}"#).await });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut busy = sequential_gets(&b, &url, 500).await;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (idle_p50, idle_p99) = (percentile(&mut idle, 0.5), percentile(&mut idle, 0.99));
    let (busy_p50, busy_p99) = (percentile(&mut busy, 0.5), percentile(&mut busy, 0.99));
    println!(
        "(d) GET /jobs/{{id}}, one client: idle p50 {:.2} ms p99 {:.2} ms; with {} spinning guests on {slots} run slots p50 {:.2} ms p99 {:.2} ms; p99 ratio {:.2}",
        ms(idle_p50),
        ms(idle_p99),
        slots * 2,
        ms(busy_p50),
        ms(busy_p99),
        busy_p99.as_secs_f64() / idle_p99.as_secs_f64()
    );
}

async fn experiment() {
    let calls: usize = std::env::var("GENSAIL_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let b = start(true).await;
    let w = b.workspace().await;
    // The corpus: completed calls (each settled by the worker, with no runs).
    let started = Instant::now();
    let mut last = 0;
    for i in 0..calls {
        let job = b
            .state
            .store
            .create_job(gensail::store::NewJob {
                workspace_id: w,
                parent_job_id: None,
                kind: gensail::jobs::JobKind::Ingest,
                status: gensail::jobs::JobStatus::Analyzing,
                algorithm_ids: Vec::new(),
                runs: Vec::new(),
                analytics_only: true,
                transcript: gensail::store::TranscriptSource::New(corpus_call(i)),
                source_call_id: Some(format!("bench-{i}")),
                source_company_id: None,
                recording_url: None,
                contacted_at: None,
                duration_seconds: None,
                error: None,
                event: "bench corpus".into(),
            })
            .await
            .unwrap();
        last = job.job_id;
    }
    b.state.wake_worker();
    b.wait(last).await;
    loop {
        let page = b
            .get(&format!("/api/v1/jobs?status=analyzing&workspace_id={w}&limit=1"))
            .await;
        if page["jobs"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "(e) corpus of {calls} calls stored and settled in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // A call for the interactive child jobs.
    let parent = b.finished_job(w, 300, &["internal_metrics_v1"]).await;

    let body = json!({"workspace_id": w, "baseline": "rise_dds_v4", "candidate": "rise_dds_v5", "compare": ["/outcome"],
                      "jobs": {"limit": calls}});
    let run = async |label: &str| -> (f64, Value) {
        let started = Instant::now();
        let id = b.post("/api/v1/experiments", body.clone()).await["experiment_id"]
            .as_i64()
            .unwrap();
        let mut latencies = Vec::new();
        let done = loop {
            // An interactive child job now and then: how long until its run starts?
            let asked = Instant::now();
            let child = b
                .post(
                    &format!("/api/v1/jobs/{parent}/run-algorithms"),
                    json!({"algorithm_ids": ["sentiment_v1"], "force_rerun": true}),
                )
                .await["job_id"]
                .as_i64()
                .unwrap();
            loop {
                let runs = b.get(&format!("/api/v1/jobs/{child}/runs")).await;
                if runs["runs"][0]["status"] != "pending" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            latencies.push(asked.elapsed());
            let e = b.get(&format!("/api/v1/experiments/{id}")).await;
            if e["status"] == "completed" {
                break e;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let seconds = started.elapsed().as_secs_f64();
        let p99 = percentile(&mut latencies, 0.99);
        println!(
            "(e) {label}: {calls} calls in {seconds:.1} s ({:.0} runs/s), memoized {}, agreement {}, interactive child-job start p99 {:.0} ms over {} samples",
            2.0 * calls as f64 / seconds,
            done["memoized"],
            done["summary"]["agreement_rate"],
            p99.as_secs_f64() * 1000.0,
            latencies.len()
        );
        (seconds, done)
    };
    let (first, _) = run("first run").await;
    let (second, _) = run("memoized re-run").await;

    // The same runs through the engine alone, as many at once as the engine has cores.
    let transcripts: Arc<Vec<_>> = Arc::new((0..calls).map(corpus_call).collect());
    let engine = b.state.engine.clone();
    let lanes = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..lanes {
        let (engine, transcripts) = (engine.clone(), transcripts.clone());
        tasks.spawn(async move {
            for t in transcripts.iter().skip(lane).step_by(lanes) {
                for a in ["rise_dds_v4", "rise_dds_v5"] {
                    assert_eq!(engine.run(a, t, "{}").await.unwrap().status, "completed");
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let engine_seconds = started.elapsed().as_secs_f64();
    println!(
        "(e) engine alone: {:.0} runs/s; the experiment keeps {:.0} % of it; the memoized re-run takes {:.1} % of the first",
        2.0 * calls as f64 / engine_seconds,
        100.0 * engine_seconds / first,
        100.0 * second / first
    );
}
