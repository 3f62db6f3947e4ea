//! Settings every server of a deployment must agree on.

use super::db::{query, query_scalar};
use super::{Store, StoreResult};

impl Store {
    /// Records `value` under `name` unless a value is already recorded, and
    /// returns the recorded one (the first server to start decides).
    pub async fn agree_on_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        query(
            "INSERT INTO service_settings (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(query_scalar("SELECT value FROM service_settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?)
    }
}
