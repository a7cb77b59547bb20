//! The rule registry: every rule `migrations lint` knows, ours and squawk's, with the lock the
//! statement it flags takes and the safe rewrite; and the selection of rules to run.

use std::collections::BTreeSet;
use std::fmt;

use squawk_linter::Rule as SquawkRule;

/// Where a rule is implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Origin {
    /// Ours: statements cut by `migrations-format`'s splitter, read through squawk's tree.
    Migrations,
    /// The `squawk-linter` crate.
    Squawk,
}

impl Origin {
    /// `"migrations"` or `"squawk"`, as shown by `--list-rules` and in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Migrations => "migrations",
            Origin::Squawk => "squawk",
        }
    }
}

/// One rule: its id, whether it runs by default, the lock the flagged statement takes, and how
/// to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// The id used in findings, `--select`/`--exclude` and `lint-ignore`.
    pub id: &'static str,
    /// Whether the rule is ours or squawk's.
    pub origin: Origin,
    /// Runs unless excluded (otherwise it runs only when selected).
    pub default: bool,
    /// The lock the flagged statement takes, or what else makes it unsafe.
    pub lock: &'static str,
    /// The safe rewrite.
    pub fix: &'static str,
}

// Our rules' ids.
pub const MISSING_DOWN: &str = "missing-down";
pub const EMPTY_DOWN: &str = "empty-down";
pub const EMPTY_MIGRATION: &str = "empty-migration";
pub const UNWRITTEN_MIGRATION: &str = "unwritten-migration";
pub const NON_TRANSACTIONAL_IN_TRANSACTION: &str = "non-transactional-in-transaction";
pub const CONCURRENTLY_IN_TRANSACTION: &str = "concurrently-in-transaction";
pub const TRANSACTION_CONTROL_IN_TRANSACTION: &str = "transaction-control-in-transaction";
pub const LOCK_TIMEOUT_GUARD: &str = "lock-timeout-guard";
pub const SESSION_LEVEL_SET: &str = "session-level-set";
pub const SET_LOCAL_OUTSIDE_TRANSACTION: &str = "set-local-outside-transaction";
pub const ENUM_VALUE_USED_IN_TRANSACTION: &str = "enum-value-used-in-transaction";
pub const DOWN_DROPS_EXISTING: &str = "down-drops-existing";
/// Not a lint finding: `migrations test --max-lock` reads `lint-ignore max-lock` in an up
/// file's header as "this lock is taken on purpose" (`migrations_core::roundtrip::MAX_LOCK_RULE`).
pub const MAX_LOCK: &str = "max-lock";

const OURS: &[RuleInfo] = &[
    RuleInfo {
        id: MISSING_DOWN,
        origin: Origin::Migrations,
        default: true,
        lock: "none",
        fix: "add a down file that reverses the up (`<version>_<name>.down.sql`, or `down.sql` in \
              the folder); if the migration truly cannot be reverted, say so with \
              `-- migrations:lint-ignore missing-down` at the top of the up file",
    },
    RuleInfo {
        id: EMPTY_DOWN,
        origin: Origin::Migrations,
        default: true,
        lock: "none",
        fix: "write the SQL that reverses the up; for an irreversible migration, delete the down \
              file and put `-- migrations:lint-ignore missing-down` at the top of the up file, so \
              a rollback stops instead of pretending",
    },
    RuleInfo {
        id: EMPTY_MIGRATION,
        origin: Origin::Migrations,
        default: true,
        lock: "none: applying it records the migration and changes nothing",
        fix: "write the migration's SQL; for a deliberate no-op (kept from another tool's \
              history, whose checksum must not change) lint only the migrations after it with \
              `since = \"<its version>\"` under `[lint]` in migrations.toml, or put \
              `-- migrations:lint-ignore empty-migration` at the top of a file not yet applied",
    },
    RuleInfo {
        id: UNWRITTEN_MIGRATION,
        origin: Origin::Migrations,
        default: true,
        lock: "none: the statement fails, so applying the migration stops there",
        fix: "replace the `DO ... RAISE EXCEPTION 'write this migration: ...'` statement that \
              `migrations new` wrote with the migration's SQL",
    },
    RuleInfo {
        id: NON_TRANSACTIONAL_IN_TRANSACTION,
        origin: Origin::Migrations,
        default: true,
        lock: "none: PostgreSQL refuses the statement inside a transaction block, so the \
               migration fails when it runs",
        fix: "run it outside a transaction: `-- migrations:no-transaction` as the first line of \
              the file (or, outside a BEGIN ... COMMIT block of a no-transaction file), in a \
              migration of its own",
    },
    RuleInfo {
        id: CONCURRENTLY_IN_TRANSACTION,
        origin: Origin::Migrations,
        default: true,
        lock: "none: PostgreSQL refuses CONCURRENTLY inside a transaction block (without \
               CONCURRENTLY it would take SHARE or ACCESS EXCLUSIVE on the table)",
        fix: "keep CONCURRENTLY and run the statement outside a transaction: \
              `-- migrations:no-transaction` as the first line of the file, with IF NOT EXISTS / \
              IF EXISTS so the file can run again after `migrations repair`",
    },
    RuleInfo {
        id: TRANSACTION_CONTROL_IN_TRANSACTION,
        origin: Origin::Migrations,
        default: true,
        lock: "none: it would commit or roll back part of the migration outside the runner's \
               transaction, away from its history record; the runner refuses the file",
        fix: "drop the statement: the runner runs the file and records it in one transaction; \
              or mark the file `-- migrations:no-transaction` and manage transactions with \
              explicit BEGIN ... COMMIT blocks",
    },
    RuleInfo {
        id: LOCK_TIMEOUT_GUARD,
        origin: Origin::Migrations,
        default: true,
        lock: "SHARE or stronger on an existing table (ACCESS EXCLUSIVE for most ALTER TABLE), \
               waited for without limit: every later query on the table queues behind it",
        fix: "keep a lock_timeout: drop the `lock_timeout = 0` / RESET (the runner sets a few \
              seconds per migration and retries a transactional migration that hits it), or set \
              a short one with `-- migrations:lock-timeout=5s`",
    },
    RuleInfo {
        id: SESSION_LEVEL_SET,
        origin: Origin::Migrations,
        default: true,
        lock: "none",
        fix: "in a transactional file write `SET LOCAL` (it ends with the migration's \
              transaction); for lock_timeout and statement_timeout use the \
              `-- migrations:lock-timeout=` / `statement-timeout=` directive; in a no-transaction \
              file `RESET` the setting after the statements that need it",
    },
    RuleInfo {
        id: SET_LOCAL_OUTSIDE_TRANSACTION,
        origin: Origin::Migrations,
        default: true,
        lock: "none",
        fix: "for lock_timeout and statement_timeout use the `-- migrations:lock-timeout=` / \
              `statement-timeout=` directive; otherwise a session-level SET followed by RESET \
              after the statements that need it",
    },
    RuleInfo {
        id: ENUM_VALUE_USED_IN_TRANSACTION,
        origin: Origin::Migrations,
        default: true,
        lock: "none: the statement fails",
        fix: "split the file: keep `ALTER TYPE ... ADD VALUE` in this migration and move the \
              statements that use the new value to the next one (or mark this file \
              `-- migrations:no-transaction`, so the ADD VALUE commits before the use)",
    },
    RuleInfo {
        id: DOWN_DROPS_EXISTING,
        origin: Origin::Migrations,
        default: true,
        lock: "ACCESS EXCLUSIVE on the table; the rows (or the column's values) that were there \
               before the up are deleted by a rollback",
        fix: "drop only what the up created; if the up removed something the down cannot bring \
              back with its data, say so in the down file's header with \
              `-- migrations:lossy-down <reason>` (then `down` asks for --allow-data-loss)",
    },
    RuleInfo {
        id: MAX_LOCK,
        origin: Origin::Migrations,
        default: false,
        lock: "observed, not linted: `migrations test --max-lock <mode>` (or `max_lock` in \
               `[test]`) fails an up that takes a stronger lock on a table that existed before it",
        fix: "`-- migrations:lint-ignore max-lock` in the up file's header says the lock is taken \
              on purpose: `migrations test` still reports it, without failing",
    },
];

/// Squawk rules replaced by ours: selecting or excluding one of these names acts on ours.
const REPLACED: &[(&str, &str)] = &[(
    "ban-concurrent-index-creation-in-transaction",
    CONCURRENTLY_IN_TRANSACTION,
)];

/// Squawk rules that squawk runs by default and we do not, because our runner already does what
/// they ask for every migration (a `SET LOCAL lock_timeout` and `statement_timeout` before each
/// file). They stay available by `select`, for files also run by other means.
const SQUAWK_OFF_BY_DEFAULT: &[SquawkRule] = &[
    SquawkRule::RequireLockTimeout,
    SquawkRule::RequireStatementTimeout,
];

/// Squawk rules that do not apply to a rollback, so are not run on down files: dropping and
/// renaming ("may break clients still running the old code" is what a rollback is for), and
/// type preferences (a down restores the types the schema had).
pub(crate) fn not_for_down(rule: SquawkRule) -> bool {
    use SquawkRule as R;
    matches!(
        rule,
        R::PreferBigintOverInt
            | R::PreferBigintOverSmallint
            | R::PreferIdentity
            | R::PreferTextField
            | R::PreferTimestampTz
            | R::BanCharField
            | R::BanDropColumn
            | R::BanDropTable
            | R::BanDropNotNull
            | R::BanDropView
            | R::BanDropFunction
            | R::BanDropType
            | R::BanDropDefault
            | R::BanDropTrigger
            | R::BanDropSchema
            | R::BanDropSequence
            | R::BanDropDomain
            | R::BanDropConstraint
            | R::BanDropGeneratedExpression
            | R::BanDropExtension
            | R::BanDropIndex
            | R::BanDropPolicy
            | R::RenamingColumn
            | R::RenamingTable
            | R::RenamingObject
    )
}

/// The lock and the safe rewrite of a squawk rule.
fn squawk_texts(rule: SquawkRule) -> (&'static str, &'static str) {
    use SquawkRule as R;
    const KEEP_CLIENTS: &str = "first ship the application change that no longer depends on it; \
        then make this change in a later migration, with `-- migrations:lint-ignore <rule>` and \
        a comment saying why it is safe";
    const AE_BRIEF: &str =
        "ACCESS EXCLUSIVE on the table, briefly (but it queues behind every running query)";
    const NONE_TYPE: &str = "none beyond the statement's own; a choice of type that is costly to \
        change later (changing it takes ACCESS EXCLUSIVE and rewrites the table)";
    match rule {
        R::RequireConcurrentIndexCreation => (
            "SHARE on the table for the whole build: blocks INSERT, UPDATE and DELETE",
            "`CREATE INDEX CONCURRENTLY IF NOT EXISTS ...` in a migration of its own marked \
             `-- migrations:no-transaction` (SHARE UPDATE EXCLUSIVE: reads and writes go on); an \
             index on a table created in the same transaction needs nothing",
        ),
        R::RequireConcurrentIndexDeletion => (
            "ACCESS EXCLUSIVE on the table: blocks reads and writes",
            "`DROP INDEX CONCURRENTLY IF EXISTS ...` in a migration of its own marked \
             `-- migrations:no-transaction`",
        ),
        R::ConstraintMissingNotValid => (
            "ACCESS EXCLUSIVE (CHECK) or SHARE ROW EXCLUSIVE (FOREIGN KEY) while every row is \
             checked",
            "add the constraint `NOT VALID` (instant), then `ALTER TABLE ... VALIDATE CONSTRAINT \
             ...` in a later migration (SHARE UPDATE EXCLUSIVE: reads and writes go on)",
        ),
        R::AddingForeignKeyConstraint => (
            "SHARE ROW EXCLUSIVE on both tables while every row is checked: blocks writes",
            "add the foreign key `NOT VALID` (instant), then `ALTER TABLE ... VALIDATE \
             CONSTRAINT ...` in a later migration (SHARE UPDATE EXCLUSIVE on the table, ROW \
             SHARE on the referenced one)",
        ),
        R::AddingFieldWithDefault => (
            "ACCESS EXCLUSIVE on the table while it is rewritten (a volatile default, a stored \
             generated column or an identity column)",
            "add the column without that default, backfill it in batches, then set the default \
             for new rows; a constant default is stored without a rewrite",
        ),
        R::ChangingColumnType => (
            "ACCESS EXCLUSIVE on the table while it is rewritten and its indexes rebuilt",
            "add a column of the new type, write both, backfill in batches, move readers over, \
             and drop the old column in a later release",
        ),
        R::AddingNotNullableField => (
            "ACCESS EXCLUSIVE on the table while every row is scanned",
            "add `CHECK (col IS NOT NULL) NOT VALID`, `VALIDATE CONSTRAINT` it in a later \
             migration, then `SET NOT NULL` (PostgreSQL 12+ skips the scan thanks to the \
             validated check) and drop the check",
        ),
        R::AddingRequiredField => (
            "ACCESS EXCLUSIVE on the table; and inserts from clients that do not know the \
             column fail",
            "add the column nullable or with a constant DEFAULT, backfill, then enforce NOT NULL \
             with a validated CHECK (see adding-not-nullable-field)",
        ),
        R::AddingSerialPrimaryKeyField => (
            "ACCESS EXCLUSIVE on the table while the primary key's index is built",
            "`CREATE UNIQUE INDEX CONCURRENTLY` in a no-transaction migration, then `ALTER TABLE \
             ... ADD CONSTRAINT ... PRIMARY KEY USING INDEX ...`",
        ),
        R::DisallowedUniqueConstraint => (
            "ACCESS EXCLUSIVE on the table while the unique index is built",
            "`CREATE UNIQUE INDEX CONCURRENTLY` in a no-transaction migration, then `ALTER TABLE \
             ... ADD CONSTRAINT ... UNIQUE USING INDEX ...`",
        ),
        R::RenamingColumn | R::RenamingTable | R::RenamingObject => (
            AE_BRIEF,
            "expand and contract: add the new name (a new column kept in sync, or a view under \
             the old table name), move clients over, and remove the old name in a later \
             release; a rename breaks the code still running",
        ),
        R::BanDropColumn
        | R::BanDropTable
        | R::BanDropView
        | R::BanDropNotNull
        | R::BanDropDefault
        | R::BanDropConstraint
        | R::BanDropGeneratedExpression
        | R::BanDropTrigger
        | R::BanDropPolicy
        | R::BanSetSchema
        | R::BanAlterIdentity
        | R::BanSetDefault
        | R::BanReplicaIdentity
        | R::BanReplaceViewFunction
        | R::BanAlterGeneratedExpression
        | R::BanAddColumn
        | R::BanNewWriteRestriction
        | R::BanDetachInheritance
        | R::BanAlterRowLevelSecurity
        | R::BanAlterPolicyCondition
        | R::BanAlterPolicyRoles
        | R::BanCreatePolicy
        | R::BanAlterViewOptions => (AE_BRIEF, KEEP_CLIENTS),
        R::BanDropIndex => (
            "ACCESS EXCLUSIVE on the table (SHARE UPDATE EXCLUSIVE with CONCURRENTLY)",
            KEEP_CLIENTS,
        ),
        R::BanDisableTrigger => (
            "SHARE ROW EXCLUSIVE on the table: blocks writes, briefly",
            KEEP_CLIENTS,
        ),
        R::BanRevoke
        | R::BanAlterFunctionOptions
        | R::BanAlterRoleOptions
        | R::BanAlterDatabaseOptions
        | R::BanAlterSystemOptions
        | R::BanAlterExtension => (
            "none on tables; the change is to how existing clients' statements behave",
            KEEP_CLIENTS,
        ),
        R::BanDropFunction
        | R::BanDropType
        | R::BanDropSchema
        | R::BanDropSequence
        | R::BanDropDomain
        | R::BanDropExtension
        | R::BanAddEnumValue
        | R::BanAddCompositeAttribute
        | R::BanAlterSequenceValues => (
            "ACCESS EXCLUSIVE on the object (and on what depends on it), briefly",
            KEEP_CLIENTS,
        ),
        R::BanDropDatabase => (
            "exclusive use of the database",
            "never drop a database from a migration; do it by hand, out of band",
        ),
        R::PreferBigintOverInt | R::PreferBigintOverSmallint => {
            (NONE_TYPE, "use `bigint` (an int4 key runs out at 2^31)")
        }
        R::PreferIdentity => (
            NONE_TYPE,
            "use `bigint GENERATED BY DEFAULT AS IDENTITY` (or `ALWAYS`) instead of serial",
        ),
        R::PreferTextField => (
            NONE_TYPE,
            "use `text` with a `CHECK (length(col) <= n)` constraint: changing a check later is \
             `NOT VALID` + `VALIDATE`, changing varchar(n) takes ACCESS EXCLUSIVE",
        ),
        R::PreferTimestampTz => (NONE_TYPE, "use `timestamptz`"),
        R::BanCharField => (NONE_TYPE, "use `text` (or `varchar`)"),
        R::PreferRepack => (
            "ACCESS EXCLUSIVE on the table while it is rewritten",
            "do not rewrite tables from a migration; use pg_repack out of band",
        ),
        R::PreferRobustStmts => (
            "that of the statement; in a no-transaction file, a failure keeps what ran before it",
            "add IF NOT EXISTS / IF EXISTS, so the file can run again from its first statement \
             after `migrations repair` (or keep the statement in a transactional migration)",
        ),
        R::TransactionNesting | R::BanUncommittedTransaction => (
            "none; the runner already wraps a transactional file in a transaction",
            "remove BEGIN / COMMIT from a transactional file; for statements that must run \
             outside a transaction, mark the file `-- migrations:no-transaction`; in a \
             no-transaction file, close every BEGIN with COMMIT",
        ),
        R::BanConcurrentIndexCreationInTransaction => (
            "none taken: PostgreSQL refuses CONCURRENTLY inside a transaction block",
            "run it in a no-transaction migration",
        ),
        R::BanCreateDomainWithConstraint | R::BanAlterDomainWithAddConstraint => (
            "adding a domain constraint checks every column of that domain, in every table, \
             under lock",
            "use table CHECK constraints, added `NOT VALID` and validated later",
        ),
        R::BanTruncateCascade => (
            "ACCESS EXCLUSIVE on every table reached through foreign keys, which are emptied too",
            "name every table to truncate, without CASCADE",
        ),
        R::RequireEnumValueOrdering => (
            "none on tables",
            "say where the value goes with `BEFORE` or `AFTER`",
        ),
        R::RequireTableSchema => ("none", "qualify the table with its schema"),
        R::IdentifierTooLong => (
            "none; PostgreSQL truncates names past 63 bytes, so two names can collide",
            "use a name of at most 63 bytes",
        ),
        R::RequireConcurrentPartitionDetach => (
            "ACCESS EXCLUSIVE on the parent table and the partition",
            "`ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY` (PostgreSQL 14+) in a \
             no-transaction migration",
        ),
        R::RequireConcurrentReindex => (
            "ACCESS EXCLUSIVE on the index and SHARE on its table while it is rebuilt",
            "`REINDEX ... CONCURRENTLY` in a no-transaction migration",
        ),
        R::RequireLockTimeout | R::RequireTimeoutSettings => (
            "the statement's lock, waited for without limit when nothing sets lock_timeout",
            "the runner sets lock_timeout for every migration; for files also run by other \
             means, `SET LOCAL lock_timeout = '5s'` at the top (or the \
             `-- migrations:lock-timeout=5s` directive, which satisfies this rule)",
        ),
        R::RequireStatementTimeout => (
            "the statement's lock, held as long as the statement runs",
            "the runner sets statement_timeout for every migration; for files also run by other \
             means, `SET LOCAL statement_timeout = '...'` (or the \
             `-- migrations:statement-timeout=` directive, which satisfies this rule)",
        ),
        R::BanDuplicateColumnAssignments => {
            ("none; the statement fails", "assign each column once")
        }
        R::UnusedIgnore => ("none", "fix the rule name in the `squawk-ignore` comment"),
    }
}

fn squawk_default(rule: SquawkRule) -> bool {
    !rule.is_opt_in() && !SQUAWK_OFF_BY_DEFAULT.contains(&rule)
}

/// Every squawk rule we expose (aliases and the rules ours replace left out).
fn squawk_rules() -> impl Iterator<Item = SquawkRule> {
    enum_iterator::all::<SquawkRule>().filter(|r| {
        r.expands_to().is_empty() && !REPLACED.iter().any(|(name, _)| *name == r.to_string())
    })
}

/// Every rule, ours first, then squawk's in squawk's order.
pub fn all_rules() -> Vec<RuleInfo> {
    let mut rules: Vec<RuleInfo> = OURS.to_vec();
    for rule in squawk_rules() {
        let (lock, fix) = squawk_texts(rule);
        rules.push(RuleInfo {
            id: squawk_id(rule),
            origin: Origin::Squawk,
            default: squawk_default(rule),
            lock,
            fix,
        });
    }
    rules
}

/// A squawk rule's id, as `&'static str`.
pub(crate) fn squawk_id(rule: SquawkRule) -> &'static str {
    // `Rule`'s Display writes a fixed string per variant; keep one leaked copy of each.
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static IDS: OnceLock<Mutex<HashMap<SquawkRule, &'static str>>> = OnceLock::new();
    let ids = IDS.get_or_init(Default::default);
    let mut ids = ids.lock().unwrap_or_else(|e| e.into_inner());
    ids.entry(rule)
        .or_insert_with(|| Box::leak(rule.to_string().into_boxed_str()))
}

/// The lock and fix of a rule by id (`None` for an unknown id).
pub fn rule_info(id: &str) -> Option<RuleInfo> {
    all_rules().into_iter().find(|r| r.id == id)
}

/// A rule name that no rule has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRule(pub String);

impl fmt::Display for UnknownRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown lint rule `{}`; `migrations lint --list-rules` lists them",
            self.0
        )
    }
}

impl std::error::Error for UnknownRule {}

/// The rules to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    enabled: BTreeSet<&'static str>,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            enabled: all_rules()
                .into_iter()
                .filter(|r| r.default)
                .map(|r| r.id)
                .collect(),
        }
    }
}

impl RuleSet {
    /// `select` (every default rule when empty) minus `exclude`. Names are rule ids, squawk's
    /// aliases, or the groups `all` (every rule, opt-in ones too) and `default`.
    pub fn new<S: AsRef<str>>(select: &[S], exclude: &[S]) -> Result<RuleSet, UnknownRule> {
        let all = all_rules();
        let mut enabled = BTreeSet::new();
        if select.is_empty() {
            enabled = RuleSet::default().enabled;
        }
        for name in select {
            enabled.extend(resolve(name.as_ref(), &all)?);
        }
        for name in exclude {
            for id in resolve(name.as_ref(), &all)? {
                enabled.remove(id);
            }
        }
        Ok(RuleSet { enabled })
    }

    /// Only the given rules (for tests and tools).
    pub fn only(ids: &[&str]) -> Result<RuleSet, UnknownRule> {
        RuleSet::new(ids, &[])
    }

    /// Whether the rule with this id (not an alias or group) will run.
    pub fn contains(&self, id: &str) -> bool {
        self.enabled.contains(id)
    }

    /// The ids of the rules that will run, in alphabetical order.
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.enabled.iter().copied()
    }

    /// The squawk rules to hand to squawk.
    pub(crate) fn squawk(&self) -> Vec<SquawkRule> {
        squawk_rules()
            .filter(|r| self.contains(squawk_id(*r)))
            .collect()
    }
}

/// The rule ids a name stands for.
fn resolve(name: &str, all: &[RuleInfo]) -> Result<Vec<&'static str>, UnknownRule> {
    let name = name.trim();
    match name {
        "all" => return Ok(all.iter().map(|r| r.id).collect()),
        "default" => return Ok(all.iter().filter(|r| r.default).map(|r| r.id).collect()),
        _ => {}
    }
    if let Some(rule) = all.iter().find(|r| r.id == name) {
        return Ok(vec![rule.id]);
    }
    if let Some((_, ours)) = REPLACED.iter().find(|(old, _)| *old == name) {
        return Ok(vec![ours]);
    }
    // squawk's own aliases (`prefer-timestamptz`, `require-timeout-settings`).
    if let Ok(rule) = name.parse::<SquawkRule>() {
        let expanded: Vec<SquawkRule> = if rule.expands_to().is_empty() {
            vec![rule]
        } else {
            rule.expands_to().to_vec()
        };
        return Ok(expanded.into_iter().map(squawk_id).collect());
    }
    Err(UnknownRule(name.to_owned()))
}

/// Whether `name` is a rule id or a name that stands for rules (for `lint-ignore`).
pub(crate) fn is_known_name(name: &str) -> bool {
    resolve(name, &all_rules()).is_ok()
}

/// The rule ids a `lint-ignore` name silences.
pub(crate) fn ignored_ids(name: &str) -> Vec<&'static str> {
    resolve(name, &all_rules()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_rule_has_texts() {
        let all = all_rules();
        let ids: BTreeSet<&str> = all.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), all.len());
        for r in &all {
            assert!(!r.lock.is_empty() && !r.fix.is_empty(), "{}", r.id);
        }
        assert!(!ids.contains("ban-concurrent-index-creation-in-transaction"));
        assert!(!ids.contains("require-timeout-settings"));
    }

    #[test]
    fn selection() {
        let default = RuleSet::default();
        assert!(default.contains(MISSING_DOWN));
        assert!(default.contains("require-concurrent-index-creation"));
        assert!(!default.contains("require-lock-timeout"));
        assert!(!default.contains("ban-drop-index"));

        let only = RuleSet::new(&["missing-down", "ban-drop-index"], &[]).unwrap();
        assert_eq!(
            only.ids().collect::<Vec<_>>(),
            vec!["ban-drop-index", "missing-down"]
        );

        let s = RuleSet::new(&["default", "require-timeout-settings"], &["missing-down"]).unwrap();
        assert!(s.contains("require-lock-timeout") && s.contains("require-statement-timeout"));
        assert!(!s.contains(MISSING_DOWN));

        let s = RuleSet::new(&[], &["ban-concurrent-index-creation-in-transaction"]).unwrap();
        assert!(!s.contains(CONCURRENTLY_IN_TRANSACTION));
        let s = RuleSet::new(&["prefer-timestamptz"], &[]).unwrap();
        assert!(s.contains("prefer-timestamp-tz"));
        assert!(RuleSet::new(&["all"], &[])
            .unwrap()
            .contains("ban-drop-index"));

        let err = RuleSet::new(&["no-such-rule"], &[]).unwrap_err();
        assert_eq!(err, UnknownRule("no-such-rule".into()));
    }
}
