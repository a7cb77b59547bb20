//! Schema snapshots and the round trip (SPEC section 7) on a real PostgreSQL: every object
//! kind appears under its identity; snapshots do not depend on OIDs, creation order or the
//! database's name; diffs read as a person would say them; the round trip reports a correct
//! pair, a down that forgets an index, a down that drops a column its up did not add, a down
//! that errors and a migration without a down, precisely; the scratch database is dropped on
//! every path; and the whole crates.io corpus goes through the round trip to the end.

// As in the library: a run returns at most one error, so its size costs nothing.
#![allow(clippy::result_large_err)]

use std::fs;
use std::time::{Duration, Instant};

use migrations_core::roundtrip::{self, Interrupt, Options, Outcome};
use migrations_core::snapshot::Change;
use migrations_core::{Difference, Migrations, Migrator, Names, Snapshot};
use migrations_tests::{test_db, TestDb};

/// A migrations directory in a temp dir.
fn dir(files: &[(&str, &str)]) -> (tempfile::TempDir, Migrations) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let full = dir.path().join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, text).unwrap();
    }
    let migrations = Migrations::from_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (dir, migrations)
}

fn snapshot(db: &TestDb) -> Snapshot {
    Snapshot::read(&mut db.connect(), &Names::default()).unwrap()
}

fn attr<'s>(s: &'s Snapshot, key: &str, name: &str) -> Option<&'s str> {
    s.get(key)
        .unwrap_or_else(|| panic!("no object `{key}` in the snapshot:\n{}", s.to_text()))
        .get(name)
        .map(String::as_str)
}

/// Whether a database of this name exists on the test server.
fn database_exists(db: &TestDb, name: &str) -> bool {
    let mut admin = db.connect_admin();
    let row = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .unwrap();
    row.get::<_, i64>(0) == 1
}

/// Scratch databases of this process still on the server.
fn leftover_scratch(db: &TestDb, name: &str) -> Vec<String> {
    let mut admin = db.connect_admin();
    admin
        .query(
            "SELECT datname FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

const EVERY_KIND: &str = r#"
CREATE SCHEMA app;
CREATE EXTENSION citext SCHEMA app;
COMMENT ON SCHEMA app IS 'the application';
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE app.pair AS (a integer, b text);
CREATE DOMAIN app.posint AS integer NOT NULL DEFAULT 1 CONSTRAINT positive CHECK (VALUE > 0);
CREATE TYPE app.floatrange AS RANGE (subtype = float8);
CREATE SEQUENCE app.counter AS bigint START 10 INCREMENT 5 MINVALUE 10 MAXVALUE 1000 CYCLE;
CREATE TABLE app.users (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email app.citext NOT NULL DEFAULT '' UNIQUE,
  mood app.mood,
  score app.posint,
  lower_email text GENERATED ALWAYS AS (lower(email::text)) STORED,
  CONSTRAINT email_len CHECK (length(email) < 300)
);
COMMENT ON TABLE app.users IS 'people';
COMMENT ON COLUMN app.users.email IS 'where to write';
CREATE TABLE app.posts (id serial PRIMARY KEY, user_id bigint REFERENCES app.users, body text);
CREATE INDEX posts_user_ix ON app.posts (user_id);
CREATE TABLE app.events (at date NOT NULL, kind text) PARTITION BY RANGE (at);
CREATE TABLE app.events_2024 PARTITION OF app.events
  FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE VIEW app.active AS SELECT id, email FROM app.users WHERE mood <> 'sad';
CREATE MATERIALIZED VIEW app.counts AS SELECT user_id, count(*) AS n FROM app.posts GROUP BY user_id;
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE PROCEDURE app.noop(x integer) LANGUAGE sql AS $$ SELECT 1 $$;
CREATE AGGREGATE app.total(integer) (sfunc = int4pl, stype = integer, initcond = '0');
CREATE TRIGGER posts_touch BEFORE UPDATE ON app.posts FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE RULE no_delete AS ON DELETE TO app.events_2024 DO INSTEAD NOTHING;
ALTER TABLE app.posts ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON app.posts FOR SELECT USING (user_id = 1);
"#;

#[test]
fn snapshot_covers_every_object_kind() {
    let db = test_db();
    let mut client = db.connect();
    // The history tables exist too, and must not show.
    let (_d, migrations) = dir(&[("1_x.up.sql", "CREATE TABLE x (id int);\n")]);
    Migrator::new(&migrations).run(&mut client).unwrap();
    client.batch_execute(EVERY_KIND).unwrap();
    let s = snapshot(&db);

    for key in [
        "schema app",
        "schema public",
        "extension citext",
        "extension plpgsql",
        "type app.mood",
        "type app.pair",
        "type app.posint",
        "type app.floatrange",
        "sequence app.counter",
        "sequence app.users_id_seq",
        "sequence app.posts_id_seq",
        "table app.users",
        "table app.posts",
        "table app.events",
        "table app.events_2024",
        "table public.x",
        "column app.users.id",
        "column app.users.email",
        "column app.users.lower_email",
        "column app.active.email",
        "constraint app.users.users_pkey",
        "constraint app.users.users_email_key",
        "constraint app.users.email_len",
        "constraint app.posts.posts_user_id_fkey",
        "constraint app.posint.positive",
        "index app.posts_user_ix",
        "view app.active",
        "materialized view app.counts",
        "function app.touch()",
        "procedure app.noop(IN x integer)",
        "aggregate app.total(integer)",
        "trigger app.posts.posts_touch",
        "rule app.events_2024.no_delete",
        "policy app.posts.own",
    ] {
        assert!(s.contains(key), "no `{key}` in:\n{}", s.to_text());
    }
    // Left out: the history tables and all that hangs on them, extension members, indexes
    // that stand for constraints, implicit types.
    for (key, _) in s.objects() {
        assert!(!key.contains("migrations_history"), "{key}");
        assert!(
            !key.contains("citext(") && !key.starts_with("type app.citext"),
            "{key}"
        );
        assert!(!key.starts_with("type app._"), "{key}");
    }
    assert!(!s.contains("index app.users_pkey"));
    assert!(!s.contains("type app.users"));

    assert_eq!(attr(&s, "schema app", "comment"), Some("the application"));
    assert_eq!(attr(&s, "extension citext", "version"), Some("1.6"));
    assert_eq!(
        attr(&s, "type app.mood", "labels"),
        Some("'sad', 'ok', 'happy'")
    );
    assert_eq!(
        attr(&s, "type app.pair", "attributes"),
        Some("a integer, b text")
    );
    assert_eq!(attr(&s, "type app.posint", "kind"), Some("domain"));
    assert_eq!(attr(&s, "type app.posint", "not_null"), Some("true"));
    assert_eq!(attr(&s, "type app.posint", "default"), Some("1"));
    assert_eq!(
        attr(&s, "constraint app.posint.positive", "definition"),
        Some("CHECK ((VALUE > 0))")
    );
    assert_eq!(
        attr(&s, "type app.floatrange", "subtype"),
        Some("double precision")
    );
    let counter = s.get("sequence app.counter").unwrap();
    for (name, value) in [
        ("type", "bigint"),
        ("start", "10"),
        ("increment", "5"),
        ("min", "10"),
        ("max", "1000"),
        ("cycle", "true"),
    ] {
        assert_eq!(counter.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert_eq!(
        attr(&s, "sequence app.posts_id_seq", "owned_by"),
        Some("app.posts.id")
    );
    assert_eq!(attr(&s, "table app.users", "comment"), Some("people"));
    assert_eq!(
        attr(&s, "table app.users", "columns"),
        Some("id, email, mood, score, lower_email")
    );
    assert_eq!(attr(&s, "column app.users.id", "identity"), Some("always"));
    assert_eq!(
        attr(&s, "column app.users.email", "type"),
        Some("app.citext")
    );
    assert_eq!(attr(&s, "column app.users.email", "not_null"), Some("true"));
    assert_eq!(
        attr(&s, "column app.users.email", "default"),
        Some("''::app.citext")
    );
    assert_eq!(
        attr(&s, "column app.users.email", "comment"),
        Some("where to write")
    );
    assert_eq!(attr(&s, "column app.users.mood", "not_null"), Some("false"));
    assert_eq!(
        attr(&s, "column app.users.lower_email", "generated"),
        Some("stored: lower((email)::text)")
    );
    assert_eq!(
        attr(&s, "constraint app.posts.posts_user_id_fkey", "definition"),
        Some("FOREIGN KEY (user_id) REFERENCES app.users(id)")
    );
    assert_eq!(
        attr(&s, "index app.posts_user_ix", "definition"),
        Some("CREATE INDEX posts_user_ix ON app.posts USING btree (user_id)")
    );
    assert_eq!(
        attr(&s, "table app.events", "kind"),
        Some("partitioned table")
    );
    assert_eq!(
        attr(&s, "table app.events", "partition_key"),
        Some("RANGE (at)")
    );
    assert_eq!(
        attr(&s, "table app.events_2024", "partition_bound"),
        Some("FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')")
    );
    assert_eq!(
        attr(&s, "table app.events_2024", "inherits"),
        Some("app.events")
    );
    assert_eq!(attr(&s, "table app.posts", "row_security"), Some("enabled"));
    assert_eq!(attr(&s, "policy app.posts.own", "command"), Some("SELECT"));
    assert_eq!(attr(&s, "policy app.posts.own", "roles"), Some("public"));
    assert_eq!(
        attr(&s, "policy app.posts.own", "using"),
        Some("(user_id = 1)")
    );
    assert!(attr(&s, "view app.active", "definition")
        .unwrap()
        .contains("FROM app.users"));
    assert!(attr(&s, "function app.touch()", "definition")
        .unwrap()
        .starts_with("CREATE OR REPLACE FUNCTION app.touch()"));
    assert!(attr(&s, "procedure app.noop(IN x integer)", "definition")
        .unwrap()
        .starts_with("CREATE OR REPLACE PROCEDURE app.noop(IN x integer)"));
    assert_eq!(
        attr(&s, "aggregate app.total(integer)", "initcond"),
        Some("0")
    );
    assert_eq!(
        attr(&s, "trigger app.posts.posts_touch", "definition"),
        Some(
            "CREATE TRIGGER posts_touch BEFORE UPDATE ON app.posts FOR EACH ROW EXECUTE \
             FUNCTION app.touch()"
        )
    );

    // The text form reads back to the same snapshot.
    assert_eq!(Snapshot::from_text(&s.to_text()).unwrap(), s);
}

/// Independent statements of [`EVERY_KIND`]-like DDL, in an order that can be shuffled.
const PARTS: &[&str] = &[
    "CREATE TYPE public.mood AS ENUM ('sad', 'ok')",
    "CREATE TABLE public.a (id int PRIMARY KEY, note text DEFAULT 'x', mood public.mood)",
    "CREATE TABLE public.b (id bigint GENERATED BY DEFAULT AS IDENTITY, a_id int REFERENCES public.a)",
    "CREATE INDEX b_a_ix ON public.b (a_id) WHERE a_id > 0",
    "CREATE SEQUENCE public.s",
    "CREATE FUNCTION public.f(x int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT x + 1 $$",
    "CREATE VIEW public.v AS SELECT a.id, public.f(a.id) AS next FROM public.a",
    "COMMENT ON TABLE public.a IS 'aa'",
];

#[test]
fn snapshots_ignore_oids_creation_order_and_database_name() {
    let one = test_db();
    let two = test_db();
    one.connect().batch_execute(&PARTS.join(";\n")).unwrap();

    // The other database: unrelated objects made and dropped first (other OIDs), a dropped
    // column (a hole in attnum), a different search_path, and another order where allowed.
    let mut c = two.connect();
    c.batch_execute(
        "CREATE TABLE junk (x int); DROP TABLE junk; \
         CREATE SEQUENCE public.s; CREATE SCHEMA other; SET search_path = other, public;",
    )
    .unwrap();
    for part in [PARTS[5], PARTS[0], PARTS[1], PARTS[7], PARTS[6]] {
        c.batch_execute(part).unwrap();
    }
    c.batch_execute(
        "CREATE TABLE public.b (id bigint GENERATED BY DEFAULT AS IDENTITY, gone int, \
         a_id int REFERENCES public.a); ALTER TABLE public.b DROP COLUMN gone; \
         CREATE INDEX b_a_ix ON public.b (a_id) WHERE a_id > 0; DROP SCHEMA other",
    )
    .unwrap();

    let a = snapshot(&one);
    let b = Snapshot::read(&mut c, &Names::default()).unwrap();
    assert!(a.diff(&b).is_empty(), "{:#?}", a.diff(&b));
    assert_eq!(a, b);
    assert_eq!(a.to_text(), b.to_text());
    assert!(!a.to_text().contains(one.name()));
    assert!(a.len() > 15, "{}", a.to_text());
}

#[test]
fn async_snapshot_reads_the_same() {
    let db = test_db();
    db.connect().batch_execute(&PARTS.join(";\n")).unwrap();
    let sync = snapshot(&db);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let from_async = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        Snapshot::read_async(&client, &Names::default())
            .await
            .unwrap()
    });
    assert_eq!(sync, from_async);
}

#[test]
fn diffs_read_as_expected() {
    let db = test_db();
    let mut c = db.connect();
    c.batch_execute(
        "CREATE TABLE users (id int PRIMARY KEY, email text); \
         CREATE INDEX ix_foo ON users (email); \
         CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 1;\nEND\n$$;",
    )
    .unwrap();
    let before = snapshot(&db);
    c.batch_execute(
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(255); \
         DROP INDEX ix_foo; ALTER TABLE users ADD COLUMN name text NOT NULL DEFAULT 'x'; \
         CREATE TABLE t (); \
         CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 2;\nEND\n$$;",
    )
    .unwrap();
    let after = snapshot(&db);
    let lines: Vec<String> = before.diff(&after).iter().map(|d| d.to_string()).collect();
    assert_eq!(
        lines,
        [
            "column public.users.email: type text -> character varying(255)",
            "column public.users.name: unexpected",
            "function public.f(): definition differs at line 6: \"RETURN 1;\" -> \"RETURN 2;\"",
            "index public.ix_foo: missing",
            "table public.t: unexpected",
        ]
    );
    // And the other way round.
    let back: Vec<String> = after.diff(&before).iter().map(|d| d.to_string()).collect();
    assert!(
        back.contains(&"index public.ix_foo: unexpected".to_owned()),
        "{back:#?}"
    );
    assert!(
        back.contains(&"table public.t: missing".to_owned()),
        "{back:#?}"
    );

    // A column dropped and added again comes back at the end: the order is reported once.
    let before = snapshot(&db);
    c.batch_execute(
        "ALTER TABLE users DROP COLUMN email; ALTER TABLE users ADD COLUMN email varchar(255)",
    )
    .unwrap();
    let lines: Vec<String> = before
        .diff(&snapshot(&db))
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        lines,
        ["table public.users: column order id, email, name -> id, name, email"]
    );
}

#[test]
fn recorded_schema_shows_drift_outside_migrations() {
    let db = test_db();
    let mut c = db.connect();
    let names = Names::default();
    assert!(migrations_core::snapshot::schema_drift(&mut c, &names)
        .unwrap()
        .is_none());
    let (_d, migrations) = dir(&[(
        "1_users.up.sql",
        "CREATE TABLE users (id int PRIMARY KEY, email text);\nCREATE INDEX users_email ON users (email);\n",
    )]);
    Migrator::new(&migrations).run(&mut c).unwrap();
    let stored = migrations_core::snapshot::record(&mut c, &names, Some(1)).unwrap();
    // The table that keeps the recordings is not part of the schema either.
    assert_eq!(snapshot(&db), stored);
    assert!(stored.keys().all(|k| !k.contains("migrations_history")));
    let recorded = migrations_core::snapshot::recorded(&mut c, &names)
        .unwrap()
        .unwrap();
    assert_eq!(recorded.snapshot, stored);
    assert_eq!(recorded.version, Some(1));
    let drift = migrations_core::snapshot::schema_drift(&mut c, &names)
        .unwrap()
        .unwrap()
        .differences;
    assert!(drift.is_empty(), "{drift:?}");

    // Someone changes the schema by hand.
    c.batch_execute(
        "ALTER TABLE users ADD COLUMN extra int; DROP INDEX users_email; \
         ALTER TABLE users ALTER COLUMN email SET NOT NULL",
    )
    .unwrap();
    let drift = migrations_core::snapshot::schema_drift(&mut c, &names)
        .unwrap()
        .unwrap()
        .differences;
    let lines: Vec<String> = drift.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        lines,
        [
            "column public.users.email: not_null false -> true",
            "column public.users.extra: unexpected",
            "index public.users_email: missing",
        ]
    );
    // A new recording becomes the reference.
    migrations_core::snapshot::record(&mut c, &names, Some(1)).unwrap();
    let drift = migrations_core::snapshot::schema_drift(&mut c, &names)
        .unwrap()
        .unwrap()
        .differences;
    assert!(drift.is_empty());
}

// ---------------------------------------------------------------------------------------
// The round trip
// ---------------------------------------------------------------------------------------

use migrations_tests::{ROUND_TRIP_FIXTURES as FIXTURES, ROUND_TRIP_REPORT as FIXTURES_REPORT};

#[test]
fn round_trip_reports_each_fixture_precisely() {
    let db = test_db();
    let (_d, migrations) = dir(FIXTURES);
    let mut seen = Vec::new();
    let report = roundtrip::check(
        db.admin_url(),
        &migrations,
        Options::new().on_result(|m| seen.push(m.version)),
    )
    .unwrap();
    assert_eq!(report.to_string(), FIXTURES_REPORT);
    assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
    assert!(!report.passed());
    assert_eq!(
        report.failures().map(|m| m.version).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(report.migrations[4].outcome.kind(), "down_failed");
    // 3 and 4 left the database off the chain: it started over twice.
    assert_eq!(report.restarts, 2);
    assert!(report.stopped.is_none());
    assert!(report.database.starts_with("migrations_test_"));
    assert!(!database_exists(&db, &report.database));
    // The database given is untouched.
    assert!(snapshot(&db)
        .keys()
        .all(|k| k == "schema public" || k == "extension plpgsql"));
}

#[test]
fn round_trip_passes_a_correct_chain_and_honours_the_range() {
    let db = test_db();
    let (_d, migrations) = dir(&FIXTURES[..4]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.to_string(),
        "ok 1 users\nok 2 posts\n2 migrations checked: 2 ok, 0 failed"
    );
    report.assert_passed();

    let (_d, migrations) = dir(FIXTURES);
    let report =
        roundtrip::check(db.admin_url(), &migrations, Options::new().from(2).to(4)).unwrap();
    let checked: Vec<i64> = report.migrations.iter().map(|m| m.version).collect();
    assert_eq!(checked, [2, 3, 4]);
    let err = roundtrip::check(db.admin_url(), &migrations, Options::new().from(7)).unwrap_err();
    assert_eq!(err.to_string(), "version 7 is not one of the migrations");
}

#[test]
fn round_trip_stops_at_an_up_that_fails() {
    let db = test_db();
    let (_d, migrations) = dir(&[
        FIXTURES[0],
        FIXTURES[1],
        ("2_broken.up.sql", "CREATE TABLE users (id int);\n"),
        ("2_broken.down.sql", "SELECT 1;\n"),
        FIXTURES[8],
        FIXTURES[9],
    ]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    assert_eq!(
        report.to_string(),
        "ok 1 users\n\
         FAIL 2 broken: up failed: relation \"users\" already exists (SQLSTATE 42P07) \
         (statement 1 of 1, line 1)\n\
         2 migrations checked: 1 ok, 1 failed; stopped at 2 broken (its up failed), 1 not checked"
    );
    let stopped = report.stopped.as_ref().unwrap();
    assert_eq!(
        stopped.not_checked,
        [roundtrip::NotChecked {
            version: 5,
            spelling: "5".to_owned(),
            name: "tags".to_owned()
        }]
    );
    assert!(!database_exists(&db, &report.database));
}

/// A failure the runner finds itself (here a no-transaction file whose transaction block is
/// never closed: the server ran every statement without error) is a finding of the round
/// trip, like a server error, not a check that could not run: it has no SQLSTATE, yet the
/// session is fine.
#[test]
fn round_trip_reports_the_runners_own_finding_as_a_failure() {
    let db = test_db();
    let (_d, migrations) = dir(&[
        FIXTURES[0],
        FIXTURES[1],
        (
            "2_open.up.sql",
            "-- migrations:no-transaction\nBEGIN;\nCREATE TABLE open_block (id int);\n",
        ),
        ("2_open.down.sql", "DROP TABLE IF EXISTS open_block;\n"),
    ]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    assert_eq!(
        report.to_string(),
        "ok 1 users\n\
         FAIL 2 open: up failed: the transaction block opened by statement 1 (line 2) is never \
         closed; the runner rolled it back rather than commit it with its bookkeeping; hint: end \
         the block with COMMIT, or drop its BEGIN (the file runs outside a transaction, \
         statement by statement) (statement 1 of 2, line 2)\n\
         2 migrations checked: 1 ok, 1 failed; stopped at 2 open (its up failed), 0 not checked"
    );
    assert!(!database_exists(&db, &report.database));
}

#[test]
fn scratch_database_is_dropped_when_a_panic_unwinds() {
    let db = test_db();
    let (_d, migrations) = dir(&FIXTURES[..4]);
    let mut name = String::new();
    let mut admin = db.connect_admin();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        roundtrip::check_with(
            &mut admin,
            |database| {
                name = database.to_owned();
                postgres::Client::connect(&db.url_for_database(database), postgres::NoTls)
            },
            &migrations,
            Options::new().on_result(|_| panic!("a callback panics")),
        )
    }));
    assert!(result.is_err());
    assert!(name.starts_with("migrations_test_"), "{name}");
    assert!(leftover_scratch(&db, &name).is_empty());
}

#[test]
fn an_interrupt_cancels_the_running_migration_and_drops_the_scratch_database() {
    let db = test_db();
    let (_d, migrations) = dir(&[
        FIXTURES[0],
        FIXTURES[1],
        ("2_slow.up.sql", "SELECT pg_sleep(60);\n"),
        ("2_slow.down.sql", "SELECT 1;\n"),
    ]);
    let interrupt = Interrupt::new();
    let trigger = interrupt.clone();
    let started = Instant::now();
    let timer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        trigger.trigger();
    });
    let err = roundtrip::check(
        db.admin_url(),
        &migrations,
        Options::new().interrupt(&interrupt),
    )
    .unwrap_err();
    timer.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let roundtrip::Error::Interrupted(name) = &err else {
        panic!("{err}")
    };
    assert!(!database_exists(&db, name));
    assert!(err
        .to_string()
        .starts_with("interrupted; the scratch database"));
}

// ---------------------------------------------------------------------------------------
// The crates.io corpus
// ---------------------------------------------------------------------------------------

/// Every crates.io migration whose round trip fails, and how: the outcome's kind, what the
/// down left different (`object: what differs`), and what the second up did wrong. Real downs
/// do not all reverse their ups; this pins which ones and how, so a snapshot that stops seeing
/// something (a default, a column order, a constraint) or a down that starts failing turns the
/// test red. Messages are not pinned: they belong to the engine.
#[rustfmt::skip]
const CORPUS_ROUND_TRIP_FAILURES: &[(i64, &str, &[&str], &[&str])] = &[
    // The up drops four column defaults; the down is empty.
    (20140925132254, "mismatch", &["column public.packages.created_at: default", "column public.packages.updated_at: default", "column public.versions.created_at: default", "column public.versions.updated_at: default"], &[]),
    // The up drops the table `metadata`; the down recreates it empty.
    (20140925153705, "data_loss", &[], &[]),
    // The up drops two column defaults; the down is empty.
    (20140925161625, "mismatch", &["column public.packages.downloads: default", "column public.versions.downloads: default"], &[]),
    // The column was already NOT NULL before the up; the down's DROP NOT NULL undoes more.
    (20140926130046, "mismatch", &["column public.versions.downloads: not_null"], &[]),
    // The down recreates the dropped table with one nullable column and no indexes.
    (20140930082104, "mismatch", &["column public.version_dependencies.depends_on_id: missing", "column public.version_dependencies.version_id: not_null", "index public.index_version_dependencies_depends_on_id: missing", "index public.index_version_dependencies_version_id: missing"], &[]),
    // The up drops a unique constraint; the down is empty.
    (20141112082527, "mismatch", &["constraint public.users.users_email_key: missing"], &[]),
    // The down adds back the dropped column at the end of the table.
    (20160219125609, "mismatch", &["table public.crates: column order"], &[]),
    // The down adds back the dropped column at the end of the table.
    // The down adds back the dropped user_id column NOT NULL without a default: on a table with
    // rows it fails (on an empty one it would add it back at the end of the table).
    (20160717174656, "down_failed", &[], &[]),
    // The down recreates the unique constraint with its columns in another order, and the id column at the end.
    (20170308191449, "mismatch", &["constraint public.crate_owners.crate_owners_unique_owner_per_crate: definition", "table public.crate_owners: column order"], &[]),
    // The column was varchar before the up; the down turns it into text.
    (20170315133901, "mismatch", &["column public.dependencies.features: type"], &[]),
    // The down's line 1 lacks its `;`: a syntax error at line 2.
    (20170318181441, "down_failed", &[], &[]),
    // The up's ALTER TYPE turned the expression index `date(date)` into a plain one; the down does not restore it.
    (20170322130523, "mismatch", &["index public.index_version_downloads_date: definition"], &[]),
    // The up drops a table that does not exist here (IF EXISTS); the down creates it.
    (20170502181306, "mismatch", &["column public.schema_migrations.id: unexpected", "column public.schema_migrations.version: unexpected", "constraint public.schema_migrations.schema_migrations_pkey: unexpected", "constraint public.schema_migrations.schema_migrations_version_key: unexpected", "sequence public.schema_migrations_id_seq: unexpected", "table public.schema_migrations: unexpected"], &[]),
    // The down recreates the table with text where it had varchar.
    (20170923182408, "mismatch", &["column public.tokens.token: type"], &[]),
    // The down recreates the table with a NOT NULL it lacked and an unnamed foreign key.
    (20170923210614, "mismatch", &["column public.readme_rendering.rendered_at: not_null", "constraint public.readme_rendering.fk_readme_rendering_version_id: missing", "constraint public.readme_rendering.readme_rendering_version_id_fkey: unexpected"], &[]),
    // The down adds back two dropped columns, at the end and one without its default.
    (20171016200404, "mismatch", &["column public.crates.max_version: default", "table public.crates: column order", "table public.users: column order"], &[]),
    // The column was varchar before the up; the down turns it into text.
    (20180118172821, "mismatch", &["column public.versions.features: type"], &[]),
    // The down recreates the dropped table with an unnamed foreign key.
    (20190322170700, "mismatch", &["constraint public.crate_downloads.crate_downloads_crate_id_fkey: unexpected", "constraint public.crate_downloads.fk_crate_downloads_crate_id: missing"], &[]),
    // The down adds back the dropped id column at the end of the table.
    (20190322174825, "mismatch", &["table public.version_downloads: column order"], &[]),
    // The down adds back the dropped column at the end of the table.
    // The up drops crates.readme_file; the down adds it back empty.
    (20190513192055, "data_loss", &[], &[]),
    (20190828224353, "mismatch", &["table public.crates: column order"], &[]),
    // The up deletes the badges whose crate is gone (our rows' crate_id 1..3 point nowhere);
    // the down cannot bring them back.
    (20190915194259, "data_loss", &[], &[]),
    // The down recreates the function without the `SET search_path FROM CURRENT` it had.
    (20190918233204, "mismatch", &["function public.to_semver_no_prerelease(text): definition"], &[]),
    // The down is a no-op ("Not reversible"), so the second up finds the column gone.
    (20191111162609, "mismatch", &["column public.users.email: missing"], &["up again failed"]),
    // The down adds back the dropped column at the end, without its foreign key.
    (20200214183929, "mismatch", &["constraint public.version_authors.fk_version_authors_user_id: missing", "table public.version_authors: column order"], &[]),
    // The down turns varchar into text and leaves the extension the up created.
    (20200714113112, "mismatch", &["column public.api_tokens.token: type", "extension pgcrypto: unexpected"], &[]),
    // The down has CREATE INDEX CONCURRENTLY in a transactional file: refused before it runs.
    // The up drops the table version_authors; the down recreates it empty.
    (20210424115720, "data_loss", &[], &[]),
    // The up drops the table badges; the down recreates it empty.
    (20240219113226, "data_loss", &[], &[]),
    (20240412144536, "down_failed", &[], &[]),
    // The down adds back the column at the end, without the index dropped with it.
    (20240614084455, "mismatch", &["index public.index_versions_crate_id_semver_no_prerelease_id: missing", "table public.versions: column order"], &[]),
    // The down drops a constraint, but the up made a unique index: 42704.
    (20241025112826, "down_failed", &[], &[]),
    // The up replaces an existing function; the down drops it CASCADE, taking its trigger.
    // The up drops crate_owner_invitations.token_generated_at; the down adds it back empty.
    (20250211115609, "data_loss", &[], &[]),
    (20250211163554, "mismatch", &["function public.update_num_versions_from_versions(): missing", "trigger public.versions.trigger_update_num_versions_from_versions: missing"], &["trigger public.versions.trigger_update_num_versions_from_versions: missing"]),
    // The down adds back the column at the end, with a default it did not have.
    (20250716170846, "mismatch", &["column public.users.gh_access_token: default", "table public.users: column order"], &[]),
    // The down adds back the dropped column at the end of the table.
    (202605271300000000, "mismatch", &["table public.versions: column order"], &[]),
    // The down adds a CHECK constraint that production has but this database never had.
    (202606171053250000, "mismatch", &["constraint public.versions.versions_tar_sha256_present: unexpected"], &[]),
    // The down adds back the dropped column at the end of the table.
    (202606171125350000, "mismatch", &["table public.versions: column order"], &[]),
    // The down adds back the dropped column at the end of the table.
    (202606180841490000, "mismatch", &["table public.users: column order"], &[]),
    // The down adds back the dropped column at the end of the table.
    (202607151829340000, "mismatch", &["table public.users: column order"], &[]),
    // The up drops the table cache_tags_backfills; the down recreates it empty.
    (202607241540000000, "data_loss", &[], &[]),
];

/// `object: what differs` (`missing`, `unexpected`, `column order`, or the attribute's name).
fn difference_shape(d: &Difference) -> String {
    let what = match &d.change {
        Change::Missing => "missing",
        Change::Unexpected => "unexpected",
        Change::ColumnOrder { .. } => "column order",
        Change::Attribute { name, .. } => name.as_str(),
        // `Change` may grow: a new kind must be added here before the pins can name it.
        other => panic!("a kind of change this test does not know: {other:?}"),
    };
    format!("{}: {what}", d.object)
}

/// The whole crates.io history through the round trip: the check runs to the end without
/// stopping, reports every migration, and fails exactly the migrations pinned in
/// [`CORPUS_ROUND_TRIP_FAILURES`], in exactly the ways pinned there.
#[test]
fn crates_io_corpus_round_trip() {
    let db = test_db();
    let copy = migrations_tests::corpus_copy();
    let migrations = Migrations::from_dir(copy.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(migrations.len(), 285);

    let started = Instant::now();
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    let elapsed = started.elapsed();

    assert!(report.stopped.is_none(), "{report}");
    assert_eq!(report.migrations.len(), 285);
    assert!(!database_exists(&db, &report.database));
    println!(
        "crates.io round trip: {} in {:.1} s, {} restart(s)",
        report.summary(),
        elapsed.as_secs_f64(),
        report.restarts
    );
    if std::env::var_os("ROUNDTRIP_CORPUS_FULL").is_some() {
        println!("{report}");
    }
    let found: Vec<(i64, &str, Vec<String>, Vec<String>)> = report
        .failures()
        .map(|m| {
            let (after_down, after_redo) = match &m.outcome {
                Outcome::Mismatch {
                    after_down,
                    after_redo,
                    redo_error,
                } => (
                    after_down.iter().map(difference_shape).collect(),
                    redo_error
                        .iter()
                        .map(|_| "up again failed".to_owned())
                        .chain(after_redo.iter().map(difference_shape))
                        .collect(),
                ),
                _ => (Vec::new(), Vec::new()),
            };
            (m.version, m.outcome.kind(), after_down, after_redo)
        })
        .collect();
    let expected: Vec<(i64, &str, Vec<String>, Vec<String>)> = CORPUS_ROUND_TRIP_FAILURES
        .iter()
        .map(|(v, kind, down, redo)| {
            let owned = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect();
            (*v, *kind, owned(down), owned(redo))
        })
        .collect();
    // One line per difference, so a change reads as the migrations it concerns.
    for (v, kind, down, redo) in &found {
        if !expected.contains(&(*v, *kind, down.clone(), redo.clone())) {
            println!("  not pinned: ({v}, {kind:?}, {down:?}, {redo:?})");
        }
    }
    for e in &expected {
        if !found.contains(e) {
            println!("  pinned, not found: {e:?}");
        }
    }
    assert_eq!(found, expected, "{report}");
    // Every failure is a finding with a reason.
    for m in report.failures() {
        assert!(!m.to_string().trim_end().ends_with(':'), "{m}");
    }
    assert_eq!(
        report.summary(),
        "285 migrations checked: 245 ok, 40 failed"
    );
}
