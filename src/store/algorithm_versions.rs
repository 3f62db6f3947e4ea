//! Published versions of algorithms: the component bytes (content-addressed),
//! each version's record, which version is active, the activation history
//! that `rollback` reads, and each algorithm's golden jobs.
//!
//! The database, not a process's memory, is the truth about which version of
//! an algorithm is active: every server loads what these rows say (see
//! `crate::lifecycle::sync`).

use semver::Version;
use serde::Serialize;

use super::db::{query, query_scalar};
use super::{AlgorithmRow, Store, StoreError, StoreResult, from_json};
use crate::jobs::{AlgorithmScope, AlgorithmStatus};

/// One published version of an algorithm, as `GET /algorithms/{id}/versions` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionRow {
    /// The algorithm ID.
    pub algorithm_id: String,
    /// Semver version.
    pub version: String,
    /// sha256 of the component.
    pub component_sha256: String,
    /// What this version says it does.
    pub description: String,
    /// The `gensail:algorithm` WIT version it was built against.
    pub wit_version: String,
    /// Component size.
    pub size_bytes: i64,
    /// Limit overrides from its manifest (`{}`: the engine's defaults).
    pub limits: serde_json::Value,
    /// `bundled`, `api` or `directory`.
    pub source: String,
    /// Whether new runs use this version now.
    pub active: bool,
    /// When it was published.
    pub created_at: String,
}

/// A version to store.
#[derive(Debug)]
pub struct NewVersion<'a> {
    /// The algorithm ID (from the component's metadata).
    pub algorithm_id: &'a str,
    /// Its version.
    pub version: &'a Version,
    /// sha256 of `bytes`.
    pub component_sha256: &'a str,
    /// The component.
    pub bytes: &'a [u8],
    /// Description (the manifest's, else the metadata's).
    pub description: &'a str,
    /// The WIT version it was built against.
    pub wit_version: String,
    /// Limit overrides (JSON object).
    pub limits: serde_json::Value,
    /// `bundled`, `api` or `directory`.
    pub source: &'a str,
    /// The key that published it (none for bundled and directory).
    pub key_id: Option<i64>,
}

/// What a publish does besides storing the version.
#[derive(Debug, Clone)]
pub struct PublishRecord {
    /// Scope of a new algorithm ID (an existing ID keeps its own).
    pub scope_type: AlgorithmScope,
    /// The partner or organization of that scope.
    pub scope_id: Option<i64>,
    /// Replaces the algorithm's default config when given.
    pub default_config: Option<serde_json::Value>,
    /// Make it the active version now.
    pub activate: bool,
    /// Jobs to add to the algorithm's golden set.
    pub goldens: Vec<i64>,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// A new version was stored.
    New {
        /// Whether it is now the active version.
        activated: bool,
        /// The version that was active before (none for a new ID).
        previous_version: Option<String>,
    },
    /// Exactly this component was already published under this version: nothing changed.
    AlreadyPublished,
}

fn version_row(r: &super::Row) -> StoreResult<VersionRow> {
    Ok(VersionRow {
        algorithm_id: r.get("algorithm_id"),
        version: r.get("version"),
        component_sha256: r.get("component_sha256"),
        description: r.get("description"),
        wit_version: r.get("wit_version"),
        size_bytes: r.get("size_bytes"),
        limits: from_json(r.get::<&str, _>("limits"))?,
        source: r.get("source"),
        active: r.try_get::<AlgorithmStatus, _>("algorithm_status")? == AlgorithmStatus::Active
            && r.get::<&str, _>("algorithm_version") == r.get::<&str, _>("version"),
        created_at: r.get("created_at"),
    })
}

/// A version with its algorithm's status and version, to tell whether it is the active one.
const VERSION_COLUMNS: &str = "v.*, a.status AS algorithm_status, a.version AS algorithm_version
     FROM algorithm_versions v JOIN algorithms a ON a.id = v.algorithm_id";

fn parse_version(text: &str) -> StoreResult<Version> {
    Version::parse(text).map_err(|e| StoreError::Corrupt(format!("stored version {text:?}: {e}")))
}

impl Store {
    /// Stores a version (and its component, once per distinct content) and,
    /// when asked, activates it, in one transaction. A version must be newer
    /// than every version of the ID published before; the same version with
    /// the same bytes is [`Published::AlreadyPublished`], with other bytes a
    /// conflict.
    pub async fn publish_version(&self, v: &NewVersion<'_>, r: &PublishRecord) -> StoreResult<Published> {
        let now = self.now();
        let version = v.version.to_string();
        let mut tx = self.pool.begin().await?;
        // Write first: SQLite then holds the write lock for the reads below
        // instead of failing to upgrade a read snapshot.
        Self::put_component(&mut tx, v.component_sha256, v.bytes, &now).await?;
        let before = query("SELECT version, status FROM algorithms WHERE id = $1")
            .bind(v.algorithm_id)
            .fetch_optional(&mut *tx)
            .await?;
        if before.is_none() {
            query(
                "INSERT INTO algorithms (id, version, component_sha256, description, scope_type, scope_id, default_config, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (id) DO NOTHING",
            )
            .bind(v.algorithm_id)
            .bind(&version)
            .bind(v.component_sha256)
            .bind(v.description)
            .bind(r.scope_type)
            .bind(r.scope_id)
            .bind(r.default_config.as_ref().map_or_else(|| "{}".to_owned(), |c| c.to_string()))
            .bind(if r.activate { AlgorithmStatus::Active } else { AlgorithmStatus::Inactive })
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        let inserted = query(
            "INSERT INTO algorithm_versions (algorithm_id, version, component_sha256, description, wit_version, size_bytes, limits, source, published_by_key_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (algorithm_id, version) DO NOTHING",
        )
        .bind(v.algorithm_id)
        .bind(&version)
        .bind(v.component_sha256)
        .bind(v.description)
        .bind(&v.wit_version)
        .bind(v.bytes.len() as i64)
        .bind(v.limits.to_string())
        .bind(v.source)
        .bind(v.key_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            let stored: String = query_scalar(
                "SELECT component_sha256 FROM algorithm_versions WHERE algorithm_id = $1 AND version = $2",
            )
            .bind(v.algorithm_id)
            .bind(&version)
            .fetch_one(&mut *tx)
            .await?;
            tx.rollback().await?;
            return if stored == v.component_sha256 {
                Ok(Published::AlreadyPublished)
            } else {
                Err(StoreError::Conflict(format!(
                    "{} {version} is already published with a different component (sha256 {stored}); a published version never changes: give the new build a new version",
                    v.algorithm_id
                )))
            };
        }
        let others: Vec<String> =
            query_scalar("SELECT version FROM algorithm_versions WHERE algorithm_id = $1 AND version <> $2")
                .bind(v.algorithm_id)
                .bind(&version)
                .fetch_all(&mut *tx)
                .await?;
        let mut newest: Option<Version> = None;
        for other in &others {
            let other = parse_version(other)?;
            if newest.as_ref().is_none_or(|n| other > *n) {
                newest = Some(other);
            }
        }
        if let Some(newest) = newest.filter(|n| n >= v.version) {
            tx.rollback().await?;
            return Err(StoreError::Conflict(format!(
                "{id} already has version {newest}; a new version must be newer than {newest}, and {version} is not. \
                 To serve an earlier version again, roll back: POST /api/v1/algorithms/{id}/rollback",
                id = v.algorithm_id
            )));
        }
        let previous_version = match before {
            Some(b) if b.try_get::<AlgorithmStatus, _>("status")? != AlgorithmStatus::Inactive => {
                Some(b.get::<String, _>("version"))
            }
            _ => None,
        };
        if let Some(config) = &r.default_config {
            query("UPDATE algorithms SET default_config = $1, updated_at = $2 WHERE id = $3")
                .bind(config.to_string())
                .bind(&now)
                .bind(v.algorithm_id)
                .execute(&mut *tx)
                .await?;
        }
        if r.activate {
            Self::activate_in(&mut tx, v.algorithm_id, &version, "publish", v.key_id, &now).await?;
        }
        for job_id in &r.goldens {
            query("INSERT INTO algorithm_goldens (algorithm_id, job_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(v.algorithm_id)
                .bind(job_id)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Published::New {
            activated: r.activate,
            previous_version,
        })
    }

    /// Stores component bytes once per distinct sha256.
    async fn put_component(tx: &mut super::Conn, sha256: &str, bytes: &[u8], now: &str) -> StoreResult<()> {
        query("INSERT INTO components (sha256, bytes, size_bytes, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING")
            .bind(sha256)
            .bind(bytes)
            .bind(bytes.len() as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Makes a published version the active one (and the algorithm runnable)
    /// and records why (`action`: activate, rollback).
    pub async fn activate_version(
        &self,
        algorithm_id: &str,
        version: &str,
        action: &str,
        key_id: Option<i64>,
    ) -> StoreResult<AlgorithmRow> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        Self::activate_in(&mut tx, algorithm_id, version, action, key_id, &now).await?;
        tx.commit().await?;
        self.algorithm(algorithm_id).await
    }

    async fn activate_in(
        tx: &mut super::Conn,
        algorithm_id: &str,
        version: &str,
        action: &str,
        key_id: Option<i64>,
        now: &str,
    ) -> StoreResult<()> {
        let changed = query(
            "UPDATE algorithms SET version = v.version, component_sha256 = v.component_sha256, description = v.description,
                 status = $4, updated_at = $3
             FROM (SELECT version, component_sha256, description FROM algorithm_versions WHERE algorithm_id = $1 AND version = $2) AS v
             WHERE algorithms.id = $1",
        )
        .bind(algorithm_id)
        .bind(version)
        .bind(now)
        .bind(AlgorithmStatus::Active)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound("algorithm version"));
        }
        Self::log_activation(tx, algorithm_id, version, action, key_id, now).await
    }

    async fn log_activation(
        tx: &mut super::Conn,
        algorithm_id: &str,
        version: &str,
        action: &str,
        key_id: Option<i64>,
        now: &str,
    ) -> StoreResult<()> {
        query("INSERT INTO algorithm_activations (algorithm_id, version, action, key_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(algorithm_id)
            .bind(version)
            .bind(action)
            .bind(key_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Disables (`disabled`) or re-enables (`active`) an algorithm, keeping its active version.
    pub async fn set_algorithm_status(
        &self,
        algorithm_id: &str,
        status: AlgorithmStatus,
        key_id: Option<i64>,
    ) -> StoreResult<AlgorithmRow> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let version: Option<String> =
            query_scalar("UPDATE algorithms SET status = $1, updated_at = $2 WHERE id = $3 RETURNING version")
                .bind(status)
                .bind(&now)
                .bind(algorithm_id)
                .fetch_optional(&mut *tx)
                .await?;
        let version = version.ok_or(StoreError::NotFound("algorithm"))?;
        let action = if status == AlgorithmStatus::Active {
            "enable"
        } else {
            "disable"
        };
        Self::log_activation(&mut tx, algorithm_id, &version, action, key_id, &now).await?;
        tx.commit().await?;
        self.algorithm(algorithm_id).await
    }

    /// The version that was active before the current one (what `rollback` goes back to).
    pub async fn previous_version(&self, algorithm_id: &str) -> StoreResult<Option<String>> {
        let current = self.algorithm(algorithm_id).await?.version;
        let previous = query_scalar(
            "SELECT version FROM algorithm_activations WHERE algorithm_id = $1 AND version <> $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(algorithm_id)
        .bind(current)
        .fetch_optional(&self.pool)
        .await?;
        Ok(previous)
    }

    /// Every published version of an algorithm, newest first.
    pub async fn versions(&self, algorithm_id: &str) -> StoreResult<Vec<VersionRow>> {
        let rows = query(&format!("SELECT {VERSION_COLUMNS} WHERE v.algorithm_id = $1"))
            .bind(algorithm_id)
            .fetch_all(&self.pool)
            .await?;
        let mut versions = rows.iter().map(version_row).collect::<StoreResult<Vec<_>>>()?;
        let mut keyed = Vec::with_capacity(versions.len());
        for v in versions.drain(..) {
            keyed.push((parse_version(&v.version)?, v));
        }
        keyed.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(keyed.into_iter().map(|(_, v)| v).collect())
    }

    /// One published version.
    pub async fn version(&self, algorithm_id: &str, version: &str) -> StoreResult<VersionRow> {
        let row = query(&format!(
            "SELECT {VERSION_COLUMNS} WHERE v.algorithm_id = $1 AND v.version = $2"
        ))
        .bind(algorithm_id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("algorithm version"))?;
        version_row(&row)
    }

    /// A component's bytes, by sha256.
    pub async fn component_bytes(&self, sha256: &str) -> StoreResult<Vec<u8>> {
        query_scalar("SELECT bytes FROM components WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("component"))
    }

    /// Replaces the bytes of a bundled version that was rebuilt without a
    /// version bump (a developer's binary), so the stored version matches
    /// what the binary serves.
    pub async fn replace_bundled_component(
        &self,
        algorithm_id: &str,
        version: &str,
        sha256: &str,
        bytes: &[u8],
    ) -> StoreResult<()> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        Self::put_component(&mut tx, sha256, bytes, &now).await?;
        query("UPDATE algorithm_versions SET component_sha256 = $1, size_bytes = $2 WHERE algorithm_id = $3 AND version = $4 AND source = 'bundled'")
            .bind(sha256)
            .bind(bytes.len() as i64)
            .bind(algorithm_id)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        query("UPDATE algorithms SET component_sha256 = $1, updated_at = $2 WHERE id = $3 AND version = $4")
            .bind(sha256)
            .bind(&now)
            .bind(algorithm_id)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The golden jobs of an algorithm, oldest first.
    pub async fn goldens(&self, algorithm_id: &str) -> StoreResult<Vec<i64>> {
        Ok(
            query_scalar("SELECT job_id FROM algorithm_goldens WHERE algorithm_id = $1 ORDER BY created_at, job_id")
                .bind(algorithm_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
