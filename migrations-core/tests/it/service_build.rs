//! ARCHITECTURE.md's claim about a service build, checked on the real dependency graph
//! (`cargo tree`, from Cargo.lock, offline): a service that depends on `migrations-core` with
//! its default features (the two drivers) links no linter, no CLI parser, no TLS stack, no
//! TOML or glob code. The macro's own build-time dependencies (it reads `migrations.toml` when
//! the service compiles) are pruned: they never reach the service binary.
//!
//! Each check is shown able to fail: the same query finds rustls once `connect` is on, and
//! squawk and clap in the CLI's graph.

use std::collections::BTreeSet;
use std::process::Command;

/// The packages `package` links at run time with `features`, the macro's subtree pruned.
fn runtime_packages(package: &str, features: &[&str], default_features: bool) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "tree",
        "--offline",
        "--package",
        package,
        "--edges",
        "normal",
        "--prune",
        "migrations-macros",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    if !default_features {
        cmd.arg("--no-default-features");
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let out = cmd.output().expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The packages of `set` whose name starts with one of `prefixes`.
fn matching<'a>(set: &'a BTreeSet<String>, prefixes: &[&str]) -> Vec<&'a str> {
    set.iter()
        .map(String::as_str)
        .filter(|p| prefixes.iter().any(|f| p.starts_with(f)))
        .collect()
}

const NOT_IN_A_SERVICE: &[&str] = &[
    "squawk",
    "clap",
    "rustls",
    "tokio-rustls",
    "toml",
    "globset",
    "indicatif",
    "serde_json",
    "pg_query",
    "migrations-lint",
    // The sqlx adapter is opt-in (feature `sqlx`).
    "sqlx",
];

#[test]
fn a_service_build_links_no_linter_cli_tls_or_toml() {
    for (features, default_features) in [
        (&[][..], true),
        (&["postgres"][..], false),
        (&["tokio-postgres"][..], false),
    ] {
        let packages = runtime_packages("migrations-core", features, default_features);
        assert!(packages.contains("migrations-core"), "{packages:?}");
        assert_eq!(
            matching(&packages, NOT_IN_A_SERVICE),
            Vec::<&str>::new(),
            "a service build with features {features:?} (default: {default_features})"
        );
    }
    let sync_only = runtime_packages("migrations-core", &["postgres"], false);
    assert!(sync_only.contains("postgres"));
}

#[test]
fn the_check_sees_what_it_forbids() {
    let with_connect = runtime_packages("migrations-core", &["connect"], true);
    assert!(
        !matching(&with_connect, &["rustls"]).is_empty(),
        "{with_connect:?}"
    );
    let with_sqlx = runtime_packages("migrations-core", &["sqlx"], true);
    assert!(!matching(&with_sqlx, &["sqlx"]).is_empty(), "{with_sqlx:?}");
    let with_load = runtime_packages("migrations-core", &["load"], true);
    assert!(!matching(&with_load, &["toml"]).is_empty(), "{with_load:?}");
    let cli = runtime_packages("migrations-cli", &[], true);
    for expected in ["squawk", "clap", "migrations-lint"] {
        assert!(
            !matching(&cli, &[expected]).is_empty(),
            "{expected}: {cli:?}"
        );
    }
}
