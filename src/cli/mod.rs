//! The command line: `gensail serve`, `gensail worker`, `gensail
//! algorithms list | inspect | run | new | publish`, and the clients of a
//! running service: `gensail experiments run | show | results` and
//! `gensail backfill`.
//!
//! # Layout
//! - this file: argument parsing and the local commands.
//! - [`scaffold`]: `algorithms new`, a plugin crate from `template/`.
//! - [`publish`]: `algorithms publish`.
//! - [`client`]: the API client the client commands share (server, token, event streams).
//! - [`experiments`]: `experiments` and `backfill`, with progress bars.

pub mod client;
pub mod experiments;
pub mod publish;
pub mod scaffold;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use gensail_engine::{CompilerProcess, Engine, EngineConfig, LimitOverrides, ShapeLimits};
use gensail_host_api::Transcript;

use crate::bundled;

/// Runs call-analytics algorithms as sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "gensail", version, about)]
pub struct Cli {
    /// Where gensail keeps its data (the compile cache lives in `compile-cache/` under it).
    #[arg(long, global = true, env = "GENSAIL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// What to do (default: `serve`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the service: HTTP API and job worker, embedded SQLite, bundled algorithms.
    Serve(ServeArgs),
    /// Runs only the job and webhook workers (no HTTP), sharing the database with API servers.
    Worker(NodeArgs),
    /// Work with algorithm plugins locally.
    #[command(subcommand)]
    Algorithms(AlgorithmsCommand),
    /// Compare two algorithm versions over stored calls on a running service (token from GENSAIL_TOKEN).
    #[command(subcommand)]
    Experiments(experiments::ExperimentsCommand),
    /// Run algorithms over stored calls on a running service, as run-algorithms on each would (token from GENSAIL_TOKEN).
    Backfill(experiments::BackfillArgs),
    /// Compiles one component for a parent gensail process, within the limits
    /// it is given (the parent starts this; not for people).
    #[command(hide = true)]
    CompileComponent {
        /// The component.
        #[arg(long)]
        input: PathBuf,
        /// Where the compiled component goes.
        #[arg(long)]
        output: PathBuf,
        /// Address space limit (RLIMIT_AS).
        #[arg(long)]
        memory_bytes: u64,
        /// CPU time limit (RLIMIT_CPU).
        #[arg(long)]
        cpu_seconds: u64,
    },
}

/// `gensail algorithms ...`
#[derive(Debug, Subcommand)]
pub enum AlgorithmsCommand {
    /// Lists the bundled algorithms with version and sha256.
    List,
    /// Shows what a component says about itself, and checks it against the contract.
    Inspect {
        /// The component file.
        file: PathBuf,
    },
    /// Runs an algorithm (a bundled ID or a .wasm file) on a transcript and prints the run report as JSON.
    Run(RunArgs),
    /// Creates a plugin crate on the SDK that builds for wasm32-wasip2 and passes its own test.
    New {
        /// The algorithm ID, which is also the crate name (e.g. churn_risk_v1).
        name: String,
        /// Where to create it (a directory NAME is made inside).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The gensail-host-api crate to depend on (default: the SDK of the checkout this binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Publishes a component to a running service (token from GENSAIL_TOKEN).
    Publish(publish::PublishArgs),
}

/// What every server process takes: the database, the secret key, run limits.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Database URL: sqlite://PATH (default: SQLite in the data directory) or postgres://USER@HOST/DB.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// 64 hex digits: the key that encrypts stored webhook secrets; every server of a deployment needs the same one.
    #[arg(long, env = "GENSAIL_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Runs executing at once (default: the number of cores).
    #[arg(long, env = "GENSAIL_MAX_CONCURRENT_RUNS")]
    pub max_concurrent_runs: Option<usize>,
    /// Default fuel limit of a run (algorithms may override).
    #[arg(long, env = "GENSAIL_RUN_FUEL")]
    pub run_fuel: Option<u64>,
    /// Most functions a component may have to be compiled at all (checked before compiling).
    #[arg(long, env = "GENSAIL_MAX_COMPONENT_FUNCTIONS", default_value_t = ShapeLimits::default().functions)]
    pub max_component_functions: u64,
    /// Largest function body, in bytes, a component may have to be compiled.
    #[arg(long, env = "GENSAIL_MAX_COMPONENT_FUNCTION_BYTES", default_value_t = ShapeLimits::default().function_bytes)]
    pub max_component_function_bytes: u64,
    /// Most bytes of code a component may have to be compiled.
    #[arg(long, env = "GENSAIL_MAX_COMPONENT_CODE_BYTES", default_value_t = ShapeLimits::default().code_bytes)]
    pub max_component_code_bytes: u64,
    /// Most bytes of data segments a component may have to be compiled.
    #[arg(long, env = "GENSAIL_MAX_COMPONENT_DATA_BYTES", default_value_t = ShapeLimits::default().data_bytes)]
    pub max_component_data_bytes: u64,
    /// Default wall-clock limit of a run, in milliseconds.
    #[arg(long, env = "GENSAIL_RUN_TIMEOUT_MS")]
    pub run_timeout_ms: Option<u64>,
    /// Default memory limit of a run, in bytes.
    #[arg(long, env = "GENSAIL_RUN_MEMORY_BYTES")]
    pub run_memory_bytes: Option<u64>,
    /// Hosts, IPs or CIDRs webhooks may reach although they are private (e.g. 127.0.0.1,10.0.0.0/8).
    #[arg(long, env = "GENSAIL_WEBHOOK_ALLOWLIST", default_value = "")]
    pub webhook_allowlist: String,
    /// How long a worker's claim on a job lasts without renewal; a dead worker's jobs move on after this.
    #[arg(long, env = "GENSAIL_WORKER_LEASE_SECONDS", default_value_t = 30)]
    pub worker_lease_seconds: u64,
    /// Leases a job may lose (its worker died mid-run) before its unfinished runs fail with `lost_lease`.
    #[arg(long, env = "GENSAIL_MAX_LOST_LEASES", default_value_t = 3)]
    pub max_lost_leases: i64,
    /// How often an idle worker looks for work (jobs created by other servers, expired leases).
    #[arg(long, env = "GENSAIL_WORKER_POLL_MS", default_value_t = 1000)]
    pub worker_poll_ms: u64,
    /// How often this server re-reads which algorithm versions are active (changes made through other servers).
    #[arg(long, env = "GENSAIL_ALGORITHM_SYNC_MS", default_value_t = 2000)]
    pub algorithm_sync_ms: u64,
}

/// Arguments of `gensail serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GENSAIL_BIND", default_value = "127.0.0.1:8080")]
    pub bind: Option<std::net::SocketAddr>,
    /// A directory of algorithm components (.wasm) to publish at start and hot-load while serving.
    #[arg(long, env = "GENSAIL_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Also create a demo tenant, print a key of each scope and ingest sample calls.
    #[arg(long)]
    pub demo: bool,
    /// Serve the API only; `gensail worker` processes run the jobs.
    #[arg(long)]
    pub no_worker: bool,
    /// Requests per minute for workspace keys.
    #[arg(long, env = "GENSAIL_RATE_LIMIT_WORKSPACE", default_value_t = 50)]
    pub rate_limit_workspace: u32,
    /// Requests per minute for organization keys.
    #[arg(long, env = "GENSAIL_RATE_LIMIT_ORGANIZATION", default_value_t = 120)]
    pub rate_limit_organization: u32,
    /// Requests per minute for partner keys.
    #[arg(long, env = "GENSAIL_RATE_LIMIT_PARTNER", default_value_t = 500)]
    pub rate_limit_partner: u32,
    /// Largest component `POST /api/v1/algorithms` accepts, in bytes.
    #[arg(long, env = "GENSAIL_MAX_COMPONENT_BYTES", default_value_t = 32 << 20)]
    pub max_component_bytes: usize,
    /// Most calls one experiment or backfill may select.
    #[arg(long, env = "GENSAIL_MAX_BATCH_CALLS", default_value_t = 100_000)]
    pub max_batch_calls: i64,
    /// Database, secret key and run limits.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Arguments of `gensail algorithms run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A bundled algorithm ID (e.g. sentiment_v1) or the path of a .wasm component.
    pub algorithm: String,
    /// The transcript file: JSON segments, or `Speaker: text` lines.
    #[arg(long)]
    pub transcript: PathBuf,
    /// The config: JSON text, or @FILE to read it from a file.
    #[arg(long, default_value = "{}")]
    pub config: String,
    /// Fuel limit (instructions) instead of the default.
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Wall-clock limit in milliseconds instead of the default.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Memory limit in bytes instead of the default.
    #[arg(long)]
    pub memory_bytes: Option<u64>,
}

/// Parses the arguments, runs the command, and maps failure to a non-zero exit.
pub fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if cli.command.is_none() {
        // No command means `serve`: parse again as such, so its defaults and
        // environment variables (GENSAIL_BIND, DATABASE_URL, ...) apply exactly
        // as they do for `gensail serve`.
        cli = Cli::parse_from(std::env::args_os().chain([std::ffi::OsString::from("serve")]));
    }
    init_tracing();
    let runtime = tokio::runtime::Runtime::new().expect("start the tokio runtime");
    match runtime.block_on(execute(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GENSAIL_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = cli.command.expect("main() makes a missing command `serve`");
    // Every compile of this process (publish, plugins directory, start-up,
    // following other servers, inspect, run) happens in a bounded child.
    let compiler = std::env::current_exe()
        .map(CompilerProcess::new)
        .context("cannot find this program's own path, which compiles components")?;
    let engine_config = EngineConfig {
        cache_dir: Some(cli.data_dir.join("compile-cache")),
        compiler: Some(compiler),
        ..EngineConfig::default()
    };
    let command = match command {
        Command::CompileComponent {
            input,
            output,
            memory_bytes,
            cpu_seconds,
        } => {
            gensail_engine::compile_in_this_process_for_parent(&input, &output, memory_bytes, cpu_seconds)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Serve(args) => {
            serve(cli.data_dir, engine_config, args).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Worker(args) => {
            crate::app::run_worker(node_config(cli.data_dir, engine_config, args)).await?;
            return Ok(ExitCode::SUCCESS);
        }
        other => other,
    };
    // Commands that need no engine.
    let command = match command {
        Command::Algorithms(AlgorithmsCommand::New { name, dir, sdk }) => {
            let root = scaffold::create(&name, &dir, &sdk.unwrap_or_else(scaffold::default_sdk_path))?;
            print_out(format!(
                "Created {}.\nNext: cd {} && cargo test && cargo build --release --target wasm32-wasip2",
                root.display(),
                root.display()
            ))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Algorithms(AlgorithmsCommand::Publish(args)) => return publish::publish(args, engine_config).await,
        Command::Experiments(command) => return experiments::experiments(command).await,
        Command::Backfill(args) => return experiments::backfill(args).await,
        other => other,
    };
    let engine = Engine::new(engine_config)?;
    match command {
        Command::Serve(_)
        | Command::Worker(_)
        | Command::CompileComponent { .. }
        | Command::Experiments(_)
        | Command::Backfill(_) => unreachable!("handled above"),
        Command::Algorithms(AlgorithmsCommand::List) => {
            let loaded = bundled::load_all(&engine).await?;
            let list: Vec<_> = loaded
                .iter()
                .map(|a| serde_json::json!({"id": a.info.id, "version": a.info.version.to_string(), "sha256": a.info.sha256, "description": a.info.description}))
                .collect();
            print_out(serde_json::to_string_pretty(&list)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Algorithms(AlgorithmsCommand::Inspect { file }) => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let info = engine.inspect(&bytes).await?;
            let mut value = serde_json::to_value(&info)?;
            value["limits"] = serde_json::to_value(engine.config().default_limits)?;
            print_out(serde_json::to_string_pretty(&value)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Algorithms(AlgorithmsCommand::Run(args)) => run(&engine, args).await,
        Command::Algorithms(AlgorithmsCommand::New { .. } | AlgorithmsCommand::Publish(_)) => {
            unreachable!("handled above")
        }
    }
}

async fn run(engine: &Engine, args: RunArgs) -> anyhow::Result<ExitCode> {
    let overrides = LimitOverrides {
        fuel: args.fuel,
        timeout_ms: args.timeout_ms,
        memory_bytes: args.memory_bytes,
        ..Default::default()
    };
    let algorithm = if let Some(bytes) = bundled::bytes(&args.algorithm) {
        engine.load(&args.algorithm, bytes, overrides).await?
    } else if Path::new(&args.algorithm).is_file() {
        engine.load_file(Path::new(&args.algorithm), overrides).await?
    } else {
        let ids: Vec<&str> = bundled::BUNDLED.iter().map(|(id, _)| *id).collect();
        bail!(
            "{} is neither a bundled algorithm ({}) nor a file",
            args.algorithm,
            ids.join(", ")
        );
    };
    let text = std::fs::read_to_string(&args.transcript)
        .with_context(|| format!("cannot read {}", args.transcript.display()))?;
    let transcript =
        Transcript::parse(&text).with_context(|| format!("{} is not a transcript", args.transcript.display()))?;
    let config = read_json_object(&args.config, "--config")?.to_string();
    let report = engine.run_loaded(&algorithm, &transcript, &config).await;
    print_out(serde_json::to_string_pretty(&report)?)?;
    match report.outcome() {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: the run failed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Prints `text` and a newline on stdout. A reader that went away (`| head`)
/// is not an error: the output just stops, instead of a panic and exit 101.
pub(crate) fn print_out(text: impl std::fmt::Display) -> anyhow::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The settings every server process shares, from its arguments.
fn node_config(data_dir: PathBuf, engine: EngineConfig, args: NodeArgs) -> crate::app::ServeConfig {
    let mut config = crate::app::ServeConfig::new(data_dir);
    let defaults = LimitOverrides {
        fuel: args.run_fuel,
        timeout_ms: args.run_timeout_ms,
        memory_bytes: args.run_memory_bytes,
        ..Default::default()
    }
    .apply(engine.default_limits);
    config.engine = EngineConfig {
        max_concurrent_runs: args.max_concurrent_runs.unwrap_or(engine.max_concurrent_runs),
        default_limits: defaults,
        max_memory_bytes: engine.max_memory_bytes.max(defaults.memory_bytes),
        shape: ShapeLimits {
            functions: args.max_component_functions,
            function_bytes: args.max_component_function_bytes,
            code_bytes: args.max_component_code_bytes,
            data_bytes: args.max_component_data_bytes,
        },
        ..engine
    };
    config.database_url = args.database_url;
    config.secret_key = args.secret_key.filter(|k| !k.trim().is_empty());
    config.webhook_allowlist = args.webhook_allowlist;
    config.worker_config.lease = std::time::Duration::from_secs(args.worker_lease_seconds.max(1));
    config.worker_config.poll_interval = std::time::Duration::from_millis(args.worker_poll_ms.max(10));
    config.worker_config.max_lost_leases = args.max_lost_leases.max(1);
    config.delivery.poll_interval = config.worker_config.poll_interval;
    config.algorithm_sync_interval = std::time::Duration::from_millis(args.algorithm_sync_ms.max(50));
    config
}

async fn serve(data_dir: PathBuf, engine: EngineConfig, args: ServeArgs) -> anyhow::Result<()> {
    let mut config = node_config(data_dir, engine, args.node);
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    config.platform_token = match std::env::var("GENSAIL_PLATFORM_TOKEN") {
        Ok(token) => Some(token).filter(|t| !t.trim().is_empty()),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("GENSAIL_PLATFORM_TOKEN must be visible ASCII characters only; it is not even valid text")
        }
    };
    config.worker = !args.no_worker;
    config.rate_limits = crate::ratelimit::RateLimitConfig {
        workspace_per_minute: args.rate_limit_workspace,
        organization_per_minute: args.rate_limit_organization,
        partner_per_minute: args.rate_limit_partner,
    };
    config.plugins_dir = args.plugins_dir;
    config.max_component_bytes = args.max_component_bytes;
    config.max_batch_calls = args.max_batch_calls.max(1);
    crate::app::serve(config, args.demo).await
}

/// A JSON object given as text or `@FILE` (`--config`, `--manifest`).
fn read_json_object(arg: &str, flag: &str) -> anyhow::Result<serde_json::Value> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {flag} file {path}"))?,
        None => arg.to_owned(),
    };
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{flag} is not valid JSON"))?;
    if !value.is_object() {
        bail!("{flag} must be a JSON object, e.g. '{{\"competitors\": [\"Gong\"]}}'");
    }
    Ok(value)
}
