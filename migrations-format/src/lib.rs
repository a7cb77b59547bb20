#![warn(missing_docs)]
//! The migrations directory format (SPEC section 1), in one implementation shared by the
//! `embed_migrations!` macro, the runtime loader and the CLI.
//!
//! This crate knows no database and does no async: it turns a directory into a sorted list of
//! [`MigrationSource`]s, or into a [`LoadError`] whose [`Problem`]s each name a file (and a line
//! where there is one) and say how to fix it.

#[cfg(feature = "dir")]
pub mod cache;
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
pub use placeholder::Placeholders;
pub use problem::{LoadError, Problem, ProblemKind};
#[cfg(feature = "dir")]
pub use settings::{Settings, SETTINGS_FILE};
pub use version::Version;

/// Digest of a chain of applied migrations, as 64 hex digits: the XOR of
/// [`checksum::chain_item`] (SHA-256 of `version:checksum:mode`, `mode` `t` for no-transaction,
/// `f` otherwise) over the migrations. Versions are unique, so no two items cancel; the empty
/// chain is 64 zeros.
///
/// A set digest, not a hash of the joined list, because the history keeps its own copy up to
/// date one row at a time: a trigger on the history table XORs each changed row out and in
/// (history format 3), so the warm-start check reads one stored value instead of hashing every
/// row, and compares it with the one the binary carries.
pub fn chain_digest<'a>(items: impl IntoIterator<Item = (i64, &'a str, bool)>) -> String {
    let mut acc = [0u8; 32];
    for (version, checksum, no_tx) in items {
        checksum::xor_into(&mut acc, &checksum::chain_item(version, checksum, no_tx));
    }
    checksum::hex(&acc)
}
