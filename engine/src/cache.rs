//! Compiled components on disk, so a restart does not recompile.
//!
//! A cache entry's name is the sha256 of the component bytes plus a hash of
//! everything that makes compiled code incompatible (wasmtime version, engine
//! configuration, enabled features: `Engine::precompile_compatibility_hash`).
//! Only files this process family wrote are ever deserialized: the directory
//! must be writable by the service alone, like its binary.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;

/// The on-disk cache of compiled components.
pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl CompileCache {
    pub(crate) fn new(dir: Option<PathBuf>, engine: &wasmtime::Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    fn path(&self, sha256: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }

    /// The compiled component: from the cache when present, else compiled and stored.
    pub(crate) fn component(&self, engine: &wasmtime::Engine, sha256: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(path) = self.path(sha256) else {
            return Component::new(engine, bytes);
        };
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok(component),
                // A stale or damaged entry is not fatal: recompile and overwrite it.
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compile cache entry"),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = store(&component, &path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write compile cache entry");
        }
        Ok(component)
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &wasmtime::Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the file was produced by `Component::serialize`
    // of a compatible engine. The name carries the engine's compatibility hash, the
    // directory belongs to the service, and only `store` below writes into it.
    unsafe { Component::deserialize_file(engine, path) }
}

fn store(component: &Component, path: &Path) -> anyhow::Result<()> {
    let dir = path.parent().expect("cache path has a parent");
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Write-then-rename, so a concurrent reader never sees half a file.
    let tmp = dir.join(format!(".{}.tmp-{}", path.file_name().unwrap().to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
