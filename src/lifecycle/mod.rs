//! The algorithm lifecycle: publishing versions, activating, rolling back,
//! and keeping this process's engine in step with the database.
//!
//! The database says which version of each algorithm is active; the engine's
//! registry is this process's copy of that, kept in step by [`sync`]. Every
//! change (a publish over the API, a file in `--plugins-dir`, a rollback)
//! writes the database first and then syncs, so a restart, or another server
//! of the deployment, loads exactly the same versions.
//!
//! # Layout
//! - this file: [`Manifest`], [`prepare`] and [`commit`] (a publish in two
//!   steps, so the API can authorize against the ID the component declares),
//!   [`sync`], and the bundled algorithms' registration at start.
//! - [`golden`]: runs a version beside the active one on stored jobs and reports the differences.
//! - [`watch`]: hot-loads `.wasm` files from a directory.
//!
//! Other servers' changes reach this one through [`follow`], which re-reads
//! the active versions every few seconds (one small query) and loads what changed.

pub mod golden;
pub mod watch;

use std::sync::Arc;

use gensail_engine::{Engine, LimitOverrides, LoadError, LoadedAlgorithm};
use serde::Deserialize;
use serde_json::Value;

use crate::jobs::{AlgorithmScope, AlgorithmStatus};
use crate::state::AppState;
use crate::store::{AlgorithmRow, NewVersion, PublishRecord, Published, Store, StoreError, VersionRow};
use golden::GoldenReport;

/// What a publisher says about a component besides its bytes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The algorithm ID the component's `metadata()` gives, said up front so
    /// the publisher's rights on it are checked before anything is compiled.
    /// Required for partner keys; the compiled metadata must match it.
    pub algorithm_id: Option<String>,
    /// `global`, `partner`, `organization` or `workspace` (a new ID only;
    /// default: global for platform keys, the key's partner for partner keys).
    pub scope_type: Option<AlgorithmScope>,
    /// The partner or organization of a `partner` / `organization` scope.
    pub scope_id: Option<i64>,
    /// Replaces the description the component's metadata gives.
    pub description: Option<String>,
    /// The algorithm's default config (a JSON object).
    pub default_config: Option<Value>,
    /// Limit overrides for runs of this version.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// Make it the active version at once (default true).
    pub activate: Option<bool>,
    /// Stored jobs to compare on before activating; they join the algorithm's golden set.
    #[serde(default)]
    pub golden_job_ids: Vec<i64>,
    /// Run the golden gate (default: on whenever the algorithm has golden jobs).
    pub golden_gate: Option<bool>,
}

impl Manifest {
    /// Whether the version becomes active.
    pub fn activate(&self) -> bool {
        self.activate.unwrap_or(true)
    }
}

/// Why a publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The component failed validation (not a component, wrong WIT, bad metadata…).
    #[error("{0}")]
    Invalid(#[from] LoadError),
    /// The manifest is malformed.
    #[error("{0}")]
    Manifest(String),
    /// The version conflicts with what is published (downgrade, changed bytes).
    #[error("{0}")]
    Conflict(String),
    /// The new version failed on golden jobs where the active one succeeded.
    #[error("{0}")]
    GateFailed(String),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for PublishError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => Self::Conflict(message),
            other => Self::Store(other),
        }
    }
}

/// What a publish did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PublishOutcome {
    /// The algorithm after the publish.
    pub algorithm: AlgorithmRow,
    /// The version published.
    pub version: VersionRow,
    /// Whether new runs now use it.
    pub activated: bool,
    /// The version active before (what `rollback` returns to).
    pub previous_version: Option<String>,
    /// True when exactly this component was already published: nothing changed.
    pub already_published: bool,
    /// The golden comparison, when the gate ran.
    pub golden: Option<GoldenReport>,
}

/// Where a version comes from, and who publishes it.
#[derive(Debug, Clone, Copy)]
pub struct Publisher {
    /// `api`, `directory` or `bundled`.
    pub source: &'static str,
    /// The API key (for the record).
    pub key_id: Option<i64>,
}

/// Validates and compiles a component (exactly as the engine does at load)
/// with the manifest's limits, without storing or activating anything.
pub async fn prepare(engine: &Engine, bytes: &[u8], manifest: &Manifest) -> Result<Arc<LoadedAlgorithm>, PublishError> {
    if manifest.default_config.as_ref().is_some_and(|c| !c.is_object()) {
        return Err(PublishError::Manifest("default_config must be a JSON object".into()));
    }
    Ok(engine.load_any(bytes, manifest.limits).await?)
}

/// Stores a prepared version and, unless the manifest says otherwise or the
/// golden gate finds a regression, activates it in the database and in this
/// process. `scope` is the scope of a new ID (the caller has checked it).
pub async fn commit(
    state: &AppState,
    candidate: &Arc<LoadedAlgorithm>,
    bytes: &[u8],
    manifest: &Manifest,
    scope: (AlgorithmScope, Option<i64>),
    publisher: Publisher,
) -> Result<PublishOutcome, PublishError> {
    let info = &candidate.info;
    let id = info.id.as_str();
    // The gate only for a version that can be stored as new: the same version
    // again changes nothing, an older one is refused (the transaction decides
    // both, so a concurrent publish cannot slip past).
    let known = state.store.versions(id).await?;
    let not_newer = known
        .iter()
        .any(|v| semver::Version::parse(&v.version).is_ok_and(|k| k >= info.version));
    let golden = if not_newer {
        None
    } else {
        gate(state, candidate, manifest).await?
    };
    let record = PublishRecord {
        scope_type: scope.0,
        scope_id: scope.1,
        default_config: manifest.default_config.clone(),
        activate: manifest.activate(),
        goldens: manifest.golden_job_ids.clone(),
    };
    let description = manifest.description.as_deref().unwrap_or(&info.description);
    let limits = serde_json::to_value(manifest.limits).map_err(|e| PublishError::Manifest(e.to_string()))?;
    let new = NewVersion {
        algorithm_id: id,
        version: &info.version,
        component_sha256: &info.sha256,
        bytes,
        description,
        wit_version: info.wit_version.to_string(),
        limits,
        source: publisher.source,
        key_id: publisher.key_id,
    };
    let published = state.store.publish_version(&new, &record).await?;
    sync(&state.engine, &state.store, id, Some(candidate)).await?;
    let (activated, previous_version, already_published) = match published {
        Published::New {
            activated,
            previous_version,
        } => (activated, previous_version, false),
        Published::AlreadyPublished => (false, None, true),
    };
    Ok(PublishOutcome {
        algorithm: state.store.algorithm(id).await?,
        version: state.store.version(id, &info.version.to_string()).await?,
        activated,
        previous_version,
        already_published,
        golden,
    })
}

/// Runs the golden gate when it applies: the manifest activates, a version
/// is active to compare with, and the algorithm has golden jobs (stored or
/// named now). Refuses the publish if the candidate fails where the active
/// version succeeded.
async fn gate(
    state: &AppState,
    candidate: &Arc<LoadedAlgorithm>,
    manifest: &Manifest,
) -> Result<Option<GoldenReport>, PublishError> {
    let id = &candidate.info.id;
    if manifest.golden_gate == Some(false) {
        return Ok(None);
    }
    let Some(active) = state.engine.registry().get(id) else {
        return Ok(None);
    };
    if active.info.sha256 == candidate.info.sha256 {
        return Ok(None);
    }
    let mut jobs = state.store.goldens(id).await.map_err(PublishError::Store)?;
    for job in &manifest.golden_job_ids {
        if !jobs.contains(job) {
            jobs.push(*job);
        }
    }
    if jobs.is_empty() {
        return Ok(None);
    }
    let report = golden::compare(state, &active, candidate, &jobs)
        .await
        .map_err(PublishError::Store)?;
    if manifest.activate() && !report.regressions.is_empty() {
        return Err(PublishError::GateFailed(format!(
            "{id} {} failed on golden jobs {:?} where the active version {} succeeded ({}); nothing was published. \
             Fix the plugin, or publish with \"activate\": false to store it for comparison, or \"golden_gate\": false to skip the gate",
            candidate.info.version,
            report.regressions,
            active.info.version,
            report.regression_summary(),
        )));
    }
    Ok(Some(report))
}

/// Makes this process serve what the database says about `id`: its active
/// version (loaded from the stored component unless `hint` already is that
/// component), or nothing when it is disabled or was never activated.
pub async fn sync(
    engine: &Engine,
    store: &Store,
    id: &str,
    hint: Option<&Arc<LoadedAlgorithm>>,
) -> Result<(), StoreError> {
    let row = store.algorithm(id).await?;
    if let Err(e) = sync_row(engine, store, &row, hint).await {
        // The previous version (if any) keeps serving; the operator sees why.
        tracing::error!(algorithm_id = id, version = %row.version, error = %e, "cannot load the active version");
    }
    Ok(())
}

/// Versions this process could not load, by (algorithm ID, sha256): not tried
/// again every sync (nor logged again) until the database names another.
pub type LoadFailures = std::collections::HashSet<(String, String)>;

async fn sync_row(
    engine: &Engine,
    store: &Store,
    row: &AlgorithmRow,
    hint: Option<&Arc<LoadedAlgorithm>>,
) -> anyhow::Result<()> {
    let id = row.algorithm_id.as_str();
    if row.status != AlgorithmStatus::Active {
        if engine.registry().remove(id).is_some() {
            tracing::info!(algorithm_id = id, status = %row.status, "algorithm unloaded");
        }
        return Ok(());
    }
    if engine
        .registry()
        .get(id)
        .is_some_and(|a| a.info.sha256 == row.component_sha256)
    {
        return Ok(());
    }
    let algorithm = match hint.filter(|h| h.info.sha256 == row.component_sha256) {
        Some(h) => h.clone(),
        None => load_version(engine, store, id, &row.version).await?,
    };
    engine.registry().activate(algorithm);
    tracing::info!(algorithm_id = id, version = %row.version, "algorithm version active");
    Ok(())
}

/// Syncs every algorithm the database knows (one query; loads only what
/// changed, and skips versions already in `failures`).
pub async fn sync_all(
    engine: &Engine,
    store: &Store,
    hints: &[Arc<LoadedAlgorithm>],
    failures: &mut LoadFailures,
) -> Result<(), StoreError> {
    for row in store.all_algorithms().await? {
        let key = (row.algorithm_id.clone(), row.component_sha256.clone());
        if failures.contains(&key) {
            continue;
        }
        let hint = hints.iter().find(|h| h.info.id == row.algorithm_id);
        if let Err(e) = sync_row(engine, store, &row, hint).await {
            tracing::error!(algorithm_id = %row.algorithm_id, version = %row.version, error = %e, "cannot load the active version; the previous one (if any) keeps serving");
            failures.insert(key);
        }
    }
    Ok(())
}

/// Keeps this process in step with versions published, activated or
/// disabled by other servers of the deployment: syncs every `interval` until
/// `stop` turns true.
pub async fn follow(state: AppState, interval: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut failures = LoadFailures::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {
                if let Err(e) = sync_all(&state.engine, &state.store, &[], &mut failures).await {
                    tracing::warn!(error = %e, "cannot read the active algorithm versions");
                }
            }
            _ = stop.changed() => break,
        }
    }
}

/// Loads a stored version with its limits.
pub async fn load_version(
    engine: &Engine,
    store: &Store,
    id: &str,
    version: &str,
) -> anyhow::Result<Arc<LoadedAlgorithm>> {
    let row = store.version(id, version).await?;
    let bytes = store.component_bytes(&row.component_sha256).await?;
    let limits: LimitOverrides = serde_json::from_value(row.limits)?;
    Ok(engine.load(id, &bytes, limits).await?)
}

/// Records the algorithms bundled in the binary. A bundled version new to the
/// database is stored, and activated when it is newer than the active one (a
/// binary upgrade ships newer plugins); a version the database already has is
/// left alone, so an operator's rollback survives restarts.
pub async fn register_bundled(state: &AppState) -> anyhow::Result<Vec<Arc<LoadedAlgorithm>>> {
    let mut loaded = Vec::new();
    for (id, bytes) in crate::bundled::BUNDLED {
        let algorithm = state.engine.load(id, bytes, LimitOverrides::default()).await?;
        let info = &algorithm.info;
        let version = info.version.to_string();
        match state.store.version(id, &version).await {
            Ok(stored) if stored.component_sha256 == info.sha256 => {}
            Ok(stored) if stored.source == "bundled" => {
                tracing::warn!(algorithm_id = id, %version, "bundled component changed without a version bump; storing the new build under the same version");
                state
                    .store
                    .replace_bundled_component(id, &version, &info.sha256, bytes)
                    .await?;
            }
            Ok(stored) => tracing::warn!(
                algorithm_id = id, %version, source = %stored.source,
                "the bundled build differs from the published component of the same version; keeping the published one"
            ),
            Err(StoreError::NotFound(_)) => {
                let active = state
                    .store
                    .algorithm(id)
                    .await
                    .ok()
                    .filter(|a| a.status != AlgorithmStatus::Inactive);
                let newer = active
                    .as_ref()
                    .is_none_or(|a| semver::Version::parse(&a.version).is_ok_and(|v| info.version > v));
                let manifest = Manifest {
                    activate: Some(newer),
                    golden_gate: Some(false),
                    ..Manifest::default()
                };
                match commit(
                    state,
                    &algorithm,
                    bytes,
                    &manifest,
                    (AlgorithmScope::Global, None),
                    Publisher {
                        source: "bundled",
                        key_id: None,
                    },
                )
                .await
                {
                    Ok(_) | Err(PublishError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
        loaded.push(algorithm);
    }
    Ok(loaded)
}

/// Publishes a component as a platform operator would (global scope for a
/// new ID, activated, golden gate when the algorithm has goldens). Used for
/// `--plugins-dir` files.
pub async fn publish_bytes(
    state: &AppState,
    bytes: &[u8],
    source: &'static str,
) -> Result<PublishOutcome, PublishError> {
    let manifest = Manifest::default();
    let candidate = prepare(&state.engine, bytes, &manifest).await?;
    commit(
        state,
        &candidate,
        bytes,
        &manifest,
        (AlgorithmScope::Global, None),
        Publisher { source, key_id: None },
    )
    .await
}
