//! The registry: side-by-side IDs, atomic replacement by newer versions only,
//! runs in flight finishing on the version they started with, and concurrent
//! runs giving exactly the sequential results.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use std::sync::Arc;

use common::{all_fixtures, engine, fixture, wasm};
use gensail_engine::{LimitOverrides, LoadError};

#[tokio::test]
async fn newer_versions_replace_atomically_and_in_flight_runs_finish_on_the_old() {
    let engine = engine();
    let v1 = engine
        .load("hostile_v1", &wasm("hostile"), LimitOverrides::default())
        .await
        .unwrap();
    let v2 = engine
        .load("hostile_v1", &wasm("hostile_next"), LimitOverrides::default())
        .await
        .unwrap();
    assert_eq!(v1.info.version.to_string(), "0.1.0");
    assert_eq!(v2.info.version.to_string(), "0.2.0");
    assert!(engine.registry().install(v1.clone()).unwrap().is_none());

    // A run that is still computing when the new version arrives.
    let transcript = fixture("dental_booking.txt");
    let in_flight = {
        let (engine, transcript) = (engine.clone(), transcript.clone());
        tokio::spawn(async move {
            engine
                .run("hostile_v1", &transcript, r#"{"mode":"busy","iterations":300000000}"#)
                .await
                .unwrap()
        })
    };
    tokio::task::yield_now().await;
    let replaced = engine
        .registry()
        .install(v2.clone())
        .unwrap()
        .expect("the old version is returned");
    assert!(Arc::ptr_eq(&replaced, &v1));

    let later = engine
        .run("hostile_v1", &transcript, r#"{"mode":"echo"}"#)
        .await
        .unwrap();
    assert_eq!(later.version.to_string(), "0.2.0");
    let old = in_flight.await.unwrap();
    assert_eq!(old.version.to_string(), "0.1.0", "{old:?}");
    assert_eq!(old.status, "completed");
    assert_ne!(old.component_sha256, later.component_sha256);

    // Older or equal versions never replace a newer one.
    for stale in [v1, v2] {
        let err = engine.registry().install(stale).unwrap_err();
        assert!(matches!(err, LoadError::NotNewer { .. }), "{err:?}");
        assert!(err.to_string().contains("0.2.0"), "{err}");
    }
    assert_eq!(
        engine.registry().get("hostile_v1").unwrap().info.version.to_string(),
        "0.2.0"
    );
}

#[tokio::test]
async fn several_ids_live_side_by_side() {
    let engine = engine();
    for (id, file) in [("hostile_v1", "hostile"), ("sentiment_v1", "sentiment_v1")] {
        let a = engine.load(id, &wasm(file), LimitOverrides::default()).await.unwrap();
        engine.registry().install(a).unwrap();
    }
    let ids: Vec<String> = engine.registry().list().iter().map(|a| a.info.id.clone()).collect();
    assert_eq!(ids, ["hostile_v1", "sentiment_v1"]);
    assert!(engine.registry().remove("hostile_v1").is_some());
    assert!(
        engine
            .run("hostile_v1", &fixture("dental_booking.txt"), "{}")
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_give_the_sequential_results() {
    let engine = engine();
    let loaded = gensail::bundled::load_all(&engine).await.unwrap();
    let fixtures = all_fixtures();
    let mut expected = Vec::new();
    for algorithm in &loaded {
        for (name, transcript) in &fixtures {
            let report = engine.run_loaded(algorithm, transcript, "{}").await;
            expected.push((
                algorithm.info.id.clone(),
                name.clone(),
                report.output,
                report.error.map(|e| e.to_string()),
            ));
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (engine, algorithm) = (engine.clone(), loaded[i % loaded.len()].clone());
        let (name, transcript) = fixtures[(i / loaded.len()) % fixtures.len()].clone();
        tasks.spawn(async move {
            let report = engine.run_loaded(&algorithm, &transcript, "{}").await;
            (
                algorithm.info.id.clone(),
                name,
                report.output,
                report.error.map(|e| e.to_string()),
            )
        });
    }
    let mut checked = 0;
    while let Some(result) = tasks.join_next().await {
        let got = result.unwrap();
        let want = expected.iter().find(|e| e.0 == got.0 && e.1 == got.1).unwrap();
        assert_eq!(&got, want);
        checked += 1;
    }
    assert_eq!(checked, 100);
}

#[tokio::test]
async fn a_restart_loads_compiled_components_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let config = || gensail_engine::EngineConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    };
    let first = gensail_engine::Engine::new(config()).unwrap();
    first
        .load("sentiment_v1", &wasm("sentiment_v1"), LimitOverrides::default())
        .await
        .unwrap();
    assert_eq!(
        first.compile_stats(),
        gensail_engine::CompileStats {
            compiled: 1,
            loaded_from_cache: 0
        }
    );
    drop(first);

    let restarted = gensail_engine::Engine::new(config()).unwrap();
    let algorithm = restarted
        .load("sentiment_v1", &wasm("sentiment_v1"), LimitOverrides::default())
        .await
        .unwrap();
    assert_eq!(
        restarted.compile_stats(),
        gensail_engine::CompileStats {
            compiled: 0,
            loaded_from_cache: 1
        }
    );
    let report = restarted
        .run_loaded(&algorithm, &fixture("angry_support.txt"), "{}")
        .await;
    assert_eq!(report.status, "completed");

    // A damaged entry is recompiled and replaced, not trusted and not fatal.
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let third = gensail_engine::Engine::new(config()).unwrap();
    third
        .load("sentiment_v1", &wasm("sentiment_v1"), LimitOverrides::default())
        .await
        .unwrap();
    assert_eq!(
        third.compile_stats(),
        gensail_engine::CompileStats {
            compiled: 1,
            loaded_from_cache: 0
        }
    );
}
