//! Webhook endpoints and outbound credentials per partner, organization or workspace.

use serde::Serialize;

use super::db::query;
use super::{Store, StoreError, StoreResult};
use crate::jobs::AuthType;

/// Which tenant level a webhook setting belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// A partner (applies to all its workspaces unless a nearer level has one).
    Partner(i64),
    /// An organization.
    Organization(i64),
    /// A workspace.
    Workspace(i64),
}

impl Entity {
    /// From the path's `{entity_type}/{entity_id}`.
    pub fn parse(entity_type: &str, id: i64) -> Option<Self> {
        match entity_type {
            "partner" => Some(Self::Partner(id)),
            "organization" => Some(Self::Organization(id)),
            "workspace" => Some(Self::Workspace(id)),
            _ => None,
        }
    }

    /// `partner`, `organization` or `workspace`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Partner(_) => "partner",
            Self::Organization(_) => "organization",
            Self::Workspace(_) => "workspace",
        }
    }

    /// The entity's ID.
    pub fn id(&self) -> i64 {
        match self {
            Self::Partner(id) | Self::Organization(id) | Self::Workspace(id) => *id,
        }
    }
}

/// A stored endpoint (its signing secret sealed).
#[derive(Debug, Clone)]
pub struct EndpointRow {
    /// Where deliveries go.
    pub url: String,
    /// The sealed signing secret.
    pub signing_secret_enc: String,
    /// `...abcd`.
    pub signing_secret_hint: String,
    /// When deliveries were stopped (a 410 answer).
    pub disabled_at: Option<String>,
    /// Why.
    pub disabled_reason: Option<String>,
    /// Created.
    pub created_at: String,
    /// Changed.
    pub updated_at: String,
}

/// A stored outbound credential (its secret sealed).
#[derive(Debug, Clone)]
pub struct CredentialRow {
    /// How requests authenticate.
    pub auth_type: AuthType,
    /// The sealed token, HMAC secret or password.
    pub secret_enc: Option<String>,
    /// `...abcd`.
    pub secret_hint: Option<String>,
    /// HMAC key ID.
    pub key_id: Option<String>,
    /// Basic auth user name.
    pub username: Option<String>,
    /// Changed.
    pub updated_at: String,
}

impl Store {
    /// Whether the partner, organization or workspace exists.
    pub async fn entity_exists(&self, entity: Entity) -> StoreResult<bool> {
        let found = match entity {
            Entity::Partner(id) => self.partner(id).await.map(|_| ()),
            Entity::Organization(id) => self.organization(id).await.map(|_| ()),
            Entity::Workspace(id) => self.workspace(id).await.map(|_| ()),
        };
        match found {
            Ok(()) => Ok(true),
            Err(StoreError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets an endpoint's URL. A new endpoint takes `new_secret` (sealed) as
    /// its signing secret; an existing one keeps its secret and is re-enabled.
    /// Returns whether the endpoint was created (the stored secret is the new,
    /// freshly sealed one, which no earlier row can equal).
    pub async fn put_endpoint(
        &self,
        entity: Entity,
        url: &str,
        new_secret_enc: &str,
        new_secret_hint: &str,
    ) -> StoreResult<bool> {
        let now = self.now();
        let row = query(
            "INSERT INTO webhook_endpoints (entity_type, entity_id, url, signing_secret_enc, signing_secret_hint, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (entity_type, entity_id) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at,
                 disabled_at = NULL, disabled_reason = NULL
             RETURNING CAST(CASE WHEN signing_secret_enc = $4 THEN 1 ELSE 0 END AS BIGINT) AS created",
        )
        .bind(entity.type_name())
        .bind(entity.id())
        .bind(url)
        .bind(new_secret_enc)
        .bind(new_secret_hint)
        .bind(&now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get::<i64, _>("created") != 0)
    }

    /// An entity's own endpoint.
    pub async fn endpoint(&self, entity: Entity) -> StoreResult<Option<EndpointRow>> {
        let row = query("SELECT * FROM webhook_endpoints WHERE entity_type = $1 AND entity_id = $2")
            .bind(entity.type_name())
            .bind(entity.id())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| EndpointRow {
            url: r.get("url"),
            signing_secret_enc: r.get("signing_secret_enc"),
            signing_secret_hint: r.get("signing_secret_hint"),
            disabled_at: r.get("disabled_at"),
            disabled_reason: r.get("disabled_reason"),
            created_at: r.get("created_at"),
            updated_at: r.get("updated_at"),
        }))
    }

    /// Removes an entity's endpoint.
    pub async fn delete_endpoint(&self, entity: Entity) -> StoreResult<()> {
        self.delete_webhook_row("webhook_endpoints", entity, "webhook endpoint")
            .await
    }

    /// Sets an entity's outbound credential (secret already sealed).
    pub async fn put_credential(&self, entity: Entity, credential: &CredentialRow) -> StoreResult<()> {
        let now = self.now();
        query(
            "INSERT INTO webhook_credentials (entity_type, entity_id, auth_type, secret_enc, secret_hint, key_id, username, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             ON CONFLICT (entity_type, entity_id) DO UPDATE SET auth_type = excluded.auth_type, secret_enc = excluded.secret_enc,
                 secret_hint = excluded.secret_hint, key_id = excluded.key_id, username = excluded.username, updated_at = excluded.updated_at",
        )
        .bind(entity.type_name())
        .bind(entity.id())
        .bind(credential.auth_type)
        .bind(&credential.secret_enc)
        .bind(&credential.secret_hint)
        .bind(&credential.key_id)
        .bind(&credential.username)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An entity's own credential.
    pub async fn credential(&self, entity: Entity) -> StoreResult<Option<CredentialRow>> {
        let row = query("SELECT * FROM webhook_credentials WHERE entity_type = $1 AND entity_id = $2")
            .bind(entity.type_name())
            .bind(entity.id())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(CredentialRow {
                auth_type: r.try_get("auth_type")?,
                secret_enc: r.get("secret_enc"),
                secret_hint: r.get("secret_hint"),
                key_id: r.get("key_id"),
                username: r.get("username"),
                updated_at: r.get("updated_at"),
            })
        })
        .transpose()
    }

    /// Removes an entity's credential.
    pub async fn delete_credential(&self, entity: Entity) -> StoreResult<()> {
        self.delete_webhook_row("webhook_credentials", entity, "webhook credential")
            .await
    }

    async fn delete_webhook_row(&self, table: &'static str, entity: Entity, what: &'static str) -> StoreResult<()> {
        let changed = query(&format!(
            "DELETE FROM {table} WHERE entity_type = $1 AND entity_id = $2"
        ))
        .bind(entity.type_name())
        .bind(entity.id())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if changed == 0 {
            Err(StoreError::NotFound(what))
        } else {
            Ok(())
        }
    }
}
