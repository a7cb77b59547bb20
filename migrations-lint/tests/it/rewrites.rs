//! What `changing-column-type` and `adding-field-with-default` tell the user about a table
//! rewrite, checked against a real PostgreSQL: each migration is linted, then run the way the
//! runner runs a transactional file (one `BEGIN ... COMMIT`), and `pg_relation_filenode` of
//! the table and of the index on the column, before and after, says whether the server
//! rewrote the table or rebuilt the index.

use std::fs;
use std::path::Path;

use migrations_format::load_dir;
use migrations_lint::{lint_directory, Finding, Options, RuleSet};
use migrations_tests::TestDb;

/// What the server did to a table and the index on its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Neither file node changed.
    Nothing,
    /// The index's file node changed, the table's did not.
    IndexRebuilt,
    /// Both changed.
    TableRewritten,
}

/// What a finding's message claims, by the words the user reads.
fn claim(message: &str) -> Seen {
    assert!(
        !message.contains("its current type is not known")
            && !message.contains("unless the session's time zone is UTC"),
        "a message that leaves the answer open: {message}"
    );
    if message.contains(
        "is a catalog change: PostgreSQL neither rewrites the table nor rebuilds its indexes",
    ) {
        Seen::Nothing
    } else if message.contains("keeps the table, but rebuilds the indexes on") {
        Seen::IndexRebuilt
    } else if message.contains("rewrites the table and rebuilds its indexes under ACCESS EXCLUSIVE")
        || message.contains("PostgreSQL rewrites `")
    {
        Seen::TableRewritten
    } else {
        panic!("a message that says nothing clear about a rewrite: {message}")
    }
}

/// Lints the migrations `files` (name, text) of a fresh directory with `rule` alone.
fn lint(files: &[(&str, &str)], rule: &str) -> Vec<Finding> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    let loaded = load_dir(dir.path()).unwrap_or_else(|e| panic!("the migrations load: {e}"));
    let options = Options {
        rules: RuleSet::only(&[rule]).unwrap(),
        ..Options::default()
    };
    let report = lint_directory(&loaded, &options).expect("lint runs");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    report
        .findings
        .into_iter()
        .map(|mut f| {
            f.path = f.path.strip_prefix(dir.path()).unwrap().to_path_buf();
            f
        })
        .collect()
}

/// Runs `sql` as the runner runs a transactional file, and says what happened to table `t`
/// and its index `t_c`.
fn run(client: &mut postgres::Client, sql: &str) -> Seen {
    let nodes = |client: &mut postgres::Client| -> (u32, u32) {
        let row = client
            .query_one(
                "SELECT pg_relation_filenode('t'), pg_relation_filenode('t_c')",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    let before = nodes(client);
    client
        .batch_execute(&format!("BEGIN;\n{sql}\nCOMMIT;"))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let after = nodes(client);
    match (before.0 != after.0, before.1 != after.1) {
        (false, false) => Seen::Nothing,
        (false, true) => Seen::IndexRebuilt,
        (true, true) => Seen::TableRewritten,
        (true, false) => panic!("{sql}: a table rewritten without its index"),
    }
}

/// One case: the column's type as created, the change, and what the server does.
struct Case {
    old: &'static str,
    change: &'static str,
    expected: Seen,
}

const CASES: &[Case] = &[
    // The three metadata-only changes.
    Case {
        old: "varchar(10)",
        change: "ALTER TABLE t ALTER COLUMN c TYPE varchar(20);",
        expected: Seen::Nothing,
    },
    Case {
        old: "varchar(10)",
        change: "ALTER TABLE t ALTER COLUMN c TYPE text;",
        expected: Seen::Nothing,
    },
    Case {
        old: "timestamp",
        change: "SET LOCAL timezone = 'UTC';\nALTER TABLE t ALTER COLUMN c TYPE timestamptz;",
        expected: Seen::IndexRebuilt,
    },
    // And real rewrites.
    Case {
        old: "int",
        change: "ALTER TABLE t ALTER COLUMN c TYPE bigint;",
        expected: Seen::TableRewritten,
    },
    Case {
        old: "text",
        change: "ALTER TABLE t ALTER COLUMN c TYPE int USING c::int;",
        expected: Seen::TableRewritten,
    },
    Case {
        old: "varchar(20)",
        change: "ALTER TABLE t ALTER COLUMN c TYPE varchar(10);",
        expected: Seen::TableRewritten,
    },
    Case {
        old: "text",
        change: "ALTER TABLE t ALTER COLUMN c TYPE varchar(10);",
        expected: Seen::TableRewritten,
    },
    Case {
        old: "timestamp",
        change:
            "SET LOCAL timezone = 'Europe/Berlin';\nALTER TABLE t ALTER COLUMN c TYPE timestamptz;",
        expected: Seen::TableRewritten,
    },
    Case {
        old: "timestamptz",
        change: "SET LOCAL TIME ZONE 'Etc/UTC';\nALTER TABLE t ALTER COLUMN c TYPE timestamp;",
        expected: Seen::IndexRebuilt,
    },
    Case {
        old: "timestamp",
        change: "SET LOCAL timezone = 'UTC';\nALTER TABLE t ALTER COLUMN c TYPE timestamptz(3);",
        expected: Seen::TableRewritten,
    },
    // The other binary-compatible and widening changes the lint knows.
    Case {
        old: "text",
        change: "ALTER TABLE t ALTER COLUMN c TYPE varchar;",
        expected: Seen::Nothing,
    },
    Case {
        old: "varchar(10)",
        change: "ALTER TABLE t ALTER COLUMN c TYPE text USING c::text;",
        expected: Seen::Nothing,
    },
    Case {
        old: "numeric(10,2)",
        change: "ALTER TABLE t ALTER COLUMN c TYPE numeric(12,2);",
        expected: Seen::Nothing,
    },
    Case {
        old: "numeric(10,2)",
        change: "ALTER TABLE t ALTER COLUMN c TYPE numeric(12,3);",
        expected: Seen::TableRewritten,
    },
    Case {
        old: "numeric",
        change: "ALTER TABLE t ALTER COLUMN c TYPE numeric(10,2);",
        expected: Seen::TableRewritten,
    },
    Case {
        old: "timestamp(3)",
        change: "ALTER TABLE t ALTER COLUMN c TYPE timestamp(6);",
        expected: Seen::Nothing,
    },
    Case {
        old: "cidr",
        change: "ALTER TABLE t ALTER COLUMN c TYPE inet;",
        expected: Seen::Nothing,
    },
    Case {
        old: "char(10)",
        change: "ALTER TABLE t ALTER COLUMN c TYPE char(20);",
        expected: Seen::TableRewritten,
    },
    Case {
        old: "char(10)",
        change: "ALTER TABLE t ALTER COLUMN c TYPE text;",
        expected: Seen::TableRewritten,
    },
    Case {
        old: "varchar(10)[]",
        change: "ALTER TABLE t ALTER COLUMN c TYPE varchar(20)[];",
        expected: Seen::TableRewritten,
    },
    Case {
        old: "text",
        change: "ALTER TABLE t ALTER COLUMN c TYPE text COLLATE \"C\";",
        expected: Seen::IndexRebuilt,
    },
    Case {
        old: "varchar(10)",
        change: "ALTER TABLE t ALTER COLUMN c TYPE varchar(20) USING c || 'x';",
        expected: Seen::TableRewritten,
    },
];

#[test]
fn changing_column_type_says_what_the_server_does() {
    let db = TestDb::new();
    let mut client = db.connect();
    for (i, case) in CASES.iter().enumerate() {
        let create = format!(
            "CREATE TABLE t (c {});\nCREATE INDEX t_c ON t (c);\nINSERT INTO t VALUES (NULL);\n",
            case.old
        );
        let findings = lint(
            &[("1_t.up.sql", &create), ("2_change.up.sql", case.change)],
            "changing-column-type",
        );
        let [finding] = findings.as_slice() else {
            panic!("case {i} ({}): {findings:?}", case.change);
        };
        assert_eq!(finding.path, Path::new("2_change.up.sql"));
        assert_eq!(
            claim(&finding.message),
            case.expected,
            "case {i}: {}",
            finding.message
        );
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS t;\n{create}"))
            .unwrap();
        let seen = run(&mut client, case.change);
        assert_eq!(
            seen, case.expected,
            "case {i}: the server, on {} then {}",
            case.old, case.change
        );
    }
}

/// The exact texts a user reads for each kind of change, with the lock and the fix.
#[test]
fn changing_column_type_texts() {
    let create = "CREATE TABLE public.t (v varchar(10), ts timestamp, n int);\n";
    let findings = lint(
        &[
            ("1_t.up.sql", create),
            (
                "2_change.up.sql",
                "ALTER TABLE t ALTER COLUMN v TYPE varchar(20), ALTER COLUMN n TYPE bigint;\n\
                 ALTER TABLE t ALTER COLUMN ts TYPE timestamptz;\n\
                 ALTER TABLE t ALTER COLUMN gone TYPE text;\n\
                 SET LOCAL timezone = 'UTC';\n\
                 ALTER TABLE t ALTER COLUMN ts TYPE timestamp;\n",
            ),
        ],
        "changing-column-type",
    );
    let texts: Vec<(String, &str, &str)> = findings
        .iter()
        .map(|f| (f.to_string(), f.lock.as_str(), f.fix.as_str()))
        .collect();
    let rule_fix = "add a column of the new type, write both, backfill in batches, move readers \
                    over, and drop the old column in a later release";
    let rewrite_lock =
        "ACCESS EXCLUSIVE on the table while it is rewritten and its indexes rebuilt";
    assert_eq!(
        texts,
        [
            (
                "2_change.up.sql:1:30: changing-column-type: changing `v` of `t` from character \
                 varying(10) to character varying(20) is a catalog change: PostgreSQL neither \
                 rewrites the table nor rebuilds its indexes, but waits for ACCESS EXCLUSIVE on \
                 `t` to make it; clients that read the column may also break on the new type"
                    .to_owned(),
                "ACCESS EXCLUSIVE on `t`, for a moment (no rewrite, no index rebuilt)",
                "nothing to rewrite: keep the runner's lock_timeout (it bounds the wait for the \
                 lock), make sure clients handle the new type, and say so with \
                 `-- migrations:lint-ignore changing-column-type`",
            ),
            (
                "2_change.up.sql:1:63: changing-column-type: changing `n` of `t` from integer to \
                 bigint rewrites the table and rebuilds its indexes under ACCESS EXCLUSIVE: reads \
                 and writes on `t` wait until it is done; clients that read the column may also \
                 break on the new type"
                    .to_owned(),
                rewrite_lock,
                rule_fix,
            ),
            (
                "2_change.up.sql:2:31: changing-column-type: changing `ts` of `t` from timestamp \
                 without time zone to timestamp with time zone rewrites the table and rebuilds \
                 its indexes under ACCESS EXCLUSIVE unless the session's time zone is UTC, which \
                 this file does not set (the server's `timezone` decides); clients that read the \
                 column may also break on the new type"
                    .to_owned(),
                "ACCESS EXCLUSIVE on `t`: while it is rewritten, unless the time zone is UTC \
                 (then while the indexes on `ts` are rebuilt)",
                "`SET LOCAL timezone = 'UTC'` before the statement, if the stored values are \
                 meant as UTC: PostgreSQL 12+ then keeps the table and only rebuilds the \
                 column's indexes; otherwise add a column of the new type and backfill it",
            ),
            (
                "2_change.up.sql:3:33: changing-column-type: changing `gone` of `t` to text: its \
                 current type is not known (no migration before this statement creates the \
                 column with its type), so neither is whether the table is rewritten: from \
                 character varying (of any length) it is a catalog change; from any other type \
                 PostgreSQL rewrites the table and rebuilds its indexes under ACCESS EXCLUSIVE; \
                 clients that read the column may also break on the new type"
                    .to_owned(),
                "ACCESS EXCLUSIVE on `t`: while it is rewritten, unless the change is \
                 binary-compatible",
                rule_fix,
            ),
            (
                "2_change.up.sql:5:31: changing-column-type: changing `ts` of `t` from timestamp \
                 with time zone to timestamp without time zone under time zone 'UTC' keeps the \
                 table, but rebuilds the indexes on `ts` under ACCESS EXCLUSIVE on `t`: reads and \
                 writes wait until they are built; clients that read the column may also break \
                 on the new type"
                    .to_owned(),
                "ACCESS EXCLUSIVE on `t` while the indexes on `ts` are rebuilt (the table is not \
                 rewritten)",
                "if `ts` has no index, or `t` is small, nothing to do but say so with \
                 `-- migrations:lint-ignore changing-column-type`; otherwise add a column of the \
                 new type, backfill it in batches, index it CONCURRENTLY and move readers over",
            ),
        ]
    );
}

/// A down runs on the schema its up left; the next up does not see what the down did.
#[test]
fn column_types_follow_ups_and_downs() {
    let findings = lint(
        &[
            ("1_t.up.sql", "CREATE TABLE t (v varchar(10));"),
            ("1_t.down.sql", "DROP TABLE t;"),
            ("2_wider.up.sql", "ALTER TABLE t ALTER COLUMN v TYPE varchar(20);"),
            ("2_wider.down.sql", "ALTER TABLE t ALTER COLUMN v TYPE varchar(10);"),
            ("3_text.up.sql", "ALTER TABLE t RENAME COLUMN v TO w;\nALTER TABLE t ALTER COLUMN w TYPE varchar(15);"),
            ("3_text.down.sql", "ALTER TABLE t RENAME COLUMN w TO v;"),
        ],
        "changing-column-type",
    );
    let got: Vec<(String, Seen)> = findings
        .iter()
        .map(|f| (f.path.display().to_string(), claim(&f.message)))
        .collect();
    assert_eq!(
        got,
        [
            ("2_wider.up.sql".to_owned(), Seen::Nothing),
            ("2_wider.down.sql".to_owned(), Seen::TableRewritten), // 20 -> 10
            ("3_text.up.sql".to_owned(), Seen::TableRewritten),    // 20 -> 15, renamed
        ]
    );
}

#[test]
fn adding_field_with_default_names_what_rewrites_the_table() {
    let db = TestDb::new();
    let mut client = db.connect();
    let create = "CREATE TABLE t (c int);\nCREATE INDEX t_c ON t (c);\nINSERT INTO t VALUES (1);\n";
    let cases: &[(&str, Option<&str>)] = &[
        (
            "ALTER TABLE t ADD COLUMN u text DEFAULT md5(random()::text);",
            Some(
                "2_add.up.sql:1:41: adding-field-with-default: the DEFAULT `md5(random()::text)` \
                 of new column `u` is volatile, or not known not to be (only constants and a list \
                 of built-in functions without arguments are): PostgreSQL rewrites `t` under \
                 ACCESS EXCLUSIVE to store it in every existing row: reads and writes wait until \
                 it is done; a non-volatile DEFAULT is stored once, without a rewrite",
            ),
        ),
        (
            "ALTER TABLE t ADD COLUMN g int GENERATED ALWAYS AS (c * 2) STORED;",
            Some(
                "2_add.up.sql:1:32: adding-field-with-default: new column `g` is a stored \
                 generated column: its expression is computed for each existing row, and \
                 PostgreSQL rewrites `t` under ACCESS EXCLUSIVE to store it in every existing \
                 row: reads and writes wait until it is done",
            ),
        ),
        (
            "ALTER TABLE t ADD COLUMN i bigint GENERATED BY DEFAULT AS IDENTITY;",
            Some(
                "2_add.up.sql:1:35: adding-field-with-default: new column `i` is an identity \
                 column: each existing row takes a value from its sequence, and PostgreSQL \
                 rewrites `t` under ACCESS EXCLUSIVE to store it in every existing row: reads \
                 and writes wait until it is done",
            ),
        ),
        ("ALTER TABLE t ADD COLUMN k int DEFAULT 0;", None),
        (
            "ALTER TABLE t ADD COLUMN n timestamptz DEFAULT now();",
            None,
        ),
    ];
    for (add, expected) in cases {
        let findings = lint(
            &[("1_t.up.sql", create), ("2_add.up.sql", add)],
            "adding-field-with-default",
        );
        let got: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, expected, "{add}");
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS t;\n{create}"))
            .unwrap();
        let seen = run(&mut client, add);
        let rewrites = if expected.is_empty() {
            Seen::Nothing
        } else {
            Seen::TableRewritten
        };
        assert_eq!(seen, rewrites, "the server, on {add}");
        if let Some(message) = findings.first() {
            assert_eq!(claim(&message.message), Seen::TableRewritten);
        }
    }
}
