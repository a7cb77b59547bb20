//! The bookkeeping SQL: history and audit tables, the advisory lock, the warm-start check, and
//! the session-restoring statement. Text only: names are always quoted as identifiers and
//! schema-qualified, values are always quoted as literals, so no input can change a statement's
//! shape.

use sha2::{Digest, Sha256};

use crate::embedded::{Migration, Script};
use crate::history::{AppliedMigration, AuditEvent, State, StoredDown};
use crate::plan::Direction;

/// The history layout this binary writes and understands. Stored in the table's comment, so an
/// older binary refuses a newer layout instead of misreading it. A table of an older format is
/// upgraded under the migrations lock by [`UPGRADES`], and read as it is without the lock.
pub const FORMAT_VERSION: u32 = UPGRADES[UPGRADES.len() - 1].to;

/// One step of the history layout: the format it brings the table to, and its statements
/// (given the history's names). Each is idempotent (`IF NOT EXISTS`, `OR REPLACE`), so a step
/// that ran but whose comment was not yet updated runs again harmlessly.
pub(crate) struct Upgrade {
    /// The format the table has after this step.
    pub to: u32,
    /// The statements, without a trailing `;`.
    pub sql: fn(&Names) -> String,
}

/// Every change to the history layout since format 1, in order: the one place that lists the
/// format's steps. [`Names::create`] runs them all after creating the format-1 table, so a new
/// table and an upgraded one are the same. A new format is one more entry here (and the
/// columns it adds in [`Names::select_history`]); [`FORMAT_VERSION`] is the last `to`.
pub(crate) const UPGRADES: &[Upgrade] = &[
    Upgrade {
        to: 2,
        // Rolling deploys: the compatibility floor and stored downs. Adding a column with a
        // constant default rewrites nothing (PostgreSQL 11+).
        sql: |names| {
            format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS breaking boolean NOT NULL DEFAULT \
                 false, ADD COLUMN IF NOT EXISTS down_sql text, ADD COLUMN IF NOT EXISTS \
                 down_checksum text, ADD COLUMN IF NOT EXISTS down_no_transaction boolean",
                names.history()
            )
        },
    },
    Upgrade {
        to: 3,
        // The stored chain digest, so the warm-start check reads one row.
        sql: Names::chain_digest_upgrade,
    },
    Upgrade {
        to: 4,
        // The runner's step keeps the stored digest in its own bookkeeping statement; the row
        // trigger skips what is written under `migrations.bookkeeping` (its PL/pgSQL call and
        // `UPDATE` were ~45 µs of every migration: BENCHMARKS.md).
        sql: Names::chain_digest_guard,
    },
];

/// The transaction-local setting under which the runner's own bookkeeping statement keeps the
/// stored digest itself ([`StepSql::record`]): while it is `on`, the row trigger `chain_digest`
/// does not fire (its `WHEN` clause, format 4). Any other change to a history row (a hand edit,
/// repair, baseline, a no-transaction step's rows) still goes through the trigger.
pub(crate) const BOOKKEEPING_ON: &str = "set_config('migrations.bookkeeping', 'on', true)";

/// The name of the prepared statement of an up step's bookkeeping ([`Names::prepare_record`]),
/// prepared by the runner for the run and deallocated at its end
/// ([`Names::unlock_and_deallocate`]).
pub(crate) const RECORD_STATEMENT: &str = "migrations_record";

/// The execution time the server measures when the caller gives none: from the start of the
/// transaction (`now()`) to the statement recording it.
const SERVER_EXECUTION_MS: &str = "(extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint";

/// [`BOOKKEEPING_ON`] undone, before a script of grouped mode (one transaction for several
/// migrations), so no script runs with the trigger off.
pub(crate) const BOOKKEEPING_OFF: &str = "set_config('migrations.bookkeeping', 'off', true)";
const FORMAT_COMMENT_PREFIX: &str = "migrations history, format ";

/// Separates array items in text results; never part of an index name in practice.
const ITEM_SEPARATOR: char = '\u{1f}';

/// `"name"`, with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `E'text'`, with quotes and backslashes escaped: correct whatever
/// `standard_conforming_strings` says. NUL cannot be sent to PostgreSQL in any form, so it is
/// dropped.
pub fn quote_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str("E'");
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn quote_optional(text: Option<&str>) -> String {
    text.map(quote_literal).unwrap_or_else(|| "NULL".to_owned())
}

/// Where the history lives: schema and table (the audit table is `<table>_audit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Schema of the history and audit tables, unquoted (default `public`).
    pub schema: String,
    /// Name of the history table, unquoted (default `migrations_history`).
    pub table: String,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            schema: crate::DEFAULT_SCHEMA.to_owned(),
            table: crate::DEFAULT_TABLE.to_owned(),
        }
    }
}

impl Names {
    /// The history table as quoted, schema-qualified SQL: `"schema"."table"`.
    pub fn history(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// The audit table as quoted, schema-qualified SQL: `"schema"."table_audit"`.
    pub fn audit(&self) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&format!("{}_audit", self.table))
        )
    }

    /// The advisory lock key: the first 8 bytes of SHA-256 of `<schema>.<table>`, big-endian.
    /// Fixed forever, so old and new binaries exclude each other.
    pub fn lock_key(&self) -> i64 {
        let digest = Sha256::digest(format!("{}.{}", self.schema, self.table).as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(bytes)
    }

    /// Takes the migrations lock if it is free, without waiting, and reads the backend pid:
    /// one row, `t` or `f`, then the pid.
    pub(crate) fn try_lock(&self) -> String {
        format!(
            "SELECT pg_try_advisory_lock({}), pg_backend_pid()",
            self.lock_key()
        )
    }

    /// Who holds the migrations lock: one row (pid, application_name, when its session
    /// started in whole microseconds since the epoch: exact, unlike a float) or none. A
    /// bigint advisory lock is stored as its high half in `classid`, its low half in `objid`,
    /// with `objsubid` 1; advisory locks are per database, so another database's runner on
    /// the same key is not ours.
    pub(crate) fn lock_holder(&self) -> String {
        format!(
            "SELECT l.pid, a.application_name, \
             (extract(epoch FROM a.backend_start) * 1000000)::bigint {}",
            self.lock_holder_rows()
        )
    }

    /// The holder as [`LockHolder`](crate::LockHolder)'s `Display` writes it, computed by the
    /// server (for the offline script, which has no Rust to format it): one text row, `pid 42,
    /// application_name "deploy", session started 2025-08-01T00:00:15.123Z`, or none.
    pub(crate) fn lock_holder_text(&self) -> String {
        // Rust's `{:?}` of the name: backslashes and double quotes escaped.
        let name = format!(
            "replace(replace(coalesce(a.application_name, ''), {bs}, {bs2}), '\"', {q})",
            bs = quote_literal("\\"),
            bs2 = quote_literal("\\\\"),
            q = quote_literal("\\\""),
        );
        format!(
            "SELECT 'pid ' || l.pid || ', application_name \"' || {name} || '\"' || \
             coalesce(', session started ' || {}, '') {}",
            rfc3339("a.backend_start"),
            self.lock_holder_rows()
        )
    }

    /// The `FROM ... LIMIT 1` of the queries for the migrations lock's holder: `l` its lock,
    /// `a` its session.
    fn lock_holder_rows(&self) -> String {
        format!(
            "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND ((l.classid::bigint << 32) | l.objid::bigint) = {} \
             ORDER BY l.pid LIMIT 1",
            self.lock_key()
        )
    }

    /// Releases the migrations lock (a session-level advisory lock; the run and the offline
    /// script end with it).
    pub(crate) fn unlock(&self) -> String {
        format!("SELECT pg_advisory_unlock({})", self.lock_key())
    }

    /// [`Names::unlock`], then the run's prepared statement deallocated. The unlock comes
    /// first: a session-level advisory lock's release is not undone by the failure of a later
    /// statement of the string (the statement may be gone already: a script's `DEALLOCATE
    /// ALL`).
    pub(crate) fn unlock_and_deallocate(&self) -> String {
        format!("{};\nDEALLOCATE {RECORD_STATEMENT}", self.unlock())
    }

    /// Reads the history table's format comment and whether it exists.
    pub(crate) fn probe(&self) -> String {
        let regclass = quote_literal(&self.history());
        format!(
            "SELECT to_regclass({regclass}) IS NOT NULL, \
             obj_description(to_regclass({regclass}), 'pg_class')"
        )
    }

    /// The statements that create the history and audit tables when they do not exist, or
    /// bring an older table to [`FORMAT_VERSION`] ([`UPGRADES`]), in one transaction, and
    /// record the history format in the table's comment. Idempotent: run under the lock when
    /// the table is missing or older, and by the offline script every time.
    pub(crate) fn create(&self) -> String {
        let history = self.history();
        let audit = self.audit();
        let comment = quote_literal(&format!("{FORMAT_COMMENT_PREFIX}{FORMAT_VERSION}"));
        let upgrades: String = UPGRADES
            .iter()
            .map(|u| format!("{};\n", (u.sql)(self)))
            .collect();
        format!(
            "BEGIN;\n\
             CREATE TABLE IF NOT EXISTS {history} (\n\
             version bigint PRIMARY KEY,\n\
             version_digits text NOT NULL,\n\
             name text NOT NULL,\n\
             checksum text NOT NULL,\n\
             no_transaction boolean NOT NULL,\n\
             state text NOT NULL CHECK (state IN ('running', 'applied', 'failed')),\n\
             applied_at timestamptz NOT NULL DEFAULT now(),\n\
             execution_ms bigint,\n\
             applied_by text NOT NULL DEFAULT current_user,\n\
             statements_done integer,\n\
             statements_total integer,\n\
             error text,\n\
             invalid_indexes text[] NOT NULL DEFAULT '{{}}'\n\
             );\n\
             {upgrades}\
             COMMENT ON TABLE {history} IS {comment};\n\
             CREATE TABLE IF NOT EXISTS {audit} (\n\
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n\
             at timestamptz NOT NULL DEFAULT now(),\n\
             by_user text NOT NULL DEFAULT current_user,\n\
             event text NOT NULL,\n\
             version bigint,\n\
             name text,\n\
             checksum text,\n\
             detail text\n\
             );\n\
             COMMIT;"
        )
    }

    /// The query reading every history row in version order from a table of history format
    /// `format` (older ones read as they are, without the lock: what they lack reads as
    /// defaults); parse each row with `parse_history_row`. The stored down's text is not read
    /// here ([`Names::select_stored_down`]).
    pub(crate) fn select_history(&self, format: u32) -> String {
        let format_2 = if format >= 2 {
            "breaking, down_checksum, down_no_transaction"
        } else {
            "false, NULL::text, NULL::boolean"
        };
        format!(
            "SELECT version, version_digits, name, checksum, no_transaction, state, \
             {applied_at}, execution_ms, applied_by, statements_done, statements_total, \
             error, array_to_string(invalid_indexes, {sep}), {format_2} \
             FROM {history} ORDER BY version",
            applied_at = rfc3339("applied_at"),
            sep = quote_literal(&ITEM_SEPARATOR.to_string()),
            history = self.history()
        )
    }

    /// The down script stored with `version`'s row (format 2): one row, the text or NULL.
    pub(crate) fn select_stored_down(&self, version: i64) -> String {
        format!(
            "SELECT down_sql FROM {} WHERE version = {version}",
            self.history()
        )
    }

    /// The query reading every audit row in the order they were written.
    pub(crate) fn select_audit(&self) -> String {
        format!(
            "SELECT id, {}, by_user, event, version, name, checksum, detail FROM {} \
             ORDER BY id",
            rfc3339("at"),
            self.audit()
        )
    }

    /// The one-row table holding the stored chain digest (history format 3), quoted and
    /// schema-qualified: `"schema"."table_meta"`.
    pub fn meta(&self) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&format!("{}_meta", self.table))
        )
    }

    /// The trigger function keeping the stored digest: `"schema"."table_chain_digest"`.
    pub(crate) fn digest_function(&self) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&format!("{}_chain_digest", self.table))
        )
    }

    /// History format 3: the chain digest stored in `<table>_meta` (one row) and kept by a
    /// trigger on the history table, in the transaction of every change to a row, whoever
    /// makes it (the runner's steps of every kind, repair, baseline, adoption, the offline
    /// script, a hand edit in psql). It is the XOR of each row's digest (`row_digest`), so one
    /// row's change is one XOR out and one XOR in, whatever the history's length. The
    /// triggers fire `ALWAYS`, even under `session_replication_role = replica`, so a stale
    /// digest cannot let the warm check skip a needed run. The last statement recomputes the
    /// digest from the rows (an upgraded table's, or a repair of a damaged one: the offline
    /// script runs this every time).
    fn chain_digest_upgrade(&self) -> String {
        let history = self.history();
        let meta = self.meta();
        let function = self.digest_function();
        let body = format!(
            "BEGIN\n\
             IF TG_OP = 'TRUNCATE' THEN\n\
             UPDATE {meta} SET chain_digest = {ZERO_DIGEST};\n\
             ELSIF TG_OP = 'INSERT' THEN\n\
             UPDATE {meta} SET chain_digest = chain_digest # {new};\n\
             ELSIF TG_OP = 'DELETE' THEN\n\
             UPDATE {meta} SET chain_digest = chain_digest # {old};\n\
             ELSE\n\
             UPDATE {meta} SET chain_digest = chain_digest # {old} # {new};\n\
             END IF;\n\
             RETURN NULL;\n\
             END",
            new = row_digest("NEW"),
            old = row_digest("OLD"),
        );
        let recompute = format!(
            "DECLARE d bit(256) := {ZERO_DIGEST}; r record;\n\
             BEGIN\n\
             FOR r IN SELECT version, checksum, no_transaction, state FROM {history} LOOP\n\
             d := d # {row};\n\
             END LOOP;\n\
             UPDATE {meta} SET chain_digest = d;\n\
             END",
            row = row_digest("r"),
        );
        format!(
            "CREATE TABLE IF NOT EXISTS {meta} (\n\
             one boolean PRIMARY KEY DEFAULT true CHECK (one),\n\
             chain_digest bit(256) NOT NULL\n\
             );\n\
             INSERT INTO {meta} (chain_digest) VALUES ({ZERO_DIGEST}) ON CONFLICT (one) DO NOTHING;\n\
             CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS {body};\n\
             DROP TRIGGER IF EXISTS chain_digest ON {history};\n\
             CREATE TRIGGER chain_digest AFTER INSERT OR DELETE OR UPDATE OF version, checksum, \
             no_transaction, state ON {history} FOR EACH ROW EXECUTE FUNCTION {function}();\n\
             DROP TRIGGER IF EXISTS chain_digest_truncate ON {history};\n\
             CREATE TRIGGER chain_digest_truncate AFTER TRUNCATE ON {history} \
             FOR EACH STATEMENT EXECUTE FUNCTION {function}();\n\
             ALTER TABLE {history} ENABLE ALWAYS TRIGGER chain_digest, \
             ENABLE ALWAYS TRIGGER chain_digest_truncate;\n\
             DO {recompute}",
            body = quote_literal(&body),
            recompute = quote_literal(&recompute),
        )
    }

    /// History format 4: the row trigger `chain_digest` skips the changes made while
    /// [`BOOKKEEPING_ON`] holds, which the statement making them accounts for itself
    /// ([`StepSql::record`]: one statement instead of a PL/pgSQL call and an `UPDATE` per row).
    fn chain_digest_guard(&self) -> String {
        let history = self.history();
        let function = self.digest_function();
        format!(
            "DROP TRIGGER IF EXISTS chain_digest ON {history};\n\
             CREATE TRIGGER chain_digest AFTER INSERT OR DELETE OR UPDATE OF version, checksum, \
             no_transaction, state ON {history} FOR EACH ROW \
             WHEN (current_setting('migrations.bookkeeping', true) IS DISTINCT FROM 'on') \
             EXECUTE FUNCTION {function}();\n\
             ALTER TABLE {history} ENABLE ALWAYS TRIGGER chain_digest"
        )
    }

    /// `insert` (a history row's `INSERT`, without `RETURNING`), the audit row `audit` and the
    /// stored digest XORed with `item` (a `bit(256)` expression: the new row's [`row_digest`],
    /// computed by the caller with `migrations_format::checksum::chain_item`), as one
    /// statement: for a step's bookkeeping under [`BOOKKEEPING_ON`].
    fn kept_insert(&self, insert: &str, item: &str, audit: &str) -> String {
        format!(
            "WITH h AS ({insert} RETURNING 1), a AS ({audit}) UPDATE {} SET chain_digest = \
             chain_digest # {item} FROM h",
            self.meta(),
        )
    }

    /// `version`'s history row deleted, the audit row `audit` and the deleted row's digest
    /// taken out of the stored one, as one statement (under [`BOOKKEEPING_ON`]). The digest is
    /// the row's as stored, computed by the server.
    fn kept_delete(&self, version: i64, audit: &str) -> String {
        format!(
            "WITH d AS (DELETE FROM {} AS r WHERE version = {version} RETURNING {} AS item), \
             a AS ({audit}) UPDATE {} SET chain_digest = chain_digest # d.item FROM d",
            self.history(),
            row_digest("r"),
            self.meta()
        )
    }

    /// The warm-start check, one round trip reading one row: the stored chain digest (history
    /// format 3; see `migrations_format::chain_digest`), as 256 `0`/`1` digits
    /// ([`parse_digest_bits`]). Fails with undefined_table when there is no history yet or it
    /// is older than format 3.
    pub(crate) fn warm_check(&self) -> String {
        format!("SELECT chain_digest FROM {}", self.meta())
    }

    /// The statement appending one event to the audit table; `None` values are stored as NULL.
    pub(crate) fn audit_insert(
        &self,
        event: &str,
        version: Option<i64>,
        name: Option<&str>,
        checksum: Option<&str>,
        detail: Option<&str>,
    ) -> String {
        self.audit_insert_of(&[
            quote_literal(event),
            version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "NULL".into()),
            quote_optional(name),
            quote_optional(checksum),
            quote_optional(detail),
        ])
    }

    /// The audit `INSERT` over value expressions (literals, or the prepared statement's
    /// parameters): event, version, name, checksum, detail.
    fn audit_insert_of(&self, values: &[String; 5]) -> String {
        format!(
            "INSERT INTO {} (event, version, name, checksum, detail) VALUES ({})",
            self.audit(),
            values.join(", ")
        )
    }

    /// Records a migration as applied. `execution_ms` is measured by the server from the start
    /// of the transaction (`now()`), or given by the caller.
    fn insert_row(&self, row: &NewRow<'_>) -> String {
        // The down file goes with the row (format 2), so a binary that no longer has it can
        // still revert the migration (`down --stored-downs`).
        let (down_sql, down_checksum, down_no_transaction) = match row.down {
            Some(down) => (
                quote_literal(down.sql()),
                quote_literal(down.checksum()),
                down.no_transaction().to_string(),
            ),
            None => ("NULL".into(), "NULL".into(), "NULL".into()),
        };
        self.insert_row_of(&[
            row.version.to_string(),
            quote_literal(row.version_digits),
            quote_literal(row.name),
            quote_literal(row.checksum),
            row.no_transaction.to_string(),
            quote_literal(row.state.as_str()),
            row.execution_ms
                .map(|ms| ms.to_string())
                .unwrap_or_else(|| SERVER_EXECUTION_MS.into()),
            opt_int(row.statements_done),
            opt_int(row.statements_total),
            row.breaking.to_string(),
            down_sql,
            down_checksum,
            down_no_transaction,
        ])
    }

    /// The history row's `INSERT` over value expressions (literals, or the prepared
    /// statement's parameters), in the order of its column list.
    fn insert_row_of(&self, values: &[String; 13]) -> String {
        format!(
            "INSERT INTO {} (version, version_digits, name, checksum, no_transaction, state, \
             execution_ms, statements_done, statements_total, breaking, down_sql, \
             down_checksum, down_no_transaction) VALUES ({})",
            self.history(),
            values.join(", ")
        )
    }

    /// `PREPARE` of [`RECORD_STATEMENT`]: an up step's [`StepSql::record`] with its values as
    /// parameters, so each step's bookkeeping costs the server an `EXECUTE` (no parse, no
    /// plan). Sent once per locked run; [`StepSql::execute_record`] calls it.
    pub(crate) fn prepare_record(&self) -> String {
        let p = |n: u32| format!("${n}");
        let insert = self.insert_row_of(&[
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            quote_literal(State::Applied.as_str()),
            SERVER_EXECUTION_MS.to_owned(),
            "NULL".to_owned(),
            "NULL".to_owned(),
            p(6),
            p(7),
            p(8),
            p(9),
        ]);
        let audit = self.audit_insert_of(&[
            quote_literal(Direction::Up.as_str()),
            p(1),
            p(3),
            p(4),
            p(10),
        ]);
        format!(
            "PREPARE {RECORD_STATEMENT}(bigint, text, text, text, boolean, boolean, text, text, \
             boolean, text, bit(256)) AS {}",
            self.kept_insert(&insert, &p(11), &audit)
        )
    }

    /// The statement deleting a version's history row (a `down`, or a repair that forgets a
    /// failed migration).
    fn delete_row(&self, version: i64) -> String {
        format!("DELETE FROM {} WHERE version = {version}", self.history())
    }

    /// The statement recording that a no-transaction migration has finished `statements_done`
    /// statements.
    fn progress(&self, version: i64, statements_done: usize) -> String {
        format!(
            "UPDATE {} SET statements_done = {statements_done} WHERE version = {version}",
            self.history()
        )
    }

    /// The statement marking a no-transaction migration applied, with its duration in
    /// milliseconds (given, or measured by the server), and clearing its error and invalid
    /// indexes.
    fn finish_no_transaction(&self, version: i64, execution_ms: Option<u128>) -> String {
        format!(
            "UPDATE {} SET state = 'applied', execution_ms = {}, error = NULL, \
             invalid_indexes = '{{}}', applied_at = now() WHERE version = {version}",
            self.history(),
            // Measured by the server from the `running` row's `applied_at` (when the step
            // started) when the caller has no clock (the offline script).
            execution_ms.map(|ms| ms.to_string()).unwrap_or_else(|| {
                "(extract(epoch FROM clock_timestamp() - applied_at) * 1000)::bigint".into()
            })
        )
    }

    /// Marks an applied no-transaction migration as being reverted, so a runner that dies
    /// part-way through its down leaves a `running` row (seen as failed by the next run).
    fn start_down(&self, version: i64, statements_total: usize) -> String {
        format!(
            "UPDATE {} SET state = 'running', statements_done = 0, statements_total = \
             {statements_total}, error = {} WHERE version = {version}",
            self.history(),
            quote_literal(DOWN_IN_PROGRESS)
        )
    }

    /// The statement marking a no-transaction migration failed: how far it got, the server's
    /// error and the invalid indexes its failed statement left (which `repair` drops).
    pub(crate) fn fail(
        &self,
        version: i64,
        statements_done: usize,
        statements_total: usize,
        error: &str,
        invalid_indexes: &[String],
    ) -> String {
        let array = if invalid_indexes.is_empty() {
            "'{}'::text[]".to_owned()
        } else {
            format!(
                "ARRAY[{}]::text[]",
                invalid_indexes
                    .iter()
                    .map(|i| quote_literal(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        format!(
            "UPDATE {} SET state = 'failed', statements_done = {statements_done}, \
             statements_total = {statements_total}, error = {}, invalid_indexes = {array} \
             WHERE version = {version}",
            self.history(),
            quote_literal(error)
        )
    }
}

fn opt_int(value: Option<usize>) -> String {
    value
        .map(|v| v.to_string())
        .unwrap_or_else(|| "NULL".into())
}

/// A history row to insert.
struct NewRow<'a> {
    version: i64,
    version_digits: &'a str,
    name: &'a str,
    checksum: &'a str,
    no_transaction: bool,
    state: State,
    execution_ms: Option<u128>,
    statements_done: Option<usize>,
    statements_total: Option<usize>,
    breaking: bool,
    down: Option<&'a Script>,
}

impl<'a> NewRow<'a> {
    /// `migration`'s row in `state`, its fields as the history keeps them: the version as
    /// written, the up file's checksum and transaction mode.
    fn of(migration: &'a Migration, state: State) -> NewRow<'a> {
        NewRow {
            version: migration.version(),
            version_digits: migration.version_digits(),
            name: migration.name(),
            checksum: migration.checksum(),
            no_transaction: migration.no_transaction(),
            state,
            execution_ms: None,
            statements_done: None,
            statements_total: None,
            breaking: migration.breaking(),
            // A code migration's down is a function: nothing to store.
            down: migration.down().filter(|d| d.code().is_none()),
        }
    }
}

/// The bookkeeping of one step (a migration's up or down script): every history and audit
/// statement written for it. The runner and the offline script both build theirs here, so a
/// step leaves the same history whichever ran it. Each method returns whole statements, each
/// ended by `;` and a newline.
pub(crate) struct StepSql<'a> {
    names: &'a Names,
    migration: &'a Migration,
    script: &'a Script,
    direction: Direction,
    /// The audit `detail` of a step that succeeded: none from the runner, `offline script`
    /// from the offline script.
    detail: Option<&'a str>,
}

impl<'a> StepSql<'a> {
    /// The bookkeeping of running `script`, `migration`'s up or down script (`direction`).
    pub(crate) fn new(
        names: &'a Names,
        migration: &'a Migration,
        script: &'a Script,
        direction: Direction,
    ) -> StepSql<'a> {
        StepSql {
            names,
            migration,
            script,
            direction,
            detail: None,
        }
    }

    /// The audit `detail` of a step that succeeded.
    pub(crate) fn detail(mut self, detail: &'a str) -> StepSql<'a> {
        self.detail = Some(detail);
        self
    }

    fn version(&self) -> i64 {
        self.migration.version()
    }

    /// The audit row of a finished step (`up` or `down`).
    fn audit(&self, event: &str, detail: Option<&str>) -> String {
        self.names.audit_insert(
            event,
            Some(self.version()),
            Some(self.migration.name()),
            Some(self.script.checksum()),
            detail,
        )
    }

    /// A transactional step, after its script and in its transaction: [`BOOKKEEPING_ON`] (as
    /// a `SET LOCAL`, which returns no row for `psql` to print in the offline script), then
    /// [`StepSql::record`].
    pub(crate) fn commit(&self, execution_ms: Option<u128>) -> String {
        format!(
            "SET LOCAL migrations.bookkeeping = on;\n{}",
            self.record(execution_ms)
        )
    }

    /// A transactional step's bookkeeping as one statement, to run after [`BOOKKEEPING_ON`]
    /// in its transaction: the history row inserted (up; `execution_ms` measured by the server
    /// from the transaction's start when not given) or deleted (down), the audit row, and the
    /// stored digest changed by the row's digest (which the trigger then skips). One statement
    /// costs the server one parse and one plan, where the trigger's PL/pgSQL and a statement
    /// per table cost ~3 times as much (BENCHMARKS.md).
    pub(crate) fn record(&self, execution_ms: Option<u128>) -> String {
        let audit = self.audit(self.direction.as_str(), self.detail);
        let sql = match self.direction {
            Direction::Up => {
                let insert = self.names.insert_row(&NewRow {
                    execution_ms,
                    ..NewRow::of(self.migration, State::Applied)
                });
                // An applied row's digest: the binary's chain item of the migration.
                self.names.kept_insert(&insert, &self.item(), &audit)
            }
            Direction::Down => self.names.kept_delete(self.version(), &audit),
        };
        format!("{sql};\n")
    }

    /// An applied row's digest, the binary's chain item of the migration, as a `bit(256)`
    /// literal.
    fn item(&self) -> String {
        let item = migrations_format::checksum::chain_item(
            self.version(),
            self.migration.checksum(),
            self.migration.no_transaction(),
        );
        format!("X'{}'", migrations_format::checksum::hex(&item))
    }

    /// [`StepSql::record`] of an up step as an `EXECUTE` of [`Names::prepare_record`]'s
    /// statement (the same row, audit row and digest; `execution_ms` measured by the server).
    /// `None` for a down, which is sent as [`StepSql::record`].
    pub(crate) fn execute_record(&self) -> Option<String> {
        if self.direction != Direction::Up {
            return None;
        }
        let m = self.migration;
        let down = m.down().filter(|d| d.code().is_none());
        let (down_sql, down_checksum, down_no_transaction) = match down {
            Some(down) => (
                quote_literal(down.sql()),
                quote_literal(down.checksum()),
                down.no_transaction().to_string(),
            ),
            None => ("NULL".into(), "NULL".into(), "NULL".into()),
        };
        Some(format!(
            "EXECUTE {RECORD_STATEMENT}({}, {}, {}, {}, {}, {}, {down_sql}, {down_checksum}, \
             {down_no_transaction}, {}, {});\n",
            m.version(),
            quote_literal(m.version_digits()),
            quote_literal(m.name()),
            quote_literal(m.checksum()),
            m.no_transaction(),
            m.breaking(),
            quote_optional(self.detail),
            self.item()
        ))
    }

    /// A no-transaction step, before its first statement: an up inserts its `running` row, a
    /// down marks the applied row `running` with [`DOWN_IN_PROGRESS`], so a runner that dies
    /// part-way leaves a row the next run reports as failed.
    pub(crate) fn start(&self, statements_total: usize) -> String {
        let sql = match self.direction {
            Direction::Up => self.names.insert_row(&NewRow {
                execution_ms: Some(0),
                statements_done: Some(0),
                statements_total: Some(statements_total),
                ..NewRow::of(self.migration, State::Running)
            }),
            Direction::Down => self.names.start_down(self.version(), statements_total),
        };
        format!("{sql};\n")
    }

    /// A no-transaction step, after statement `statements_done` (from 1).
    pub(crate) fn progress(&self, statements_done: usize) -> String {
        format!(
            "{};\n",
            self.names.progress(self.version(), statements_done)
        )
    }

    /// A no-transaction step, after its last statement: an up's row marked applied (with
    /// `execution_ms`, or the server's measure from the row's start), a down's row deleted;
    /// and the audit row.
    pub(crate) fn finish(&self, execution_ms: Option<u128>) -> String {
        let record = match self.direction {
            Direction::Up => self
                .names
                .finish_no_transaction(self.version(), execution_ms),
            Direction::Down => self.names.delete_row(self.version()),
        };
        let audit = self.audit(self.direction.as_str(), self.detail);
        format!("{record};\n{audit};\n")
    }

    /// A no-transaction step that failed at statement `statements_done + 1`: the row marked
    /// failed, with `error` and the invalid indexes left behind, and the `<direction>-failed`
    /// audit row carrying `error`.
    pub(crate) fn fail(
        &self,
        statements_done: usize,
        statements_total: usize,
        error: &str,
        invalid_indexes: &[String],
    ) -> String {
        let record = self.names.fail(
            self.version(),
            statements_done,
            statements_total,
            error,
            invalid_indexes,
        );
        let audit = self.audit(&format!("{}-failed", self.direction.as_str()), Some(error));
        format!("{record};\n{audit};\n")
    }
}

impl Names {
    /// `migration` recorded as applied without running it (baseline, adoption), with its
    /// `baseline` audit row saying why (`detail`).
    pub(crate) fn record_without_running(&self, migration: &Migration, detail: &str) -> String {
        let row = self.insert_row(&NewRow {
            execution_ms: Some(0),
            ..NewRow::of(migration, State::Applied)
        });
        let audit = self.audit_insert(
            "baseline",
            Some(migration.version()),
            Some(migration.name()),
            Some(migration.checksum()),
            Some(detail),
        );
        format!("{row};\n{audit};\n")
    }

    /// A failed (or dead runner's) row cleared by `repair`, with its audit row.
    pub(crate) fn clear_row(&self, row: &AppliedMigration, detail: &str) -> String {
        let delete = self.delete_row(row.version);
        let audit = self.audit_insert(
            "repair",
            Some(row.version),
            Some(&row.name),
            Some(&row.checksum),
            Some(detail),
        );
        format!("{delete};\n{audit};\n")
    }

    /// An applied row given `migration`'s current checksum and transaction mode by `repair
    /// --accept-checksum`, with its audit row.
    pub(crate) fn accept_checksum(&self, migration: &Migration, detail: &str) -> String {
        let update = format!(
            "UPDATE {} SET checksum = {}, no_transaction = {} WHERE version = {}",
            self.history(),
            quote_literal(migration.checksum()),
            migration.no_transaction(),
            migration.version()
        );
        let audit = self.audit_insert(
            "repair",
            Some(migration.version()),
            Some(migration.name()),
            Some(migration.checksum()),
            Some(detail),
        );
        format!("{update};\n{audit};\n")
    }
}

/// The relation locks session `pid` (an SQL expression) holds, granted, in the current
/// database: `relation::text, mode`, after `lead` (columns to put first, each followed by a
/// comma). The round trip reads a step's own locks with it (the engine's probe, before
/// `COMMIT`) and a no-transaction step's from a second session. Without a trailing `;`.
pub(crate) fn relation_locks(lead: &str, pid: &str) -> String {
    format!(
        "SELECT {lead}l.relation::text, l.mode FROM pg_catalog.pg_locks l \
         WHERE l.pid = {pid} AND l.locktype = 'relation' AND l.granted \
         AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d \
                           WHERE d.datname = pg_catalog.current_database())"
    )
}

/// A `timestamptz` column as RFC 3339 text in UTC, to the millisecond
/// (`2025-08-01T00:00:15.123Z`): the one spelling of a time in the API and the CLI, whatever
/// the session's `TimeZone` and `DateStyle`.
pub(crate) fn rfc3339(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
}

/// 256 zero bits: the digest of an empty history.
const ZERO_DIGEST: &str = "B'0'::bit(256)";

/// The digest of the history row `r` as SQL (`bit(256)`): SHA-256 of `version:checksum:mode`
/// for an applied row (`migrations_format::checksum::chain_item`, which the binary's digest is
/// made of), with `:state` appended for a running or failed one, so such a row never matches
/// a binary's digest, which counts every migration applied.
fn row_digest(r: &str) -> String {
    format!(
        "('x' || encode(sha256(convert_to({r}.version::text || ':' || {r}.checksum || ':' || \
         CASE WHEN {r}.no_transaction THEN 't' ELSE 'f' END || CASE WHEN {r}.state = 'applied' \
         THEN '' ELSE ':' || {r}.state END, 'UTF8')), 'hex'))::bit(256)"
    )
}

/// The stored digest as [`Names::warm_check`] reads it (256 `0`/`1` digits) in 64 hex digits,
/// the form of `migrations_format::chain_digest`; `None` for anything else.
pub fn parse_digest_bits(bits: &str) -> Option<[u8; 32]> {
    let bits = bits.as_bytes();
    if bits.len() != 256 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in bits.chunks(8).enumerate() {
        for &b in chunk {
            out[i] = (out[i] << 1)
                | match b {
                    b'0' => 0,
                    b'1' => 1,
                    _ => return None,
                };
        }
    }
    Some(out)
}

/// Reads the format number out of the history table's comment.
pub fn parse_format_comment(comment: Option<&str>) -> Option<u32> {
    comment?
        .strip_prefix(FORMAT_COMMENT_PREFIX)?
        .trim()
        .parse()
        .ok()
}

/// Parses the row of [`Names::lock_holder`] (`None` for no row: the lock was let go).
pub fn parse_lock_holder(row: &[Option<String>]) -> Option<crate::report::LockHolder> {
    let text = |i: usize| row.get(i).and_then(|v| v.as_deref());
    let since = text(2)
        .and_then(|s| s.parse::<u64>().ok())
        .map(|micros| std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros));
    Some(crate::report::LockHolder {
        pid: text(0)?.parse().ok()?,
        application_name: text(1).unwrap_or_default().to_owned(),
        since,
    })
}

/// Parses a row of [`Names::select_audit`].
pub fn parse_audit_row(row: &[Option<String>]) -> Option<AuditEvent> {
    let text = |i: usize| row.get(i).and_then(|v| v.as_deref());
    Some(AuditEvent {
        id: text(0)?.parse().ok()?,
        at: text(1)?.to_owned(),
        by: text(2)?.to_owned(),
        event: text(3)?.to_owned(),
        version: text(4).and_then(|v| v.parse().ok()),
        name: text(5).map(str::to_owned),
        checksum: text(6).map(str::to_owned),
        detail: text(7).map(str::to_owned),
    })
}

/// Parses a row of [`Names::select_history`].
pub fn parse_history_row(row: &[Option<String>]) -> Option<AppliedMigration> {
    let text = |i: usize| row.get(i).and_then(|v| v.as_deref());
    Some(AppliedMigration {
        version: text(0)?.parse().ok()?,
        version_digits: text(1)?.to_owned(),
        name: text(2)?.to_owned(),
        checksum: text(3)?.to_owned(),
        no_transaction: text(4)? == "t",
        state: State::parse(text(5)?)?,
        applied_at: text(6)?.to_owned(),
        execution_ms: text(7).and_then(|v| v.parse().ok()),
        applied_by: text(8)?.to_owned(),
        statements_done: text(9).and_then(|v| v.parse().ok()),
        statements_total: text(10).and_then(|v| v.parse().ok()),
        error: text(11).map(str::to_owned),
        invalid_indexes: text(12)
            .filter(|s| !s.is_empty())
            .map(|s| s.split(ITEM_SEPARATOR).map(str::to_owned).collect())
            .unwrap_or_default(),
        breaking: text(13) == Some("t"),
        stored_down: text(14).map(|checksum| StoredDown {
            checksum: checksum.to_owned(),
            no_transaction: text(15) == Some("t"),
        }),
    })
}

/// The caller's session at the start of a run, restored after each migration: its identity
/// (`session_authorization`, `role`) and the settings it changed; and whether the server takes
/// `client_connection_check_interval`.
#[derive(Debug, Clone, Default)]
pub struct SessionBaseline {
    /// `session_authorization`, then `role`.
    identity: Vec<(String, String)>,
    /// The settings that differ from their reset values.
    settings: Vec<(String, String)>,
    /// The server accepts `client_connection_check_interval` (PostgreSQL 14+ on Linux, macOS
    /// and the BSDs): each migration sets it with a plain `SET`, not a `DO` block that
    /// catches the refusal (a PL/pgSQL block with an exception handler, a subtransaction:
    /// ~25 µs of server time per migration).
    pub check_interval: bool,
}

/// The name under which [`SNAPSHOT_SESSION`] reports the `client_connection_check_interval`
/// probe: no setting's name starts with a space.
const CHECK_INTERVAL_PROBE: &str = " check interval";

/// Reads the session's identity, its user-settable parameters that differ from their reset
/// values, and whether `client_connection_check_interval` can be set: rows of name and value,
/// read by [`SessionBaseline::from_rows`]. One implicit transaction, so the probe's
/// `set_config(..., true)` ends with it. `role` and `session_authorization` are not in
/// `pg_settings`, and `RESET ALL` does not reset them: they are read and restored apart.
pub const SNAPSHOT_SESSION: &str = "SELECT name, setting FROM pg_settings \
     WHERE context IN ('user', 'superuser') AND name NOT LIKE 'transaction\\_%' \
     AND setting IS DISTINCT FROM reset_val;\n\
     SELECT 'session_authorization', current_setting('session_authorization');\n\
     SELECT 'role', current_setting('role');\n\
     DO $migrations$ BEGIN PERFORM set_config('client_connection_check_interval', '1000', true); \
     EXCEPTION WHEN OTHERS THEN NULL; END $migrations$;\n\
     SELECT ' check interval', current_setting('client_connection_check_interval')";

impl SessionBaseline {
    /// The baseline from the rows of [`SNAPSHOT_SESSION`].
    pub fn from_rows(rows: &[Vec<Option<String>>]) -> SessionBaseline {
        let mut baseline = SessionBaseline::default();
        let mut identity = Vec::new();
        for row in rows {
            let (Some(Some(name)), Some(Some(value))) = (row.first(), row.get(1)) else {
                continue;
            };
            match name.as_str() {
                CHECK_INTERVAL_PROBE => baseline.check_interval = value != "0",
                "session_authorization" | "role" => identity.push((name.clone(), value.clone())),
                _ => baseline.settings.push((name.clone(), value.clone())),
            }
        }
        // The session's own authorization before its role: a role is checked against it.
        identity.sort_by_key(|(name, _)| name != "session_authorization");
        baseline.identity = identity;
        baseline
    }

    /// Statements that put the session back to the baseline: [`SessionBaseline::identity`],
    /// then [`SessionBaseline::settings`].
    pub fn restore(&self) -> String {
        format!("{};\n{}", self.identity(), self.settings())
    }

    /// The `set_config` calls of [`SessionBaseline::identity`], to fold into another `SELECT`
    /// (empty when no baseline was read).
    pub fn identity_calls(&self) -> String {
        set_config_calls(&self.identity)
    }

    /// The `set_config` calls that give the caller's own settings back after `RESET ALL`, to
    /// fold into another `SELECT` (empty when the caller changed none).
    pub fn settings_calls(&self) -> String {
        set_config_calls(&self.settings)
    }

    /// The caller's identity again (`session_authorization`, then `role`), as one statement.
    /// `RESET ALL` leaves both alone, so they are set back by name: a migration whose `SET
    /// ROLE` outlived it would run every later migration, and the caller's session, as
    /// another role. Sent before a step's bookkeeping (which then runs as the caller, whatever
    /// role the script took), the rest of the restore after it (so the bookkeeping keeps the
    /// step's `lock_timeout` and `client_connection_check_interval`).
    pub fn identity(&self) -> String {
        let calls = set_config_calls(&self.identity);
        if calls.is_empty() {
            // No baseline read yet (nothing ran): nothing to restore, but one statement still.
            "SELECT".to_owned()
        } else {
            format!("SELECT {calls}")
        }
    }

    /// `RESET ALL` (every parameter to its reset value), then the caller's own values again.
    /// Session-level, so inside a transaction they survive the commit, and after a `SET
    /// LOCAL` they still win.
    ///
    /// `RESET ALL` catches a change from anywhere (a `SET`, `set_config`, dynamic SQL, a
    /// function, a trigger) and costs about a microsecond of server time; reading
    /// `pg_settings` instead cost 0.6–0.8 ms per migration (BENCHMARKS.md).
    pub fn settings(&self) -> String {
        let mut out = String::from("RESET ALL");
        if !self.settings.is_empty() {
            let calls = set_config_calls(&self.settings);
            out.push_str(&format!(";\nSELECT {calls}"));
        }
        out
    }
}

/// `set_config` calls, to fold into a `SELECT` before a no-transaction step's progress, that
/// keep the session's identity as a statement of the script left it (`session_authorization`,
/// `role`) in two transaction-local settings, so that [`GIVE_SCRIPT_IDENTITY_BACK`], in the same
/// query string, can set it again after the progress was written as the caller.
pub const KEEP_SCRIPT_IDENTITY: &str = "set_config('migrations.script_authorization', \
     current_setting('session_authorization'), true), \
     set_config('migrations.script_role', current_setting('role'), true)";

/// The identity [`KEEP_SCRIPT_IDENTITY`] kept, set again (session-level, as the script's own
/// `SET` was): `session_authorization` first, as a role is checked against it.
pub const GIVE_SCRIPT_IDENTITY_BACK: &str = "SELECT set_config('session_authorization', \
     current_setting('migrations.script_authorization'), false), \
     set_config('role', current_setting('migrations.script_role'), false)";

/// `set_config(name, value, false), ...`: session-level, so a value survives the step's commit
/// and wins over a `SET LOCAL`.
fn set_config_calls(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| {
            format!(
                "set_config({}, {}, false)",
                quote_literal(n),
                quote_literal(v)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Invalid indexes, as `regclass` text, that were not invalid before (`before`, index OIDs) or
/// that carry one of `names` (an `IF NOT EXISTS` that found a leftover invalid index).
pub fn new_invalid_indexes(before: &[String], names: &[String]) -> String {
    let before = if before.is_empty() {
        "'{}'::oid[]".to_owned()
    } else {
        format!("ARRAY[{}]::oid[]", before.join(", "))
    };
    let named = if names.is_empty() {
        "false".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("i.indexrelid = to_regclass({})", quote_literal(n)))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    format!(
        "SELECT i.indexrelid::regclass::text FROM pg_index i \
         WHERE NOT i.indisvalid AND (i.indexrelid <> ALL({before}) OR {named})"
    )
}

/// Drops an index a failed `CONCURRENTLY` build left invalid (`index`: its name as the server
/// printed it, `regclass` text, quoted where needed). Sent on its own: `DROP INDEX
/// CONCURRENTLY` refuses to run in a multi-statement string.
pub fn drop_invalid_index(index: &str) -> String {
    format!("DROP INDEX CONCURRENTLY IF EXISTS {index}")
}

/// The `error` of a `running` row whose down script is running.
pub const DOWN_IN_PROGRESS: &str = "down in progress";

/// Which of the named indexes exist and are invalid (`None` when no name is given).
pub fn invalid_among(names: &[String]) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let named = names
        .iter()
        .map(|n| format!("i.indexrelid = to_regclass({})", quote_literal(n)))
        .collect::<Vec<_>>()
        .join(" OR ");
    Some(format!(
        "SELECT i.indexrelid::regclass::text FROM pg_index i WHERE NOT i.indisvalid AND ({named})"
    ))
}

/// Progress markers of a transactional batch: session-level advisory locks on the two-int key
/// `(marker_key, n)`. The simple protocol of the sync driver drops the completion of the
/// statements that ran before an error, so the batch itself leaves a trace: after its `n`-th
/// point of progress it takes marker `n` and releases `n - 1`. A session-level advisory lock is
/// not released by the rollback of the transaction that took it, so after a failure the one
/// marker held says how far the batch got. They never meet the migrations lock, a one-bigint
/// key (`objsubid` 1 in `pg_locks`, 2 for these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Markers {
    /// The first int4 of the key, derived from [`Names::lock_key`].
    pub key: i32,
}

impl Markers {
    /// The markers of the history table `names`.
    pub fn of(names: &Names) -> Markers {
        Markers {
            // The upper half of the lock key: fixed for a history table, and distinct between
            // two history tables of one database as much as their lock keys are.
            key: (names.lock_key() >> 32) as i32,
        }
    }

    /// Takes marker `value` and releases `previous` (none before the first: releasing a lock
    /// that is not held draws a warning). Without a trailing `;`.
    pub fn take(&self, value: u32, previous: Option<u32>) -> String {
        let key = self.key;
        match previous {
            Some(previous) => format!(
                "SELECT pg_try_advisory_lock({key}, {value}), pg_advisory_unlock({key}, {previous})"
            ),
            None => format!("SELECT pg_try_advisory_lock({key}, {value})"),
        }
    }

    /// Releases marker `value`, with the backend pid in the first column (the batch's last
    /// row; see the engine's `check_backend`). Without a trailing `;`.
    pub fn release_with_pid(&self, value: u32) -> String {
        format!(
            "SELECT pg_backend_pid(), pg_advisory_unlock({}, {value})",
            self.key
        )
    }

    /// Reads the markers this session holds and releases them: one row per marker, its value
    /// as text. Run outside any transaction block.
    pub fn read_and_release(&self) -> String {
        // pg_locks shows an int4 key's first half as an oid.
        let classid = self.key as u32;
        format!(
            "SELECT objid::text, pg_advisory_unlock({key}, objid::int) FROM pg_locks \
             WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = {classid} \
             AND objsubid = 2",
            key = self.key
        )
    }
}

/// One row, `t` when the session is inside a transaction block (a `BEGIN` of the user's that
/// is not closed yet), else `f`. Only a block opened by an earlier query string started its
/// transaction before this statement was received; a query string of its own runs in an
/// implicit transaction that starts with it.
pub const IN_TRANSACTION_BLOCK: &str = "SELECT statement_timestamp() <> transaction_timestamp()";

/// OIDs of the invalid indexes that exist now.
pub const INVALID_INDEX_OIDS: &str =
    "SELECT indexrelid::oid::text FROM pg_index WHERE NOT indisvalid";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's a \\ test\0"), "E'it''s a \\\\ test'");
    }

    #[test]
    fn lock_key_is_fixed_forever() {
        let names = Names {
            schema: "public".into(),
            table: "migrations_history".into(),
        };
        // First 8 bytes of SHA-256("public.migrations_history"); changing this breaks the
        // mutual exclusion between old and new binaries.
        let digest = Sha256::digest(b"public.migrations_history");
        let expected = i64::from_be_bytes(digest[..8].try_into().unwrap());
        assert_eq!(names.lock_key(), expected);
        assert_eq!(names.lock_key(), 6722348733901144960);
    }

    #[test]
    fn upgrades_end_at_the_format_written() {
        assert_eq!(UPGRADES.last().map(|u| u.to), Some(FORMAT_VERSION));
        assert!(UPGRADES.windows(2).all(|w| w[0].to + 1 == w[1].to));
        assert_eq!(UPGRADES.first().map(|u| u.to), Some(2));
    }

    #[test]
    fn format_comment() {
        assert_eq!(
            parse_format_comment(Some("migrations history, format 1")),
            Some(1)
        );
        assert_eq!(parse_format_comment(Some("something else")), None);
        assert_eq!(parse_format_comment(None), None);
    }
}
