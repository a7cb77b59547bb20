//! Compile-fail tests: one file per mistake under `tests/ui/`, each with the errors a user reads
//! in its `.stderr` beside it (regenerate with `TRYBUILD=overwrite`, then review the diff).

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
