//! The engine: wasmtime set up once, shared by every load and run, and the
//! runtime guests run on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::Linker;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::CompileCache;
use crate::component::{self, ComponentInfo, LoadedAlgorithm};
use crate::guest::{MAX_DESCRIPTION_BYTES, MAX_ERROR_MESSAGE_BYTES, MAX_NAME_BYTES, clip};
use crate::limits::{LimitOverrides, Limits, ShapeLimits};
use crate::registry::Registry;
use crate::sandbox::RunState;
use crate::{EngineError, LoadError};

/// How often the epoch advances: the granularity of run deadlines, and how
/// often a long-running guest yields to other tasks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Components compiled at once by one engine (see `Inner::compiles`).
const MAX_CONCURRENT_COMPILES: usize = 2;

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Limits of every run unless an algorithm overrides them.
    pub default_limits: Limits,
    /// Largest memory limit an algorithm may ask for (the pooling allocator sizes its slots by it).
    pub max_memory_bytes: u64,
    /// Runs executing at once; more wait. Epoch deadlines are wall-clock, so
    /// CPU-bound runs beyond the core count would only time out together.
    pub max_concurrent_runs: usize,
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// The largest component shape compiled at all.
    pub shape: ShapeLimits,
    /// Compile in a bounded child process (the service does); `None`
    /// compiles in this process (tests and benchmarks of trusted components).
    pub compiler: Option<crate::CompilerProcess>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            default_limits: Limits::default(),
            max_memory_bytes: 1 << 30,
            max_concurrent_runs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            cache_dir: None,
            shape: ShapeLimits::default(),
            compiler: None,
        }
    }
}

/// The tokio runtime every guest call (runs, `metadata()`) and every compile
/// executes on: its own threads, one per run slot, so a busy or hostile guest
/// never holds a thread the HTTP server or the job worker needs.
pub(crate) struct GuestRuntime(Option<tokio::runtime::Runtime>);

impl GuestRuntime {
    fn new(threads: usize) -> Result<Self, EngineError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .max_blocking_threads(threads.max(1))
            .thread_name("gensail-guest")
            .enable_time()
            .build()
            .map(|rt| Self(Some(rt)))
            .map_err(|e| EngineError::Config(format!("cannot start the guest runtime: {e}")))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("the guest runtime lives as long as the engine")
            .handle()
    }

    /// Runs a guest call on the guest runtime.
    pub(crate) fn spawn<F>(&self, call: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(call)
    }

    /// Runs blocking work (compiling) on the guest runtime's blocking threads.
    pub(crate) fn spawn_blocking<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> tokio::task::JoinHandle<R> {
        self.handle().spawn_blocking(work)
    }
}

impl Drop for GuestRuntime {
    fn drop(&mut self) {
        // The last engine handle may be dropped inside another runtime, where
        // a blocking shutdown would panic; runs still in flight are abandoned.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

pub(crate) struct Inner {
    pub(crate) wasmtime: wasmtime::Engine,
    pub(crate) guests: GuestRuntime,
    pub(crate) linker: Linker<RunState>,
    pub(crate) config: EngineConfig,
    pub(crate) permits: Semaphore,
    /// Compiles at once: each uses every core (parallel compilation) and
    /// can take hundreds of MB, so they queue rather than pile up.
    compiles: Semaphore,
    cache: CompileCache,
    registry: Registry,
}

/// The wasmtime host. Clone it freely: clones share everything.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl Engine {
    /// Sets up wasmtime (fuel, epochs, pooling allocator), the linker with the
    /// sandboxed WASI and the `host` interface, and starts the epoch ticker.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        if config.default_limits.memory_bytes > config.max_memory_bytes {
            return Err(EngineError::Config(
                "default memory limit exceeds max_memory_bytes".into(),
            ));
        }
        let wasmtime =
            wasmtime::Engine::new(&wasmtime_config(&config)?).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let mut linker = Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        crate::sandbox::add_host_to_linker(&mut linker).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let cache = CompileCache::new(config.cache_dir.clone(), &wasmtime);
        let inner = Arc::new(Inner {
            guests: GuestRuntime::new(config.max_concurrent_runs)?,
            permits: Semaphore::new(config.max_concurrent_runs.max(1)),
            compiles: Semaphore::new(MAX_CONCURRENT_COMPILES),
            wasmtime,
            linker,
            cache,
            registry: Registry::default(),
            config,
        });
        start_epoch_ticker(Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    /// The algorithms loaded into this engine.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// How many components were compiled and how many came from the compile cache.
    pub fn compile_stats(&self) -> crate::CompileStats {
        self.inner.cache.stats()
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Reads what a component says about itself (compiling it, through the
    /// cache) and checks it against the contract, without registering it.
    pub async fn inspect(&self, bytes: &[u8]) -> Result<ComponentInfo, LoadError> {
        self.validate(bytes).await.map(|(info, _)| info)
    }

    /// Validates a component to be loaded under `id` (exports the world, built
    /// against a compatible WIT version, `metadata().id == id`, semver version),
    /// compiles it once (through the cache) and pre-links it. The result is not
    /// registered; see [`Registry::install`].
    pub async fn load(
        &self,
        id: &str,
        bytes: &[u8],
        overrides: LimitOverrides,
    ) -> Result<Arc<LoadedAlgorithm>, LoadError> {
        component::check_id(id)?;
        let algorithm = self.load_any(bytes, overrides).await?;
        if algorithm.info.id != id {
            return Err(LoadError::IdMismatch {
                expected: id.to_owned(),
                found: algorithm.info.id.clone(),
            });
        }
        Ok(algorithm)
    }

    /// Validates, compiles and pre-links a component under the ID its own
    /// metadata gives (what a publish does: the ID comes from the plugin).
    pub async fn load_any(&self, bytes: &[u8], overrides: LimitOverrides) -> Result<Arc<LoadedAlgorithm>, LoadError> {
        let limits = self.limits(overrides)?;
        let (info, pre) = self.validate(bytes).await?;
        Ok(Arc::new(LoadedAlgorithm { info, limits, pre }))
    }

    /// The engine's default limits with `overrides` applied, refused when they
    /// ask for more memory than the pooling allocator's slots hold.
    pub fn limits(&self, overrides: LimitOverrides) -> Result<crate::Limits, LoadError> {
        let limits = overrides.apply(self.inner.config.default_limits);
        if limits.memory_bytes > self.inner.config.max_memory_bytes {
            return Err(LoadError::Limits(format!(
                "memory_bytes {} exceeds the engine's maximum of {}",
                limits.memory_bytes, self.inner.config.max_memory_bytes
            )));
        }
        Ok(limits)
    }

    /// Reads a component file and loads it under the ID its metadata gives.
    pub async fn load_file(&self, path: &Path, overrides: LimitOverrides) -> Result<Arc<LoadedAlgorithm>, LoadError> {
        self.load_any(&read(path)?, overrides).await
    }

    async fn validate(
        &self,
        bytes: &[u8],
    ) -> Result<(ComponentInfo, crate::bindings::AlgorithmPre<RunState>), LoadError> {
        component::check_header(bytes)?;
        component::check_shape(bytes, &self.inner.config.shape)?;
        let sha256 = hex::encode(Sha256::digest(bytes));
        // Compiling takes tens to hundreds of milliseconds of CPU: keep it off
        // the caller's threads, on the guest runtime's blocking threads.
        let (engine, owned, key) = (self.clone(), bytes.to_vec(), sha256.clone());
        let permit = self
            .inner
            .compiles
            .acquire()
            .await
            .expect("compile semaphore is never closed");
        let (compiled, fresh) = self
            .inner
            .guests
            .spawn_blocking(move || {
                let inner = &engine.inner;
                inner
                    .cache
                    .component(&inner.wasmtime, inner.config.compiler.as_ref(), &key, &owned)
            })
            .await
            .map_err(|e| LoadError::Compile(format!("compilation was aborted: {e}")))?
            .map_err(|e| LoadError::Compile(clip(&format!("{e:#}"), MAX_ERROR_MESSAGE_BYTES)))?;
        drop(permit);
        let wit_version = component::plugin_wit_version(&compiled, &self.inner.wasmtime)?;
        let pre = component::prelink(&self.inner.linker, &compiled)?;
        let meta = crate::run::call_metadata(self, &pre, &sha256).await?;
        let id = clip(&meta.id, MAX_NAME_BYTES);
        component::check_id(&id)
            .map_err(|_| LoadError::Metadata(format!("metadata().id {id:?} is not a valid algorithm ID")))?;
        let version_text = clip(&meta.version, MAX_NAME_BYTES);
        let version = semver::Version::parse(&version_text).map_err(|e| LoadError::InvalidVersion {
            version: version_text.clone(),
            reason: e.to_string(),
        })?;
        let info = ComponentInfo {
            id,
            version,
            description: clip(&meta.description, MAX_DESCRIPTION_BYTES),
            config_schema: component::parse_schema("config-schema", meta.config_schema)?,
            output_schema: component::parse_schema("output-schema", meta.output_schema)?,
            wit_version,
            sha256,
            size_bytes: bytes.len() as u64,
        };
        if fresh {
            let (engine, component) = (self.clone(), compiled.clone());
            let key = info.sha256.clone();
            let _ = self
                .inner
                .guests
                .spawn_blocking(move || engine.inner.cache.keep(&key, &component))
                .await;
        }
        Ok((info, pre))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The settings compiled code depends on, shared with the compiler process
/// (`compiler.rs`), which must produce code this engine can load.
pub(crate) fn compile_config() -> Config {
    let mut c = Config::new();
    c.consume_fuel(true);
    c.epoch_interruption(true);
    c.wasm_component_model(true);
    c.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(64));
    c
}

fn wasmtime_config(config: &EngineConfig) -> Result<Config, EngineError> {
    let mut c = compile_config();
    // Slots: every concurrent run, plus the short instantiations that read metadata at load time.
    let slots = (config.max_concurrent_runs.max(1) * 2 + 4) as u32;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots);
    // A Rust guest built by wasm-component-ld has a few core instances (the
    // program and small shim modules) with a memory and tables each.
    pool.total_core_instances(slots * 8);
    pool.total_memories(slots * 2);
    pool.total_tables(slots * 8);
    pool.total_stacks(slots);
    pool.max_memory_size(config.max_memory_bytes as usize);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(c)
}

/// Advances the epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(inner: Weak<Inner>) {
    std::thread::Builder::new()
        .name("gensail-epoch".into())
        .spawn(move || {
            while let Some(inner) = inner.upgrade() {
                inner.wasmtime.increment_epoch();
                drop(inner);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn epoch ticker thread");
}
