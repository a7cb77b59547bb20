#![warn(missing_docs)]
//! The migrations directory format (SPEC section 1), in one implementation shared by the
//! `embed_migrations!` macro, the runtime loader and the CLI.
//!
//! This crate knows no database and does no async: it turns a directory into a sorted list of
//! [`MigrationSource`]s, or into a [`LoadError`] whose [`Problem`]s each name a file (and a line
//! where there is one) and say how to fix it.

pub mod checksum;
#[cfg(feature = "dir")]
mod dir;
pub mod directive;
mod facts;
#[cfg(feature = "dir")]
pub mod lockfile;
pub mod name;
pub mod placeholder;
mod problem;
#[cfg(feature = "dir")]
pub mod settings;
pub mod sql;
pub mod template;
pub mod version;

pub use checksum::{normalize, Checksum};
#[cfg(feature = "dir")]
pub use dir::{
    load_dir, load_dir_with, Directory, Layout, LoadOptions, MigrationSource, RepeatableSource,
    SqlFile,
};
pub use directive::Directives;
pub use facts::{statement_ranges, NonTransactionalStatement};
#[cfg(feature = "dir")]
pub use lockfile::{
    Finding, FindingKind, LockEntry, LockError, LockFile, LockProblem, RewriteError, LOCK_FILE,
};
pub use name::Direction;
pub use problem::{LoadError, Problem, ProblemKind};
pub use placeholder::Placeholders;
#[cfg(feature = "dir")]
pub use settings::{Settings, SETTINGS_FILE};
pub use version::Version;

/// Digest of a chain of applied migrations: SHA-256 over `version:checksum:mode` items
/// (`mode` is `t` for no-transaction, `f` otherwise) joined by `,`, in ascending order of
/// version value, as 64 hex digits.
///
/// The runner keeps no copy of it: the warm-start query computes the same digest on the server
/// from the history table (`string_agg` ordered by version, then `sha256`), and compares it
/// with the one the binary carries, in one round trip whatever the number of migrations.
pub fn chain_digest<'a>(items: impl IntoIterator<Item = (i64, &'a str, bool)>) -> String {
    let mut items: Vec<(i64, &str, bool)> = items.into_iter().collect();
    items.sort_by_key(|(version, _, _)| *version);
    let joined = items
        .iter()
        .map(|(version, checksum, no_tx)| {
            format!("{version}:{checksum}:{}", if *no_tx { 't' } else { 'f' })
        })
        .collect::<Vec<_>>()
        .join(",");
    Checksum::of_normalized(&joined).to_hex()
}
