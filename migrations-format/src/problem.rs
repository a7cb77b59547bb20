//! Problems found in a migrations directory: each names a file, a line where there is one, what
//! is wrong and how to fix it.

use std::fmt;
use std::path::PathBuf;

/// What kind of problem; stable, so tests and tools can match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The migrations directory (or a file in it) could not be read.
    Io,
    /// A `.sql` file, or a folder holding `.sql` files, whose name is not a migration name.
    BadName,
    /// A migration folder without `up.sql`, or a down file without its up file.
    MissingUp,
    /// Two migrations share a version.
    DuplicateVersion,
    /// A file that is not valid UTF-8.
    NotUtf8,
    /// An unknown or malformed `-- migrations:` directive, or one placed after SQL.
    BadDirective,
    /// A statement PostgreSQL refuses inside a transaction block, in a transactional up file.
    NonTransactional,
    /// Transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, ...) in a transactional up file:
    /// it would break the transaction that applies the file and records it.
    TransactionControl,
    /// Input only psql understands, in an up or a down file: a meta-command (`\set`, `\i`,
    /// ...) or `COPY ... FROM STDIN` with its inline data. Reported once per file.
    PsqlOnly,
    /// A string, quoted identifier, comment or dollar quote that never ends.
    Unterminated,
    /// `metadata.toml` is malformed or contradicts a directive.
    BadMetadata,
    /// `migrations.toml` is malformed.
    BadSettings,
    /// A malformed `${...}` placeholder, a placeholder without a value, or a value that cannot
    /// go where its placeholder sits.
    Placeholder,
    /// A down file is required (`require_down`) and missing.
    MissingDown,
}

/// One problem in a migrations directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What went wrong, for code that matches on problems rather than reading the message.
    pub kind: ProblemKind,
    /// The file (or folder) concerned, as the caller named the directory.
    pub path: PathBuf,
    /// 1-based line, where the problem has one.
    pub line: Option<u32>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found while loading a directory. Loading goes on after the first problem so a
/// user fixes them all in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Every problem found, in the order found (never empty when returned by the loader).
    pub problems: Vec<Problem>,
}

impl LoadError {
    /// The kind of each problem, in order (handy for tests and for choosing an exit code).
    pub fn kinds(&self) -> Vec<ProblemKind> {
        self.problems.iter().map(|p| p.kind).collect()
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}
