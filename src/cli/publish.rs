//! `gensail algorithms publish FILE.wasm --server URL`: publishes a component
//! to a running service over its API, with the token from `GENSAIL_TOKEN`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

/// What to publish and how.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The component file.
    pub file: std::path::PathBuf,
    /// The service's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "GENSAIL_SERVER")]
    pub server: String,
    /// A platform key, or a partner key for the partner's own algorithms.
    #[arg(long, env = "GENSAIL_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The manifest (scope, description, default config, limits…): JSON text or @FILE.
    #[arg(long)]
    pub manifest: Option<String>,
    /// Store the version without activating it (compare it first).
    #[arg(long)]
    pub no_activate: bool,
    /// A golden job to compare on before activating (repeatable).
    #[arg(long = "golden")]
    pub golden_job_ids: Vec<i64>,
}

/// Sends the publish and prints the service's answer; fails on an error answer.
pub async fn publish(args: PublishArgs, engine: gensail_engine::EngineConfig) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let mut manifest = match &args.manifest {
        Some(text) => super::read_json_object(text, "--manifest")?,
        None => serde_json::json!({}),
    };
    if args.no_activate {
        manifest["activate"] = false.into();
    }
    if !args.golden_job_ids.is_empty() {
        manifest["golden_job_ids"] = args.golden_job_ids.clone().into();
    }
    // The server checks the key's rights on the ID before it compiles
    // anything, so the manifest names it: read it from the component here.
    if manifest.get("algorithm_id").is_none() {
        let engine = gensail_engine::Engine::new(engine)?;
        let info = engine
            .inspect(&bytes)
            .await
            .with_context(|| format!("{} does not load as an algorithm", args.file.display()))?;
        manifest["algorithm_id"] = info.id.into();
    }
    let file_name = Path::new(&args.file)
        .file_name()
        .map_or_else(|| "component.wasm".to_owned(), |n| n.to_string_lossy().into_owned());
    let form = reqwest::multipart::Form::new()
        .part(
            "component",
            reqwest::multipart::Part::bytes(bytes)
                .file_name(file_name)
                .mime_str("application/wasm")?,
        )
        .part(
            "manifest",
            reqwest::multipart::Part::text(manifest.to_string()).mime_str("application/json")?,
        );
    let url = format!("{}/api/v1/algorithms", args.server.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(args.token.trim())
        .multipart(form)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("{url} answered {status} without JSON"))?;
    if status.is_success() {
        super::print_out(serde_json::to_string_pretty(&body)?)?;
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {status}: {}",
            body["detail"]
                .as_str()
                .map_or_else(|| body["detail"].to_string(), str::to_owned)
        );
        Ok(ExitCode::FAILURE)
    }
}
