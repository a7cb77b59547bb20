//! The integration tests of `migrations-lint`, as one test binary (`it`) with one module per
//! subject, so that `cargo test` links squawk and the harness once. Run one module with
//! `cargo test -p migrations-lint --test it rules::`.
//!
//! Fixture paths (`tests/fixtures`, the crates.io corpus, `docs/lint.md`) are relative to
//! `CARGO_MANIFEST_DIR`, so they do not depend on where a module's file lives.

mod big;
mod corpus;
mod rewrites;
mod rules;
