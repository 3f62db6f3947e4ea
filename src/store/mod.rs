//! The database: every read and write the service makes, behind one type.
//!
//! Handlers and the worker call [`Store`] methods and never write SQL, so a
//! second backend (PostgreSQL) can be added here without touching them. Each
//! method that changes more than one row does so in one transaction: a failed
//! request leaves the database as it was.
//!
//! # Layout
//! - `tenants`: partners, organizations, workspaces.
//! - `keys`: API keys (hashed tokens).
//! - `algorithms`: algorithms known to the service, their scope and workspace assignment.
//! - `algorithm_versions`: published versions, component bytes, activation history, goldens.
//! - `transcripts`: content-addressed transcripts.
//! - `jobs`: jobs, child jobs, listing and lookup.
//! - `runs`: algorithm runs and the worker's claims on jobs.
//! - `events`: the job log.
//! - `webhooks`: webhook endpoints and outbound credentials.
//! - `deliveries`: the webhook outbox and its attempts.

mod algorithm_versions;
mod algorithms;
mod deliveries;
mod events;
mod jobs;
mod keys;
mod runs;
mod tenants;
mod transcripts;
mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use algorithm_versions::{NewVersion, PublishRecord, Published, VersionRow};
pub use algorithms::AlgorithmRow;
pub use deliveries::{AttemptOutcome, DeliveryView, DeliveryWork};
pub use events::JobEvent;
pub use jobs::{JobFilter, JobRow, NewJob, NewRun, TranscriptSource};
pub use transcripts::TranscriptSummary;
pub use webhooks::{CredentialRow, EndpointRow, Entity};
pub use keys::{ApiKey, Scope};
pub use runs::{ClaimedJob, ExistingRun, RunRow};
pub use tenants::{Organization, Partner, Workspace};

use crate::clock::{self, SharedClock};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The change conflicts with what is stored (the message says how).
    #[error("{0}")]
    Conflict(String),
    /// Stored data could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// The database handle. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    clock: SharedClock,
}

impl Store {
    /// Opens (creating if needed) the database and runs the migrations.
    /// `url` is a `sqlite:` URL; without one, `DATA_DIR/gensail.db`.
    pub async fn open(url: Option<&str>, data_dir: &Path, clock: SharedClock) -> anyhow::Result<Self> {
        let url = match url {
            Some(url) => url.to_owned(),
            None => {
                std::fs::create_dir_all(data_dir)?;
                format!("sqlite://{}", data_dir.join("gensail.db").display())
            }
        };
        if !url.starts_with("sqlite:") {
            anyhow::bail!("unsupported database URL {url:?}: this build stores data in SQLite (sqlite://PATH)");
        }
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, clock })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    fn now(&self) -> String {
        clock::format(self.clock.now())
    }

    /// The clock the store stamps rows with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }
}

/// The sha256 a run records for its config: of the config's JSON text as stored.
pub fn config_sha256(config: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(config.to_string().as_bytes()))
}

/// Reads a JSON column.
fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}
