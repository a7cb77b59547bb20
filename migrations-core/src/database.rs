//! Creating and dropping the database a connection string names, as `sqlx database` and
//! `diesel database` do (`migrations database create|drop|reset|setup`). Feature `connect`.
//!
//! The database to act on is the one [`ConnectOptions`] resolve to (the connection string, else
//! `DATABASE_URL`, else `PGDATABASE`, else the user's name: the one resolver of [`connect`]).
//! The statements run on the server's maintenance database: `postgres`, else `template1` when
//! `postgres` does not exist (or is the database being dropped), with the same host,
//! credentials and TLS settings.
//!
//! ```no_run
//! use migrations_core::connect::ConnectOptions;
//! use migrations_core::database;
//!
//! let options = ConnectOptions {
//!     url: Some("postgres://app@localhost/app_dev".into()),
//!     ..ConnectOptions::default()
//! };
//! if database::create(&options)? {
//!     println!("created app_dev");
//! }
//! # Ok::<(), database::DatabaseError>(())
//! ```
//!
//! Errors are decided by SQLSTATE: `42501` (the role lacks `CREATEDB`, or does not own the
//! database) is [`DatabaseError::PermissionDenied`], naming the role and the fix; `55006` (other
//! sessions are connected) is [`DatabaseError::InUse`], naming each session (pid, user,
//! application, client address) from `pg_stat_activity`.

use std::fmt;

use crate::connect::{connect, connect_async, ConnectErrorKind, ConnectOptions, Target};
use crate::db::{Conn, DbError, SyncConn};
use crate::sql::{quote_ident, quote_literal};

/// The maintenance databases tried, in order (as `createdb` and `dropdb` do).
const MAINTENANCE: [&str; 2] = ["postgres", "template1"];

/// Why creating or dropping a database failed. `Display` says what to do; it never holds a
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatabaseError {
    /// No connection to the server's maintenance database (or the options resolve to nothing).
    #[error(transparent)]
    Connect(#[from] crate::connect::ConnectError),

    /// The role may not create the database (no `CREATEDB`) or drop it (not its owner).
    #[error("{}", permission_text(.action, .role, .database))]
    PermissionDenied {
        /// `create` or `drop`.
        action: &'static str,
        /// The role the server saw (`current_user`).
        role: String,
        /// The database.
        database: String,
    },

    /// Other sessions are connected to the database, so it cannot be dropped.
    #[error("{}", in_use_text(.database, .sessions))]
    InUse {
        /// The database.
        database: String,
        /// The other sessions, as `pg_stat_activity` showed them just after the refusal
        /// (empty when they closed in between).
        sessions: Vec<Session>,
    },

    /// The name is longer than the server keeps (`max_identifier_length`, 63 bytes unless
    /// PostgreSQL was built otherwise): the server would silently cut it, and act on another
    /// database than the one named.
    #[error(
        "database name \"{database}\" is {len} bytes long; PostgreSQL keeps only the first \
         {max} bytes of a name, so it would act on \"{}\" instead: choose a shorter name",
        truncated(.database, *.max)
    )]
    NameTooLong {
        /// The database, as named.
        database: String,
        /// Its length in bytes.
        len: usize,
        /// The server's `max_identifier_length`.
        max: usize,
    },

    /// Another server error (the database name is invalid, the template is busy, ...).
    #[error("could not {action} database \"{database}\": {source}")]
    Server {
        /// `create` or `drop`.
        action: &'static str,
        /// The database.
        database: String,
        /// The server's error.
        source: DbError,
    },
}

impl DatabaseError {
    /// The SQLSTATE behind the error, when the server sent one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            DatabaseError::Connect(e) => e.sqlstate(),
            DatabaseError::PermissionDenied { .. } => Some("42501"),
            DatabaseError::InUse { .. } => Some("55006"),
            DatabaseError::NameTooLong { .. } => None,
            DatabaseError::Server { source, .. } => source.code.as_deref(),
        }
    }
}

/// Another session connected to a database that is being dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// The server process id (`pg_terminate_backend` takes it).
    pub pid: i32,
    /// The session's user.
    pub user: Option<String>,
    /// Its `application_name` (empty when the client set none).
    pub application: Option<String>,
    /// The client's address (none for a Unix socket).
    pub client: Option<String>,
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if let Some(user) = &self.user {
            write!(f, " user {user}")?;
        }
        match self.application.as_deref() {
            Some(app) if !app.is_empty() => write!(f, " application {app}")?,
            _ => {}
        }
        if let Some(client) = &self.client {
            write!(f, " from {client}")?;
        }
        Ok(())
    }
}

/// `name` cut to `max` bytes, as the server cuts it (never inside a character).
fn truncated(name: &str, max: usize) -> &str {
    let mut end = max.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

fn permission_text(action: &str, role: &str, database: &str) -> String {
    if action == "create" {
        format!(
            "role \"{role}\" may not create databases (SQLSTATE 42501): grant it with \
             `ALTER ROLE {} CREATEDB` as a superuser, or create database \"{database}\" as a \
             role that may",
            quote_ident(role)
        )
    } else {
        format!(
            "role \"{role}\" may not drop database \"{database}\" (SQLSTATE 42501): only its \
             owner or a superuser may; connect as one of them"
        )
    }
}

fn in_use_text(database: &str, sessions: &[Session]) -> String {
    let who = if sessions.is_empty() {
        "other sessions (they have closed since; try again)".to_owned()
    } else {
        let list: Vec<String> = sessions.iter().map(Session::to_string).collect();
        format!(
            "{} other session{}: {}",
            sessions.len(),
            if sessions.len() == 1 { "" } else { "s" },
            list.join("; ")
        )
    };
    format!(
        "database \"{database}\" is being used by {who} (SQLSTATE 55006); close them, or drop \
         with force (`migrations database drop --force`), which ends them \
         (DROP DATABASE ... WITH (FORCE) on PostgreSQL 13 and later)"
    )
}

/// The name of the database `options` resolve to (what [`create`] and [`drop`] act on).
pub fn name(options: &ConnectOptions) -> Result<String, DatabaseError> {
    Ok(Target::resolve(options)?.database().to_owned())
}

/// Whether the database `options` name exists.
pub fn exists(options: &ConnectOptions) -> Result<bool, DatabaseError> {
    let database = name(options)?;
    let mut admin = maintenance(options, &database)?;
    crate::db::block_on(exists_on(&mut SyncConn(&mut admin), &database, "create"))
}

/// Creates the database `options` name, unless it exists. `Ok(true)` when it was created,
/// `Ok(false)` when it was already there.
pub fn create(options: &ConnectOptions) -> Result<bool, DatabaseError> {
    let database = name(options)?;
    let mut admin = maintenance(options, &database)?;
    crate::db::block_on(create_on(&mut SyncConn(&mut admin), &database))
}

/// Drops the database `options` name, if it exists. With `force`, other sessions connected to
/// it are ended (`WITH (FORCE)` on PostgreSQL 13 and later, `pg_terminate_backend` before);
/// without, they make it fail with [`DatabaseError::InUse`]. `Ok(true)` when it was dropped,
/// `Ok(false)` when there was none.
pub fn drop(options: &ConnectOptions, force: bool) -> Result<bool, DatabaseError> {
    let database = name(options)?;
    let mut admin = maintenance(options, &database)?;
    crate::db::block_on(drop_on(&mut SyncConn(&mut admin), &database, force))
}

/// Async twin of [`exists`] (connects with `tokio_postgres` on the caller's runtime).
pub async fn exists_async(options: &ConnectOptions) -> Result<bool, DatabaseError> {
    let database = name(options)?;
    let admin = maintenance_async(options, &database).await?;
    exists_on(&mut crate::db::AsyncConn(&admin), &database, "create").await
}

/// Async twin of [`create`].
pub async fn create_async(options: &ConnectOptions) -> Result<bool, DatabaseError> {
    let database = name(options)?;
    let admin = maintenance_async(options, &database).await?;
    create_on(&mut crate::db::AsyncConn(&admin), &database).await
}

/// Async twin of [`drop`].
pub async fn drop_async(options: &ConnectOptions, force: bool) -> Result<bool, DatabaseError> {
    let database = name(options)?;
    let admin = maintenance_async(options, &database).await?;
    drop_on(&mut crate::db::AsyncConn(&admin), &database, force).await
}

/// The maintenance databases to try for `database`: never the database itself (a session
/// cannot drop the database it is connected to).
fn candidates(options: &ConnectOptions, database: &str) -> Vec<ConnectOptions> {
    MAINTENANCE
        .iter()
        .filter(|m| **m != database)
        .map(|m| ConnectOptions {
            database: Some((*m).to_owned()),
            ..options.clone()
        })
        .collect()
}

fn maintenance(
    options: &ConnectOptions,
    database: &str,
) -> Result<postgres::Client, DatabaseError> {
    let mut last = None;
    for candidate in candidates(options, database) {
        match connect(&candidate) {
            Ok(client) => return Ok(client),
            // Only a missing `postgres` moves on to `template1`; any other failure (password,
            // server down) would fail there too, so it is reported as it is.
            Err(e) if e.kind() == ConnectErrorKind::DatabaseNotFound => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or_else(|| unreachable_candidates(database), DatabaseError::from))
}

async fn maintenance_async(
    options: &ConnectOptions,
    database: &str,
) -> Result<tokio_postgres::Client, DatabaseError> {
    let mut last = None;
    for candidate in candidates(options, database) {
        match connect_async(&candidate).await {
            Ok(client) => return Ok(client),
            Err(e) if e.kind() == ConnectErrorKind::DatabaseNotFound => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or_else(|| unreachable_candidates(database), DatabaseError::from))
}

/// `candidates` always leaves one of the two names: this is never reached, but an error is
/// cheaper to keep honest than a panic.
fn unreachable_candidates(database: &str) -> DatabaseError {
    DatabaseError::Server {
        action: "reach the maintenance database for",
        database: database.to_owned(),
        source: DbError::runner(
            "neither postgres nor template1 could be used".to_owned(),
            None,
        ),
    }
}

async fn exists_on<C: Conn>(
    conn: &mut C,
    database: &str,
    action: &'static str,
) -> Result<bool, DatabaseError> {
    check_length(conn, database).await?;
    let rows = conn
        .simple(&format!(
            "SELECT 1 FROM pg_catalog.pg_database WHERE datname = {}",
            quote_literal(database)
        ))
        .await
        .map_err(|source| server(action, database, source))?;
    Ok(!rows.is_empty())
}

async fn create_on<C: Conn>(conn: &mut C, database: &str) -> Result<bool, DatabaseError> {
    if exists_on(conn, database, "create").await? {
        return Ok(false);
    }
    match conn
        .simple(&format!("CREATE DATABASE {}", quote_ident(database)))
        .await
    {
        Ok(_) => Ok(true),
        // Created by someone else between the check and here: it exists, as asked.
        Err(e) if e.code_is("42P04") => Ok(false),
        Err(e) if e.code_is("42501") => Err(denied(conn, "create", database).await),
        Err(source) => Err(server("create", database, source)),
    }
}

async fn drop_on<C: Conn>(
    conn: &mut C,
    database: &str,
    force: bool,
) -> Result<bool, DatabaseError> {
    if !exists_on(conn, database, "drop").await? {
        return Ok(false);
    }
    let name = quote_ident(database);
    let sql = if !force {
        format!("DROP DATABASE IF EXISTS {name}")
    } else if server_version(conn).await.unwrap_or(0) >= 130_000 {
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    } else {
        // Before 13: end the sessions ourselves; one that connects in between makes the
        // drop fail with the list of sessions, as without force.
        conn.simple(&format!(
            "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity \
             WHERE datname = {} AND pid <> pg_catalog.pg_backend_pid()",
            quote_literal(database)
        ))
        .await
        .map_err(|source| server("drop", database, source))?;
        format!("DROP DATABASE IF EXISTS {name}")
    };
    match conn.simple(&sql).await {
        Ok(_) => Ok(true),
        Err(e) if e.code_is("42501") => Err(denied(conn, "drop", database).await),
        Err(e) if e.code_is("55006") => Err(DatabaseError::InUse {
            database: database.to_owned(),
            sessions: sessions(conn, database).await,
        }),
        Err(source) => Err(server("drop", database, source)),
    }
}

fn server(action: &'static str, database: &str, source: DbError) -> DatabaseError {
    DatabaseError::Server {
        action,
        database: database.to_owned(),
        source,
    }
}

/// The permission error, with the role the server saw (the connection string may name none:
/// the operating-system user, `PGUSER`, ...).
async fn denied<C: Conn>(conn: &mut C, action: &'static str, database: &str) -> DatabaseError {
    let role = conn
        .simple("SELECT current_user")
        .await
        .ok()
        .and_then(|rows| rows.into_iter().next())
        .and_then(|row| row.into_iter().next().flatten())
        .unwrap_or_else(|| "?".to_owned());
    DatabaseError::PermissionDenied {
        action,
        role,
        database: database.to_owned(),
    }
}

/// The other sessions on `database`; none when they cannot be read (the error they explain
/// is reported all the same).
async fn sessions<C: Conn>(conn: &mut C, database: &str) -> Vec<Session> {
    let sql = format!(
        "SELECT pid, usename, application_name, host(client_addr) FROM pg_catalog.pg_stat_activity \
         WHERE datname = {} AND pid <> pg_catalog.pg_backend_pid() ORDER BY pid",
        quote_literal(database)
    );
    let Ok(rows) = conn.simple(&sql).await else {
        return Vec::new();
    };
    rows.into_iter()
        .filter_map(|row| {
            let mut row = row.into_iter();
            let pid = row.next().flatten()?.parse().ok()?;
            Some(Session {
                pid,
                user: row.next().flatten(),
                application: row.next().flatten(),
                client: row.next().flatten(),
            })
        })
        .collect()
}

/// Refuses a name the server would cut: checked before anything else, so `exists`, `create`
/// and `drop` never look at or change another database than the one named.
async fn check_length<C: Conn>(conn: &mut C, database: &str) -> Result<(), DatabaseError> {
    let max = conn
        .simple("SHOW max_identifier_length")
        .await
        .ok()
        .and_then(|rows| rows.into_iter().next())
        .and_then(|row| row.into_iter().next().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(63);
    if database.len() > max {
        return Err(DatabaseError::NameTooLong {
            database: database.to_owned(),
            len: database.len(),
            max,
        });
    }
    Ok(())
}

async fn server_version<C: Conn>(conn: &mut C) -> Option<u32> {
    let rows = conn.simple("SHOW server_version_num").await.ok()?;
    rows.into_iter().next()?.into_iter().next()??.parse().ok()
}
