//! Rolling deploys and rollbacks (issue 15) on a real PostgreSQL: two embedded releases of one
//! service against one database. v2 = v1 + an expand migration (3) + a breaking
//! post-deployment contract migration (4, whose down runs outside a transaction).
#![allow(clippy::result_large_err)] // the core's error is returned once per run

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::common::{
    column, connect_async, end_sleeping_runner, runner_asleep_in_a_no_transaction_step, runtime,
    scalar, Dir, Driver,
};
use migrations_core::plan::{PlanError, Status};
use migrations_core::{
    embed_migrations, DownTarget, DriftKind, Error, Migrations, Migrator, Operation, Phase, Ready,
    Report,
};
use migrations_tests::{test_db, TestDb};

static V1: Migrations = embed_migrations!("tests/fixtures/rolling/v1");
static V2: Migrations = embed_migrations!("tests/fixtures/rolling/v2");

/// `wait_until_migrated` through the driver's API.
fn wait(
    driver: Driver,
    db: &TestDb,
    migrations: &Migrations,
    phase: Phase,
    timeout: Duration,
) -> Result<Ready, Error> {
    let migrator = Migrator::new(migrations).phase(phase);
    match driver {
        Driver::Sync => migrator.wait_until_migrated(&mut db.connect(), timeout),
        Driver::Async => runtime().block_on(async {
            let mut client = connect_async(db.url()).await;
            migrator
                .wait_until_migrated_async(&mut client, timeout)
                .await
        }),
    }
}

fn ran(report: &Report) -> Vec<String> {
    report
        .ran
        .iter()
        .map(|r| format!("{} {}", r.direction.as_str(), r.version))
        .collect()
}

fn columns_of_users(db: &TestDb) -> Vec<Option<String>> {
    column(
        db,
        "SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass AND attnum > 0 \
         AND NOT attisdropped ORDER BY attnum",
    )
}

behaviour!(
    v1_and_v2_through_a_deploy_and_a_rollback,
    |driver: Driver| {
        let db = test_db();
        assert!(V2.get(4).unwrap().post_deploy() && V2.get(4).unwrap().breaking());
        assert!(!V2.get(3).unwrap().post_deploy() && !V2.get(3).unwrap().breaking());

        assert_eq!(ran(&driver.up(&db, &V1).unwrap()), ["up 1", "up 2"]);
        // v2's plain run (what the new release does on start): only the expand.
        assert_eq!(ran(&driver.up(&db, &V2).unwrap()), ["up 3"]);
        let status: Vec<(i64, Status)> = driver
            .status(&db, &V2)
            .iter()
            .map(|l| (l.version, l.status))
            .collect();
        assert_eq!(
            status,
            [
                (1, Status::Applied),
                (2, Status::Applied),
                (3, Status::Applied),
                (4, Status::PendingPost)
            ]
        );
        // v1 still starts during the rollout: a future row that is not breaking is a warning.
        let v1 = driver.up(&db, &V1).unwrap();
        assert!(v1.ran.is_empty());
        assert_eq!(v1.warnings[0].kind, DriftKind::Future);
        // The replicas' gate opens for v2's pre phase, not for all of it.
        wait(driver, &db, &V2, Phase::Pre, Duration::ZERO).unwrap();
        let Err(Error::WaitTimeout { pending, .. }) =
            wait(driver, &db, &V2, Phase::All, Duration::from_millis(300))
        else {
            panic!("waiting for the post phase must time out");
        };
        assert_eq!(pending, [(4, "drop_legacy".to_owned())]);

        // The post-deploy step.
        let post = driver
            .execute(&db, &V2, &Operation::Up { to: None }, |m| {
                m.phase(Phase::Post)
            })
            .unwrap();
        assert_eq!(ran(&post), ["up 4"]);
        assert_eq!(
            columns_of_users(&db),
            ["id", "name", "email"].map(|c| Some(c.to_owned()))
        );
        wait(driver, &db, &V2, Phase::All, Duration::ZERO).unwrap();

        // v1 now refuses to start, with the floor's own error, and so does its `wait`.
        let err = driver.up(&db, &V1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the database has breaking migration 4 drop_legacy, newer than the migrations this \
         program carries: deploy a version that has it"
        );
        assert!(matches!(
            err,
            Error::Plan(PlanError::Incompatible { version: 4, .. })
        ));
        let started = Instant::now();
        let err = wait(driver, &db, &V1, Phase::Pre, Duration::from_secs(30)).unwrap_err();
        assert!(
            matches!(err, Error::Plan(PlanError::Incompatible { .. })),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "drift must not wait"
        );

        // The rollback: v1 has no files for 3 and 4. Refused without stored downs, naming the flag.
        let back = Operation::Down(DownTarget::To(2));
        let err = driver.execute(&db, &V1, &back, |m| m).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Plan(PlanError::StoredDownNotAllowed { version: 4, .. })
            ),
            "{err}"
        );
        let reverted = driver
            .execute(&db, &V1, &back, |m| m.stored_downs(true))
            .unwrap();
        assert_eq!(ran(&reverted), ["down 4", "down 3"]);
        assert!(
            reverted.ran[0].no_transaction,
            "4's stored down runs outside a transaction"
        );
        assert_eq!(
            columns_of_users(&db),
            ["id", "name", "legacy"].map(|c| Some(c.to_owned()))
        );
        assert_eq!(
            column(
                &db,
                "SELECT version || ' ' || event || ' ' || detail FROM migrations_history_audit \
             WHERE detail = 'stored down' ORDER BY id"
            ),
            ["4 down stored down", "3 down stored down"].map(|c| Some(c.to_owned()))
        );
        // And v1 starts, warm.
        assert!(driver.up(&db, &V1).unwrap().ran.is_empty());
        assert!(driver.up(&db, &V1).unwrap().up_to_date_fast);
    }
);

behaviour!(
    wait_returns_when_a_concurrent_runner_finishes,
    |driver: Driver| {
        let db = test_db();
        // Nothing applied, no history table: a replica that starts first waits.
        let Err(Error::WaitTimeout {
            pending, waited, ..
        }) = wait(driver, &db, &V2, Phase::Pre, Duration::from_millis(400))
        else {
            panic!("must time out");
        };
        assert_eq!(pending.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(waited >= Duration::from_millis(400));
        let url = db.url().to_owned();
        let runner = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            Migrator::new(&V2).run(&mut client).unwrap()
        });
        let started = Instant::now();
        let ready = wait(driver, &db, &V2, Phase::Pre, Duration::from_secs(60)).unwrap();
        assert_eq!(ran(&runner.join().unwrap()), ["up 1", "up 2", "up 3"]);
        assert!(ready.checks > 1 && !ready.up_to_date_fast);
        assert!(started.elapsed() >= Duration::from_millis(700));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
);

/// `wait` works with a role that can only read the history: it takes no lock and writes nothing.
#[test]
fn wait_needs_only_read_access() {
    let db = test_db();
    let mut owner = db.connect();
    Migrator::new(&V2).run(&mut owner).unwrap();
    let role = format!("reader_{}", std::process::id());
    owner
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'pw'; GRANT SELECT ON migrations_history TO {role}; \
             GRANT USAGE ON SCHEMA public TO {role}"
        ))
        .unwrap();
    let mut config: postgres::Config = db.url().parse().unwrap();
    config.user(&role).password("pw");
    let mut reader = config.connect(postgres::NoTls).unwrap();
    let ready = Migrator::new(&V2)
        .wait_until_migrated(&mut reader, Duration::from_secs(5))
        .unwrap();
    // Every migration of the pre phase applied, but the chain digest covers the post one too:
    // the history is read.
    assert!(!ready.up_to_date_fast);
    owner
        .batch_execute(&format!("REVOKE ALL ON migrations_history FROM {role}"))
        .unwrap();
    let err = Migrator::new(&V2)
        .wait_until_migrated(&mut reader, Duration::from_secs(5))
        .unwrap_err();
    // Without read access: the server's refusal (insufficient_privilege), not a timeout.
    match err {
        Error::Db { source, .. } => assert_eq!(source.code.as_deref(), Some("42501")),
        other => panic!("{other}"),
    }
}

/// The format-1 layout, as binaries before format 2 created it.
fn format_1_history(db: &TestDb, versions: &[&migrations_core::Migration]) {
    let mut client = db.connect();
    client
        .batch_execute(
            "CREATE TABLE public.migrations_history (version bigint PRIMARY KEY, \
             version_digits text NOT NULL, name text NOT NULL, checksum text NOT NULL, \
             no_transaction boolean NOT NULL, state text NOT NULL CHECK (state IN ('running', \
             'applied', 'failed')), applied_at timestamptz NOT NULL DEFAULT now(), execution_ms \
             bigint, applied_by text NOT NULL DEFAULT current_user, statements_done integer, \
             statements_total integer, error text, invalid_indexes text[] NOT NULL DEFAULT '{}');\
             COMMENT ON TABLE public.migrations_history IS 'migrations history, format 1';\
             CREATE TABLE public.migrations_history_audit (id bigint GENERATED ALWAYS AS \
             IDENTITY PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), by_user text NOT NULL \
             DEFAULT current_user, event text NOT NULL, version bigint, name text, checksum \
             text, detail text);",
        )
        .unwrap();
    for m in versions {
        client.batch_execute(m.up().sql()).unwrap();
        client
            .execute(
                "INSERT INTO public.migrations_history (version, version_digits, name, checksum, \
                 no_transaction, state, execution_ms) VALUES ($1, $2, $3, $4, false, 'applied', 1)",
                &[&m.version(), &m.version_digits(), &m.name(), &m.checksum()],
            )
            .unwrap();
    }
}

fn format_of(db: &TestDb) -> Option<String> {
    scalar(
        db,
        "SELECT obj_description('public.migrations_history'::regclass, 'pg_class')",
    )
}

behaviour!(
    a_format_1_history_is_read_then_upgraded,
    |driver: Driver| {
        let db = test_db();
        format_1_history(&db, &[V1.get(1).unwrap(), V1.get(2).unwrap()]);
        // Read as it is, without the lock: status and wait.
        let status: Vec<Status> = driver.status(&db, &V1).iter().map(|l| l.status).collect();
        assert_eq!(status, [Status::Applied, Status::Applied]);
        wait(driver, &db, &V1, Phase::Pre, Duration::ZERO).unwrap();
        assert_eq!(
            format_of(&db).as_deref(),
            Some("migrations history, format 1")
        );

        // The next run upgrades it under the lock, keeps its rows, and audits the upgrade.
        assert_eq!(ran(&driver.up(&db, &V2).unwrap()), ["up 3"]);
        assert_eq!(
            format_of(&db).as_deref(),
            Some("migrations history, format 4")
        );
        assert_eq!(
            column(
                &db,
                "SELECT version || ' ' || breaking || ' ' || (down_sql IS NOT NULL) || ' ' || \
             coalesce(down_checksum, '-') FROM migrations_history ORDER BY version"
            ),
            [
                "1 false false -".to_owned(),
                "2 false false -".to_owned(),
                format!(
                    "3 false true {}",
                    V2.get(3).unwrap().down().unwrap().checksum()
                ),
            ]
            .map(Some)
        );
        assert_eq!(
            column(
                &db,
                "SELECT detail FROM migrations_history_audit WHERE event = 'history-upgrade'"
            ),
            [Some("history format 1 upgraded to 4".to_owned())]
        );
        // Rows applied before stored downs existed have none: a revert by stored downs names them.
        let only_users = Dir::new(&[
            ("1_users.up.sql", V1.get(1).unwrap().up().sql()),
            ("1_users.down.sql", V1.get(1).unwrap().down().unwrap().sql()),
        ]);
        let err = driver
            .execute(
                &db,
                &only_users.load(),
                &Operation::Down(DownTarget::To(1)),
                |m| m.stored_downs(true),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot revert with stored downs: 2 legacy has no down script stored in the database \
         (applied before stored downs existed, or without a down file); revert it with a \
         release that has its files"
        );
    }
);

/// Two runners meet a format-1 history at once: the lock makes them take turns, the second
/// finds it upgraded, and exactly one upgrade is recorded.
#[test]
fn two_runners_upgrade_a_format_1_history_once() {
    let db = test_db();
    format_1_history(&db, &[V1.get(1).unwrap()]);
    let barrier = Arc::new(Barrier::new(2));
    let runners: Vec<_> = (0..2)
        .map(|_| {
            let url = db.url().to_owned();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                barrier.wait();
                Migrator::new(&V2).run(&mut client).unwrap()
            })
        })
        .collect();
    let mut applied: Vec<i64> = runners
        .into_iter()
        .flat_map(|r| r.join().unwrap().ran.into_iter().map(|r| r.version))
        .collect();
    applied.sort();
    assert_eq!(applied, [2, 3]);
    assert_eq!(
        format_of(&db).as_deref(),
        Some("migrations history, format 4")
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM migrations_history_audit WHERE event = 'history-upgrade'"
        )
        .as_deref(),
        Some("1")
    );
}

/// The offline script leaves post-deployment migrations out unless asked, and stores downs as
/// the runner does.
#[test]
fn the_offline_script_knows_the_phases() {
    let names = migrations_core::Names::default();
    let range = migrations_core::OfflineRange {
        from: None,
        to: None,
        direction: migrations_core::plan::Direction::Up,
    };
    let pre = migrations_core::offline_script(&V2, &names, range).unwrap();
    assert!(pre.contains("-- up 3 email") && !pre.contains("-- up 4 drop_legacy"));
    assert!(pre.contains("down_sql"));
    let all = migrations_core::offline_script_with(&V2, &names, range, Phase::All).unwrap();
    assert!(all.contains("-- up 4 drop_legacy"));
}

behaviour!(
    wait_tells_a_running_runner_from_a_dead_one,
    |driver: Driver| {
        let db = test_db();
        let (m, runner) = runner_asleep_in_a_no_transaction_step(&db);
        // Alive, holding the lock, at its second statement: waiting is right.
        let pending = match wait(driver, &db, &m, Phase::Pre, Duration::from_millis(300)) {
            Err(Error::WaitTimeout { pending, .. }) => pending,
            other => panic!("must wait for a live runner: {other:?}"),
        };
        assert_eq!(pending.iter().map(|p| p.0).collect::<Vec<_>>(), [2]);

        // Its backend dies (a crash, a cut network): the row stays `running`, the lock is gone.
        end_sleeping_runner(&db);
        runner.join().unwrap().unwrap_err();
        let started = Instant::now();
        let err = wait(driver, &db, &m, Phase::Pre, Duration::from_secs(30)).unwrap_err();
        // At once, not after the timeout: no runner will ever finish it.
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(err.is_drift(), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(
                "the runner stopped (killed, crashed or lost its connection) during statement \
                 2 of 2"
            ) && text.contains("migrations repair"),
            "{text}"
        );
        // `wait` wrote nothing: the next runner records the failure, as it always did.
        assert_eq!(
            scalar(
                &db,
                "SELECT state FROM migrations_history WHERE version = 2"
            )
            .as_deref(),
            Some("running")
        );
    }
);

/// A timed-out wait names the pending migrations as their files spell their versions, as
/// every other message does.
#[test]
fn a_wait_timeout_spells_versions_as_the_files_do() {
    let db = test_db();
    let d = Dir::new(&[
        ("0001_users.up.sql", "CREATE TABLE users (id int);\n"),
        (
            "2025-08-01-000015_posts.up.sql",
            "CREATE TABLE posts (id int);\n",
        ),
    ]);
    let m = d.load();
    let err = Migrator::new(&m)
        .wait_until_migrated(&mut db.connect(), Duration::from_millis(200))
        .unwrap_err();
    let Error::WaitTimeout { pending, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(
        pending.iter().map(|p| p.0).collect::<Vec<_>>(),
        [1, 20250801000015]
    );
    assert!(
        err.to_string()
            .contains("still pending: 0001 users, 2025-08-01-000015 posts;"),
        "{err}"
    );
}
