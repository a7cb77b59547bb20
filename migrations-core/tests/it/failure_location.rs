//! Every failure names where: the migration, its file, the statement and its line, and the
//! server's error with its SQLSTATE, for transactional migrations too (one round trip, rolled
//! back whole), in grouped mode, and for a no-transaction file whose own `BEGIN ... COMMIT`
//! block fails or is never closed (rolled back, recorded, and the caller's client left idle and
//! usable). Each test goes through the sync and the async driver, on one borrowed client.
#![allow(clippy::result_large_err)] // the core's error is returned once per run

use crate::common;

use std::time::Duration;

use crate::common::{scalar, table_exists, Dir, Driver};
use migrations_core::{Error, Location, Migrations, Migrator, Operation, Report};
use migrations_tests::{test_db, TestDb};

/// One client, borrowed by every call of a test, as a service borrows its own.
enum Session {
    Sync(postgres::Client),
    Async(tokio::runtime::Runtime, tokio_postgres::Client),
}

impl Session {
    fn open(driver: Driver, db: &TestDb) -> Session {
        match driver {
            Driver::Sync => Session::Sync(db.connect()),
            Driver::Async => {
                let runtime = common::runtime();
                let client = runtime.block_on(common::connect_async(db.url()));
                Session::Async(runtime, client)
            }
        }
    }

    fn execute(
        &mut self,
        migrations: &Migrations,
        operation: &Operation,
        grouped: bool,
    ) -> Result<Report, Error> {
        let mut migrator = Migrator::new(migrations).single_transaction(grouped);
        match self {
            Session::Sync(client) => migrator.execute(client, operation),
            Session::Async(runtime, client) => {
                runtime.block_on(migrator.execute_async(client, operation))
            }
        }
    }

    fn up(&mut self, migrations: &Migrations) -> Result<Report, Error> {
        self.execute(migrations, &Operation::Up { to: None }, false)
    }

    fn repair(&mut self, migrations: &Migrations, version: i64) -> Result<Vec<String>, Error> {
        let mut migrator = Migrator::new(migrations);
        match self {
            Session::Sync(client) => migrator.repair(client, Some(version), false),
            Session::Async(runtime, client) => {
                runtime.block_on(migrator.repair_async(client, Some(version), false))
            }
        }
    }

    /// The first column of each row, on this session.
    fn column(&mut self, sql: &str) -> Vec<Option<String>> {
        let messages = match self {
            Session::Sync(client) => client.simple_query(sql).unwrap(),
            Session::Async(runtime, client) => runtime.block_on(client.simple_query(sql)).unwrap(),
        };
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
                _ => None,
            })
            .collect()
    }

    fn scalar(&mut self, sql: &str) -> Option<String> {
        self.column(sql).into_iter().next().flatten()
    }

    /// Advisory locks this session holds: the migrations lock and the progress markers alike.
    fn advisory_locks(&mut self) -> String {
        self.scalar(HELD_HERE).unwrap()
    }

    /// The session is idle, not inside a transaction block left open by the run.
    fn in_transaction_block(&mut self) -> bool {
        self.scalar("SELECT statement_timestamp() <> transaction_timestamp()")
            .as_deref()
            == Some("t")
    }
}

const HELD_HERE: &str =
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()";

fn file(dir: &Dir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

fn history(db: &TestDb, version: i64) -> Option<String> {
    scalar(
        db,
        &format!(
            "SELECT state || ' ' || coalesce(statements_done::text, '-') || '/' || \
             coalesce(statements_total::text, '-') || ' ' || coalesce(error, '') \
             FROM public.migrations_history WHERE version = {version}"
        ),
    )
}

fn history_rows(db: &TestDb) -> String {
    scalar(db, "SELECT count(*) FROM public.migrations_history").unwrap()
}

/// Proves that [`HELD_HERE`] sees both kinds of lock the run takes, so a 0 means something.
fn held_locks_are_seen(session: &mut Session, migrations: &Migrations) {
    let key = Migrator::new(migrations).lock_key();
    session.column(&format!(
        "SELECT pg_advisory_lock({key}), pg_advisory_lock(7, 3)"
    ));
    assert_eq!(session.advisory_locks(), "2");
    session.column("SELECT pg_advisory_unlock_all()");
    assert_eq!(session.advisory_locks(), "0");
}

const FIVE: &str = "-- five statements; the third fails\n\
CREATE TABLE a (x int PRIMARY KEY);\n\
INSERT INTO a VALUES (1);\n\
\n\
INSERT INTO a\n  VALUES (1);\n\
CREATE TABLE b ();\n\
CREATE TABLE c ();\n";

behaviour!(
    runtime_error_names_statement_line_and_file,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[("1_five.up.sql", FIVE)]);
        let m = dir.load();
        let mut session = Session::open(driver, &db);
        let err = session.up(&m).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "up 1 five failed at statement 3 of 5 ({}:5): duplicate key value violates unique \
             constraint \"a_pkey\" (SQLSTATE 23505); detail: Key (x)=(1) already exists.",
                file(&dir, "1_five.up.sql")
            )
        );
        match &err {
            Error::Migration {
                version,
                file: path,
                statement,
                source,
                ..
            } => {
                assert_eq!(*version, 1);
                assert_eq!(*path, file(&dir, "1_five.up.sql"));
                assert_eq!(
                    *statement,
                    Some(Location {
                        number: 3,
                        total: 5,
                        line: 5
                    })
                );
                assert_eq!(source.code.as_deref(), Some("23505"));
            }
            other => panic!("{other:?}"),
        }
        // Rolled back whole, nothing recorded, no marker or lock left, the session idle.
        assert!(!table_exists(&db, "a"));
        assert_eq!(history_rows(&db), "0");
        assert_eq!(session.advisory_locks(), "0");
        assert!(!session.in_transaction_block());
        held_locks_are_seen(&mut session, &m);

        // The same client runs the fixed file.
        dir.write(
            "1_five.up.sql",
            &FIVE.replace("  VALUES (1)", "  VALUES (2)"),
        );
        let report = session.up(&dir.load()).unwrap();
        assert_eq!(report.ran.len(), 1);
        assert_eq!(session.advisory_locks(), "0");
        assert!(table_exists(&db, "c"));
    }
);

behaviour!(runtime_error_in_the_first_statement, |driver: Driver| {
    let db = test_db();
    let dir = Dir::new(&[("1_first.up.sql", "SELECT 1 / 0;\nCREATE TABLE z ();\n")]);
    let mut session = Session::open(driver, &db);
    let err = session.up(&dir.load()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "up 1 first failed at statement 1 of 2 ({}:1): division by zero (SQLSTATE 22012)",
            file(&dir, "1_first.up.sql")
        )
    );
    assert_eq!(session.advisory_locks(), "0");
});

behaviour!(syntax_errors_keep_the_servers_position, |driver: Driver| {
    let db = test_db();
    let dir = Dir::new(&[(
        "1_syn.up.sql",
        "CREATE TABLE a ();\nCREATE TABLE b ();\n\nCREATE TABLE c (x int,, y int);\n",
    )]);
    let mut session = Session::open(driver, &db);
    let err = session.up(&dir.load()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "up 1 syn failed at statement 3 of 3 ({}:4): syntax error at or near \",\" \
             (SQLSTATE 42601)",
            file(&dir, "1_syn.up.sql")
        )
    );
    assert!(!table_exists(&db, "a"), "nothing ran");

    // An incomplete statement: the server stops at the `;` the runner adds after it, which
    // still counts as that statement.
    dir.write(
        "1_syn.up.sql",
        "CREATE TABLE a ();\nSELECT 1 +\n;\nCREATE TABLE c ();\n",
    );
    let err = session.up(&dir.load()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "up 1 syn failed at statement 2 of 3 ({}:2): syntax error at or near \";\" \
             (SQLSTATE 42601)",
            file(&dir, "1_syn.up.sql")
        )
    );
    assert_eq!(session.advisory_locks(), "0");
});

behaviour!(
    grouped_mode_names_the_migration_and_statement,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a ();"),
        (
            "2_b.up.sql",
            "CREATE TABLE b (x int PRIMARY KEY);\nINSERT INTO b VALUES (1);\nINSERT INTO b VALUES (1);\nCREATE TABLE b2 ();\n",
        ),
        ("3_c.up.sql", "CREATE TABLE c ();"),
    ]);
        let up = Operation::Up { to: None };
        let mut session = Session::open(driver, &db);
        let err = session.execute(&dir.load(), &up, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "up 2 b failed at statement 3 of 4 ({}:3): duplicate key value violates unique \
             constraint \"b_pkey\" (SQLSTATE 23505); detail: Key (x)=(1) already exists.; the \
             single transaction of 3 migrations was rolled back: none of them is applied",
                file(&dir, "2_b.up.sql")
            )
        );
        assert!(matches!(err, Error::Migration { version: 2, .. }));
        assert!(!table_exists(&db, "a"));
        assert_eq!(history_rows(&db), "0");
        assert_eq!(session.advisory_locks(), "0");

        // The first statement of a later migration: told apart from the end of the one before.
        dir.write("2_b.up.sql", "CREATE TABLE b ();");
        dir.write("3_c.up.sql", "SELECT 1 / 0;");
        let err = session.execute(&dir.load(), &up, true).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "up 3 c failed at statement 1 of 1 ({}:1): division by zero (SQLSTATE 22012); the \
             single transaction of 3 migrations was rolled back",
                file(&dir, "3_c.up.sql")
            )),
            "{err}"
        );

        // The first migration's first statement: no marker was taken yet.
        dir.write("1_a.up.sql", "SELECT 1 / 0;");
        dir.write("3_c.up.sql", "CREATE TABLE c ();");
        let err = session.execute(&dir.load(), &up, true).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "up 1 a failed at statement 1 of 1 ({}:1): division by zero",
                file(&dir, "1_a.up.sql")
            )),
            "{err}"
        );
        dir.write("1_a.up.sql", "CREATE TABLE a ();");
        let report = session.execute(&dir.load(), &up, true).unwrap();
        assert_eq!(report.ran.len(), 3);
        assert_eq!(session.advisory_locks(), "0");
    }
);

behaviour!(
    a_deferred_constraint_fails_after_the_last_statement,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[(
            "1_d.up.sql",
            "CREATE TABLE p (id int PRIMARY KEY);\n\
         CREATE TABLE c (p int REFERENCES p DEFERRABLE INITIALLY DEFERRED);\n\
         INSERT INTO c VALUES (1);\n",
        )]);
        let mut session = Session::open(driver, &db);
        let err = session.up(&dir.load()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "up 1 d failed ({}): insert or update on table \"c\" violates foreign key \
             constraint \"c_p_fkey\" (SQLSTATE 23503); detail: Key (p)=(1) is not present in \
             table \"p\".; it came after the file's last statement: a deferred constraint \
             checked at COMMIT, or the runner's bookkeeping",
                file(&dir, "1_d.up.sql")
            )
        );
        assert!(matches!(
            err,
            Error::Migration {
                statement: None,
                ..
            }
        ));
        assert!(!table_exists(&db, "p"));
        assert_eq!(session.advisory_locks(), "0");
    }
);

behaviour!(a_session_that_ends_names_no_statement, |driver: Driver| {
    // The markers end with the session: the error must not guess a statement.
    let db = test_db();
    let dir = Dir::new(&[(
        "1_slow.up.sql",
        "CREATE TABLE slow ();\nSELECT pg_sleep(30);\nCREATE TABLE after_slow ();\n",
    )]);
    let m = dir.load();
    let watcher = {
        let url = db.url().to_owned();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            for _ in 0..600 {
                let rows = c
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid() \
                         AND datname = current_database()",
                        &[],
                    )
                    .unwrap();
                if !rows.is_empty() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            panic!("the migration never reached pg_sleep");
        })
    };
    let err = driver.up(&db, &m).unwrap_err();
    watcher.join().unwrap();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "up 1 slow failed ({}): ",
            file(&dir, "1_slow.up.sql")
        )),
        "{text}"
    );
    assert!(
        text.ends_with(
            "; the session ended while it ran, so which statement was running is not known; it \
             was rolled back unless its COMMIT had reached the server (the history says which)"
        ),
        "{text}"
    );
    let Error::Migration {
        statement: None,
        source,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    // The client reads the server's FATAL (57P01, admin_shutdown) or, when the socket closes
    // first, a closed connection: a race of the server's exit, either way the session ended.
    assert!(
        source.code.as_deref() == Some("57P01") || source.is_connection_error(),
        "{source:?}"
    );
    assert!(!table_exists(&db, "slow"));
});

behaviour!(no_marker_precedes_set_transaction, |driver: Driver| {
    // PostgreSQL takes SET TRANSACTION only before the transaction's first query: the
    // runner's markers (and its own settings) must not come before these.
    let db = test_db();
    let dir = Dir::new(&[(
        "1_iso.up.sql",
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;\n\
         SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n\
         CREATE TABLE iso AS SELECT current_setting('transaction_isolation') AS level;\n\
         CREATE TABLE after_iso ();\n",
    )]);
    let mut session = Session::open(driver, &db);
    session.up(&dir.load()).unwrap();
    assert_eq!(
        scalar(&db, "SELECT level FROM iso"),
        Some("serializable".into())
    );
    assert_eq!(session.advisory_locks(), "0");
});

behaviour!(markers_do_not_change_the_script, |driver: Driver| {
    let db = test_db();
    let dir = Dir::new(&[(
        "1_shapes.up.sql",
        "CREATE TABLE t (x int) -- a comment before the semicolon\n;\n\
         CREATE FUNCTION atomic_body() RETURNS int LANGUAGE sql\n\
         BEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;\n\
         CREATE FUNCTION dollar_body() RETURNS int LANGUAGE plpgsql AS $$\n\
         BEGIN PERFORM 1; RETURN 3; END $$;\n\
         INSERT INTO t SELECT atomic_body() + dollar_body();\n\
         /* the last statement returns rows */ SELECT x, x, x FROM t, generate_series(1, 3)",
    )]);
    let mut session = Session::open(driver, &db);
    let report = session.up(&dir.load()).unwrap();
    assert_eq!(report.ran.len(), 1);
    assert_eq!(scalar(&db, "SELECT x FROM t"), Some("5".into()));
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM pg_proc WHERE proname IN ('atomic_body', 'dollar_body') \
             AND (pg_get_functiondef(oid) LIKE '%advisory%' OR prosrc LIKE '%advisory%')"
        ),
        Some("0".into()),
        "no marker inside a function body"
    );
    assert_eq!(session.advisory_locks(), "0");
});

behaviour!(lock_timeout_names_the_statement, |driver: Driver| {
    let db = test_db();
    db.connect()
        .batch_execute("CREATE TABLE t (x int)")
        .unwrap();
    let dir = Dir::new(&[(
        "1_alter.up.sql",
        "SELECT 1;\nALTER TABLE t ADD COLUMN y int;\n",
    )]);
    let m = dir.load();
    let mut holder = db.connect();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE t IN ACCESS SHARE MODE")
        .unwrap();
    let err = driver
        .execute(&db, &m, &Operation::Up { to: None }, |mig| {
            mig.lock_timeout(Duration::from_millis(50))
                .lock_retries(1, Duration::from_millis(10))
        })
        .unwrap_err();
    tx.rollback().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "up 1 alter could not take its locks: lock_timeout expired on each of 2 attempts at \
             statement 2 of 2 ({}:2): canceling statement due to lock timeout (SQLSTATE 55P03); \
             another session holds a conflicting lock on the objects it changes; find it in \
             pg_locks / pg_stat_activity, or raise --lock-timeout",
            file(&dir, "1_alter.up.sql")
        )
    );
});

const BLOCK: &str = "-- migrations:no-transaction\n\
CREATE TABLE IF NOT EXISTS before_block (x int);\n\
BEGIN;\n\
CREATE TABLE in_block (x int);\n\
INSERT INTO in_block VALUES (1 / 0);\n\
COMMIT;\n\
CREATE TABLE after_block ();\n";

behaviour!(
    a_failing_block_in_a_no_transaction_file,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[("1_blk.up.sql", BLOCK)]);
        let m = dir.load();
        let mut session = Session::open(driver, &db);
        let err = session.up(&m).unwrap_err();
        let path = file(&dir, "1_blk.up.sql");
        assert_eq!(
            err.to_string(),
            format!(
            "up 1 blk failed at statement 4 of 6 ({path}:5): division by zero (SQLSTATE 22012); \
             the transaction block opened by statement 2 (line 3) was rolled back, with the \
             statements in it"
        )
        );
        assert!(matches!(
            err,
            Error::Migration {
                statement: Some(Location {
                    number: 4,
                    total: 6,
                    line: 5
                }),
                ..
            }
        ));
        // Recorded failed at the real statement, with the server's error; the block undone.
        assert_eq!(
            history(&db, 1),
            Some(
                "failed 3/6 division by zero (SQLSTATE 22012); the transaction block opened by \
             statement 2 (line 3) was rolled back, with the statements in it"
                    .into()
            )
        );
        assert!(table_exists(&db, "before_block"));
        assert!(!table_exists(&db, "in_block"));
        // The lock released, the client idle and usable.
        assert_eq!(session.advisory_locks(), "0");
        held_locks_are_seen(&mut session, &m);
        assert!(!session.in_transaction_block());

        // The next run reports the failure, not a dead runner.
        let err = session.up(&m).unwrap_err();
        assert!(
            err.to_string()
                .contains("1 blk: failed at statement 4 of 6: division by zero (SQLSTATE 22012)"),
            "{err}"
        );
        assert_eq!(
            session.repair(&m, 1).unwrap(),
            vec!["1 blk: cleared failed state".to_owned()]
        );
        dir.write("1_blk.up.sql", &BLOCK.replace("1 / 0", "1 / 1"));
        let report = session.up(&dir.load()).unwrap();
        assert_eq!(report.ran.len(), 1);
        assert_eq!(history(&db, 1), Some("applied 6/6 ".into()));
        assert_eq!(scalar(&db, "SELECT x FROM in_block"), Some("1".into()));
        assert!(table_exists(&db, "after_block"));
        assert_eq!(session.advisory_locks(), "0");
        assert!(!session.in_transaction_block());
    }
);

const UNCLOSED: &str = "-- migrations:no-transaction\n\
CREATE TABLE IF NOT EXISTS outside ();\n\
BEGIN;\n\
CREATE TABLE inside ();\n";

behaviour!(
    an_unclosed_block_in_a_no_transaction_file,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[("1_open.up.sql", UNCLOSED)]);
        let m = dir.load();
        let mut session = Session::open(driver, &db);
        let err = session.up(&m).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "up 1 open failed at statement 2 of 3 ({}:3): the transaction block opened by \
             statement 2 (line 3) is never closed; the runner rolled it back rather than commit \
             it with its bookkeeping; hint: end the block with COMMIT, or drop its BEGIN (the \
             file runs outside a transaction, statement by statement)",
                file(&dir, "1_open.up.sql")
            )
        );
        assert!(history(&db, 1)
            .unwrap()
            .starts_with("failed 1/3 the transaction block"));
        assert!(table_exists(&db, "outside"));
        assert!(
            !table_exists(&db, "inside"),
            "the open block is not committed"
        );
        assert_eq!(session.advisory_locks(), "0");
        assert!(!session.in_transaction_block());

        session.repair(&m, 1).unwrap();
        dir.write("1_open.up.sql", &format!("{UNCLOSED}COMMIT;\n"));
        session.up(&dir.load()).unwrap();
        assert_eq!(history(&db, 1), Some("applied 4/4 ".into()));
        assert!(table_exists(&db, "inside"));
        assert!(!session.in_transaction_block());
    }
);
