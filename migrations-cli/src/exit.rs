//! Exit codes (SPEC section 4), decided here and nowhere else.

use std::fmt;

use migrations_core::connect::ConnectError;
use migrations_core::plan::PlanError;

/// The process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Done, nothing wrong.
    Ok = 0,
    /// Operational failure: connection, SQL error, lock timeout, I/O.
    Failure = 1,
    /// Bad usage or bad migration files. (clap also exits 2 on bad flags.)
    Usage = 2,
    /// Findings: drift, `status --exit-code` with work pending.
    Findings = 3,
}

impl Code {
    /// The worse of two targets' codes, for a fleet's exit code: a failure (1) over bad usage
    /// or files (2) over findings (3) over success (0): what broke matters more than what was
    /// refused, and a refusal more than nothing.
    pub fn worst(self, other: Code) -> Code {
        let rank = |c: Code| match c {
            Code::Ok => 0,
            Code::Findings => 1,
            Code::Usage => 2,
            Code::Failure => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// A command's failure: what to print, and which exit code it means.
#[derive(Debug)]
pub enum Error {
    /// The migrations directory has problems (each names its file).
    Files(migrations_format::LoadError),
    /// The user asked for something that cannot be done as asked.
    Usage(String),
    /// Reading or writing files failed.
    Io(String),
    /// No connection could be made.
    Connect(ConnectError),
    /// `database create|drop` failed (privilege, sessions still connected, ...).
    Database(Box<migrations_core::database::DatabaseError>),
    /// The runner failed or refused.
    Run(Box<migrations_core::Error>),
    /// The command ran and found something to report (already printed).
    Findings,
    /// A fleet run that printed its own report (every target's error in it): exit with the
    /// worst target's code ([`Code::worst`]).
    Reported(Code),
    /// A run (`up`, `down`, `redo`) that stopped on an error: the error, with what the run had
    /// done before it, so the output never hides work done.
    Partial(Box<Partial>),
}

/// What a failed run had done; `main` prints it with the error.
#[derive(Debug)]
pub struct Partial {
    /// The error that stopped the run (its exit code, kind and message are the run's).
    pub error: Error,
    /// The JSON document's fields besides `error`: `command`, `ran`, ...
    pub document: serde_json::Map<String, serde_json::Value>,
    /// Lines for stderr after the error line: what was done, how to restore what is unapplied.
    pub notes: Vec<String>,
}

impl Error {
    pub fn code(&self) -> Code {
        match self {
            Error::Files(_) | Error::Usage(_) => Code::Usage,
            Error::Io(_) | Error::Connect(_) | Error::Database(_) => Code::Failure,
            Error::Findings => Code::Findings,
            Error::Reported(code) => *code,
            Error::Partial(p) => p.error.code(),
            Error::Run(e) => match e.as_ref() {
                migrations_core::Error::Plan(PlanError::Drift(_))
                | migrations_core::Error::Plan(PlanError::Incompatible { .. }) => Code::Findings,
                migrations_core::Error::Plan(_) => Code::Usage,
                migrations_core::Error::RefusedInTransaction { .. }
                | migrations_core::Error::GroupedNoTransaction { .. }
                | migrations_core::Error::Placeholder(_) => Code::Usage,
                _ => Code::Failure,
            },
        }
    }

    /// A stable name for the JSON error document.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Files(_) => "files",
            Error::Usage(_) => "usage",
            Error::Io(_) => "io",
            Error::Connect(_) => "connect",
            Error::Database(_) => "database",
            Error::Findings => "findings",
            Error::Reported(_) => "fleet",
            Error::Partial(p) => p.error.kind(),
            Error::Run(e) => match e.as_ref() {
                migrations_core::Error::Plan(PlanError::Drift(_)) => "drift",
                migrations_core::Error::Plan(PlanError::Incompatible { .. }) => "incompatible",
                migrations_core::Error::Plan(_) => "plan",
                migrations_core::Error::WaitTimeout { .. } => "wait_timeout",
                migrations_core::Error::Migration { .. } => "migration",
                migrations_core::Error::LockTimeout { .. } => "lock_timeout",
                migrations_core::Error::LockWait { .. } => "lock_wait",
                _ => "run",
            },
        }
    }

    /// Where a migration failed, as fields of the JSON error object: `version`, `name`,
    /// `direction`, `file`, `statement`, `line` (`null` when the failure came after the last
    /// statement) and `sqlstate` (`null` when the server sent none). Empty for other errors.
    pub fn migration_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        use migrations_core::Error as Core;
        let run = match self {
            Error::Partial(p) => return p.error.migration_fields(),
            Error::Run(e) => e.as_ref(),
            _ => return serde_json::Map::new(),
        };
        let (Core::Migration {
            version,
            name,
            direction,
            file,
            statement,
            source,
            ..
        }
        | Core::LockTimeout {
            version,
            name,
            direction,
            file,
            statement,
            source,
            ..
        }) = run
        else {
            return serde_json::Map::new();
        };
        let json = serde_json::json!({
            "version": version,
            "name": name,
            "direction": direction.as_str(),
            "file": file,
            "statement": statement.map(|s| s.number),
            "line": statement.map(|s| s.line),
            "sqlstate": source.code,
        });
        match json {
            serde_json::Value::Object(fields) => fields,
            _ => serde_json::Map::new(),
        }
    }
}

impl From<migrations_core::Error> for Error {
    fn from(e: migrations_core::Error) -> Self {
        Error::Run(Box::new(e))
    }
}

impl From<migrations_core::database::DatabaseError> for Error {
    fn from(e: migrations_core::database::DatabaseError) -> Self {
        match e {
            // A connection failure reads and exits as every other command's.
            migrations_core::database::DatabaseError::Connect(e) => Error::Connect(e),
            e => Error::Database(Box::new(e)),
        }
    }
}

impl From<ConnectError> for Error {
    fn from(e: ConnectError) -> Self {
        Error::Connect(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Files(e) => {
                let n = e.problems.len();
                write!(
                    f,
                    "the migrations directory has {n} problem{}:",
                    if n == 1 { "" } else { "s" }
                )?;
                for p in &e.problems {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
            Error::Usage(message) | Error::Io(message) => f.write_str(message),
            Error::Connect(e) => write!(f, "{e}"),
            Error::Database(e) => write!(f, "{e}"),
            Error::Run(e) => match e.as_ref() {
                // The library's first line, then each drift with the files' spellings.
                migrations_core::Error::Plan(PlanError::Drift(drifts)) => {
                    let text = e.to_string();
                    f.write_str(text.lines().next().unwrap_or_default())?;
                    for drift in drifts {
                        write!(f, "\n{}", crate::spelling::drift(drift))?;
                    }
                    Ok(())
                }
                e => write!(f, "{e}"),
            },
            Error::Findings | Error::Reported(_) => Ok(()),
            Error::Partial(p) => write!(f, "{}", p.error),
        }
    }
}
