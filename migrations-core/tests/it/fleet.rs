//! The fleet API (issue 22 item 4): what a service that keeps its own tenant registry calls,
//! async and blocking, on a real server.

use std::cell::RefCell;
use std::time::Duration;

use migrations_core::connect::ConnectOptions;
use migrations_core::fleet::{
    list_tenants, Action, Fleet, FleetError, Progress, Target, TargetState,
};
use migrations_core::{Error, Operation};
use migrations_tests::test_db;

use crate::common::{runtime, Dir};

fn database(name: &str, url: &str) -> Target {
    Target::database(
        name,
        ConnectOptions {
            url: Some(url.to_owned()),
            connect_timeout: Duration::ZERO,
            ..ConnectOptions::default()
        },
    )
}

const UP: Action = Action::Run(Operation::Up { to: None });

#[test]
fn a_service_migrates_its_tenants_and_databases_async_with_the_bound_and_a_report() {
    let (registry_db, other_db) = (test_db(), test_db());
    registry_db
        .connect()
        .batch_execute(
            "create table tenants (schema_name text);
             insert into tenants values ('acme'), ('globex'), ('initech');",
        )
        .unwrap();
    let dir = Dir::new(&[
        ("1_items.up.sql", "create table items (id int);\n"),
        (
            "2_grant.up.sql",
            "comment on table ${tenant}.items is 'tenant ${tenant}';\n",
        ),
    ]);
    let migrations = dir.load();
    let registry = database("main", registry_db.url());
    let seen = RefCell::new(Vec::<Progress>::new());
    let report = runtime().block_on(async {
        let tenants = list_tenants(&registry, "select schema_name from tenants order by 1")
            .await
            .unwrap();
        assert_eq!(tenants, ["acme", "globex", "initech"]);
        let targets: Vec<Target> = tenants.iter().map(|t| registry.tenant(t)).collect();
        Fleet::new(&migrations, targets)
            .jobs(2)
            .on_progress(|p, _| seen.borrow_mut().push(*p))
            .run_async(&UP)
            .await
    });
    assert!(report.all_ok());
    assert_eq!(report.count(TargetState::Migrated), 3);
    assert_eq!(report.peak_connections, 2);
    assert_eq!(report.targets[1].name, "main/globex");
    assert_eq!(report.targets[1].tenant.as_deref(), Some("globex"));
    assert_eq!(report.targets[1].applied.len(), 2);
    // Progress: a start and an end per target, the last with every target done.
    let seen = seen.into_inner();
    assert_eq!(seen.len(), 6);
    assert_eq!(seen.last().unwrap().ok, 3);
    assert!(seen.iter().all(|p| p.running <= 2));
    // `${tenant}` and the history: in each tenant's schema.
    let comment = crate::common::scalar(
        &registry_db,
        "select obj_description('globex.items'::regclass)",
    );
    assert_eq!(comment.as_deref(), Some("tenant globex"));

    // The blocking API, for status over a mix of a tenant and a database without any history.
    let targets = vec![registry.tenant("acme"), database("other", other_db.url())];
    let status = Fleet::new(&migrations, targets)
        .run(&Action::Status)
        .unwrap();
    assert_eq!(status.targets[0].state, TargetState::Current);
    assert_eq!(status.targets[1].state, TargetState::Pending);
    assert_eq!(status.targets[1].pending.len(), 2);
}

#[test]
fn fail_fast_skips_the_rest_and_the_blocking_api_refuses_a_runtime() {
    let db = test_db();
    let dir = Dir::new(&[("1_t.up.sql", "create table t (id int);\n")]);
    let migrations = dir.load();
    let targets = vec![
        database("down", "postgres://app@127.0.0.1:1/app"),
        database("up", db.url()),
    ];
    let report = Fleet::new(&migrations, targets.clone())
        .fail_fast(true)
        .run(&UP)
        .unwrap();
    assert_eq!(report.targets[0].state, TargetState::Failed);
    assert!(matches!(report.targets[0].error, Some(Error::Connect(_))));
    assert_eq!(report.targets[1].state, TargetState::Skipped);
    assert_eq!(
        report.targets[1].skipped_because.as_deref(),
        Some("--fail-fast: down failed first")
    );
    assert!(!report.all_ok());

    // Waves without fail-fast: the failure is isolated, the next wave runs.
    let report = Fleet::new(&migrations, targets)
        .wave_size(1)
        .run(&UP)
        .unwrap();
    assert_eq!(report.targets[1].state, TargetState::Migrated);
    assert_eq!(report.targets[1].stage, 2);

    let inside =
        runtime().block_on(async { Fleet::new(&migrations, Vec::new()).run(&UP).unwrap_err() });
    assert!(matches!(inside, FleetError::Runtime(_)));
    assert_eq!(
        inside.to_string(),
        "the blocking fleet API was called inside a Tokio runtime: use the async one"
    );
}

#[test]
fn a_tenants_query_that_lists_no_schema_name_is_refused_with_the_row() {
    let db = test_db();
    let registry = database("main", db.url());
    let err = runtime()
        .block_on(list_tenants(&registry, "select 'a' union all select null"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "listing the tenants of main: the tenants query `select 'a' union all select null`: \
         row 2: NULL (or no column) instead of a schema name; hint: the query must return one \
         schema name per row"
    );
    let err = runtime()
        .block_on(list_tenants(&registry, "select * from no_such_table"))
        .unwrap_err();
    let FleetError::Tenants { source, .. } = err else {
        panic!("{err}")
    };
    let Error::Db { source, .. } = *source else {
        panic!("{source}")
    };
    assert_eq!(source.code.as_deref(), Some("42P01"));
}
