//! Security of the `migrations` binary, against a real PostgreSQL:
//!
//! - schema, table and migration names with quotes, spaces, `;`, `--` and unicode are
//!   identifiers and literals, never SQL: `--table 'x"; DROP TABLE users; --'` makes a table of
//!   that name, and `users` survives;
//! - a password never appears in any output: every command that connects, with `-v`, in JSON,
//!   on error paths, whether it came in the URL, as a `password=` parameter or in
//!   `PGPASSWORD` (a real scram-sha-256 role); and for every odd shape a user writes (no
//!   `://`, `key=value` with quoted or spaced values, unencoded `@` `:` `/`, percent-encoding,
//!   `?password=`, several hosts, IPv6, the host name inside the password, `PGPASSWORD`,
//!   `.pgpass`, a URL given without `--database-url`): the error describes the shape and shows
//!   no part of the password, in text, JSON and `-v`;
//! - TLS through the CLI's URL: `sslmode=disable|require|verify-full` (with `sslrootcert`)
//!   against the server with a CA and server certificate made by the harness (`rcgen`); `pg_hba.conf`
//!   lines `hostssl`/`hostnossl` prove which connections really were encrypted;
//! - a role that is not a superuser and owns only its schema runs every command that needs
//!   nothing more (with `--schema` its schema); `test` needs `CREATEDB`, and says so.
//!
//! Every test here uses this process's own throwaway cluster (`own_server`, started also when
//! `DATABASE_URL` is set, so nothing is skipped), which the password, TLS and role tests
//! change: extra `pg_hba.conf` lines for their roles only, and `ssl = on`; other connections
//! keep working as before.

use std::fs;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use migrations_tests::{own_server, LocalServer, TestDb, TestTls};

use crate::common::{Project, Run};

const PW_ROLE: &str = "mt_sec_pw";
const TLS_ROLE: &str = "mt_sec_tls";
const PLAIN_ROLE: &str = "mt_sec_plain";
const OWNER_ROLE: &str = "mt_sec_owner";
/// Gets in only with TLS and its password (`SECRET`); may create databases (`test`).
const KV_ROLE: &str = "mt_sec_kv";
/// The password, as set on the role. Characters that need percent-encoding in a URL, so both
/// spellings are checked.
const SECRET: &str = "S3cr3t-p@ss:w/rd%";
const SECRET_ENCODED: &str = "S3cr3t-p%40ss%3Aw%2Frd%25";

/// What this module checks of every run's output.
trait NoSecret {
    /// No spelling of the password anywhere in the output.
    fn assert_no_secret(&self);
}

impl NoSecret for Run {
    fn assert_no_secret(&self) {
        let all = self.all();
        for needle in [SECRET, SECRET_ENCODED, "S3cr3t"] {
            assert!(
                !all.contains(needle),
                "{:?} shows the password ({needle}):\n{all}",
                self.args
            );
        }
    }
}

fn scalar(
    client: &mut postgres::Client,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> i64 {
    client.query_one(sql, params).unwrap().get(0)
}

fn relation_exists(client: &mut postgres::Client, schema: &str, name: &str) -> bool {
    scalar(
        client,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2",
        &[&schema, &name],
    ) == 1
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

// -------------------------------------------------------------------------------------------
// 1. Names are identifiers, never SQL

/// Migrations whose names, index names and contents hold quotes, `;`, `--` and unicode.
fn odd_project() -> Project {
    Project::new(&[
        (
            "0001_users.up.sql",
            "CREATE TABLE users (id int PRIMARY KEY);\nINSERT INTO users VALUES (1), (2);\n",
        ),
        ("0001_users.down.sql", "DROP TABLE users;\n"),
        (
            "0002_o'brien \"quoted\" ü; DROP TABLE users; --.up.sql",
            "CREATE TABLE notes (id int, body text);\n",
        ),
        (
            "0002_o'brien \"quoted\" ü; DROP TABLE users; --.down.sql",
            "DROP TABLE notes;\n",
        ),
        (
            "0003_index.up.sql",
            "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS \"weird \"\"idx\"\" ü\" ON notes (id);\n",
        ),
        (
            "0003_index.down.sql",
            "-- migrations:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS \"weird \"\"idx\"\" ü\";\n",
        ),
    ])
}

#[test]
fn schema_and_table_names_are_identifiers_never_sql() {
    let odd_schema = "we\"ird schema ü'; DROP TABLE users; --";
    for (schema, table) in [
        ("public", "x\"; DROP TABLE users; --"),
        (odd_schema, "hist'ory \"tbl\" 日本"),
    ] {
        let db = TestDb::on_own_server();
        let p = odd_project();
        let mut client = db.connect();
        if schema != "public" {
            client
                .batch_execute(&format!("CREATE SCHEMA {}", quote_ident(schema)))
                .unwrap();
        }
        let run = |args: &[&str]| {
            let mut full = vec!["--schema", schema, "--table", table];
            full.extend_from_slice(args);
            p.with_url(db.url(), &full)
        };
        run(&["up"]).ok();
        assert!(
            relation_exists(&mut client, schema, table),
            "history table {table:?} in {schema:?}"
        );
        assert!(relation_exists(
            &mut client,
            schema,
            &format!("{table}_audit")
        ));
        assert_eq!(
            scalar(&mut client, "SELECT count(*) FROM users", &[]),
            2,
            "users survives"
        );
        let recorded: String = client
            .query_one(
                &format!(
                    "SELECT name FROM {}.{} WHERE version = 2",
                    quote_ident(schema),
                    quote_ident(table)
                ),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(recorded, "o'brien \"quoted\" ü; DROP TABLE users; --");
        assert!(relation_exists(&mut client, "public", "weird \"idx\" ü"));

        let status = run(&["status"]);
        status.ok();
        assert!(
            status
                .stdout
                .contains("o'brien \"quoted\" ü; DROP TABLE users; --"),
            "{}",
            status.stdout
        );
        run(&["history"]).ok();
        run(&["-v", "history"]).ok();
        // The version as the file writes it (issue 17 item 6).
        assert!(run(&["current"]).ok().stdout.starts_with("0003 index"));
        run(&["repair"]).ok();
        run(&["--format", "json", "status"]).ok();
        run(&["lock"]).ok();
        run(&["verify", "--online"]).ok();
        run(&["redo"]).ok();
        run(&["down", "--to", "1"]).ok();
        assert_eq!(
            scalar(&mut client, "SELECT count(*) FROM users", &[]),
            2,
            "users survives"
        );
        assert!(!relation_exists(&mut client, "public", "notes"));
        run(&["up"]).ok();
        run(&["down", "--all"]).ok();
        assert!(!relation_exists(&mut client, "public", "users"));
        assert!(
            relation_exists(&mut client, schema, table),
            "the history stays"
        );
    }
}

#[test]
fn search_path_is_a_value_never_sql() {
    let db = TestDb::on_own_server();
    let p = Project::new(&[
        ("0001_t.up.sql", "CREATE TABLE t (id int);\n"),
        ("0001_t.down.sql", "DROP TABLE t;\n"),
    ]);
    let mut client = db.connect();
    client
        .batch_execute("CREATE TABLE users (id int); CREATE SCHEMA \"odd ü\"\"s\"")
        .unwrap();
    // A list with a quoted, odd schema name works as a search_path.
    p.with_url(db.url(), &["--search-path", "\"odd ü\"\"s\", public", "up"])
        .ok();
    assert!(relation_exists(&mut client, "odd ü\"s", "t"));
    p.with_url(
        db.url(),
        &["--search-path", "\"odd ü\"\"s\", public", "down"],
    )
    .ok();
    // An attempt at injection is refused by the server as a search_path value.
    let bad = p.with_url(
        db.url(),
        &["--search-path", "public; DROP TABLE users; --", "up"],
    );
    assert_eq!(bad.code, 1, "{}", bad.all());
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
    assert!(
        relation_exists(&mut client, "public", "users"),
        "users survives"
    );
}

// -------------------------------------------------------------------------------------------
// The harness cluster, reconfigured once per process: roles, pg_hba.conf lines, TLS.

struct Setup {
    server: &'static LocalServer,
    tls: &'static TestTls,
}

/// The process's own cluster (also when `DATABASE_URL` is set), configured once.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let server = own_server();
        // Off the test thread, as the harness does (no runtime here anyway).
        std::thread::scope(|s| s.spawn(|| configure(server)).join().unwrap())
    })
}

fn configure(server: &'static LocalServer) -> Setup {
    let mut admin = postgres::Client::connect(server.admin_url(), postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "SET password_encryption = 'scram-sha-256';
             CREATE ROLE {PW_ROLE} LOGIN PASSWORD '{SECRET}';
             CREATE ROLE {TLS_ROLE} LOGIN;
             CREATE ROLE {PLAIN_ROLE} LOGIN;
             CREATE ROLE {OWNER_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
             CREATE ROLE {KV_ROLE} LOGIN CREATEDB PASSWORD '{SECRET}';"
        ))
        .unwrap();
    let mut hba = String::new();
    for addr in ["127.0.0.1/32", "::1/128"] {
        hba.push_str(&format!(
            "host all {PW_ROLE} {addr} scram-sha-256\n\
             hostssl all {TLS_ROLE} {addr} trust\n\
             hostnossl all {TLS_ROLE} {addr} reject\n\
             hostnossl all {PLAIN_ROLE} {addr} trust\n\
             hostssl all {PLAIN_ROLE} {addr} reject\n\
             hostssl all {KV_ROLE} {addr} scram-sha-256\n\
             hostnossl all {KV_ROLE} {addr} reject\n"
        ));
    }
    hba.push_str(&format!("local all {PW_ROLE} scram-sha-256\n"));
    let hba_file = server.data_dir().join("pg_hba.conf");
    let old = fs::read_to_string(&hba_file).unwrap();
    server.replace_file(&hba_file, format!("{hba}{old}").as_bytes(), 0o600);
    let tls = server.tls();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    // Wait until the reload took effect: the password role is asked for its password.
    let url = format!("postgres://{PW_ROLE}@127.0.0.1:{}/postgres", server.port());
    let deadline = Instant::now() + Duration::from_secs(20);
    while postgres::Client::connect(&url, postgres::NoTls).is_ok() {
        assert!(
            Instant::now() < deadline,
            "pg_hba.conf reload did not take effect"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Setup { server, tls }
}

/// Hands the test database (and its `public` schema) to `role`.
fn give_database(db: &TestDb, role: &str) {
    let mut admin = db.connect_admin();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} OWNER TO {role}",
            quote_ident(db.name())
        ))
        .unwrap();
    db.connect()
        .batch_execute(&format!("ALTER SCHEMA public OWNER TO {role}"))
        .unwrap();
}

fn role_url(server: &LocalServer, host: &str, role: &str, db: &TestDb, params: &str) -> String {
    let mut url = format!("postgres://{role}@{host}:{}/{}", server.port(), db.name());
    if !params.is_empty() {
        url.push('?');
        url.push_str(params);
    }
    url
}

fn simple_project() -> Project {
    Project::new(&[
        ("0001_users.up.sql", "CREATE TABLE users (id int PRIMARY KEY);\n"),
        ("0001_users.down.sql", "DROP TABLE users;\n"),
        ("0002_posts.up.sql", "CREATE TABLE posts (id int, user_id int REFERENCES users);\n"),
        ("0002_posts.down.sql", "DROP TABLE posts;\n"),
        (
            "0003_index.up.sql",
            "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS posts_user ON posts (user_id);\n",
        ),
        (
            "0003_index.down.sql",
            "-- migrations:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS posts_user;\n",
        ),
    ])
}

// -------------------------------------------------------------------------------------------
// 2. Passwords are redacted on every output path

#[test]
fn passwords_never_shown_on_any_output_path() {
    let setup = setup();
    let server = setup.server;
    let db = TestDb::on_own_server();
    give_database(&db, PW_ROLE);
    let p = simple_project();
    let port = server.port();
    let name = db.name();
    let in_userinfo = format!("postgres://{PW_ROLE}:{SECRET_ENCODED}@127.0.0.1:{port}/{name}");
    let in_query =
        format!("postgres://{PW_ROLE}@127.0.0.1:{port}/{name}?password={SECRET_ENCODED}");
    let no_password = format!("postgres://{PW_ROLE}@127.0.0.1:{port}/{name}");

    // Every command that connects, plain, -v and JSON, each way of giving the password.
    let commands: &[&[&str]] = &[
        &["up", "--to", "1"],
        &["-v", "up"],
        &["status"],
        &["-v", "--format", "json", "status"],
        &["current"],
        &["--format", "json", "current"],
        &["history"],
        &["-v", "history"],
        &["lock"],
        &["-v", "verify", "--online"],
        &["--format", "json", "verify", "--online"],
        &["-v", "down"],
        &["redo"],
        &["-v", "--format", "json", "up"],
        &["repair"],
        &["-v", "lock", "--rewrite", "1"],
        &["up", "--dry-run"],
        &["-v", "baseline", "3"],
    ];
    for (way, url, env) in [
        ("url", in_userinfo.as_str(), None),
        ("query", in_query.as_str(), None),
        (
            "PGPASSWORD",
            no_password.as_str(),
            Some(("PGPASSWORD", SECRET)),
        ),
    ] {
        for args in commands {
            let mut full: Vec<&str> = args.to_vec();
            full.extend(["--database-url", url]);
            let run = p.run_with(&full, env.as_slice());
            assert_eq!(run.code, 0, "{way}: {args:?}: {}", run.all());
            run.assert_no_secret();
        }
        // Back to nothing applied for the next way.
        let run = p.run_with(&["down", "--all", "--database-url", url], env.as_slice());
        assert_eq!(run.code, 0, "{way}: {}", run.all());
        let _ = fs::remove_file(p.path().join("migrations/migrations.lock"));
    }

    // Error paths: each must fail, and still not show the password.
    let wrong = format!("postgres://{PW_ROLE}:Wr0ng-{SECRET_ENCODED}@127.0.0.1:{port}/{name}");
    let unknown_db =
        format!("postgres://{PW_ROLE}:{SECRET_ENCODED}@127.0.0.1:{port}/no_such_db_here");
    let refused = format!("postgres://{PW_ROLE}:{SECRET_ENCODED}@127.0.0.1:1/{name}");
    for (url, args, code) in [
        (wrong.as_str(), vec!["status"], 1),
        (wrong.as_str(), vec!["-v", "--format", "json", "up"], 1),
        (unknown_db.as_str(), vec!["-v", "current"], 1),
        (
            refused.as_str(),
            vec!["--format", "json", "history", "--connect-timeout", "0"],
            1,
        ),
        (in_userinfo.as_str(), vec!["test"], 1),
        (
            in_userinfo.as_str(),
            vec!["-v", "--format", "json", "test"],
            1,
        ),
    ] {
        let run = p.with_url(url, &args);
        assert_eq!(run.code, code, "{args:?}: {}", run.all());
        run.assert_no_secret();
    }
    let run = p.run_with(&["-v", "status"], &[("DATABASE_URL", wrong.as_str())]);
    assert_eq!(run.code, 1, "{}", run.all());
    run.assert_no_secret();
    // A migration that fails on the server, and drift.
    p.with_url(&in_userinfo, &["up"]).ok();
    p.with_url(&in_userinfo, &["lock"]).ok();
    p.write("0004_bad.up.sql", "CREATE TABLE t (x no_such_type);\n");
    for args in [vec!["-v", "up"], vec!["--format", "json", "up"]] {
        let run = p.with_url(&in_userinfo, &args);
        assert_eq!(run.code, 1, "{}", run.all());
        run.assert_no_secret();
    }
    fs::remove_file(p.path().join("migrations/0004_bad.up.sql")).unwrap();
    p.write(
        "0001_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    for args in [
        vec!["-v", "up"],
        vec!["--format", "json", "status", "--exit-code"],
        vec!["-v", "verify", "--online"],
    ] {
        let run = p.with_url(&in_userinfo, &args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.all());
        run.assert_no_secret();
    }
}

// -------------------------------------------------------------------------------------------
// 2b. Odd connection strings: every shape a user writes, on every output path

/// The password of the odd shapes below. Never the role's real password: every run fails, on
/// the error paths that quote the most.
const ODD: &str = "Odd5ecr3tQ";

/// The advice that ends every message about a URL of the wrong shape.
const WRITE_IT_AS: &str = "write it as postgres://user@host:5432/dbname (a password follows the \
                           user name after a `:`; percent-encode @ : / ? # % in it) or as \
                           key=value pairs (host=... port=... user=... dbname=...), or use the \
                           PG* variables";

/// The ways to run a command with a connection string: the flag, `--flag=value`, the variable.
fn each_way(p: &Project, conn: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<Run> {
    let mut flag: Vec<&str> = args.to_vec();
    flag.extend(["--database-url", conn]);
    let joined = format!("--database-url={conn}");
    let mut equals: Vec<&str> = args.to_vec();
    equals.push(&joined);
    let mut from_env: Vec<(&str, &str)> = env.to_vec();
    from_env.push(("DATABASE_URL", conn));
    vec![
        p.run_with(&flag, env),
        p.run_with(&equals, env),
        p.run_with(args, &from_env),
    ]
}

/// `run` failed with `code` and one error line (after any `-v` lines) equal to `error`; its
/// JSON document, in JSON mode, carries the same message; no spelling of a password shows.
fn assert_fails_hidden(run: &Run, code: i32, error: &str) {
    let all = run.all();
    assert_eq!(run.code, code, "{:?}:\n{all}", run.args);
    for needle in [ODD, SECRET, SECRET_ENCODED, "S3cr3t", "5ecr3t"] {
        assert!(
            !all.contains(needle),
            "{:?} shows a password ({needle}):\n{all}",
            run.args
        );
    }
    let last = run.stderr.lines().last().unwrap_or_default();
    assert_eq!(last, format!("error: {error}"), "{:?}:\n{all}", run.args);
    assert!(
        run.stderr
            .lines()
            .all(|l| l.starts_with("[debug] ") || l.starts_with("error: ")),
        "{:?}: one error line:\n{}",
        run.args,
        run.stderr
    );
    if run.args.iter().any(|a| a == "json") {
        let doc: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{:?}: not one JSON document ({e}):\n{all}", run.args));
        assert_eq!(doc["error"]["message"], error, "{:?}", run.args);
        assert_eq!(doc["error"]["kind"], "connect", "{:?}", run.args);
        assert_eq!(doc["error"]["exit_code"], code, "{:?}", run.args);
    }
}

/// The `-v` line that shows what the CLI connects to: exactly `shown`, the redacted form.
fn assert_connecting_line(run: &Run, shown: &str) {
    let expected = format!("[debug] connecting (ConnectOptions {{ url: Some({shown:?}), ");
    assert!(
        run.stderr.lines().any(|l| l.starts_with(&expected)),
        "{:?}: no line starting with {expected}\n{}",
        run.args,
        run.stderr
    );
}

const ODD_COMMANDS: &[&[&str]] = &[
    &["-v", "up"],
    &["-v", "--format", "json", "status"],
    &["--format", "json", "history"],
    &["current"],
];

/// Shapes that are not a `postgres://` URL: described, never quoted, whichever way they come
/// (flag, `--flag=value`, `DATABASE_URL`), in text, JSON and `-v`. No server is needed.
#[test]
fn malformed_connection_strings_are_described_never_shown() {
    let p = simple_project();
    let missing = "it does not start with postgres:// or postgresql:// (the `://` after the \
                   scheme is missing or incomplete)";
    let neither = "it is neither a URL starting with postgres:// or postgresql:// nor key=value \
                   pairs (each `key=value`, separated by spaces; a value with spaces in single \
                   quotes)";
    let cases: &[(String, &str, &str)] = &[
        (format!("postgresql//app:{ODD}@db/prod"), missing, "***"),
        (format!("postgres:/app:{ODD}@db/prod"), missing, "***"),
        (format!("postgres:app:{ODD}@db/prod"), missing, "***"),
        (format!("app:{ODD}@db/prod"), neither, "***"),
        (
            format!("//app:{ODD}@db/prod"),
            "it has no scheme (it must start with postgres:// or postgresql://)",
            "***",
        ),
        // Not key=value pairs after all: an unterminated quote, a word without `=`.
        (format!("host=db password='a {ODD}"), neither, "***"),
        (
            format!("host=db password='a\\'b {ODD} c user=app"),
            neither,
            "***",
        ),
        (format!("host = db password = a {ODD}"), neither, "***"),
        (
            format!("mysql://app:{ODD}@db/prod"),
            "its scheme is not postgres:// or postgresql://",
            "mysql://app:***@db/prod",
        ),
    ];
    for (conn, reason, shown) in cases {
        let error = format!("invalid database URL: {reason}: {WRITE_IT_AS}");
        for args in ODD_COMMANDS {
            for run in each_way(&p, conn, args, &[]) {
                assert_fails_hidden(&run, 1, &error);
                if args.contains(&"-v") {
                    assert_connecting_line(&run, shown);
                }
            }
        }
    }
    // Malformed after a good scheme: the reason, never the URL.
    for (conn, error) in [
        (
            format!("postgres://app:{ODD}%zz@db/prod"),
            "invalid database URL: invalid percent-encoding in the password".to_string(),
        ),
        (
            format!("postgres://app@db/prod?sslmode=bogus&password={ODD}"),
            "invalid `sslmode` in the URL \"bogus\": expected disable, prefer, require, \
             verify-ca or verify-full"
                .to_string(),
        ),
        (
            format!("postgres://app:{ODD}/prod"),
            "invalid database URL: invalid value for option `port` (percent-encode @ : / ? # % \
             in the user name and password)"
                .to_string(),
        ),
        (
            format!("host=db user=app password='{ODD}' port=x"),
            "invalid `port` in the connection string \"x\": expected a number from 1 to 65535 \
             (or one per host, separated by commas)"
                .to_string(),
        ),
    ] {
        for args in ODD_COMMANDS {
            for run in each_way(&p, &conn, args, &[("USER", "me")]) {
                assert_fails_hidden(&run, 1, &error);
            }
        }
    }
    // Given as an argument without --database-url: clap quotes it, redacted.
    for (conn, shown) in [
        (
            format!("postgres://app:{ODD}@db/prod"),
            "postgres://app:***@db/prod",
        ),
        (format!("app:{ODD}@db/prod"), "***"),
    ] {
        for args in [
            vec!["up", conn.as_str()],
            vec!["--format", "json", "status", &conn],
        ] {
            let run = p.run_with(&args, &[]);
            assert_eq!(run.code, 2, "{}", run.all());
            assert!(run.stdout.is_empty(), "{}", run.all());
            assert!(
                run.stderr
                    .starts_with(&format!("error: unexpected argument '{shown}' found\n")),
                "{}",
                run.stderr
            );
            assert!(!run.all().contains(ODD), "{}", run.all());
        }
    }
}

/// Well-formed connection strings whose password is wrong, in every odd shape (unencoded `@`
/// and `:`, percent-encoded, a `password` parameter, several hosts, an IPv6 host, the host name
/// inside the password, `PGPASSWORD`, `.pgpass`), against the real server: the error says
/// what to do and shows no password, in text, JSON and `-v`.
#[test]
fn odd_connection_strings_never_show_the_password() {
    let setup = setup();
    let server = setup.server;
    let db = TestDb::on_own_server();
    give_database(&db, PW_ROLE);
    let p = simple_project();
    let port = server.port();
    let name = db.name();
    let at = format!("{PW_ROLE}@127.0.0.1:{port}/{name}");
    let refused = format!(
        "password authentication failed for user \"{PW_ROLE}\" at {at}: check the password \
         (PGPASSWORD, .pgpass or the URL)"
    );
    let plain = format!("postgres://{PW_ROLE}@127.0.0.1:{port}/{name}");
    let pgpass = p.path().join(".pgpass");
    fs::write(
        &pgpass,
        format!("127.0.0.1:{port}:*:{PW_ROLE}:{ODD}-pgpass\n"),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let cases = vec![
        (
            "unencoded @ and : in the password",
            format!("postgres://{PW_ROLE}:{ODD}@x:y/z@127.0.0.1:{port}/{name}"),
            Vec::<(&str, &str)>::new(),
            format!("postgres://{PW_ROLE}:***@127.0.0.1:{port}/{name}"),
        ),
        (
            "percent-encoded",
            format!("postgres://{PW_ROLE}:{ODD}%40%3A%2F%25@127.0.0.1:{port}/{name}"),
            vec![],
            format!("postgres://{PW_ROLE}:***@127.0.0.1:{port}/{name}"),
        ),
        (
            "a password parameter",
            format!("{plain}?password={ODD}&sslmode=disable"),
            vec![],
            format!("{plain}?password=***&sslmode=disable"),
        ),
        (
            "a password parameter, last",
            format!("{plain}?sslmode=disable&password={ODD}"),
            vec![],
            format!("{plain}?sslmode=disable&password=***"),
        ),
        (
            "several hosts, the first down",
            format!("postgres://{PW_ROLE}:{ODD}@127.0.0.1:1,127.0.0.1:{port}/{name}"),
            vec![],
            format!("postgres://{PW_ROLE}:***@127.0.0.1:1,127.0.0.1:{port}/{name}"),
        ),
        (
            "the host name inside the password",
            format!("postgres://{PW_ROLE}:127.0.0.1{ODD}@127.0.0.1:{port}/{name}"),
            vec![],
            format!("postgres://{PW_ROLE}:***@127.0.0.1:{port}/{name}"),
        ),
        (
            "PGPASSWORD",
            plain.clone(),
            vec![("PGPASSWORD", ODD)],
            plain.clone(),
        ),
        (".pgpass", plain.clone(), vec![], plain.clone()),
        (
            "key=value pairs, the password quoted",
            format!(
                "host=127.0.0.1 port={port} user={PW_ROLE} password='a \\'{ODD}' dbname={name}"
            ),
            vec![],
            format!("host=127.0.0.1 port={port} user={PW_ROLE} password=*** dbname={name}"),
        ),
        (
            "key=value pairs, several hosts, the first down",
            format!(
                "password = {ODD} host=127.0.0.1,127.0.0.1 port=1,{port} user={PW_ROLE} \
                 dbname={name}"
            ),
            vec![],
            format!(
                "password = *** host=127.0.0.1,127.0.0.1 port=1,{port} user={PW_ROLE} \
                 dbname={name}"
            ),
        ),
    ];
    for (what, conn, env, shown) in &cases {
        // Shown with a failure (the arguments do not tell the environment).
        eprintln!("case: {what}");
        for args in ODD_COMMANDS {
            for run in each_way(&p, conn, args, env) {
                assert_fails_hidden(&run, 1, &refused);
                if args.contains(&"-v") {
                    assert_connecting_line(&run, shown);
                }
            }
        }
    }
    // An IPv6 host (nothing listens on [::1]:1): refused, or no IPv6 at all; never the password.
    let ipv6 = format!("postgres://{PW_ROLE}:{ODD}@[::1]:1/{name}");
    for args in ODD_COMMANDS {
        let mut args = args.to_vec();
        args.extend(["--connect-timeout", "0"]);
        for run in each_way(&p, &ipv6, &args, &[]) {
            assert_eq!(run.code, 1, "{}", run.all());
            assert!(!run.all().contains(ODD), "{}", run.all());
            assert!(
                run.stderr.contains("error: could not connect to [::1]:1"),
                "{}",
                run.stderr
            );
            if args.contains(&"-v") {
                assert_connecting_line(&run, &format!("postgres://{PW_ROLE}:***@[::1]:1/{name}"));
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// 3. TLS through the CLI

#[test]
fn tls_sslmodes_through_the_cli() {
    let setup = setup();
    let tls = setup.tls;
    let server = setup.server;
    let db = TestDb::on_own_server();
    give_database(&db, TLS_ROLE);
    let p = simple_project();
    let ca = tls.ca.display().to_string();
    let wrong_ca = tls.wrong_ca.display().to_string();
    let url = |host: &str, role: &str, params: &str| role_url(server, host, role, &db, params);

    // The TLS-only role: refused without TLS, served with it.
    let plain = p.with_url(&url("127.0.0.1", TLS_ROLE, "sslmode=disable"), &["status"]);
    assert_eq!(plain.code, 1, "{}", plain.all());
    assert_eq!(plain.stderr.lines().count(), 1, "{}", plain.stderr);
    assert!(
        plain.stderr.contains("no encryption") || plain.stderr.contains("pg_hba.conf"),
        "{}",
        plain.stderr
    );
    p.with_url(&url("127.0.0.1", TLS_ROLE, "sslmode=require"), &["status"])
        .ok();
    let full = format!("sslmode=verify-full&sslrootcert={ca}");
    p.with_url(&url("localhost", TLS_ROLE, &full), &["up"]).ok();
    p.with_url(&url("localhost", TLS_ROLE, &full), &["-v", "history"])
        .ok();
    p.with_url(
        &url(
            "localhost",
            TLS_ROLE,
            &format!("sslmode=verify-ca&sslrootcert={ca}"),
        ),
        &["status"],
    )
    .ok();

    // verify-full checks the host name: the certificate is for localhost only.
    let wrong_host = p.with_url(&url("127.0.0.1", TLS_ROLE, &full), &["status"]);
    assert_eq!(wrong_host.code, 1, "{}", wrong_host.all());
    assert_eq!(
        wrong_host.stderr.lines().count(),
        1,
        "{}",
        wrong_host.stderr
    );
    assert!(
        wrong_host.stderr.contains("verify-full"),
        "{}",
        wrong_host.stderr
    );
    // ... and the CA.
    for mode in ["verify-full", "verify-ca"] {
        let run = p.with_url(
            &url(
                "localhost",
                TLS_ROLE,
                &format!("sslmode={mode}&sslrootcert={wrong_ca}"),
            ),
            &["status"],
        );
        assert_eq!(run.code, 1, "{mode}: {}", run.all());
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    // A CA file that does not exist.
    let run = p.with_url(
        &url(
            "localhost",
            TLS_ROLE,
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        ),
        &["status"],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("/nonexistent/ca.pem"), "{}", run.stderr);

    // The plain-only role: sslmode=disable really is plain, require really is TLS.
    let db = TestDb::on_own_server();
    give_database(&db, PLAIN_ROLE);
    let url = |host: &str, role: &str, params: &str| role_url(server, host, role, &db, params);
    p.with_url(
        &url("127.0.0.1", PLAIN_ROLE, "sslmode=disable"),
        &["status"],
    )
    .ok();
    let tls_run = p.with_url(
        &url("127.0.0.1", PLAIN_ROLE, "sslmode=require"),
        &["status"],
    );
    assert_eq!(tls_run.code, 1, "{}", tls_run.all());
}

/// One resolver for every command: `up` and `test` (whose scratch database is reached with the
/// same settings) take `key=value` pairs and `sslmode=verify-full`, with a role that gets in
/// only over TLS with its password, so every connection of the run, the scratch database's
/// included, really was encrypted and authenticated. The password shows nowhere.
#[test]
fn key_value_strings_and_verify_full_through_up_and_test() {
    let setup = setup();
    let server = setup.server;
    let db = TestDb::on_own_server();
    give_database(&db, KV_ROLE);
    let p = simple_project();
    let port = server.port();
    let name = db.name();
    let ca = setup.tls.ca.display().to_string();
    let kv = format!(
        "host=localhost port={port} user={KV_ROLE} dbname={name} password='{SECRET}' \
         sslmode=verify-full sslrootcert='{ca}'"
    );
    let shown = format!(
        "host=localhost port={port} user={KV_ROLE} dbname={name} password=*** \
         sslmode=verify-full sslrootcert='{ca}'"
    );
    for args in [
        &["-v", "up"][..],
        &["-v", "--format", "json", "status", "--exit-code"],
    ] {
        for run in each_way(&p, &kv, args, &[]) {
            run.ok().assert_no_secret();
            assert_connecting_line(&run, &shown);
        }
    }
    let mut client = db.connect();
    assert!(relation_exists(&mut client, "public", "posts"));

    // The round trip: three migrations, each up, down, up on a scratch database.
    for args in [&["-v", "test"][..], &["--format", "json", "test"]] {
        for run in each_way(&p, &kv, args, &[]) {
            run.ok().assert_no_secret();
            if args.contains(&"json") {
                let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
                assert_eq!(doc["passed"], true, "{}", run.stdout);
            } else {
                assert!(
                    run.stdout.contains("3 migrations checked: 3 ok, 0 failed"),
                    "{}",
                    run.all()
                );
            }
        }
    }
    // A URL with verify-full: `test` takes what `up` takes.
    let url = format!(
        "postgres://{KV_ROLE}:{SECRET_ENCODED}@localhost:{port}/{name}?sslmode=verify-full\
         &sslrootcert={ca}"
    );
    for args in [&["status"][..], &["test"]] {
        p.with_url(&url, args).ok().assert_no_secret();
    }
    // Both honour sslmode and the host name in either syntax: without TLS the server refuses
    // the role (by SQLSTATE 28000), and 127.0.0.1 is not the certificate's name.
    for conn in [
        kv.replace("sslmode=verify-full", "sslmode=disable"),
        url.replace("sslmode=verify-full", "sslmode=disable"),
    ] {
        for args in [&["status"][..], &["test"]] {
            let run = p.with_url(&conn, args);
            assert_eq!(run.code, 1, "{args:?}: {}", run.all());
            run.assert_no_secret();
            assert!(
                run.stderr.starts_with(&format!(
                    "error: the server at localhost:{port} refused user \"{KV_ROLE}\": "
                )),
                "{args:?}: {}",
                run.stderr
            );
        }
    }
    for conn in [
        kv.replace("host=localhost", "host=127.0.0.1"),
        url.replace("@localhost", "@127.0.0.1"),
    ] {
        for args in [&["status"][..], &["test"]] {
            let run = p.with_url(&conn, args);
            assert_eq!(run.code, 1, "{args:?}: {}", run.all());
            run.assert_no_secret();
            assert_eq!(
                run.stderr,
                format!(
                    "error: TLS connection to 127.0.0.1:{port} failed (sslmode=verify-full): the \
                     server certificate is not valid for host name \"127.0.0.1\": connect with \
                     a name the certificate lists, or use sslmode=verify-ca\n"
                ),
                "{args:?}"
            );
        }
    }
}

// -------------------------------------------------------------------------------------------
// 4. A role that owns only its schema

#[test]
fn a_schema_owner_without_superuser_runs_every_command() {
    let setup = setup();
    let server = setup.server;
    let db = TestDb::on_own_server();
    db.connect()
        .batch_execute(&format!(
            "CREATE SCHEMA app AUTHORIZATION {OWNER_ROLE}; REVOKE CREATE ON SCHEMA public FROM PUBLIC"
        ))
        .unwrap();
    let p = Project::new(&[
        ("0001_accounts.up.sql", "CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"),
        ("0001_accounts.down.sql", "DROP TABLE accounts;\n"),
        (
            "0002_email.up.sql",
            "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_email ON accounts (email);\n",
        ),
        (
            "0002_email.down.sql",
            "-- migrations:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS accounts_email;\n",
        ),
        (
            "0003_count.up.sql",
            "CREATE FUNCTION account_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM accounts';\n",
        ),
        ("0003_count.down.sql", "DROP FUNCTION account_count();\n"),
    ]);
    let url = role_url(server, "127.0.0.1", OWNER_ROLE, &db, "");

    // Without --schema the history would go to public, where the role may not create.
    let refused = p.with_url(&url, &["--search-path", "app", "up"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("GRANT CREATE ON SCHEMA") && refused.stderr.contains("--schema"),
        "the error carries the fix: {}",
        refused.stderr
    );
    // Without even USAGE on public, the history cannot be looked for: the error says so, with
    // the fix, not only the server's "permission denied for schema public".
    db.connect()
        .batch_execute("REVOKE USAGE ON SCHEMA public FROM PUBLIC")
        .unwrap();
    let refused = p.with_url(&url, &["--search-path", "app", "up"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("cannot look for the history table \"public\".\"migrations_history\"")
            && refused
                .stderr
                .contains("GRANT USAGE ON SCHEMA \"public\" TO <role>")
            && refused.stderr.contains("--schema")
            && refused.stderr.contains("42501"),
        "the error carries the fix: {}",
        refused.stderr
    );
    db.connect()
        .batch_execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        .unwrap();

    let run = |args: &[&str]| {
        let mut full = vec!["--schema", "app", "--search-path", "app"];
        full.extend_from_slice(args);
        p.with_url(&url, &full)
    };
    run(&["up"]).ok();
    let mut client = db.connect();
    assert!(relation_exists(&mut client, "app", "accounts"));
    assert!(relation_exists(&mut client, "app", "accounts_email"));
    assert!(relation_exists(&mut client, "app", "migrations_history"));
    assert!(!relation_exists(
        &mut client,
        "public",
        "migrations_history"
    ));
    run(&["status", "--exit-code"]).ok();
    run(&["current"]).ok();
    run(&["history"]).ok();
    run(&["-v", "history"]).ok();
    run(&["lock"]).ok();
    run(&["verify", "--online"]).ok();
    run(&["down"]).ok();
    run(&["redo", "2"]).ok();
    run(&["down", "--to", "1"]).ok();
    run(&["repair"]).ok();
    run(&["up"]).ok();
    run(&["down", "--all"]).ok();
    assert!(!relation_exists(&mut client, "app", "accounts"));
    client
        .batch_execute(&format!("CREATE TABLE app.accounts (id bigint PRIMARY KEY, email text); ALTER TABLE app.accounts OWNER TO {OWNER_ROLE}"))
        .unwrap();
    run(&["baseline", "1"]).ok();
    run(&["up"]).ok();
    run(&["sql"]).ok();

    // `test` creates a scratch database: it needs CREATEDB, and says so.
    let test = run(&["test"]);
    assert_eq!(test.code, 1, "{}", test.all());
    assert!(
        test.stderr.contains("CREATEDB"),
        "the error names the privilege: {}",
        test.all()
    );
    // With CREATEDB (and nothing else) it runs. The scratch database belongs to the role, so
    // its migrations go to that database's public schema: no --schema / --search-path there.
    db.connect_admin()
        .batch_execute(&format!("ALTER ROLE {OWNER_ROLE} CREATEDB"))
        .unwrap();
    let test = p.with_url(&url, &["test"]);
    db.connect_admin()
        .batch_execute(&format!("ALTER ROLE {OWNER_ROLE} NOCREATEDB"))
        .unwrap();
    test.ok();
}
