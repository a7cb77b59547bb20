//! The chain digest stored in the history (format 3; format 4 lets the runner's own
//! bookkeeping keep it without the trigger): every path that changes a history row
//! leaves the stored digest equal to the one recomputed from the rows, and the warm-start check
//! that reads it (one row) is right: fast when everything is applied (or only post-deployment
//! migrations wait), slow whenever a row is missing, failed, running or edited.
#![allow(clippy::result_large_err)] // the core's error is returned once per run

use crate::common::{
    column, end_sleeping_runner, runner_asleep_in_a_no_transaction_step, scalar, Dir, Driver,
};
use migrations_core::plan::Direction;
use migrations_core::{
    offline_script, DownTarget, Migrations, Migrator, Names, OfflineRange, Operation, Phase, Tool,
};
use migrations_format::checksum::xor_into;
use migrations_format::Checksum;
use migrations_tests::{test_db, TestDb};

/// The digest stored in `<table>_meta`, as hex (the form of `Migrations::chain_digest`).
fn stored(db: &TestDb) -> String {
    let bits = scalar(
        db,
        "SELECT chain_digest::text FROM public.migrations_history_meta",
    )
    .expect("one stored digest");
    assert_eq!(bits.len(), 256, "{bits}");
    bits.as_bytes()
        .chunks(4)
        .map(|nibble| {
            let v = nibble.iter().fold(0u8, |acc, b| (acc << 1) | (b - b'0'));
            char::from_digit(u32::from(v), 16).unwrap()
        })
        .collect()
}

/// The digest recomputed here, independently of the trigger, from every row: the XOR of
/// SHA-256 of `version:checksum:t|f`, with `:state` appended for a row not applied.
fn recomputed(db: &TestDb) -> String {
    let rows = column(
        db,
        "SELECT version || ':' || checksum || ':' || CASE WHEN no_transaction THEN 't' ELSE 'f' \
         END || CASE WHEN state = 'applied' THEN '' ELSE ':' || state END \
         FROM public.migrations_history",
    );
    let mut acc = [0u8; 32];
    for row in rows {
        xor_into(&mut acc, Checksum::of_normalized(&row.unwrap()).as_bytes());
    }
    acc.iter().map(|b| format!("{b:02x}")).collect()
}

/// The binary's digest of the applied rows as they are (the old aggregate's meaning: every
/// applied row's version, checksum and mode), for a history with no running or failed row.
fn of_applied_rows(db: &TestDb) -> String {
    let rows = column(
        db,
        "SELECT version || ' ' || checksum || ' ' || no_transaction FROM \
         public.migrations_history WHERE state = 'applied'",
    );
    let rows: Vec<(i64, String, bool)> = rows
        .into_iter()
        .map(|r| {
            let r = r.unwrap();
            let mut parts = r.split(' ');
            (
                parts.next().unwrap().parse().unwrap(),
                parts.next().unwrap().to_owned(),
                parts.next().unwrap() == "true",
            )
        })
        .collect();
    migrations_format::chain_digest(rows.iter().map(|(v, c, t)| (*v, c.as_str(), *t)))
}

/// After a path: the stored digest is the recomputed one.
#[track_caller]
fn assert_kept(db: &TestDb, after: &str) {
    assert_eq!(stored(db), recomputed(db), "after {after}");
}

fn dir() -> Dir {
    Dir::new(&[
        (
            "1_users.up.sql",
            "CREATE TABLE users (id int PRIMARY KEY, email text);\n",
        ),
        ("1_users.down.sql", "DROP TABLE users;\n"),
        (
            "2_index.up.sql",
            "-- migrations:no-transaction\n\
             CREATE INDEX CONCURRENTLY users_email ON users (email);\n\
             CREATE INDEX CONCURRENTLY users_lower ON users (lower(email));\n",
        ),
        (
            "2_index.down.sql",
            "-- migrations:no-transaction\n\
             DROP INDEX CONCURRENTLY users_lower;\n\
             DROP INDEX CONCURRENTLY users_email;\n",
        ),
        ("3_seed.up.sql", "INSERT INTO users VALUES (1, 'a');\n"),
        ("3_seed.down.sql", "DELETE FROM users;\n"),
    ])
}

fn up_fast(driver: Driver, db: &TestDb, m: &Migrations) -> bool {
    driver.up(db, m).unwrap().up_to_date_fast
}

behaviour!(
    every_runner_path_keeps_the_stored_digest,
    |driver: Driver| {
        let db = test_db();
        let d = dir();
        let m = d.load();

        // Up (transactional and no-transaction steps), then the warm check reads one row.
        assert_eq!(driver.up(&db, &m).unwrap().ran.len(), 3);
        assert_kept(&db, "up");
        assert_eq!(stored(&db), m.chain_digest());
        assert_eq!(of_applied_rows(&db), m.chain_digest());
        assert!(up_fast(driver, &db, &m));

        // Down: a transactional step, then a no-transaction one.
        driver
            .execute(&db, &m, &Operation::Down(DownTarget::To(1)), |m| m)
            .unwrap();
        assert_kept(&db, "down");
        assert_eq!(of_applied_rows(&db), stored(&db));
        assert_ne!(stored(&db), m.chain_digest());
        driver.up(&db, &m).unwrap();
        assert_kept(&db, "up again");

        // A failed transactional step leaves nothing (rolled back), a failed no-transaction step a
        // failed row: neither is up to date, and repair clears it.
        d.write("4_bad.up.sql", "CREATE TABLE nope (a int);\nSELECT 1/0;\n");
        d.write(
            "5_badix.up.sql",
            "-- migrations:no-transaction\n\
         CREATE INDEX CONCURRENTLY users_id ON users (id);\n\
         CREATE INDEX CONCURRENTLY users_bad ON users ((1/0));\n",
        );
        let bad = d.load();
        driver.up(&db, &bad).unwrap_err();
        assert_kept(&db, "a failed transactional step");
        d.remove("4_bad.up.sql");
        let bad = d.load();
        driver.up(&db, &bad).unwrap_err();
        assert_kept(&db, "a failed no-transaction step");
        assert_eq!(
            scalar(
                &db,
                "SELECT state FROM migrations_history WHERE version = 5"
            )
            .as_deref(),
            Some("failed")
        );
        // The slow path reports it (the warm check let it through to the planner).
        assert!(driver
            .up(&db, &bad)
            .unwrap_err()
            .to_string()
            .contains("division by zero"));
        driver.repair(&db, &bad, None, false).unwrap();
        assert_kept(&db, "repair");
        d.remove("5_badix.up.sql");

        // repair --accept-checksum of an edited file.
        d.write(
            "3_seed.up.sql",
            "INSERT INTO users VALUES (1, 'a');\n-- edited\n",
        );
        let edited = d.load();
        assert_ne!(stored(&db), edited.chain_digest());
        driver.repair(&db, &edited, None, true).unwrap();
        assert_kept(&db, "repair --accept-checksum");
        assert_eq!(stored(&db), edited.chain_digest());
        assert!(up_fast(driver, &db, &edited));

        // Down with the stored down script, by a binary that lacks migration 3.
        d.remove("3_seed.up.sql");
        d.remove("3_seed.down.sql");
        let without_3 = d.load();
        driver
            .execute(&db, &without_3, &Operation::Down(DownTarget::To(2)), |m| {
                m.stored_downs(true)
            })
            .unwrap();
        assert_kept(&db, "a stored down");
        assert_eq!(stored(&db), without_3.chain_digest());
        assert!(up_fast(driver, &db, &without_3));
    }
);

#[test]
fn baseline_and_adoption_keep_the_stored_digest() {
    let d = dir();
    let m = d.load();

    let db = test_db();
    Migrator::new(&m).baseline(&mut db.connect(), 2).unwrap();
    assert_kept(&db, "baseline");
    assert_eq!(of_applied_rows(&db), stored(&db));

    let db = test_db();
    db.connect()
        .batch_execute(
            "CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY, \
             run_on timestamp NOT NULL DEFAULT now());\
             INSERT INTO __diesel_schema_migrations (version) VALUES ('1'), ('2'), ('3');",
        )
        .unwrap();
    Migrator::new(&m)
        .adopt(&mut db.connect(), Tool::Diesel, None)
        .unwrap();
    assert_kept(&db, "adopt");
    assert_eq!(stored(&db), m.chain_digest());
    let mut client = db.connect();
    assert!(Migrator::new(&m).run(&mut client).unwrap().up_to_date_fast);
}

/// Hand edits in psql are kept too (the trigger sees every change), and a TRUNCATE empties
/// the digest: the warm check can never prove a history it does not hold.
#[test]
fn hand_edits_and_truncate_keep_the_stored_digest() {
    let db = test_db();
    let m = dir().load();
    Migrator::new(&m).run(&mut db.connect()).unwrap();
    let mut client = db.connect();
    client
        .batch_execute("UPDATE migrations_history SET checksum = 'edited' WHERE version = 3")
        .unwrap();
    assert_kept(&db, "an UPDATE");
    assert!(!Migrator::new(&m)
        .run(&mut client)
        .unwrap_err()
        .to_string()
        .is_empty());
    client
        .batch_execute("DELETE FROM migrations_history WHERE version = 3")
        .unwrap();
    assert_kept(&db, "a DELETE");
    client
        .batch_execute(
            "INSERT INTO migrations_history (version, version_digits, name, checksum, \
             no_transaction, state) VALUES (3, '3', 'seed', 'by hand', false, 'applied')",
        )
        .unwrap();
    assert_kept(&db, "an INSERT");
    // Nothing but the progress columns changed: the trigger does not fire (UPDATE OF).
    client
        .batch_execute("UPDATE migrations_history SET statements_done = 7 WHERE version = 2")
        .unwrap();
    assert_kept(&db, "a progress UPDATE");
    client
        .batch_execute("SET session_replication_role = replica; TRUNCATE migrations_history")
        .unwrap();
    assert_eq!(stored(&db), "0".repeat(64));
    assert_kept(&db, "TRUNCATE under session_replication_role = replica");
}

/// A no-transaction step whose session dies part-way leaves a `running` row (not up to date);
/// the next run marks it failed; every state keeps the digest.
#[test]
fn a_killed_no_transaction_step_keeps_the_stored_digest() {
    let db = test_db();
    let (m, runner) = runner_asleep_in_a_no_transaction_step(&db);
    end_sleeping_runner(&db);
    runner.join().unwrap().unwrap_err();
    assert_eq!(
        scalar(
            &db,
            "SELECT state FROM migrations_history WHERE version = 2"
        )
        .as_deref(),
        Some("running")
    );
    assert_kept(&db, "a killed no-transaction step");
    let mut client = db.connect();
    assert!(Migrator::new(&m).run(&mut client).is_err());
    assert_eq!(
        scalar(
            &db,
            "SELECT state FROM migrations_history WHERE version = 2"
        )
        .as_deref(),
        Some("failed")
    );
    assert_kept(&db, "the dead runner's row marked failed");
}

/// The offline script, run by real psql, keeps it too (its statements come from `StepSql`;
/// the trigger does the rest), and the script's table creation recomputes it.
#[test]
fn the_offline_script_keeps_the_stored_digest() {
    let db = test_db();
    let d = dir();
    let m = d.load();
    for (name, direction, to) in [
        ("up.sql.out", Direction::Up, None),
        ("down.sql.out", Direction::Down, Some(1)),
    ] {
        let text = offline_script(
            &m,
            &Names::default(),
            OfflineRange {
                from: None,
                to,
                direction,
            },
        )
        .unwrap();
        let file = d.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(&file)
            .arg(db.url())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_kept(&db, name);
    }
    assert_eq!(of_applied_rows(&db), stored(&db));
}

/// A format-2 history (no stored digest) is upgraded under the lock with the digest of its
/// rows; then the warm check works.
#[test]
fn an_older_history_gets_the_digest_of_its_rows() {
    let db = test_db();
    let m = dir().load();
    Migrator::new(&m).run(&mut db.connect()).unwrap();
    // Back to format 2, as a binary before the stored digest left it.
    db.connect()
        .batch_execute(
            "DROP TRIGGER chain_digest ON migrations_history; \
             DROP TRIGGER chain_digest_truncate ON migrations_history; \
             DROP FUNCTION migrations_history_chain_digest(); DROP TABLE migrations_history_meta; \
             COMMENT ON TABLE migrations_history IS 'migrations history, format 2'",
        )
        .unwrap();
    let mut client = db.connect();
    let report = Migrator::new(&m).run(&mut client).unwrap();
    assert!(!report.up_to_date_fast && report.ran.is_empty());
    assert_kept(&db, "the upgrade");
    assert_eq!(stored(&db), m.chain_digest());
    assert_eq!(
        column(
            &db,
            "SELECT detail FROM migrations_history_audit WHERE event = 'history-upgrade'"
        ),
        [Some("history format 2 upgraded to 4".to_owned())]
    );
    assert!(Migrator::new(&m).run(&mut client).unwrap().up_to_date_fast);
}

/// A format-3 history (the digest kept by an unguarded trigger alone) is upgraded to format 4:
/// the trigger gains its `WHEN` clause, the digest stays right through the runner's own
/// bookkeeping and through hand edits.
#[test]
fn a_format_3_history_is_upgraded_to_4() {
    let db = test_db();
    let d = dir();
    d.remove("3_seed.up.sql");
    d.remove("3_seed.down.sql");
    let m = d.load();
    Migrator::new(&m).run(&mut db.connect()).unwrap();
    // Back to format 3, as the release before left it: the trigger without its WHEN clause.
    db.connect()
        .batch_execute(
            "DROP TRIGGER chain_digest ON migrations_history; \
             CREATE TRIGGER chain_digest AFTER INSERT OR DELETE OR UPDATE OF version, checksum, \
             no_transaction, state ON migrations_history FOR EACH ROW EXECUTE FUNCTION \
             migrations_history_chain_digest(); \
             ALTER TABLE migrations_history ENABLE ALWAYS TRIGGER chain_digest; \
             COMMENT ON TABLE migrations_history IS 'migrations history, format 3'",
        )
        .unwrap();
    let when = "SELECT pg_get_triggerdef(oid) LIKE '%WHEN%' FROM pg_trigger \
                WHERE tgname = 'chain_digest'";
    assert_eq!(scalar(&db, when).as_deref(), Some("f"));
    let all = dir().load();
    let report = Migrator::new(&all).run(&mut db.connect()).unwrap();
    assert_eq!(report.ran.len(), 1);
    assert_eq!(scalar(&db, when).as_deref(), Some("t"));
    assert_eq!(
        scalar(
            &db,
            "SELECT obj_description('migrations_history'::regclass)"
        )
        .as_deref(),
        Some("migrations history, format 4")
    );
    assert_eq!(
        column(
            &db,
            "SELECT detail FROM migrations_history_audit WHERE event = 'history-upgrade'"
        ),
        [Some("history format 3 upgraded to 4".to_owned())]
    );
    assert_kept(&db, "the upgrade and an up");
    assert_eq!(stored(&db), all.chain_digest());
    db.connect()
        .batch_execute("UPDATE migrations_history SET checksum = 'edited' WHERE version = 3")
        .unwrap();
    assert_kept(&db, "a hand edit after the upgrade");
}

/// In grouped mode one transaction holds every migration: a script after another's
/// bookkeeping (which turned the trigger off for its own statement) still has its changes to
/// the history seen by the trigger; so does a script of the single mode.
#[test]
fn a_script_that_edits_the_history_keeps_the_stored_digest() {
    for grouped in [false, true] {
        let db = test_db();
        let d = Dir::new(&[
            ("1_a.up.sql", "CREATE TABLE a ();\n"),
            (
                "2_edit.up.sql",
                "UPDATE migrations_history SET checksum = 'edited' WHERE version = 1;\n",
            ),
        ]);
        let m = d.load();
        let mut client = db.connect();
        let report = Migrator::new(&m)
            .single_transaction(grouped)
            .run(&mut client)
            .unwrap();
        assert_eq!(report.ran.len(), 2);
        assert_eq!(
            scalar(
                &db,
                "SELECT checksum FROM migrations_history WHERE version = 1"
            )
            .as_deref(),
            Some("edited")
        );
        assert_kept(&db, if grouped { "grouped" } else { "single" });
        assert_ne!(stored(&db), m.chain_digest());
    }
}

/// While post-deployment migrations wait for their phase, a plain `up` still finds nothing to
/// do in one query; `--phase post` does not, until it has run them.
#[test]
fn pending_post_deployment_migrations_keep_the_warm_start() {
    let db = test_db();
    let d = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (x int, y int);\n"),
        (
            "2_drop_y.up.sql",
            "-- migrations:phase=post\nALTER TABLE a DROP COLUMN y;\n",
        ),
        ("3_b.up.sql", "CREATE TABLE b ();\n"),
        (
            "4_drop_x.up.sql",
            "-- migrations:phase=post\nALTER TABLE a DROP COLUMN x;\n",
        ),
    ]);
    let m = d.load();
    let mut client = db.connect();
    assert_eq!(Migrator::new(&m).run(&mut client).unwrap().ran.len(), 2);
    assert!(Migrator::new(&m).run(&mut client).unwrap().up_to_date_fast);
    // The post phase has work, so its warm check fails; after it, both are fast.
    let post = Migrator::new(&m)
        .phase(Phase::Post)
        .execute(&mut client, &Operation::Up { to: Some(2) })
        .unwrap();
    assert_eq!(post.ran.len(), 1);
    assert!(Migrator::new(&m).run(&mut client).unwrap().up_to_date_fast);
    let mut post = Migrator::new(&m).phase(Phase::Post);
    assert!(!post.run(&mut client).unwrap().up_to_date_fast);
    assert!(post.run(&mut client).unwrap().up_to_date_fast);
    assert_kept(&db, "the phases");
}
