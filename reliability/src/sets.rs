//! The migration sets the runs apply, written into a directory.
//!
//! The crash set mixes transactional and no-transaction migrations (`CREATE INDEX
//! CONCURRENTLY`, `ALTER TABLE ... IF NOT EXISTS`), with enough data and short `pg_sleep`s
//! that a kill at a random instant often lands in the middle of a statement. Every
//! no-transaction statement can run again (`IF NOT EXISTS`, `ON CONFLICT DO NOTHING`), as the
//! linter asks, so that after `repair` the file can be run again from its first statement.
//! Each migration also inserts its version into `applied_log`, so running one twice shows.
//!
//! A killed runner's server session goes on with the query string it was sent: a transactional
//! migration (script and bookkeeping in one query) then commits as if nothing happened, which
//! is the "applied and recorded" half of SPEC 3.3. Migration 6 sleeps 1.2 s, longer than the
//! runner's `client_connection_check_interval` (1 s), so a kill during it is noticed by the
//! server mid-statement and the transaction is rolled back: the "neither" half.

use std::fs;
use std::path::Path;

/// One migration: version, name, no-transaction, up SQL.
pub type Migration = (u32, &'static str, bool, String);

/// The crash-loop set. `sleep` scales the `pg_sleep`s (1.0 = the default short sleeps).
pub fn crash_set(sleep: f64) -> Vec<Migration> {
    let s = |seconds: f64| format!("SELECT pg_sleep({:.3});", seconds * sleep);
    vec![
        (
            1,
            "users",
            false,
            format!(
                "CREATE TABLE applied_log (version int NOT NULL, at timestamptz NOT NULL DEFAULT now());\n\
                 CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, created_at timestamptz DEFAULT now());\n\
                 INSERT INTO users (id, email) SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 20000) g;\n\
                 {}\n\
                 INSERT INTO applied_log (version) VALUES (1);\n",
                s(0.05)
            ),
        ),
        (
            2,
            "posts",
            false,
            format!(
                "CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, body text);\n\
                 INSERT INTO posts (user_id, body) SELECT 1 + g % 20000, repeat(md5(g::text), 2) FROM generate_series(1, 40000) g;\n\
                 {}\n\
                 CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');\n\
                 INSERT INTO applied_log (version) VALUES (2);\n",
                s(0.1)
            ),
        ),
        (
            3,
            "indexes",
            true,
            format!(
                "-- migrations:no-transaction\n\
                 CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_user_id ON posts (user_id);\n\
                 {}\n\
                 CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);\n\
                 INSERT INTO applied_log (version) SELECT 3 WHERE NOT EXISTS (SELECT FROM applied_log WHERE version = 3);\n",
                s(0.1)
            ),
        ),
        (
            4,
            "profile",
            false,
            format!(
                "ALTER TABLE users ADD COLUMN mood mood NOT NULL DEFAULT 'ok';\n\
                 CREATE FUNCTION user_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM users';\n\
                 {}\n\
                 CREATE VIEW active_users AS SELECT id, email FROM users WHERE mood <> 'sad';\n\
                 INSERT INTO applied_log (version) VALUES (4);\n",
                s(0.05)
            ),
        ),
        (
            5,
            "settings",
            true,
            format!(
                "-- migrations:no-transaction\n\
                 CREATE TABLE IF NOT EXISTS settings (key text PRIMARY KEY, value jsonb NOT NULL);\n\
                 {}\n\
                 ALTER TABLE posts ADD COLUMN IF NOT EXISTS published boolean NOT NULL DEFAULT false;\n\
                 CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_published ON posts (id) WHERE published;\n\
                 INSERT INTO settings VALUES ('theme', '\"dark\"') ON CONFLICT DO NOTHING;\n\
                 INSERT INTO applied_log (version) SELECT 5 WHERE NOT EXISTS (SELECT FROM applied_log WHERE version = 5);\n",
                s(0.05)
            ),
        ),
        (
            6,
            "audit",
            false,
            format!(
                "CREATE TABLE audit_log (id bigserial PRIMARY KEY, user_id bigint, at timestamptz DEFAULT now());\n\
                 CREATE FUNCTION audit_user() RETURNS trigger LANGUAGE plpgsql AS $$\n\
                 BEGIN\n  INSERT INTO audit_log (user_id) VALUES (NEW.id);\n  RETURN NEW;\nEND\n$$;\n\
                 CREATE TRIGGER users_audit AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION audit_user();\n\
                 {}\n\
                 COMMENT ON TABLE users IS 'people; one row each';\n\
                 INSERT INTO applied_log (version) VALUES (6);\n",
                s(1.2)
            ),
        ),
        (
            7,
            "big_index",
            true,
            format!(
                "-- migrations:no-transaction\n\
                 CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_body ON posts (body, user_id);\n\
                 {}\n\
                 INSERT INTO applied_log (version) SELECT 7 WHERE NOT EXISTS (SELECT FROM applied_log WHERE version = 7);\n",
                s(0.05)
            ),
        ),
        (
            8,
            "reports",
            false,
            "CREATE SEQUENCE invoice_no START 1000;\n\
             CREATE MATERIALIZED VIEW post_counts AS SELECT user_id, count(*) AS posts FROM posts GROUP BY user_id;\n\
             CREATE UNIQUE INDEX post_counts_user ON post_counts (user_id);\n\
             INSERT INTO applied_log (version) VALUES (8);\n"
                .to_owned(),
        ),
    ]
}

/// A small set for the concurrency runs: quick transactional migrations and one
/// no-transaction index build, each logging itself into `applied_log`.
pub fn concurrency_set() -> Vec<Migration> {
    let mut set = vec![(
        1,
        "log",
        false,
        "CREATE TABLE applied_log (version int NOT NULL, by_pid int NOT NULL DEFAULT pg_backend_pid());\n\
         CREATE TABLE items (id bigint PRIMARY KEY, label text);\n\
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5000) g;\n\
         INSERT INTO applied_log (version) VALUES (1);\n"
            .to_owned(),
    )];
    for v in 2..=6u32 {
        set.push((
            v,
            ["", "", "a", "b", "c", "d", "e"][v as usize],
            false,
            format!(
                "ALTER TABLE items ADD COLUMN c{v} int NOT NULL DEFAULT {v};\n\
                 SELECT pg_sleep(0.02);\n\
                 INSERT INTO applied_log (version) VALUES ({v});\n"
            ),
        ));
    }
    set.push((
        7,
        "index",
        true,
        "-- migrations:no-transaction\n\
         CREATE INDEX CONCURRENTLY IF NOT EXISTS items_label ON items (label);\n\
         INSERT INTO applied_log (version) VALUES (7);\n"
            .to_owned(),
    ));
    set.push((
        8,
        "view",
        false,
        "CREATE VIEW item_labels AS SELECT id, label FROM items;\n\
         INSERT INTO applied_log (version) VALUES (8);\n"
            .to_owned(),
    ));
    set
}

/// The server-fault set: like the crash set, but each of migrations 2 (transactional) and 3
/// (no-transaction) holds a `pg_sleep(seconds)` long enough to inject a fault during it.
pub fn fault_set(seconds: f64) -> Vec<Migration> {
    let mut set = crash_set(0.0);
    for (version, _, _, sql) in &mut set {
        if *version == 2 || *version == 3 {
            *sql = sql.replace(
                "SELECT pg_sleep(0.000);",
                &format!("SELECT pg_sleep({seconds:.3}), 'fault window';"),
            );
        }
    }
    set
}

/// The down scripts of [`crash_set`], `(version, down SQL)`, with the same `sleep` scale.
/// Each undoes its up exactly (so `down --all` returns to an empty schema and `redo` to the
/// same state) and deletes its version from `applied_log`; the no-transaction ones are
/// no-transaction too, every statement again runnable (`IF EXISTS`). Migration 6's down
/// sleeps 1.2 s like its up, so a kill there is noticed by the server mid-statement.
pub fn crash_downs(sleep: f64) -> Vec<(u32, String)> {
    let s = |seconds: f64| format!("SELECT pg_sleep({:.3});", seconds * sleep);
    vec![
        (
            1,
            format!("DROP TABLE users;\n{}\nDROP TABLE applied_log;\n", s(0.05)),
        ),
        (
            2,
            format!(
                "DELETE FROM applied_log WHERE version = 2;\nDROP TABLE posts;\n{}\nDROP TYPE mood;\n",
                s(0.1)
            ),
        ),
        (
            3,
            format!(
                "-- migrations:no-transaction\n\
                 DROP INDEX CONCURRENTLY IF EXISTS users_email;\n\
                 {}\n\
                 DROP INDEX CONCURRENTLY IF EXISTS posts_user_id;\n\
                 DELETE FROM applied_log WHERE version = 3;\n",
                s(0.1)
            ),
        ),
        (
            4,
            format!(
                "DELETE FROM applied_log WHERE version = 4;\n\
                 DROP VIEW active_users;\n\
                 DROP FUNCTION user_count();\n\
                 {}\n\
                 ALTER TABLE users DROP COLUMN mood;\n",
                s(0.05)
            ),
        ),
        (
            5,
            format!(
                "-- migrations:no-transaction\n\
                 DROP INDEX CONCURRENTLY IF EXISTS posts_published;\n\
                 {}\n\
                 ALTER TABLE posts DROP COLUMN IF EXISTS published;\n\
                 DROP TABLE IF EXISTS settings;\n\
                 DELETE FROM applied_log WHERE version = 5;\n",
                s(0.05)
            ),
        ),
        (
            6,
            format!(
                "DROP TRIGGER users_audit ON users;\n\
                 DROP FUNCTION audit_user();\n\
                 DROP TABLE audit_log;\n\
                 {}\n\
                 COMMENT ON TABLE users IS NULL;\n\
                 DELETE FROM applied_log WHERE version = 6;\n",
                s(1.2)
            ),
        ),
        (
            7,
            format!(
                "-- migrations:no-transaction\n\
                 DROP INDEX CONCURRENTLY IF EXISTS posts_body;\n\
                 {}\n\
                 DELETE FROM applied_log WHERE version = 7;\n",
                s(0.05)
            ),
        ),
        (
            8,
            "DROP MATERIALIZED VIEW post_counts;\n\
             DROP SEQUENCE invoice_no;\n\
             DELETE FROM applied_log WHERE version = 8;\n"
                .to_owned(),
        ),
    ]
}

/// The transactional part of [`crash_set`] (versions 1, 2, 4, 6, 8), for the grouped mode
/// (`up --single-transaction` refuses no-transaction migrations).
pub fn grouped_set(sleep: f64) -> Vec<Migration> {
    crash_set(sleep).into_iter().filter(|m| !m.2).collect()
}

/// The set `repair` is crash-looped on. Migration 2 (no-transaction) builds a unique index
/// concurrently; with a duplicate key in `items` (which the run inserts before `up`) it fails
/// with 23505 and leaves the index invalid, recorded `failed` with the index named: what
/// `repair` exists for. Once the duplicate is deleted, `up` completes.
pub fn repair_set() -> Vec<Migration> {
    vec![
        (
            1,
            "items",
            false,
            "CREATE TABLE applied_log (version int NOT NULL, at timestamptz NOT NULL DEFAULT now());\n\
             CREATE TABLE items (id bigint PRIMARY KEY, k int NOT NULL, label text NOT NULL);\n\
             INSERT INTO items SELECT g, g, md5(g::text) FROM generate_series(1, 50000) g;\n\
             INSERT INTO applied_log (version) VALUES (1);\n"
                .to_owned(),
        ),
        (
            2,
            "unique_k",
            true,
            "-- migrations:no-transaction\n\
             CREATE INDEX CONCURRENTLY IF NOT EXISTS items_label ON items (label);\n\
             CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS items_k_unique ON items (k);\n\
             INSERT INTO applied_log (version) SELECT 2 WHERE NOT EXISTS (SELECT FROM applied_log WHERE version = 2);\n"
                .to_owned(),
        ),
        (
            3,
            "keys",
            false,
            "CREATE VIEW item_keys AS SELECT id, k FROM items;\n\
             INSERT INTO applied_log (version) VALUES (3);\n"
                .to_owned(),
        ),
    ]
}

/// The index [`repair_set`]'s migration 2 leaves invalid when a key is duplicated.
pub const REPAIR_INVALID_INDEX: &str = "items_k_unique";

/// The set the disk-full run fills its small file system with: migration 2 inserts about
/// `megabytes` MB into a new table, in a transaction (`no_transaction = false`) or as the
/// second statement of a no-transaction file (`true`, the table created by its first
/// statement, `IF NOT EXISTS` so the file can run again after `repair`).
pub fn disk_set(megabytes: u32, no_transaction: bool) -> Vec<Migration> {
    // Rows of ~1 kB (incompressible: md5 chains, so TOAST compression gains nothing).
    let rows = megabytes * 1000;
    let fill = format!(
        "INSERT INTO bulk (id, payload) SELECT g, repeat(md5(g::text) || md5((g + 1)::text), 16) \
         FROM generate_series(1, {rows}) g;"
    );
    let bulk = if no_transaction {
        format!(
            "-- migrations:no-transaction\n\
             CREATE TABLE IF NOT EXISTS bulk (id bigint PRIMARY KEY, payload text NOT NULL);\n\
             {fill}\n\
             INSERT INTO applied_log (version) SELECT 2 WHERE NOT EXISTS (SELECT FROM applied_log WHERE version = 2);\n"
        )
    } else {
        format!(
            "CREATE TABLE bulk (id bigint PRIMARY KEY, payload text NOT NULL);\n\
             {fill}\n\
             INSERT INTO applied_log (version) VALUES (2);\n"
        )
    };
    vec![
        (
            1,
            "base",
            false,
            "CREATE TABLE applied_log (version int NOT NULL, at timestamptz NOT NULL DEFAULT now());\n\
             CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);\n\
             INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, 1000) g;\n\
             INSERT INTO applied_log (version) VALUES (1);\n"
                .to_owned(),
        ),
        (2, "bulk_rows", no_transaction, bulk),
        (
            3,
            "after",
            false,
            "CREATE VIEW bulk_ids AS SELECT id FROM bulk;\n\
             INSERT INTO applied_log (version) VALUES (3);\n"
                .to_owned(),
        ),
    ]
}

/// Writes `set` as flat up files into `dir` (created if needed), without down files.
pub fn write(dir: &Path, set: &[Migration]) {
    write_with_downs(dir, set, &[]);
}

/// Writes `set` as flat up files into `dir` (created if needed), and a down file for each
/// version in `downs`.
pub fn write_with_downs(dir: &Path, set: &[Migration], downs: &[(u32, String)]) {
    fs::create_dir_all(dir).expect("create the migrations directory");
    for (version, name, _, up) in set {
        fs::write(dir.join(format!("{version:03}_{name}.up.sql")), up).expect("write a migration");
        if let Some((_, down)) = downs.iter().find(|(v, _)| v == version) {
            fs::write(dir.join(format!("{version:03}_{name}.down.sql")), down)
                .expect("write a down migration");
        }
    }
}
