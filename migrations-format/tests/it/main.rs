//! The integration tests of `migrations-format`, as one test binary (`it`) with one module per
//! subject, so that `cargo test` links the crate and its dev-dependencies (`pg_query`, the
//! splitter's oracle) once. Run one module with
//! `cargo test -p migrations-format --test it splitter_oracle::`.
//!
//! Fixture paths (`tests/sql`, the crates.io corpus) are relative to `CARGO_MANIFEST_DIR`, so
//! they do not depend on where a module's file lives.

mod cache;
mod load_dir;
mod lockfile;
mod parallel_load;
mod splitter_oracle;
