//! The database: every read and write the service makes, behind one type.
//!
//! Handlers and the worker call [`Store`] methods and never write SQL. The
//! store runs on SQLite (embedded default) or PostgreSQL (scale-out), each
//! through its own sqlx driver: one set of SQL, written to mean the same on
//! both (`$n` placeholders, integers for booleans, text timestamps that sort),
//! and one migration directory per backend kept in step (`migrations/sqlite`,
//! `migrations/postgres`, same versions). Each
//! method that changes more than one row does so in one transaction: a failed
//! request leaves the database as it was.
//!
//! # Layout
//! - `db`: the seam between the SQL and the two drivers (queries, rows, transactions).
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
//! - `settings`: settings every server of a deployment must agree on.
//! - `selection`: which stored calls an experiment or a backfill covers.
//! - `experiments`: experiments, their calls and their own runs (memoized).
//! - `backfills`: backfills, their calls and the child jobs they created.

mod algorithm_versions;
mod algorithms;
mod backfills;
mod db;
mod deliveries;
mod events;
mod experiments;
mod jobs;
mod keys;
mod runs;
mod selection;
mod settings;
mod tenants;
mod transcripts;
mod webhooks;

use std::path::Path;
use std::time::Duration;

use std::str::FromStr;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use algorithm_versions::{NewVersion, PublishRecord, Published, VersionRow};
pub use algorithms::AlgorithmRow;
pub use backfills::{BackfillCall, BackfillChunk, BackfillClaim, BackfillItem, BackfillRow, NewBackfill};
pub use deliveries::{AttemptOutcome, DeliveryView, DeliveryWork};
pub use events::JobEvent;
pub use experiments::{
    Created, ExperimentChunk, ExperimentItem, ExperimentRow, ItemRow, NewExperiment, RunSource, Side, SideOutcome,
    SideResult,
};
pub use jobs::{JobFilter, JobRow, NewJob, NewRun, OnDemand, TranscriptSource};
pub use keys::{ApiKey, Scope, check_chosen_token};
pub use runs::{ClaimedJob, ExistingRun, RunRow};
pub use selection::Selection;
pub use tenants::{Organization, Partner, Workspace};
pub use transcripts::TranscriptSummary;
pub use webhooks::{CredentialRow, EndpointRow, Entity};

use crate::clock::{self, SharedClock};

use db::{Conn, Pool, Row, query};

/// Which database the store talks to. The SQL is shared; the few statements
/// that differ ask [`Store::backend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (WAL): one machine, the default.
    Sqlite,
    /// PostgreSQL: several API servers and workers share it.
    Postgres,
}

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
    /// A status change the job rules do not allow (a bug; nothing was written).
    #[error(transparent)]
    Illegal(#[from] crate::jobs::IllegalTransition),
    /// The store's filesystem has (almost) no space left.
    #[error("the database's filesystem is full")]
    StorageFull,
}

impl StoreError {
    /// Whether the database could not write for lack of space: SQLite's
    /// `SQLITE_FULL` (13), PostgreSQL's `disk_full` (SQLSTATE 53100). The
    /// request may succeed later, when space returns; nothing was written.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Self::StorageFull) || is_storage_full_code(self.database_code().as_deref())
    }

    /// Whether the database refused text a client sent: PostgreSQL cannot
    /// store a NUL character (SQLSTATE 22021, or 22P05 when a character has
    /// no equivalent in the server's encoding). Nothing was written.
    pub fn is_unstorable_text(&self) -> bool {
        matches!(self.database_code().as_deref(), Some("22021" | "22P05"))
    }

    /// The database's own error code (SQLite's result code, PostgreSQL's SQLSTATE).
    fn database_code(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Self::Database(sqlx::Error::Database(e)) => e.code(),
            _ => None,
        }
    }
}

/// The database error codes that mean "out of space" (see [`StoreError::is_storage_full`]).
fn is_storage_full_code(code: Option<&str>) -> bool {
    matches!(code, Some("13" | "53100"))
}

/// Below this much free space on the SQLite store's filesystem the service
/// is not ready: a job with its transcript needs about this much.
const MIN_FREE_BYTES: u64 = 1 << 20;

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// The database handle. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    clock: SharedClock,
    /// The PostgreSQL URL, for LISTEN connections (never logged: it may hold a password).
    postgres_url: Option<std::sync::Arc<str>>,
    /// The SQLite database file, whose filesystem readiness watches.
    sqlite_file: Option<std::sync::Arc<Path>>,
}

impl Store {
    /// Opens (creating if needed) the database and runs the migrations.
    /// `url` is `sqlite://PATH` or `postgres://…`; without one, SQLite in
    /// `DATA_DIR/gensail.db`.
    pub async fn open(url: Option<&str>, data_dir: &Path, clock: SharedClock) -> anyhow::Result<Self> {
        let url = match url {
            Some(url) => url.to_owned(),
            None => {
                std::fs::create_dir_all(data_dir)?;
                format!("sqlite://{}", data_dir.join("gensail.db").display())
            }
        };
        let mut sqlite_file = None;
        let pool = if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.clone()
            } else {
                format!("{url}?mode=rwc")
            };
            // WAL: readers never block the writer; a busy writer is waited for, not failed.
            let options = SqliteConnectOptions::from_str(&url)?;
            sqlite_file = Some(std::sync::Arc::from(options.get_filename()));
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                // A write that fails for lack of space can leave SQLite inside
                // a transaction that sqlx no longer knows about (SQLite rolls
                // back on SQLITE_FULL, sqlx's own ROLLBACK then fails and it
                // keeps counting the transaction, so its next one is a
                // SAVEPOINT whose rollback leaves the transaction open, holding
                // the write lock: every writer then waits and fails "database
                // is locked", even after space returns). A connection given
                // back inside a transaction is closed instead of pooled.
                .after_release(|conn, _| Box::pin(async move { Ok(outside_transaction(conn).await) }))
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(&url)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Pool::Postgres(pool)
        } else {
            anyhow::bail!("unsupported database URL {url:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE");
        };
        let postgres_url = (pool.backend() == Backend::Postgres).then(|| std::sync::Arc::from(url.as_str()));
        Ok(Self {
            pool,
            clock,
            postgres_url,
            sqlite_file,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// Tells every server listening (PostgreSQL `NOTIFY gensail_work`) that
    /// jobs were created, so workers in other processes claim them at once
    /// instead of at their next poll. SQLite: nothing to do.
    pub async fn announce_work(&self) -> StoreResult<()> {
        if self.backend() == Backend::Postgres {
            query("SELECT pg_notify('gensail_work', '')")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Waits for `announce_work` from any server and calls `on_work` for
    /// each, reconnecting after errors, until `stop` turns true. Returns at
    /// once on SQLite (workers there rely on polling and in-process wakeups).
    pub async fn listen_for_work(&self, on_work: impl Fn(), mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some(url) = self.postgres_url.clone() else { return };
        loop {
            match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut listener) => match listener.listen("gensail_work").await {
                    Ok(()) => loop {
                        tokio::select! {
                            notification = listener.recv() => match notification {
                                Ok(_) => on_work(),
                                Err(e) => {
                                    tracing::warn!(error = %e, "lost the work notification connection; reconnecting");
                                    break;
                                }
                            },
                            _ = stop.changed() => return,
                        }
                    },
                    Err(e) => tracing::warn!(error = %e, "cannot LISTEN for work notifications"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot connect to listen for work notifications"),
            }
            // Polling keeps jobs moving meanwhile.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// What a claim's inner `SELECT` ends with: on PostgreSQL `FOR UPDATE SKIP
    /// LOCKED`, so concurrent claimers take different rows instead of queueing
    /// on (and then both updating) the same one; SQLite has a single writer.
    fn skip_locked(&self) -> &'static str {
        match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// Takes the row lock of a job for the rest of the transaction
    /// (PostgreSQL), so two transactions that each decide something about the
    /// job from rows of other tables run one after the other. SQLite already
    /// runs writing transactions one at a time.
    async fn lock_job(&self, tx: &mut Conn, job_id: i64) -> StoreResult<()> {
        if self.backend() == Backend::Postgres {
            query("SELECT id FROM jobs WHERE id = $1 FOR UPDATE")
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Whether the database accepts a write, not only a read: a heartbeat row
    /// is written and committed. On a full disk this fails, and says so. The
    /// heartbeat may still fit in pages SQLite already has while new rows do
    /// not, so on SQLite the store's filesystem must also have
    /// [`MIN_FREE_BYTES`] free.
    pub async fn check_writable(&self) -> StoreResult<()> {
        query(
            "INSERT INTO service_settings (name, value, created_at) VALUES ('readiness_heartbeat', $1, $1)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        if let Some(file) = &self.sqlite_file {
            let dir = file
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let fs = rustix::fs::statvfs(dir).map_err(|e| sqlx::Error::Io(e.into()))?;
            if fs.f_bavail.saturating_mul(fs.f_frsize) < MIN_FREE_BYTES {
                return Err(StoreError::StorageFull);
            }
        }
        Ok(())
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

/// Whether a SQLite connection is outside any transaction: a plain `BEGIN`
/// (which takes no lock) succeeds only there, and is rolled back at once.
async fn outside_transaction(conn: &mut sqlx::SqliteConnection) -> bool {
    if sqlx::Executor::execute(&mut *conn, "BEGIN").await.is_err() {
        tracing::warn!("a database connection was left inside a transaction (after a failed write); closing it");
        return false;
    }
    sqlx::Executor::execute(&mut *conn, "ROLLBACK").await.is_ok()
}

/// `$first, $first+1, …`: `n` numbered parameters, to bind a list (of
/// statuses, say) into `IN (…)`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a JSON column.
fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn out_of_space_is_recognised_on_both_databases() {
        // SQLite's SQLITE_FULL and PostgreSQL's disk_full (SQLSTATE 53100).
        assert!(super::is_storage_full_code(Some("13")));
        assert!(super::is_storage_full_code(Some("53100")));
        // Locked (5), a unique violation (23505), no code: not a full disk.
        for other in [Some("5"), Some("23505"), None] {
            assert!(!super::is_storage_full_code(other), "{other:?}");
        }
    }
}
