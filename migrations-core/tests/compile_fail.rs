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

/// Editing an embedded file rebuilds the crate (the macro names every file it read in an
/// `include_bytes!`, which rustc records), and adding one does with the one-line `build.rs` the
/// docs give (added only after the edit is checked: it would rebuild on the edit by itself). A real cargo building a scratch crate, run after each change; its target
/// directory persists under `target/tmp`, so only the first run compiles the dependencies.
#[test]
fn edited_and_added_files_rebuild_the_crate() {
    use std::path::Path;
    use std::process::Command;

    let krate = tempfile::tempdir().unwrap();
    let root = krate.path();
    let core = env!("CARGO_MANIFEST_DIR");
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"embed-rebuild\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nmigrations-core = {{ path = {core:?}, \
             default-features = false }}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    // The workspace's versions, so the scratch crate builds what the tests built.
    std::fs::copy(
        Path::new(core).join("../Cargo.lock"),
        root.join("Cargo.lock"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("src/main.rs"),
        "static MIGRATIONS: migrations_core::Migrations = migrations_core::embed_migrations!();\n\
         fn main() {\n    for m in MIGRATIONS.iter() {\n        \
         println!(\"{} {}\", m.version(), m.up().sql().trim());\n    }\n}\n",
    )
    .unwrap();
    let migrations = root.join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(migrations.join("1_a.up.sql"), "CREATE TABLE a (id int);\n").unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("embed-rebuild-target");
    let run = || {
        let out = Command::new(env!("CARGO"))
            .args(["run", "--quiet"])
            .current_dir(root)
            .env("CARGO_TARGET_DIR", &target)
            // Set by the `ui` test in this process; the scratch crate resolves its own path.
            .env_remove("MIGRATIONS_MACROS_MANIFEST_DIR")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo run failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(), "1 CREATE TABLE a (id int);\n");
    std::fs::write(
        migrations.join("1_a.up.sql"),
        "CREATE TABLE a (id bigint);\n",
    )
    .unwrap();
    assert_eq!(
        run(),
        "1 CREATE TABLE a (id bigint);\n",
        "an edited migration file did not rebuild the crate"
    );
    // No build script so far: the edit above was seen through the macro's tracking alone (a
    // build script watching the directory would rebuild on any change there). New files need it.
    std::fs::write(
        root.join("build.rs"),
        "fn main() { println!(\"cargo:rerun-if-changed=migrations\"); }\n",
    )
    .unwrap();
    assert_eq!(run(), "1 CREATE TABLE a (id bigint);\n");
    std::fs::write(migrations.join("2_b.up.sql"), "CREATE TABLE b (id int);\n").unwrap();
    assert_eq!(
        run(),
        "1 CREATE TABLE a (id bigint);\n2 CREATE TABLE b (id int);\n",
        "an added migration file did not rebuild the crate"
    );
}
