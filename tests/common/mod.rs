//! Helpers shared by the integration tests: engines with a shared compile
//! cache, the built components, and the transcript fixtures.
#![allow(dead_code)]

pub mod api;
pub mod crafted;
pub mod hostile;
pub mod nodes;
pub mod receiver;

use std::path::PathBuf;

use gensail_engine::{Engine, EngineConfig, Limits};
use gensail_host_api::Transcript;

/// An engine whose compile cache is shared by every test, so each component
/// is compiled once per `cargo test`, not once per test.
pub fn engine() -> Engine {
    engine_with(Limits::default())
}

/// An engine with other default limits.
pub fn engine_with(default_limits: Limits) -> Engine {
    let cache_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache");
    Engine::new(EngineConfig {
        default_limits,
        cache_dir: Some(cache_dir),
        ..EngineConfig::default()
    })
    .expect("engine")
}

/// The bytes of a component built from `plugins/` (bundled or test guest).
pub fn wasm(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("GENSAIL_PLUGIN_WASM_DIR")).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A transcript fixture from `plugins/fixtures/`.
pub fn fixture(name: &str) -> Transcript {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("plugins/fixtures")
        .join(name);
    Transcript::parse(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every transcript fixture, by file name.
pub fn all_fixtures() -> Vec<(String, Transcript)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // Label files are not transcripts.
        .filter(|n| !n.ends_with("labels.json"))
        .collect();
    names.sort();
    names.into_iter().map(|n| (n.clone(), fixture(&n))).collect()
}
