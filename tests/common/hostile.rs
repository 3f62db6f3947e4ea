//! The hostile test guest (`plugins/test-guests/hostile`): load it, run one
//! of its modes, and check the engine still runs a good plugin afterwards.

use gensail_engine::{Engine, LimitOverrides, RunReport};

use super::{fixture, wasm};

/// Loads the hostile guest with the given limit overrides.
pub async fn hostile(engine: &Engine, overrides: LimitOverrides) -> std::sync::Arc<gensail_engine::LoadedAlgorithm> {
    engine
        .load("hostile_v1", &wasm("hostile"), overrides)
        .await
        .expect("load hostile guest")
}

pub async fn run_mode(engine: &Engine, overrides: LimitOverrides, mode: &str) -> RunReport {
    let algorithm = hostile(engine, overrides).await;
    engine
        .run_loaded(
            &algorithm,
            &fixture("dental_booking.txt"),
            &format!(r#"{{"mode":"{mode}"}}"#),
        )
        .await
}

/// After a hostile run the same engine must still run a good plugin correctly.
pub async fn assert_still_healthy(engine: &Engine) {
    let sentiment = engine
        .load("sentiment_v1", &wasm("sentiment_v1"), LimitOverrides::default())
        .await
        .unwrap();
    let report = engine
        .run_loaded(&sentiment, &fixture("dental_booking.txt"), "{}")
        .await;
    assert_eq!(
        report.outcome().expect("good plugin runs")["call_sentiment"],
        "Positive"
    );
}
