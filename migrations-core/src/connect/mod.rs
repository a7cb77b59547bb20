//! Connecting to PostgreSQL the way `psql` does: a URL, the standard `PG*` environment
//! variables, `.pgpass`, `sslmode` through rustls, and a bounded wait for a server that is still
//! starting.
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
//! 1. **The URL**: [`ConnectOptions::url`], else the `DATABASE_URL` environment variable.
//!    `postgres://` or `postgresql://` `[user[:password]@][host][:port][,host2[:port2]...][/dbname][?param=value&...]`.
//!    Percent-encode `@ : / ? # %` in user names and passwords. IPv6 addresses go in brackets
//!    (`[::1]:5432`). Query parameters: `host` (a name, an address, or a Unix socket directory
//!    such as `host=/var/run/postgresql`), `port`, `user`, `password`, `dbname`, `sslmode`,
//!    `sslrootcert`, `connect_timeout`, `application_name`, `fallback_application_name`,
//!    `options`, `target_session_attrs` (`any`, `read-write`, `read-only`), `channel_binding`,
//!    `passfile`, `keepalives`, `keepalives_idle`, `keepalives_interval`, `keepalives_count`,
//!    `tcp_user_timeout`. A query parameter overrides the same setting in the URL's body. An
//!    unknown parameter is an error (a misspelt `sslmode` must not silently mean no TLS).
//! 2. **The environment**, for what the URL leaves out: `PGHOST`, `PGPORT`, `PGUSER`,
//!    `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT`, `PGAPPNAME`,
//!    `PGOPTIONS`, `PGTARGETSESSIONATTRS`, `PGCHANNELBINDING`, `PGPASSFILE`. An empty variable
//!    counts as unset.
//! 3. **The password file**, only when neither gave a password: `passfile` / `PGPASSFILE`, else
//!    `~/.pgpass`. libpq's format: one `host:port:database:user:password` a line, `*` matches
//!    anything, `\:` and `\\` escape, `#` starts a comment, the first matching line wins. The host
//!    of a Unix-socket connection to a default socket directory matches `localhost`. As in libpq,
//!    a file that its group or others may read or write is ignored, with a warning through the
//!    `log` crate.
//! 4. **Defaults**: the host is the default Unix socket (`/var/run/postgresql`, `/run/postgresql`
//!    or `/tmp`, whichever has the server's socket file), else `localhost`; the port is 5432; the
//!    user is the operating-system user (`$USER`, else `$LOGNAME`); the database is named after
//!    the user; `sslmode` is `prefer`. The application name is the URL's `application_name`,
//!    else `PGAPPNAME`, else the URL's `fallback_application_name`, else
//!    [`ConnectOptions::application_name`] (the program's own name is a fallback, so users can
//!    still tag their connections).
//!
//! With no URL, no `DATABASE_URL` and none of `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, there
//! is nothing to go on and [`connect`] fails with [`ConnectErrorKind::NoTarget`] rather than
//! guessing a server.
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
//! A zero timeout makes one attempt. `connect_timeout` in the URL or `PGCONNECT_TIMEOUT`
//! (seconds; as in libpq, 0 means none and 1 means 2) bounds each single attempt; the overall
//! wait is the options' timeout. [`connect_async`] bounds a whole attempt (connection, TLS,
//! authentication); the blocking [`connect`] bounds establishing the connection.
//!
//! # Passwords
//!
//! A password never appears in a [`ConnectError`], in a log line or in the `Debug` output of
//! [`ConnectOptions`] or [`Target`]. A connection string that cannot be parsed is never quoted:
//! the error says what is wrong with its shape (no `postgres://`, `key=value` pairs, ...).
//! Print connection strings through [`redact`], and text that may quote one through
//! [`redact_text`].
//!
//! # Errors
//!
//! [`ConnectErrorKind`] is decided by what happened, never by the text of a message (the
//! server's follow its `lc_messages`): the server's SQLSTATE (`57P03` is waited for, `28P01`
//! is [`ConnectErrorKind::Authentication`], `3D000` [`ConnectErrorKind::DatabaseNotFound`],
//! ...), the type and kind of the underlying error (`std::io::ErrorKind`, `rustls::Error`),
//! how far TLS got, and whether a password was given.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::{ChannelBinding, SslMode as WireSslMode, TargetSessionAttrs};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Default of [`ConnectOptions::connect_timeout`]: how long to wait for a server that is still
/// starting.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default PostgreSQL port.
pub const DEFAULT_PORT: u16 = 5432;

/// Where libpq builds commonly put the server's Unix socket.
const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// First pause between two attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// The least time one attempt is given, even when the overall wait is (nearly) over.
const MIN_ATTEMPT: Duration = Duration::from_secs(2);
/// Shorter passwords are not searched for in messages (they would mangle them); no message is
/// built from a password in the first place.
const MIN_SCRUB_LEN: usize = 4;

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

/// What to connect to and how long to wait. See the [module documentation](self) for how the URL,
/// the environment and `.pgpass` combine.
#[derive(Clone)]
pub struct ConnectOptions {
    /// A `postgres://` or `postgresql://` URL; `None` (or empty) means `DATABASE_URL`, else the
    /// `PG*` variables.
    pub url: Option<String>,
    /// How long to keep retrying while the server is not up yet (connection refused, no socket,
    /// "the database system is starting up"). Zero makes a single attempt.
    pub connect_timeout: Duration,
    /// The application name to report to the server when neither the URL nor `PGAPPNAME` sets
    /// one (libpq's `fallback_application_name`), e.g. `"migrations"`.
    pub application_name: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            url: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            application_name: None,
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("url", &self.url.as_deref().map(redact))
            .field("connect_timeout", &self.connect_timeout)
            .field("application_name", &self.application_name)
            .finish()
    }
}

/// libpq's `sslmode`. See the [module documentation](self#tls).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
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
    /// The URL, a `PG*` variable or a file one of them names is invalid.
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

// ---------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------
//
// Two functions, and every connection string or message that may hold one is printed through
// one of them: [`redact`] for a connection string on its own (a URL, a `key=value` string, or
// whatever a user put in `DATABASE_URL`), [`redact_text`] for free text (log lines, messages)
// that may quote one. The library's own messages never quote a connection string at all; these
// are for `Debug` output and for programs (like the `migrations` CLI) that print text from
// elsewhere.

/// What a connection string whose shape is not recognised is printed as: nothing of it.
const HIDDEN: &str = "***";

/// `conn` (a connection string) with every password replaced by `***`, for printing:
///
/// - a URL (`scheme://...`): the password of the user info (`user:secret@`; the user info ends
///   at the last `@`, so an unencoded `@`, `:` or `/` in the password is hidden too), the value
///   of every query parameter whose name ends in `password` (also percent-encoded names, and
///   values holding an unencoded `&`), and a "port" that is not a number (`postgres://u:secret/db`
///   lacks its `@host`, and what looks like a port is a password);
/// - `key=value` pairs (libpq's syntax: spaces around `=`, single-quoted values with
///   backslash escapes): the value of every key ending in `password`;
/// - anything else (no scheme, `postgres:/...`, `user:secret@host/db`, an unterminated quote,
///   ...): `***`, since there is no telling which part is the password.
///
/// Works on any input and never panics. Only user and host names, ports, the database name
/// and the other parameters are kept.
pub fn redact(conn: &str) -> String {
    if conn.trim().is_empty() {
        return conn.to_string();
    }
    if let Some(body) = url_body_start(conn) {
        return redact_url(conn, body);
    }
    match key_value_secrets(conn) {
        Some(secrets) => {
            let mut out = String::with_capacity(conn.len());
            let mut copied = 0;
            for range in secrets {
                out.push_str(&conn[copied..range.start]);
                out.push_str(HIDDEN);
                copied = range.end;
            }
            out.push_str(&conn[copied..]);
            out
        }
        None => HIDDEN.to_string(),
    }
}

/// `text` with the password of every URL in it (`scheme://user:secret@host`, see [`redact`])
/// and every `...password=value` pair (a quoted value up to its closing quote) replaced by
/// `***`. For free text: log lines, messages, `Debug` output. A URL ends at whitespace or, when
/// it is quoted (`"`, `'`, `` ` ``, `(`, `<`, `[` before it), at its last closing quote, so
/// `Some("postgres://u:***@h/d?password=***")` keeps its `")`. Text already redacted is left as
/// it is: `redact_text(&redact(x)) == redact(x)`.
///
/// Free text cannot be parsed: a password with unencoded spaces in a URL, or a connection
/// string without a scheme, cannot be found in it. Print connection strings through [`redact`]
/// instead of quoting them in messages.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let sep = search + found;
        search = sep + 3;
        // The scheme: letters, digits, `+ - .` before `://`, starting with a letter.
        let mut start = sep;
        while start > copied && is_scheme_byte(text.as_bytes()[start - 1]) {
            start -= 1;
        }
        while start < sep && !text.as_bytes()[start].is_ascii_alphabetic() {
            start += 1;
        }
        if start == sep {
            continue;
        }
        let end = text[sep..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| sep + i);
        // A quoted URL ends at its last closing quote; what follows is not part of it.
        let closer = text[..start].chars().next_back().and_then(|c| match c {
            '"' | '\'' | '`' => Some(c),
            '(' => Some(')'),
            '<' => Some('>'),
            '[' => Some(']'),
            _ => None,
        });
        let url_end = closer
            .and_then(|c| text[sep..end].rfind(c).map(|i| sep + i))
            .unwrap_or(end);
        out.push_str(&redact_password_pairs(&text[copied..start]));
        out.push_str(&redact_url(&text[start..url_end], sep + 3 - start));
        copied = url_end;
        search = search.max(url_end);
    }
    out.push_str(&redact_password_pairs(&text[copied..]));
    out
}

fn is_scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// Where the body of a URL starts (after `scheme://`), when `s` (after leading whitespace) is
/// one: the scheme is a letter then letters, digits, `+ - .`.
fn url_body_start(s: &str) -> Option<usize> {
    let trimmed = s.trim_start();
    let offset = s.len() - trimmed.len();
    let sep = trimmed.find("://")?;
    let scheme = &trimmed.as_bytes()[..sep];
    let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|&b| is_scheme_byte(b));
    valid.then_some(offset + sep + 3)
}

/// The URL `url` (its body starting at `body`) with its secrets hidden (see [`redact`]).
fn redact_url(url: &str, body: usize) -> String {
    let (head, rest) = url.split_at(body);
    let query_start = rest.find('?');
    let before_query = &rest[..query_start.unwrap_or(rest.len())];
    // The user info ends at the last `@` before the query; if the query holds an `@` while the
    // part before it does not, the password itself probably holds the `?`: hide up to the last
    // `@`.
    let at = match before_query.rfind('@') {
        Some(at) => Some(at),
        None if query_start.is_some() => rest.rfind('@'),
        None => None,
    };
    let mut out = String::with_capacity(url.len() + 3);
    out.push_str(head);
    let after = match at {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push(':');
                    out.push_str(HIDDEN);
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    let (hostpath, query) = match after.find('?') {
        Some(i) => (&after[..i], Some(&after[i + 1..])),
        None => (after, None),
    };
    let (hostspec, path) = match hostpath.find('/') {
        Some(i) => hostpath.split_at(i),
        None => (hostpath, ""),
    };
    out.push_str(&redact_hostspec(hostspec));
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        out.push_str(&redact_query(query));
    }
    out
}

/// `host:port,...` with everything from the first port that is not a number on hidden: with
/// no `@`, `postgres://user:secret/db` puts the password where the port goes.
fn redact_hostspec(hostspec: &str) -> String {
    let mut offset = 0;
    for item in hostspec.split(',') {
        let port_colon = match item.strip_prefix('[') {
            Some(bracketed) => bracketed
                .find(']')
                .and_then(|close| item[close + 2..].starts_with(':').then_some(close + 2)),
            None => item.find(':'),
        };
        if let Some(colon) = port_colon {
            let port = &item[colon + 1..];
            if !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
                return format!("{}:{HIDDEN}", &hostspec[..offset + colon]);
            }
        }
        offset += item.len() + 1;
    }
    hostspec.to_string()
}

/// A URL's query with the value of every `...password` parameter hidden. A value runs to the
/// next `&` that starts another `name=value` pair, so an unencoded `&` in a password does not
/// show the rest of it.
fn redact_query(query: &str) -> String {
    let starts_pair = |segment: &str| {
        segment.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'%' | b'.' | b'-'))
        })
    };
    let mut out = String::with_capacity(query.len());
    let mut hiding = false;
    for (i, segment) in query.split('&').enumerate() {
        if i > 0 && (starts_pair(segment) || !hiding) {
            hiding = false;
        }
        if hiding {
            continue;
        }
        if i > 0 {
            out.push('&');
        }
        match segment.split_once('=') {
            Some((name, _)) if starts_pair(segment) && is_password_key(&lenient_decode(name)) => {
                out.push_str(name);
                out.push('=');
                out.push_str(HIDDEN);
                hiding = true;
            }
            _ => out.push_str(segment),
        }
    }
    out
}

/// A parameter or keyword that holds a secret: `password`, `sslpassword`, any case.
fn is_password_key(name: &str) -> bool {
    name.len() >= 8
        && name.is_char_boundary(name.len() - 8)
        && name[name.len() - 8..].eq_ignore_ascii_case("password")
}

/// Percent-decodes what decodes, keeps the rest (for recognising names only).
fn lenient_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// When all of `s` is libpq `key=value` pairs (`key = 'quoted \' value' key2=plain`), the byte
/// ranges of the values of its `...password` keys; `None` when it is not that shape.
fn key_value_secrets(s: &str) -> Option<Vec<std::ops::Range<usize>>> {
    let b = s.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut secrets = Vec::new();
    let mut pairs = 0;
    let mut i = skip_ws(0);
    while i < b.len() {
        let key_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let key = &s[key_start..i];
        i = skip_ws(i);
        if key.is_empty() || b.get(i) != Some(&b'=') {
            return None;
        }
        // As libpq: after `=` and any spaces, the value (which may look like `key=...`).
        i = skip_ws(i + 1);
        let value_start = i;
        if b.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match b.get(i) {
                    None => return None,
                    Some(b'\\') => i += 2,
                    Some(b'\'') => break,
                    Some(_) => i += 1,
                }
            }
            i += 1;
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
        }
        i = i.min(b.len());
        if is_password_key(key) {
            secrets.push(value_start..i);
        }
        pairs += 1;
        i = skip_ws(i);
    }
    (pairs > 0).then_some(secrets)
}

/// Hides the value of every `...password = value` in free text. A value is single-quoted (to
/// its closing quote, backslash escapes; unterminated: to the end) or runs to whitespace or
/// `&`. A value that is already `***` followed by punctuation is left as it is.
fn redact_password_pairs(s: &str) -> String {
    const KEY: &[u8] = b"password";
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i + KEY.len() <= bytes.len() {
        if !bytes[i..i + KEY.len()].eq_ignore_ascii_case(KEY) {
            i += 1;
            continue;
        }
        let mut j = i + KEY.len();
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] != b'=' {
            i += 1;
            continue;
        }
        j += 1;
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        let value_start = j;
        let already = bytes[j..].starts_with(HIDDEN.as_bytes())
            && bytes.get(j + HIDDEN.len()).is_none_or(|&c| {
                c.is_ascii_whitespace()
                    || matches!(
                        c,
                        b'"' | b'\'' | b'`' | b')' | b']' | b'}' | b'>' | b',' | b';' | b'&'
                    )
            });
        if already {
            j += HIDDEN.len();
        } else if j < bytes.len() && bytes[j] == b'\'' {
            // A quoted value of a key=value string, with backslash escapes.
            j += 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j = (j + 1).min(bytes.len());
        } else {
            while j < bytes.len() && !bytes[j].is_ascii_whitespace() && bytes[j] != b'&' {
                j += 1;
            }
        }
        // All positions are at ASCII bytes (or the end), so these are char boundaries.
        out.push_str(&s[copied..value_start]);
        out.push_str(HIDDEN);
        copied = j;
        i = j.max(i + 1);
    }
    out.push_str(&s[copied..]);
    out
}

// ---------------------------------------------------------------------------------------
// The resolved target
// ---------------------------------------------------------------------------------------

/// A server address: a TCP host (name or IP address) or a Unix socket directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address.
    Tcp(String),
    /// The directory holding the server's socket file `.s.PGSQL.<port>`.
    Unix(PathBuf),
}

/// One server to try: host and port (several come from `host1,host2`).
#[derive(Clone)]
pub struct Endpoint {
    host: Host,
    port: u16,
    /// The host as `.pgpass` sees it.
    pgpass_host: String,
    password: Option<Secret>,
}

impl Endpoint {
    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` (`[::1]:5432` for IPv6), or the socket file for a Unix socket.
    pub fn address(&self) -> String {
        match &self.host {
            Host::Tcp(h) if h.contains(':') => format!("[{h}]:{}", self.port),
            Host::Tcp(h) => format!("{h}:{}", self.port),
            Host::Unix(dir) => format!("{}", dir.join(format!(".s.PGSQL.{}", self.port)).display()),
        }
    }

    fn host_port(&self) -> String {
        match &self.host {
            Host::Unix(dir) => format!("{}:{}", dir.display(), self.port),
            Host::Tcp(_) => self.address(),
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Clone)]
struct Secret(String);

/// Where the root certificates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RootCerts {
    /// `sslrootcert=<file>`.
    File(PathBuf),
    /// `~/.postgresql/root.crt`, which exists.
    DefaultFile(PathBuf),
    /// `sslrootcert=system`.
    System,
    /// Nothing given.
    Unset,
}

/// The connection parameters after the URL, the environment and `.pgpass` are combined. Its
/// `Debug` output holds no password.
#[derive(Clone)]
pub struct Target {
    endpoints: Vec<Endpoint>,
    user: String,
    database: String,
    ssl_mode: SslMode,
    root_certs: RootCerts,
    application_name: Option<String>,
    options: Option<String>,
    attempt_timeout: Option<Duration>,
    target_session_attrs: TargetSessionAttrs,
    channel_binding: ChannelBinding,
    keepalives: Option<bool>,
    keepalives_idle: Option<Duration>,
    keepalives_interval: Option<Duration>,
    keepalives_retries: Option<u32>,
    tcp_user_timeout: Option<Duration>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("ssl_mode", &self.ssl_mode)
            .field("root_certs", &self.root_certs)
            .field("application_name", &self.application_name)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Combines the options' URL (else `DATABASE_URL`), the `PG*` variables and `.pgpass`.
    pub fn resolve(opts: &ConnectOptions) -> Result<Target, ConnectError> {
        resolve_with(opts, &|name| std::env::var(name).ok())
    }

    /// The servers to try, in order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The `sslmode`.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The application name sent to the server, if any.
    pub fn application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    /// Whether a password was found (URL, `PGPASSWORD` or `.pgpass`) for the first server.
    pub fn has_password(&self) -> bool {
        self.endpoints.first().is_some_and(|e| e.password.is_some())
    }

    /// `user@host:port/database` (hosts joined by `,`), for messages. Holds no password.
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self.endpoints.iter().map(Endpoint::host_port).collect();
        format!("{}@{}/{}", self.user, hosts.join(","), self.database)
    }

    fn describe_endpoint(&self, endpoint: &Endpoint) -> String {
        format!("{}@{}/{}", self.user, endpoint.host_port(), self.database)
    }

    fn secrets(&self) -> impl Iterator<Item = &str> {
        self.endpoints
            .iter()
            .filter_map(|e| e.password.as_ref().map(|s| s.0.as_str()))
    }
}

/// `user@host:port/database` for the options (see [`Target::describe`]); resolves the URL and the
/// environment, so it fails where [`connect`] would fail before connecting.
pub fn describe_target(opts: &ConnectOptions) -> Result<String, ConnectError> {
    Target::resolve(opts).map(|t| t.describe())
}

// ---------------------------------------------------------------------------------------
// Resolution: URL + environment + .pgpass
// ---------------------------------------------------------------------------------------

/// Where a raw setting came from (for error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Url,
    Env(&'static str),
}

#[derive(Clone, Debug)]
struct Value {
    value: String,
    src: Src,
}

impl Value {
    /// How to name this setting in a message: "`sslmode` in the URL" or "PGSSLMODE".
    fn what(&self, param: &str) -> String {
        match self.src {
            Src::Url => format!("`{param}` in the URL"),
            Src::Env(var) => var.to_string(),
        }
    }
}

#[derive(Clone, Debug)]
struct List {
    items: Vec<String>,
    src: Src,
}

/// Raw settings before validation, keyed by their libpq parameter name.
#[derive(Default, Debug)]
struct Params {
    hosts: Option<List>,
    ports: Option<List>,
    values: BTreeMap<&'static str, Value>,
}

/// Scalar parameters, with the environment variable that supplies each when the URL does not.
const SCALAR_PARAMS: &[(&str, Option<&str>)] = &[
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("dbname", Some("PGDATABASE")),
    ("sslmode", Some("PGSSLMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("options", Some("PGOPTIONS")),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("passfile", Some("PGPASSFILE")),
    ("keepalives", None),
    ("keepalives_idle", None),
    ("keepalives_interval", None),
    ("keepalives_count", None),
    ("tcp_user_timeout", None),
];

/// libpq parameters that are accepted and have no effect here.
const IGNORED_PARAMS: &[&str] = &["sslcompression", "sslsni", "krbsrvname", "gsslib"];

/// Variables that, without a URL, say where to connect.
const TARGET_VARS: &[&str] = &["PGHOST", "PGPORT", "PGUSER", "PGDATABASE"];

impl Params {
    fn set(&mut self, key: &str, value: String, src: Src) -> Result<(), String> {
        match key {
            "host" => {
                self.hosts = Some(List {
                    items: value.split(',').map(str::to_string).collect(),
                    src,
                })
            }
            "port" => {
                self.ports = Some(List {
                    items: value.split(',').map(str::to_string).collect(),
                    src,
                })
            }
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" | "sslcertmode" => {
                return Err(format!(
                    "`{key}` is not supported (client certificates and CRLs are not)"
                ))
            }
            "gssencmode" if value == "require" => {
                return Err("gssencmode=require is not supported (no GSSAPI)".to_string())
            }
            "gssencmode" => {}
            "hostaddr" => {
                return Err("`hostaddr` is not supported: put the address in the host".to_string())
            }
            "service" => return Err("`service` (pg_service.conf) is not supported".to_string()),
            key if IGNORED_PARAMS.contains(&key) => {}
            key => match SCALAR_PARAMS.iter().find(|(name, _)| *name == key) {
                Some((name, _)) => {
                    self.values.insert(name, Value { value, src });
                }
                None => {
                    return Err(format!(
                        "unknown parameter `{key}` (supported: host, port, user, password, \
                         dbname, sslmode, sslrootcert, connect_timeout, application_name, \
                         options, target_session_attrs, channel_binding, passfile, keepalives, \
                         tcp_user_timeout)"
                    ))
                }
            },
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }
}

fn strip_scheme(url: &str) -> Option<&str> {
    ["postgresql://", "postgres://"].iter().find_map(|scheme| {
        url.get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| &url[scheme.len()..])
    })
}

/// Percent-decodes `s`. The error names `what` but never echoes the text (it may be a password).
fn decode(s: &str, what: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoding in {what}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{what} is not UTF-8 once percent-decoded"))
}

/// What is wrong with the shape of `url`, which does not start with `postgres://` or
/// `postgresql://`. Never quotes any of it: there is no telling where its password is.
fn not_a_url(url: &str) -> String {
    const WRITE: &str = "write it as postgres://user@host:5432/dbname (a password follows the \
                         user name after a `:`; percent-encode @ : / ? # % in it), or use the \
                         PG* variables";
    let lower = url.get(..10).unwrap_or(url).to_ascii_lowercase();
    if url_body_start(url).is_some() {
        format!("its scheme is not postgres:// or postgresql://: {WRITE}")
    } else if lower.starts_with("postgres") {
        format!(
            "it does not start with postgres:// or postgresql:// (the `://` after the scheme \
             is missing or incomplete): {WRITE}"
        )
    } else if url.starts_with("//") {
        format!("it has no scheme (it must start with postgres:// or postgresql://): {WRITE}")
    } else if key_value_secrets(url).is_some() {
        format!("key=value connection strings are not supported: {WRITE}")
    } else {
        format!(
            "it is neither a URL starting with postgres:// or postgresql:// nor key=value \
             pairs: {WRITE}"
        )
    }
}

/// Parses a `postgres://` URL into `p`. Errors are reasons that never quote the URL's user info.
fn parse_url(url: &str, p: &mut Params) -> Result<(), String> {
    let rest = strip_scheme(url).ok_or_else(|| not_a_url(url))?;
    let (body, query) = match rest.find('?') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if query.is_some_and(|q| q.contains('@')) {
        return Err(
            "there is an `@` after the `?`: percent-encode special characters \
                    (@ : / ? # %) in the user name and password"
                .to_string(),
        );
    }
    // The user info ends at the last `@`, so an unencoded `@` or `/` in a password still works.
    let (userinfo, hostpath) = match body.rfind('@') {
        Some(i) => (Some(&body[..i]), &body[i + 1..]),
        None => (None, body),
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, pw)) => (u, Some(pw)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            p.set("user", decode(user, "the user name")?, Src::Url)?;
        }
        if let Some(pw) = password.filter(|pw| !pw.is_empty()) {
            p.set("password", decode(pw, "the password")?, Src::Url)?;
        }
    }
    let (hostspec, path) = match hostpath.find('/') {
        Some(i) => (&hostpath[..i], Some(&hostpath[i + 1..])),
        None => (hostpath, None),
    };
    if !hostspec.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for item in hostspec.split(',') {
            let (host, port) = if let Some(bracketed) = item.strip_prefix('[') {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or("an IPv6 host has no closing `]`")?;
                match after {
                    "" => (host, ""),
                    after => (
                        host,
                        after
                            .strip_prefix(':')
                            .ok_or("unexpected text after an IPv6 host's `]`")?,
                    ),
                }
            } else {
                item.split_once(':').unwrap_or((item, ""))
            };
            hosts.push(decode(host, "a host name")?);
            ports.push(port.to_string());
        }
        p.hosts = Some(List {
            items: hosts,
            src: Src::Url,
        });
        if ports.iter().any(|port| !port.is_empty()) {
            p.ports = Some(List {
                items: ports,
                src: Src::Url,
            });
        }
    }
    if let Some(db) = path.filter(|db| !db.is_empty()) {
        p.set("dbname", decode(db, "the database name")?, Src::Url)?;
    }
    for pair in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or("a query parameter has no `=`")?;
        let key = decode(key, "a parameter name")?;
        let value = decode(value, "a parameter value")?;
        p.set(&key, value, Src::Url)?;
    }
    Ok(())
}

fn resolve_with(
    opts: &ConnectOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Target, ConnectError> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let mut params = Params::default();
    let result = resolve_params(opts, &env, &mut params);
    // A last line of defence for messages: hide any password we know of.
    let mut secrets: Vec<String> = env("PGPASSWORD").into_iter().collect();
    secrets.extend(params.get("password").map(|v| v.value.clone()));
    result.map_err(|e| e.scrub(secrets.iter().map(String::as_str)))
}

fn resolve_params(
    opts: &ConnectOptions,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Params,
) -> Result<Target, ConnectError> {
    let url = match opts.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => Some((url.to_string(), "database URL")),
        None => env("DATABASE_URL").map(|u| (u.trim().to_string(), "DATABASE_URL")),
    };
    match &url {
        Some((url, what)) => parse_url(url, p).map_err(|reason| {
            // Never the URL itself: a malformed one may show its password anywhere.
            ConnectError::config(format!("invalid {what}: {reason}"))
        })?,
        None if TARGET_VARS.iter().any(|var| env(var).is_some()) => {}
        None => {
            return Err(ConnectError::new(
                ConnectErrorKind::NoTarget,
                "no database URL: pass --database-url, set DATABASE_URL or the PG* variables \
                 (PGHOST, PGPORT, PGUSER, PGDATABASE, ...)",
            ))
        }
    }

    // The environment fills what the URL leaves out.
    if p.hosts.is_none() {
        p.hosts = env("PGHOST").map(|v| List {
            items: v.split(',').map(str::to_string).collect(),
            src: Src::Env("PGHOST"),
        });
    }
    if p.ports.is_none() {
        p.ports = env("PGPORT").map(|v| List {
            items: v.split(',').map(str::to_string).collect(),
            src: Src::Env("PGPORT"),
        });
    }
    for (key, var) in SCALAR_PARAMS {
        if let (false, Some(var)) = (p.values.contains_key(key), var) {
            if let Some(value) = env(var) {
                p.values.insert(
                    key,
                    Value {
                        value,
                        src: Src::Env(var),
                    },
                );
            }
        }
    }

    let user = match p.get("user") {
        Some(v) => v.value.clone(),
        None => env("USER").or_else(|| env("LOGNAME")).ok_or_else(|| {
            ConnectError::config(
                "no user name: put one in the URL (postgres://user@host/db) or set PGUSER",
            )
        })?,
    };
    let database = p
        .get("dbname")
        .map_or_else(|| user.clone(), |v| v.value.clone());

    // Hosts and ports.
    let hosts: Vec<String> = p
        .hosts
        .as_ref()
        .map_or_else(|| vec![String::new()], |l| l.items.clone());
    let ports: Vec<u16> = match &p.ports {
        None => Vec::new(),
        Some(list) => list
            .items
            .iter()
            .map(|raw| parse_port(raw, list.src))
            .collect::<Result<_, _>>()?,
    };
    let ports: Vec<u16> = match (ports.len(), hosts.len()) {
        (0, n) => vec![DEFAULT_PORT; n],
        (1, n) => vec![ports[0]; n],
        (m, n) if m == n => ports,
        (m, n) => {
            return Err(ConnectError::config(format!(
                "{n} hosts but {m} ports: give one port, or one per host"
            )))
        }
    };
    let mut endpoints = Vec::with_capacity(hosts.len());
    for (host, port) in hosts.iter().zip(ports) {
        let (host, pgpass_host) = if host.is_empty() {
            (default_host(port), "localhost".to_string())
        } else if host.starts_with('/') {
            let pgpass_host = if DEFAULT_SOCKET_DIRS.contains(&host.trim_end_matches('/')) {
                "localhost".to_string()
            } else {
                host.clone()
            };
            (Host::Unix(PathBuf::from(host)), pgpass_host)
        } else {
            (Host::Tcp(host.clone()), host.clone())
        };
        endpoints.push(Endpoint {
            host,
            port,
            pgpass_host,
            password: None,
        });
    }

    // TLS.
    let explicit_mode = match p.get("sslmode") {
        Some(v) => Some(v.value.parse::<SslMode>().map_err(|_| {
            ConnectError::config(format!(
                "invalid {} \"{}\": expected disable, prefer, require, verify-ca or verify-full",
                v.what("sslmode"),
                v.value
            ))
        })?),
        None => None,
    };
    let root_certs = match p.get("sslrootcert").map(|v| v.value.as_str()) {
        Some("system") => RootCerts::System,
        Some(path) => RootCerts::File(PathBuf::from(path)),
        None => match env("HOME").map(|home| Path::new(&home).join(".postgresql/root.crt")) {
            Some(path) if path.is_file() => RootCerts::DefaultFile(path),
            _ => RootCerts::Unset,
        },
    };
    let ssl_mode = match (explicit_mode, &root_certs) {
        (None, RootCerts::System) => SslMode::VerifyFull,
        (Some(mode), RootCerts::System) if mode != SslMode::VerifyFull => {
            return Err(ConnectError::config(format!(
                "sslrootcert=system needs sslmode=verify-full (it is \"{mode}\"), as in libpq"
            )))
        }
        (mode, _) => mode.unwrap_or_default(),
    };

    let application_name = p
        .get("application_name")
        .or_else(|| p.get("fallback_application_name"))
        .map(|v| v.value.clone())
        .or_else(|| opts.application_name.clone());
    let options = p.get("options").map(|v| v.value.clone());
    let attempt_timeout = match p.get("connect_timeout") {
        None => None,
        Some(v) => match v.value.trim().parse::<i64>() {
            Ok(secs) if secs <= 0 => None,
            Ok(secs) => Some(Duration::from_secs(secs.max(2) as u64)),
            Err(_) => return Err(invalid_number(v, "connect_timeout", "seconds")),
        },
    };
    let target_session_attrs = match p.get("target_session_attrs") {
        None => TargetSessionAttrs::Any,
        Some(v) => match v.value.as_str() {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            other => {
                return Err(ConnectError::config(format!(
                    "unsupported {} \"{other}\": expected any, read-write or read-only",
                    v.what("target_session_attrs")
                )))
            }
        },
    };
    let channel_binding = match p.get("channel_binding") {
        None => ChannelBinding::Prefer,
        Some(v) => match v.value.as_str() {
            "disable" => ChannelBinding::Disable,
            "prefer" => ChannelBinding::Prefer,
            "require" => ChannelBinding::Require,
            other => {
                return Err(ConnectError::config(format!(
                    "invalid {} \"{other}\": expected disable, prefer or require",
                    v.what("channel_binding")
                )))
            }
        },
    };
    let keepalives = match p.get("keepalives") {
        None => None,
        Some(v) => match v.value.trim() {
            "0" => Some(false),
            "1" => Some(true),
            _ => return Err(invalid_number(v, "keepalives", "0 or 1")),
        },
    };
    let seconds = |key: &str| -> Result<Option<Duration>, ConnectError> {
        p.get(key)
            .map(|v| {
                v.value
                    .trim()
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| invalid_number(v, key, "seconds"))
            })
            .transpose()
    };
    let keepalives_idle = seconds("keepalives_idle")?;
    let keepalives_interval = seconds("keepalives_interval")?;
    let keepalives_retries = p
        .get("keepalives_count")
        .map(|v| {
            v.value
                .trim()
                .parse::<u32>()
                .map_err(|_| invalid_number(v, "keepalives_count", "a count"))
        })
        .transpose()?;
    let tcp_user_timeout = p
        .get("tcp_user_timeout")
        .map(|v| {
            v.value
                .trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| invalid_number(v, "tcp_user_timeout", "milliseconds"))
        })
        .transpose()?
        .filter(|d| !d.is_zero());

    // Passwords: explicit, else .pgpass.
    match p.get("password") {
        Some(v) => {
            for e in &mut endpoints {
                e.password = Some(Secret(v.value.clone()));
            }
        }
        None => {
            let passfile = match p.get("passfile") {
                Some(v) => Some(PathBuf::from(&v.value)),
                None => env("HOME").map(|home| Path::new(&home).join(".pgpass")),
            };
            if let Some(entries) = passfile.as_deref().and_then(read_pgpass) {
                for e in &mut endpoints {
                    e.password = pgpass_lookup(
                        &entries,
                        &e.pgpass_host,
                        &e.port.to_string(),
                        &database,
                        &user,
                    )
                    .map(Secret);
                }
            }
        }
    }

    Ok(Target {
        endpoints,
        user,
        database,
        ssl_mode,
        root_certs,
        application_name,
        options,
        attempt_timeout,
        target_session_attrs,
        channel_binding,
        keepalives,
        keepalives_idle,
        keepalives_interval,
        keepalives_retries,
        tcp_user_timeout,
    })
}

fn invalid_number(v: &Value, key: &str, expected: &str) -> ConnectError {
    ConnectError::config(format!(
        "invalid {} \"{}\": expected {expected}",
        v.what(key),
        v.value
    ))
}

fn parse_port(raw: &str, src: Src) -> Result<u16, ConnectError> {
    if raw.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    match raw.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(ConnectError::config(match src {
            // The URL's text is not echoed: a mangled URL could put part of a password here.
            Src::Url => {
                "invalid port in the URL: expected a number from 1 to 65535 (percent-encode \
                         special characters such as @ : / ? # in the password)"
                    .to_string()
            }
            Src::Env(var) => {
                format!("invalid {var} \"{raw}\": expected a number from 1 to 65535")
            }
        })),
    }
}

/// The default socket directory that holds the server's socket for `port`, else `localhost`.
fn default_host(port: u16) -> Host {
    DEFAULT_SOCKET_DIRS
        .iter()
        .map(Path::new)
        .find(|dir| dir.join(format!(".s.PGSQL.{port}")).exists())
        .map_or_else(
            || Host::Tcp("localhost".to_string()),
            |dir| Host::Unix(dir.to_path_buf()),
        )
}

// ---------------------------------------------------------------------------------------
// .pgpass
// ---------------------------------------------------------------------------------------

/// One line of a password file: host, port, database, user (`None` = `*`) and the password.
#[derive(Debug, PartialEq, Eq)]
struct PgPassEntry {
    fields: [Option<String>; 4],
    password: String,
}

/// Parses one line of a password file; `None` for comments, blank and incomplete lines.
fn parse_pgpass_line(line: &str) -> Option<PgPassEntry> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let mut fields: Vec<Option<String>> = Vec::with_capacity(4);
    let mut current = String::new();
    let mut escaped_any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => {
                    current.push(next);
                    escaped_any = true;
                }
                None => current.push('\\'),
            },
            ':' => {
                if fields.len() == 4 {
                    // The password ends at an unescaped `:`; the rest is ignored, as in libpq.
                    break;
                }
                let field = std::mem::take(&mut current);
                fields.push(if field == "*" && !escaped_any {
                    None
                } else {
                    Some(field)
                });
                escaped_any = false;
            }
            c => current.push(c),
        }
    }
    if fields.len() < 4 {
        return None;
    }
    let fields: [Option<String>; 4] = fields.try_into().ok()?;
    Some(PgPassEntry {
        fields,
        password: current,
    })
}

fn parse_pgpass(text: &str) -> Vec<PgPassEntry> {
    text.lines().filter_map(parse_pgpass_line).collect()
}

/// The password of the first entry matching all four values; an empty one counts as none.
fn pgpass_lookup(
    entries: &[PgPassEntry],
    host: &str,
    port: &str,
    database: &str,
    user: &str,
) -> Option<String> {
    let wanted = [host, port, database, user];
    entries
        .iter()
        .find(|entry| {
            entry
                .fields
                .iter()
                .zip(wanted)
                .all(|(field, value)| field.as_deref().is_none_or(|f| f == value))
        })
        .map(|entry| entry.password.clone())
        .filter(|password| !password.is_empty())
}

/// Reads a password file; `None` when it is missing, not a file, or (with a warning) readable
/// by others.
fn read_pgpass(path: &Path) -> Option<Vec<PgPassEntry>> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() {
        log::warn!(
            "password file \"{}\" is not a plain file: ignoring it",
            path.display()
        );
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            log::warn!(
                "password file \"{}\" has group or world access; permissions should be u=rw \
                 (0600) or less: ignoring it",
                path.display()
            );
            return None;
        }
    }
    match fs::read(path) {
        Ok(bytes) => Some(parse_pgpass(&String::from_utf8_lossy(&bytes))),
        Err(e) => {
            log::warn!("could not read password file \"{}\": {e}", path.display());
            None
        }
    }
}

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_root_file(path: &Path) -> Result<RootCertStore, ConnectError> {
    let unreadable = |reason: String| {
        ConnectError::config(format!(
            "could not use the root certificate file \"{}\" (sslrootcert): {reason}",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(pem_error(e)))?;
    if certs.is_empty() {
        return Err(unreadable("it holds no PEM certificate".to_string()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| unreadable(format!("a certificate is invalid: {e}")))?;
    }
    Ok(roots)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("{other:?}"),
    }
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        log::debug!("loading the platform's root certificates: {e}");
    }
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        log::debug!("the platform has no root certificates: using the Mozilla roots");
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// The rustls connector for the target's `sslmode` and root certificates.
fn tls_connector(target: &Target) -> Result<MakeRustlsConnect, ConnectError> {
    let provider = crypto_provider();
    let roots = |required: bool| -> Result<Option<RootCertStore>, ConnectError> {
        Ok(match &target.root_certs {
            RootCerts::File(path) | RootCerts::DefaultFile(path) => Some(load_root_file(path)?),
            RootCerts::System => Some(system_roots()),
            RootCerts::Unset if required => Some(system_roots()),
            RootCerts::Unset => None,
        })
    };
    let verifier: Arc<dyn ServerCertVerifier> = match target.ssl_mode {
        SslMode::Disable => Arc::new(AnyCertificate(provider.clone())),
        SslMode::Prefer | SslMode::Require => match roots(false)? {
            Some(roots) => Arc::new(ChainOnly(webpki_verifier(roots, &provider)?)),
            None => Arc::new(AnyCertificate(provider.clone())),
        },
        SslMode::VerifyCa => Arc::new(ChainOnly(webpki_verifier(
            roots(true)?.unwrap_or_else(RootCertStore::empty),
            &provider,
        )?)),
        SslMode::VerifyFull => {
            webpki_verifier(roots(true)?.unwrap_or_else(RootCertStore::empty), &provider)?
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::new(ConnectErrorKind::Tls, format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn webpki_verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, ConnectError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| {
            ConnectError::new(
                ConnectErrorKind::Tls,
                format!("TLS setup failed: no usable root certificate ({e})"),
            )
        })
}

/// `sslmode=prefer`/`require` without root certificates: encrypt, check nothing but the
/// handshake's signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain is checked, the host name is not. (The WebPKI verifier checks
/// the chain before the name, so a name mismatch means the chain was fine.)
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

// ---------------------------------------------------------------------------------------
// Attempts and retries, shared by the blocking and the async entry points
// ---------------------------------------------------------------------------------------

/// How one attempt failed.
enum Failure {
    /// The server is not up yet (worth retrying).
    NotUp(NotUp),
    /// TLS failed (with `sslmode=prefer`, a plain connection is tried next).
    Tls(ConnectError),
    /// Retrying would not help.
    Fatal(ConnectError),
}

/// Why a server is not up yet: each is worth another attempt.
#[derive(Debug, PartialEq, Eq)]
enum NotUp {
    Refused,
    /// A Unix socket file that does not exist.
    NoSocket,
    /// The server closed the connection before it answered.
    Closed,
    TimedOut,
    /// The async attempt's own time limit.
    NoAnswer(Duration),
    /// SQLSTATE 57P03 `cannot_connect_now` (starting up, recovering, shutting down), with the
    /// server's message, in its language.
    CannotConnectNow(String),
}

impl fmt::Display for NotUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotUp::Refused => f.write_str("connection refused"),
            NotUp::NoSocket => f.write_str("no such socket"),
            NotUp::Closed => f.write_str("the server closed the connection"),
            NotUp::TimedOut => f.write_str("timed out"),
            NotUp::NoAnswer(d) => write!(f, "no answer within {}", format_duration(*d)),
            NotUp::CannotConnectNow(message) => f.write_str(message),
        }
    }
}

/// How far TLS got in one attempt, as seen by the connector (see [`ObservedTls`]).
#[derive(Default)]
struct TlsProgress {
    /// The server agreed to TLS: tokio_postgres called the connector.
    started: AtomicBool,
    /// The handshake completed.
    finished: AtomicBool,
}

impl TlsProgress {
    fn started(&self) -> bool {
        self.started.load(AtomicOrdering::SeqCst)
    }

    fn finished(&self) -> bool {
        self.finished.load(AtomicOrdering::SeqCst)
    }
}

/// The rustls connector, recording the attempt's [`TlsProgress`]: tokio_postgres reports "the
/// server does not support TLS" and a broken handshake only as text, while whether the
/// connector was called, and whether its handshake finished, tells them apart for sure.
#[derive(Clone)]
struct ObservedTls {
    inner: MakeRustlsConnect,
    progress: Arc<TlsProgress>,
}

type RustlsConnect = <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect;

impl MakeTlsConnect<Socket> for ObservedTls {
    type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
    type TlsConnect = ObservedConnect<RustlsConnect>;
    type Error = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        Ok(ObservedConnect {
            inner: MakeTlsConnect::<Socket>::make_tls_connect(&mut self.inner, domain)?,
            progress: self.progress.clone(),
        })
    }
}

/// One host's TLS connector, recording the attempt's [`TlsProgress`].
struct ObservedConnect<T> {
    inner: T,
    progress: Arc<TlsProgress>,
}

impl<T: TlsConnect<Socket>> TlsConnect<Socket> for ObservedConnect<T> {
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = ObservedHandshake<T::Future>;

    fn connect(self, stream: Socket) -> Self::Future {
        self.progress.started.store(true, AtomicOrdering::SeqCst);
        ObservedHandshake {
            inner: Box::pin(self.inner.connect(stream)),
            progress: self.progress,
        }
    }
}

/// A TLS handshake that records its success in the attempt's [`TlsProgress`].
struct ObservedHandshake<F> {
    inner: Pin<Box<F>>,
    progress: Arc<TlsProgress>,
}

impl<F: Future<Output = Result<S, E>>, S, E> Future for ObservedHandshake<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let result = self.inner.as_mut().poll(cx);
        if let Poll::Ready(Ok(_)) = &result {
            self.progress.finished.store(true, AtomicOrdering::SeqCst);
        }
        result
    }
}

/// One connection attempt to make.
struct Attempt {
    config: tokio_postgres::Config,
    tls: ObservedTls,
    /// The budget of the whole attempt.
    timeout: Duration,
}

// One `Step` lives at a time; boxing the attempt would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// Look the host name up (the blocking and async loops do that differently).
    Resolve {
        host: String,
        port: u16,
        timeout: Duration,
    },
    Try(Attempt),
    Wait(Duration),
    Fail(ConnectError),
}

enum Event {
    Start,
    Resolved(std::io::Result<Vec<IpAddr>>),
    Failed(Failure),
    Waited,
}

/// Decides what to do next: which server and address to try, in which TLS mode, when to pause
/// and when to give up. The blocking and async loops only carry its steps out.
///
/// Host names are resolved here rather than by `tokio_postgres` (which reports only the last
/// address's error), so that `localhost` refusing on `::1` and failing TLS on `127.0.0.1` is a
/// TLS failure, not a server that is "not up yet".
struct Driver<'a> {
    target: &'a Target,
    tls: MakeRustlsConnect,
    timeout: Duration,
    deadline: Instant,
    backoff: Duration,
    /// The endpoint being tried.
    endpoint: usize,
    /// Its addresses (`None` for a Unix socket), and the one being tried.
    addrs: Vec<Option<IpAddr>>,
    addr: usize,
    /// Whether the current attempt is `prefer`'s plain fallback.
    plain: bool,
    /// How far TLS got in the current attempt.
    progress: Arc<TlsProgress>,
    /// Failures of this round, by endpoint.
    round: Vec<(usize, Failure)>,
}

impl<'a> Driver<'a> {
    fn new(target: &'a Target, timeout: Duration) -> Result<Self, ConnectError> {
        Ok(Driver {
            target,
            tls: tls_connector(target)?,
            timeout,
            // A timeout too large for the clock means "as good as for ever".
            deadline: Instant::now()
                .checked_add(timeout)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600)),
            backoff: FIRST_BACKOFF,
            endpoint: 0,
            addrs: Vec::new(),
            addr: 0,
            plain: false,
            progress: Arc::default(),
            round: Vec::new(),
        })
    }

    fn step(&mut self, event: Event) -> Step {
        match event {
            Event::Start | Event::Waited => self.enter(0),
            Event::Resolved(Ok(ips)) => {
                let mut addrs = Vec::with_capacity(ips.len());
                for ip in ips {
                    if !addrs.contains(&Some(ip)) {
                        addrs.push(Some(ip));
                    }
                }
                if addrs.is_empty() {
                    let e = self.unknown_host("it has no address");
                    return self.failed(Failure::Fatal(e));
                }
                self.addrs = addrs;
                self.attempt(0, false)
            }
            Event::Resolved(Err(e)) => {
                let e = self.unknown_host(&e.to_string());
                self.failed(Failure::Fatal(e))
            }
            Event::Failed(failure) => self.failed(failure),
        }
    }

    /// Starts on endpoint `index`: resolve its name, or try it directly.
    fn enter(&mut self, index: usize) -> Step {
        self.endpoint = index;
        self.addrs.clear();
        self.addr = 0;
        let endpoint = &self.target.endpoints[index];
        match &endpoint.host {
            Host::Unix(_) => self.addrs.push(None),
            Host::Tcp(host) => match host.parse::<IpAddr>() {
                Ok(ip) => self.addrs.push(Some(ip)),
                Err(_) => {
                    return Step::Resolve {
                        host: host.clone(),
                        port: endpoint.port,
                        timeout: self.budget(),
                    }
                }
            },
        }
        self.attempt(0, false)
    }

    fn failed(&mut self, failure: Failure) -> Step {
        if let Failure::Tls(e) = &failure {
            if self.target.ssl_mode == SslMode::Prefer && !self.plain {
                log::debug!("{e}; sslmode=prefer: trying without TLS");
                return self.attempt(self.addr, true);
            }
        }
        self.round.push((self.endpoint, failure));
        if self.addr + 1 < self.addrs.len() {
            return self.attempt(self.addr + 1, false);
        }
        if self.endpoint + 1 < self.target.endpoints.len() {
            return self.enter(self.endpoint + 1);
        }
        self.end_of_round()
    }

    fn end_of_round(&mut self) -> Step {
        let round = std::mem::take(&mut self.round);
        if let Some(error) = round
            .iter()
            .position(|(_, f)| !matches!(f, Failure::NotUp(_)))
        {
            let (_, failure) = round.into_iter().nth(error).expect("found above");
            return Step::Fail(match failure {
                Failure::Tls(e) | Failure::Fatal(e) => e,
                Failure::NotUp(_) => unreachable!("not a NotUp"),
            });
        }
        let now = Instant::now();
        if now < self.deadline {
            let pause = self.backoff.min(self.deadline - now);
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            if let Some((i, Failure::NotUp(reason))) = round.first() {
                log::debug!(
                    "{} is not up yet ({reason}); retrying in {pause:?}",
                    self.target.endpoints[*i].address()
                );
            }
            return Step::Wait(pause);
        }
        // One entry per endpoint, with its distinct reasons (its addresses may differ).
        let mut reasons: Vec<(usize, Vec<String>)> = Vec::new();
        for (i, failure) in &round {
            let Failure::NotUp(reason) = failure else {
                continue;
            };
            let reason = reason.to_string();
            match reasons.iter_mut().find(|(j, _)| j == i) {
                Some((_, list)) if list.contains(&reason) => {}
                Some((_, list)) => list.push(reason),
                None => reasons.push((*i, vec![reason])),
            }
        }
        let described: Vec<String> = reasons
            .iter()
            .map(|(i, list)| {
                format!(
                    "{} ({})",
                    self.target.endpoints[*i].address(),
                    list.join("; ")
                )
            })
            .collect();
        // By SQLSTATE (57P03), not by the server's words.
        let starting = round
            .iter()
            .any(|(_, f)| matches!(f, Failure::NotUp(NotUp::CannotConnectNow(_))));
        let hint = if starting {
            "the server is still starting: wait longer (a larger connect timeout)"
        } else {
            "is the server running?"
        };
        let waited = if self.timeout.is_zero() {
            String::new()
        } else {
            format!(" after {}", format_duration(self.timeout))
        };
        Step::Fail(ConnectError::new(
            ConnectErrorKind::Unreachable,
            format!(
                "could not connect to {}{waited}: {hint}",
                described.join(", ")
            ),
        ))
    }

    /// The time one step may take.
    fn budget(&self) -> Duration {
        let remaining = self
            .deadline
            .saturating_duration_since(Instant::now())
            .max(MIN_ATTEMPT);
        self.target
            .attempt_timeout
            .map_or(remaining, |t| t.min(remaining))
    }

    fn attempt(&mut self, addr: usize, plain: bool) -> Step {
        self.addr = addr;
        self.plain = plain;
        self.progress = Arc::default();
        let timeout = self.budget();
        Step::Try(Attempt {
            config: self.config(self.endpoint, plain, timeout),
            tls: ObservedTls {
                inner: self.tls.clone(),
                progress: self.progress.clone(),
            },
            timeout,
        })
    }

    fn unknown_host(&self, reason: &str) -> ConnectError {
        let host = match &self.target.endpoints[self.endpoint].host {
            Host::Tcp(h) => h.as_str(),
            Host::Unix(_) => "",
        };
        ConnectError::new(
            ConnectErrorKind::UnknownHost,
            format!("could not resolve host name \"{host}\" ({reason}): check the host (PGHOST or the URL)"),
        )
    }

    fn config(&self, index: usize, plain: bool, timeout: Duration) -> tokio_postgres::Config {
        let t = self.target;
        let endpoint = &t.endpoints[index];
        let mut c = tokio_postgres::Config::new();
        let unix = match &endpoint.host {
            Host::Tcp(host) => {
                // The name is what TLS verifies; the address is what we connect to.
                c.host(host);
                if let Some(Some(ip)) = self.addrs.get(self.addr) {
                    c.hostaddr(*ip);
                }
                false
            }
            Host::Unix(dir) => {
                c.host_path(dir);
                true
            }
        };
        c.port(endpoint.port)
            .user(&t.user)
            .dbname(&t.database)
            .connect_timeout(timeout)
            .target_session_attrs(t.target_session_attrs)
            .channel_binding(t.channel_binding);
        if let Some(password) = &endpoint.password {
            c.password(password.0.as_bytes());
        }
        if let Some(name) = &t.application_name {
            c.application_name(name);
        }
        if let Some(options) = &t.options {
            c.options(options);
        }
        c.ssl_mode(match t.ssl_mode {
            // libpq never uses TLS over a Unix socket.
            _ if plain || unix => WireSslMode::Disable,
            SslMode::Disable => WireSslMode::Disable,
            SslMode::Prefer => WireSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireSslMode::Require,
        });
        if let Some(on) = t.keepalives {
            c.keepalives(on);
        }
        if let Some(idle) = t.keepalives_idle {
            c.keepalives_idle(idle);
        }
        if let Some(interval) = t.keepalives_interval {
            c.keepalives_interval(interval);
        }
        if let Some(retries) = t.keepalives_retries {
            c.keepalives_retries(retries);
        }
        if let Some(timeout) = t.tcp_user_timeout {
            c.tcp_user_timeout(timeout);
        }
        c
    }

    /// Classifies a failure of the current attempt by what it is, never by its text (the
    /// server's messages follow its `lc_messages`, and a library's wording may change in any
    /// release): the SQLSTATE of the server's refusal, the type of the error's cause (an I/O
    /// error and its kind, a rustls error), how far TLS got, and whether we had a password.
    fn classify(&self, error: &tokio_postgres::Error) -> Failure {
        let t = self.target;
        let endpoint = &t.endpoints[self.endpoint];
        let at = t.describe_endpoint(endpoint);
        // The server refused: by SQLSTATE. Its message is quoted, whatever its language.
        if let Some(db) = error.as_db_error() {
            let code = db.code();
            let message = db.message();
            let e = if *code == SqlState::CANNOT_CONNECT_NOW {
                return Failure::NotUp(NotUp::CannotConnectNow(message.to_string()));
            } else if *code == SqlState::INVALID_PASSWORD {
                ConnectError::new(
                    ConnectErrorKind::Authentication,
                    format!(
                        "{message} at {at}: check the password (PGPASSWORD, .pgpass or the URL)"
                    ),
                )
            } else if *code == SqlState::UNDEFINED_DATABASE {
                ConnectError::new(
                    ConnectErrorKind::DatabaseNotFound,
                    format!(
                        "{message} at {}: create it, or check the database name (PGDATABASE or \
                         the URL)",
                        endpoint.host_port()
                    ),
                )
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                ConnectError::new(
                    ConnectErrorKind::Rejected,
                    format!(
                        "the server at {} refused user \"{}\": {message}: check the user name \
                         (PGUSER or the URL) and the server's pg_hba.conf",
                        endpoint.host_port(),
                        t.user
                    ),
                )
            } else {
                ConnectError::new(
                    ConnectErrorKind::Rejected,
                    format!(
                        "the server refused the connection to {at}: {message} (SQLSTATE {})",
                        code.code()
                    ),
                )
            };
            return Failure::Fatal(e.with_sqlstate(code.code()));
        }

        // What tokio_postgres and its causes say, for messages only.
        let detail = match std::error::Error::source(error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        };
        if let Some(tls) = find_cause::<rustls::Error>(error) {
            return Failure::Tls(self.tls_error(&tls_reason(tls, endpoint, t)));
        }
        // The server agreed to TLS and the handshake broke off (an I/O error, the server
        // closing): a TLS failure, so that `prefer` tries without.
        if self.progress.started() && !self.progress.finished() {
            return Failure::Tls(self.tls_error(&detail));
        }
        if let Some(io) = find_cause::<std::io::Error>(error) {
            use std::io::ErrorKind as K;
            return match io.kind() {
                K::ConnectionRefused => Failure::NotUp(NotUp::Refused),
                K::NotFound if matches!(endpoint.host, Host::Unix(_)) => {
                    Failure::NotUp(NotUp::NoSocket)
                }
                K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => {
                    Failure::NotUp(NotUp::Closed)
                }
                K::TimedOut => Failure::NotUp(NotUp::TimedOut),
                _ => Failure::Fatal(ConnectError::new(
                    ConnectErrorKind::Other,
                    format!("could not connect to {at}: {detail}"),
                )),
            };
        }
        if error.is_closed() {
            return Failure::NotUp(NotUp::Closed);
        }
        // TLS was required and our connector was never called: the server answered the
        // SSLRequest with something other than "yes" (tokio_postgres says so only in text).
        if self.tls_requested() && !self.progress.started() {
            return Failure::Fatal(ConnectError::new(
                ConnectErrorKind::Tls,
                format!(
                    "the server at {} does not support TLS, and sslmode={} requires it: \
                     enable ssl on the server, or use sslmode=prefer or sslmode=disable",
                    endpoint.host_port(),
                    t.ssl_mode
                ),
            ));
        }
        // What is left with a cause is the client refusing to go on with the authentication
        // the server asked for (tokio_postgres gives the reason only as text): without a
        // password, the server asked for one; with one, the method or channel binding did not
        // suit.
        if std::error::Error::source(error).is_some() {
            if endpoint.password.is_none() {
                return Failure::Fatal(ConnectError::new(
                    ConnectErrorKind::PasswordRequired,
                    format!(
                        "the server at {} asks for a password for user \"{}\" and none was \
                         given: set PGPASSWORD, or put it in .pgpass or the URL",
                        endpoint.host_port(),
                        t.user
                    ),
                ));
            }
            return Failure::Fatal(ConnectError::new(
                ConnectErrorKind::Authentication,
                format!("could not authenticate to {at}: {detail}"),
            ));
        }
        Failure::Fatal(ConnectError::new(
            ConnectErrorKind::Other,
            format!("could not connect to {at}: {detail}"),
        ))
    }

    /// Whether the current attempt asks the server for TLS and fails without it.
    fn tls_requested(&self) -> bool {
        let endpoint = &self.target.endpoints[self.endpoint];
        !self.plain
            && matches!(endpoint.host, Host::Tcp(_))
            && matches!(
                self.target.ssl_mode,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
            )
    }

    fn tls_error(&self, reason: &str) -> ConnectError {
        let endpoint = &self.target.endpoints[self.endpoint];
        ConnectError::new(
            ConnectErrorKind::Tls,
            format!(
                "TLS connection to {} failed (sslmode={}): {reason}",
                endpoint.host_port(),
                self.target.ssl_mode
            ),
        )
    }
}

/// What to say about a rustls error.
fn tls_reason(error: &rustls::Error, endpoint: &Endpoint, t: &Target) -> String {
    let roots = match &t.root_certs {
        RootCerts::File(p) | RootCerts::DefaultFile(p) => format!("the CA in \"{}\"", p.display()),
        RootCerts::System | RootCerts::Unset => "the platform's trusted CAs".to_string(),
    };
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            let host = match &endpoint.host {
                Host::Tcp(h) => h.as_str(),
                Host::Unix(_) => "",
            };
            format!(
                "the server certificate is not valid for host name \"{host}\": connect with a \
                 name the certificate lists, or use sslmode=verify-ca"
            )
        }
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the server certificate is not signed by {roots}: set sslrootcert to the CA that \
             signed it"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server certificate has expired".to_string(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "the server certificate is not valid yet (check the clocks)".to_string(),
        other => other.to_string(),
    }
}

/// The first error of type `E` in `error`'s chain, looking inside `io::Error`s too.
fn find_cause<E: std::error::Error + 'static>(error: &tokio_postgres::Error) -> Option<&E> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(found) = inner.downcast_ref::<E>() {
                return Some(found);
            }
            next = inner.source().or_else(|| e.source());
            continue;
        }
        next = e.source();
    }
    None
}

/// `10s`, `1.5s`, `250ms`.
fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

// ---------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------

/// Connects with a blocking [`postgres::Client`], waiting up to
/// [`ConnectOptions::connect_timeout`] for a server that is not up yet.
///
/// Not callable inside a Tokio runtime (it would block it, and the `postgres` crate starts a
/// runtime of its own): there it returns a [`ConnectErrorKind::Runtime`] error; use
/// [`connect_async`].
///
/// ```no_run
/// use migrations_core::connect::{connect, ConnectOptions};
/// use migrations_core::{embed_migrations, Migrations, Migrator};
/// static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
///
/// // No URL: `DATABASE_URL`, else the `PG*` variables and `.pgpass`, as `psql` does.
/// let mut client = connect(&ConnectOptions::default())?;
/// Migrator::new(&MIGRATIONS).run(&mut client)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn connect(opts: &ConnectOptions) -> Result<postgres::Client, ConnectError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(ConnectError::new(
            ConnectErrorKind::Runtime,
            "connect() was called inside a Tokio runtime, which it would block: use \
             connect_async() there",
        ));
    }
    let target = Target::resolve(opts)?;
    let mut driver = Driver::new(&target, opts.connect_timeout)?;
    let mut event = Event::Start;
    let result = loop {
        match driver.step(event) {
            Step::Resolve { host, port, .. } => {
                use std::net::ToSocketAddrs;
                let found = (host.as_str(), port).to_socket_addrs();
                event = Event::Resolved(found.map(|addrs| addrs.map(|a| a.ip()).collect()));
            }
            Step::Try(attempt) => {
                match postgres::Config::from(attempt.config).connect(attempt.tls) {
                    Ok(client) => break Ok(client),
                    Err(e) => event = Event::Failed(driver.classify(&e)),
                }
            }
            Step::Wait(pause) => {
                std::thread::sleep(pause);
                event = Event::Waited;
            }
            Step::Fail(e) => break Err(e),
        }
    };
    result.map_err(|e| e.scrub(target.secrets()))
}

/// Connects with a [`tokio_postgres::Client`], waiting up to
/// [`ConnectOptions::connect_timeout`] for a server that is not up yet. The connection task is
/// spawned on the current Tokio runtime (outside one, this returns a
/// [`ConnectErrorKind::Runtime`] error); when it ends with an error, that is logged.
pub async fn connect_async(opts: &ConnectOptions) -> Result<tokio_postgres::Client, ConnectError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(ConnectError::new(
            ConnectErrorKind::Runtime,
            "connect_async() needs a Tokio runtime: call it from one, or use connect()",
        ));
    }
    let target = Target::resolve(opts)?;
    let mut driver = Driver::new(&target, opts.connect_timeout)?;
    let mut event = Event::Start;
    let result = loop {
        match driver.step(event) {
            Step::Resolve {
                host,
                port,
                timeout,
            } => {
                let found =
                    tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port)))
                        .await
                        .unwrap_or_else(|_| {
                            Err(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "the lookup timed out",
                            ))
                        });
                event = Event::Resolved(found.map(|addrs| addrs.map(|a| a.ip()).collect()));
            }
            Step::Try(attempt) => {
                let connecting = attempt.config.connect(attempt.tls);
                match tokio::time::timeout(attempt.timeout, connecting).await {
                    Ok(Ok((client, connection))) => {
                        let address = target.endpoints[driver.endpoint].address();
                        tokio::spawn(async move {
                            if let Err(e) = connection.await {
                                log::warn!("connection to {address} ended: {e}");
                            }
                        });
                        break Ok(client);
                    }
                    Ok(Err(e)) => event = Event::Failed(driver.classify(&e)),
                    Err(_) => {
                        event = Event::Failed(Failure::NotUp(NotUp::NoAnswer(attempt.timeout)))
                    }
                }
            }
            Step::Wait(pause) => {
                tokio::time::sleep(pause).await;
                event = Event::Waited;
            }
            Step::Fail(e) => break Err(e),
        }
    };
    result.map_err(|e| e.scrub(target.secrets()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve_env(url: Option<&str>, vars: &[(&str, &str)]) -> Result<Target, ConnectError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let opts = ConnectOptions {
            url: url.map(str::to_string),
            ..ConnectOptions::default()
        };
        resolve_with(&opts, &|name| vars.get(name).cloned())
    }

    fn hosts(t: &Target) -> Vec<(Host, u16)> {
        t.endpoints
            .iter()
            .map(|e| (e.host.clone(), e.port))
            .collect()
    }

    fn tcp(h: &str) -> Host {
        Host::Tcp(h.to_string())
    }

    #[test]
    fn parses_a_full_url() {
        let t = resolve_env(
            Some(
                "postgres://app:s%40cret@db.example:6432/appdb?sslmode=require&application_name=x",
            ),
            &[("HOME", "/nonexistent")],
        )
        .unwrap();
        assert_eq!(t.user(), "app");
        assert_eq!(t.database(), "appdb");
        assert_eq!(hosts(&t), vec![(tcp("db.example"), 6432)]);
        assert_eq!(t.endpoints[0].password.as_ref().unwrap().0, "s@cret");
        assert_eq!(t.ssl_mode(), SslMode::Require);
        assert_eq!(t.application_name(), Some("x"));
        assert_eq!(t.describe(), "app@db.example:6432/appdb");
        assert!(!format!("{t:?}").contains("s@cret"));
    }

    #[test]
    fn unencoded_at_and_slash_in_the_password() {
        let t = resolve_env(Some("postgresql://u:p@ss/w:rd@h/db"), &[]).unwrap();
        assert_eq!(t.endpoints[0].password.as_ref().unwrap().0, "p@ss/w:rd");
        assert_eq!(hosts(&t), vec![(tcp("h"), 5432)]);
        assert_eq!(t.database(), "db");
    }

    #[test]
    fn ipv6_multiple_hosts_and_sockets() {
        let t = resolve_env(Some("postgres://u@[::1]:1,h2,h3:3/d"), &[]).unwrap();
        assert_eq!(
            hosts(&t),
            vec![(tcp("::1"), 1), (tcp("h2"), 5432), (tcp("h3"), 3)]
        );
        assert_eq!(t.endpoints[0].address(), "[::1]:1");
        let t = resolve_env(Some("postgres://u@%2Fsock%2Fdir:7/d"), &[]).unwrap();
        assert_eq!(hosts(&t), vec![(Host::Unix("/sock/dir".into()), 7)]);
        assert_eq!(t.endpoints[0].address(), "/sock/dir/.s.PGSQL.7");
        let t = resolve_env(Some("postgres:///d?host=/run/pg&port=9&user=me"), &[]).unwrap();
        assert_eq!(hosts(&t), vec![(Host::Unix("/run/pg".into()), 9)]);
        assert_eq!(t.user(), "me");
        let t = resolve_env(Some("postgres://u@/d?host=a,b&port=1,2"), &[]).unwrap();
        assert_eq!(hosts(&t), vec![(tcp("a"), 1), (tcp("b"), 2)]);
        let e = resolve_env(Some("postgres://u@/d?host=a,b,c&port=1,2"), &[]).unwrap_err();
        assert!(e.to_string().contains("3 hosts but 2 ports"), "{e}");
    }

    #[test]
    fn environment_fills_what_the_url_leaves_out() {
        let env = [
            ("PGHOST", "envhost"),
            ("PGPORT", "5433"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGPASSWORD", "envpw"),
            ("PGSSLMODE", "disable"),
            ("PGAPPNAME", "envapp"),
            ("PGCONNECT_TIMEOUT", "1"),
        ];
        let t = resolve_env(Some("postgres://urluser@/urldb"), &env).unwrap();
        assert_eq!(t.user(), "urluser");
        assert_eq!(t.database(), "urldb");
        assert_eq!(hosts(&t), vec![(tcp("envhost"), 5433)]);
        assert_eq!(t.endpoints[0].password.as_ref().unwrap().0, "envpw");
        assert_eq!(t.ssl_mode(), SslMode::Disable);
        assert_eq!(t.application_name(), Some("envapp"));
        assert_eq!(t.attempt_timeout, Some(Duration::from_secs(2)));

        let t = resolve_env(None, &env).unwrap();
        assert_eq!(t.describe(), "envuser@envhost:5433/envdb");

        // DATABASE_URL when the options have no URL; the options' URL wins over it.
        let t = resolve_env(None, &[("DATABASE_URL", "postgres://a@b/c")]).unwrap();
        assert_eq!(t.describe(), "a@b:5432/c");
        let t = resolve_env(
            Some("postgres://x@y/z"),
            &[("DATABASE_URL", "postgres://a@b/c")],
        )
        .unwrap();
        assert_eq!(t.describe(), "x@y:5432/z");
    }

    #[test]
    fn defaults_and_application_name_fallback() {
        let t = resolve_env(Some("postgres://h"), &[("USER", "osuser")]).unwrap();
        assert_eq!(t.user(), "osuser");
        assert_eq!(t.database(), "osuser");
        assert_eq!(t.ssl_mode(), SslMode::Prefer);
        assert_eq!(t.application_name(), None);
        let opts = ConnectOptions {
            url: Some("postgres://u@h/d?fallback_application_name=fb".into()),
            application_name: Some("migrations".into()),
            ..ConnectOptions::default()
        };
        let t = resolve_with(&opts, &|_| None).unwrap();
        assert_eq!(t.application_name(), Some("fb"));
        let opts = ConnectOptions {
            url: Some("postgres://u@h/d".into()),
            application_name: Some("migrations".into()),
            ..ConnectOptions::default()
        };
        let t = resolve_with(&opts, &|_| None).unwrap();
        assert_eq!(t.application_name(), Some("migrations"));
        let t = resolve_with(&opts, &|n| (n == "PGAPPNAME").then(|| "mine".to_string())).unwrap();
        assert_eq!(t.application_name(), Some("mine"));
        // No host at all: a default socket if one exists, else localhost.
        let t = resolve_env(Some("postgres://u@/d?port=1"), &[]).unwrap();
        assert!(
            matches!(&t.endpoints[0].host, Host::Tcp(h) if h == "localhost")
                || matches!(&t.endpoints[0].host, Host::Unix(_))
        );
        assert_eq!(t.endpoints[0].pgpass_host, "localhost");
    }

    #[test]
    fn nothing_to_go_on() {
        let e = resolve_env(None, &[("USER", "me"), ("PGPASSWORD", "x")]).unwrap_err();
        assert_eq!(e.kind(), ConnectErrorKind::NoTarget);
        assert!(
            e.to_string()
                .starts_with("no database URL: pass --database-url"),
            "{e}"
        );
        let e = resolve_env(Some("  "), &[]).unwrap_err();
        assert_eq!(e.kind(), ConnectErrorKind::NoTarget);
        let e = resolve_env(Some("postgres://h/d"), &[]).unwrap_err();
        assert!(e.to_string().contains("no user name"), "{e}");
    }

    #[test]
    fn invalid_urls_are_clear_and_hide_the_password() {
        let cases = [
            ("mysql://u:hunter22@h/d", "postgres://"),
            ("host=h password=hunter22", "key=value"),
            (
                "postgres://u:hunter22@h:notaport/d",
                "invalid port in the URL",
            ),
            ("postgres://u:hunter22@h:99999/d", "invalid port"),
            ("postgres://u:hunt?er22@h/d", "percent-encode"),
            (
                "postgres://u:hunter22%zz@h/d",
                "invalid percent-encoding in the password",
            ),
            (
                "postgres://u:hunter22@h/d?sslmod=require",
                "unknown parameter `sslmod`",
            ),
            (
                "postgres://u:hunter22@h/d?sslmode=bogus",
                "invalid `sslmode` in the URL \"bogus\"",
            ),
            ("postgres://u:hunter22@h/d?sslcert=/x", "not supported"),
            ("postgres://u:hunter22@h/d?flag", "no `=`"),
            ("postgres://u:hunter22@[::1/d", "closing `]`"),
            (
                "postgres://u:hunter22@h/d?connect_timeout=soon",
                "connect_timeout",
            ),
            (
                "postgres://u:hunter22@h/d?sslrootcert=system&sslmode=require",
                "verify-full",
            ),
            (
                "postgres://u:hunter22@h/d?target_session_attrs=primary",
                "target_session_attrs",
            ),
            (
                "postgres://u:hunter22@h/d?password=hunter22&sslmode=x",
                "sslmode",
            ),
        ];
        for (url, expected) in cases {
            let e = resolve_env(Some(url), &[]).unwrap_err();
            let msg = e.to_string();
            assert_eq!(e.kind(), ConnectErrorKind::InvalidConfig, "{url}: {msg}");
            assert!(msg.contains(expected), "{url}: {msg}");
            assert!(!msg.contains("hunter22"), "{url}: {msg}");
            assert!(!msg.contains("hunt"), "{url}: {msg}");
        }
        let e = resolve_env(Some("postgres://u@h/d"), &[("PGPORT", "abc")]).unwrap_err();
        assert!(e.to_string().contains("invalid PGPORT \"abc\""), "{e}");
        let e = resolve_env(Some("postgres://u@h/d"), &[("PGSSLMODE", "allow")]).unwrap_err();
        assert!(e.to_string().contains("PGSSLMODE"), "{e}");
    }

    #[test]
    fn sslrootcert_system_implies_verify_full() {
        let t = resolve_env(Some("postgres://u@h/d?sslrootcert=system"), &[]).unwrap();
        assert_eq!(t.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(t.root_certs, RootCerts::System);
    }

    #[test]
    fn parses_pgpass_lines() {
        let entry = |f: [Option<&str>; 4], pw: &str| PgPassEntry {
            fields: f.map(|x| x.map(str::to_string)),
            password: pw.to_string(),
        };
        assert_eq!(
            parse_pgpass_line("h:5432:db:u:pw"),
            Some(entry(
                [Some("h"), Some("5432"), Some("db"), Some("u")],
                "pw"
            ))
        );
        assert_eq!(
            parse_pgpass_line("*:*:*:*:p\\:w\\\\x\r"),
            Some(entry([None, None, None, None], "p:w\\x"))
        );
        // `\*` is a literal star, not a wildcard; `\:` inside a field.
        assert_eq!(
            parse_pgpass_line("\\*:5432:d\\:b:u:pw:ignored"),
            Some(entry(
                [Some("*"), Some("5432"), Some("d:b"), Some("u")],
                "pw"
            ))
        );
        assert_eq!(
            parse_pgpass_line("h:1:d:u:"),
            Some(entry([Some("h"), Some("1"), Some("d"), Some("u")], ""))
        );
        assert_eq!(parse_pgpass_line("# h:1:d:u:pw"), None);
        assert_eq!(parse_pgpass_line("h:1:d:u"), None);
        assert_eq!(parse_pgpass_line(""), None);
        assert_eq!(parse_pgpass_line("   "), None);
        // Trailing lone backslash is kept.
        assert_eq!(parse_pgpass_line("h:1:d:u:pw\\").unwrap().password, "pw\\");
    }

    #[test]
    fn looks_up_pgpass_entries() {
        let entries = parse_pgpass(
            "# comment\n\
             localhost:5432:app:alice:first\n\
             *:5432:app:alice:second\n\
             db.example:*:*:bob:bobpw\n\
             db.example:6432:*:*:\n\
             *:*:*:*:fallback\n",
        );
        assert_eq!(entries.len(), 5);
        let look = |h: &str, p: &str, d: &str, u: &str| pgpass_lookup(&entries, h, p, d, u);
        assert_eq!(
            look("localhost", "5432", "app", "alice").as_deref(),
            Some("first")
        );
        assert_eq!(
            look("other", "5432", "app", "alice").as_deref(),
            Some("second")
        );
        assert_eq!(
            look("db.example", "1", "x", "bob").as_deref(),
            Some("bobpw")
        );
        // An empty password counts as none (the fallback line is not consulted past a match).
        assert_eq!(look("db.example", "6432", "x", "carol"), None);
        assert_eq!(
            look("elsewhere", "1", "x", "carol").as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_lookup(&[], "h", "1", "d", "u"), None);
    }

    #[test]
    fn pgpass_from_the_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        fs::write(&file, "h:5432:d:u:frompgpass\nlocalhost:*:*:*:local\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let passfile = file.to_str().unwrap();
        let pw = |t: &Target| t.endpoints[0].password.as_ref().map(|s| s.0.clone());
        let t = resolve_env(Some("postgres://u@h/d"), &[("PGPASSFILE", passfile)]).unwrap();
        assert_eq!(pw(&t).as_deref(), Some("frompgpass"));
        // Explicit passwords win.
        let t = resolve_env(Some("postgres://u:url@h/d"), &[("PGPASSFILE", passfile)]).unwrap();
        assert_eq!(pw(&t).as_deref(), Some("url"));
        let t = resolve_env(
            Some("postgres://u@h/d"),
            &[("PGPASSFILE", passfile), ("PGPASSWORD", "env")],
        )
        .unwrap();
        assert_eq!(pw(&t).as_deref(), Some("env"));
        // `passfile` in the URL; a default socket directory counts as localhost.
        let url = format!("postgres://u@/d?host=/var/run/postgresql&passfile={passfile}");
        let t = resolve_env(Some(&url), &[]).unwrap();
        assert_eq!(pw(&t).as_deref(), Some("local"));
        // ~/.pgpass by default.
        fs::copy(&file, dir.path().join(".pgpass")).unwrap();
        let home = dir.path().to_str().unwrap();
        let t = resolve_env(Some("postgres://u@h/d"), &[("HOME", home)]).unwrap();
        assert_eq!(pw(&t).as_deref(), Some("frompgpass"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
            let t = resolve_env(Some("postgres://u@h/d"), &[("PGPASSFILE", passfile)]).unwrap();
            assert_eq!(pw(&t), None, "a group-readable file is ignored");
        }
        let t = resolve_env(Some("postgres://u@h/d"), &[("PGPASSFILE", home)]).unwrap();
        assert_eq!(pw(&t), None, "a directory is ignored");
    }

    #[test]
    fn redacts() {
        let cases = [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            (
                "postgresql://u:p@ss/w@h/db?sslmode=require",
                "postgresql://u:***@h/db?sslmode=require",
            ),
            ("postgres://u:@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h/db?user=u&password=secret&sslmode=x",
                "postgres://h/db?user=u&password=***&sslmode=x",
            ),
            (
                "postgres://h/db?PassWord=secret",
                "postgres://h/db?PassWord=***",
            ),
            // A percent-encoded name is the same parameter to the parser.
            (
                "postgres://h/db?pass%77ord=secret&a=b",
                "postgres://h/db?pass%77ord=***&a=b",
            ),
            // An unencoded `&` in the value: hidden up to the next `name=value`.
            (
                "postgres://h/db?password=se&cr&et&sslmode=x",
                "postgres://h/db?password=***&sslmode=x",
            ),
            (
                "postgres://h/db?sslpassword=k",
                "postgres://h/db?sslpassword=***",
            ),
            ("postgres://u:se?cret@h/db", "postgres://u:***@h/db"),
            // No `@host`: what stands where the port goes is the password.
            ("postgres://app:S3cr3tX/prod", "postgres://app:***/prod"),
            ("postgres://app:S3cr3tX", "postgres://app:***"),
            ("postgres://app:S3,cr3t/d", "postgres://app:***/d"),
            ("postgres://h:123456/d", "postgres://h:***/d"),
            ("postgres://[::1]:x/d", "postgres://[::1]:***/d"),
            // Ports that are numbers stay, IPv6 and several hosts too.
            (
                "postgres://u:pw@[::1]:5432,h2:6432/d",
                "postgres://u:***@[::1]:5432,h2:6432/d",
            ),
            // A password holding the host name.
            (
                "postgres://u:db.example@db.example/d",
                "postgres://u:***@db.example/d",
            ),
            ("  postgres://u:pw@h/d", "  postgres://u:***@h/d"),
            ("mysql://u:pw@h/d", "mysql://u:***@h/d"),
            // key=value pairs, libpq's syntax.
            (
                "host=h password=secret user=u",
                "host=h password=*** user=u",
            ),
            (
                "host=h password = 'sec ret\\' x' user=u",
                "host=h password = *** user=u",
            ),
            ("host = h password = S3cr3tX", "host = h password = ***"),
            ("password='a b'", "password=***"),
            ("password= host=h", "password= ***"),
            ("password=", "password=***"),
            ("", ""),
            ("postgres://", "postgres://"),
            ("postgres://u:é€@h/d", "postgres://u:***@h/d"),
            // Shapes with no telling where the password is: nothing shown.
            ("postgresql//app:S3cr3tX@db/prod", "***"),
            ("postgres:/u:S3cr3tX@h/d", "***"),
            ("postgres:u:S3cr3tX@h/d", "***"),
            ("u:S3cr3tX@h/d", "***"),
            ("//u:S3cr3tX@h/d", "***"),
            ("x postgres://u:S3cr3tX@h/d", "***"),
            ("host=h password='unterminated S3cr3tX", "***"),
            ("host=h password=a S3cr3tX", "***"),
            ("no password here: mypassword=x", "***"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "{input}");
            assert_eq!(redact(&redact(input)), expected, "twice: {input}");
        }
    }

    #[test]
    fn redacts_text() {
        let cases = [
            (
                "could not reach postgres://app:s3cret@db:5432/x (refused); also password=hunter2 here",
                "could not reach postgres://app:***@db:5432/x (refused); also password=*** here",
            ),
            ("no secrets here", "no secrets here"),
            // Quoted URLs keep their closing quote; a redacted value is left alone.
            (
                "connecting (ConnectOptions { url: Some(\"postgres://u:***@h/d?password=***\"), x })",
                "connecting (ConnectOptions { url: Some(\"postgres://u:***@h/d?password=***\"), x })",
            ),
            (
                "Some(\"postgres://u:s3cret@h/d?password=s3cret\"), next",
                "Some(\"postgres://u:***@h/d?password=***\"), next",
            ),
            ("url `postgres://u:pw@h/d`: bad", "url `postgres://u:***@h/d`: bad"),
            ("(postgres://u:pw@h/d)", "(postgres://u:***@h/d)"),
            (
                "a host=h password='a b' c",
                "a host=h password=*** c",
            ),
            ("password='a\\'b c' d", "password=*** d"),
            ("password = s3cret, then", "password = *** then"),
            ("PASSWORD=x", "PASSWORD=***"),
            ("sslpassword=x", "sslpassword=***"),
            ("password authentication failed", "password authentication failed"),
            ("two postgres://a:1@h and postgres://b:2@h", "two postgres://a:***@h and postgres://b:***@h"),
            ("://u:p@h", "://u:p@h"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_text(input), expected, "{input}");
            assert_eq!(redact_text(expected), expected, "idempotent: {expected}");
        }
    }

    #[test]
    fn redact_never_panics() {
        let samples = [
            "postgres://u:p@h/d?password=x&a=b",
            "pä:ß://@@::??password=='é\\",
            "password='unterminated \\",
            "://:@?&=#password",
            "x://[é]:é,[::1]:ü/d?pass%7=é&&=",
            "a=' \\é' password=\\é",
        ];
        for s in samples {
            for (i, _) in s.char_indices() {
                for (j, _) in s.char_indices().filter(|(j, _)| *j >= i) {
                    let _ = redact(&s[i..j]);
                    let _ = redact_text(&s[i..j]);
                }
                let _ = redact(&s[i..]);
                let _ = redact_text(&s[i..]);
            }
        }
    }

    #[test]
    fn malformed_urls_are_described_never_quoted() {
        let cases = [
            (
                "postgresql//app:S3cr3tX@db/prod",
                "the `://` after the scheme is missing",
            ),
            (
                "postgres:/u:S3cr3tX@h/d",
                "does not start with postgres:// or postgresql://",
            ),
            (
                "postgres:u:S3cr3tX@h/d",
                "does not start with postgres:// or postgresql://",
            ),
            (
                "u:S3cr3tX@h/d",
                "is neither a URL starting with postgres://",
            ),
            ("//u:S3cr3tX@h/d", "it has no scheme"),
            (
                "host=h password='a S3cr3tX'",
                "key=value connection strings are not supported",
            ),
            ("mysql://u:S3cr3tX@h/d", "its scheme is not postgres://"),
        ];
        for (url, expected) in cases {
            let e = resolve_env(Some(url), &[]).unwrap_err();
            let msg = e.to_string();
            assert_eq!(e.kind(), ConnectErrorKind::InvalidConfig, "{url}: {msg}");
            assert!(msg.starts_with("invalid database URL: "), "{url}: {msg}");
            assert!(msg.contains(expected), "{url}: {msg}");
            assert!(
                !msg.contains("S3cr3tX") && !msg.contains("app:"),
                "{url}: {msg}"
            );
            let debug = format!(
                "{:?}",
                ConnectOptions {
                    url: Some(url.into()),
                    ..Default::default()
                }
            );
            assert!(!debug.contains("S3cr3tX"), "{url}: {debug}");
        }
        let e = resolve_env(None, &[("DATABASE_URL", "u:S3cr3tX@h/d")]).unwrap_err();
        assert!(e.to_string().starts_with("invalid DATABASE_URL: "), "{e}");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn scrub_hides_known_secrets() {
        let e = ConnectError::config("oops hunter22 oops").scrub(["hunter22", "ab"]);
        assert_eq!(e.to_string(), "oops *** oops");
    }
}
