//! Repeatable migrations (`R__<name>.sql`) through the binary: a view re-applied exactly when
//! it changes, what `status`, `lock`, `lint` and the offline script say of it, and bad names.

use std::process::Command;

use migrations_tests::test_db;

use crate::common::*;

const VIEW_V1: &str = "CREATE OR REPLACE VIEW big_items AS SELECT id FROM items WHERE size > 10;\n";
const VIEW_V2: &str =
    "CREATE OR REPLACE VIEW big_items AS SELECT id, size FROM items WHERE size > 10;\n";

fn project() -> Project {
    Project::new(&[
        (
            "1_items.up.sql",
            "CREATE TABLE items (id bigint PRIMARY KEY, size bigint);\n",
        ),
        ("1_items.down.sql", "DROP TABLE items CASCADE;\n"),
        ("R__views.sql", VIEW_V1),
    ])
}

#[test]
fn a_view_is_reapplied_exactly_when_changed() {
    let db = test_db();
    let p = project().url_in_env(db.url());
    let status = p.run(&["status"]);
    status.ok();
    assert!(
        status
            .stdout
            .contains("pending      R__views.sql (repeatable)"),
        "{}",
        status.stdout
    );
    p.expect(&["status", "--exit-code"], 3);

    let up = p.run(&["up"]);
    up.ok();
    assert!(
        up.stdout.contains("applied repeatable views (new) in "),
        "{}",
        up.stdout
    );
    let applied_at = scalar(
        &db,
        "SELECT applied_at::text FROM migrations_history_repeatable WHERE name = 'views'",
    );

    // Unchanged: the second up applies nothing, the row does not move.
    let again = p.run(&["--format", "json", "up"]);
    again.ok();
    assert_eq!(again.json()["repeatables"], serde_json::json!([]));
    assert_eq!(
        scalar(
            &db,
            "SELECT applied_at::text FROM migrations_history_repeatable WHERE name = 'views'"
        ),
        applied_at
    );
    p.expect(&["status", "--exit-code"], 0);

    // Changed: status and the dry run say so, up applies it again, and only it.
    p.write("R__views.sql", VIEW_V2);
    let dry = p.run(&["up", "--dry-run"]);
    dry.ok();
    assert_eq!(dry.stdout, "would run repeatable views (changed)\n");
    let status = p.run(&["--format", "json", "status", "--exit-code"]);
    status.expect(3);
    let doc = status.json();
    assert_eq!(doc["repeatables"][0]["name"], "views");
    assert_eq!(doc["repeatables"][0]["status"], "changed");
    let up = p.run(&["--format", "json", "up"]);
    up.ok();
    let doc = up.json();
    assert_eq!(doc["ran"], serde_json::json!([]));
    assert_eq!(doc["repeatables"][0]["name"], "views");
    assert_eq!(doc["repeatables"][0]["changed"], true);
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'big_items'"
        ),
        Some("2".to_owned())
    );
    assert_eq!(
        scalar(&db, "SELECT checksum FROM migrations_history_repeatable"),
        Some(migrations_format::Checksum::of_normalized(VIEW_V2).to_hex())
    );
}

#[test]
fn the_lock_file_records_a_change_without_refusing_it() {
    let p = project();
    p.run_without_database(&["lock"], &[]).ok();
    let lock = std::fs::read_to_string(p.migrations_dir().join("migrations.lock")).unwrap();
    assert!(
        lock.ends_with(&format!(
            "# repeatable {} views\n",
            migrations_format::Checksum::of_normalized(VIEW_V1).to_hex()
        )),
        "{lock}"
    );
    p.write("R__views.sql", VIEW_V2);
    // verify finds nothing wrong: a repeatable is meant to change.
    p.run_without_database(&["verify"], &[]).ok();
    let relock = p.run_without_database(&["lock"], &[]);
    relock.ok();
    assert!(
        relock.stdout.contains("repeatable views: changed"),
        "{}",
        relock.stdout
    );
}

#[test]
fn the_offline_script_applies_it_when_due() {
    let db = test_db();
    let p = project();
    let script = p.run_without_database(&["sql"], &[]);
    script.ok();
    assert!(
        script.stdout.contains("\\if :migrations_repeatable_due"),
        "{}",
        script.stdout
    );
    let psql = |script: &str| {
        let path = p.path().join("up.sql");
        std::fs::write(&path, script).unwrap();
        let out = Command::new("psql")
            .args(["-X", "-q", "-f"])
            .arg(&path)
            .arg(db.url())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&script.stdout);
    // A script for what follows version 1: the repeatable is recorded with its checksum, so
    // psql skips it; once changed, it runs again.
    let after = |p: &Project| {
        let run = p.run_without_database(&["sql", "--from", "1"], &[]);
        run.ok();
        run.stdout.clone()
    };
    psql(&after(&p));
    p.write("R__views.sql", VIEW_V2);
    psql(&after(&p));
    assert_eq!(
        column(
            &db,
            "SELECT detail || ' ' || checksum FROM migrations_history_audit \
             WHERE event = 'apply-repeatable' ORDER BY id"
        ),
        [
            Some(format!(
                "offline script {}",
                migrations_format::Checksum::of_normalized(VIEW_V1).to_hex()
            )),
            Some(format!(
                "offline script {}",
                migrations_format::Checksum::of_normalized(VIEW_V2).to_hex()
            ))
        ]
    );
    assert_eq!(
        column(
            &db,
            "SELECT name || ' ' || checksum FROM migrations_history_repeatable"
        ),
        [Some(format!(
            "views {}",
            migrations_format::Checksum::of_normalized(VIEW_V2).to_hex()
        ))]
    );
    // The runner agrees it is applied.
    p.url_in_env(db.url()).run(&["status", "--exit-code"]).ok();
}

#[test]
fn lint_reads_repeatables() {
    let p = Project::new(&[
        (
            "1_items.up.sql",
            "CREATE TABLE items (id bigint PRIMARY KEY);\n",
        ),
        ("R__index.sql", "CREATE INDEX items_id ON items (id);\n"),
    ]);
    let run = p.run_without_database(&["lint"], &[]);
    run.expect(3);
    assert!(
        run.stdout
            .contains("migrations/R__index.sql:1:1: require-concurrent-index-creation"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_version_like_repeatable_name_is_refused() {
    let p = Project::new(&[("R__0001_views.sql", "SELECT 1;\n")]);
    let run = p.run_without_database(&["sql"], &[]);
    run.expect(2);
    assert!(
        run.stderr.contains(
            "migrations/R__0001_views.sql: `R__0001_views.sql` names a repeatable migration \
             with a version (0001): a repeatable has no version, it runs after the versioned \
             ones, in name order; rename it `R__views.sql`, or, if it is a versioned migration, \
             `0001_views.up.sql`"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn test_applies_repeatables_on_the_final_schema() {
    let db = test_db();
    let p = project().url_in_env(db.url());
    p.run(&["test"]).ok();
    // A view that no longer fits the schema the migrations leave fails the round trip.
    p.write(
        "R__views.sql",
        "CREATE OR REPLACE VIEW big_items AS SELECT weight FROM items;\n",
    );
    let run = p.run(&["test"]);
    run.expect(1);
    assert!(
        run.stderr.contains(
            "repeatable views failed (migrations/R__views.sql:1): column \"weight\" does not exist"
        ),
        "{}",
        run.stderr
    );
}
