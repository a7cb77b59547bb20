//! Resolution: the connection string, the `PG*` variables, `.pgpass` and the defaults, into a
//! [`Target`] (see the [module documentation](super#where-each-setting-comes-from)).
//!
//! `tokio_postgres::Config` does the parsing: a URL's body (host lists, IPv6 in brackets, ports,
//! Unix socket directories, percent-decoding, the database) and every value (ports, host lists,
//! timeouts, enumerations). What is done here is what it lacks or does differently from libpq:
//!
//! - the keywords it does not know: `sslmode=verify-ca|verify-full`, `sslrootcert`, `passfile`,
//!   `fallback_application_name`, libpq's `keepalives_count` (its `keepalives_retries`), and
//!   `tcp_user_timeout` in milliseconds (it reads seconds);
//! - a URL's user info ends at its last `@` (tokio_postgres takes the first, even one after the
//!   `?`: an unencoded `@` in a password would put the rest of the password in the host name,
//!   and so in messages), and is percent-decoded strictly;
//! - a `host` or `port` parameter replaces the URL's (tokio_postgres appends it, and does not
//!   split a query's `host=a,b`); a later setting overrides an earlier one, as in libpq;
//! - the environment, `.pgpass`, the defaults, and errors that name the setting and where it
//!   came from without quoting the connection string.
//!
//! A URL's query and a `key=value` string are split into settings here (the latter by the one
//! tokenizer redaction also uses); the settings tokio_postgres knows are handed to it as one
//! `key=value` string of its own.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::Config;

use super::pgpass::{pgpass_lookup, read_pgpass};
use super::redact::{key_value_pairs, unquote, url_body_start};
use super::tls::RootCerts;
use super::{ConnectError, ConnectErrorKind, ConnectOptions, SslMode, DEFAULT_PORT};

/// Where libpq builds commonly put the server's Unix socket.
const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// Variables that, without a connection string, say where to connect.
const TARGET_VARS: &[&str] = &["PGHOST", "PGPORT", "PGUSER", "PGDATABASE"];

/// libpq keywords that are accepted and have no effect here.
const IGNORED: &[&str] = &["sslcompression", "sslsni", "krbsrvname", "gsslib"];

/// The advice that ends a message about a connection string of the wrong shape.
const WRITE: &str = "write it as postgres://user@host:5432/dbname (a password follows the user \
                     name after a `:`; percent-encode @ : / ? # % in it) or as key=value pairs \
                     (host=... port=... user=... dbname=...), or use the PG* variables";

// ---------------------------------------------------------------------------------------
// The resolved target
// ---------------------------------------------------------------------------------------

/// A server address: a TCP host (name or IP address) or a Unix socket directory.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Host {
    /// A host name or IP address.
    Tcp(String),
    /// The directory holding the server's socket file `.s.PGSQL.<port>`.
    Unix(PathBuf),
}

impl Host {
    fn from_tokio(host: &tokio_postgres::config::Host) -> Host {
        match host {
            tokio_postgres::config::Host::Tcp(name) => Host::Tcp(name.clone()),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(dir) => Host::Unix(dir.clone()),
        }
    }
}

/// One server to try: host and port (several come from `host1,host2`).
#[derive(Clone)]
pub struct Endpoint {
    pub(super) host: Host,
    pub(super) port: u16,
    /// The host as `.pgpass` sees it.
    pgpass_host: String,
    pub(super) password: Option<Secret>,
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

    /// `host:port`, or `directory:port` for a Unix socket.
    pub(super) fn host_port(&self) -> String {
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

/// A password: no `Debug`, never in a message.
#[derive(Clone)]
pub(super) struct Secret(pub(super) String);

/// The connection parameters after the connection string, the environment and `.pgpass` are
/// combined. Its `Debug` output holds no password.
#[derive(Clone)]
pub struct Target {
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) ssl_mode: SslMode,
    pub(super) root_certs: RootCerts,
    /// The bound of one attempt (`connect_timeout`).
    pub(super) attempt_timeout: Option<Duration>,
    /// What every attempt sends as tokio_postgres parsed it: user, database, application name,
    /// options, session attributes, channel binding, keepalives, TCP user timeout. No host,
    /// port, password or `sslmode`: those are the attempt's.
    pub(super) config: Config,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user())
            .field("database", &self.database())
            .field("ssl_mode", &self.ssl_mode)
            .field("root_certs", &self.root_certs)
            .field("application_name", &self.application_name())
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Combines the options' connection string (else `DATABASE_URL`), the `PG*` variables and
    /// `.pgpass`.
    pub fn resolve(opts: &ConnectOptions) -> Result<Target, ConnectError> {
        resolve_with(opts, &|name| std::env::var(name).ok())
    }

    /// The servers to try, in order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The user name.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or_default()
    }

    /// The database name.
    pub fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    /// The `sslmode`.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The application name sent to the server, if any.
    pub fn application_name(&self) -> Option<&str> {
        self.config.get_application_name()
    }

    /// Whether a password was found (connection string, `PGPASSWORD` or `.pgpass`) for the
    /// first server.
    pub fn has_password(&self) -> bool {
        self.endpoints.first().is_some_and(|e| e.password.is_some())
    }

    /// `user@host:port/database` (hosts joined by `,`), for messages. Holds no password.
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self.endpoints.iter().map(Endpoint::host_port).collect();
        format!("{}@{}/{}", self.user(), hosts.join(","), self.database())
    }

    pub(super) fn describe_endpoint(&self, endpoint: &Endpoint) -> String {
        format!(
            "{}@{}/{}",
            self.user(),
            endpoint.host_port(),
            self.database()
        )
    }

    pub(super) fn secrets(&self) -> impl Iterator<Item = &str> {
        self.endpoints
            .iter()
            .filter_map(|e| e.password.as_ref().map(|s| s.0.as_str()))
    }
}

// ---------------------------------------------------------------------------------------
// Keywords and settings
// ---------------------------------------------------------------------------------------

/// A keyword of the connection string.
struct Key {
    name: &'static str,
    /// The variable that supplies it when the connection string does not.
    env: Option<&'static str>,
    /// Its name for tokio_postgres, which parses it; `None`: resolved here.
    tokio: Option<&'static str>,
    /// What a valid value is, for messages.
    expected: &'static str,
}

const SECONDS: &str = "a whole number of seconds";

/// Every keyword accepted. `password` is kept apart from what tokio_postgres sees until an
/// attempt needs it; `keepalives_count` is its `keepalives_retries`.
#[rustfmt::skip]
const KEYS: &[Key] = &[
    key("host", Some("PGHOST"), Some("host"), "host names or directories"),
    key("port", Some("PGPORT"), Some("port"),
        "a number from 1 to 65535 (or one per host, separated by commas)"),
    key("user", Some("PGUSER"), Some("user"), "a user name"),
    key("password", Some("PGPASSWORD"), None, "a password"),
    key("dbname", Some("PGDATABASE"), Some("dbname"), "a database name"),
    key("options", Some("PGOPTIONS"), Some("options"), "server options"),
    key("application_name", Some("PGAPPNAME"), Some("application_name"), "a name"),
    key("fallback_application_name", None, None, "a name"),
    key("connect_timeout", Some("PGCONNECT_TIMEOUT"), Some("connect_timeout"), SECONDS),
    key("target_session_attrs", Some("PGTARGETSESSIONATTRS"), Some("target_session_attrs"),
        "any, read-write or read-only"),
    key("channel_binding", Some("PGCHANNELBINDING"), Some("channel_binding"),
        "disable, prefer or require"),
    key("keepalives", None, Some("keepalives"), "0 or 1"),
    key("keepalives_idle", None, Some("keepalives_idle"), SECONDS),
    key("keepalives_interval", None, Some("keepalives_interval"), SECONDS),
    key("keepalives_count", None, Some("keepalives_retries"), "a count"),
    key("tcp_user_timeout", None, None, "milliseconds"),
    key("sslmode", Some("PGSSLMODE"), None, "disable, prefer, require, verify-ca or verify-full"),
    key("sslrootcert", Some("PGSSLROOTCERT"), None, "a file, or system"),
    key("passfile", Some("PGPASSFILE"), None, "a file"),
];

const fn key(
    name: &'static str,
    env: Option<&'static str>,
    tokio: Option<&'static str>,
    expected: &'static str,
) -> Key {
    Key {
        name,
        env,
        tokio,
        expected,
    }
}

/// Where a setting came from (for messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Url,
    KeyValue,
    Env(&'static str),
}

/// One setting as given, before it is parsed.
struct Setting {
    key: &'static Key,
    value: String,
    src: Src,
}

impl Setting {
    /// How to name this setting in a message: "`sslmode` in the URL" or "PGSSLMODE".
    fn what(&self) -> String {
        match self.src {
            Src::Url => format!("`{}` in the URL", self.key.name),
            Src::KeyValue => format!("`{}` in the connection string", self.key.name),
            Src::Env(var) => var.to_string(),
        }
    }

    /// "invalid `port` in the URL "x": expected ...". A password is never checked, so never
    /// quoted.
    fn invalid(&self) -> ConnectError {
        ConnectError::config(format!(
            "invalid {} \"{}\": expected {}",
            self.what(),
            self.value,
            self.key.expected
        ))
    }

    /// tokio_postgres's parse of this setting alone (it must be one it parses).
    fn parse(&self) -> Result<Config, ConnectError> {
        let name = self.key.tokio.unwrap_or(self.key.name);
        Config::from_str(&pair(name, &self.value)).map_err(|_| self.invalid())
    }
}

/// `name='value'` in the `key=value` syntax, quoted and escaped.
fn pair(name: &str, value: &str) -> String {
    format!(
        "{name}='{}' ",
        value.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

/// What the connection string gives.
#[derive(Default)]
struct Given {
    /// Keyword settings in order: a later one overrides an earlier one.
    settings: Vec<Setting>,
    /// The hosts of a URL's body (a `host` setting replaces them).
    hosts: Vec<Host>,
    /// The ports of a URL's body, when it has any (a `port` setting replaces them).
    ports: Vec<u16>,
}

impl Given {
    /// Adds `name = value`; an empty value counts as unset. Refuses unknown keywords and the
    /// ones that would silently not do what they say.
    fn push(&mut self, name: &str, value: String, src: Src) -> Result<(), String> {
        match name {
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" | "sslcertmode" => Err(
                format!("`{name}` is not supported (client certificates and CRLs are not)"),
            ),
            "gssencmode" if value == "require" => {
                Err("gssencmode=require is not supported (no GSSAPI)".to_string())
            }
            "gssencmode" => Ok(()),
            "hostaddr" => Err("`hostaddr` is not supported: put the address in the host".into()),
            "service" => Err("`service` (pg_service.conf) is not supported".to_string()),
            name if IGNORED.contains(&name) => Ok(()),
            name => match KEYS.iter().find(|k| k.name == name) {
                Some(key) => {
                    if !value.is_empty() {
                        self.settings.push(Setting { key, value, src });
                    }
                    Ok(())
                }
                None => {
                    let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
                    Err(format!(
                        "unknown parameter `{name}` (supported: {})",
                        known.join(", ")
                    ))
                }
            },
        }
    }

    /// Whether the string gives `name` (so the environment does not).
    fn has(&self, name: &str) -> bool {
        self.settings.iter().any(|s| s.key.name == name)
            || (name == "host" && !self.hosts.is_empty())
            || (name == "port" && !self.ports.is_empty())
    }
}

// ---------------------------------------------------------------------------------------
// The connection string
// ---------------------------------------------------------------------------------------

/// Splits a connection string into what it gives. Errors are reasons that never quote it.
fn parse_string(s: &str) -> Result<Given, String> {
    if let Some(rest) = strip_scheme(s) {
        return parse_url(rest);
    }
    match key_value_pairs(s) {
        Some(pairs) => {
            let mut given = Given::default();
            for p in pairs {
                given.push(&s[p.key], unquote(&s[p.value]), Src::KeyValue)?;
            }
            Ok(given)
        }
        None => Err(not_a_url(s)),
    }
}

fn strip_scheme(url: &str) -> Option<&str> {
    ["postgresql://", "postgres://"].iter().find_map(|scheme| {
        url.get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| &url[scheme.len()..])
    })
}

/// A URL after its `postgres://`.
fn parse_url(rest: &str) -> Result<Given, String> {
    let (body, query) = match rest.split_once('?') {
        Some((body, query)) => (body, Some(query)),
        None => (rest, None),
    };
    if query.is_some_and(|q| q.contains('@')) {
        return Err(
            "there is an `@` after the `?`: percent-encode special characters \
                    (@ : / ? # %) in the user name and password"
                .to_string(),
        );
    }
    let (userinfo, hostpath) = match body.rfind('@') {
        Some(at) => (Some(&body[..at]), &body[at + 1..]),
        None => (None, body),
    };
    let mut given = Given::default();

    // The body, without user info or query, is tokio_postgres's to parse.
    let config = Config::from_str(&format!("postgresql://{hostpath}")).map_err(|e| {
        format!(
            "{} (percent-encode @ : / ? # % in the user name and password)",
            cause(&e)
        )
    })?;
    given.hosts = config.get_hosts().iter().map(Host::from_tokio).collect();
    // tokio_postgres gives a host without a port 5432; only ports written count as given
    // (PGPORT fills the rest, as in libpq).
    let hostspec = hostpath.split('/').next().unwrap_or_default();
    let written = hostspec
        .split(',')
        .any(|item| item.rsplit_once(']').map_or(item, |(_, a)| a).contains(':'));
    if written {
        given.ports = config.get_ports().to_vec();
        if given.ports.contains(&0) {
            return Err("invalid port: expected a number from 1 to 65535".to_string());
        }
    }
    if let Some(db) = config.get_dbname() {
        given.push("dbname", db.to_string(), Src::Url)?;
    }

    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        given.push("user", decode(user, "the user name")?, Src::Url)?;
        if let Some(password) = password {
            given.push("password", decode(password, "the password")?, Src::Url)?;
        }
    }
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|s| !s.is_empty())
    {
        let (key, value) = pair.split_once('=').ok_or("a query parameter has no `=`")?;
        let key = decode(key, "a parameter name")?;
        given.push(&key, decode(value, "a parameter value")?, Src::Url)?;
    }
    Ok(given)
}

/// What tokio_postgres says is wrong (its error's cause), never the text it parsed.
fn cause(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => cause.to_string(),
        None => e.to_string(),
    }
}

/// Percent-decodes `s`, strictly (as libpq does). The error names `what` but never echoes the
/// text (it may be a password).
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

/// What is wrong with the shape of `s`, which is neither a `postgres://` URL nor `key=value`
/// pairs. Never quotes any of it: there is no telling where its password is.
fn not_a_url(s: &str) -> String {
    let lower = s.get(..10).unwrap_or(s).to_ascii_lowercase();
    if url_body_start(s).is_some() {
        format!("its scheme is not postgres:// or postgresql://: {WRITE}")
    } else if lower.starts_with("postgres") {
        format!(
            "it does not start with postgres:// or postgresql:// (the `://` after the scheme \
             is missing or incomplete): {WRITE}"
        )
    } else if s.starts_with("//") {
        format!("it has no scheme (it must start with postgres:// or postgresql://): {WRITE}")
    } else {
        format!(
            "it is neither a URL starting with postgres:// or postgresql:// nor key=value \
             pairs (each `key=value`, separated by spaces; a value with spaces in single \
             quotes): {WRITE}"
        )
    }
}

// ---------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------

/// [`Target::resolve`] with the environment given (tests pass their own).
pub(super) fn resolve_with(
    opts: &ConnectOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Target, ConnectError> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    // A last line of defence for messages: hide any password we know of.
    let mut secrets: Vec<String> = env("PGPASSWORD").into_iter().collect();
    let result = resolve_given(opts, &env, &mut secrets);
    result.map_err(|e| e.scrub(secrets.iter().map(String::as_str)))
}

fn resolve_given(
    opts: &ConnectOptions,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
) -> Result<Target, ConnectError> {
    let string = match opts.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => Some((url.to_string(), "database URL")),
        None => env("DATABASE_URL").map(|u| (u.trim().to_string(), "DATABASE_URL")),
    };
    let mut given = match &string {
        // Never the string itself in the message: a malformed one may show its password
        // anywhere.
        Some((s, what)) => parse_string(s)
            .map_err(|reason| ConnectError::config(format!("invalid {what}: {reason}")))?,
        None if TARGET_VARS.iter().any(|var| env(var).is_some()) => Given::default(),
        None => {
            return Err(ConnectError::new(
                ConnectErrorKind::NoTarget,
                "no database URL: pass --database-url, set DATABASE_URL or the PG* variables \
                 (PGHOST, PGPORT, PGUSER, PGDATABASE, ...)",
            ))
        }
    };
    secrets.extend(
        given
            .settings
            .iter()
            .filter(|s| s.key.name == "password")
            .map(|s| s.value.clone()),
    );

    // The environment fills what the string leaves out; then the last setting of each
    // keyword wins.
    for key in KEYS {
        if let (Some(var), false) = (key.env, given.has(key.name)) {
            if let Some(value) = env(var) {
                given.settings.push(Setting {
                    key,
                    value,
                    src: Src::Env(var),
                });
            }
        }
    }
    let mut settings: BTreeMap<&str, Setting> = BTreeMap::new();
    for setting in given.settings {
        settings.insert(setting.key.name, setting);
    }

    // What tokio_postgres parses, in one string of its own syntax. When that fails, each
    // setting on its own tells which one it was, and where it came from.
    let parsed_there =
        |s: &&Setting| s.key.tokio.is_some() && !matches!(s.key.name, "host" | "port");
    let mut conf = String::new();
    for s in settings.values().filter(parsed_there) {
        conf.push_str(&pair(s.key.tokio.unwrap_or_default(), &s.value));
    }
    let mut config = match Config::from_str(&conf) {
        Ok(config) => config,
        Err(e) => {
            return Err(settings
                .values()
                .filter(parsed_there)
                .find_map(|s| s.parse().err())
                .unwrap_or_else(|| {
                    ConnectError::config(format!("invalid connection settings: {}", cause(&e)))
                }))
        }
    };

    // libpq: a connect_timeout of 1 means 2 (tokio_postgres leaves out 0 and negatives).
    let attempt_timeout = config
        .get_connect_timeout()
        .map(|t| (*t).max(Duration::from_secs(2)));
    if let Some(s) = settings.get("tcp_user_timeout") {
        match s.value.trim().parse::<u64>() {
            Ok(0) => {}
            Ok(ms) => {
                config.tcp_user_timeout(Duration::from_millis(ms));
            }
            Err(_) => return Err(s.invalid()),
        }
    }

    // Hosts and ports: a setting, else the URL's body, else the defaults.
    let hosts: Vec<Host> = match settings.get("host") {
        Some(s) => s
            .parse()?
            .get_hosts()
            .iter()
            .map(Host::from_tokio)
            .collect(),
        None => given.hosts,
    };
    let ports: Vec<u16> = match settings.get("port") {
        Some(s) => match s.parse()?.get_ports() {
            ports if ports.contains(&0) => return Err(s.invalid()),
            ports => ports.to_vec(),
        },
        None => given.ports,
    };
    let hosts = if hosts.is_empty() {
        vec![Host::Tcp(String::new())]
    } else {
        hosts
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
    let mut endpoints: Vec<Endpoint> = hosts
        .into_iter()
        .zip(ports)
        .map(|(host, port)| {
            let (host, pgpass_host) = match host {
                Host::Tcp(name) if name.is_empty() => (default_host(port), "localhost".into()),
                Host::Tcp(name) => (Host::Tcp(name.clone()), name),
                Host::Unix(dir) => {
                    let shown = dir.display().to_string();
                    let pgpass_host = if DEFAULT_SOCKET_DIRS.contains(&shown.trim_end_matches('/'))
                    {
                        "localhost".to_string()
                    } else {
                        shown
                    };
                    (Host::Unix(dir), pgpass_host)
                }
            };
            Endpoint {
                host,
                port,
                pgpass_host,
                password: None,
            }
        })
        .collect();

    // TLS.
    let explicit_mode = match settings.get("sslmode") {
        Some(s) => Some(s.value.parse::<SslMode>().map_err(|_| s.invalid())?),
        None => None,
    };
    let root_certs = match settings.get("sslrootcert").map(|s| s.value.as_str()) {
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

    let user = match config.get_user() {
        Some(user) => user.to_string(),
        None => env("USER").or_else(|| env("LOGNAME")).ok_or_else(|| {
            ConnectError::config(
                "no user name: put one in the connection string (postgres://user@host/db) or \
                 set PGUSER",
            )
        })?,
    };
    let named_database = config.get_dbname().unwrap_or(&user).to_string();
    let database = opts.database.clone().unwrap_or(named_database.clone());
    config.user(&user).dbname(&database);
    let application_name = config
        .get_application_name()
        .map(str::to_string)
        .or_else(|| {
            settings
                .get("fallback_application_name")
                .map(|s| s.value.clone())
        })
        .or_else(|| opts.application_name.clone());
    if let Some(name) = application_name {
        config.application_name(name);
    }
    // Passwords: given, else .pgpass (searched for the database the string names: another
    // database through `ConnectOptions::database` uses the same credentials).
    match settings.get("password") {
        Some(s) => {
            for e in &mut endpoints {
                e.password = Some(Secret(s.value.clone()));
            }
        }
        None => {
            let passfile = match settings.get("passfile") {
                Some(s) => Some(PathBuf::from(&s.value)),
                None => env("HOME").map(|home| Path::new(&home).join(".pgpass")),
            };
            if let Some(entries) = passfile.as_deref().and_then(read_pgpass) {
                for e in &mut endpoints {
                    e.password = pgpass_lookup(
                        &entries,
                        &e.pgpass_host,
                        &e.port.to_string(),
                        &named_database,
                        &user,
                    )
                    .map(Secret);
                }
            }
        }
    }

    Ok(Target {
        endpoints,
        ssl_mode,
        root_certs,
        attempt_timeout,
        config,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::fs;

    fn resolve_opts(opts: &ConnectOptions, vars: &[(&str, &str)]) -> Result<Target, ConnectError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve_with(opts, &|name| vars.get(name).cloned())
    }

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
            (
                "postgres://u:hunter22@h:notaport/d",
                "invalid value for option `port` (percent-encode @ : / ? # % in the user name",
            ),
            (
                "postgres://u:hunter22@h:99999/d",
                "invalid value for option `port`",
            ),
            (
                "postgres://u:hunter22@h:0/d",
                "invalid port: expected a number from 1",
            ),
            (
                "postgres://u:hunter22@h/d?port=0",
                "invalid `port` in the URL \"0\": expected a number from 1 to 65535",
            ),
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
            (
                "postgres://u:hunter22@[::1/d",
                "invalid value for option `host`",
            ),
            (
                "host=h password=hunter22 port=x",
                "invalid `port` in the connection string \"x\"",
            ),
            (
                "host=h password=hunter22 sslmode=y",
                "invalid `sslmode` in the connection string",
            ),
            (
                "host=h password=hunter22 bogus=1",
                "unknown parameter `bogus`",
            ),
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
        assert_eq!(
            e.to_string(),
            "invalid PGPORT \"abc\": expected a number from 1 to 65535 (or one per host, \
             separated by commas)"
        );
        let e =
            resolve_env(Some("postgres://u@h/d"), &[("PGCONNECT_TIMEOUT", "soon")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid PGCONNECT_TIMEOUT \"soon\": expected a whole number of seconds"
        );
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
        let pw = |t: &Target| password(t).map(str::to_string);
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
                "host=h password='a S3cr3tX",
                "nor key=value pairs (each `key=value`, separated by spaces",
            ),
            ("host=h password=a S3cr3tX", "nor key=value pairs"),
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

    fn password(t: &Target) -> Option<&str> {
        t.endpoints[0].password.as_ref().map(|s| s.0.as_str())
    }

    #[test]
    fn key_value_strings() {
        let t = resolve_env(
            Some(
                "host=db.example port=6432 user=app password='p w\\'x' dbname=appdb \
                 sslmode=verify-full sslrootcert=/ca.pem application_name='my app' \
                 options='-c search_path=app' target_session_attrs=read-write \
                 connect_timeout=7 keepalives_count=3 tcp_user_timeout=1500",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(hosts(&t), vec![(tcp("db.example"), 6432)]);
        assert_eq!(t.user(), "app");
        assert_eq!(password(&t), Some("p w'x"));
        assert_eq!(t.database(), "appdb");
        assert_eq!(t.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(t.root_certs, RootCerts::File("/ca.pem".into()));
        assert_eq!(t.application_name(), Some("my app"));
        assert_eq!(t.config.get_options(), Some("-c search_path=app"));
        assert_eq!(
            t.config.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
        assert_eq!(t.attempt_timeout, Some(Duration::from_secs(7)));
        // libpq's names and units: keepalives_count, tcp_user_timeout in milliseconds.
        assert_eq!(t.config.get_keepalives_retries(), Some(3));
        assert_eq!(
            t.config.get_tcp_user_timeout(),
            Some(&Duration::from_millis(1500))
        );
        assert_eq!(t.describe(), "app@db.example:6432/appdb");
        assert!(!format!("{t:?}").contains("p w"));

        // Host lists, Unix socket directories, IPv6, spaces around `=`.
        let t = resolve_env(Some("host = /run/pg,::1,h3 port=1,2,3 user=u"), &[]).unwrap();
        assert_eq!(
            hosts(&t),
            vec![
                (Host::Unix("/run/pg".into()), 1),
                (tcp("::1"), 2),
                (tcp("h3"), 3)
            ]
        );
        assert_eq!(t.describe(), "u@/run/pg:1,[::1]:2,h3:3/u");
        // The environment fills what the string leaves out, as for a URL.
        let t = resolve_env(
            Some("dbname=d"),
            &[
                ("PGHOST", "envhost"),
                ("PGUSER", "envuser"),
                ("PGPORT", "7"),
            ],
        )
        .unwrap();
        assert_eq!(t.describe(), "envuser@envhost:7/d");
    }

    #[test]
    fn a_later_setting_overrides_an_earlier_one() {
        // A query parameter replaces the URL body's host, port, user and database.
        let t = resolve_env(
            Some("postgres://u@h1:1/d1?host=h2&port=2&user=v&dbname=d2"),
            &[],
        )
        .unwrap();
        assert_eq!(t.describe(), "v@h2:2/d2");
        let t = resolve_env(Some("postgres://u:pw1@h/d?password=pw2"), &[]).unwrap();
        assert_eq!(password(&t), Some("pw2"));
        let t = resolve_env(Some("host=a host=b user=u user=w"), &[]).unwrap();
        assert_eq!(t.describe(), "w@b:5432/w");
        // PGPORT fills a URL whose hosts have no port, not one whose hosts have one.
        let t = resolve_env(Some("postgres://u@h/d"), &[("PGPORT", "5433")]).unwrap();
        assert_eq!(hosts(&t), vec![(tcp("h"), 5433)]);
        let t = resolve_env(Some("postgres://u@h:1/d"), &[("PGPORT", "5433")]).unwrap();
        assert_eq!(hosts(&t), vec![(tcp("h"), 1)]);
        let t = resolve_env(Some("postgres://u@h1:1,h2/d"), &[]).unwrap();
        assert_eq!(hosts(&t), vec![(tcp("h1"), 1), (tcp("h2"), 5432)]);
        // A URL host wins over PGHOST; an empty value counts as unset.
        let t = resolve_env(Some("postgres://u@h/d?sslmode="), &[("PGHOST", "e")]).unwrap();
        assert_eq!(hosts(&t), vec![(tcp("h"), 5432)]);
        assert_eq!(t.ssl_mode(), SslMode::Prefer);
    }

    #[test]
    fn percent_decoding() {
        let t = resolve_env(
            Some(
                "postgres://u%40x:p%2Fw%3A@h%2Dx/d%20b?application_name=a%26b&op%74ions=-c%20x%3D1",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(t.user(), "u@x");
        assert_eq!(password(&t), Some("p/w:"));
        assert_eq!(hosts(&t), vec![(tcp("h-x"), 5432)]);
        assert_eq!(t.database(), "d b");
        assert_eq!(t.application_name(), Some("a&b"));
        assert_eq!(t.config.get_options(), Some("-c x=1"));
    }

    #[test]
    fn connect_timeout_as_libpq() {
        let timeout = |v: &str| {
            resolve_env(Some(&format!("postgres://u@h/d?connect_timeout={v}")), &[])
                .unwrap()
                .attempt_timeout
        };
        assert_eq!(timeout("0"), None);
        assert_eq!(timeout("-1"), None);
        assert_eq!(timeout("1"), Some(Duration::from_secs(2)));
        assert_eq!(timeout("30"), Some(Duration::from_secs(30)));
    }

    #[test]
    fn another_database_same_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        fs::write(&file, "h:5432:app:u:frompgpass\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let opts = ConnectOptions {
            url: Some("postgres://u@h/app?application_name=x".into()),
            database: Some("scratch".into()),
            ..ConnectOptions::default()
        };
        let passfile = file.to_str().unwrap();
        let t = resolve_opts(&opts, &[("PGPASSFILE", passfile)]).unwrap();
        assert_eq!(t.database(), "scratch");
        assert_eq!(t.application_name(), Some("x"));
        assert_eq!(password(&t), Some("frompgpass"));
        // Also over the environment's database.
        let opts = ConnectOptions { url: None, ..opts };
        let t = resolve_opts(
            &opts,
            &[
                ("PGHOST", "h"),
                ("PGUSER", "u"),
                ("PGDATABASE", "app"),
                ("PGPASSFILE", passfile),
            ],
        )
        .unwrap();
        assert_eq!(t.describe(), "u@h:5432/scratch");
        assert_eq!(password(&t), Some("frompgpass"));
    }
}
