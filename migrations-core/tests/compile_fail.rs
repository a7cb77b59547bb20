//! Compile-fail tests: one file per mistake under `tests/ui/`, each with the errors a user reads
//! in its `.stderr` beside it (regenerate with `TRYBUILD=overwrite`, then review the diff).
//!
//! A test binary of its own, not a module of `tests/it`: trybuild runs cargo to build every
//! case (about five minutes cold), which a plain `cargo test -p migrations-core --test it`
//! should not wait for, and it changes the process's environment (`set_var`), which is unsound
//! while other tests' threads read it (libc's name lookups do).

#[test]
fn ui() {
    // Under trybuild the macro runs in a generated project; point it back at this crate so the
    // fixture paths resolve.
    std::env::set_var("MIGRATIONS_MACROS_MANIFEST_DIR", env!("CARGO_MANIFEST_DIR"));
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    // Calls that must compile (and run): for example `verify_lock` with a new, unlocked
    // migration.
    t.pass("tests/ui/pass/*.rs");
}
