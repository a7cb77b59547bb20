//! The failures users meet, through the `migrations` binary against a real PostgreSQL, with
//! the exit code (SPEC 4) and the exact lines they read: another runner holding the lock past
//! `--lock-wait`; `--statement-timeout` (and none by default); a history table of a newer
//! format or not ours; `--single-transaction` with a no-transaction migration; a migration's
//! transaction mode flipped after it was applied (drift, `verify` and the way back); the
//! `future` warning; and the pooler check behind a real PgBouncer on `up` and on the
//! maintenance commands.

use std::fs;

use migrations_core::Names;
use migrations_tests::{test_db, PgBouncer, TestDb};
use serde_json::Value;

use crate::common::{scalar, table_exists, Project, Run};

/// A project with `files` in `migrations/`, run with `--database-url url` and no other
/// connection settings.
fn project(url: &str, files: &[(&str, &str)]) -> Project {
    Project::new(files).url_as_flag(url)
}

fn checksum(db: &TestDb, version: i64) -> String {
    scalar(
        db,
        &format!("SELECT checksum FROM public.migrations_history WHERE version = {version}"),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn lock_wait_expires_while_another_runner_holds_the_lock() {
    let db = test_db();
    let p = project(db.url(), &[("1_t.up.sql", "CREATE TABLE t ();\n")]);
    let key = Names::default().lock_key();
    // Another deploy, named as deploys name themselves: the waiting runner says who it is.
    let mut holder = db.connect();
    holder
        .batch_execute("SET application_name = 'deploy-42'")
        .unwrap();
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .unwrap();
    assert_eq!(db.advisory_lock_holders(key), 1);
    let row = holder
        .query_one(
            "SELECT pg_backend_pid(), to_char(backend_start AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap();
    let (pid, since): (i32, String) = (row.get(0), row.get(1));

    let run = p.expect(&["up", "--lock-wait", "300ms"], 1);
    assert_eq!(
        run.stderr,
        format!(
            "warning: another runner holds the migrations lock (advisory lock {key}; held by pid \
             {pid}, application_name \"deploy-42\", session started {since}); waiting\n\
             error: another migration runner (pid {pid}, application_name \"deploy-42\", session \
             started {since}) has held the migrations lock (advisory lock {key}) for over 300ms; \
             wait for it to finish, or raise --lock-wait\n"
        )
    );
    assert_eq!(run.stdout, "");
    let json = p.expect(&["up", "--lock-wait", "300ms", "--format", "json"], 1);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "lock_wait", "{doc}");
    assert_eq!(doc["error"]["exit_code"], 1, "{doc}");
    assert_eq!(
        doc["lock_holder"],
        serde_json::json!({ "pid": pid, "application_name": "deploy-42", "since": since }),
        "{doc}"
    );
    assert!(!table_exists(&db, "t"));

    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .unwrap();
    let run = p.expect(&["up", "--lock-wait", "300ms"], 0);
    assert_eq!(run.stderr, "");
    assert!(table_exists(&db, "t"));
}

#[test]
fn statement_timeout_none_by_default_and_by_flag() {
    let db = test_db();
    // The database's own 1 s default would cancel the 1.5 s statement; the binary's default
    // is no timeout (SPEC 3.3).
    db.connect()
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET statement_timeout = '1s'",
            db.name()
        ))
        .unwrap();
    let p = project(
        db.url(),
        &[(
            "1_slow.up.sql",
            "SELECT pg_sleep(1.5);\nCREATE TABLE slept ();\n",
        )],
    );
    p.expect(&["up"], 0);
    assert!(table_exists(&db, "slept"));

    p.write(
        "2_slower.up.sql",
        "CREATE TABLE before_sleep ();\nSELECT pg_sleep(30);\n",
    );
    let run = p.expect(&["up", "--statement-timeout", "300ms"], 1);
    assert_eq!(
        run.stderr,
        "error: up 2 slower failed at statement 2 of 2 (migrations/2_slower.up.sql:2): \
         canceling statement due to statement timeout (SQLSTATE 57014)\n"
    );
    assert!(!table_exists(&db, "before_sleep"));
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM public.migrations_history"),
        Some("1".into())
    );
}

#[test]
fn history_table_newer_or_not_ours() {
    let db = test_db();
    let p = project(db.url(), &[("1_a.up.sql", "CREATE TABLE a ();\n")]);
    p.expect(&["up"], 0);
    db.connect()
        .batch_execute(
            "COMMENT ON TABLE public.migrations_history IS 'migrations history, format 99'",
        )
        .unwrap();
    p.write("2_b.up.sql", "CREATE TABLE b ();\n");
    for args in [&["up"][..], &["status"]] {
        let run = p.expect(args, 1);
        assert_eq!(
            run.stderr,
            "error: the history table \"public\".\"migrations_history\" has format 99, newer than \
             this release of migrations understands (4); upgrade the migrations CLI, or the \
             service's migrations-core\n"
        );
    }
    assert!(!table_exists(&db, "b"));

    let db = test_db();
    db.connect()
        .batch_execute("CREATE TABLE public.migrations_history (id int, note text)")
        .unwrap();
    let p = project(db.url(), &[("1_a.up.sql", "CREATE TABLE a ();\n")]);
    let run = p.expect(&["up"], 1);
    assert_eq!(
        run.stderr,
        "error: \"public\".\"migrations_history\" exists but is not a migrations history table; \
         choose another --schema or --table\n"
    );
    assert!(!table_exists(&db, "a"));
    // The advice works.
    p.expect(&["up", "--table", "schema_history"], 0);
    assert!(table_exists(&db, "a"));
}

#[test]
fn single_transaction_with_a_no_transaction_migration() {
    let db = test_db();
    let p = project(db.url(), &[
            ("1_a.up.sql", "CREATE TABLE a (x int);\n"),
            (
                "2_a_x.up.sql",
                "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_x ON a (x);\n",
            ),
        ],
    );
    let run = p.expect(&["up", "--single-transaction"], 2);
    assert_eq!(
        run.stderr,
        "error: 2 a_x runs outside a transaction, so it cannot be part of a single transaction; \
         run without --single-transaction, or apply up to the version before it\n"
    );
    assert!(!table_exists(&db, "a"));
    p.expect(&["up", "--single-transaction", "--to", "1"], 0);
    p.expect(&["up"], 0);
    assert!(table_exists(&db, "a_x"));
}

/// A migration applied in a transaction, then given the no-transaction directive (and the
/// other way round): `up` refuses with exit 3 and says what changed, `verify` against the lock
/// file says how to undo it in the right direction, and `repair --accept-checksum` accepts it.
#[test]
fn transaction_mode_flipped_after_apply() {
    let db = test_db();
    let p = project(
        db.url(),
        &[
            ("1_t.up.sql", "CREATE TABLE t (x int);\n"),
            ("2_t_x.up.sql", "CREATE INDEX IF NOT EXISTS t_x ON t (x);\n"),
        ],
    );
    p.expect(&["up"], 0);
    p.expect(&["lock"], 0);
    let applied = checksum(&db, 2);

    // Added: the file now runs outside a transaction.
    p.write(
        "2_t_x.up.sql",
        "-- migrations:no-transaction\nCREATE INDEX IF NOT EXISTS t_x ON t (x);\n",
    );
    let run = p.expect(&["up"], 3);
    let edited = p.expect(&["status"], 0);
    assert!(
        edited.stdout.contains("edited       2 t_x"),
        "{}",
        edited.stdout
    );
    let now = file_checksum(&p, "2_t_x.up.sql");
    assert_eq!(
        run.stderr,
        format!(
            "error: the database has drifted from the migrations; nothing was run\n\
             edited: applied migrations whose file changed since (restore the file, or accept \
             the new checksum with `migrations repair <version> --accept-checksum`)\n  \
             2 t_x: applied checksum {applied}, file checksum {now}\n"
        )
    );
    let verify = p.expect(&["verify"], 3);
    assert!(
        verify.stdout.contains(
            "locked migration 2 (t_x) now runs outside a transaction (notx), locked as running \
             in a transaction (tx) (migrations/migrations.lock:3): remove the \
             `-- migrations:no-transaction` directive (or diesel's `run_in_transaction = false` \
             in metadata.toml) that was added; if the change is deliberate, accept it with \
             `migrations lock --rewrite 2`"
        ),
        "{}",
        verify.stdout
    );
    // Undone as advised: the database agrees again.
    p.write("2_t_x.up.sql", "CREATE INDEX IF NOT EXISTS t_x ON t (x);\n");
    p.expect(&["up"], 0);
    p.expect(&["verify"], 0);

    // Accepted instead: recorded, and `up` goes on.
    p.write(
        "2_t_x.up.sql",
        "-- migrations:no-transaction\nCREATE INDEX IF NOT EXISTS t_x ON t (x);\n",
    );
    let run = p.expect(&["repair", "2", "--accept-checksum"], 0);
    assert_eq!(
        run.stdout,
        format!("2 t_x: accepted checksum {now} (was {applied})\n")
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT no_transaction::text FROM public.migrations_history WHERE version = 2"
        ),
        Some("true".into())
    );
    p.expect(&["up"], 0);
}

/// The same flips through diesel's `metadata.toml`, which leave the checksum alone: the mode
/// alone is the drift, and the advice says which way to undo it.
#[test]
fn transaction_mode_flipped_in_metadata_toml() {
    let db = test_db();
    let p = project(
        db.url(),
        &[
            (
                "2024-01-01-000000_t/up.sql",
                "CREATE TABLE t (x int, y int);\n",
            ),
            (
                "2024-01-02-000000_t_x/up.sql",
                "CREATE INDEX IF NOT EXISTS t_x ON t (x);\n",
            ),
            (
                "2024-01-03-000000_t_y/up.sql",
                "CREATE INDEX IF NOT EXISTS t_y ON t (y);\n",
            ),
            (
                "2024-01-03-000000_t_y/metadata.toml",
                "run_in_transaction = false\n",
            ),
        ],
    );
    p.expect(&["up"], 0);
    p.expect(&["lock"], 0);
    let header = "error: the database has drifted from the migrations; nothing was run\n\
                  edited: applied migrations whose file changed since (restore the file, or \
                  accept the new checksum with `migrations repair <version> --accept-checksum`)";

    // Added to a migration applied in a transaction.
    p.write(
        "2024-01-02-000000_t_x/metadata.toml",
        "run_in_transaction = false\n",
    );
    let run = p.expect(&["up"], 3);
    assert_eq!(
        run.stderr,
        format!(
            "{header}\n  2024-01-02-000000 t_x: applied in a transaction, the file now runs \
             outside a transaction: remove the `run_in_transaction = false` added to its metadata.toml\n"
        )
    );
    let verify = p.expect(&["verify"], 3);
    assert!(
        verify.stdout.contains(
            "locked migration 2024-01-02-000000 (t_x) now runs outside a transaction (notx), \
             locked as running in a transaction (tx) (migrations/migrations.lock:3): remove the \
             `-- migrations:no-transaction` directive (or diesel's `run_in_transaction = false` \
             in metadata.toml) that was added"
        ),
        "{}",
        verify.stdout
    );
    p.remove("2024-01-02-000000_t_x/metadata.toml");
    p.expect(&["up"], 0);
    p.expect(&["verify"], 0);

    // Removed from a migration applied outside a transaction.
    p.remove("2024-01-03-000000_t_y/metadata.toml");
    let run = p.expect(&["up"], 3);
    assert_eq!(
        run.stderr,
        format!(
            "{header}\n  2024-01-03-000000 t_y: applied outside a transaction, the file now runs \
             in a transaction: put back the `run_in_transaction = false` removed from its \
             metadata.toml\n"
        )
    );
    let verify = p.expect(&["verify"], 3);
    assert!(
        verify.stdout.contains(
            "locked migration 2024-01-03-000000 (t_y) now runs in a transaction (tx), locked as \
             running outside a transaction (notx) (migrations/migrations.lock:4): put back the \
             `-- migrations:no-transaction` directive (or diesel's `run_in_transaction = false` \
             in metadata.toml) that was removed"
        ),
        "{}",
        verify.stdout
    );
    p.write(
        "2024-01-03-000000_t_y/metadata.toml",
        "run_in_transaction = false\n",
    );
    p.expect(&["up"], 0);
    p.expect(&["verify"], 0);

    // Accepted instead: the repair says what it accepted (the checksum did not change).
    p.remove("2024-01-03-000000_t_y/metadata.toml");
    let run = p.expect(&["repair", "2024-01-03-000000", "--accept-checksum"], 0);
    assert_eq!(
        run.stdout,
        "2024-01-03-000000 t_y: accepted running in a transaction (was outside a transaction)\n"
    );
    p.expect(&["up"], 0);
    assert_eq!(
        scalar(
            &db,
            "SELECT no_transaction::text FROM public.migrations_history \
             WHERE version = 20240103000000"
        ),
        Some("false".into())
    );
}

fn file_checksum(p: &Project, file: &str) -> String {
    let text = fs::read_to_string(p.path().join("migrations").join(file)).unwrap();
    migrations_format::Checksum::of_file_text(&text).to_hex()
}

#[test]
fn future_rows_are_a_warning() {
    let db = test_db();
    let p = project(
        db.url(),
        &[
            ("1_a.up.sql", "CREATE TABLE a ();\n"),
            ("2_b.up.sql", "CREATE TABLE b ();\n"),
            ("3_c.up.sql", "CREATE TABLE c ();\n"),
        ],
    );
    p.expect(&["up"], 0);
    p.remove("3_c.up.sql");
    let run = p.expect(&["up"], 0);
    assert_eq!(
        run.stderr,
        "warning: future: applied migrations newer than any of the migrations being run (an \
         older release after a rollback?)\n  3 c\n"
    );
    assert_eq!(run.stdout, "nothing to do: the database is up to date\n");
    let status = p.expect(&["status"], 0);
    assert!(
        status.stdout.contains("future       3 c"),
        "{}",
        status.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Behind a transaction pooler.

fn assert_pooler_detected(run: &Run) {
    assert_eq!(run.code, 1, "{}", run.stderr);
    let message = run
        .stderr
        .strip_prefix(
            "error: transaction pooler detected: the server session changed during the run \
             (backend pid ",
        )
        .unwrap_or_else(|| panic!("{}", run.stderr));
    let (pids, rest) = message.split_once(')').unwrap();
    let (before, after) = pids.split_once(" then ").unwrap();
    assert_ne!(before, after);
    assert!(
        before.parse::<u32>().is_ok() && after.parse::<u32>().is_ok(),
        "{pids}"
    );
    assert_eq!(
        rest,
        ", so the migrations lock is not held; use a direct or session-pooled connection (the \
         pooler's server session may keep the lock until the pool reconnects)\n"
    );
}

#[test]
fn pooler_detected_on_up_and_on_maintenance_commands() {
    let db = TestDb::on_own_server();
    let files = [
        ("1_a.up.sql", "CREATE TABLE a ();\n"),
        ("1_a.down.sql", "DROP TABLE a;\n"),
        (
            "2_b.up.sql",
            "-- migrations:no-transaction\nCREATE TABLE b ();\nSELECT 1 / 0;\n",
        ),
    ];
    let direct = project(db.url(), &files);
    let bouncer = PgBouncer::start(&db);
    let pooled = project(&bouncer.url(), &files);

    // Nothing applied yet: up and baseline are refused before the history exists.
    assert_pooler_detected(&pooled.run(&["up"]));
    assert_pooler_detected(&pooled.run(&["baseline", "1"]));
    assert!(!table_exists(&db, "a"));
    assert!(!table_exists(&db, "public.migrations_history"));

    // 1 applied, 2 failed: down and repair are refused before they change anything.
    direct.expect(&["up"], 1);
    let rows = "SELECT string_agg(version || ' ' || state, ',' ORDER BY version) \
                FROM public.migrations_history";
    assert_eq!(scalar(&db, rows), Some("1 applied,2 failed".into()));
    assert_pooler_detected(&pooled.run(&["repair"]));
    assert_pooler_detected(&pooled.run(&["down"]));
    assert_eq!(scalar(&db, rows), Some("1 applied,2 failed".into()));
    assert!(table_exists(&db, "a"));

    // Directly, once the pooler (and any lock left in its sessions) is gone, both work.
    drop(bouncer);
    let run = direct.expect(&["repair"], 0);
    assert_eq!(run.stdout, "2 b: cleared failed state\n");
    direct.expect(&["down"], 0);
    assert!(!table_exists(&db, "a"));
}
