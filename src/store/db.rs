//! The two database drivers behind one set of SQL.
//!
//! The store's SQL is written once (`$n` placeholders, integers for booleans,
//! text timestamps that sort) and runs on sqlx's own SQLite or PostgreSQL
//! driver, chosen when the store opens. This module is the thin seam between
//! them, shaped like sqlx's own API so the store reads as plain sqlx:
//! [`query`] and [`query_scalar`] collect the SQL and its bound values
//! ([`Arg`]); executing on a [`Pool`] or inside a transaction ([`Conn`]) binds
//! them with the driver of that database and returns [`Row`]s that decode
//! with it. Nothing goes through sqlx's `Any` driver, whose value
//! conversions cost a fifth of read throughput and which bound a NULL float
//! with the wrong PostgreSQL type.

use std::ops::{Deref, DerefMut};

use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Decode, Encode, Postgres, Sqlite, Transaction, Type};

use super::Backend;
use crate::jobs::Word;

/// A pool of connections to one of the two databases.
#[derive(Clone)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    /// Which database the pool talks to.
    pub(super) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Starts a transaction (SQLite: a deferred `BEGIN`; PostgreSQL: READ COMMITTED).
    pub(super) async fn begin(&self) -> sqlx::Result<Tx> {
        Ok(Tx(match self {
            Self::Sqlite(pool) => Conn::Sqlite(pool.begin().await?),
            Self::Postgres(pool) => Conn::Postgres(pool.begin().await?),
        }))
    }
}

/// An open transaction: rolled back when dropped unless [`Tx::commit`]ted.
/// Store functions that work inside a transaction take `&mut Conn`, which a
/// `&mut Tx` gives.
pub(super) struct Tx(Conn);

/// The connection of an open transaction.
pub(super) enum Conn {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Rolls the transaction back (as dropping it would, but waiting for it).
    pub(super) async fn rollback(self) -> sqlx::Result<()> {
        match self.0 {
            Conn::Sqlite(tx) => tx.rollback().await,
            Conn::Postgres(tx) => tx.rollback().await,
        }
    }

    /// Commits the transaction.
    pub(super) async fn commit(self) -> sqlx::Result<()> {
        match self.0 {
            Conn::Sqlite(tx) => tx.commit().await,
            Conn::Postgres(tx) => tx.commit().await,
        }
    }
}

impl Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.0
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.0
    }
}

/// Where a statement runs: on any connection of a pool, or inside a transaction.
pub(super) enum On<'c> {
    Pool(&'c Pool),
    Conn(&'c mut Conn),
}

impl<'c> From<&'c Pool> for On<'c> {
    fn from(pool: &'c Pool) -> Self {
        Self::Pool(pool)
    }
}

impl<'c> From<&'c mut Conn> for On<'c> {
    fn from(conn: &'c mut Conn) -> Self {
        Self::Conn(conn)
    }
}

impl<'c> From<&'c mut Tx> for On<'c> {
    fn from(tx: &'c mut Tx) -> Self {
        Self::Conn(&mut tx.0)
    }
}

/// A value bound to a statement. Every value the store binds is one of these
/// few types (timestamps, statuses and JSON are text; booleans are integers),
/// so each has the same database type on both drivers, NULL or not.
#[derive(Debug, Clone)]
pub(super) enum Arg<'q> {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<&'q str>),
    OwnedText(Option<String>),
    Bytes(Option<&'q [u8]>),
}

macro_rules! args {
    ($($t:ty => |$v:ident| $arg:expr;)+) => {
        $(impl<'q> From<$t> for Arg<'q> {
            fn from($v: $t) -> Self {
                $arg
            }
        })+
    };
}

args! {
    i64 => |v| Arg::Int(Some(v));
    &i64 => |v| Arg::Int(Some(*v));
    Option<i64> => |v| Arg::Int(v);
    f64 => |v| Arg::Float(Some(v));
    Option<f64> => |v| Arg::Float(v);
    &'q str => |v| Arg::Text(Some(v));
    Option<&'q str> => |v| Arg::Text(v);
    &'q String => |v| Arg::Text(Some(v));
    Option<&'q String> => |v| Arg::Text(v.map(String::as_str));
    &'q Option<String> => |v| Arg::Text(v.as_deref());
    String => |v| Arg::OwnedText(Some(v));
    Option<String> => |v| Arg::OwnedText(v);
    &'q [u8] => |v| Arg::Bytes(Some(v));
    &'q Vec<u8> => |v| Arg::Bytes(Some(v));
}

/// Statuses, kinds and scopes are bound as their words.
impl<'q, W: Word> From<W> for Arg<'q> {
    fn from(word: W) -> Self {
        Arg::Text(Some(word.word()))
    }
}

impl<'q, W: Word> From<Option<W>> for Arg<'q> {
    fn from(word: Option<W>) -> Self {
        Arg::Text(word.map(W::word))
    }
}

/// A statement and the values bound to it, like `sqlx::query`.
#[must_use = "a query does nothing until it is executed"]
pub(super) struct Query<'q> {
    sql: &'q str,
    args: Vec<Arg<'q>>,
}

/// Starts a statement.
pub(super) fn query(sql: &str) -> Query<'_> {
    Query { sql, args: Vec::new() }
}

/// Starts a statement whose first column is the answer, like `sqlx::query_scalar`.
pub(super) fn query_scalar<T>(sql: &str) -> Scalar<'_, T> {
    Scalar {
        query: query(sql),
        column: std::marker::PhantomData,
    }
}

/// Runs `$run` with `$q` the driver's own query, `$exec` the executor `$on`
/// names, and `$wrap` the constructor of [`Row`] for that driver.
macro_rules! on_driver {
    ($self:ident, $on:ident, |$q:ident, $exec:ident, $wrap:ident| $run:expr) => {
        match $on.into() {
            On::Pool(Pool::Sqlite(pool)) => {
                let ($q, $exec, $wrap) = ($self.on::<Sqlite>(), pool, Row::Sqlite);
                $run
            }
            On::Pool(Pool::Postgres(pool)) => {
                let ($q, $exec, $wrap) = ($self.on::<Postgres>(), pool, Row::Postgres);
                $run
            }
            On::Conn(Conn::Sqlite(tx)) => {
                let ($q, $exec, $wrap) = ($self.on::<Sqlite>(), &mut **tx, Row::Sqlite);
                $run
            }
            On::Conn(Conn::Postgres(tx)) => {
                let ($q, $exec, $wrap) = ($self.on::<Postgres>(), &mut **tx, Row::Postgres);
                $run
            }
        }
    };
}

impl<'q> Query<'q> {
    /// Binds the next `$n`.
    pub(super) fn bind(mut self, value: impl Into<Arg<'q>>) -> Self {
        self.args.push(value.into());
        self
    }

    /// The statement as the driver `DB`'s own query, its values bound.
    fn on<DB: sqlx::Database>(self) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
    where
        Option<i64>: Encode<'q, DB> + Type<DB>,
        Option<f64>: Encode<'q, DB> + Type<DB>,
        Option<&'q str>: Encode<'q, DB> + Type<DB>,
        Option<String>: Encode<'q, DB> + Type<DB>,
        Option<&'q [u8]>: Encode<'q, DB> + Type<DB>,
    {
        let mut q = sqlx::query::<DB>(self.sql);
        for arg in self.args {
            q = match arg {
                Arg::Int(v) => q.bind(v),
                Arg::Float(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::OwnedText(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
            };
        }
        q
    }

    /// Runs the statement.
    pub(super) async fn execute<'c>(self, on: impl Into<On<'c>>) -> sqlx::Result<Done> {
        on_driver!(self, on, |q, exec, _wrap| Ok(Done(
            q.execute(exec).await?.rows_affected()
        )))
    }

    /// The one row the statement returns (an error if none).
    pub(super) async fn fetch_one<'c>(self, on: impl Into<On<'c>>) -> sqlx::Result<Row> {
        on_driver!(self, on, |q, exec, wrap| Ok(wrap(q.fetch_one(exec).await?)))
    }

    /// The row the statement returns, if any.
    pub(super) async fn fetch_optional<'c>(self, on: impl Into<On<'c>>) -> sqlx::Result<Option<Row>> {
        on_driver!(self, on, |q, exec, wrap| Ok(q.fetch_optional(exec).await?.map(wrap)))
    }

    /// Every row the statement returns.
    pub(super) async fn fetch_all<'c>(self, on: impl Into<On<'c>>) -> sqlx::Result<Vec<Row>> {
        on_driver!(self, on, |q, exec, wrap| Ok(q
            .fetch_all(exec)
            .await?
            .into_iter()
            .map(wrap)
            .collect()))
    }
}

/// What a statement that returns no rows did.
pub(super) struct Done(u64);

impl Done {
    /// How many rows it inserted, changed or deleted.
    pub(super) fn rows_affected(&self) -> u64 {
        self.0
    }
}

/// A statement answered by its first column (see [`query_scalar`]).
#[must_use = "a query does nothing until it is executed"]
pub(super) struct Scalar<'q, T> {
    query: Query<'q>,
    column: std::marker::PhantomData<fn() -> T>,
}

impl<'q, T: Column> Scalar<'q, T> {
    /// Binds the next `$n`.
    pub(super) fn bind(mut self, value: impl Into<Arg<'q>>) -> Self {
        self.query = self.query.bind(value);
        self
    }

    /// The first column of the one row the statement returns.
    pub(super) async fn fetch_one<'c>(self, on: impl Into<On<'c>>) -> sqlx::Result<T> {
        self.query.fetch_one(on).await?.try_get(0)
    }

    /// The first column of the row the statement returns, if any.
    pub(super) async fn fetch_optional<'c>(self, on: impl Into<On<'c>>) -> sqlx::Result<Option<T>> {
        self.query
            .fetch_optional(on)
            .await?
            .map(|row| row.try_get(0))
            .transpose()
    }

    /// The first column of every row the statement returns.
    pub(super) async fn fetch_all<'c>(self, on: impl Into<On<'c>>) -> sqlx::Result<Vec<T>> {
        self.query
            .fetch_all(on)
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect()
    }
}

/// A row, from either driver.
pub(super) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

/// A type both drivers read from a column (owned; borrowed text reads through [`Row::get`]).
pub(super) trait Column:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Column for T where T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres> {}

/// A column by name or position, on both drivers.
pub(super) trait Index: sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow> {}

impl<I: sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow>> Index for I {}

impl Row {
    /// Reads a column, failing if it is missing or of another type.
    pub(super) fn try_get<'r, T, I: Index>(&'r self, column: I) -> sqlx::Result<T>
    where
        T: Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres>,
    {
        match self {
            Self::Sqlite(row) => sqlx::Row::try_get(row, column),
            Self::Postgres(row) => sqlx::Row::try_get(row, column),
        }
    }

    /// Reads a column the query is known to return with this type.
    ///
    /// # Panics
    /// If the column is missing or of another type: a bug in the store's SQL.
    pub(super) fn get<'r, T, I: Index>(&'r self, column: I) -> T
    where
        T: Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres>,
    {
        match self {
            Self::Sqlite(row) => sqlx::Row::get(row, column),
            Self::Postgres(row) => sqlx::Row::get(row, column),
        }
    }
}
