//! The sandbox holds: hostile guests (built from `plugins/test-guests/hostile`)
//! end their own run with a typed error, and the same engine then still runs a
//! good plugin. Real wasmtime, real components.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use std::time::Duration;

use common::hostile::{assert_still_healthy, run_mode};
use common::{engine, fixture, wasm};
use gensail_engine::{AlgorithmErrorKind, LimitOverrides, LoadError, RunError};

#[tokio::test]
async fn infinite_loop_times_out() {
    let engine = engine();
    let report = run_mode(
        &engine,
        LimitOverrides {
            timeout_ms: Some(300),
            ..Default::default()
        },
        "loop",
    )
    .await;
    assert_eq!(
        report.error,
        Some(RunError::Timeout {
            limit: Duration::from_millis(300)
        }),
        "{report:?}"
    );
    assert!(
        report.wall_time_ms >= 290.0 && report.wall_time_ms < 2000.0,
        "{}",
        report.wall_time_ms
    );
    assert!(report.fuel_consumed > 0);
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn a_guest_blocked_in_a_host_call_times_out_too() {
    let engine = engine();
    let report = run_mode(
        &engine,
        LimitOverrides {
            timeout_ms: Some(200),
            ..Default::default()
        },
        "sleep",
    )
    .await;
    assert_eq!(
        report.error,
        Some(RunError::Timeout {
            limit: Duration::from_millis(200)
        }),
        "{report:?}"
    );
    assert!(report.wall_time_ms < 2000.0);
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn fuel_exhaustion() {
    let engine = engine();
    let report = run_mode(
        &engine,
        LimitOverrides {
            fuel: Some(5_000_000),
            ..Default::default()
        },
        "loop",
    )
    .await;
    assert_eq!(
        report.error,
        Some(RunError::FuelExhausted { limit: 5_000_000 }),
        "{report:?}"
    );
    assert_eq!(report.fuel_consumed, 5_000_000);
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let engine = engine();
    let limit = 32 << 20;
    let report = run_mode(
        &engine,
        LimitOverrides {
            memory_bytes: Some(limit),
            ..Default::default()
        },
        "memory",
    )
    .await;
    assert_eq!(
        report.error,
        Some(RunError::MemoryLimit { limit_bytes: limit }),
        "{report:?}"
    );
    assert!(
        report.peak_memory_bytes <= limit && report.peak_memory_bytes > limit / 2,
        "{}",
        report.peak_memory_bytes
    );
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn deep_recursion_is_a_trap() {
    let engine = engine();
    let report = run_mode(&engine, LimitOverrides::default(), "recursion").await;
    match &report.error {
        Some(RunError::Trap { message, .. }) => assert!(message.contains("stack"), "{message}"),
        other => panic!("expected a stack-overflow trap, got {other:?}"),
    }
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn panic_is_a_trap_with_the_message_and_a_backtrace() {
    let engine = engine();
    let report = run_mode(&engine, LimitOverrides::default(), "panic").await;
    match &report.error {
        Some(RunError::Trap { message, backtrace }) => {
            assert!(message.contains("hostile guest panicked on purpose"), "{message}");
            let backtrace = backtrace.as_deref().expect("a guest backtrace");
            assert!(backtrace.contains("hostile"), "{backtrace}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(
        report.logs.contains("hostile guest panicked on purpose"),
        "{}",
        report.logs
    );
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn huge_output_hits_the_output_limit() {
    let engine = engine();
    let report = run_mode(&engine, LimitOverrides::default(), "huge_output").await;
    assert!(
        matches!(report.error, Some(RunError::OutputTooLarge { limit, size }) if limit == 1 << 20 && size > limit),
        "{report:?}"
    );
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn output_that_is_not_json_is_refused() {
    let engine = engine();
    let report = run_mode(&engine, LimitOverrides::default(), "invalid_json").await;
    assert!(
        matches!(report.error, Some(RunError::InvalidOutput { .. })),
        "{report:?}"
    );
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn an_algorithm_error_is_reported_as_such() {
    let engine = engine();
    let report = run_mode(&engine, LimitOverrides::default(), "error").await;
    assert_eq!(
        report.error,
        Some(RunError::Algorithm {
            kind: AlgorithmErrorKind::Failed,
            message: "the hostile guest refuses".into()
        })
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["status"], "failed");
    assert_eq!(json["error"]["kind"], "algorithm_error");
}

#[tokio::test]
async fn log_flood_is_truncated_and_the_run_still_completes() {
    let engine = engine();
    let report = run_mode(
        &engine,
        LimitOverrides {
            log_bytes: Some(4096),
            ..Default::default()
        },
        "log_flood",
    )
    .await;
    assert_eq!(report.outcome().expect("completes")["flooded"], true);
    assert!(report.logs_truncated);
    assert!(report.logs.len() < 4096 + 100, "{}", report.logs.len());
    assert!(
        report.logs.starts_with("info: flood line 0 i=0\n"),
        "{}",
        &report.logs[..80]
    );
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn stdout_stderr_and_host_log_reach_the_run_log() {
    let engine = engine();
    let report = run_mode(&engine, LimitOverrides::default(), "stdio").await;
    assert!(report.logs.contains("stdout: hello from stdout\n"), "{}", report.logs);
    assert!(report.logs.contains("stderr: hello from stderr\n"), "{}", report.logs);
    assert!(
        report.logs.contains("warn: structured line key=value\n"),
        "{}",
        report.logs
    );
    assert!(!report.logs_truncated);
}

#[tokio::test]
async fn no_environment_filesystem_or_network() {
    let engine = engine();
    let report = run_mode(&engine, LimitOverrides::default(), "escape").await;
    let out = report.outcome().expect("the probe itself completes");
    assert_eq!(out["env"], 0, "{out}");
    assert_eq!(out["args"], 0, "{out}");
    assert!(out["fs"].as_str().unwrap().starts_with("error"), "{out}");
    assert!(out["file"].as_str().unwrap().starts_with("error"), "{out}");
    assert!(out["net"].as_str().unwrap().starts_with("error"), "{out}");
}

#[tokio::test]
async fn a_plugin_built_against_wit_2_is_refused_naming_both_versions() {
    let engine = engine();
    let err = engine
        .load("wit_v2", &wasm("wit_v2"), LimitOverrides::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::IncompatibleWit { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("gensail:algorithm@2.0.0") && message.contains("gensail:algorithm@1.0.0"),
        "{message}"
    );
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn metadata_id_must_match_the_id_loaded_under() {
    let engine = engine();
    let err = engine
        .load("sentiment_v2", &wasm("sentiment_v1"), LimitOverrides::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LoadError::IdMismatch { expected, found } if expected == "sentiment_v2" && found == "sentiment_v1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"sentiment_v1\""), "{err}");
}

#[tokio::test]
async fn bytes_that_are_not_a_component_are_refused() {
    let engine = engine();
    let err = engine
        .load("x", b"definitely not wasm", LimitOverrides::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::NotWasm), "{err:?}");
    // A minimal core module: header only.
    let err = engine
        .load("x", b"\0asm\x01\0\0\0", LimitOverrides::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("core WebAssembly module, not a component"),
        "{err}"
    );
    // A component header followed by garbage.
    let err = engine
        .load("x", b"\0asm\x0d\0\x01\0garbage!", LimitOverrides::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::Compile(_)), "{err:?}");
    // A truncated real component.
    let bytes = wasm("sentiment_v1");
    let err = engine
        .load("sentiment_v1", &bytes[..bytes.len() / 2], LimitOverrides::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::Compile(_)), "{err:?}");
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn limit_overrides_beyond_the_engine_maximum_are_refused() {
    let engine = engine();
    let err = engine
        .load(
            "hostile_v1",
            &wasm("hostile"),
            LimitOverrides {
                memory_bytes: Some(u64::MAX),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::Limits(_)), "{err:?}");
}

#[tokio::test]
async fn the_report_names_version_sha_and_costs() {
    let engine = engine();
    let bytes = wasm("sentiment_v1");
    let algorithm = engine
        .load("sentiment_v1", &bytes, LimitOverrides::default())
        .await
        .unwrap();
    let report = engine.run_loaded(&algorithm, &fixture("angry_support.txt"), "").await;
    use sha2::Digest;
    assert_eq!(report.component_sha256, hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(report.algorithm_id, "sentiment_v1");
    assert_eq!(report.version.to_string(), "1.0.0");
    assert!(report.fuel_consumed > 10_000, "{}", report.fuel_consumed);
    assert!(report.peak_memory_bytes >= 64 << 10, "{}", report.peak_memory_bytes);
    assert!(report.wall_time_ms > 0.0);
    assert_eq!(report.status, "completed");
}
