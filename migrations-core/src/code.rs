//! Rust-code migrations: a migration whose up (and optional down) is a Rust function the
//! service registers with its embedded set ([`Migrations::with_code`]), for data changes SQL
//! cannot express.
//!
//! The engine is one async implementation over `db::Conn`, which is not object safe; so the
//! function does not get the connection. It gets a [`CodeTx`], a mailbox: [`CodeTx::query`]
//! leaves its SQL there and waits; the engine, which polls the function's future, sends the
//! SQL on its own connection (inside the migration's transaction) and hands the rows back. One
//! function so serves the sync driver (whose `block_on` polls it) and the async one, and the
//! future stays `Send`.
//!
//! A function body cannot be hashed: the checksum covers what the user declares,
//! `code:` + SHA-256 of `code:<version>:<name>:<revision>`; bumping `revision` signals an edit.
//! The `code:` prefix also marks the history row, so a binary that lacks the function (the
//! CLI) shows it as applied by the service instead of reporting a missing file.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use crate::db::{Conn, DbError, Row};
use crate::embedded::{Migration, Migrations, Script};

/// The error a code migration returns: anything that is an error ([`DbError`] from
/// [`CodeTx`] included, which keeps its SQLSTATE in the run's error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The future a code migration's function returns.
pub type CodeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'a>>;

/// A code migration's up or down: a plain function (a `fn` item, so the set stays `Clone` and
/// `const`-friendly) that borrows the transaction handle for the life of its future.
///
/// ```
/// use migrations_core::{CodeFuture, CodeTx};
/// fn up(tx: &mut CodeTx) -> CodeFuture<'_> {
///     Box::pin(async move {
///         let rows = tx.query("SELECT 1").await?;
///         assert_eq!(rows[0][0].as_deref(), Some("1"));
///         Ok(())
///     })
/// }
/// ```
pub type CodeFn = for<'a> fn(&'a mut CodeTx) -> CodeFuture<'a>;

/// What a code migration's function may do: send SQL on the runner's connection, inside the
/// migration's transaction (or outside any, for a no-transaction one), and read the rows.
///
/// Statements go with the simple query protocol and rows come back as text (`None` for NULL);
/// put values in SQL with [`CodeTx::literal`]. Under the sync driver (`Migrator::run`) the function must await only
/// this handle's methods: there is no runtime to wake any other future.
#[derive(Debug, Default)]
pub struct CodeTx {
    slot: Arc<Mutex<Slot>>,
}

#[derive(Debug, Default)]
struct Slot {
    request: Option<String>,
    response: Option<Result<Vec<Row>, DbError>>,
    /// Statements sent, for the error's note.
    sent: usize,
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // A poisoned lock only means a panic elsewhere; the slot is still valid.
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

impl CodeTx {
    /// Sends `sql` (one or more statements) and returns the rows of every statement that
    /// returned rows, in order, as text.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Row>, DbError> {
        {
            let mut slot = lock(&self.slot);
            slot.response = None;
            slot.request = Some(sql.to_owned());
        }
        // No waker is needed: the engine looks at the mailbox whenever this future is pending.
        std::future::poll_fn(|_| match lock(&self.slot).response.take() {
            Some(response) => Poll::Ready(response),
            None => Poll::Pending,
        })
        .await
    }

    /// Sends `sql` and ignores its rows.
    pub async fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        self.query(sql).await.map(|_| ())
    }

    /// `text` as a SQL string literal (`E'...'`, quotes and backslashes escaped), to put a
    /// value read from a row into the next statement.
    pub fn literal(text: &str) -> String {
        crate::sql::quote_literal(text)
    }
}

/// Runs `f` to completion, sending every statement it asks for on `conn`. Returns the
/// function's own result and how many statements it sent.
pub(crate) async fn drive<C: Conn>(f: CodeFn, conn: &mut C) -> (Result<(), BoxError>, usize) {
    let mut tx = CodeTx::default();
    let slot = Arc::clone(&tx.slot);
    let mut future = f(&mut tx);
    loop {
        // Ready(Some): the function finished; Ready(None): it asks for a statement;
        // Pending: it waits on something else, which woke (or will wake) the caller's waker.
        let step = std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(Some(result)),
            Poll::Pending if lock(&slot).request.is_some() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        if let Some(result) = step {
            let sent = lock(&slot).sent;
            return (result, sent);
        }
        let Some(sql) = lock(&slot).request.take() else {
            continue;
        };
        let response = conn.simple(&sql).await;
        let mut slot = lock(&slot);
        slot.sent += 1;
        slot.response = Some(response);
    }
}

/// A code migration, to register with [`Migrations::with_code`].
///
/// ```
/// use migrations_core::{CodeFuture, CodeMigration, CodeTx};
/// fn up(tx: &mut CodeTx) -> CodeFuture<'_> {
///     Box::pin(async move { tx.execute("UPDATE users SET email = lower(email)").await?; Ok(()) })
/// }
/// const LOWER_EMAILS: CodeMigration = CodeMigration::new(3, "lower_emails", "1", up);
/// assert_eq!(LOWER_EMAILS.checksum().len(), 5 + 64);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CodeMigration {
    version: i64,
    name: &'static str,
    revision: &'static str,
    up: CodeFn,
    down: Option<CodeFn>,
    no_transaction: bool,
}

impl CodeMigration {
    /// A code migration: its version (the same space as the files'), its name (letters,
    /// digits, `_`, as in a file name), the revision string its checksum covers (bump it
    /// when the function changes), and its up function.
    pub const fn new(
        version: i64,
        name: &'static str,
        revision: &'static str,
        up: CodeFn,
    ) -> CodeMigration {
        CodeMigration {
            version,
            name,
            revision,
            up,
            down: None,
            no_transaction: false,
        }
    }

    /// The function that reverts it (`down`, `redo`); without one it cannot be reverted.
    pub const fn down(mut self, down: CodeFn) -> CodeMigration {
        self.down = Some(down);
        self
    }

    /// Runs the function outside a transaction (each statement commits on its own, for a
    /// batched backfill that must survive a kill); its history row is `running` meanwhile
    /// and `failed` if the function fails, as for a no-transaction file.
    pub const fn no_transaction(mut self) -> CodeMigration {
        self.no_transaction = true;
        self
    }

    /// `code:` + SHA-256 (hex) of `code:<version>:<name>:<revision>`.
    pub fn checksum(&self) -> String {
        checksum(self.version, self.name, self.revision)
    }

    fn script(&self, f: CodeFn) -> Script {
        // Shown where a file's path would be: "up 2 backfill failed (Rust code): ...".
        Script::of_code(
            f,
            checksum(self.version, self.name, self.revision),
            self.no_transaction,
            "Rust code".to_owned(),
        )
    }
}

fn checksum(version: i64, name: &str, revision: &str) -> String {
    let text = format!("code:{version}:{name}:{revision}");
    format!(
        "{CODE_PREFIX}{}",
        migrations_format::Checksum::of_file_text(&text).to_hex()
    )
}

/// The prefix of a code migration's checksum, in the set and in the history.
pub const CODE_PREFIX: &str = "code:";

/// Whether a history row's checksum is a code migration's.
pub fn is_code_checksum(checksum: &str) -> bool {
    checksum.starts_with(CODE_PREFIX)
}

/// A code migration refused by [`Migrations::with_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeMigrationError {
    message: String,
}

impl fmt::Display for CodeMigrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodeMigrationError {}

impl Migrations {
    /// The set with `code` added, in version order, as a service registers its code
    /// migrations before building a `Migrator`:
    /// `MIGRATIONS.clone().with_code(BACKFILL)?`.
    ///
    /// A version a file (or another code migration) already has is refused, naming both; so
    /// is a negative version or a name that is not letters, digits and `_`.
    pub fn with_code(mut self, code: CodeMigration) -> Result<Migrations, CodeMigrationError> {
        let refuse = |message: String| Err(CodeMigrationError { message });
        let shown = format!("code migration {} `{}`", code.version, code.name);
        if code.version < 0 {
            return refuse(format!("{shown}: the version must be 0 or more"));
        }
        if code.name.is_empty()
            || !code
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return refuse(format!(
                "{shown}: the name must be letters, digits and `_` (as in a file name)"
            ));
        }
        if let Some(other) = self.get(code.version) {
            return refuse(format!(
                "{shown} has the version of {} ({}): give one of them another version",
                other.name(),
                other.up().path()
            ));
        }
        let migration = Migration::code(
            code.version,
            code.name,
            code.script(code.up),
            code.down.map(|down| code.script(down)),
        );
        self.insert(migration);
        Ok(self)
    }
}

impl Migration {
    /// Whether this migration is a Rust-code one ([`Migrations::with_code`]).
    pub fn is_code(&self) -> bool {
        self.up().code().is_some()
    }

    fn code(version: i64, name: &str, up: Script, down: Option<Script>) -> Migration {
        Migration::from_parts(
            version,
            Cow::Owned(version.to_string()),
            Cow::Owned(name.to_owned()),
            up,
            down,
        )
    }
}
