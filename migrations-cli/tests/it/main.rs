//! The integration tests of `migrations-cli`, as one test binary (`it`) with one module per
//! subject, so that `cargo test` links the binary's dependencies into one test executable
//! instead of one per file. Run one module with `cargo test -p migrations-cli --test it lint::`.
//!
//! Every test runs the real `migrations` binary the same way, through [`common`]: a clean
//! environment, a project directory, and a [`common::Run`] of what it printed. Fixtures
//! (`tests/bad_input/<case>/`) are found from `CARGO_MANIFEST_DIR`.

mod common;

mod adopt_sqlx;
mod bad_input;
mod bad_input_db;
mod big_files;
mod cli;
mod code_migrations;
mod database;
mod failure_paths;
mod fleet;
mod lint;
mod manners;
mod partial;
mod placeholders;
mod repeatable;
mod rolling;
mod roundtrip;
mod roundtrip_data;
mod security;
mod sets;
mod warm_start;
