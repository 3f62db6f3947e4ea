//! Attacks found by people who wrote hostile components against `wit/`
//! without seeing the test guests, each one contained: nothing a guest hands
//! the host is kept or formatted whole, guest faults are typed, guests run on
//! the engine's own threads, and every clock and random source a guest reads
//! is a function of the run's inputs. Real wasmtime, real components.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use std::time::{Duration, Instant};

use common::crafted::{compile_bomb, rename_functions};
use common::hostile::{assert_still_healthy, hostile, run_mode};
use common::{engine, fixture, wasm};
use gensail_engine::{CompilerProcess, Engine, EngineConfig, GuestFault, LimitOverrides, LoadError, RunError};

/// The hostile guest with every function renamed, run in its panicking mode.
async fn trap_with_function_names(name: &dyn Fn(u32) -> String) -> (RunError, Duration) {
    let engine = engine();
    let renamed = rename_functions(&wasm("hostile"), name);
    let algorithm = engine
        .load("hostile_v1", &renamed, LimitOverrides::default())
        .await
        .expect("a renamed component still loads");
    let started = Instant::now();
    let report = engine
        .run_loaded(&algorithm, &fixture("dental_booking.txt"), r#"{"mode":"panic"}"#)
        .await;
    let took = started.elapsed();
    assert_still_healthy(&engine).await;
    (report.error.expect("the guest panics"), took)
}

#[tokio::test]
async fn function_names_are_never_demangled() {
    // A valid Itanium name: a demangler would print `foo::bar`.
    let (error, _) = trap_with_function_names(&|_| "_ZN3foo3barE".to_owned()).await;
    let RunError::Trap { backtrace, .. } = error else {
        panic!("expected a trap, got {error:?}")
    };
    let backtrace = backtrace.expect("a backtrace");
    assert!(backtrace.contains("_ZN3foo3barE"), "{backtrace}");
    assert!(!backtrace.contains("foo::bar"), "{backtrace}");
}

#[tokio::test]
async fn huge_function_names_give_a_bounded_backtrace() {
    // 16 KiB a name (the same in a 333-byte C++ shape that grows 8x a level
    // when demangled, or 10 MB, is refused or cut the same way).
    let long = format!("_ZN{}", "N1aIS_E".repeat(16 << 10 >> 3));
    let (error, took) = trap_with_function_names(&|i| format!("{long}{i}")).await;
    let RunError::Trap { message, backtrace } = &error else {
        panic!("expected a trap, got {error:?}")
    };
    let backtrace = backtrace.as_deref().expect("a backtrace");
    let frames = backtrace.lines().count();
    assert!(frames <= 65, "{frames} lines");
    for line in backtrace.lines() {
        assert!(line.len() < 600, "a frame line of {} bytes", line.len());
    }
    assert!(backtrace.contains("more bytes cut"), "{backtrace}");
    assert!(message.len() <= (8 << 10) + 200, "{}", message.len());
    assert!(serde_json::to_string(&error).unwrap().len() < 64 << 10);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_huge_algorithm_error_message_is_cut() {
    let report = run_mode(&engine(), LimitOverrides::default(), "huge_error").await;
    let Some(RunError::Algorithm { message, .. }) = &report.error else {
        panic!("expected an algorithm error, got {:?}", report.error)
    };
    assert!(message.len() < (8 << 10) + 64, "{}", message.len());
    assert!(
        message.ends_with("more bytes cut]"),
        "{}",
        &message[message.len() - 40..]
    );
}

#[tokio::test]
async fn log_lines_are_bounded_before_they_are_copied_and_carry_no_nul() {
    let engine = engine();
    let report = run_mode(&engine, LimitOverrides::default(), "log_bomb").await;
    assert_eq!(report.status, "completed", "{:?}", report.error);
    assert!(report.logs.len() <= (64 << 10) + 100, "{}", report.logs.len());
    assert!(!report.logs.contains('\0'));
    assert!(
        report.logs.starts_with("error: nul\u{FFFD}byte mmm"),
        "{}",
        &report.logs[..40]
    );
    assert!(report.logs.contains("more bytes cut]"), "the message is cut");
    assert_still_healthy(&engine).await;
}

/// Many 4 KiB writes (std's chunks), and one 100 MB write straight to the
/// stream: either way the host keeps only the log's bound.
#[tokio::test]
async fn stderr_floods_keep_only_the_log_bound() {
    let engine = engine();
    for mode in ["stderr_flood", "stderr_one_write"] {
        // Generous time: a debug-build host lifts 100 MB byte by byte.
        let report = run_mode(
            &engine,
            LimitOverrides {
                timeout_ms: Some(60_000),
                ..Default::default()
            },
            mode,
        )
        .await;
        assert_eq!(report.status, "completed", "{mode}: {:?}", report.error);
        assert!(report.logs_truncated, "{mode}");
        assert!(report.logs.len() <= (64 << 10) + 100, "{mode}: {}", report.logs.len());
    }
}

#[tokio::test]
async fn guest_faults_are_typed() {
    let engine = engine();
    for (mode, fault) in [
        ("random_bomb", GuestFault::RandomRequestTooLarge),
        ("invalid_utf8", GuestFault::InvalidUtf8),
        ("handle_exhaustion", GuestFault::HandleTableFull),
        ("invalid_handle", GuestFault::InvalidHandle),
    ] {
        let report = run_mode(&engine, LimitOverrides::default(), mode).await;
        match &report.error {
            Some(RunError::GuestFault { fault: found, message }) => {
                assert_eq!(*found, fault, "{mode}: {message}");
                let json = serde_json::to_value(&report).unwrap();
                assert_eq!(json["error"]["kind"], "guest_fault", "{mode}");
            }
            other => panic!("{mode}: expected a guest fault, got {other:?}"),
        }
        assert!(report.wall_time_ms < 5_000.0, "{mode}: {}", report.wall_time_ms);
    }
    assert_still_healthy(&engine).await;
}

#[tokio::test]
async fn huge_metadata_is_refused_naming_the_limit() {
    let engine = engine();
    let refused = engine
        .load_any(&wasm("hostile_metadata"), LimitOverrides::default())
        .await
        .expect_err("a 1 MiB output schema is refused");
    assert!(
        matches!(&refused, LoadError::Metadata(m) if m.contains("output-schema") && m.contains("65536")),
        "{refused}"
    );
    // Refused the same way every time: metadata() reads the clock and
    // randomness, and both are functions of the component.
    let again = engine
        .load_any(&wasm("hostile_metadata"), LimitOverrides::default())
        .await
        .unwrap_err();
    assert_eq!(refused.to_string(), again.to_string());
}

#[tokio::test]
async fn a_compile_bomb_is_refused_before_anything_is_compiled() {
    let engine = engine();
    let started = Instant::now();
    let refused = engine.inspect(&compile_bomb(990_000)).await.unwrap_err();
    assert!(
        matches!(refused, LoadError::TooLarge { what: "functions", found, limit: 50_000, .. } if found > 50_000),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("GENSAIL_MAX_COMPONENT_FUNCTIONS"),
        "{refused}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(engine.compile_stats().compiled, 0, "nothing was compiled");
    // A small one of the same make is within the limits: it compiles, and is
    // then refused for what it is (no plugin export), and not cached.
    let small = engine.inspect(&compile_bomb(10)).await.unwrap_err();
    assert!(matches!(small, LoadError::MissingExport { .. }), "{small}");
    assert_eq!(engine.compile_stats().compiled, 1);
    let again = engine.inspect(&compile_bomb(10)).await.unwrap_err();
    assert!(matches!(again, LoadError::MissingExport { .. }), "{again}");
    assert_eq!(
        engine.compile_stats().loaded_from_cache,
        0,
        "a refused component is never cached"
    );
}

/// An engine that compiles in the `gensail` binary's bounded child process.
fn engine_compiling_in(compiler: CompilerProcess) -> Engine {
    Engine::new(EngineConfig {
        compiler: Some(compiler),
        shape: gensail_engine::ShapeLimits {
            functions: 10_000_000,
            ..Default::default()
        },
        ..EngineConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn the_parent_runs_what_the_compiler_process_compiled() {
    let engine = engine_compiling_in(CompilerProcess::new(env!("CARGO_BIN_EXE_gensail").into()));
    let sentiment = engine
        .load("sentiment_v1", &wasm("sentiment_v1"), LimitOverrides::default())
        .await
        .unwrap();
    assert_eq!(engine.compile_stats().compiled, 1);
    let report = engine
        .run_loaded(&sentiment, &fixture("dental_booking.txt"), "{}")
        .await;
    assert_eq!(report.outcome().unwrap()["call_sentiment"], "Positive");
}

#[tokio::test]
async fn a_compile_past_its_time_or_memory_is_killed_and_the_host_goes_on() {
    let program = || CompilerProcess::new(env!("CARGO_BIN_EXE_gensail").into());
    // Past the wall-clock bound: killed.
    let slow = engine_compiling_in(CompilerProcess {
        wall_time: Duration::ZERO,
        ..program()
    });
    let refused = slow.inspect(&wasm("sentiment_v1")).await.unwrap_err();
    assert!(
        refused.to_string().contains("compiling took longer than 0 s"),
        "{refused}"
    );
    // Past the memory bound: a bomb that would take gigabytes, in 768 MiB.
    let small = engine_compiling_in(CompilerProcess {
        memory_bytes: 768 << 20,
        wall_time: Duration::from_secs(60),
        ..program()
    });
    let started = Instant::now();
    let refused = small.inspect(&compile_bomb(990_000)).await.unwrap_err();
    assert!(
        refused.to_string().contains("the compiler process failed") && refused.to_string().contains("805306368 bytes"),
        "{refused}"
    );
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    // The host compiles the next component as if nothing happened.
    assert_eq!(small.inspect(&wasm("sentiment_v1")).await.unwrap().id, "sentiment_v1");
}

/// Runs the guest's clock-and-random probe with a config and returns its output.
async fn probe(engine: &gensail_engine::Engine, config: &str) -> serde_json::Value {
    let algorithm = hostile(engine, LimitOverrides::default()).await;
    let report = engine
        .run_loaded(&algorithm, &fixture("dental_booking.txt"), config)
        .await;
    report.outcome().expect("the probe completes").clone()
}

#[tokio::test]
async fn every_clock_and_random_source_is_a_function_of_the_inputs() {
    let config = r#"{"mode":"clocks_and_random"}"#;
    let first = probe(&engine(), config).await;
    // Another engine (another process, as far as the guest can tell), later.
    let second = probe(&engine(), config).await;
    assert_eq!(first, second, "the same inputs give the same bytes");
    let reads = first.as_array().unwrap();
    assert_eq!(reads[0]["wall"][0], 1_577_836_800u64, "the fixed wall clock");
    assert_eq!(reads[0]["std_wall"], 1_577_836_800_000_000_000u64);
    assert!(reads[1]["monotonic"].as_u64() > reads[0]["monotonic"].as_u64());
    assert_ne!(reads[0]["random"], reads[1]["random"], "a stream, not one value");
    assert_ne!(reads[0]["random"], reads[0]["insecure"], "distinct sources");
    // Another config is another input: other bytes.
    let other = probe(&engine(), r#"{"mode":"clocks_and_random","salt":1}"#).await;
    assert_ne!(other[0]["random"], first[0]["random"]);
    assert_eq!(other[0]["wall"], first[0]["wall"]);
}

/// Guests run on the engine's own threads: a task on the caller's runtime
/// (one thread here) keeps its timing while guests spin on every run slot.
#[tokio::test(flavor = "current_thread")]
async fn busy_guests_do_not_stall_the_callers_runtime() {
    let engine = engine();
    let slots = engine.config().max_concurrent_runs;
    let algorithm = hostile(
        &engine,
        LimitOverrides {
            timeout_ms: Some(1_500),
            ..Default::default()
        },
    )
    .await;
    let runs: Vec<_> = (0..slots * 2)
        .map(|_| {
            let (engine, algorithm) = (engine.clone(), algorithm.clone());
            tokio::spawn(async move {
                engine
                    .run_loaded(&algorithm, &fixture("dental_booking.txt"), r#"{"mode":"loop"}"#)
                    .await
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let mut worst = Duration::ZERO;
    for _ in 0..50 {
        let asked = Instant::now();
        tokio::time::sleep(Duration::from_millis(10)).await;
        worst = worst.max(asked.elapsed());
    }
    for run in runs {
        let report = run.await.unwrap();
        assert!(
            matches!(report.error, Some(RunError::Timeout { .. })),
            "{:?}",
            report.error
        );
    }
    // Generous: a guest sharing this thread held it for a whole 5 ms epoch
    // tick at least, and for its whole run before runs yielded.
    assert!(
        worst < Duration::from_millis(200),
        "a 10 ms timer fired after {worst:?}"
    );
}
