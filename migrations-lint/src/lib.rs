#![warn(missing_docs)]
//! Safety lint for migrations (SPEC section 6): `migrations lint`.
//!
//! Two sources of rules run on every file, each knowing whether the runner wraps the file in
//! a transaction (its directive, or diesel's `metadata.toml`):
//!
//! - the [`squawk-linter`](https://crates.io/crates/squawk-linter) crate's rules (index
//!   without `CONCURRENTLY`, constraint without `NOT VALID`, `SET NOT NULL`, column type
//!   change, drop and rename, ...), with squawk's `assume_in_transaction` set from the file;
//! - ours, for what squawk cannot know or does not check: missing and empty downs, statements
//!   PostgreSQL refuses in a transaction block, a lock_timeout turned off, session-level
//!   `SET`s, a new enum value used in the transaction that adds it.
//!
//! Statements are cut by `migrations-format`'s splitter (as the runner cuts them, and as
//! `lint-ignore` comments name them), and whether one is refused in a transaction or is
//! transaction control is the loader's own check. What a statement does (the locks it
//! takes, the settings it changes, the relations it creates) is read from the syntax tree
//! squawk builds, once per file for squawk's rules and ours. That tree also lets us correct
//! squawk where it cannot know: an index or primary key on a table created earlier in the
//! same transaction (by any `CREATE TABLE`, `CREATE TABLE ... AS`, `SELECT INTO` or `CREATE
//! MATERIALIZED VIEW`) blocks nobody, and a column type change is a table rewrite or a
//! catalog change depending on the column's current type, which we follow through the
//! migrations before it.
//!
//! Down files are linted too, without the rules that flag what a rollback is for (dropping and
//! renaming). `-- migrations:lint-ignore <rule>` silences a rule for the statement after it, or
//! for the whole file in the header. Every [`Finding`] names its file, line and column, the
//! rule, what is wrong, the lock the statement takes, and the safe rewrite.
//!
//! Only the CLI depends on this crate: the service build (`migrations-core`, the macro) never
//! compiles squawk.

mod checks;
mod down_drops;
mod locks;
mod rewrites;
mod rows;
mod rules;
mod settings;
mod squawk;
mod syntax;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use migrations_format::directive::{parse_comment, Directive};
use migrations_format::settings::LintSettings;
use migrations_format::sql::Statement;
use migrations_format::{Direction, Directives, Directory, SqlFile, Version};

pub use rules::{all_rules, rule_info, Origin, RuleInfo, RuleSet, UnknownRule};

use checks::Notes;
use rewrites::Columns;
use syntax::{statement_at, FileSyntax, LineIndex, Parsed};

/// One finding: where, which rule, what is wrong, the lock taken and the safe rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file, as the directory was named.
    pub path: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// The rule's id, such as `require-concurrent-index-creation`.
    pub rule: &'static str,
    /// Whether the rule is ours or squawk's (squawk's ids and docs apply to the latter).
    pub origin: Origin,
    /// What is wrong.
    pub message: String,
    /// The safe rewrite.
    pub fix: String,
    /// The lock the statement takes (or what else makes it unsafe).
    pub lock: String,
}

impl fmt::Display for Finding {
    /// `path:line:col: rule: message`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.rule,
            self.message
        )
    }
}

/// Something the user should know that is not a finding: an unknown rule in a
/// `lint-ignore`, a file squawk could not parse completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file concerned, as the directory was named.
    pub path: PathBuf,
    /// 1-based line, when the warning is about one place (`None` when it is about the file).
    pub line: Option<u32>,
    /// What happened and what it means for the lint's results.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One file to lint.
#[derive(Debug, Clone, Copy)]
pub struct FileInput<'a> {
    /// The path shown in findings and warnings.
    pub path: &'a Path,
    /// The normalised text (as the loader keeps it).
    pub text: &'a str,
    /// Whether this is an up or a down file: down files skip the rules that flag what a
    /// rollback is for (dropping, renaming).
    pub direction: Direction,
    /// The runner runs the file outside a transaction.
    pub no_transaction: bool,
    /// The file's header directives; their `lint-ignore`s silence rules for the whole file.
    pub directives: &'a Directives,
}

impl<'a> FileInput<'a> {
    /// The input for one file of a loaded directory, borrowing its path, text, transaction
    /// mode and directives.
    pub fn new(file: &'a SqlFile, direction: Direction) -> FileInput<'a> {
        FileInput {
            path: &file.path,
            text: &file.text,
            direction,
            no_transaction: file.no_transaction,
            directives: &file.directives,
        }
    }
}

/// Findings and warnings of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// Findings of the selected rules that no `lint-ignore` silences.
    pub findings: Vec<Finding>,
    /// Things the user should know that are not findings (unknown rule names, unparsable SQL).
    pub warnings: Vec<Warning>,
}

/// A finding before ignores are applied and texts are added.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub rule: &'static str,
    /// The statement it is about, for `lint-ignore` comments before it.
    pub statement: Option<usize>,
    pub line: u32,
    pub column: u32,
    pub message: String,
    /// The lock, when the rule computed it for this statement.
    pub lock: Option<String>,
    /// The fix, when it differs from the rule's for this statement.
    pub fix: Option<String>,
}

impl Raw {
    pub(crate) fn at(
        rule: &'static str,
        statement: Option<usize>,
        line: u32,
        column: u32,
        message: String,
    ) -> Raw {
        Raw {
            rule,
            statement,
            line,
            column,
            message,
            lock: None,
            fix: None,
        }
    }

    pub(crate) fn at_statement(
        rule: &'static str,
        index: usize,
        statement: &Statement<'_>,
        message: String,
    ) -> Raw {
        Raw::at(rule, Some(index), statement.line, statement.column, message)
    }
}

/// The rules a file silences: for the whole file (header) and per statement.
struct Ignores {
    file: BTreeSet<&'static str>,
    statements: HashMap<usize, BTreeSet<&'static str>>,
}

impl Ignores {
    fn covers(&self, rule: &str, statement: Option<usize>) -> bool {
        self.file.contains(rule)
            || statement
                .and_then(|i| self.statements.get(&i))
                .is_some_and(|s| s.contains(rule))
    }
}

/// Reads `lint-ignore` names; unknown ones become warnings.
fn ignored(
    names: impl IntoIterator<Item = (String, u32)>,
    path: &Path,
    warnings: &mut Vec<Warning>,
) -> BTreeSet<&'static str> {
    let mut set = BTreeSet::new();
    for (name, line) in names {
        if rules::is_known_name(&name) {
            set.extend(rules::ignored_ids(&name));
        } else {
            warnings.push(Warning {
                path: path.to_path_buf(),
                line: Some(line),
                message: format!(
                    "`lint-ignore {name}` names no rule, so it silences nothing; \
                     `migrations lint --list-rules` lists them"
                ),
            });
        }
    }
    set
}

fn ignores(
    input: &FileInput<'_>,
    statements: &[Statement<'_>],
    warnings: &mut Vec<Warning>,
) -> Ignores {
    let header_lines: BTreeSet<u32> = input
        .directives
        .lint_ignore
        .iter()
        .map(|(_, l)| *l)
        .collect();
    let file = ignored(
        input.directives.lint_ignore.iter().cloned(),
        input.path,
        warnings,
    );
    let mut per_statement = HashMap::new();
    for (i, s) in statements.iter().enumerate() {
        let names: Vec<(String, u32)> = s
            .leading_comments
            .iter()
            .filter(|c| !header_lines.contains(&c.line))
            .filter_map(|c| match parse_comment(c.comment_body()?)? {
                Ok(Directive::LintIgnore(names)) => {
                    Some(names.into_iter().map(|n| (n, c.line)).collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .collect();
        if !names.is_empty() {
            per_statement.insert(i, ignored(names, input.path, warnings));
        }
    }
    Ignores {
        file,
        statements: per_statement,
    }
}

/// `empty-migration` and `unwritten-migration`: an up file that does nothing (comments
/// alone), or still holds the statement `migrations new` writes, which fails until replaced.
fn unwritten(statements: &[Statement<'_>], rules: &RuleSet) -> Vec<Raw> {
    let mut raw = Vec::new();
    if statements.is_empty() && rules.contains(rules::EMPTY_MIGRATION) {
        raw.push(Raw::at(
            rules::EMPTY_MIGRATION,
            None,
            1,
            1,
            "the up file holds only comments: applying it records the migration as applied \
             while changing nothing"
                .to_owned(),
        ));
    }
    if rules.contains(rules::UNWRITTEN_MIGRATION) {
        for (i, s) in statements.iter().enumerate() {
            if migrations_format::template::is_unwritten(s.text) {
                raw.push(Raw::at_statement(
                    rules::UNWRITTEN_MIGRATION,
                    i,
                    s,
                    "the up file still holds the statement `migrations new` wrote in place of \
                     the migration: applying it fails with \"write this migration\""
                        .to_owned(),
                ));
            }
        }
    }
    raw
}

/// Lints one file with `rules`.
pub fn lint_file(input: &FileInput<'_>, rules: &RuleSet) -> FileReport {
    lint_file_in(input, rules, &mut Columns::default(), None)
}

/// Lints one file; `columns` holds the column types the migrations before it left (and is
/// brought up to date with this file's), so a type change can be told a rewrite or not.
/// `up` is a down file's up (for `down-drops-existing`).
fn lint_file_in(
    input: &FileInput<'_>,
    rules: &RuleSet,
    columns: &mut Columns,
    up: Option<&SqlFile>,
) -> FileReport {
    let mut report = FileReport::default();
    // The statements' heads: every rule reads a statement's tokens from its start (the
    // classification), its text, or squawk's tree. A run of plain seed-data statements is one
    // (`syntax::FileSyntax`).
    let syntax = FileSyntax::read(input.text);
    let statements = &syntax.statements;
    let ignores = ignores(input, statements, &mut report.warnings);
    let parsed = &syntax.parsed;
    if let Some(panic) = &parsed.panic {
        report.warnings.push(Warning {
            path: input.path.to_path_buf(),
            line: None,
            message: format!(
                "squawk's parser failed on this file ({panic}); squawk's rules, and ours that \
                 read its syntax tree (locks, settings, enum values), were skipped here"
            ),
        });
    }

    let (mut raw, notes) = checks::check(input, statements, parsed, rules, columns);
    if input.direction == Direction::Down
        && statements.is_empty()
        && rules.contains(rules::EMPTY_DOWN)
    {
        raw.push(Raw::at(
            rules::EMPTY_DOWN,
            None,
            1,
            1,
            "the down file holds only comments: `migrations down` would record the migration as \
             reverted while changing nothing"
                .to_owned(),
        ));
    }
    if input.direction == Direction::Up {
        raw.extend(unwritten(statements, rules));
    }
    if let Some(up) = up.filter(|_| {
        rules.contains(rules::DOWN_DROPS_EXISTING) && input.directives.lossy_down.is_none()
    }) {
        let up_name = up.path.file_name().map_or_else(
            || up.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        raw.extend(down_drops::check(&up.text, &up_name, statements, parsed));
    }
    raw.extend(squawk_findings(
        input,
        statements,
        parsed,
        &notes,
        rules,
        &mut report.warnings,
    ));

    for r in raw {
        if ignores.covers(r.rule, r.statement) {
            continue;
        }
        let info = rule_info(r.rule);
        report.findings.push(Finding {
            path: input.path.to_path_buf(),
            line: r.line,
            column: r.column,
            rule: r.rule,
            origin: info.as_ref().map_or(Origin::Migrations, |i| i.origin),
            message: r.message,
            fix: r
                .fix
                .or_else(|| info.as_ref().map(|i| i.fix.to_owned()))
                .unwrap_or_default(),
            lock: r
                .lock
                .or_else(|| info.as_ref().map(|i| i.lock.to_owned()))
                .unwrap_or_default(),
        });
    }
    report
        .findings
        .sort_by(|a, b| (a.line, a.column, a.rule).cmp(&(b.line, b.column, b.rule)));
    report
}

/// squawk's rules whose findings do not apply to a table created earlier in the same
/// transaction: until it commits no other session sees the table, so its locks stall nobody.
/// squawk exempts such tables only when a plain `CREATE TABLE` made them, and not at all for
/// `adding-serial-primary-key-field`.
const NEW_TABLE_EXEMPT: &[squawk_linter::Rule] = &[
    squawk_linter::Rule::RequireConcurrentIndexCreation,
    squawk_linter::Rule::AddingSerialPrimaryKeyField,
    squawk_linter::Rule::DisallowedUniqueConstraint,
];

fn squawk_findings(
    input: &FileInput<'_>,
    statements: &[Statement<'_>],
    parsed: &Parsed,
    notes: &Notes,
    rules: &RuleSet,
    warnings: &mut Vec<Warning>,
) -> Vec<Raw> {
    use squawk_linter::Rule as R;
    let selected: Vec<R> = rules
        .squawk()
        .into_iter()
        .filter(|r| input.direction == Direction::Up || !rules::not_for_down(*r))
        // Re-running a transactional file is always safe: it rolled back whole.
        .filter(|r| input.no_transaction || *r != R::PreferRobustStmts)
        // The directives set what these rules ask for.
        .filter(|r| {
            !(*r == R::RequireLockTimeout
                && input.directives.lock_timeout.is_some_and(|d| !d.is_zero()))
        })
        .filter(|r| {
            !(*r == R::RequireStatementTimeout && input.directives.statement_timeout.is_some())
        })
        .collect();
    let Some(parse) = &parsed.parse else {
        return Vec::new(); // warned about already
    };
    let violations = match squawk::run(parse, input.text, !input.no_transaction, &selected) {
        Ok(violations) => violations,
        Err(panic) => {
            warnings.push(Warning {
                path: input.path.to_path_buf(),
                line: None,
                message: format!(
                    "squawk-linter failed on this file ({panic}); its rules were skipped here"
                ),
            });
            return Vec::new();
        }
    };
    let index = LineIndex::new(input.text);
    if !selected.is_empty() {
        if let Some(error) = parse.errors().first() {
            let (line, _) = index.position(usize::from(error.range().start()));
            warnings.push(Warning {
                path: input.path.to_path_buf(),
                line: Some(line),
                message: format!(
                    "squawk-linter cannot parse this statement ({}): check its syntax; \
                     squawk's rules may miss it",
                    error.message()
                ),
            });
        }
    }
    let afkc = rules.contains(rules::squawk_id(R::AddingForeignKeyConstraint));
    let ours_tc = rules.contains(rules::TRANSACTION_CONTROL_IN_TRANSACTION);
    violations
        .into_iter()
        .filter(|v| {
            // In a transactional file, transaction control is ours
            // (transaction-control-in-transaction, which reads statements as the loader and
            // the runner do: squawk's transaction-nesting also flags `ROLLBACK TO SAVEPOINT`).
            // squawk's still checks the BEGIN ... COMMIT blocks of no-transaction files.
            !(v.rule == R::TransactionNesting && !input.no_transaction && ours_tc)
        })
        .filter(|v| {
            // An index, primary key or unique constraint on a table created earlier in the
            // same transaction.
            let on_new_table = statement_at(statements, v.offset)
                .is_some_and(|i| notes.on_new_table.get(i) == Some(&true));
            !(on_new_table && NEW_TABLE_EXEMPT.contains(&v.rule))
        })
        .filter(|v| {
            // squawk's constraint-missing-not-valid fires on every ADD CONSTRAINT. NOT VALID
            // exists only for CHECK and FOREIGN KEY, and a foreign key is reported by
            // adding-foreign-key-constraint too: one finding per constraint. A CHECK on a
            // table created in the same transaction locks nobody.
            if v.rule != R::ConstraintMissingNotValid {
                return true;
            }
            let on_new_table = statement_at(statements, v.offset)
                .is_some_and(|i| notes.on_new_table.get(i) == Some(&true));
            use squawk_syntax::ast::Constraint as C;
            match parsed
                .node_at::<squawk_syntax::ast::AddConstraint>(v.offset)
                .and_then(|add| add.constraint())
            {
                Some(
                    C::UniqueConstraint(_) | C::PrimaryKeyConstraint(_) | C::ExcludeConstraint(_),
                ) => false,
                Some(C::ForeignKeyConstraint(_) | C::ReferencesConstraint(_)) => !afkc,
                Some(C::CheckConstraint(_)) => !on_new_table,
                _ => true,
            }
        })
        .map(|v| {
            let (line, column) = index.position(v.offset);
            let statement = statement_at(statements, v.offset);
            let mut raw = Raw::at(rules::squawk_id(v.rule), statement, line, column, v.message);
            // Our texts where squawk's say less than the truth.
            match v.rule {
                R::ChangingColumnType => {
                    if let Some(note) = notes.type_changes.get(&v.offset) {
                        raw.message.clone_from(&note.message);
                        raw.lock.clone_from(&note.lock);
                        raw.fix.clone_from(&note.fix);
                    }
                }
                R::AddingFieldWithDefault => {
                    if let Some(message) = notes.new_columns.get(&v.offset) {
                        raw.message.clone_from(message);
                    }
                }
                _ => {}
            }
            raw
        })
        .collect()
}

/// Why a lint could not run as asked (bad usage: exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LintError {
    /// A rule name in `--select`/`--exclude` or `[lint]` that no rule has.
    UnknownRule {
        /// The name that matched no rule.
        rule: UnknownRule,
        /// Where it was given: `--select`, `--exclude` or `migrations.toml [lint]`.
        given_in: String,
    },
    /// `--since` / `[lint] since` is not a version.
    BadSince {
        /// The value as given.
        since: String,
        /// Why it does not parse as a version.
        why: String,
        /// Where it was given: `--since` or `migrations.toml [lint]`.
        given_in: String,
    },
    /// A PATH that is not a migration file or folder of the directory.
    BadPath {
        /// The path as given.
        path: PathBuf,
        /// Why it cannot be linted (unreadable, or not in the directory).
        why: String,
    },
}

impl fmt::Display for LintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LintError::UnknownRule { rule, given_in } => write!(f, "{given_in}: {rule}"),
            LintError::BadSince {
                since,
                why,
                given_in,
            } => write!(f, "{given_in}: `{since}` is not a version: {why}"),
            LintError::BadPath { path, why } => write!(f, "{}: {why}", path.display()),
        }
    }
}

impl std::error::Error for LintError {}

/// What to lint and with which rules.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The rules to run (the default rules when built with `Options::default()`).
    pub rules: RuleSet,
    /// Lint only migrations newer than this version.
    pub since: Option<Version>,
    /// Lint only files that are, or are inside, one of these paths (all when empty).
    pub paths: Vec<PathBuf>,
}

impl Options {
    /// The options of a run: the command line's `select`, `exclude` and `since` each replace
    /// the `[lint]` table's value when given.
    pub fn resolve(
        settings: &LintSettings,
        select: &[String],
        exclude: &[String],
        since: Option<&str>,
        paths: Vec<PathBuf>,
    ) -> Result<Options, LintError> {
        const TOML: &str = "migrations.toml [lint]";
        let (select, select_from) = if select.is_empty() {
            (settings.select.as_slice(), TOML)
        } else {
            (select, "--select")
        };
        let (exclude, exclude_from) = if exclude.is_empty() {
            (settings.exclude.as_slice(), TOML)
        } else {
            (exclude, "--exclude")
        };
        fn unknown(given_in: &'static str) -> impl Fn(UnknownRule) -> LintError {
            move |rule| LintError::UnknownRule {
                rule,
                given_in: given_in.to_owned(),
            }
        }
        // Check each list on its own, so the message names where the bad name is.
        RuleSet::new(select, &[]).map_err(unknown(select_from))?;
        RuleSet::new(&[] as &[String], exclude).map_err(unknown(exclude_from))?;
        let rules = RuleSet::new(select, exclude).map_err(unknown(select_from))?;
        let (since, since_from) = match since {
            Some(s) => (Some(s), "--since"),
            None => (settings.since.as_deref(), TOML),
        };
        let since = since
            .map(|s| {
                Version::parse(s).map_err(|e| LintError::BadSince {
                    since: s.to_owned(),
                    why: e.to_string(),
                    given_in: since_from.to_owned(),
                })
            })
            .transpose()?;
        Ok(Options {
            rules,
            since,
            paths,
        })
    }
}

/// The findings of a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// In version order, up before down, then by position.
    pub findings: Vec<Finding>,
    /// Things the user should know that are not findings, in the same order.
    pub warnings: Vec<Warning>,
    /// Migrations and files linted.
    pub migrations: usize,
    /// Number of files (ups and downs) linted; those skipped by `since` or `paths` are not
    /// counted.
    pub files: usize,
}

impl Report {
    /// Findings per rule.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for f in &self.findings {
            *counts.entry(f.rule).or_insert(0) += 1;
        }
        counts
    }
}

/// Lints a loaded directory: the up and down file of every migration selected by
/// `options.since` and `options.paths`, with `options.rules`, plus the missing-down check.
///
/// Errors only for bad usage: a path in `options.paths` that is not a migration file or folder
/// of the directory. Findings are not errors; the caller decides (the CLI exits 3).
///
/// ```no_run
/// use std::path::Path;
/// use migrations_lint::{lint_directory, Options};
///
/// let dir = migrations_format::load_dir(Path::new("migrations"))?;
/// let report = lint_directory(&dir, &Options::default())?;
/// for finding in &report.findings {
///     println!("{finding}\n  lock: {}\n  fix: {}", finding.lock, finding.fix);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn lint_directory(dir: &Directory, options: &Options) -> Result<Report, LintError> {
    let selected = selected_files(dir, &options.paths)?;
    let wanted = |file: &SqlFile| selected.as_ref().is_none_or(|set| set.contains(&file.path));
    let mut report = Report::default();
    // The column types every migration so far leaves, so that a type change can be told a
    // rewrite or not: migrations before `since` and outside `paths` count too.
    let mut columns = Columns::default();
    for m in &dir.migrations {
        let skipped = options
            .since
            .as_ref()
            .is_some_and(|since| m.version <= *since);
        if skipped || !wanted(&m.up) {
            columns.follow(&m.up.text);
        }
        if skipped {
            continue;
        }
        let mut linted = false;
        if wanted(&m.up) {
            linted = true;
            report.files += 1;
            let mut file_report = lint_file_in(
                &FileInput::new(&m.up, Direction::Up),
                &options.rules,
                &mut columns,
                None,
            );
            if m.down.is_none() {
                file_report.findings.extend(missing_down(m, options));
            }
            report.add(file_report);
        }
        if let Some(down) = m.down.as_ref().filter(|f| wanted(f)) {
            linted = true;
            report.files += 1;
            // A down runs on the schema its up left; what it changes is gone for the next up.
            let mut on_up = columns.clone();
            let file_report = lint_file_in(
                &FileInput::new(down, Direction::Down),
                &options.rules,
                &mut on_up,
                Some(&m.up),
            );
            report.add(file_report);
        }
        report.migrations += usize::from(linted);
    }
    // Repeatables (`R__<name>.sql`) run after every versioned migration, each in its own
    // transaction: linted on the schema the migrations leave, whatever `since` says (they run
    // again whenever they change).
    for r in dir.repeatables.iter().filter(|r| wanted(&r.file)) {
        report.files += 1;
        report.migrations += 1;
        let mut after = columns.clone();
        report.add(lint_file_in(
            &FileInput::new(&r.file, Direction::Up),
            &options.rules,
            &mut after,
            None,
        ));
    }
    Ok(report)
}

impl Report {
    /// Adds a file's findings (sorted by position) and warnings.
    fn add(&mut self, mut file: FileReport) {
        file.findings
            .sort_by(|a, b| (a.line, a.column, a.rule).cmp(&(b.line, b.column, b.rule)));
        self.findings.extend(file.findings);
        self.warnings.extend(file.warnings);
    }
}

fn missing_down(m: &migrations_format::MigrationSource, options: &Options) -> Option<Finding> {
    let rule = rules::MISSING_DOWN;
    let silenced =
        m.up.directives
            .lint_ignore
            .iter()
            .any(|(name, _)| rules::ignored_ids(name).contains(&rule));
    if !options.rules.contains(rule) || silenced {
        return None;
    }
    let info = rule_info(rule)?;
    Some(Finding {
        path: m.up.path.clone(),
        line: 1,
        column: 1,
        rule,
        origin: Origin::Migrations,
        message: "this migration has no down file: `migrations down`, `redo` and `test` cannot \
                  revert it"
            .to_owned(),
        fix: info.fix.to_owned(),
        lock: info.lock.to_owned(),
    })
}

/// The files under the given paths (`None`: every file). Each path must exist and hold, or
/// be, at least one migration file of the directory.
fn selected_files(
    dir: &Directory,
    paths: &[PathBuf],
) -> Result<Option<BTreeSet<PathBuf>>, LintError> {
    if paths.is_empty() {
        return Ok(None);
    }
    let files: Vec<(PathBuf, PathBuf)> = dir
        .migrations
        .iter()
        .flat_map(|m| std::iter::once(&m.up).chain(m.down.as_ref()))
        .chain(dir.repeatables.iter().map(|r| &r.file))
        .filter_map(|f| f.path.canonicalize().ok().map(|c| (c, f.path.clone())))
        .collect();
    let mut selected = BTreeSet::new();
    for path in paths {
        let canonical = path.canonicalize().map_err(|e| LintError::BadPath {
            path: path.clone(),
            why: format!("cannot be read: {e}"),
        })?;
        let matching: Vec<&PathBuf> = files
            .iter()
            .filter(|(c, _)| c.starts_with(&canonical))
            .map(|(_, shown)| shown)
            .collect();
        if matching.is_empty() {
            return Err(LintError::BadPath {
                path: path.clone(),
                why: format!(
                    "is not a migration file or folder of `{}` (name another directory with \
                     --dir)",
                    dir.root.display()
                ),
            });
        }
        selected.extend(matching.into_iter().cloned());
    }
    Ok(Some(selected))
}
