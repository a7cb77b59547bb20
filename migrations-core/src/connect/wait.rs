//! Waiting for the server: the attempts (every server of the target, every address of each,
//! `prefer`'s plain fallback), each failure classified by what it is (SQLSTATE, error type and
//! kind, how far TLS got) into "not up yet" (retried, with a growing pause, until the timeout),
//! TLS (with `prefer`, tried again without) or fatal; and the two entry points, [`connect`] and
//! [`connect_async`], which carry the same steps out blocking or async.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::config::SslMode as WireSslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::resolve::{Host, Target};
use super::tls::{self, ObservedTls, TlsProgress};
use super::{ConnectError, ConnectErrorKind, ConnectOptions, SslMode};

/// First pause between two attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// How long a connection may wait before the wait is announced (at `log` info level).
const ANNOUNCE_AFTER: Duration = Duration::from_secs(1);
/// The least time one attempt is given, even when the overall wait is (nearly) over.
const MIN_ATTEMPT: Duration = Duration::from_secs(2);

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
    /// When the wait began, and whether the "waiting" notice was given: a wait longer than
    /// [`ANNOUNCE_AFTER`] is said once, so a refused connection does not look like a hang.
    started: Instant,
    announced: bool,
}

impl<'a> Driver<'a> {
    fn new(target: &'a Target, timeout: Duration) -> Result<Self, ConnectError> {
        Ok(Driver {
            target,
            tls: tls::connector(target.ssl_mode, &target.root_certs)?,
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
            started: Instant::now(),
            announced: false,
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
                let address = self.target.endpoints[*i].address();
                log::debug!("{address} is not up yet ({reason}); retrying in {pause:?}");
                // Info, not debug: a user who sees nothing for 10 s thinks it hangs. The
                // library prints nothing itself; the application's logger decides.
                if !self.announced && now.duration_since(self.started) >= ANNOUNCE_AFTER {
                    self.announced = true;
                    log::info!(
                        "waiting for {address} ({reason}) until {} (connect timeout {})",
                        wall_clock_after(self.deadline - now),
                        format_duration(self.timeout)
                    );
                }
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

    /// The attempt's configuration: the target's settings, and this endpoint, address,
    /// password and TLS mode.
    fn config(&self, index: usize, plain: bool, timeout: Duration) -> tokio_postgres::Config {
        let t = self.target;
        let endpoint = &t.endpoints[index];
        let mut c = t.config.clone();
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
        c.port(endpoint.port).connect_timeout(timeout);
        if let Some(password) = &endpoint.password {
            c.password(password.0.as_bytes());
        }
        c.ssl_mode(match t.ssl_mode {
            // libpq never uses TLS over a Unix socket.
            _ if plain || unix => WireSslMode::Disable,
            SslMode::Disable => WireSslMode::Disable,
            SslMode::Prefer => WireSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireSslMode::Require,
        });
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
                        t.user()
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
            let host = match &endpoint.host {
                Host::Tcp(h) => h.as_str(),
                Host::Unix(_) => "",
            };
            let reason = tls::reason(tls, host, &t.root_certs);
            return Failure::Tls(self.tls_error(&reason));
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
                        t.user()
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

/// `10s`, `1.5s`, `250ms`: to a tenth of a second from one second up (an attempt's budget is
/// what is left of the wait, a hair under the whole seconds it was given: `3s`, not `3.0s`).
fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let tenths = (d.as_millis() + 50) / 100;
    match tenths % 10 {
        0 => format!("{}s", tenths / 10),
        tenth => format!("{}.{tenth}s", tenths / 10),
    }
}

/// The UTC time of day `d` from now, `13:20:05 UTC` (a wait longer than a day has no better
/// answer than its time of day, and a clock before 1970 gives `00:00:00 UTC`).
fn wall_clock_after(d: Duration) -> String {
    let at = std::time::SystemTime::now() + d;
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_secs())
        % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
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
    connect_async_owned(opts).await.map(|(client, _)| client)
}

/// [`connect_async`], also returning the spawned connection task: after dropping the client,
/// awaiting it waits until the session's socket is closed (the fleet run does, so that the
/// connections it holds never exceed its bound, not even for a moment).
pub(crate) async fn connect_async_owned(
    opts: &ConnectOptions,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), ConnectError> {
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
                        let task = tokio::spawn(async move {
                            if let Err(e) = connection.await {
                                log::warn!("connection to {address} ended: {e}");
                            }
                        });
                        break Ok((client, task));
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

    #[test]
    fn formats_durations() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_micros(2_999_990)), "3s");
        assert_eq!(format_duration(Duration::from_millis(1949)), "1.9s");
    }
}
