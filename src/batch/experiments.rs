//! Running an experiment: each side's version fixed at creation, each call's
//! pair of runs (reused when the same component, config and transcript ran
//! before), and the summary once every call is done.

use std::sync::Arc;

use gensail_engine::LoadedAlgorithm;
use gensail_host_api::Transcript;

use super::compare::{Summary, differing_paths};
use crate::jobs::{AlgorithmStatus, BatchStatus};
use crate::state::AppState;
use crate::store::{ExperimentChunk, ExperimentRow, Side, SideResult, StoreError, StoreResult, Workspace};

/// Why a side cannot be used (the API answers 422 naming the field).
#[derive(Debug, thiserror::Error)]
pub enum SideError {
    /// No such algorithm, or not available to the workspace.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Resolves `id` or `id@version` for a workspace: the version (the active
/// one when none is pinned), its component, and the config (`config`, else
/// the workspace's assigned config, else `{}`).
pub async fn resolve_side(
    state: &AppState,
    workspace: &Workspace,
    field: &str,
    spec: &str,
    config: Option<serde_json::Value>,
) -> Result<Side, SideError> {
    let (id, pinned) = match spec.split_once('@') {
        Some((id, version)) => (id, Some(version)),
        None => (spec, None),
    };
    let unavailable = |why: String| SideError::Unavailable(format!("{field}: {why}"));
    if id.is_empty() || !state.store.unavailable(workspace, &[id.to_owned()]).await?.is_empty() {
        return Err(unavailable(format!(
            "algorithm {id:?} is not available to workspace {}; GET /api/v1/algorithms lists what it can run",
            workspace.id
        )));
    }
    let version = match pinned {
        Some(v) => {
            let parsed = semver::Version::parse(v)
                .map_err(|_| unavailable(format!("{v:?} is not a version (use {id}@1.2.0)")))?;
            match state.store.version(id, &parsed.to_string()).await {
                Ok(row) => row,
                Err(StoreError::NotFound(_)) => {
                    return Err(unavailable(format!(
                        "{id} has no published version {v}; GET /api/v1/algorithms/{id}/versions lists them"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => {
            let algorithm = state.store.algorithm(id).await?;
            if algorithm.status != AlgorithmStatus::Active {
                return Err(unavailable(format!(
                    "{id} is {}; pin a version ({id}@1.2.0)",
                    algorithm.status
                )));
            }
            state.store.version(id, &algorithm.version).await?
        }
    };
    let config = match config {
        Some(c) => c,
        None => match state.store.algorithm_config(workspace.id, id).await {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => serde_json::json!({}),
            Err(e) => return Err(e.into()),
        },
    };
    Ok(Side {
        algorithm_id: id.to_owned(),
        version: version.version,
        component_sha256: version.component_sha256,
        config_sha256: crate::store::config_sha256(&config),
        config,
    })
}

/// The loaded component of a side: the registry's when it is the active
/// one, else loaded from the store once per process.
async fn load(state: &AppState, side: &Side) -> anyhow::Result<Arc<LoadedAlgorithm>> {
    if let Some(active) = state.engine.registry().get(&side.algorithm_id)
        && active.info.sha256 == side.component_sha256
    {
        return Ok(active);
    }
    if let Some(loaded) = state.batch_versions.get(&side.component_sha256) {
        return Ok(loaded.clone());
    }
    let loaded = crate::lifecycle::load_version(&state.engine, &state.store, &side.algorithm_id, &side.version).await?;
    anyhow::ensure!(
        loaded.info.sha256 == side.component_sha256,
        "{} {} is now a different component than when the experiment was created",
        side.algorithm_id,
        side.version
    );
    // A handful of versions at a time; an old one is loaded again if needed.
    if state.batch_versions.len() >= 16 {
        state.batch_versions.clear();
    }
    state
        .batch_versions
        .insert(side.component_sha256.clone(), loaded.clone());
    Ok(loaded)
}

/// Runs a claimed chunk: both sides on each call (reusing stored runs),
/// stores the outcomes, and completes the experiment after its last call.
pub async fn process(state: &AppState, worker: &str, chunk: ExperimentChunk) {
    let id = chunk.experiment.experiment_id;
    if let Err(e) = run_chunk(state, worker, &chunk).await {
        tracing::error!(experiment_id = id, error = %e, "experiment chunk not stored; its calls run again when the lease ends");
    }
}

async fn run_chunk(state: &AppState, worker: &str, chunk: &ExperimentChunk) -> anyhow::Result<()> {
    let experiment = &chunk.experiment;
    let sides = [&experiment.baseline, &experiment.candidate];
    let mut loaded = Vec::with_capacity(2);
    for side in sides {
        match load(state, side).await {
            Ok(a) => loaded.push(a),
            Err(e) => {
                let message = format!("cannot load {} {}: {e}", side.algorithm_id, side.version);
                tracing::error!(experiment_id = experiment.experiment_id, %message, "experiment failed");
                state.store.fail_experiment(experiment.experiment_id, &message).await?;
                return Ok(());
            }
        }
    }
    // Stored runs to reuse, looked up for the whole chunk at once per side.
    let transcripts: Vec<&str> = chunk.items.iter().map(|i| i.transcript_sha256.as_str()).collect();
    let mut reusable = Vec::with_capacity(2);
    for side in sides {
        reusable.push(
            state
                .store
                .reusable_runs(side, &transcripts, experiment.workspace_id)
                .await?,
        );
    }
    let mut results = Vec::with_capacity(chunk.items.len());
    for item in &chunk.items {
        let mut transcript: Option<Transcript> = None;
        let mut pair = Vec::with_capacity(2);
        for ((side, algorithm), stored) in sides.iter().zip(&loaded).zip(&reusable) {
            if let Some(reused) = stored.get(&item.transcript_sha256) {
                pair.push(SideResult::Reused(reused.clone()));
                continue;
            }
            if transcript.is_none() {
                transcript = Some(state.store.transcript(&item.transcript_sha256).await?);
            }
            let input = transcript.as_ref().expect("read above");
            let report = state
                .engine
                .run_loaded(algorithm, input, &side.config.to_string())
                .await;
            state.metrics.record_run(&report);
            pair.push(SideResult::Ran(Box::new(report)));
        }
        let outputs: Vec<Option<&serde_json::Value>> = pair.iter().map(completed_output).collect();
        let differing = match (outputs[0], outputs[1]) {
            (Some(b), Some(c)) => Some(differing_paths(&experiment.compare, b, c)),
            _ => None,
        };
        let [baseline, candidate]: [SideResult; 2] = pair.try_into().expect("two sides");
        results.push((item.clone(), [baseline, candidate], differing));
    }
    let left = state.store.finish_experiment_items(chunk, worker, results).await?;
    if left <= 0 {
        let current = state.store.experiment(experiment.experiment_id).await?;
        if current.status == BatchStatus::Running {
            let summary = summarize(state, &current).await?;
            let summary = serde_json::to_value(summary)?;
            if state.store.complete_experiment(current.experiment_id, &summary).await? {
                tracing::info!(experiment_id = current.experiment_id, "experiment completed");
            }
        }
    }
    Ok(())
}

fn completed_output(result: &SideResult) -> Option<&serde_json::Value> {
    match result {
        SideResult::Reused(outcome) => outcome.output.as_ref().filter(|_| outcome.completed()),
        SideResult::Ran(report) => report.output.as_ref().filter(|_| report.error.is_none()),
    }
}

/// The summary over every done call: the stored one of a completed
/// experiment, else computed now, a page of calls at a time.
pub async fn summarize(state: &AppState, experiment: &ExperimentRow) -> StoreResult<Summary> {
    if let Some(stored) = &experiment.summary
        && let Ok(summary) = serde_json::from_value::<Summary>(stored.clone())
    {
        return Ok(summary);
    }
    let mut summary = Summary::new(&experiment.compare);
    let mut after = 0;
    loop {
        let page = state
            .store
            .experiment_items(experiment.experiment_id, after, 1000, false)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.item_id;
        for item in &page {
            summary.add(item);
        }
    }
    Ok(summary.finish())
}
