//! A transactional script larger than a piece (1 MiB) is sent as several query strings inside
//! its one transaction (`engine/batch.rs`), and keeps every guarantee of a script sent at
//! once: a failure in a later piece, or in a statement long enough to be sent alone, names its
//! statement and line, and nothing of the script is applied; a lock timeout in a later piece
//! is retried from the start; no progress marker is left behind.
#![allow(clippy::result_large_err)] // the core's error is returned once per run

use std::fmt::Write as _;
use std::time::Duration;

use crate::common::{scalar, table_exists, Dir, Driver};
use migrations_core::{Error, Location, Operation};
use migrations_tests::test_db;

/// A padded row's text: about 1 KB.
fn pad(i: usize) -> String {
    format!("row {i} {}", "x".repeat(1000))
}

/// `CREATE TABLE big`, then `rows` one-row `INSERT`s of about 1 KB each, one a line, with
/// `bad` (when given: `(index, statement)`) in place of the `INSERT` of that index.
fn padded_inserts(rows: usize, bad: Option<(usize, &str)>) -> String {
    let mut sql = String::from("CREATE TABLE big (id int PRIMARY KEY, note text);\n");
    for i in 0..rows {
        match bad {
            Some((at, statement)) if at == i => sql.push_str(statement),
            _ => {
                let _ = write!(sql, "INSERT INTO big VALUES ({i}, '{}')", pad(i));
            }
        }
        sql.push_str(";\n");
    }
    sql
}

fn file(dir: &Dir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

/// What the run left: advisory locks (markers) held in this database by any session but the
/// checker's (the run's session is its driver's, still open in the async case), and the
/// history rows.
fn leftovers(db: &migrations_tests::TestDb) -> (String, String) {
    let markers = scalar(
        db,
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.pid <> pg_backend_pid() \
         AND d.datname = current_database()",
    )
    .unwrap();
    let rows = scalar(db, "SELECT count(*) FROM public.migrations_history").unwrap();
    (markers, rows)
}

// 3,600 statements of 1 KB and their markers: about 3.8 MiB, four pieces of ~940 statements.
// Statement 2,401 (line 2,401, in the third piece) fails at run time: the marker held says
// which it was.
behaviour!(
    a_runtime_failure_in_the_third_piece_names_its_statement,
    |driver: Driver| {
        let db = test_db();
        let sql = padded_inserts(3_600, Some((2_399, "INSERT INTO big VALUES (0, 'again')")));
        assert!(sql.len() > 3 << 20, "{} bytes", sql.len());
        let dir = Dir::new(&[("1_big.up.sql", &sql)]);
        let err = driver.up(&db, &dir.load()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "up 1 big failed at statement 2401 of 3601 ({}:2401): duplicate key value \
                 violates unique constraint \"big_pkey\" (SQLSTATE 23505); detail: Key (id)=(0) \
                 already exists.",
                file(&dir, "1_big.up.sql")
            )
        );
        // Rolled back whole: the pieces before the failing one too.
        assert!(!table_exists(&db, "big"));
        assert_eq!(leftovers(&db), ("0".into(), "0".into()));

        // Fixed, the same script applies, every row once.
        dir.write("1_big.up.sql", &padded_inserts(3_600, None));
        let report = driver.up(&db, &dir.load()).unwrap();
        assert_eq!(report.ran.len(), 1);
        assert_eq!(
            scalar(&db, "SELECT count(*) FROM big").as_deref(),
            Some("3600")
        );
        assert_eq!(leftovers(&db), ("0".into(), "1".into()));
    }
);

// A syntax error in the third piece: the server's position, counted in that piece, says
// where.
behaviour!(
    a_syntax_error_in_the_third_piece_names_its_statement,
    |driver: Driver| {
        let db = test_db();
        let sql = padded_inserts(3_600, Some((2_399, "INSERT INTO big VALUES (1,, 'x')")));
        let dir = Dir::new(&[("1_big.up.sql", &sql)]);
        let err = driver.up(&db, &dir.load()).unwrap_err();
        match &err {
            Error::Migration {
                statement, source, ..
            } => {
                assert_eq!(
                    *statement,
                    Some(Location {
                        number: 2_401,
                        total: 3_601,
                        line: 2_401
                    }),
                    "{err}"
                );
                assert_eq!(source.code.as_deref(), Some("42601"));
            }
            other => panic!("{other}"),
        }
        assert!(!table_exists(&db, "big"));
        assert_eq!(leftovers(&db), ("0".into(), "0".into()));
    }
);

// A statement longer than a piece is sent alone: a syntax error on its last line is located
// there, and a run-time failure of the statement after it too.
behaviour!(
    a_statement_longer_than_a_piece_keeps_its_location,
    |driver: Driver| {
        let db = test_db();
        let rows: Vec<String> = (0..1_100).map(|i| format!("({i}, '{}')", pad(i))).collect();
        let long = format!("INSERT INTO big VALUES\n{}", rows.join(",\n"));
        let sql = format!(
            "CREATE TABLE big (id int PRIMARY KEY, note text);\n{long};\n\
             INSERT INTO big VALUES (0, 'again');\n"
        );
        assert!(long.len() > 1 << 20);
        let dir = Dir::new(&[("1_big.up.sql", &sql)]);
        let err = driver.up(&db, &dir.load()).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "up 1 big failed at statement 3 of 3 ({}:1103): duplicate key",
                file(&dir, "1_big.up.sql")
            )),
            "{err}"
        );
        assert!(!table_exists(&db, "big"));

        let typo = sql.replace("(1099, ", "(1099,, ");
        dir.write("1_big.up.sql", &typo);
        let err = driver.up(&db, &dir.load()).unwrap_err();
        match &err {
            Error::Migration { statement, .. } => assert_eq!(
                *statement,
                Some(Location {
                    number: 2,
                    total: 3,
                    line: 1_102
                }),
                "{err}"
            ),
            other => panic!("{other}"),
        }
        assert!(!table_exists(&db, "big"));
        assert_eq!(leftovers(&db), ("0".into(), "0".into()));
    }
);

// A lock timeout in the last piece: the whole script is retried from its first piece, and
// applied once.
behaviour!(
    a_lock_timeout_in_a_later_piece_is_retried,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[("1_t.up.sql", "CREATE TABLE t (x int);\n")]);
        driver.up(&db, &dir.load()).unwrap();
        let sql = padded_inserts(3_600, None) + "ALTER TABLE t ADD COLUMN y int;\n";
        dir.write("2_big.up.sql", &sql);
        let m = dir.load();

        // A holder that lets go after a moment.
        let url = db.url().to_owned();
        let (held, wait) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut tx = c.transaction().unwrap();
            tx.batch_execute("LOCK TABLE t IN ACCESS SHARE MODE")
                .unwrap();
            held.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(1_500));
            tx.commit().unwrap();
        });
        wait.recv().unwrap();
        let retries = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = retries.clone();
        let report = driver
            .execute(&db, &m, &Operation::Up { to: None }, move |mig| {
                mig.lock_timeout(Duration::from_millis(100))
                    .lock_retries(8, Duration::from_millis(100))
                    .on_event(move |e| {
                        if let migrations_core::Event::Retrying { .. } = e {
                            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    })
            })
            .unwrap();
        holder.join().unwrap();
        assert_eq!(report.ran.len(), 1);
        assert!(retries.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        assert_eq!(
            scalar(&db, "SELECT count(*) FROM big").as_deref(),
            Some("3600")
        );
        assert_eq!(leftovers(&db), ("0".into(), "2".into()));
    }
);
