//! Engine benchmarks (issue targets in docs/performance.md). Run with
//! `cargo bench --bench engine`; plain timing loops, medians reported.
//!
//! (a) per-run overhead of a trivial algorithm: new Store + instantiate + call;
//! (b) sentiment_v1 on a generated one-hour transcript, wasm (limits on) vs the
//!     same code native;
//! (c) loading every bundled plugin from the compile cache vs compiling it;
//! (d) runs per second of (b) with both cores busy.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gensail_engine::{Engine, EngineConfig, LimitOverrides};
use gensail_host_api::Transcript;

mod common;
use common::one_hour_transcript;

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("GENSAIL_PLUGIN_WASM_DIR")).join(format!("{name}.wasm"))).unwrap()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn percentile(mut samples: Vec<Duration>, p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let cache = tempfile::tempdir().unwrap();
    let engine = Engine::new(EngineConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();

    // (a) Per-run overhead.
    let trivial = engine
        .load("hostile_v1", &wasm("hostile"), LimitOverrides::default())
        .await
        .unwrap();
    let empty = Transcript {
        language: None,
        duration_ms: 0,
        segments: vec![],
    };
    for _ in 0..500 {
        engine.run_loaded(&trivial, &empty, "").await;
    }
    let samples: Vec<Duration> = {
        let mut v = Vec::with_capacity(5000);
        for _ in 0..5000 {
            let t = Instant::now();
            let report = engine.run_loaded(&trivial, &empty, "").await;
            v.push(t.elapsed());
            assert_eq!(report.status, "completed");
        }
        v
    };
    println!(
        "(a) trivial run, new Store + instantiate + call: median {:.1} µs, p99 {:.1} µs (5000 runs)",
        median(samples.clone()).as_secs_f64() * 1e6,
        percentile(samples, 0.99).as_secs_f64() * 1e6
    );

    // (b) sentiment_v1, wasm vs native.
    let hour = one_hour_transcript();
    let words = hour.word_count();
    let sentiment = engine
        .load("sentiment_v1", &wasm("sentiment_v1"), LimitOverrides::default())
        .await
        .unwrap();
    let wasm_samples: Vec<Duration> = {
        let mut v = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            let report = engine.run_loaded(&sentiment, &hour, "{}").await;
            v.push(t.elapsed());
            assert_eq!(report.status, "completed");
        }
        v
    };
    let native_samples: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            let out =
                gensail_host_api::run_json::<sentiment_v1::SentimentV1>(std::hint::black_box(&hour), "{}").unwrap();
            std::hint::black_box(out);
            t.elapsed()
        })
        .collect();
    // Where the wasm time goes: the same transcript through a guest that only counts words
    // (instantiate + lower the transcript + a trivial output), with and without fuel.
    let echo = engine
        .load("hostile_v1", &wasm("hostile"), LimitOverrides::default())
        .await
        .unwrap();
    let echo_samples: Vec<Duration> = {
        let mut v = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            engine.run_loaded(&echo, &hour, r#"{"mode":"echo"}"#).await;
            v.push(t.elapsed());
        }
        v
    };
    println!(
        "(b) breakdown: passing the transcript to a guest that only counts words: {:.2} ms",
        median(echo_samples).as_secs_f64() * 1e3
    );
    let (w, n) = (median(wasm_samples), median(native_samples));
    println!(
        "(b) sentiment_v1, 1-hour transcript ({words} words): wasm {:.2} ms, native {:.2} ms, ratio {:.2}",
        w.as_secs_f64() * 1e3,
        n.as_secs_f64() * 1e3,
        w.as_secs_f64() / n.as_secs_f64()
    );

    // (c) Loading every bundled plugin: compiling vs from the cache.
    let cold_dir = tempfile::tempdir().unwrap();
    let config = || EngineConfig {
        cache_dir: Some(cold_dir.path().to_path_buf()),
        ..Default::default()
    };
    let load_all = |engine: Engine| async move {
        let t = Instant::now();
        gensail::bundled::load_all(&engine).await.unwrap();
        (t.elapsed(), engine.compile_stats())
    };
    let (cold, cold_stats) = load_all(Engine::new(config()).unwrap()).await;
    let mut warm = Vec::new();
    for _ in 0..5 {
        let (t, stats) = load_all(Engine::new(config()).unwrap()).await;
        assert_eq!(stats.compiled, 0);
        warm.push(t);
    }
    let warm = median(warm);
    println!(
        "(c) load {} bundled plugins: compiling {:.1} ms, from cache {:.2} ms ({:.1} % of cold)",
        cold_stats.compiled,
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3,
        100.0 * warm.as_secs_f64() / cold.as_secs_f64()
    );

    // (d) Throughput of (b) with both cores busy.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (engine, sentiment, hour) = (engine.clone(), sentiment.clone(), hour.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                engine.run_loaded(&sentiment, &hour, "{}").await;
                n += 1;
            }
            n
        });
    }
    let started = Instant::now();
    let mut runs = 0;
    while let Some(n) = tasks.join_next().await {
        runs += n.unwrap();
    }
    println!(
        "(d) sentiment_v1 on the 1-hour transcript, 4 tasks on 2 cores: {:.0} runs/s",
        runs as f64 / started.elapsed().as_secs_f64()
    );
}
