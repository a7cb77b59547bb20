//! `${name}` placeholders through the engine, on a real server, with both drivers: one file
//! applied to two schemas with one checksum, values quoted for where they sit, and every
//! problem (no value, a value that cannot go where code goes) refused before anything runs.

use migrations_core::{embed_migrations, Error, Migrations, Operation};
use migrations_format::ProblemKind;
use migrations_tests::test_db;

use crate::common::*;

/// `[placeholders] schema = "embedded_default"` in its migrations.toml.
static EMBEDDED: Migrations = embed_migrations!("tests/fixtures/placeholders");

const TENANT_UP: &str = "CREATE TABLE ${schema}.items (\n  id bigint PRIMARY KEY,\n  note text DEFAULT '${note}'\n);\nCREATE VIEW ${schema}.\"${view}\" AS SELECT * FROM ${schema}.items;\n";

fn tenant_dir() -> Dir {
    Dir::new(&[
        ("1_items.up.sql", TENANT_UP),
        ("1_items.down.sql", "DROP TABLE ${schema}.items CASCADE;\n"),
    ])
}

behaviour!(one_file_two_schemas_one_checksum, |driver: Driver| {
    let db = test_db();
    let dir = tenant_dir();
    let migrations = dir.load();
    for tenant in ["tenant_a", "tenant_b"] {
        scalar(&db, &format!("CREATE SCHEMA {tenant}"));
        let report = driver
            .execute(&db, &migrations, &Operation::Up { to: None }, |m| {
                m.schema(tenant)
                    .placeholder("schema", tenant)
                    .placeholder("NOTE", "it's '); DROP TABLE x; --")
                    .placeholder("view", "Items \"view\"")
            })
            .unwrap();
        assert_eq!(report.ran.len(), 1);
    }
    // One checksum, the file's as written, in both histories.
    let checksums = column(
        &db,
        "SELECT checksum FROM tenant_a.migrations_history UNION ALL \
         SELECT checksum FROM tenant_b.migrations_history",
    );
    let written = migrations.get(1).unwrap().checksum().to_owned();
    assert_eq!(checksums, [Some(written.clone()), Some(written)]);
    // The string value went in escaped, whole; the quoted identifier too.
    assert_eq!(
        column(
            &db,
            "INSERT INTO tenant_b.items (id) VALUES (1) RETURNING note"
        ),
        [Some("it's '); DROP TABLE x; --".to_owned())]
    );
    assert!(table_exists(&db, "tenant_a.\"Items \"\"view\"\"\""));
    // Reverting substitutes the down file too.
    driver
        .execute(
            &db,
            &migrations,
            &Operation::Down(migrations_core::DownTarget::Count(1)),
            |m| {
                m.schema("tenant_a").placeholders([
                    ("schema", "tenant_a"),
                    ("note", ""),
                    ("view", "v"),
                ])
            },
        )
        .unwrap();
    assert!(!table_exists(&db, "tenant_a.items"));
    assert!(table_exists(&db, "tenant_b.items"));
});

behaviour!(a_missing_value_runs_nothing, |driver: Driver| {
    let db = test_db();
    let dir = tenant_dir();
    let err = driver
        .execute(&db, &dir.load(), &Operation::Up { to: None }, |m| {
            m.placeholder("schema", "public")
        })
        .unwrap_err();
    let Error::Placeholder(problems) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        problems.kinds(),
        [ProblemKind::Placeholder, ProblemKind::Placeholder]
    );
    let path = dir.path().join("1_items.up.sql");
    assert_eq!(
        err.to_string(),
        format!(
            "{p}:3: placeholder `${{note}}` has no value; give it one with `--placeholder \
             note=VALUE`, the variable MIGRATIONS_PLACEHOLDER_NOTE, `note = \"...\"` under \
             [placeholders] in migrations.toml, or Migrator::placeholder (write `$${{` for a \
             literal `${{`)\n{p}:5: placeholder `${{view}}` has no value; give it one with \
             `--placeholder view=VALUE`, the variable MIGRATIONS_PLACEHOLDER_VIEW, `view = \
             \"...\"` under [placeholders] in migrations.toml, or Migrator::placeholder (write \
             `$${{` for a literal `${{`)",
            p = path.display()
        )
    );
    // Refused before the lock: not even the history table exists.
    assert!(!table_exists(&db, "public.migrations_history"));
});

behaviour!(an_injection_where_code_goes_is_refused, |driver: Driver| {
    let db = test_db();
    let dir = tenant_dir();
    let err = driver
        .execute(&db, &dir.load(), &Operation::Up { to: None }, |m| {
            m.placeholders([
                ("schema", "public; DROP TABLE victim"),
                ("note", "n"),
                ("view", "v"),
            ])
        })
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Placeholder(_)), "{err:?}");
    assert!(
        message.contains(
            "1_items.up.sql:1: the value of placeholder `${schema}` holds ';', and `${schema}` \
             sits in SQL code, where only a plain identifier ([A-Za-z_][A-Za-z0-9_]*) or number \
             is inserted as is: write `${schema:ident}` to insert it as a quoted identifier, \
             `${schema:literal}` as a string, or `${schema:raw}` to insert it unchecked"
        ),
        "{message}"
    );
    assert!(
        !message.contains("DROP TABLE victim"),
        "the value is not echoed: {message}"
    );
    assert!(!table_exists(&db, "public.migrations_history"));
    // A bad name given to the builder is reported by the run, not a panic.
    let err = driver
        .execute(&db, &dir.load(), &Operation::Up { to: None }, |m| {
            m.placeholder("no-dash", "x")
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Migrator::placeholder: `no-dash` is not a placeholder name"),
        "{err}"
    );
});

behaviour!(embedded_defaults_and_overrides, |driver: Driver| {
    let db = test_db();
    // The macro carried `[placeholders]` into the binary.
    assert_eq!(
        EMBEDDED.placeholder_defaults().get("schema"),
        Some("embedded_default")
    );
    driver.up(&db, &EMBEDDED).unwrap();
    assert_eq!(
        column(
            &db,
            "INSERT INTO embedded_default.items (id) VALUES (1) RETURNING label"
        ),
        [Some("made for embedded_default".to_owned())]
    );
    // The service's own value wins over the file's.
    driver
        .execute(&db, &EMBEDDED, &Operation::Up { to: None }, |m| {
            m.table("other_history").placeholder("schema", "chosen")
        })
        .unwrap();
    assert!(table_exists(&db, "chosen.items"));
    // The plan (dry run) substitutes too, so it refuses what the run would.
    let migrator = migrations_core::Migrator::new(&EMBEDDED)
        .table("third")
        .placeholder("schema", "a b");
    let err = migrator
        .plan(&mut db.connect(), &Operation::Up { to: None })
        .unwrap_err();
    assert!(matches!(err, Error::Placeholder(_)), "{err:?}");
});

#[test]
fn a_resolved_set_is_not_substituted_twice() {
    let dir = Dir::new(&[("1_a.up.sql", "SELECT '$${literal}', ${v:raw};\n")]);
    let mut values = migrations_format::Placeholders::new();
    values.insert("v", "'${v}'").unwrap();
    let once = dir.load().with_placeholders(&values).unwrap();
    assert_eq!(
        once.get(1).unwrap().up().sql(),
        "SELECT '${literal}', '${v}';\n"
    );
    assert!(once.placeholders_resolved());
    let twice = once
        .with_placeholders(&migrations_format::Placeholders::new())
        .unwrap();
    assert_eq!(
        twice.get(1).unwrap().up().sql(),
        once.get(1).unwrap().up().sql()
    );
    assert_eq!(
        twice.get(1).unwrap().checksum(),
        dir.load().get(1).unwrap().checksum()
    );
}
