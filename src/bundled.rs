//! The bundled algorithms, compiled from `plugins/` by build.rs and embedded
//! in the binary, so the service runs from any directory with no plugin files.

use std::sync::Arc;

use gensail_engine::{Engine, LimitOverrides, LoadError, LoadedAlgorithm};

include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));

/// The component bytes of a bundled algorithm.
pub fn bytes(id: &str) -> Option<&'static [u8]> {
    BUNDLED.iter().find(|(name, _)| *name == id).map(|(_, bytes)| *bytes)
}

/// Validates and registers every bundled algorithm with default limits.
pub async fn load_all(engine: &Engine) -> Result<Vec<Arc<LoadedAlgorithm>>, LoadError> {
    let mut loaded = Vec::with_capacity(BUNDLED.len());
    for (id, bytes) in BUNDLED {
        let algorithm = engine.load(id, bytes, LimitOverrides::default()).await?;
        engine.registry().install(algorithm.clone())?;
        loaded.push(algorithm);
    }
    Ok(loaded)
}
