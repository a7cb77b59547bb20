//! The offline script (`migrations sql`) run by a real `psql` against a real server: its lock
//! guard stops psql with a non-zero exit before anything is created when another runner holds
//! the lock, without the caller passing `-v ON_ERROR_STOP=1`; and an inverted range is refused.

use std::path::Path;
use std::process::Command;

use crate::common::{column, scalar, table_exists, Dir};
use migrations_core::plan::Direction;
use migrations_core::{offline_script, Migrations, Names, OfflineError, OfflineRange};
use migrations_tests::{test_db, TestDb};

fn three() -> Dir {
    Dir::new(&[
        ("1_users.up.sql", "CREATE TABLE users (id int PRIMARY KEY);\n"),
        ("1_users.down.sql", "DROP TABLE users;\n"),
        (
            "2_posts.up.sql",
            "CREATE TABLE posts (id int, user_id int REFERENCES users);\n",
        ),
        ("2_posts.down.sql", "DROP TABLE posts;\n"),
        (
            "3_index.up.sql",
            "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS posts_user ON posts (user_id);\n",
        ),
        (
            "3_index.down.sql",
            "-- migrations:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS posts_user;\n",
        ),
    ])
}

fn script(m: &Migrations, from: Option<i64>, to: Option<i64>, direction: Direction) -> String {
    offline_script(
        m,
        &Names::default(),
        OfflineRange {
            from,
            to,
            direction,
        },
    )
    .unwrap()
}

struct Psql {
    code: i32,
    stderr: String,
}

/// `psql -X -f <file>` as a DBA runs it: no `-v ON_ERROR_STOP=1`, no psqlrc. `extra` adds
/// psql variables (only `VERBOSITY`, to read the SQLSTATE).
fn psql(db: &TestDb, file: &Path, extra: &[&str]) -> Psql {
    let out = Command::new("psql")
        .arg("-X")
        .args(extra)
        .arg("-f")
        .arg(file)
        .arg(db.url())
        .output()
        .expect("psql runs");
    Psql {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Sessions holding the migrations lock in this test's database.
fn held_locks(db: &TestDb) -> i64 {
    db.advisory_lock_holders(Names::default().lock_key())
}

/// Another runner: a separate session holding the migrations lock until dropped, named as a
/// deploy names itself; with how the script's refusal names it.
fn hold_lock(db: &TestDb) -> (postgres::Client, String) {
    let mut holder = db.connect();
    holder
        .batch_execute("SET application_name = 'deploy-42'")
        .unwrap();
    let key = Names::default().lock_key();
    let got: bool = holder
        .query_one(&format!("SELECT pg_try_advisory_lock({key})"), &[])
        .unwrap()
        .get(0);
    assert!(got);
    let row = holder
        .query_one(
            "SELECT pg_backend_pid(), to_char(backend_start AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap();
    let (pid, since): (i32, String) = (row.get(0), row.get(1));
    let named = format!("pid {pid}, application_name \"deploy-42\", session started {since}");
    (holder, named)
}

/// What psql prints when the guard stops it (the file's line number is the `DO` block's), the
/// other runner named as `hold_lock` gives it.
fn refusal(file: &Path, holder: &str) -> String {
    let key = Names::default().lock_key();
    format!(
        "psql:{}:18: ERROR:  another migration runner ({holder}) holds the migrations lock \
         (advisory lock {key}, for \"public\".\"migrations_history\"); this script changed \
         nothing\n\
         HINT:  rerun the script when the other runner is done; find it with: SELECT pid FROM \
         pg_locks WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = \
         {key}\n\
         CONTEXT:  PL/pgSQL function inline_code_block line 7 at RAISE\n",
        file.display()
    )
}

#[test]
fn up_script_stops_before_creating_anything_when_the_lock_is_held() {
    let db = test_db();
    let dir = three();
    let m = dir.load();
    let file = dir.path().join("up.sql.out");
    std::fs::write(&file, script(&m, None, None, Direction::Up)).unwrap();

    let (holder, named) = hold_lock(&db);
    // The check below can fail: the query sees the other session's lock.
    assert_eq!(held_locks(&db), 1);
    let run = psql(&db, &file, &[]);
    // psql's exit code for an error in a script under ON_ERROR_STOP, which the script set.
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stderr, refusal(&file, &named));
    let verbose = psql(&db, &file, &["-v", "VERBOSITY=verbose"]);
    assert_eq!(verbose.code, 3);
    assert!(
        verbose
            .stderr
            .contains("ERROR:  55P03: another migration runner"),
        "{}",
        verbose.stderr
    );
    // Nothing was created: no history tables, no migration.
    assert!(!table_exists(&db, "public.migrations_history"));
    assert!(!table_exists(&db, "public.migrations_history_audit"));
    assert!(!table_exists(&db, "users"));
    assert_eq!(held_locks(&db), 1, "only the other runner's lock");

    drop(holder);
    assert_eq!(held_locks(&db), 0);
    let run = psql(&db, &file, &["-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(table_exists(&db, "posts_user"));
    assert_eq!(
        column(
            &db,
            "SELECT version || ' ' || state FROM public.migrations_history ORDER BY version"
        ),
        ["1 applied", "2 applied", "3 applied"].map(|s| Some(s.to_owned()))
    );
    // The script released its lock (psql's session is gone anyway; this also holds for a
    // session that lives on, as the lock is released explicitly at the end).
    assert_eq!(held_locks(&db), 0);
}

#[test]
fn down_script_stops_before_reverting_anything_when_the_lock_is_held() {
    let db = test_db();
    let dir = three();
    let m = dir.load();
    let up = dir.path().join("up.sql.out");
    std::fs::write(&up, script(&m, None, None, Direction::Up)).unwrap();
    assert_eq!(psql(&db, &up, &["-q"]).code, 0);
    let audit_before = scalar(&db, "SELECT count(*) FROM public.migrations_history_audit");

    let down = dir.path().join("down.sql.out");
    std::fs::write(&down, script(&m, None, Some(1), Direction::Down)).unwrap();
    let (holder, named) = hold_lock(&db);
    assert_eq!(held_locks(&db), 1);
    let run = psql(&db, &down, &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stderr, refusal(&down, &named));
    // Nothing reverted, nothing recorded.
    assert!(table_exists(&db, "posts_user"));
    assert!(table_exists(&db, "posts"));
    assert_eq!(
        column(
            &db,
            "SELECT version::text FROM public.migrations_history ORDER BY 1"
        ),
        ["1", "2", "3"].map(|s| Some(s.to_owned()))
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM public.migrations_history_audit"),
        audit_before
    );

    drop(holder);
    let run = psql(&db, &down, &["-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!table_exists(&db, "posts"));
    assert!(table_exists(&db, "users"));
    assert_eq!(
        column(&db, "SELECT version::text FROM public.migrations_history"),
        vec![Some("1".to_owned())]
    );
    assert_eq!(held_locks(&db), 0);
}

/// A session that runs the script and stays connected does not keep the lock: the script
/// releases it at its end (psql's `-f` followed by more input on the same session).
#[test]
fn the_lock_is_released_at_the_end_of_the_script() {
    let db = test_db();
    let dir = three();
    let m = dir.load();
    let file = dir.path().join("up.sql.out");
    std::fs::write(&file, script(&m, None, Some(1), Direction::Up)).unwrap();
    let check = dir.path().join("check.sql");
    let key = Names::default().lock_key();
    std::fs::write(
        &check,
        format!(
            "\\i {}\nSELECT 'held=' || count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = {key};\n",
            file.display()
        ),
    )
    .unwrap();
    let out = Command::new("psql")
        .args(["-X", "-q", "-t", "-A", "-f"])
        .arg(&check)
        .arg(db.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("held=0"), "{stdout}");
    assert!(table_exists(&db, "users"));
}

#[test]
fn an_inverted_range_is_refused() {
    let dir = three();
    let m = dir.load();
    let range = |from, to, direction| {
        offline_script(
            &m,
            &Names::default(),
            OfflineRange {
                from: Some(from),
                to: Some(to),
                direction,
            },
        )
    };
    let up = range(2, 1, Direction::Up).unwrap_err();
    assert_eq!(
        up,
        OfflineError::EmptyRange {
            from: 2,
            to: 1,
            direction: Direction::Up
        }
    );
    assert_eq!(
        up.to_string(),
        "from 2 to 1 selects no migration: an up script applies the migrations after `from` up \
         to and including `to`, so `from` must be below `to`"
    );
    assert!(range(2, 2, Direction::Up).is_err());
    let down = range(1, 2, Direction::Down).unwrap_err();
    assert_eq!(
        down.to_string(),
        "from 1 to 2 selects no migration: a down script reverts the migrations from `from` down \
         to (not including) `to`, so `from` must be above `to`"
    );
    assert!(range(2, 2, Direction::Down).is_err());
    // The valid directions of the same bounds still work.
    assert!(range(1, 2, Direction::Up)
        .unwrap()
        .contains("CREATE TABLE posts"));
    assert!(range(2, 1, Direction::Down)
        .unwrap()
        .contains("DROP TABLE posts"));
}

/// A transactional down holding `COMMIT` (or `CREATE INDEX CONCURRENTLY`) is refused, as the
/// runner refuses it: written between the script's `BEGIN` and `COMMIT`, psql would commit
/// half of the down before its history row.
#[test]
fn a_down_the_runner_refuses_is_not_written() {
    let dir = Dir::new(&[
        ("1_t.up.sql", "CREATE TABLE t (x text);\n"),
        ("1_t.down.sql", "DELETE FROM t;\nCOMMIT;\nDROP TABLE t;\n"),
        ("2_i.up.sql", "CREATE TABLE i (x int);\n"),
        (
            "2_i.down.sql",
            "DROP TABLE j;\nDROP INDEX CONCURRENTLY IF EXISTS i_x;\n",
        ),
    ]);
    let m = dir.load();
    let down = |from| {
        offline_script(
            &m,
            &Names::default(),
            OfflineRange {
                from: Some(from),
                to: None,
                direction: Direction::Down,
            },
        )
    };
    assert_eq!(
        down(1).unwrap_err().to_string(),
        "cannot write down 1 t: line 2: `COMMIT` would break the transaction the runner wraps \
         this file in (the file and its history record commit together); drop the statement, or \
         add `-- migrations:no-transaction` as the first line of the file"
    );
    assert_eq!(
        down(2).unwrap_err().to_string(),
        "cannot write down 2 i: line 2: DROP INDEX CONCURRENTLY cannot run inside a transaction \
         block; add `-- migrations:no-transaction` as the first line of the file"
    );
    // The up script has nothing to refuse.
    script(&m, None, None, Direction::Up);
}

/// Every history column a run decides, one row per version as text; `applied_at` and
/// `execution_ms` (the clock) are left out, checked apart.
fn history_rows(db: &TestDb) -> Vec<Option<String>> {
    column(
        db,
        "SELECT (version, version_digits, name, checksum, no_transaction, state, applied_by, \
         statements_done, statements_total, error, invalid_indexes)::text \
         FROM public.migrations_history ORDER BY version",
    )
}

/// The audit rows, in order, without the clock and without `detail` (read apart).
fn audit_rows(db: &TestDb) -> Vec<Option<String>> {
    column(
        db,
        "SELECT (by_user, event, version, name, checksum)::text \
         FROM public.migrations_history_audit ORDER BY id",
    )
}

fn run_psql(db: &TestDb, dir: &Dir, name: &str, text: String) {
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let run = psql(db, &file, &["-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Architecture invariant: the offline script's bookkeeping equals the runner's. The same
/// migrations (transactional and no-transaction, up and down) applied and reverted by the
/// runner in one database and by the offline script through real psql in another leave the
/// same history rows and the same audit trail; only the clock and the audit's detail
/// (`offline script`) differ.
#[test]
fn the_offline_scripts_bookkeeping_equals_the_runners() {
    let dir = Dir::new(&[
        (
            "1_users.up.sql",
            "CREATE TABLE users (id int PRIMARY KEY, email text);\n",
        ),
        ("1_users.down.sql", "DROP TABLE users;\n"),
        (
            "2_index.up.sql",
            "-- migrations:no-transaction\n\
             CREATE INDEX CONCURRENTLY users_email ON users (email);\n\
             CREATE INDEX CONCURRENTLY users_lower_email ON users (lower(email));\n",
        ),
        (
            "2_index.down.sql",
            "-- migrations:no-transaction\n\
             DROP INDEX CONCURRENTLY users_lower_email;\n\
             DROP INDEX CONCURRENTLY users_email;\n",
        ),
        (
            "3_seed.up.sql",
            "INSERT INTO users VALUES (1, 'a');\nINSERT INTO users VALUES (2, 'b');\n",
        ),
        ("3_seed.down.sql", "DELETE FROM users;\n"),
    ]);
    let m = dir.load();
    let runner = test_db();
    let offline = test_db();

    migrations_core::Migrator::new(&m)
        .run(&mut runner.connect())
        .unwrap();
    run_psql(
        &offline,
        &dir,
        "up.sql.out",
        script(&m, None, None, Direction::Up),
    );
    let applied = history_rows(&runner);
    assert_eq!(applied.len(), 3);
    assert_eq!(history_rows(&offline), applied);
    // The no-transaction row counts its statements, as the runner's does.
    assert!(
        applied[1].as_deref().unwrap().contains(",t,applied,"),
        "{applied:?}"
    );
    assert!(
        applied[1].as_deref().unwrap().ends_with(",2,2,,{})"),
        "{applied:?}"
    );
    assert_eq!(audit_rows(&offline), audit_rows(&runner));
    // Both measure every duration (the offline script on the server).
    let timed = "SELECT count(*) FILTER (WHERE execution_ms >= 0)::text \
                 FROM public.migrations_history";
    assert_eq!(scalar(&runner, timed).as_deref(), Some("3"));
    assert_eq!(scalar(&offline, timed).as_deref(), Some("3"));
    let details = "SELECT coalesce(detail, 'NULL') FROM public.migrations_history_audit \
                   ORDER BY id";
    assert_eq!(column(&runner, details), vec![Some("NULL".to_owned()); 3]);
    assert_eq!(
        column(&offline, details),
        vec![Some("offline script".to_owned()); 3]
    );

    // Down to 1: a transactional down (3), then a no-transaction one (2).
    migrations_core::Migrator::new(&m)
        .down(&mut runner.connect(), migrations_core::DownTarget::To(1))
        .unwrap();
    run_psql(
        &offline,
        &dir,
        "down.sql.out",
        script(&m, None, Some(1), Direction::Down),
    );
    let left = history_rows(&runner);
    assert_eq!(left.len(), 1);
    assert_eq!(history_rows(&offline), left);
    let audit = audit_rows(&runner);
    assert_eq!(audit.len(), 5);
    assert_eq!(audit_rows(&offline), audit);
    assert!(!table_exists(&offline, "users_email"));
}

/// A no-transaction down written offline marks its row `running`, `down in progress`, first
/// (as the runner does), and counts its statements: a script that stops part-way leaves a row
/// the runner then reports as a failed down, naming the statement, not an `applied` row whose
/// indexes are gone.
#[test]
fn an_offline_no_transaction_down_that_stops_leaves_the_runners_down_in_progress_row() {
    let dir = Dir::new(&[
        ("1_t.up.sql", "CREATE TABLE t (a int, b int);\n"),
        ("1_t.down.sql", "DROP TABLE t;\n"),
        (
            "2_ix.up.sql",
            "-- migrations:no-transaction\n\
             CREATE INDEX CONCURRENTLY t_a ON t (a);\n\
             CREATE INDEX CONCURRENTLY t_b ON t (b);\n",
        ),
        (
            "2_ix.down.sql",
            "-- migrations:no-transaction\n\
             DROP INDEX CONCURRENTLY t_a;\n\
             DROP INDEX CONCURRENTLY t_missing;\n",
        ),
    ]);
    let m = dir.load();
    let db = test_db();
    run_psql(
        &db,
        &dir,
        "up.sql.out",
        script(&m, None, None, Direction::Up),
    );
    let file = dir.path().join("down.sql.out");
    std::fs::write(&file, script(&m, None, Some(1), Direction::Down)).unwrap();
    let run = psql(&db, &file, &["-q"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("index \"t_missing\" does not exist"),
        "{}",
        run.stderr
    );
    let row_2 = || {
        scalar(
            &db,
            "SELECT (state, statements_done, statements_total, error)::text \
             FROM public.migrations_history WHERE version = 2",
        )
    };
    assert_eq!(
        row_2().as_deref(),
        Some("(running,1,2,\"down in progress\")")
    );

    // The runner takes it for a down that died at its second statement.
    let err = migrations_core::Migrator::new(&m)
        .run(&mut db.connect())
        .unwrap_err();
    assert!(err.is_drift(), "{err}");
    assert_eq!(
        row_2().as_deref(),
        Some(
            "(failed,1,2,\"the runner stopped (killed, crashed or lost its connection) during \
             statement 2 of 2 of the down script\")"
        )
    );
}

/// A file's own timeout directives hold in the offline script as in the runner: set for that
/// file alone (a transactional one's with `SET LOCAL`, a no-transaction one's set and then
/// put back to the session's values), and the files around it keep the DBA's session values.
#[test]
fn the_files_timeout_directives_hold_in_the_offline_script_for_that_file_only() {
    let seen = |table: &str| {
        format!(
            "CREATE TABLE {table} AS SELECT current_setting('lock_timeout') AS lock, \
             current_setting('statement_timeout') AS statement;\n"
        )
    };
    let dir = Dir::new(&[
        ("1_before.up.sql", &seen("before")),
        (
            "2_own.up.sql",
            &format!(
                "-- migrations:lock-timeout=1500ms\n-- migrations:statement-timeout=2min\n{}",
                seen("own")
            ),
        ),
        (
            "3_own_no_tx.up.sql",
            &format!(
                "-- migrations:no-transaction\n-- migrations:lock-timeout=7s\n{}",
                seen("own_no_tx")
            ),
        ),
        ("4_after.up.sql", &seen("after")),
    ]);
    let m = dir.load();
    let db = test_db();
    let file = dir.path().join("up.sql.out");
    std::fs::write(&file, script(&m, None, None, Direction::Up)).unwrap();
    // The DBA's own session values, as PGOPTIONS sets them.
    let out = Command::new("psql")
        .args(["-X", "-q", "-f"])
        .arg(&file)
        .arg(db.url())
        .env("PGOPTIONS", "-c lock_timeout=3s -c statement_timeout=1h")
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |table: &str| scalar(&db, &format!("SELECT (lock, statement)::text FROM {table}"));
    assert_eq!(read("before").as_deref(), Some("(3s,1h)"));
    assert_eq!(read("own").as_deref(), Some("(1500ms,2min)"));
    assert_eq!(read("own_no_tx").as_deref(), Some("(7s,1h)"));
    assert_eq!(read("after").as_deref(), Some("(3s,1h)"));
}

/// A script that takes a role which cannot write the history still has its bookkeeping
/// written by the offline script (as psql's own session), transactional or not, and its
/// statements after the `SET ROLE` run as that role.
#[test]
fn a_set_role_in_a_file_does_not_stop_the_offline_scripts_bookkeeping() {
    let db = test_db();
    let unique: Vec<&str> = db.name().split('_').take(4).collect();
    let role = format!("{}_offline", unique.join("_"));
    db.connect()
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\"; GRANT CREATE ON SCHEMA public TO \"{role}\""
        ))
        .unwrap();
    let dir = Dir::new(&[
        (
            "1_in.up.sql",
            &format!("SET ROLE \"{role}\";\nCREATE TABLE made_in ();\n"),
        ),
        (
            "2_out.up.sql",
            &format!(
                "-- migrations:no-transaction\nSET ROLE \"{role}\";\n\
                 CREATE TABLE made_out ();\nCREATE TABLE made_out_too ();\n"
            ),
        ),
        ("3_after.up.sql", "CREATE TABLE made_after ();\n"),
    ]);
    let m = dir.load();
    run_psql(
        &db,
        &dir,
        "up.sql.out",
        script(&m, None, None, Direction::Up),
    );
    assert_eq!(
        column(
            &db,
            "SELECT state || ' ' || statements_done::text FROM migrations_history \
             WHERE no_transaction ORDER BY version"
        ),
        [Some("applied 3".to_owned())]
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*)::text FROM migrations_history WHERE state = 'applied'"
        )
        .as_deref(),
        Some("3")
    );
    let runner = scalar(&db, "SELECT session_user::text").unwrap();
    assert_eq!(
        column(
            &db,
            "SELECT tablename || ' ' || tableowner FROM pg_tables \
             WHERE tablename LIKE 'made_%' ORDER BY 1"
        ),
        [
            Some(format!("made_after {runner}")),
            Some(format!("made_in {role}")),
            Some(format!("made_out {role}")),
            Some(format!("made_out_too {role}")),
        ]
    );
    let _ = db.connect().batch_execute(&format!(
        "DROP OWNED BY \"{role}\" CASCADE; DROP ROLE \"{role}\""
    ));
}
