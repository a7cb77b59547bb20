//! Connecting to PostgreSQL the way `psql` does: a URL or `key=value` connection string, the
//! standard `PG*` environment variables, `.pgpass`, `sslmode` through rustls, and a bounded wait
//! for a server that is still starting.
//!
//! Behind the `connect` cargo feature (the `migrations` CLI enables it). A service that brings
//! its own `postgres::Client` or `tokio_postgres::Client` does not need this module and does not
//! build rustls.
//!
//! ```no_run
//! use std::time::Duration;
//! use migrations_core::connect::{connect, ConnectOptions};
//!
//! let opts = ConnectOptions {
//!     url: Some("postgres://app@db.internal/app?sslmode=verify-full".into()),
//!     connect_timeout: Duration::from_secs(30),
//!     ..ConnectOptions::default()
//! };
//! let mut client = connect(&opts)?;
//! client.batch_execute("SELECT 1")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where each setting comes from
//!
//! Setting by setting, the first source that gives a value wins, as in libpq:
//!
//! 1. **The connection string**: [`ConnectOptions::url`], else the `DATABASE_URL` environment
//!    variable. Either a URL,
//!    `postgres://` or `postgresql://` `[user[:password]@][host][:port][,host2[:port2]...][/dbname][?param=value&...]`
//!    (percent-encode `@ : / ? # %` in user names and passwords; IPv6 addresses go in brackets,
//!    `[::1]:5432`; a query parameter overrides the same setting in the URL's body), or libpq's
//!    `key=value` pairs, `host=db.internal port=5432 user=app dbname=app` (values with spaces
//!    in single quotes, `\'` and `\\` escaped). The keywords, in both forms: `host` (a name, an
//!    address, or a Unix socket directory such as `/var/run/postgresql`; several separated by
//!    commas), `port` (one, or one per host), `user`, `password`, `dbname`, `sslmode`,
//!    `sslrootcert`, `connect_timeout`, `application_name`, `fallback_application_name`,
//!    `options`, `target_session_attrs` (`any`, `read-write`, `read-only`), `channel_binding`,
//!    `passfile`, `keepalives`, `keepalives_idle`, `keepalives_interval`, `keepalives_count`,
//!    `tcp_user_timeout` (milliseconds). An unknown keyword is an error (a misspelt `sslmode`
//!    must not silently mean no TLS). The parsing itself (URL bodies, host lists, IPv6, Unix
//!    sockets, percent-decoding, numbers and enumerations) is `tokio_postgres::Config`'s.
//! 2. **The environment**, for what the connection string leaves out: `PGHOST`, `PGPORT`,
//!    `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT`,
//!    `PGAPPNAME`, `PGOPTIONS`, `PGTARGETSESSIONATTRS`, `PGCHANNELBINDING`, `PGPASSFILE`. An
//!    empty variable (or an empty value in the string) counts as unset.
//! 3. **The password file**, only when neither gave a password: `passfile` / `PGPASSFILE`, else
//!    `~/.pgpass`. libpq's format: one `host:port:database:user:password` a line, `*` matches
//!    anything, `\:` and `\\` escape, `#` starts a comment, the first matching line wins. The host
//!    of a Unix-socket connection to a default socket directory matches `localhost`. As in libpq,
//!    a file that its group or others may read or write is ignored, with a warning through the
//!    `log` crate.
//! 4. **Defaults**: the host is the default Unix socket (`/var/run/postgresql`, `/run/postgresql`
//!    or `/tmp`, whichever has the server's socket file), else `localhost`; the port is 5432; the
//!    user is the operating-system user (`$USER`, else `$LOGNAME`); the database is named after
//!    the user; `sslmode` is `prefer`. The application name is the string's `application_name`,
//!    else `PGAPPNAME`, else the string's `fallback_application_name`, else
//!    [`ConnectOptions::application_name`] (the program's own name is a fallback, so users can
//!    still tag their connections).
//!
//! [`ConnectOptions::database`] replaces the database name, whatever gave it (the round trip's
//! scratch database: the same server and credentials, another database).
//!
//! With no connection string, no `DATABASE_URL` and none of `PGHOST`, `PGPORT`, `PGUSER`,
//! `PGDATABASE`, there is nothing to go on and [`connect`] fails with
//! [`ConnectErrorKind::NoTarget`] rather than guessing a server.
//!
//! # TLS
//!
//! Through rustls (with the `ring` provider), libpq's semantics:
//!
//! | `sslmode` | encrypts | checks the certificate chain | checks the host name |
//! | --- | --- | --- | --- |
//! | `disable` | no | | |
//! | `prefer` (default) | when the server offers it; falls back to a plain connection when the server declines or the TLS handshake fails | only with a root certificate file | no |
//! | `require` | yes, or fails | only with a root certificate file (then as `verify-ca`) | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |
//!
//! The root certificates are `sslrootcert` / `PGSSLROOTCERT` (a PEM file), else
//! `~/.postgresql/root.crt` when it exists (as libpq), else, for `verify-ca` and `verify-full`,
//! the platform's trust store (or the Mozilla roots of `webpki-roots` when the platform has
//! none). `sslrootcert=system` asks for the platform's store and, as in libpq, implies
//! `verify-full` (a weaker explicit `sslmode` is an error). Connections over a Unix socket never
//! use TLS (as in libpq). Client certificates (`sslcert`, `sslkey`) are not supported.
//!
//! # Waiting for the server
//!
//! [`connect`] and [`connect_async`] retry, within [`ConnectOptions::connect_timeout`], only
//! failures that mean the server is not up yet: connection refused, no socket file, the server
//! closing the connection before it answers (a container port published before the server
//! listens), a connection attempt timing out, and SQLSTATE `57P03` ("the database system is
//! starting up"). The pause between attempts starts at 50 ms and doubles up to 500 ms. A wrong
//! password, a missing database or role, a TLS failure or an unknown host name fails at once.
//! A zero timeout makes one attempt. `connect_timeout` in the connection string or
//! `PGCONNECT_TIMEOUT` (seconds; as in libpq, 0 means none and 1 means 2) bounds each single
//! attempt; the overall wait is the options' timeout. [`connect_async`] bounds a whole attempt
//! (connection, TLS, authentication); the blocking [`connect`] bounds establishing the
//! connection.
//!
//! # Passwords
//!
//! A password never appears in a [`ConnectError`], in a log line or in the `Debug` output of
//! [`ConnectOptions`] or [`Target`]. A connection string that cannot be parsed is never quoted:
//! the error says what is wrong with its shape (no `postgres://`, an unterminated quote, ...).
//! Print connection strings through [`redact`], and text that may quote one through
//! [`redact_text`].
//!
//! # Errors
//!
//! [`ConnectErrorKind`] is decided by what happened, never by the text of a message (the
//! server's follow its `lc_messages`): the server's SQLSTATE (`57P03` is waited for, `28P01`
//! is [`ConnectErrorKind::Authentication`], `3D000` [`ConnectErrorKind::DatabaseNotFound`],
//! ...), the type and kind of the underlying error (`std::io::Error::kind`, `rustls::Error`),
//! how far TLS got, and whether a password was given.
//!
//! # The code
//!
//! `resolve` (connection string, environment and defaults into a [`Target`]), `pgpass`, `tls`
//! (the rustls connector, the verifiers, how far a handshake got), `wait` (the attempts, their
//! classification and the bounded retry; [`connect`] and [`connect_async`]) and `redact`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

mod pgpass;
mod redact;
mod resolve;
mod tls;
mod wait;

pub use redact::{redact, redact_text};
pub use resolve::{Endpoint, Host, Target};
pub(crate) use wait::connect_async_owned;
pub use wait::{connect, connect_async};

/// Default of [`ConnectOptions::connect_timeout`]: how long to wait for a server that is still
/// starting.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default PostgreSQL port.
pub const DEFAULT_PORT: u16 = 5432;

/// Shorter passwords are not searched for in messages (they would mangle them); no message is
/// built from a password in the first place.
const MIN_SCRUB_LEN: usize = 4;

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

/// What to connect to and how long to wait. See the [module documentation](self) for how the
/// connection string, the environment and `.pgpass` combine.
#[derive(Clone)]
pub struct ConnectOptions {
    /// A `postgres://` or `postgresql://` URL, or `key=value` pairs; `None` (or empty) means
    /// `DATABASE_URL`, else the `PG*` variables.
    pub url: Option<String>,
    /// How long to keep retrying while the server is not up yet (connection refused, no socket,
    /// "the database system is starting up"). Zero makes a single attempt.
    pub connect_timeout: Duration,
    /// The application name to report to the server when neither the connection string nor
    /// `PGAPPNAME` sets one (libpq's `fallback_application_name`), e.g. `"migrations"`.
    pub application_name: Option<String>,
    /// Connect to this database instead of the one the connection string or `PGDATABASE` names
    /// (same server, same credentials: `.pgpass` is searched for the named one).
    pub database: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            url: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            application_name: None,
            database: None,
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("url", &self.url.as_deref().map(redact))
            .field("connect_timeout", &self.connect_timeout)
            .field("application_name", &self.application_name)
            .field("database", &self.database)
            .finish()
    }
}

/// `user@host:port/database` for the options (see [`Target::describe`]); resolves the
/// connection string and the environment, so it fails where [`connect`] would fail before
/// connecting.
pub fn describe_target(opts: &ConnectOptions) -> Result<String, ConnectError> {
    Target::resolve(opts).map(|t| t.describe())
}

/// libpq's `sslmode`. See the [module documentation](self#tls).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, else (or when the handshake fails) a plain connection.
    #[default]
    Prefer,
    /// TLS or fail; the certificate is not checked unless a root certificate file is given.
    Require,
    /// TLS, with the certificate chain checked against the root certificates.
    VerifyCa,
    /// TLS, with the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling: `disable`, `prefer`, `require`, `verify-ca`, `verify-full`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = ConnectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            "allow" => Err(ConnectError::config(
                "sslmode \"allow\" is not supported: use \"prefer\" or \"disable\"",
            )),
            other => Err(ConnectError::config(format!(
                "invalid sslmode \"{other}\": expected disable, prefer, require, verify-ca or \
                 verify-full"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a connection could not be made. `Display` is one line that says what to do; it never
/// contains a password.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    kind: ConnectErrorKind,
    message: String,
    sqlstate: Option<String>,
}

/// The broad reason of a [`ConnectError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// Nothing says where to connect: no URL, no `DATABASE_URL`, no `PG*` variables.
    NoTarget,
    /// The connection string, a `PG*` variable or a file one of them names is invalid.
    InvalidConfig,
    /// No server answered within the timeout (refused, no socket, still starting, timed out).
    Unreachable,
    /// The host name does not resolve.
    UnknownHost,
    /// The password was wrong, or authentication failed otherwise.
    Authentication,
    /// The server asked for a password and none was given.
    PasswordRequired,
    /// The database does not exist.
    DatabaseNotFound,
    /// The server refused the connection for another reason (no `pg_hba.conf` entry, unknown
    /// role, too many connections, ...); see [`ConnectError::sqlstate`].
    Rejected,
    /// TLS failed: the server does not offer it, or its certificate was not accepted.
    Tls,
    /// [`connect`] was called inside a Tokio runtime, or [`connect_async`] outside one.
    Runtime,
    /// Anything else.
    Other,
}

impl ConnectError {
    fn new(kind: ConnectErrorKind, message: impl Into<String>) -> Self {
        ConnectError {
            kind,
            message: message.into(),
            sqlstate: None,
        }
    }

    fn config(message: impl Into<String>) -> Self {
        ConnectError::new(ConnectErrorKind::InvalidConfig, message)
    }

    fn with_sqlstate(mut self, code: &str) -> Self {
        self.sqlstate = Some(code.to_string());
        self
    }

    /// Replaces every occurrence of a secret in the message (a last line of defence: no message
    /// is built from a password).
    fn scrub<'a>(mut self, secrets: impl IntoIterator<Item = &'a str>) -> Self {
        for secret in secrets {
            if secret.len() >= MIN_SCRUB_LEN && self.message.contains(secret) {
                self.message = self.message.replace(secret, "***");
            }
        }
        self
    }

    /// The broad reason.
    pub fn kind(&self) -> ConnectErrorKind {
        self.kind
    }

    /// The SQLSTATE the server sent, when it refused the connection (`28P01`, `3D000`, ...).
    pub fn sqlstate(&self) -> Option<&str> {
        self.sqlstate.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_hides_known_secrets() {
        let e = ConnectError::config("oops hunter22 oops").scrub(["hunter22", "ab"]);
        assert_eq!(e.to_string(), "oops *** oops");
    }

    #[test]
    fn options_debug_hides_the_password() {
        let opts = ConnectOptions {
            url: Some("host=h password='s3cret x' user=u".into()),
            database: Some("scratch".into()),
            ..ConnectOptions::default()
        };
        let shown = format!("{opts:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("password=***"), "{shown}");
        assert!(shown.contains("database: Some(\"scratch\")"), "{shown}");
    }
}
