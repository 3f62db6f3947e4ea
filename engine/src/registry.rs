//! The concurrent registry of loaded algorithms, by ID.

use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::{LoadError, LoadedAlgorithm};

/// Loaded algorithms by ID. Several IDs of one family (`rise_dds_v4`,
/// `rise_dds_v5`) live side by side. Replacing an ID is atomic: a run that
/// already holds the old `Arc` finishes on it, later runs get the new one.
#[derive(Default)]
pub struct Registry {
    algorithms: DashMap<String, Arc<LoadedAlgorithm>>,
}

impl Registry {
    /// Registers an algorithm. If its ID is already loaded, the new one must
    /// have a newer semver version; it then replaces the old, which is returned.
    pub fn install(&self, algorithm: Arc<LoadedAlgorithm>) -> Result<Option<Arc<LoadedAlgorithm>>, LoadError> {
        match self.algorithms.entry(algorithm.info.id.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(algorithm);
                Ok(None)
            }
            Entry::Occupied(mut slot) => {
                let loaded = &slot.get().info.version;
                if algorithm.info.version <= *loaded {
                    return Err(LoadError::NotNewer {
                        id: algorithm.info.id.clone(),
                        loaded: loaded.clone(),
                        offered: algorithm.info.version.clone(),
                    });
                }
                Ok(Some(slot.insert(algorithm)))
            }
        }
    }

    /// Makes `algorithm` the one served under its ID whatever its version
    /// (a rollback, or the version a database says is active); returns the
    /// one it replaced. Runs in flight finish on the old one.
    pub fn activate(&self, algorithm: Arc<LoadedAlgorithm>) -> Option<Arc<LoadedAlgorithm>> {
        self.algorithms.insert(algorithm.info.id.clone(), algorithm)
    }

    /// The algorithm loaded under `id`.
    pub fn get(&self, id: &str) -> Option<Arc<LoadedAlgorithm>> {
        self.algorithms.get(id).map(|a| a.clone())
    }

    /// Unloads `id`; runs in flight finish on it.
    pub fn remove(&self, id: &str) -> Option<Arc<LoadedAlgorithm>> {
        self.algorithms.remove(id).map(|(_, a)| a)
    }

    /// Every loaded algorithm, sorted by ID.
    pub fn list(&self) -> Vec<Arc<LoadedAlgorithm>> {
        let mut all: Vec<_> = self.algorithms.iter().map(|a| a.value().clone()).collect();
        all.sort_by(|a, b| a.info.id.cmp(&b.info.id));
        all
    }
}
