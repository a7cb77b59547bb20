//! The one thing the engine needs of a connection: send a simple-protocol query string and get
//! its rows back as text. The sync and async drivers each implement it in a few lines.
//!
//! The simple protocol is used throughout: one round trip per query string, which may hold
//! several statements (a transactional migration and its bookkeeping go in one).

use std::fmt;
use std::future::Future;
use std::time::Duration;

/// One result row, as text (`None` for NULL).
pub type Row = Vec<Option<String>>;

/// A server or connection error, reduced to what the engine decides on and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    /// SQLSTATE, when the server sent one (none for a broken connection).
    pub code: Option<String>,
    /// The server's primary message, or the client library's for a connection failure.
    pub message: String,
    /// The server's `DETAIL`, when it sent one.
    pub detail: Option<String>,
    /// The server's `HINT`, when it sent one.
    pub hint: Option<String>,
    /// 1-based character position in the query string, when the server gave one.
    pub position: Option<u32>,
}

impl DbError {
    pub(crate) fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// `lock_timeout` expired (SQLSTATE 55P03, lock_not_available).
    pub fn is_lock_timeout(&self) -> bool {
        self.code_is("55P03")
    }

    /// The connection itself failed (no SQLSTATE): the session, and with it the advisory lock,
    /// may be gone.
    pub fn is_connection_error(&self) -> bool {
        self.code.is_none()
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(code) = &self.code {
            write!(f, " (SQLSTATE {code})")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, "; detail: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}

/// A connection the engine can drive.
pub(crate) trait Conn {
    /// Sends `sql` with the simple query protocol; returns the rows of every statement that
    /// returned rows, in order.
    fn simple(&mut self, sql: &str) -> impl Future<Output = Result<Vec<Row>, DbError>>;

    /// Waits, between two polls of the advisory lock or two lock-timeout retries.
    fn sleep(&mut self, duration: Duration) -> impl Future<Output = ()>;
}

#[cfg(any(feature = "postgres", feature = "tokio-postgres"))]
pub(crate) fn from_pg(error: &tokio_postgres_error::Error) -> DbError {
    match error.as_db_error() {
        Some(db) => DbError {
            code: Some(db.code().code().to_owned()),
            message: db.message().to_owned(),
            detail: db.detail().map(str::to_owned),
            hint: db.hint().map(str::to_owned),
            position: match db.position() {
                Some(tokio_postgres_error::ErrorPosition::Original(p)) => Some(*p),
                _ => None,
            },
        },
        None => DbError {
            code: None,
            message: error.to_string(),
            detail: None,
            hint: None,
            position: None,
        },
    }
}

/// The error types are shared: `postgres` re-exports `tokio_postgres`'s.
#[cfg(feature = "tokio-postgres")]
mod tokio_postgres_error {
    pub use tokio_postgres::error::ErrorPosition;
    pub use tokio_postgres::Error;
}
#[cfg(all(feature = "postgres", not(feature = "tokio-postgres")))]
mod tokio_postgres_error {
    pub use postgres::error::ErrorPosition;
    pub use postgres::Error;
}

#[cfg(any(feature = "postgres", feature = "tokio-postgres"))]
pub(crate) fn rows_of(messages: Vec<tokio_postgres_simple::SimpleQueryMessage>) -> Vec<Row> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres_simple::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[cfg(feature = "tokio-postgres")]
mod tokio_postgres_simple {
    pub use tokio_postgres::SimpleQueryMessage;
}
#[cfg(all(feature = "postgres", not(feature = "tokio-postgres")))]
mod tokio_postgres_simple {
    pub use postgres::SimpleQueryMessage;
}

/// Drives a future whose every await is already complete (the sync driver's futures block
/// inside `poll` and never return `Pending`). No runtime is started, so the sync API is safe to
/// call wherever a blocking `postgres::Client` is.
#[cfg(feature = "postgres")]
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            // Not reached with the sync driver; yield rather than spin if it ever is.
            Poll::Pending => std::thread::yield_now(),
        }
    }
}
