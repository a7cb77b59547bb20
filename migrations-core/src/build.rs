//! Build-script support: make Cargo rebuild the crate when a migration file is added.
//!
//! `embed_migrations!` makes the compiler track every file it embedded, so editing one rebuilds
//! the crate. A file that did not exist at the last build is not tracked by anything, so Cargo
//! needs to be told to watch the directory. The whole `build.rs` is one line, with no
//! build-dependency:
//!
//! ```text
//! fn main() { println!("cargo:rerun-if-changed=migrations"); }
//! ```
//!
//! `migrations init` writes that file. A crate that already depends on `migrations-core` as a
//! build-dependency can call [`rerun_if_changed`] instead.

/// Prints the `cargo:rerun-if-changed` line for a migrations directory (relative to the crate's
/// `Cargo.toml`). Cargo then re-runs the build script, and rebuilds the crate, whenever any file
/// under it is added, removed or changed.
pub fn rerun_if_changed(dir: &str) {
    println!("cargo:rerun-if-changed={dir}");
}
