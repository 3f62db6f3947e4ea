//! Partners, organizations and workspaces.

use serde::Serialize;

use super::db::{query, query_scalar};
use super::{Store, StoreError, StoreResult};

/// A partner.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Partner {
    /// ID.
    pub id: i64,
    /// Name.
    pub name: String,
    /// When it was created.
    pub created_at: String,
}

/// An organization under a partner.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Organization {
    /// ID.
    pub id: i64,
    /// The partner.
    pub partner_id: i64,
    /// Name.
    pub name: String,
    /// When it was created.
    pub created_at: String,
}

/// A workspace under an organization.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Workspace {
    /// ID.
    pub id: i64,
    /// The organization.
    pub organization_id: i64,
    /// The organization's partner.
    pub partner_id: i64,
    /// Name.
    pub name: String,
    /// Calls shorter than this are skipped at ingestion.
    pub min_duration_seconds: i64,
    /// When it was created.
    pub created_at: String,
}

impl Store {
    /// Creates a partner.
    pub async fn create_partner(&self, name: &str) -> StoreResult<Partner> {
        let now = self.now();
        let id: i64 = query_scalar("INSERT INTO partners (name, created_at) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(&now)
            .fetch_one(&self.pool)
            .await?;
        Ok(Partner {
            id,
            name: name.to_owned(),
            created_at: now,
        })
    }

    /// Creates an organization under an existing partner.
    pub async fn create_organization(&self, partner_id: i64, name: &str) -> StoreResult<Organization> {
        self.partner(partner_id).await?;
        let now = self.now();
        let id: i64 =
            query_scalar("INSERT INTO organizations (partner_id, name, created_at) VALUES ($1, $2, $3) RETURNING id")
                .bind(partner_id)
                .bind(name)
                .bind(&now)
                .fetch_one(&self.pool)
                .await?;
        Ok(Organization {
            id,
            partner_id,
            name: name.to_owned(),
            created_at: now,
        })
    }

    /// Creates a workspace under an existing organization.
    pub async fn create_workspace(
        &self,
        organization_id: i64,
        name: &str,
        min_duration_seconds: Option<i64>,
    ) -> StoreResult<Workspace> {
        self.organization(organization_id).await?;
        let now = self.now();
        let id: i64 = query_scalar("INSERT INTO workspaces (organization_id, name, min_duration_seconds, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(organization_id)
            .bind(name)
            .bind(min_duration_seconds.unwrap_or(30))
            .bind(&now)
            .fetch_one(&self.pool)
            .await?;
        self.workspace(id).await
    }

    /// Changes a workspace's ingestion filter.
    pub async fn set_min_duration(&self, workspace_id: i64, seconds: i64) -> StoreResult<Workspace> {
        let changed = query("UPDATE workspaces SET min_duration_seconds = $1 WHERE id = $2")
            .bind(seconds)
            .bind(workspace_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound("workspace"));
        }
        self.workspace(workspace_id).await
    }

    /// A partner by ID.
    pub async fn partner(&self, id: i64) -> StoreResult<Partner> {
        let row = query("SELECT id, name, created_at FROM partners WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("partner"))?;
        Ok(Partner {
            id: row.get("id"),
            name: row.get("name"),
            created_at: row.get("created_at"),
        })
    }

    /// An organization by ID.
    pub async fn organization(&self, id: i64) -> StoreResult<Organization> {
        let row = query("SELECT id, partner_id, name, created_at FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("organization"))?;
        Ok(Organization {
            id: row.get("id"),
            partner_id: row.get("partner_id"),
            name: row.get("name"),
            created_at: row.get("created_at"),
        })
    }

    /// A workspace by ID, with its partner.
    pub async fn workspace(&self, id: i64) -> StoreResult<Workspace> {
        let row = query(
            "SELECT w.id, w.organization_id, o.partner_id, w.name, w.min_duration_seconds, w.created_at
             FROM workspaces w JOIN organizations o ON o.id = w.organization_id WHERE w.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("workspace"))?;
        Ok(Workspace {
            id: row.get("id"),
            organization_id: row.get("organization_id"),
            partner_id: row.get("partner_id"),
            name: row.get("name"),
            min_duration_seconds: row.get("min_duration_seconds"),
            created_at: row.get("created_at"),
        })
    }

    /// The oldest workspace with this name (the demo finds its own by name).
    pub async fn find_workspace_by_name(&self, name: &str) -> StoreResult<Option<Workspace>> {
        let row = query("SELECT id FROM workspaces WHERE name = $1 ORDER BY id LIMIT 1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.workspace(r.get("id")).await?)),
            None => Ok(None),
        }
    }
}
