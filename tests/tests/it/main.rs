//! The integration tests of the harness crate (`migrations-tests`), as one test binary (`it`)
//! with one module per subject. Run one module with
//! `cargo test -p migrations-tests --test it harness::`.
//!
//! `harness` re-runs this binary to run one `#[ignore]`d `harness::child_helper_*` test in a
//! child process; the name it selects comes from the module's path.

mod ci_recipe;
mod cluster;
mod harness;
mod lock_merge;
mod readme;
mod static_binary;
