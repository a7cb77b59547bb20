//! The integration tests of `migrations-core`, as one test binary (`it`) with one module per
//! subject, so that `cargo test` compiles and links the crate's dependencies into one
//! executable instead of one per file. Run one module with
//! `cargo test -p migrations-core --test it engine::`.
//!
//! Every module shares this process's throwaway PostgreSQL cluster (the harness starts one per
//! test process), as the tests of one file always did.
//!
//! `tests/compile_fail.rs` stays a binary of its own: trybuild builds the `tests/ui` cases
//! itself with cargo (minutes when cold, so it is worth running alone), and it sets a
//! process-wide environment variable that the connection tests here must not see.
//!
//! A test that re-runs this binary to run one `#[ignore]`d helper test in a child process
//! (`processes::child_runner`, `connect::child_connect`) names it with
//! [`common::test_name`], from its module path.

// `#[macro_use]`: `behaviour!` (one test per driver) is used by the modules below.
#[macro_use]
mod common;
mod big_scripts;
mod chain_digest;
mod code_migrations;
mod connect;
mod corpus;
mod database;
mod embed;
mod engine;
mod failure_location;
mod failure_paths;
mod fleet;
mod noop_migration;
mod offline;
mod owned;
mod placeholders;
mod pooler;
mod processes;
mod repeatable;
mod rolling;
mod roundtrip_data;
mod service_build;
mod session_hygiene;
mod sets;
mod snapshot;
mod sqlx_driver;
mod transaction_control;
mod up_to_date;
