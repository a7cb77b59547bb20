//! `${name}` placeholders through the binary: where values come from (`--placeholder` over
//! `MIGRATIONS_PLACEHOLDER_<NAME>` over `[placeholders]`), one file applied to two schemas with
//! one checksum, and every problem refused with its file and line, exit 2, before anything
//! runs.

use migrations_tests::test_db;

use crate::common::*;

const UP: &str = "-- one schema per tenant\nCREATE TABLE ${schema}.items (id bigint PRIMARY KEY, note text DEFAULT '${note}');\n";

fn project() -> Project {
    Project::new(&[
        ("1_items.up.sql", UP),
        ("1_items.down.sql", "DROP TABLE ${schema}.items;\n"),
    ])
}

#[test]
fn flag_over_environment_over_settings() {
    let p = project();
    p.write_file(
        "migrations/migrations.toml",
        "[placeholders]\nschema = \"from_toml\"\nnote = \"it's\"\n",
    );
    let sql = |args: &[&str], env: &[(&str, &str)]| {
        let run = p.run_without_database(&[&["sql"], args].concat(), env);
        run.ok();
        run.stdout
    };
    let settings = sql(&[], &[]);
    assert!(
        settings.contains(
            "CREATE TABLE from_toml.items (id bigint PRIMARY KEY, note text DEFAULT 'it''s');"
        ),
        "{settings}"
    );
    let env = [("MIGRATIONS_PLACEHOLDER_SCHEMA", "from_env")];
    assert!(sql(&[], &env).contains("CREATE TABLE from_env.items"));
    let flag = sql(&["--placeholder", "schema=from_flag"], &env);
    assert!(flag.contains("CREATE TABLE from_flag.items"), "{flag}");
    assert!(!flag.contains("${"), "{flag}");
    // The checksum the script records is the file's as written, whatever the values.
    let written = migrations_format::Checksum::of_normalized(UP).to_hex();
    let checksum = |text: &str| text.contains(&format!("E'{written}'"));
    assert!(checksum(&settings) && checksum(&flag), "{flag}");
}

#[test]
fn two_schemas_one_checksum_through_up() {
    let db = test_db();
    let p = project().url_in_env(db.url());
    for tenant in ["tenant_a", "tenant_b"] {
        scalar(&db, &format!("CREATE SCHEMA {tenant}"));
        let placeholder = format!("schema={tenant}");
        p.run(&[
            "up",
            "--schema",
            tenant,
            "--placeholder",
            &placeholder,
            "--placeholder",
            "note=x",
        ])
        .ok();
    }
    let checksums = column(
        &db,
        "SELECT checksum FROM tenant_a.migrations_history UNION ALL \
         SELECT checksum FROM tenant_b.migrations_history",
    );
    assert_eq!(checksums.len(), 2);
    assert_eq!(checksums[0], checksums[1]);
    assert!(table_exists(&db, "tenant_a.items") && table_exists(&db, "tenant_b.items"));
    // status needs no values: it compares checksums as written.
    let status = p.run(&["status", "--schema", "tenant_a"]);
    status.ok();
    assert!(status.stdout.contains("applied"), "{}", status.stdout);
}

#[test]
fn a_missing_value_is_exit_2_with_file_and_line() {
    let db = test_db();
    let p = project().url_in_env(db.url());
    let run = p.run(&["up", "--placeholder", "schema=public"]);
    run.expect(2);
    assert!(
        run.stderr.contains(
            "migrations/1_items.up.sql:2: placeholder `${note}` has no value; give it one with \
             `--placeholder note=VALUE`, the variable MIGRATIONS_PLACEHOLDER_NOTE, `note = \
             \"...\"` under [placeholders] in migrations.toml, or Migrator::placeholder (write \
             `$${` for a literal `${`)"
        ),
        "{}",
        run.stderr
    );
    assert!(!table_exists(&db, "public.migrations_history"));
}

#[test]
fn an_injection_attempt_is_refused_or_quoted() {
    let db = test_db();
    let p = project().url_in_env(db.url());
    scalar(&db, "CREATE TABLE victim ()");
    let run = p.run(&[
        "up",
        "--placeholder",
        "schema=public; DROP TABLE victim; --",
        "--placeholder",
        "note=n",
    ]);
    run.expect(2);
    assert!(
        run.stderr.contains(
            "migrations/1_items.up.sql:2: the value of placeholder `${schema}` holds ';', and \
             `${schema}` sits in SQL code"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("DROP TABLE victim"), "{}", run.stderr);
    assert!(table_exists(&db, "victim"));
    // In a string the same value is escaped, and stored whole.
    p.run(&[
        "up",
        "--placeholder",
        "schema=public",
        "--placeholder",
        "note='); DROP TABLE victim; --",
    ])
    .ok();
    assert!(table_exists(&db, "victim"));
    assert_eq!(
        column(&db, "INSERT INTO items (id) VALUES (1) RETURNING note"),
        [Some("'); DROP TABLE victim; --".to_owned())]
    );
}

#[test]
fn malformed_placeholders_and_names_are_file_problems() {
    let p = Project::new(&[
        ("1_a.up.sql", "SELECT 1;\nSELECT ${a b};\n"),
        ("2_${tenant}.up.sql", "SELECT 1;\n"),
    ]);
    let run = p.run_without_database(&["sql"], &[]);
    run.expect(2);
    assert!(
        run.stderr
            .contains("migrations/1_a.up.sql:2: `${a b}`: `a b` is not a placeholder name"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "migrations/2_${tenant}.up.sql: a placeholder (`${...}`) in a file name is never \
             replaced: placeholders belong in the SQL; rename the file"
        ),
        "{}",
        run.stderr
    );
    let run = p.run_without_database(&["sql", "--placeholder", "1x=y"], &[]);
    run.expect(2);
    assert!(
        run.stderr.contains("`1x` is not a placeholder name"),
        "{}",
        run.stderr
    );
}

#[test]
fn lint_reads_the_sql_around_placeholders() {
    let p = project();
    let run = p.run_without_database(&["lint"], &[]);
    run.ok();
    assert!(run.stdout.contains("no findings"), "{}", run.all());
    assert!(!run.stderr.contains("parse"), "{}", run.stderr);
}
