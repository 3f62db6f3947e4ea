//! Directory hot-load (`gensail serve --plugins-dir DIR`): every `.wasm` in
//! the directory is published as a platform operator would publish it, at
//! start and whenever a file appears or changes.
//!
//! - A bad file is refused with a logged reason; the version already active keeps serving.
//! - A file is handled once per content (by sha256), so touching it does nothing.
//! - A removed file unloads nothing: jobs may still reference the algorithm,
//!   and retiring one is an explicit `POST /api/v1/algorithms/{id}/disable`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use crate::state::AppState;

/// How long the directory must be quiet before changed files are read: a
/// file being copied in fires several events, and is only read once whole.
const SETTLE: Duration = Duration::from_millis(200);

/// What was last handled per path: the sha256 of its content.
pub type Seen = HashMap<PathBuf, String>;

/// Publishes every `.wasm` file in `dir` that changed since `seen`.
pub async fn scan(state: &AppState, dir: &Path, seen: &mut Seen) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("cannot read plugins directory {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        handle(state, &path, seen).await;
    }
    Ok(())
}

/// Watches `dir` until `stop` turns true, publishing new and changed files.
pub async fn run(state: AppState, dir: PathBuf, mut seen: Seen, mut stop: watch::Receiver<bool>) {
    let (tx, mut events) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let _ = tx.send(event);
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            return tracing::error!(dir = %dir.display(), error = %e, "cannot watch the plugins directory; hot-load is off");
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        return tracing::error!(dir = %dir.display(), error = %e, "cannot watch the plugins directory; hot-load is off");
    }
    // Files that changed between the start-up scan and the watch starting.
    if let Err(e) = scan(&state, &dir, &mut seen).await {
        tracing::warn!(error = %e, "cannot rescan the plugins directory");
    }
    tracing::info!(dir = %dir.display(), "watching the plugins directory");
    loop {
        let mut changed = HashSet::new();
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => collect(event, &mut changed),
                None => break,
            },
            _ = stop.changed() => break,
        }
        // Let a copy finish: wait until no event has come for SETTLE.
        while let Ok(Some(event)) = tokio::time::timeout(SETTLE, events.recv()).await {
            collect(event, &mut changed);
        }
        let mut changed: Vec<PathBuf> = changed.into_iter().collect();
        changed.sort();
        for path in changed {
            handle(&state, &path, &mut seen).await;
        }
    }
    drop(watcher);
}

fn collect(event: notify::Result<notify::Event>, changed: &mut HashSet<PathBuf>) {
    match event {
        Ok(event)
            if matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
            ) =>
        {
            changed.extend(event.paths)
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "plugins directory watch error"),
    }
}

/// Publishes one path if it is a `.wasm` file whose content is new.
async fn handle(state: &AppState, path: &Path, seen: &mut Seen) {
    if path.extension().is_none_or(|e| e != "wasm") {
        return;
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if seen.remove(path).is_some() {
                state.metrics.plugin_file("removed");
                tracing::info!(path = %path.display(), "plugin file removed; its algorithm stays loaded until disabled (POST /api/v1/algorithms/{{id}}/disable)");
            }
            return;
        }
        Err(e) => return tracing::warn!(path = %path.display(), error = %e, "cannot read plugin file"),
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    if seen.get(path) == Some(&sha256) {
        return;
    }
    seen.insert(path.to_owned(), sha256);
    match super::publish_bytes(state, &bytes, "directory").await {
        Ok(outcome) if outcome.already_published => {
            state.metrics.plugin_file("unchanged");
            tracing::debug!(path = %path.display(), id = %outcome.version.algorithm_id, version = %outcome.version.version, "plugin already published")
        }
        Ok(outcome) => {
            state.metrics.plugin_file("published");
            tracing::info!(
                path = %path.display(), id = %outcome.version.algorithm_id, version = %outcome.version.version,
                activated = outcome.activated, "plugin published from the plugins directory"
            )
        }
        Err(e) => {
            state.metrics.plugin_file("refused");
            tracing::warn!(path = %path.display(), error = %e, "plugin refused; the active version keeps serving")
        }
    }
}
