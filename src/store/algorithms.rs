//! Algorithms the service knows, who may run them, and per-workspace config.
//!
//! Available to a workspace (the spec's three rules), among active algorithms: global ones,
//! algorithms scoped to the workspace's partner or organization, and
//! algorithms assigned to the workspace itself.

use serde::Serialize;

use super::db::{Query, query};
use super::{Store, StoreError, StoreResult, Workspace, from_json};
use crate::jobs::{AlgorithmScope, AlgorithmStatus};

/// An algorithm as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlgorithmRow {
    /// The versioned ID, e.g. `rise_dds_v5`.
    pub algorithm_id: String,
    /// Semver version of the active component (with status `inactive`: the
    /// version published first, not yet activated).
    pub version: String,
    /// sha256 of the active component.
    pub component_sha256: String,
    /// What it does.
    pub description: String,
    /// `global`, `partner`, `organization` or `workspace` (assigned only).
    pub scope_type: AlgorithmScope,
    /// The partner or organization it is scoped to.
    pub scope_id: Option<i64>,
    /// Config used when a workspace sets none.
    pub default_config: serde_json::Value,
    /// `active` (runnable), `disabled`, or `inactive` (no version activated yet).
    pub status: AlgorithmStatus,
}

/// The algorithms available to workspace `$1` of partner `$2` and organization
/// `$3`; `$4` to `$7` are the words [`bind_available`] binds.
const AVAILABLE: &str = "a.status = $4 AND (a.scope_type = $5
      OR (a.scope_type = $6 AND a.scope_id = $2)
      OR (a.scope_type = $7 AND a.scope_id = $3)
      OR a.id IN (SELECT algorithm_id FROM workspace_algorithms WHERE workspace_id = $1))";

/// Binds the words [`AVAILABLE`] compares with, as `$4` to `$7`.
fn bind_available(query: Query<'_>) -> Query<'_> {
    query
        .bind(AlgorithmStatus::Active)
        .bind(AlgorithmScope::Global)
        .bind(AlgorithmScope::Partner)
        .bind(AlgorithmScope::Organization)
}

fn algorithm(r: &super::Row) -> StoreResult<AlgorithmRow> {
    Ok(AlgorithmRow {
        algorithm_id: r.get("id"),
        version: r.get("version"),
        component_sha256: r.get("component_sha256"),
        description: r.get("description"),
        scope_type: r.try_get("scope_type")?,
        scope_id: r.get("scope_id"),
        default_config: from_json(r.get::<&str, _>("default_config"))?,
        status: r.try_get("status")?,
    })
}

impl Store {
    /// Every algorithm known to the service, by ID (any status).
    pub async fn all_algorithms(&self) -> StoreResult<Vec<AlgorithmRow>> {
        let rows = query("SELECT * FROM algorithms a ORDER BY a.id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(algorithm).collect()
    }

    /// Limits an algorithm to a partner or organization, or makes it global again.
    pub async fn set_algorithm_scope(
        &self,
        id: &str,
        scope_type: AlgorithmScope,
        scope_id: Option<i64>,
    ) -> StoreResult<AlgorithmRow> {
        let changed = query("UPDATE algorithms SET scope_type = $1, scope_id = $2, updated_at = $3 WHERE id = $4")
            .bind(scope_type)
            .bind(scope_id)
            .bind(self.now())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound("algorithm"));
        }
        self.algorithm(id).await
    }

    /// Whether a key of this (non-platform) scope may see an algorithm: it is
    /// global, or available to at least one workspace the key reaches.
    pub async fn algorithm_visible(&self, id: &str, scope: super::Scope) -> StoreResult<bool> {
        use super::Scope;
        let (reach, scope_id) = match scope {
            Scope::Platform => return Ok(true),
            Scope::Partner(p) => ("o.partner_id", p),
            Scope::Organization(o) => ("o.id", o),
            Scope::Workspace(w) => ("w.id", w),
        };
        let visible = query(&format!(
            "SELECT 1 FROM algorithms a WHERE a.id = $1 AND (a.scope_type = $3 OR EXISTS (
                 SELECT 1 FROM workspaces w JOIN organizations o ON o.id = w.organization_id
                 WHERE {reach} = $2 AND ((a.scope_type = $4 AND a.scope_id = o.partner_id)
                     OR (a.scope_type = $5 AND a.scope_id = o.id)
                     OR a.id IN (SELECT algorithm_id FROM workspace_algorithms wa WHERE wa.workspace_id = w.id))))"
        ))
        .bind(id)
        .bind(scope_id)
        .bind(AlgorithmScope::Global)
        .bind(AlgorithmScope::Partner)
        .bind(AlgorithmScope::Organization)
        .fetch_optional(&self.pool)
        .await?;
        Ok(visible.is_some())
    }

    /// The algorithms assigned to a workspace, each with its config (null: the default applies).
    pub async fn workspace_assignments(
        &self,
        workspace_id: i64,
    ) -> StoreResult<Vec<(String, Option<serde_json::Value>)>> {
        let rows = query(
            "SELECT algorithm_id, config FROM workspace_algorithms WHERE workspace_id = $1 ORDER BY algorithm_id",
        )
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.get("algorithm_id"),
                    r.get::<Option<&str>, _>("config").map(from_json).transpose()?,
                ))
            })
            .collect()
    }

    /// One algorithm.
    pub async fn algorithm(&self, id: &str) -> StoreResult<AlgorithmRow> {
        let row = query("SELECT * FROM algorithms a WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("algorithm"))?;
        algorithm(&row)
    }

    /// Every algorithm the workspace may run, by ID.
    pub async fn available_algorithms(&self, workspace: &Workspace) -> StoreResult<Vec<AlgorithmRow>> {
        let sql = format!("SELECT * FROM algorithms a WHERE {AVAILABLE} ORDER BY a.id");
        let available = query(&sql)
            .bind(workspace.id)
            .bind(workspace.partner_id)
            .bind(workspace.organization_id);
        let rows = bind_available(available).fetch_all(&self.pool).await?;
        rows.iter().map(algorithm).collect()
    }

    /// The requested IDs the workspace may not run, in request order.
    pub async fn unavailable(&self, workspace: &Workspace, ids: &[String]) -> StoreResult<Vec<String>> {
        let available: Vec<String> = self
            .available_algorithms(workspace)
            .await?
            .into_iter()
            .map(|a| a.algorithm_id)
            .collect();
        Ok(ids.iter().filter(|id| !available.contains(id)).cloned().collect())
    }

    /// The algorithms assigned to a workspace (what ingestion runs by default).
    pub async fn assigned_algorithm_ids(&self, workspace_id: i64) -> StoreResult<Vec<String>> {
        let rows = query("SELECT algorithm_id FROM workspace_algorithms WHERE workspace_id = $1 ORDER BY algorithm_id")
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get("algorithm_id")).collect())
    }

    /// Assigns an algorithm to a workspace with an optional config (replacing an earlier assignment).
    pub async fn assign_algorithm(
        &self,
        workspace_id: i64,
        algorithm_id: &str,
        config: Option<&serde_json::Value>,
    ) -> StoreResult<()> {
        self.workspace(workspace_id).await?;
        self.algorithm(algorithm_id).await?;
        query(
            "INSERT INTO workspace_algorithms (workspace_id, algorithm_id, config, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id, algorithm_id) DO UPDATE SET config = excluded.config",
        )
        .bind(workspace_id)
        .bind(algorithm_id)
        .bind(config.map(|c| c.to_string()))
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes an assignment.
    pub async fn unassign_algorithm(&self, workspace_id: i64, algorithm_id: &str) -> StoreResult<()> {
        let changed = query("DELETE FROM workspace_algorithms WHERE workspace_id = $1 AND algorithm_id = $2")
            .bind(workspace_id)
            .bind(algorithm_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if changed == 0 {
            Err(StoreError::NotFound("algorithm assignment"))
        } else {
            Ok(())
        }
    }

    /// Pending runs for these algorithms, each with the config it will run with
    /// in the workspace now (so later config changes do not alter queued work).
    pub async fn new_runs(&self, workspace_id: i64, algorithm_ids: &[String]) -> StoreResult<Vec<super::NewRun>> {
        let mut runs = Vec::with_capacity(algorithm_ids.len());
        for id in algorithm_ids {
            runs.push(super::NewRun {
                algorithm_id: id.clone(),
                config: self.algorithm_config(workspace_id, id).await?,
            });
        }
        Ok(runs)
    }

    /// The config an algorithm runs with in a workspace: the workspace's own,
    /// else the algorithm's default.
    pub async fn algorithm_config(&self, workspace_id: i64, algorithm_id: &str) -> StoreResult<serde_json::Value> {
        let row = query(
            "SELECT COALESCE(wa.config, a.default_config) AS config FROM algorithms a
             LEFT JOIN workspace_algorithms wa ON wa.algorithm_id = a.id AND wa.workspace_id = $1 WHERE a.id = $2",
        )
        .bind(workspace_id)
        .bind(algorithm_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("algorithm"))?;
        from_json(row.get::<&str, _>("config"))
    }
}
