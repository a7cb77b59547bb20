//! The sqlx adapter (feature `sqlx`): [`Conn`] over a `sqlx::PgConnection`, so a sqlx service
//! migrates on the connection it already has, through the same engine as the other two drivers
//! (lock, no-transaction steps, session hygiene, warm start all come from the engine).
//!
//! Queries go through `sqlx::raw_sql`, which sends the string with the simple query protocol
//! (one round trip, several statements allowed, no prepared statement left in sqlx's cache);
//! the server then sends every value as text, which is what [`Row`] holds.

use std::time::Duration;

use sqlx::postgres::{PgDatabaseError, PgErrorPosition, PgRow};
use sqlx::{Row as _, ValueRef as _};

use crate::db::{Conn, DbError, DbErrorKind, Row};

/// A borrowed `sqlx::PgConnection` (a `PoolConnection<Postgres>` derefs to one).
pub(crate) struct SqlxConn<'c>(pub &'c mut sqlx::PgConnection);

impl Conn for SqlxConn<'_> {
    async fn simple(&mut self, sql: &str) -> Result<Vec<Row>, DbError> {
        // `AssertSqlSafe`: the engine's statements quote every identifier and literal they
        // build (`sql.rs`); the rest is the migration's own SQL, which is the point.
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&mut *self.0)
            .await
            .map_err(|e| from_sqlx(&e))?;
        rows.iter().map(text_row).collect()
    }

    async fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut *self.0)
            .await
            .map(drop)
            .map_err(|e| from_sqlx(&e))
    }

    async fn sleep(&mut self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// A row of the simple protocol: every value is text (or NULL).
fn text_row(row: &PgRow) -> Result<Row, DbError> {
    (0..row.len())
        .map(|i| {
            let value = row.try_get_raw(i).map_err(|e| from_sqlx(&e))?;
            if value.is_null() {
                return Ok(None);
            }
            value.as_str().map(|s| Some(s.to_owned())).map_err(|e| {
                DbError::runner(format!("column {i} of a result row is not text: {e}"), None)
            })
        })
        .collect()
}

/// The server's error with its SQLSTATE, detail, hint and position; anything else (I/O, TLS,
/// protocol, a closed pool) is the connection's: the session may be gone.
pub(crate) fn from_sqlx(error: &sqlx::Error) -> DbError {
    match error {
        sqlx::Error::Database(db) => {
            let pg = db.try_downcast_ref::<PgDatabaseError>();
            DbError {
                kind: DbErrorKind::Server,
                code: db.code().map(|c| c.into_owned()),
                message: db.message().to_owned(),
                detail: pg.and_then(|p| p.detail()).map(str::to_owned),
                hint: pg.and_then(|p| p.hint()).map(str::to_owned),
                position: pg.and_then(|p| match p.position() {
                    Some(PgErrorPosition::Original(n)) => u32::try_from(n).ok(),
                    _ => None,
                }),
            }
        }
        other => DbError {
            kind: DbErrorKind::Connection,
            code: None,
            message: other.to_string(),
            detail: None,
            hint: None,
            position: None,
        },
    }
}
