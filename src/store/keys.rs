//! API keys. Tokens are 256 random bits, shown once; only their sha256 is
//! stored (a token has too much entropy for a slow hash to add anything).

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::db::{query, query_scalar};
use super::{Store, StoreError, StoreResult};
use crate::jobs::KeyScopeType;

/// What a key may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "scope_type", content = "scope_id", rename_all = "snake_case")]
pub enum Scope {
    /// Administers the service.
    Platform,
    /// Every workspace of a partner.
    Partner(i64),
    /// Every workspace of an organization.
    Organization(i64),
    /// One workspace.
    Workspace(i64),
}

impl Scope {
    /// Its level: `platform`, `partner`, `organization` or `workspace`.
    pub fn level(&self) -> KeyScopeType {
        match self {
            Self::Platform => KeyScopeType::Platform,
            Self::Partner(_) => KeyScopeType::Partner,
            Self::Organization(_) => KeyScopeType::Organization,
            Self::Workspace(_) => KeyScopeType::Workspace,
        }
    }

    /// The scoped entity's ID (none for platform).
    pub fn id(&self) -> Option<i64> {
        match self {
            Self::Platform => None,
            Self::Partner(id) | Self::Organization(id) | Self::Workspace(id) => Some(*id),
        }
    }

    fn from_parts(level: KeyScopeType, id: Option<i64>) -> StoreResult<Self> {
        Ok(match (level, id) {
            (KeyScopeType::Platform, _) => Self::Platform,
            (KeyScopeType::Partner, Some(id)) => Self::Partner(id),
            (KeyScopeType::Organization, Some(id)) => Self::Organization(id),
            (KeyScopeType::Workspace, Some(id)) => Self::Workspace(id),
            (level, None) => return Err(StoreError::Corrupt(format!("a {level} key without a scope ID"))),
        })
    }
}

/// A stored key (never the token).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    /// ID.
    pub id: i64,
    /// What it reaches.
    #[serde(flatten)]
    pub scope: Scope,
    /// The last four characters of the token, to tell keys apart.
    pub token_hint: String,
    /// When it was created.
    pub created_at: String,
}

/// sha256 of a token, hex.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks a token chosen outside the service (`GENSAIL_PLATFORM_TOKEN`): a
/// client can only send visible ASCII in an `Authorization` header, and a
/// short token can be guessed.
pub fn check_chosen_token(token: &str) -> Result<(), String> {
    const MIN: usize = 24;
    const MAX: usize = 256;
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be visible ASCII characters only (no spaces, no other scripts): \
                    an Authorization header cannot carry anything else"
            .into());
    }
    if !(MIN..=MAX).contains(&token.len()) {
        return Err(format!(
            "must be {MIN} to {MAX} characters long; it is {}. `openssl rand -hex 32` makes a good one",
            token.len()
        ));
    }
    Ok(())
}

/// The part of a token shown to tell keys apart: its last four characters
/// (characters, not bytes, so any text is safe to cut).
fn token_hint(token: &str) -> String {
    let start = token.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    format!("...{}", &token[start..])
}

/// A new random token: `gs_` and 64 hex digits.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("gs_{}", hex::encode(bytes))
}

impl Store {
    /// Creates a key and returns it with its token (the only time the token exists in clear).
    pub async fn create_key(&self, scope: Scope) -> StoreResult<(ApiKey, String)> {
        let token = new_token();
        let key = self.insert_key(scope, &token).await?;
        Ok((key, token))
    }

    /// Stores a key for a token chosen elsewhere (the operator's `GENSAIL_PLATFORM_TOKEN`).
    pub async fn insert_key(&self, scope: Scope, token: &str) -> StoreResult<ApiKey> {
        let now = self.now();
        let hint = token_hint(token);
        let id: Option<i64> = query_scalar(
            "INSERT INTO api_keys (token_sha256, token_hint, scope_type, scope_id, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (token_sha256) DO NOTHING RETURNING id",
        )
        .bind(token_sha256(token))
        .bind(&hint)
        .bind(scope.level())
        .bind(scope.id())
        .bind(&now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(id) = id else {
            return self.key_by_token(token).await?.ok_or(StoreError::NotFound("api key"));
        };
        Ok(ApiKey {
            id,
            scope,
            token_hint: hint,
            created_at: now,
        })
    }

    /// The live key a token belongs to.
    pub async fn key_by_token(&self, token: &str) -> StoreResult<Option<ApiKey>> {
        let row = query(
            "SELECT id, scope_type, scope_id, token_hint, created_at FROM api_keys WHERE token_sha256 = $1 AND revoked_at IS NULL",
        )
        .bind(token_sha256(token))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ApiKey {
                id: r.get("id"),
                scope: Scope::from_parts(r.try_get("scope_type")?, r.get("scope_id"))?,
                token_hint: r.get("token_hint"),
                created_at: r.get("created_at"),
            })
        })
        .transpose()
    }

    /// Whether any live platform key exists (a first start creates one).
    pub async fn has_platform_key(&self) -> StoreResult<bool> {
        let row = query("SELECT COUNT(*) AS n FROM api_keys WHERE scope_type = $1 AND revoked_at IS NULL")
            .bind(KeyScopeType::Platform)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<i64, _>("n") > 0)
    }

    /// Revokes a key; later requests with its token get 401.
    pub async fn revoke_key(&self, id: i64) -> StoreResult<()> {
        let changed = query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(self.now())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if changed == 0 {
            Err(StoreError::NotFound("api key"))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{check_chosen_token, token_hint};

    #[test]
    fn a_hint_cuts_characters_not_bytes() {
        assert_eq!(token_hint("gs_0123456789abcdef"), "...cdef");
        assert_eq!(token_hint("ключ-доступа-платформы"), "...ормы");
        assert_eq!(token_hint("ab"), "...ab");
        assert_eq!(token_hint(""), "...");
    }

    #[test]
    fn a_chosen_token_is_visible_ascii_and_long_enough() {
        assert!(check_chosen_token("gs_test_platform_token_0123456789abcdef").is_ok());
        let not_ascii = check_chosen_token("ключ-доступа-платформы-0123456789").unwrap_err();
        assert!(not_ascii.contains("visible ASCII"), "{not_ascii}");
        assert!(check_chosen_token("has a space in it 0123456789").is_err());
        let short = check_chosen_token("short").unwrap_err();
        assert!(short.contains("24 to 256 characters"), "{short}");
        assert!(check_chosen_token(&"x".repeat(257)).is_err());
    }
}
