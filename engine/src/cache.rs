//! Compiled components on disk, so a restart does not recompile.
//!
//! A cache entry's name is the sha256 of the component bytes plus a hash of
//! everything that makes compiled code incompatible (wasmtime version, engine
//! configuration, enabled features: `Engine::precompile_compatibility_hash`).
//! Only files this process family wrote are ever deserialized: the directory
//! must be writable by the service alone, like its binary.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::Component;

/// The on-disk cache of compiled components.
pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
    compiled: AtomicU64,
    loaded: AtomicU64,
}

/// How often components were compiled versus loaded from the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompileStats {
    /// Components compiled by Cranelift.
    pub compiled: u64,
    /// Components loaded from the on-disk cache.
    pub loaded_from_cache: u64,
}

impl CompileCache {
    pub(crate) fn new(dir: Option<PathBuf>, engine: &wasmtime::Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            compiled: AtomicU64::new(0),
            loaded: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> CompileStats {
        CompileStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            loaded_from_cache: self.loaded.load(Ordering::Relaxed),
        }
    }

    fn path(&self, sha256: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }

    /// The compiled component, from the cache when present (`true`: it was
    /// compiled just now and is not cached yet; see [`CompileCache::keep`]).
    pub(crate) fn component(
        &self,
        engine: &wasmtime::Engine,
        compiler: Option<&crate::CompilerProcess>,
        sha256: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, bool)> {
        if let Some(path) = self.path(sha256).filter(|p| p.exists()) {
            match deserialize(engine, &path) {
                Ok(component) => {
                    self.loaded.fetch_add(1, Ordering::Relaxed);
                    return Ok((component, false));
                }
                // A stale or damaged entry is not fatal: recompile and overwrite it.
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compile cache entry"),
            }
        }
        let component = crate::compiler::compile(engine, compiler, bytes)?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        Ok((component, true))
    }

    /// Stores a freshly compiled component that passed validation. Refused
    /// components are never stored: the disk holds only what loaded.
    pub(crate) fn keep(&self, sha256: &str, component: &Component) {
        let Some(path) = self.path(sha256) else { return };
        if let Err(e) = store(component, &path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write compile cache entry");
        }
    }
}

/// Loads a compiled component this service wrote: a cache entry, or the
/// output of its own compiler process.
#[allow(unsafe_code)]
pub(crate) fn deserialize(engine: &wasmtime::Engine, path: &Path) -> wasmtime::Result<Component> {
    // Read into memory rather than `deserialize_file`'s mmap: a cache file truncated
    // under a running service (by an operator, a disk cleaner) would otherwise
    // crash it with SIGBUS. The copy costs about a tenth of a millisecond.
    let bytes = std::fs::read(path)?;
    // SAFETY: wasmtime requires bytes produced by `Component::serialize` of a
    // compatible engine. Cache entries: the name carries the engine's
    // compatibility hash, the directory belongs to the service, and only
    // `store` below writes into it. Compiler output: our own binary wrote it
    // into a private temporary directory. (wasmtime still checks the header,
    // version and engine compatibility before using them.)
    unsafe { Component::deserialize(engine, &bytes) }
}

fn store(component: &Component, path: &Path) -> anyhow::Result<()> {
    let dir = path.parent().expect("cache path has a parent");
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Write-then-rename, so a concurrent reader never sees half a file.
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().expect("cache path has a file name").to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
