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
#[non_exhaustive]
pub struct DbError {
    /// Who raised it: the server, the connection, or the runner itself.
    pub kind: DbErrorKind,
    /// SQLSTATE, when the server sent one (none for a broken connection or the runner's own
    /// finding).
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

/// Who raised a [`DbError`]. Decided when the error is made, never guessed from a missing
/// SQLSTATE: the runner's own findings have none either, yet the session is fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbErrorKind {
    /// The server: [`DbError::code`] holds its SQLSTATE.
    Server,
    /// The connection or the client library: the session, and with it the advisory lock,
    /// may be gone.
    Connection,
    /// The runner, after the server reported success: a statement left an invalid index, a
    /// transaction block of the file was never closed, a snapshot could not be stored. The
    /// session is fine.
    Runner,
}

impl DbError {
    /// The runner's own finding about a statement the server ran without error.
    pub(crate) fn runner(message: String, hint: Option<String>) -> DbError {
        DbError {
            kind: DbErrorKind::Runner,
            code: None,
            message,
            detail: None,
            hint,
            position: None,
        }
    }

    pub(crate) fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// `lock_timeout` expired (SQLSTATE 55P03, lock_not_available).
    pub fn is_lock_timeout(&self) -> bool {
        self.code_is("55P03")
    }

    /// The connection itself failed: the session, and with it the advisory lock, may be gone.
    pub fn is_connection_error(&self) -> bool {
        self.kind == DbErrorKind::Connection
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

    /// [`Conn::simple`] without the rows: nothing of the responses is kept (a big batch's
    /// pieces before its last return a row per progress marker, which nobody reads).
    fn execute(&mut self, sql: &str) -> impl Future<Output = Result<(), DbError>>;

    /// Waits, between two polls of the advisory lock or two lock-timeout retries.
    fn sleep(&mut self, duration: Duration) -> impl Future<Output = ()>;
}

/// Whether the runner is waiting for an answer, and since when: the one hook a stall watchdog
/// (`crate::watchdog`) needs. A counter tells one query from the next, so a check that spans
/// two queries is never mistaken for one long wait.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    state: std::sync::Mutex<(u64, Option<std::time::Instant>)>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Option<std::time::Instant>)> {
        // A poisoned lock only means a panic elsewhere; the pair inside is still valid.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self) {
        let mut state = self.lock();
        state.0 += 1;
        state.1 = Some(std::time::Instant::now());
    }

    fn end(&self) {
        self.lock().1 = None;
    }

    /// The outstanding query (its number and when it was sent), if any.
    #[cfg_attr(not(feature = "connect"), allow(dead_code))]
    pub(crate) fn outstanding(&self) -> Option<(u64, std::time::Instant)> {
        let state = self.lock();
        state.1.map(|since| (state.0, since))
    }
}

/// Any connection, telling an [`InFlight`] (when there is one) while each query is outstanding.
/// Every operation of the `Migrator` goes through it, so the engine itself knows nothing of
/// watchdogs.
pub(crate) struct Watched<'c, C> {
    pub conn: &'c mut C,
    pub in_flight: Option<&'c InFlight>,
}

/// Tells the [`InFlight`] a query is outstanding until dropped: ended on drop, so an async run
/// whose future is dropped mid-query is no longer waiting for anything.
struct Outstanding<'f>(Option<&'f InFlight>);

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.0 {
            f.end();
        }
    }
}

impl<'c, C> Watched<'c, C> {
    fn outstanding(&self) -> Outstanding<'c> {
        if let Some(f) = self.in_flight {
            f.start();
        }
        Outstanding(self.in_flight)
    }
}

impl<C: Conn> Conn for Watched<'_, C> {
    async fn simple(&mut self, sql: &str) -> Result<Vec<Row>, DbError> {
        let _outstanding = self.outstanding();
        self.conn.simple(sql).await
    }

    async fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        let _outstanding = self.outstanding();
        self.conn.execute(sql).await
    }

    async fn sleep(&mut self, duration: Duration) {
        self.conn.sleep(duration).await
    }
}

#[cfg(any(feature = "postgres", feature = "tokio-postgres"))]
pub(crate) fn from_pg(error: &tokio_postgres_error::Error) -> DbError {
    match error.as_db_error() {
        Some(db) => DbError {
            kind: DbErrorKind::Server,
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
            kind: DbErrorKind::Connection,
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

/// The sync adapter: a blocking `postgres::Client`. Its futures complete inside `poll`, so
/// [`block_on`] drives them without a runtime. The one sync adapter of the crate: the engine,
/// the maintenance operations and the snapshot all go through it.
#[cfg(feature = "postgres")]
pub(crate) struct SyncConn<'c>(pub &'c mut postgres::Client);

#[cfg(feature = "postgres")]
impl Conn for SyncConn<'_> {
    async fn simple(&mut self, sql: &str) -> Result<Vec<Row>, DbError> {
        self.0
            .simple_query(sql)
            .map(rows_of)
            .map_err(|e| from_pg(&e))
    }

    async fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        self.0.batch_execute(sql).map_err(|e| from_pg(&e))
    }

    async fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// The async adapter: a `tokio_postgres::Client` (its connection task runs on the caller's
/// runtime). The one async adapter of the crate.
#[cfg(feature = "tokio-postgres")]
pub(crate) struct AsyncConn<'c>(pub &'c tokio_postgres::Client);

#[cfg(feature = "tokio-postgres")]
impl Conn for AsyncConn<'_> {
    async fn simple(&mut self, sql: &str) -> Result<Vec<Row>, DbError> {
        self.0
            .simple_query(sql)
            .await
            .map(rows_of)
            .map_err(|e| from_pg(&e))
    }

    async fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        self.0.batch_execute(sql).await.map_err(|e| from_pg(&e))
    }

    async fn sleep(&mut self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Drives a future whose every await is already complete (the sync driver's futures block
/// inside `poll` and never return `Pending`). No runtime is started, so the sync API is safe to
/// call wherever a blocking `postgres::Client` is.
///
/// # Panics
///
/// If the future returns `Pending`: something in the sync path awaited a future that does not
/// complete inside `poll` (an async client, a timer), a bug of this crate. Nothing could ever
/// wake it, so it panics with [`PENDING_IN_SYNC_DRIVER`] rather than spin or hang.
#[cfg(feature = "postgres")]
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("{PENDING_IN_SYNC_DRIVER}"),
    }
}

/// The panic message of [`block_on`] when a future of the sync driver returns `Pending`.
#[cfg(feature = "postgres")]
pub(crate) const PENDING_IN_SYNC_DRIVER: &str =
    "bug in migrations-core: a future of the sync driver returned Pending, which only an \
     async client or timer does; the sync driver (postgres::Client) must complete every await \
     inside poll. Please report it";

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Pending once, then ready: what an async client's future does.
    struct PendingOnce(bool);

    impl Future for PendingOnce {
        type Output = u8;
        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
            if self.0 {
                Poll::Ready(7)
            } else {
                self.0 = true;
                Poll::Pending
            }
        }
    }

    #[test]
    fn block_on_returns_a_ready_output() {
        assert_eq!(block_on(PendingOnce(true)), 7);
        assert_eq!(block_on(async { 1 + 1 }), 2);
    }

    /// A `Pending` in the sync driver is a bug: it fails loudly, once, instead of polling again.
    #[test]
    #[should_panic(
        expected = "bug in migrations-core: a future of the sync driver returned Pending"
    )]
    fn block_on_panics_on_pending() {
        block_on(PendingOnce(false));
    }
}
