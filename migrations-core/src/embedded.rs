//! The migration set a service runs: built at compile time by `embed_migrations!` (a constant:
//! nothing is read, parsed or hashed at run time) or, with the `load` feature, from a directory
//! at run time (the CLI). Both give the same types, so the runner has one code path.

use std::borrow::Cow;

mod placeholders;
pub(crate) use placeholders::PlaceholderState;

/// An ordered set of migrations.
///
/// ```
/// use migrations_core::{embed_migrations, Migrations};
/// static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
/// let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version()).collect();
/// assert_eq!(versions, [1, 2]);
/// ```
#[derive(Debug, Clone)]
pub struct Migrations {
    list: Cow<'static, [Migration]>,
    /// Digest of the whole chain (see `migrations_format::chain_digest`), computed when the set
    /// was built, so the warm-start check hashes nothing.
    chain_digest: Cow<'static, str>,
    defaults: RunDefaults,
    /// `[placeholders]` of `migrations.toml` (loaded at run time), and whether the scripts
    /// are already substituted.
    placeholders: PlaceholderState,
    /// `[placeholders]` of `migrations.toml`, embedded by the macro.
    fixed_placeholders: &'static [(&'static str, &'static str)],
    /// The repeatable migrations (`R__<name>.sql`), in name order.
    repeatables: Cow<'static, [crate::repeatable::Repeatable]>,
}

/// The `[run]` table of the directory's `migrations.toml`, carried with the migrations so a
/// service and the CLI use the same history table and timeouts. `Migrator` methods override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunDefaults {
    /// `[run] schema`: schema of the history tables; `None` means
    /// [`DEFAULT_SCHEMA`](crate::DEFAULT_SCHEMA).
    pub schema: Option<Cow<'static, str>>,
    /// `[run] table`: name of the history table; `None` means
    /// [`DEFAULT_TABLE`](crate::DEFAULT_TABLE).
    pub table: Option<Cow<'static, str>>,
    /// `[run] search_path` for the migrations' own SQL; `None` leaves the session's.
    pub search_path: Option<Cow<'static, str>>,
    /// `[run] lock_timeout`, in milliseconds; `None` means
    /// [`DEFAULT_LOCK_TIMEOUT`](crate::DEFAULT_LOCK_TIMEOUT).
    pub lock_timeout_ms: Option<u64>,
    /// `[run] statement_timeout`, in milliseconds (0: none); `None` means
    /// [`DEFAULT_STATEMENT_TIMEOUT`](crate::DEFAULT_STATEMENT_TIMEOUT).
    pub statement_timeout_ms: Option<u64>,
    /// `[run] lock_wait`, in milliseconds: how long to wait for another runner's lock; `None`
    /// means [`DEFAULT_LOCK_WAIT`](crate::DEFAULT_LOCK_WAIT).
    pub lock_wait_ms: Option<u64>,
    /// `record_schema = true`: store a schema snapshot after each `up` that applies something.
    pub record_schema: bool,
}

/// One migration: its version, name, up script and optional down script.
#[derive(Debug, Clone)]
pub struct Migration {
    version: i64,
    digits: Cow<'static, str>,
    name: Cow<'static, str>,
    up: Script,
    down: Option<Script>,
    /// `-- migrations:phase=post` in the up file: run only by `up --phase post|all`.
    post_deploy: bool,
    /// `-- migrations:breaking` in the up file: binaries that lack it must not run once it
    /// is applied.
    breaking: bool,
}

/// One SQL file of a migration, ready to send.
#[derive(Debug, Clone)]
pub struct Script {
    sql: Cow<'static, str>,
    checksum: Cow<'static, str>,
    no_transaction: bool,
    lock_timeout_ms: Option<u64>,
    statement_timeout_ms: Option<u64>,
    /// Byte ranges of the statements in `sql`, for every script: a no-transaction script sends
    /// them one by one; a transactional one is sent whole, and the ranges say where a failure
    /// happened.
    statements: Cow<'static, [(usize, usize)]>,
    refused_in_transaction: Option<Refusal>,
    path: Cow<'static, str>,
    /// `-- migrations:lossy-down <reason>`: the reason.
    lossy_down: Option<Cow<'static, str>>,
    /// A Rust-code migration's function (`crate::code`): run instead of `sql`, which is empty.
    code: Option<crate::code::CodeFn>,
}

/// A statement that cannot run in the runner's transaction, found when the script was loaded:
/// one PostgreSQL refuses inside a transaction block, or transaction control (`COMMIT`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    line: u32,
    what: Cow<'static, str>,
}

impl Migrations {
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn __from_static(
        list: &'static [Migration],
        chain_digest: &'static str,
        schema: Option<&'static str>,
        table: Option<&'static str>,
        search_path: Option<&'static str>,
        lock_timeout_ms: Option<u64>,
        statement_timeout_ms: Option<u64>,
        lock_wait_ms: Option<u64>,
        record_schema: bool,
        placeholders: &'static [(&'static str, &'static str)],
        repeatables: &'static [crate::repeatable::Repeatable],
    ) -> Migrations {
        const fn borrowed(text: Option<&'static str>) -> Option<Cow<'static, str>> {
            match text {
                Some(t) => Some(Cow::Borrowed(t)),
                None => None,
            }
        }
        Migrations {
            list: Cow::Borrowed(list),
            chain_digest: Cow::Borrowed(chain_digest),
            placeholders: PlaceholderState::EMPTY,
            fixed_placeholders: placeholders,
            repeatables: Cow::Borrowed(repeatables),
            defaults: RunDefaults {
                schema: borrowed(schema),
                table: borrowed(table),
                search_path: borrowed(search_path),
                lock_timeout_ms,
                statement_timeout_ms,
                lock_wait_ms,
                record_schema,
            },
        }
    }

    /// The repeatable migrations (`R__<name>.sql`), in name order: applied after the
    /// versioned ones by an `up` without a target, whenever new or changed.
    pub fn repeatables(&self) -> &[crate::repeatable::Repeatable] {
        &self.repeatables
    }

    /// The directory's `[run]` settings (`migrations.toml`), the defaults of a `Migrator`.
    pub fn run_defaults(&self) -> &RunDefaults {
        &self.defaults
    }

    /// Digest of every migration's version, checksum and transaction mode.
    pub fn chain_digest(&self) -> &str {
        &self.chain_digest
    }

    /// The migrations in version order.
    pub fn iter(&self) -> std::slice::Iter<'_, Migration> {
        self.list.iter()
    }

    /// How many migrations the set holds.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the set holds no migration (an empty directory); running it only creates the
    /// history tables.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Adds `migration` in version order and recomputes the chain digest (its version is
    /// new: the caller checked).
    pub(crate) fn insert(&mut self, migration: Migration) {
        let list = self.list.to_mut();
        let at = list.partition_point(|m| {
            migrations_format::Version::compare_digits(
                m.version_digits(),
                migration.version_digits(),
            ) == std::cmp::Ordering::Less
        });
        list.insert(at, migration);
        self.chain_digest = Cow::Owned(migrations_format::chain_digest(
            self.list
                .iter()
                .map(|m| (m.version, m.up.checksum.as_ref(), m.up.no_transaction)),
        ));
    }

    /// The migration with this version, if there is one.
    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.list.iter().find(|m| m.version == version)
    }

    /// Loads a migrations directory at run time (what the CLI does). Services embed their
    /// migrations with `embed_migrations!` instead.
    ///
    /// The path is used as given (relative to the current directory, not to `Cargo.toml`). The
    /// error lists every problem in the directory, each naming its file and line.
    ///
    /// ```
    /// use migrations_core::Migrations;
    ///
    /// let migrations = Migrations::from_dir("tests/fixtures/doc")?;
    /// assert_eq!(migrations.len(), 2);
    /// # Ok::<(), migrations_format::LoadError>(())
    /// ```
    #[cfg(feature = "load")]
    pub fn from_dir(
        path: impl AsRef<std::path::Path>,
    ) -> Result<Migrations, migrations_format::LoadError> {
        let directory = migrations_format::load_dir(path.as_ref())?;
        Ok(Migrations::from_loaded(directory))
    }

    /// Builds the set from a directory the format crate has loaded.
    #[cfg(feature = "load")]
    pub fn from_directory(directory: &migrations_format::Directory) -> Migrations {
        Migrations::from_loaded(directory.clone())
    }

    /// [`Migrations::from_directory`], taking the directory's texts instead of copying them
    /// (a large seed-data migration is held once).
    #[cfg(feature = "load")]
    fn from_loaded(mut directory: migrations_format::Directory) -> Migrations {
        let list = std::mem::take(&mut directory.migrations)
            .into_iter()
            .map(|m| Migration {
                version: m.version.value(),
                digits: Cow::Owned(m.version.digits().to_owned()),
                post_deploy: m.up.directives.post_deploy.is_some(),
                breaking: m.up.directives.breaking.is_some(),
                name: Cow::Owned(m.name),
                up: Script::from_owned_file(m.up),
                down: m.down.map(Script::from_owned_file),
            })
            .collect::<Vec<_>>();
        let chain_digest = migrations_format::chain_digest(
            list.iter()
                .map(|m| (m.version, m.up.checksum.as_ref(), m.up.no_transaction)),
        );
        let run = &directory.settings.run;
        // Validated when the settings were read.
        let durations = run.durations().unwrap_or_default();
        let ms = |d: Option<std::time::Duration>| d.map(duration_ms);
        Migrations {
            list: Cow::Owned(list),
            chain_digest: Cow::Owned(chain_digest),
            placeholders: PlaceholderState::loaded(&directory.settings),
            fixed_placeholders: &[],
            repeatables: directory
                .repeatables
                .iter()
                .map(crate::repeatable::Repeatable::from_source)
                .collect(),
            defaults: RunDefaults {
                schema: run.schema.clone().map(Cow::Owned),
                table: run.table.clone().map(Cow::Owned),
                search_path: run.search_path.clone().map(Cow::Owned),
                lock_timeout_ms: ms(durations.lock_timeout),
                statement_timeout_ms: ms(durations.statement_timeout),
                lock_wait_ms: ms(durations.lock_wait),
                record_schema: directory.settings.record_schema,
            },
        }
    }
}

/// A directory loaded by `migrations_format::load_dir_with`, its texts moved, not copied.
#[cfg(feature = "load")]
impl From<migrations_format::Directory> for Migrations {
    fn from(directory: migrations_format::Directory) -> Migrations {
        Migrations::from_loaded(directory)
    }
}

impl<'a> IntoIterator for &'a Migrations {
    type Item = &'a Migration;
    type IntoIter = std::slice::Iter<'a, Migration>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Migration {
    #[doc(hidden)]
    pub const fn __new(
        version: i64,
        digits: &'static str,
        name: &'static str,
        up: Script,
        down: Option<Script>,
    ) -> Migration {
        Migration {
            version,
            digits: Cow::Borrowed(digits),
            name: Cow::Borrowed(name),
            up,
            down,
            post_deploy: false,
            breaking: false,
        }
    }

    /// [`Migration::__new`] with the up file's deploy directives (`phase=post`, `breaking`);
    /// the macro calls this one only when one is set.
    #[doc(hidden)]
    pub const fn __new_deploy(
        version: i64,
        digits: &'static str,
        name: &'static str,
        up: Script,
        down: Option<Script>,
        post_deploy: bool,
        breaking: bool,
    ) -> Migration {
        Migration {
            version,
            digits: Cow::Borrowed(digits),
            name: Cow::Borrowed(name),
            up,
            down,
            post_deploy,
            breaking,
        }
    }

    /// A migration built at run time (a code migration).
    pub(crate) fn from_parts(
        version: i64,
        digits: Cow<'static, str>,
        name: Cow<'static, str>,
        up: Script,
        down: Option<Script>,
    ) -> Migration {
        Migration {
            version,
            digits,
            name,
            up,
            down,
            post_deploy: false,
            breaking: false,
        }
    }

    /// A migration known only from its history row, to revert with the down script the
    /// database stored when it was applied (`down --stored-downs`). Its up script is empty:
    /// it is never applied.
    pub(crate) fn stored(
        row: &crate::history::AppliedMigration,
        down_sql: String,
        down_checksum: String,
        down_no_transaction: bool,
    ) -> Migration {
        let directives = migrations_format::directive::parse_header(&down_sql).unwrap_or_default();
        let ms = |d: Option<std::time::Duration>| {
            d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        };
        let empty = Script {
            sql: Cow::Borrowed(""),
            checksum: Cow::Owned(row.checksum.clone()),
            no_transaction: row.no_transaction,
            lock_timeout_ms: None,
            statement_timeout_ms: None,
            statements: Cow::Borrowed(&[]),
            refused_in_transaction: None,
            path: Cow::Borrowed(""),
            lossy_down: None,
            code: None,
        };
        let down = Script {
            statements: Cow::Owned(migrations_format::statement_ranges(&down_sql)),
            sql: Cow::Owned(down_sql),
            checksum: Cow::Owned(down_checksum),
            no_transaction: down_no_transaction,
            lock_timeout_ms: ms(directives.lock_timeout),
            statement_timeout_ms: ms(directives.statement_timeout),
            // The server refuses such a statement itself; the check at load time is for files.
            refused_in_transaction: None,
            path: Cow::Owned(format!(
                "(down of {} {} stored in the history)",
                row.version, row.name
            )),
            lossy_down: directives.lossy_down.map(Cow::Owned),
            code: None,
        };
        Migration {
            version: row.version,
            digits: Cow::Owned(row.version_digits.clone()),
            name: Cow::Owned(row.name.clone()),
            up: empty,
            down: Some(down),
            post_deploy: false,
            breaking: row.breaking,
        }
    }

    /// The version's value (diesel's dashes dropped).
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The version as the up file's name (or diesel's folder name) writes it
    /// (`2025-08-01-000015`, `0004`): the spelling people read in messages. `None` when the
    /// path does not name this version (a code migration's, a file named otherwise).
    pub fn file_spelling(&self) -> Option<String> {
        let path = std::path::Path::new(self.up().path());
        let file = path.file_name()?.to_str()?;
        let stem = if file == "up.sql" {
            path.parent()?.file_name()?.to_str()?
        } else {
            file
        };
        let spelling = stem.split('_').next()?;
        // A path that names another version (a code migration's, a renamed file) is not
        // this version's spelling.
        let agrees = migrations_format::Version::parse(spelling).ok()?.value() == self.version();
        agrees.then(|| spelling.to_owned())
    }

    /// The version's digits as written, dashes dropped (`2019-02-26-002946` gives
    /// `20190226002946`). Ordering is decided on these, as diesel does for timestamps.
    pub fn version_digits(&self) -> &str {
        &self.digits
    }

    /// The name after `<version>_` in the file or folder name, as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the normalised up file, 64 lowercase hex digits.
    pub fn checksum(&self) -> &str {
        &self.up.checksum
    }

    /// Whether the up script runs outside a transaction.
    pub fn no_transaction(&self) -> bool {
        self.up.no_transaction
    }

    /// Whether the migration is a post-deployment (contract) one (`-- migrations:phase=post`):
    /// a plain `up` leaves it pending; `up --phase post` or `--phase all` applies it.
    pub fn post_deploy(&self) -> bool {
        self.post_deploy
    }

    /// Whether the migration is breaking (`-- migrations:breaking`): once it is applied, a
    /// binary that lacks it refuses to run.
    pub fn breaking(&self) -> bool {
        self.breaking
    }

    /// The up script, which applies the migration.
    pub fn up(&self) -> &Script {
        &self.up
    }

    /// The down script, which reverts the migration; `None` when it has no down file (it
    /// cannot be reverted by `down` or `redo`).
    pub fn down(&self) -> Option<&Script> {
        self.down.as_ref()
    }
}

impl Script {
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn __new(
        sql: &'static str,
        checksum: &'static str,
        no_transaction: bool,
        lock_timeout_ms: Option<u64>,
        statement_timeout_ms: Option<u64>,
        statements: &'static [(usize, usize)],
        refused_in_transaction: Option<(u32, &'static str)>,
        path: &'static str,
        lossy_down: Option<&'static str>,
    ) -> Script {
        Script {
            path: Cow::Borrowed(path),
            sql: Cow::Borrowed(sql),
            checksum: Cow::Borrowed(checksum),
            no_transaction,
            lock_timeout_ms,
            statement_timeout_ms,
            statements: Cow::Borrowed(statements),
            refused_in_transaction: match refused_in_transaction {
                Some((line, what)) => Some(Refusal {
                    line,
                    what: Cow::Borrowed(what),
                }),
                None => None,
            },
            lossy_down: match lossy_down {
                Some(reason) => Some(Cow::Borrowed(reason)),
                None => None,
            },
            code: None,
        }
    }

    /// A code migration's script: no SQL, the function, the declared checksum.
    pub(crate) fn of_code(
        code: crate::code::CodeFn,
        checksum: String,
        no_transaction: bool,
        path: String,
    ) -> Script {
        Script {
            sql: Cow::Borrowed(""),
            checksum: Cow::Owned(checksum),
            no_transaction,
            lock_timeout_ms: None,
            statement_timeout_ms: None,
            statements: Cow::Borrowed(&[]),
            refused_in_transaction: None,
            path: Cow::Owned(path),
            lossy_down: None,
            code: Some(code),
        }
    }

    /// The function of a Rust-code migration ([`Migrations::with_code`]); `None` for a file.
    pub fn code(&self) -> Option<crate::code::CodeFn> {
        self.code
    }

    #[cfg(feature = "load")]
    pub(crate) fn from_file(file: &migrations_format::SqlFile) -> Script {
        Script::from_owned_file(file.clone())
    }

    /// [`Script::from_file`], taking the file's text instead of copying it.
    #[cfg(feature = "load")]
    pub(crate) fn from_owned_file(file: migrations_format::SqlFile) -> Script {
        Script {
            path: Cow::Owned(shown_path(&file.path)),
            // The loader's split: the file is not split again.
            statements: Cow::Owned(file.statements),
            sql: Cow::Owned(file.text),
            checksum: Cow::Owned(file.checksum.to_hex()),
            no_transaction: file.no_transaction,
            lock_timeout_ms: file.directives.lock_timeout.map(duration_ms),
            statement_timeout_ms: file.directives.statement_timeout.map(duration_ms),
            refused_in_transaction: file.non_transactional.first().map(|s| Refusal {
                line: s.line,
                what: Cow::Owned(s.what.to_owned()),
            }),
            lossy_down: file.directives.lossy_down.clone().map(Cow::Owned),
            code: None,
        }
    }

    /// The reason of the file's `-- migrations:lossy-down <reason>` directive: a down that
    /// cannot restore data on purpose (`down`/`redo` over it need `allow_data_loss`).
    pub fn lossy_down(&self) -> Option<&str> {
        self.lossy_down.as_deref()
    }

    /// The normalised SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// SHA-256 of the normalised text, 64 lowercase hex digits.
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// Whether the script runs outside a transaction block, statement by statement (its
    /// `no-transaction` directive, or diesel's `run_in_transaction = false`).
    pub fn no_transaction(&self) -> bool {
        self.no_transaction
    }

    /// The file's `lock-timeout` directive, in milliseconds.
    pub fn lock_timeout_ms(&self) -> Option<u64> {
        self.lock_timeout_ms
    }

    /// The file's `statement-timeout` directive, in milliseconds.
    pub fn statement_timeout_ms(&self) -> Option<u64> {
        self.statement_timeout_ms
    }

    /// The script's statements, split when the set was built (SPEC 3.3), without their
    /// terminating `;`. A no-transaction script sends each as a query of its own; a
    /// transactional one is sent whole, and the split only says where a failure happened.
    pub fn statements(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.statements
            .iter()
            .map(move |&(start, end)| self.sql.get(start..end).unwrap_or_default())
    }

    /// Byte ranges of [`Script::statements`] in [`Script::sql`].
    pub(crate) fn ranges(&self) -> &[(usize, usize)] {
        &self.statements
    }

    /// The file as the user knows it: relative to the crate's manifest directory for embedded
    /// migrations (`migrations/20240101000000_init/up.sql`), the path as found under the
    /// directory given to the loader otherwise. Errors name it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// 1-based line of byte `offset` of the script.
    pub(crate) fn line_at(&self, offset: usize) -> u32 {
        let offset = floor_char_boundary(&self.sql, offset);
        self.sql[..offset].matches('\n').count() as u32 + 1
    }

    /// The first statement that cannot run in the transaction the script runs in (one
    /// PostgreSQL refuses there, or transaction control), when it runs in one (only a down
    /// script can hold one: an up script with one does not load).
    pub fn refused_in_transaction(&self) -> Option<&Refusal> {
        if self.no_transaction {
            None
        } else {
            self.refused_in_transaction.as_ref()
        }
    }
}

impl Refusal {
    /// 1-based line of the statement.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The construct, for example `CREATE INDEX CONCURRENTLY` or `COMMIT`.
    pub fn what(&self) -> &str {
        &self.what
    }
}

#[cfg(feature = "load")]
fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A path for messages, with `/` as the separator on every platform (as the macro writes it).
#[cfg(feature = "load")]
fn shown_path(path: &std::path::Path) -> String {
    let text = path.to_string_lossy();
    if cfg!(windows) {
        text.replace('\\', "/")
    } else {
        text.into_owned()
    }
}

/// The largest char boundary of `text` at or below `offset`.
fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
impl Migrations {
    /// An in-memory set for the planner's tests: (version digits, name, checksum, no_tx, down).
    /// A name starting with `lossy` marks the down `lossy-down`.
    pub(crate) fn for_tests(items: &[(&str, &str, &str, bool, bool)]) -> Migrations {
        let script = |checksum: &str, no_transaction: bool| Script {
            sql: Cow::Owned("SELECT 1".to_owned()),
            checksum: Cow::Owned(checksum.to_owned()),
            no_transaction,
            lock_timeout_ms: None,
            statement_timeout_ms: None,
            statements: Cow::Owned(Vec::new()),
            refused_in_transaction: None,
            path: Cow::Borrowed(""),
            lossy_down: None,
            code: None,
        };
        let list: Vec<Migration> = items
            .iter()
            .map(|(digits, name, checksum, no_tx, down)| Migration {
                version: digits.parse().unwrap(),
                digits: Cow::Owned(digits.to_string()),
                name: Cow::Owned(name.to_string()),
                up: script(checksum, *no_tx),
                // A migration named `lossy...` has a down marked `lossy-down`.
                down: down.then(|| Script {
                    lossy_down: name
                        .starts_with("lossy")
                        .then(|| Cow::Owned(format!("{name} cannot come back"))),
                    ..script("down", false)
                }),
                // A name starting with `post` is a post-deployment migration; one holding
                // `breaking` is breaking.
                post_deploy: name.starts_with("post"),
                breaking: name.contains("breaking"),
            })
            .collect();
        Migrations {
            list: Cow::Owned(list),
            chain_digest: Cow::Borrowed(""),
            placeholders: PlaceholderState::EMPTY,
            fixed_placeholders: &[],
            repeatables: Cow::Borrowed(&[]),
            defaults: RunDefaults::default(),
        }
    }
}
