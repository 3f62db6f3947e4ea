//! The running service: start-up and the serve loop with graceful shutdown.
//! The state it builds is [`AppState`] (in `state.rs`, which imports nothing
//! of the service above the store, so nothing imports this file back).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use gensail_engine::{Engine, EngineConfig};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::clock::{SharedClock, SystemClock};
use crate::ratelimit::{RateLimitConfig, RateLimits};
use crate::state::AppState;
use crate::store::{Scope, Store};
use crate::worker::{Worker, WorkerConfig};

/// How `gensail serve` runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Data directory (database, compile cache).
    pub data_dir: PathBuf,
    /// Database URL; default SQLite under the data directory.
    pub database_url: Option<String>,
    /// Platform token to accept (created if new); otherwise one is generated on first start.
    pub platform_token: Option<String>,
    /// A directory of components to publish at start and hot-load while serving.
    pub plugins_dir: Option<PathBuf>,
    /// Largest component `POST /api/v1/algorithms` accepts.
    pub max_component_bytes: usize,
    /// Most calls one experiment or backfill may select (`GENSAIL_MAX_BATCH_CALLS`).
    pub max_batch_calls: i64,
    /// Hosts, IPs or CIDRs webhooks may reach although they are private (`GENSAIL_WEBHOOK_ALLOWLIST`).
    pub webhook_allowlist: String,
    /// Rate limits.
    pub rate_limits: RateLimitConfig,
    /// Serve the HTTP API (false for `gensail worker`).
    pub api: bool,
    /// Run the job worker (and the webhook delivery worker) in this process.
    pub worker: bool,
    /// The key that encrypts stored secrets (`GENSAIL_SECRET_KEY`); else `DATA_DIR/secret.key`.
    pub secret_key: Option<String>,
    /// How often this process re-reads which algorithm versions are active
    /// (changes made through other servers of the deployment).
    pub algorithm_sync_interval: std::time::Duration,
    /// Worker settings.
    pub worker_config: WorkerConfig,
    /// Webhook delivery settings (the delivery worker runs with the job worker).
    pub delivery: crate::delivery::DeliveryConfig,
    /// Engine settings.
    pub engine: EngineConfig,
}

impl ServeConfig {
    /// Defaults: 127.0.0.1:8080, `./data`, SQLite.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            engine: EngineConfig {
                cache_dir: Some(data_dir.join("compile-cache")),
                ..EngineConfig::default()
            },
            data_dir,
            database_url: None,
            platform_token: None,
            plugins_dir: None,
            max_component_bytes: 32 << 20,
            max_batch_calls: 100_000,
            webhook_allowlist: String::new(),
            rate_limits: RateLimitConfig::default(),
            api: true,
            worker: true,
            secret_key: None,
            algorithm_sync_interval: std::time::Duration::from_secs(2),
            worker_config: WorkerConfig::default(),
            delivery: crate::delivery::DeliveryConfig::default(),
        }
    }
}

/// Opens the database, loads the bundled algorithms and makes sure a platform
/// key exists. Returns the state and, on a first start without a configured
/// token, the generated platform token (to print once).
pub async fn build_state(config: &ServeConfig, clock: SharedClock) -> anyhow::Result<(AppState, Option<String>)> {
    let store = Store::open(config.database_url.as_deref(), &config.data_dir, clock.clone()).await?;
    let engine = Engine::new(config.engine.clone())?;
    let secrets = crate::secrets::SecretBox::load(config.secret_key.as_deref(), &config.data_dir)?;
    let agreed = store
        .agree_on_setting("secret_key_fingerprint", secrets.fingerprint())
        .await?;
    anyhow::ensure!(
        agreed == secrets.fingerprint(),
        "this server's secret key (GENSAIL_SECRET_KEY or DATA_DIR/secret.key) is not the one this database's other servers use \
         (fingerprint {} here, {agreed} recorded): give every server of the deployment the same GENSAIL_SECRET_KEY",
        secrets.fingerprint()
    );
    let mut generated = None;
    if config.api {
        if let Some(token) = &config.platform_token {
            crate::store::check_chosen_token(token).map_err(|e| anyhow::anyhow!("GENSAIL_PLATFORM_TOKEN {e}"))?;
            store.insert_key(Scope::Platform, token).await?;
        } else if !store.has_platform_key().await? {
            let (_, token) = store.create_key(Scope::Platform).await?;
            generated = Some(token);
        }
    }
    let state = AppState {
        rate_limits: RateLimits::new(config.rate_limits, clock),
        store,
        engine,
        work_available: Arc::new(Notify::new()),
        metrics: crate::metrics::Metrics::new(),
        secrets,
        outbound: crate::outbound::OutboundGuard::parse(&config.webhook_allowlist)?,
        deliveries_due: Arc::new(Notify::new()),
        max_component_bytes: config.max_component_bytes,
        publishing_keys: Arc::default(),
        max_batch_calls: config.max_batch_calls,
        batch_versions: Arc::default(),
    };
    // The database says which versions are active; load them (the bundled
    // ones are already compiled, so they are handed over as hints).
    let bundled = crate::lifecycle::register_bundled(&state).await?;
    crate::lifecycle::sync_all(
        &state.engine,
        &state.store,
        &bundled,
        &mut crate::lifecycle::LoadFailures::new(),
    )
    .await?;
    Ok((state, generated))
}

/// Starts what runs beside the HTTP server until `stop` turns true: the job
/// and delivery workers (if this process works), following other servers'
/// algorithm changes, the plugins-directory watcher, and rate-limit upkeep.
fn spawn_background(
    state: &AppState,
    config: &ServeConfig,
    plugins: Option<(PathBuf, crate::lifecycle::watch::Seen)>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if config.worker {
        let (listener, stop_listening) = (state.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let work = listener.work_available.clone();
            listener
                .store
                .listen_for_work(move || work.notify_one(), stop_listening)
                .await;
        }));
        tasks.push(tokio::spawn(
            Worker::new(state.clone(), config.worker_config.clone()).run(stop.clone()),
        ));
        tasks.push(tokio::spawn(crate::delivery::run(
            state.clone(),
            config.delivery.clone(),
            stop.clone(),
        )));
    }
    tasks.push(tokio::spawn(crate::lifecycle::follow(
        state.clone(),
        config.algorithm_sync_interval,
        stop.clone(),
    )));
    if let Some((dir, seen)) = plugins {
        tasks.push(tokio::spawn(crate::lifecycle::watch::run(
            state.clone(),
            dir,
            seen,
            stop.clone(),
        )));
    }
    let (limits, mut janitor_stop) = (state.rate_limits.clone(), stop.clone());
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => limits.retain_recent(),
                _ = janitor_stop.changed() => break,
            }
        }
    }));
    tasks
}

/// A server bound to its port, not yet serving (tests read the port first).
pub struct Server {
    listener: TcpListener,
    state: AppState,
    config: ServeConfig,
    plugins: Option<(PathBuf, crate::lifecycle::watch::Seen)>,
}

impl Server {
    /// Publishes the plugins directory's components (if any) and binds the listener.
    pub async fn bind(state: AppState, config: &ServeConfig) -> anyhow::Result<Self> {
        let listener = listen(config).await?;
        Self::on(listener, state, config).await
    }

    /// Publishes the plugins directory's components (if any) and serves on `listener`.
    pub async fn on(listener: TcpListener, state: AppState, config: &ServeConfig) -> anyhow::Result<Self> {
        let plugins = match &config.plugins_dir {
            Some(dir) => {
                let mut seen = crate::lifecycle::watch::Seen::new();
                crate::lifecycle::watch::scan(&state, dir, &mut seen).await?;
                Some((dir.clone(), seen))
            }
            None => None,
        };
        Ok(Self {
            listener,
            state,
            config: config.clone(),
            plugins,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then stops taking requests, lets the
    /// worker finish or release its jobs, and returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let background = spawn_background(&self.state, &self.config, self.plugins, &stop_rx);
        let app = crate::http::router(self.state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await?;
        for task in background {
            task.await?;
        }
        Ok(())
    }
}

/// `gensail worker`: the job and delivery workers without the HTTP API, for
/// deployments that scale workers apart from API servers (on PostgreSQL, or
/// beside a `serve --no-worker` on the same SQLite file). Runs until SIGINT/SIGTERM.
pub async fn run_worker(mut config: ServeConfig) -> anyhow::Result<()> {
    config.api = false;
    config.worker = true;
    config.plugins_dir = None;
    let clock: SharedClock = Arc::new(SystemClock);
    let (state, _) = build_state(&config, clock).await?;
    let shutdown = shutdown_signal()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let background = spawn_background(&state, &config, None, &stop_rx);
    tracing::info!(worker = %config.worker_config.id, "gensail worker is running");
    println!("gensail worker {} is running", config.worker_config.id);
    shutdown.await;
    let _ = stop_tx.send(true);
    for task in background {
        task.await?;
    }
    Ok(())
}

/// Binds the API's address.
async fn listen(config: &ServeConfig) -> anyhow::Result<TcpListener> {
    TcpListener::bind(config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))
}

/// `gensail serve`: everything in one process.
pub async fn serve(config: ServeConfig, demo: bool) -> anyhow::Result<()> {
    // Bind first: on a busy port nothing is created (no platform token is
    // made and printed for a server that then fails to start).
    let listener = listen(&config).await?;
    let clock: SharedClock = Arc::new(SystemClock);
    let (state, generated) = build_state(&config, clock).await?;
    if let Some(token) = generated {
        println!("Platform token (shown once, store it now): {token}");
    }
    if demo {
        crate::demo::seed(&state, config.bind).await?;
    }
    // Install the signal handlers before announcing the address: a SIGTERM
    // that arrives right after must shut down gracefully, not kill the process.
    let shutdown = shutdown_signal()?;
    let server = Server::on(listener, state, &config).await?;
    tracing::info!(address = %server.local_addr(), "gensail is serving");
    println!("gensail is serving on http://{}", server.local_addr());
    server.run(shutdown).await
}

/// Resolves on SIGINT or SIGTERM; the handlers are registered when this is called.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutting down: no new requests; finishing in-flight work");
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
