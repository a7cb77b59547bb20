//! Exit codes (SPEC section 4), decided here and nowhere else.

use std::fmt;

/// The process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Done, nothing wrong.
    Ok = 0,
    /// Operational failure: connection, SQL error, lock timeout, I/O.
    Failure = 1,
    /// Bad usage or bad migration files. (clap also exits 2 on bad flags.)
    Usage = 2,
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
}

impl Error {
    pub fn code(&self) -> Code {
        match self {
            Error::Files(_) | Error::Usage(_) => Code::Usage,
            Error::Io(_) => Code::Failure,
        }
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
        }
    }
}
