//! The migrations directory format (SPEC section 1), in one implementation shared by the
//! `embed_migrations!` macro, the runtime loader and the CLI.
//!
//! This crate knows no database and does no async: it turns a directory into a sorted list of
//! [`MigrationSource`]s, or into a [`LoadError`] whose [`Problem`]s each name a file (and a line
//! where there is one) and say how to fix it.

pub mod checksum;
pub mod directive;
mod dir;
mod facts;
pub mod name;
mod problem;
pub mod settings;
pub mod sql;
pub mod version;

pub use checksum::{normalize, Checksum};
pub use dir::{load_dir, load_dir_with, Directory, Layout, LoadOptions, MigrationSource, SqlFile};
pub use directive::Directives;
pub use facts::{statement_ranges, NonTransactionalStatement};
pub use name::Direction;
pub use problem::{LoadError, Problem, ProblemKind};
pub use settings::{Settings, SETTINGS_FILE};
pub use version::Version;
