//! A Rust-code migration applied by a service (the library, `Migrations::with_code`), seen by
//! the binary, which has the directory but not the function: `status` shows "code (applied by
//! the service)", `--exit-code` is 0, `up` runs nothing and does not fail.

use migrations_core::{CodeFuture, CodeMigration, CodeTx, Migrations, Migrator};
use migrations_tests::test_db;

use crate::common::*;

fn backfill(tx: &mut CodeTx) -> CodeFuture<'_> {
    Box::pin(async move {
        tx.execute("UPDATE items SET size = id * 10").await?;
        Ok(())
    })
}

#[test]
fn status_shows_a_code_migration_the_service_applied() {
    let db = test_db();
    let p = Project::new(&[
        (
            "1_items.up.sql",
            "CREATE TABLE items (id bigint PRIMARY KEY, size bigint);\n\
             INSERT INTO items (id) VALUES (1), (2);\n",
        ),
        ("3_more.up.sql", "ALTER TABLE items ADD COLUMN note text;\n"),
    ])
    .url_in_env(db.url());
    // The service: the same directory, and its code migration 2.
    let service = Migrations::from_dir(p.migrations_dir())
        .unwrap()
        .with_code(CodeMigration::new(2, "backfill_size", "1", backfill))
        .unwrap();
    Migrator::new(&service).run(&mut db.connect()).unwrap();
    assert_eq!(
        column(&db, "SELECT size::text FROM items ORDER BY id"),
        [Some("10".to_owned()), Some("20".to_owned())]
    );

    let status = p.run(&["status", "--exit-code"]);
    status.expect(0);
    assert_eq!(
        status.stdout,
        "applied      1 items\n\
         code (applied by the service) 2 backfill_size\n\
         applied      3 more\n",
    );
    let json = p.run(&["--format", "json", "status"]);
    json.ok();
    assert_eq!(
        json.json()["migrations"][1]["status"],
        serde_json::json!("code (applied by the service)"),
        "{}",
        json.stdout
    );
    let up = p.run(&["up"]);
    up.ok();
}
