//! The planner: from the migrations this binary knows, the history the database holds and what
//! was asked, decide what to run, or refuse with a drift report.
//!
//! Pure: no I/O, no clock, no database. Every decision of the runner is made here, so it is
//! tested table-driven without a server; the drivers only lock, read, call this and apply.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use migrations_format::Version;

use crate::embedded::{Migration, Migrations};
use crate::history::{AppliedMigration, State};

/// What was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Apply pending migrations, all or up to and including a version.
    Up {
        /// The last version to apply (inclusive); `None` applies every pending migration.
        to: Option<i64>,
    },
    /// Revert applied migrations, newest first.
    Down(DownTarget),
    /// Revert the newest N applied migrations, then apply them again.
    Redo {
        /// How many of the newest applied migrations to revert and apply again.
        count: usize,
    },
}

/// How far `down` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownTarget {
    /// The newest N applied migrations.
    Count(usize),
    /// Every applied migration above this version (which stays applied).
    To(i64),
    /// Every applied migration.
    All,
}

/// What to do about one kind of drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// Refuse to run.
    Error,
    /// Run, and report it as a warning.
    Warn,
    /// Run, and say nothing.
    Ignore,
}

/// The drift policies; the defaults are SPEC section 3.4's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftPolicy {
    /// For [`DriftKind::Edited`] (default: error).
    pub edited: Policy,
    /// For [`DriftKind::Missing`] (default: error).
    pub missing: Policy,
    /// For [`DriftKind::Future`] (default: warn).
    pub future: Policy,
    /// For [`DriftKind::OutOfOrder`] (default: error); only consulted when applying.
    /// [`DriftKind::Failed`] has no policy: it is always refused.
    pub out_of_order: Policy,
}

impl Default for DriftPolicy {
    fn default() -> Self {
        DriftPolicy {
            edited: Policy::Error,
            missing: Policy::Error,
            future: Policy::Warn,
            out_of_order: Policy::Error,
        }
    }
}

/// Which migrations an `up` applies, by deploy phase (`-- migrations:phase=post`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Phase {
    /// The pre-deployment migrations (every migration without `phase=post`): what a new
    /// binary applies while older ones may still be running. The default.
    #[default]
    Pre,
    /// The post-deployment (contract) migrations only, in version order, once every binary
    /// runs the new release. Refused while a pre-deployment migration below one is pending.
    Post,
    /// Every pending migration, in version order.
    All,
}

impl Phase {
    /// `pre`, `post` or `all`, as `up --phase` spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pre => "pre",
            Phase::Post => "post",
            Phase::All => "all",
        }
    }

    /// Whether an `up` of this phase applies `migration`.
    pub fn includes(self, migration: &Migration) -> bool {
        match self {
            Phase::Pre => !migration.post_deploy(),
            Phase::Post => migration.post_deploy(),
            Phase::All => true,
        }
    }
}

/// What the planner is told besides the migrations, the history and the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PlanOptions {
    /// What to do about each kind of drift.
    pub policy: DriftPolicy,
    /// Which migrations an `up` (and a `redo`'s ups are unaffected) applies.
    pub phase: Phase,
    /// Let a `down` revert applied migrations the binary lacks with the down script the
    /// database stored when they were applied (`down --stored-downs`).
    pub stored_downs: bool,
}

impl PlanOptions {
    /// The defaults with `policy`.
    pub fn with_policy(policy: DriftPolicy) -> PlanOptions {
        PlanOptions {
            policy,
            ..PlanOptions::default()
        }
    }
}

/// Kinds of drift between the binary and the database (SPEC 3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DriftKind {
    /// Applied with a checksum (or transaction mode) other than the file's.
    Edited,
    /// Applied, absent from the binary, below its newest version.
    Missing,
    /// Applied, above the newest version the binary knows.
    Future,
    /// Pending, below the highest applied version.
    OutOfOrder,
    /// A no-transaction migration failed or its runner died part-way.
    Failed,
    /// A down file changed since its migration was applied (the history stored the down's
    /// checksum); only reported when reverting, as a warning: the file's down runs.
    DownEdited,
}

impl DriftKind {
    /// A stable identifier (`edited`, `out-of-order`, ...) for messages and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Edited => "edited",
            DriftKind::Missing => "missing",
            DriftKind::Future => "future",
            DriftKind::OutOfOrder => "out-of-order",
            DriftKind::Failed => "failed",
            DriftKind::DownEdited => "down-edited",
        }
    }

    fn explain(self) -> &'static str {
        match self {
            DriftKind::Edited => {
                "applied migrations whose file changed since (restore the file, or accept the new \
                 checksum with `migrations repair <version> --accept-checksum`)"
            }
            DriftKind::Missing => {
                "applied migrations absent from the migrations being run (the directory, or the \
                 service's embedded ones), below their newest version (restore the files, or run \
                 a release that has them)"
            }
            DriftKind::Future => {
                "applied migrations newer than any of the migrations being run (an older release \
                 after a rollback?)"
            }
            DriftKind::OutOfOrder => {
                "pending migrations below the highest applied version (rename them above it, or \
                 pass --allow-out-of-order)"
            }
            DriftKind::Failed => {
                "no-transaction migrations that failed part-way (fix the file, then run \
                 `migrations repair <version>`, which drops the invalid indexes named, and `up` \
                 again)"
            }
            DriftKind::DownEdited => {
                "down files changed since their migration was applied (the file's down runs; \
                 the one applied with the migration is stored in the history)"
            }
        }
    }
}

/// One migration concerned by a drift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftItem {
    /// The migration's version.
    pub version: i64,
    /// The migration's name (the file's, or the history row's when the binary lacks it).
    pub name: String,
    /// What differs, for example both checksums.
    pub detail: String,
}

/// One kind of drift and every migration concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Which kind of drift.
    pub kind: DriftKind,
    /// Every migration concerned, in version order.
    pub items: Vec<DriftItem>,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.kind.explain())?;
        for item in &self.items {
            write!(f, "\n  {} {}", item.version, item.name)?;
            if !item.detail.is_empty() {
                write!(f, ": {}", item.detail)?;
            }
        }
        Ok(())
    }
}

/// Direction of a step: up (the migration's up script) or down. The format crate's type, so a
/// file's direction and a step's are one type.
pub use migrations_format::Direction;

/// One migration to run in one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The migration's version.
    pub version: i64,
    /// The migration's name.
    pub name: String,
    /// Whether the step applies or reverts the migration.
    pub direction: Direction,
    /// Whether this step's script runs outside a transaction.
    pub no_transaction: bool,
    /// A down run with the script the database stored when the migration was applied (the
    /// binary lacks its file; `down --stored-downs`).
    pub stored_down: bool,
}

/// What the runner will do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// The steps in the order they run (a redo's downs before its ups); empty when there is
    /// nothing to do.
    pub steps: Vec<Step>,
    /// Drift allowed by its policy, to report as warnings.
    pub warnings: Vec<Drift>,
}

/// Why the planner refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Drift that the policy makes an error; nothing was run.
    #[error("{}", display_drifts(.0))]
    Drift(Vec<Drift>),
    /// The target version (carried) is not a migration of this set.
    #[error("version {0} is not one of the migrations being run; give one of their versions (`migrations status` lists them)")]
    UnknownTarget(i64),
    /// A migration to revert has no down script; nothing was run.
    #[error("cannot revert {version} {name}: it has no down file")]
    NoDown {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: String,
    },
    /// A migration to revert is applied but unknown to this binary, so there is no down
    /// script; nothing was run.
    #[error(
        "cannot revert {version} {name}: it is applied in the database but is not one of the \
         migrations being run, so there is no down script to run"
    )]
    UnknownApplied {
        /// The applied version.
        version: i64,
        /// Its name, from the history row.
        name: String,
    },
    /// The database has a breaking migration (`-- migrations:breaking`) newer than every
    /// migration being run: this release is older than the database's schema allows.
    #[error(
        "the database has breaking migration {version} {name}, newer than the migrations this \
         program carries: deploy a version that has it"
    )]
    Incompatible {
        /// The newest breaking version applied.
        version: i64,
        /// Its name, from the history row.
        name: String,
    },
    /// A migration to revert is unknown here, but the database stored its down script: the
    /// stored script runs only when asked.
    #[error(
        "cannot revert {version} {name}: it is not one of the migrations being run; the \
         database stored its down script when it was applied: pass --stored-downs \
         (`Migrator::stored_downs(true)`) to run it"
    )]
    StoredDownNotAllowed {
        /// The applied version.
        version: i64,
        /// Its name, from the history row.
        name: String,
    },
    /// Migrations to revert with stored downs have none stored: applied before stored downs
    /// existed (history format 1), or without a down file. Nothing was run.
    #[error(
        "cannot revert with stored downs: {} {} no down script stored in the database (applied \
         before stored downs existed, or without a down file); revert {} with a release that \
         has {} files",
        list_versions(.0),
        if .0.len() == 1 { "has" } else { "have" },
        if .0.len() == 1 { "it" } else { "them" },
        if .0.len() == 1 { "its" } else { "their" }
    )]
    NoStoredDown(Vec<(i64, String)>),
    /// `up --to` names a post-deployment migration while the phase leaves it out.
    #[error(
        "{version} {name} is a post-deployment migration (`-- migrations:phase=post`); run \
         `up --phase post` (or `--phase all`) to apply it"
    )]
    TargetIsPostDeploy {
        /// The target version.
        version: i64,
        /// Its name.
        name: String,
    },
    /// `up --phase post` while a pre-deployment migration below a pending post-deployment one
    /// is pending: the release's own `up` has not run yet.
    #[error(
        "{version} {name} (pre-deployment) is pending below post-deployment migrations; run \
         `up` (the pre-deployment phase) first, or `up --phase all`"
    )]
    PrePending {
        /// The pending pre-deployment version.
        version: i64,
        /// Its name.
        name: String,
    },
    /// A down to run says `-- migrations:lossy-down <reason>` (it cannot restore the data its
    /// up changed) and the loss was not allowed; nothing was run.
    #[error(
        "cannot revert {version} {name} without losing data: its down file says \"{reason}\" \
         (-- migrations:lossy-down); nothing was run; to accept the loss, run it again with \
         --allow-data-loss (the library: `Migrator::allow_data_loss(true)`)"
    )]
    LossyDown {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: String,
        /// The directive's reason.
        reason: String,
    },
}

fn list_versions(items: &[(i64, String)]) -> String {
    items
        .iter()
        .map(|(v, n)| format!("{v} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn display_drifts(drifts: &[Drift]) -> String {
    let mut out = String::from("the database has drifted from the migrations; nothing was run");
    for d in drifts {
        out.push('\n');
        out.push_str(&d.to_string());
    }
    out
}

impl PlanError {
    /// The drift kinds refused, when this is a drift refusal.
    pub fn drift_kinds(&self) -> Vec<DriftKind> {
        match self {
            PlanError::Drift(d) => d.iter().map(|d| d.kind).collect(),
            _ => Vec::new(),
        }
    }
}

/// The state of one migration, as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Known to the binary, not applied: the next `up` applies it.
    Pending,
    /// A post-deployment migration (`-- migrations:phase=post`), not applied: `up --phase
    /// post` applies it.
    PendingPost,
    /// Applied, and the file matches its history row.
    Applied,
    /// Applied, but the file's checksum or transaction mode changed since.
    Edited,
    /// Applied, absent from the binary, below its newest version.
    Missing,
    /// Applied, above the newest version the binary knows.
    Future,
    /// Pending, below the highest applied version (refused by default).
    OutOfOrder,
    /// A no-transaction migration that failed part-way; `repair` clears it.
    Failed,
    /// A no-transaction migration whose runner holds the lock right now, or died.
    Running,
    /// Applied by a service from a Rust-code migration (`Migrations::with_code`) this binary
    /// lacks (the CLI cannot run code): not drift.
    Code,
}

impl Status {
    /// A stable identifier (`pending`, `out-of-order`, ...) for `status` output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::PendingPost => "pending (post-deploy)",
            Status::Applied => "applied",
            Status::Edited => "edited",
            Status::Missing => "missing",
            Status::Future => "future",
            Status::OutOfOrder => "out-of-order",
            Status::Failed => "failed",
            Status::Running => "running",
            Status::Code => "code (applied by the service)",
        }
    }
}

/// One line of `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// The migration's version.
    pub version: i64,
    /// The version's digits, dashes dropped (the order lines are sorted in).
    pub version_digits: String,
    /// The migration's name (the file's, or the history row's when the binary lacks it).
    pub name: String,
    /// Its state, drift included.
    pub status: Status,
}

/// The two sources side by side, with the drift found between them.
struct Comparison<'a> {
    migrations: &'a Migrations,
    applied: HashMap<i64, &'a AppliedMigration>,
    drifts: Vec<Drift>,
    /// Known migrations not in the history, in order.
    pending: Vec<&'a Migration>,
    /// Future rows recorded as breaking, in version order: the compatibility floor.
    breaking_future: Vec<DriftItem>,
}

fn cmp_digits(a: &str, b: &str) -> Ordering {
    Version::compare_digits(a, b)
}

impl<'a> Comparison<'a> {
    fn new(migrations: &'a Migrations, history: &'a [AppliedMigration]) -> Comparison<'a> {
        let applied: HashMap<i64, &AppliedMigration> =
            history.iter().map(|row| (row.version, row)).collect();
        let newest_known = migrations.iter().last().map(|m| m.version_digits());
        let mut edited = Vec::new();
        let mut missing = Vec::new();
        let mut future = Vec::new();
        let mut failed = Vec::new();

        let mut rows: Vec<&AppliedMigration> = history.iter().collect();
        rows.sort_by(|a, b| cmp_digits(&a.version_digits, &b.version_digits));
        for row in &rows {
            let item = |detail: String| DriftItem {
                version: row.version,
                name: row.name.clone(),
                detail,
            };
            if row.state != State::Applied {
                let detail = match (&row.error, row.statements_done, row.statements_total) {
                    // A code migration records no statement count (0).
                    (Some(e), Some(done), Some(total)) if total > 0 => {
                        format!("{} at statement {} of {total}: {e}", row.state, done + 1)
                    }
                    (Some(e), _, _) => format!("{}: {e}", row.state),
                    _ => row.state.to_string(),
                };
                let mut detail = detail;
                if !row.invalid_indexes.is_empty() {
                    detail.push_str(&format!(
                        "; invalid indexes left behind: {}",
                        row.invalid_indexes.join(", ")
                    ));
                }
                failed.push(item(detail));
                continue;
            }
            match migrations.get(row.version) {
                // A code migration's row (its checksum says so) where the binary lacks the
                // function: the service that has it applied it; neither missing nor future.
                None if crate::code::is_code_checksum(&row.checksum) => {}
                Some(m) => {
                    if m.checksum() != row.checksum {
                        edited.push(item(format!(
                            "applied checksum {}, file checksum {}",
                            row.checksum,
                            m.checksum()
                        )));
                    } else if m.no_transaction() != row.no_transaction {
                        // The file's text is unchanged (else its checksum would differ): the
                        // mode came from diesel's metadata.toml. Say which way to undo it.
                        let undo = if m.no_transaction() {
                            "remove the `run_in_transaction = false` added to its metadata.toml"
                        } else {
                            "put back the `run_in_transaction = false` removed from its \
                             metadata.toml"
                        };
                        edited.push(item(format!(
                            "applied {}, the file now runs {}: {undo}",
                            mode(row.no_transaction),
                            mode(m.no_transaction())
                        )));
                    }
                }
                None => match newest_known {
                    Some(newest) if cmp_digits(&row.version_digits, newest) == Ordering::Less => {
                        missing.push(item(String::new()))
                    }
                    _ => future.push(item(String::new())),
                },
            }
        }

        let breaking_future: Vec<DriftItem> = rows
            .iter()
            .filter(|row| row.breaking && future.iter().any(|f| f.version == row.version))
            .map(|row| DriftItem {
                version: row.version,
                name: row.name.clone(),
                detail: String::new(),
            })
            .collect();

        // Out of order: pending below the highest applied row that is not a future row. A
        // pending post-deployment migration waits for its phase while later pre-deployment
        // ones apply, so for it only applied post-deployment rows count: post migrations run
        // in version order among themselves.
        let not_future =
            |row: &&&AppliedMigration| !future.iter().any(|f| f.version == row.version);
        let highest = |post_only: bool| {
            rows.iter()
                .filter(not_future)
                .filter(|row| {
                    !post_only || migrations.get(row.version).is_some_and(|m| m.post_deploy())
                })
                .map(|row| row.version_digits.as_str())
                .max_by(|a, b| cmp_digits(a, b))
        };
        let (highest_any, highest_post) = (highest(false), highest(true));
        let pending: Vec<&Migration> = migrations
            .iter()
            .filter(|m| !applied.contains_key(&m.version()))
            .collect();
        let out_of_order: Vec<DriftItem> = pending
            .iter()
            .filter_map(|m| {
                let highest = if m.post_deploy() {
                    highest_post
                } else {
                    highest_any
                }?;
                (cmp_digits(m.version_digits(), highest) == Ordering::Less).then(|| DriftItem {
                    version: m.version(),
                    name: m.name().to_owned(),
                    detail: format!("below applied version {highest}"),
                })
            })
            .collect();

        let mut drifts = Vec::new();
        for (kind, items) in [
            (DriftKind::Edited, edited),
            (DriftKind::Missing, missing),
            (DriftKind::Future, future),
            (DriftKind::OutOfOrder, out_of_order),
            (DriftKind::Failed, failed),
        ] {
            if !items.is_empty() {
                drifts.push(Drift { kind, items });
            }
        }
        Comparison {
            migrations,
            applied,
            drifts,
            pending,
            breaking_future,
        }
    }

    /// Splits drift into refusals and warnings by policy. Out-of-order only matters when
    /// applying; failed is always a refusal.
    fn judge(&self, policy: &DriftPolicy, applying: bool) -> Result<Vec<Drift>, PlanError> {
        // The compatibility floor comes before any drift: it has its own error and remedy.
        // Reverting is allowed (that is how a rollback gets below it, with stored downs).
        if let (true, Some(newest)) = (applying, self.breaking_future.last()) {
            return Err(PlanError::Incompatible {
                version: newest.version,
                name: newest.name.clone(),
            });
        }
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for drift in &self.drifts {
            let p = match drift.kind {
                DriftKind::Edited => policy.edited,
                DriftKind::Missing => policy.missing,
                DriftKind::Future => policy.future,
                DriftKind::OutOfOrder if applying => policy.out_of_order,
                DriftKind::OutOfOrder => Policy::Ignore,
                DriftKind::Failed => Policy::Error,
                DriftKind::DownEdited => Policy::Warn,
            };
            match p {
                Policy::Error => errors.push(drift.clone()),
                Policy::Warn => warnings.push(drift.clone()),
                Policy::Ignore => {}
            }
        }
        if errors.is_empty() {
            Ok(warnings)
        } else {
            Err(PlanError::Drift(errors))
        }
    }

    fn up_steps(&self, to: Option<i64>, phase: Phase) -> Result<Vec<Step>, PlanError> {
        let limit = match to {
            Some(v) => {
                let target = self.migrations.get(v).ok_or(PlanError::UnknownTarget(v))?;
                if !phase.includes(target) && target.post_deploy() {
                    return Err(PlanError::TargetIsPostDeploy {
                        version: v,
                        name: target.name().to_owned(),
                    });
                }
                Some(target.version_digits())
            }
            None => None,
        };
        let in_range = |m: &&&Migration| {
            limit.is_none_or(|l| cmp_digits(m.version_digits(), l) != Ordering::Greater)
        };
        if phase == Phase::Post {
            // The post phase follows the release's own `up`: a pre-deployment migration still
            // pending below a post one means that `up` has not run.
            let newest_post = self
                .pending
                .iter()
                .filter(in_range)
                .rfind(|m| m.post_deploy())
                .map(|m| m.version_digits());
            if let Some(newest_post) = newest_post {
                if let Some(pre) = self.pending.iter().find(|m| {
                    !m.post_deploy()
                        && cmp_digits(m.version_digits(), newest_post) == Ordering::Less
                }) {
                    return Err(PlanError::PrePending {
                        version: pre.version(),
                        name: pre.name().to_owned(),
                    });
                }
            }
        }
        Ok(self
            .pending
            .iter()
            .filter(in_range)
            .filter(|m| phase.includes(m))
            .map(|m| Step {
                version: m.version(),
                name: m.name().to_owned(),
                direction: Direction::Up,
                no_transaction: m.up().no_transaction(),
                stored_down: false,
            })
            .collect())
    }

    fn down_steps(&self, target: DownTarget, stored_downs: bool) -> Result<Vec<Step>, PlanError> {
        let mut applied: Vec<&AppliedMigration> = self.applied.values().copied().collect();
        applied.sort_by(|a, b| cmp_digits(&b.version_digits, &a.version_digits));
        let chosen: Vec<&AppliedMigration> = match target {
            DownTarget::All => applied,
            DownTarget::Count(n) => applied.into_iter().take(n).collect(),
            DownTarget::To(v) => {
                let keep = self
                    .applied
                    .get(&v)
                    .map(|row| row.version_digits.as_str())
                    .or_else(|| self.migrations.get(v).map(|m| m.version_digits()))
                    .ok_or(PlanError::UnknownTarget(v))?;
                applied
                    .into_iter()
                    .filter(|row| cmp_digits(&row.version_digits, keep) == Ordering::Greater)
                    .collect()
            }
        };
        // With stored downs, every row that would need one and has none is named at once.
        if stored_downs {
            // Named in version order (the steps run newest first).
            let without: Vec<(i64, String)> = chosen
                .iter()
                .rev()
                .filter(|row| {
                    self.migrations
                        .get(row.version)
                        .and_then(|m| m.down())
                        .is_none()
                        && row.stored_down.is_none()
                })
                .map(|row| (row.version, row.name.clone()))
                .collect();
            if !without.is_empty() {
                return Err(PlanError::NoStoredDown(without));
            }
        }
        chosen
            .into_iter()
            .map(|row| {
                let stored = |stored: &crate::history::StoredDown| Step {
                    version: row.version,
                    name: row.name.clone(),
                    direction: Direction::Down,
                    no_transaction: stored.no_transaction,
                    stored_down: true,
                };
                let Some(m) = self.migrations.get(row.version) else {
                    return match (&row.stored_down, stored_downs) {
                        (Some(s), true) => Ok(stored(s)),
                        (Some(_), false) => Err(PlanError::StoredDownNotAllowed {
                            version: row.version,
                            name: row.name.clone(),
                        }),
                        (None, _) => Err(PlanError::UnknownApplied {
                            version: row.version,
                            name: row.name.clone(),
                        }),
                    };
                };
                let Some(down) = m.down() else {
                    return match (&row.stored_down, stored_downs) {
                        (Some(s), true) => Ok(stored(s)),
                        _ => Err(PlanError::NoDown {
                            version: m.version(),
                            name: m.name().to_owned(),
                        }),
                    };
                };
                Ok(Step {
                    version: m.version(),
                    name: m.name().to_owned(),
                    direction: Direction::Down,
                    no_transaction: down.no_transaction(),
                    stored_down: false,
                })
            })
            .collect()
    }

    /// Down files edited since their migration was applied, among the steps reverting.
    fn down_edited(&self, steps: &[Step]) -> Option<Drift> {
        let items: Vec<DriftItem> = steps
            .iter()
            .filter(|s| s.direction == Direction::Down && !s.stored_down)
            .filter_map(|s| {
                let stored = self.applied.get(&s.version)?.stored_down.as_ref()?;
                let file = self.migrations.get(s.version)?.down()?;
                (file.checksum() != stored.checksum).then(|| DriftItem {
                    version: s.version,
                    name: s.name.clone(),
                    detail: format!(
                        "stored down checksum {}, file checksum {}",
                        stored.checksum,
                        file.checksum()
                    ),
                })
            })
            .collect();
        (!items.is_empty()).then_some(Drift {
            kind: DriftKind::DownEdited,
            items,
        })
    }
}

fn mode(no_transaction: bool) -> &'static str {
    if no_transaction {
        "outside a transaction"
    } else {
        "in a transaction"
    }
}

/// Decides what to run with the default options but `policy` (the pre-deployment phase, no
/// stored downs). Drift is checked first: a refusal runs nothing.
pub fn plan(
    migrations: &Migrations,
    history: &[AppliedMigration],
    operation: &Operation,
    policy: &DriftPolicy,
) -> Result<Plan, PlanError> {
    plan_with(
        migrations,
        history,
        operation,
        &PlanOptions::with_policy(*policy),
    )
}

/// Decides what to run. Drift is checked first: a refusal runs nothing. The compatibility
/// floor (a breaking migration applied and unknown here) refuses applying before any drift.
pub fn plan_with(
    migrations: &Migrations,
    history: &[AppliedMigration],
    operation: &Operation,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    let comparison = Comparison::new(migrations, history);
    let applying = !matches!(operation, Operation::Down(_));
    let mut warnings = comparison.judge(&options.policy, applying)?;
    let steps = match operation {
        Operation::Up { to } => comparison.up_steps(*to, options.phase)?,
        Operation::Down(target) => comparison.down_steps(*target, options.stored_downs)?,
        Operation::Redo { count } => {
            let down = comparison.down_steps(DownTarget::Count(*count), false)?;
            let up: Vec<Step> = down
                .iter()
                .rev()
                .map(|s| {
                    let m = migrations.get(s.version);
                    Step {
                        direction: Direction::Up,
                        no_transaction: m.is_some_and(|m| m.up().no_transaction()),
                        ..s.clone()
                    }
                })
                .collect();
            down.into_iter().chain(up).collect()
        }
    };
    warnings.extend(comparison.down_edited(&steps));
    Ok(Plan { steps, warnings })
}

/// Refuses a plan that runs a down marked `-- migrations:lossy-down` (the first such step, with
/// its reason), unless the caller allowed the loss. The engine calls it after [`plan`] for
/// every run (CLI and library alike), so `down` and `redo` share one refusal.
pub fn refuse_data_loss(migrations: &Migrations, plan: &Plan) -> Result<(), PlanError> {
    for step in plan.steps.iter().filter(|s| s.direction == Direction::Down) {
        let lossy = migrations
            .get(step.version)
            .and_then(|m| m.down())
            .and_then(|d| d.lossy_down());
        if let Some(reason) = lossy {
            return Err(PlanError::LossyDown {
                version: step.version,
                name: step.name.clone(),
                reason: reason.to_owned(),
            });
        }
    }
    Ok(())
}

/// Every migration, known or recorded, with its state, in version order.
pub fn status(migrations: &Migrations, history: &[AppliedMigration]) -> Vec<StatusLine> {
    let comparison = Comparison::new(migrations, history);
    let kind_of = |version: i64| {
        comparison
            .drifts
            .iter()
            .find(|d| d.items.iter().any(|i| i.version == version))
            .map(|d| d.kind)
    };
    let mut lines: Vec<StatusLine> = migrations
        .iter()
        .map(|m| {
            let row = comparison.applied.get(&m.version());
            let status = match (row.map(|r| r.state), kind_of(m.version())) {
                (Some(State::Running), _) => Status::Running,
                (Some(State::Failed), _) => Status::Failed,
                (Some(State::Applied), Some(DriftKind::Edited)) => Status::Edited,
                (Some(State::Applied), _) => Status::Applied,
                (None, Some(DriftKind::OutOfOrder)) => Status::OutOfOrder,
                (None, _) if m.post_deploy() => Status::PendingPost,
                (None, _) => Status::Pending,
            };
            StatusLine {
                version: m.version(),
                version_digits: m.version_digits().to_owned(),
                name: m.name().to_owned(),
                status,
            }
        })
        .collect();
    for row in history {
        if migrations.get(row.version).is_some() {
            continue;
        }
        let status = match (row.state, kind_of(row.version)) {
            (State::Running, _) => Status::Running,
            (State::Failed, _) => Status::Failed,
            (_, Some(DriftKind::Missing)) => Status::Missing,
            (State::Applied, None) if crate::code::is_code_checksum(&row.checksum) => Status::Code,
            _ => Status::Future,
        };
        lines.push(StatusLine {
            version: row.version,
            version_digits: row.version_digits.clone(),
            name: row.name.clone(),
            status,
        });
    }
    lines.sort_by(|a, b| cmp_digits(&a.version_digits, &b.version_digits));
    lines
}

#[cfg(test)]
mod tests {
    //! The planner, table-driven, without a database.

    use super::*;

    fn known() -> Migrations {
        Migrations::for_tests(&[
            ("1", "one", "c1", false, true),
            ("2", "two", "c2", false, true),
            ("3", "three", "c3", true, true),
            ("4", "four", "c4", false, false),
        ])
    }

    fn row(version: i64, checksum: &str, state: State) -> AppliedMigration {
        AppliedMigration {
            version,
            version_digits: version.to_string(),
            name: format!("v{version}"),
            checksum: checksum.to_owned(),
            no_transaction: version == 3,
            state,
            applied_at: String::new(),
            execution_ms: None,
            applied_by: String::new(),
            statements_done: Some(0),
            statements_total: Some(1),
            error: (state != State::Applied).then(|| "boom".to_owned()),
            invalid_indexes: Vec::new(),
            breaking: false,
            stored_down: None,
        }
    }

    fn applied(versions: &[i64]) -> Vec<AppliedMigration> {
        versions
            .iter()
            .map(|v| row(*v, &format!("c{v}"), State::Applied))
            .collect()
    }

    fn steps(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .map(|s| format!("{} {}", s.direction.as_str(), s.version))
            .collect()
    }

    fn up(to: Option<i64>) -> Operation {
        Operation::Up { to }
    }

    #[test]
    fn plans_by_operation() {
        let m = known();
        let policy = DriftPolicy::default();
        let cases: Vec<(&[i64], Operation, Vec<&str>)> = vec![
            (&[], up(None), vec!["up 1", "up 2", "up 3", "up 4"]),
            (&[], up(Some(2)), vec!["up 1", "up 2"]),
            (&[1, 2], up(None), vec!["up 3", "up 4"]),
            (&[1, 2, 3, 4], up(None), vec![]),
            (
                &[1, 2, 3],
                Operation::Down(DownTarget::Count(2)),
                vec!["down 3", "down 2"],
            ),
            (
                &[1, 2, 3],
                Operation::Down(DownTarget::To(1)),
                vec!["down 3", "down 2"],
            ),
            (
                &[1, 2, 3],
                Operation::Down(DownTarget::All),
                vec!["down 3", "down 2", "down 1"],
            ),
            (
                &[1, 2],
                Operation::Redo { count: 1 },
                vec!["down 2", "up 2"],
            ),
            (&[], Operation::Down(DownTarget::Count(1)), vec![]),
        ];
        for (history, operation, expected) in cases {
            let plan = plan(&m, &applied(history), &operation, &policy).unwrap();
            assert_eq!(steps(&plan), expected, "{history:?} {operation:?}");
        }
        let plan = plan(&m, &[], &up(None), &policy).unwrap();
        assert!(plan.steps[2].no_transaction);
    }

    #[test]
    fn refusals() {
        let m = known();
        let p = DriftPolicy::default();
        assert_eq!(
            plan(&m, &[], &up(Some(9)), &p),
            Err(PlanError::UnknownTarget(9))
        );
        assert_eq!(
            plan(
                &m,
                &applied(&[1, 2, 3, 4]),
                &Operation::Down(DownTarget::Count(1)),
                &p
            ),
            Err(PlanError::NoDown {
                version: 4,
                name: "four".into()
            })
        );
    }

    #[test]
    fn each_drift_kind_is_found_and_listed() {
        let m = known();
        let p = DriftPolicy::default();
        // Edited: checksum differs.
        let mut h = applied(&[1, 2]);
        h[0].checksum = "other".into();
        let err = plan(&m, &h, &up(None), &p).unwrap_err();
        assert_eq!(err.drift_kinds(), vec![DriftKind::Edited]);
        assert!(err
            .to_string()
            .contains("1 v1: applied checksum other, file checksum c1"));
        // Edited: transaction mode flipped.
        let mut h = applied(&[1, 2, 3]);
        h[2].no_transaction = false;
        let err = plan(&m, &h, &up(None), &p).unwrap_err();
        assert!(
            err.to_string()
                .contains("applied in a transaction, the file now runs outside a transaction"),
            "{err}"
        );
        // Missing: applied, unknown, below the newest known.
        let h = vec![row(1, "c1", State::Applied), row(2, "c2", State::Applied)];
        let m2 = Migrations::for_tests(&[
            ("1", "one", "c1", false, true),
            ("3", "three", "c3", false, true),
        ]);
        let err = plan(&m2, &h, &up(None), &p).unwrap_err();
        assert_eq!(err.drift_kinds(), vec![DriftKind::Missing]);
        // Future: applied above the newest known: a warning.
        let h = applied(&[1, 2, 3, 4, 5]);
        let ok = plan(&m, &h, &up(None), &p).unwrap();
        assert_eq!(ok.warnings[0].kind, DriftKind::Future);
        assert_eq!(ok.warnings[0].items[0].version, 5);
        // Out of order: pending below the highest applied, future rows ignored.
        let err = plan(&m, &applied(&[1, 3]), &up(None), &p).unwrap_err();
        assert_eq!(err.drift_kinds(), vec![DriftKind::OutOfOrder]);
        assert!(err.to_string().contains("2 two: below applied version 3"));
        let fine = plan(&m, &applied(&[1, 2, 9]), &up(None), &p).unwrap();
        assert_eq!(steps(&fine), vec!["up 3", "up 4"]);
        // Failed: always an error, with the statement and the error.
        let mut h = applied(&[1, 2]);
        h.push(row(3, "c3", State::Failed));
        let err = plan(&m, &h, &up(None), &p).unwrap_err();
        assert_eq!(err.drift_kinds(), vec![DriftKind::Failed]);
        assert!(
            err.to_string()
                .contains("3 v3: failed at statement 1 of 1: boom"),
            "{err}"
        );
        // Several kinds at once: all listed.
        let mut h = applied(&[1, 3, 7]);
        h[0].checksum = "x".into();
        let err = plan(&m, &h, &up(None), &p).unwrap_err();
        assert_eq!(
            err.drift_kinds(),
            vec![DriftKind::Edited, DriftKind::OutOfOrder]
        );
    }

    #[test]
    fn a_lossy_down_is_refused_unless_allowed() {
        let m = Migrations::for_tests(&[
            ("1", "one", "c1", false, true),
            ("2", "lossy_two", "c2", false, true),
            // `row` records version 3 as applied outside a transaction.
            ("3", "three", "c3", true, true),
        ]);
        let h = applied(&[1, 2, 3]);
        let policy = DriftPolicy::default();
        // Reverting 3 alone loses nothing; reaching 2 (down or redo) is refused.
        let one = plan(&m, &h, &Operation::Down(DownTarget::Count(1)), &policy).unwrap();
        assert_eq!(refuse_data_loss(&m, &one), Ok(()));
        for op in [
            Operation::Down(DownTarget::Count(2)),
            Operation::Down(DownTarget::All),
            Operation::Redo { count: 2 },
        ] {
            let p = plan(&m, &h, &op, &policy).unwrap();
            let err = refuse_data_loss(&m, &p).unwrap_err();
            assert_eq!(
                err,
                PlanError::LossyDown {
                    version: 2,
                    name: "lossy_two".to_owned(),
                    reason: "lossy_two cannot come back".to_owned(),
                }
            );
        }
        let up = plan(&m, &applied(&[1]), &up(None), &policy).unwrap();
        assert_eq!(refuse_data_loss(&m, &up), Ok(()));
    }

    #[test]
    fn policies_change_defaults() {
        let m = known();
        let lenient = DriftPolicy {
            edited: Policy::Warn,
            missing: Policy::Ignore,
            future: Policy::Error,
            out_of_order: Policy::Warn,
        };
        let mut h = applied(&[1, 3]);
        h[0].checksum = "x".into();
        let ok = plan(&m, &h, &up(None), &lenient).unwrap();
        assert_eq!(steps(&ok), vec!["up 2", "up 4"]);
        let kinds: Vec<DriftKind> = ok.warnings.iter().map(|w| w.kind).collect();
        assert_eq!(kinds, vec![DriftKind::Edited, DriftKind::OutOfOrder]);
        let err = plan(&m, &applied(&[1, 2, 3, 4, 5]), &up(None), &lenient).unwrap_err();
        assert_eq!(err.drift_kinds(), vec![DriftKind::Future]);
        // A failed migration cannot be waved through.
        let mut h = applied(&[1]);
        h.push(row(2, "c2", State::Running));
        let all_ignore = DriftPolicy {
            edited: Policy::Ignore,
            missing: Policy::Ignore,
            future: Policy::Ignore,
            out_of_order: Policy::Ignore,
        };
        assert!(plan(&m, &h, &up(None), &all_ignore).is_err());
    }

    #[test]
    fn diesel_timestamps_order_as_digit_strings() {
        let m = Migrations::for_tests(&[
            ("202511190914440000", "a", "ca", false, true),
            ("20260120162913", "b", "cb", false, true),
        ]);
        // Sorted in the set as the loader sorts them; the planner keeps that order.
        let plan = plan(&m, &[], &up(None), &DriftPolicy::default()).unwrap();
        assert_eq!(
            steps(&plan),
            vec!["up 202511190914440000", "up 20260120162913"]
        );
        // 20260120162913 applied: the other one is below it by digit-string order.
        let h = vec![AppliedMigration {
            version_digits: "20260120162913".into(),
            ..row(20260120162913, "cb", State::Applied)
        }];
        let err = super::plan(&m, &h, &up(None), &DriftPolicy::default()).unwrap_err();
        assert_eq!(err.drift_kinds(), vec![DriftKind::OutOfOrder]);
    }

    /// 1, 2, a post-deployment 3, 4 (the names say which is which: see `for_tests`).
    fn rolling() -> Migrations {
        Migrations::for_tests(&[
            ("1", "one", "c1", false, true),
            ("2", "two", "c2", false, true),
            ("3", "post_three", "c3", false, true),
            ("4", "four", "c4", false, true),
        ])
    }

    fn with(phase: Phase, stored_downs: bool) -> PlanOptions {
        PlanOptions {
            phase,
            stored_downs,
            ..PlanOptions::default()
        }
    }

    #[test]
    fn phases_choose_the_ups() {
        let m = rolling();
        let run = |history: &[i64], phase: Phase| {
            plan_with(&m, &applied(history), &up(None), &with(phase, false)).map(|p| steps(&p))
        };
        // The default phase leaves the post-deployment migration pending, and a later
        // pre-deployment one runs past it without out-of-order drift.
        assert_eq!(
            run(&[], Phase::Pre),
            Ok(vec!["up 1", "up 2", "up 4"]
                .into_iter()
                .map(String::from)
                .collect())
        );
        assert_eq!(
            plan(&m, &[], &up(None), &DriftPolicy::default()).map(|p| steps(&p)),
            run(&[], Phase::Pre)
        );
        assert_eq!(run(&[1, 2, 4], Phase::Pre), Ok(vec![]));
        assert_eq!(run(&[1, 2, 4], Phase::Post), Ok(vec!["up 3".to_owned()]));
        assert_eq!(
            run(&[1], Phase::All),
            Ok(vec!["up 2", "up 3", "up 4"]
                .into_iter()
                .map(String::from)
                .collect())
        );
        // The post phase before the release's own `up`: refused, naming the pending one.
        let err = run(&[1], Phase::Post).unwrap_err();
        assert_eq!(
            err,
            PlanError::PrePending {
                version: 2,
                name: "two".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "2 two (pre-deployment) is pending below post-deployment migrations; run `up` (the \
             pre-deployment phase) first, or `up --phase all`"
        );
        // `--to` a post-deployment migration needs its phase.
        let err = plan(&m, &applied(&[1, 2]), &up(Some(3)), &DriftPolicy::default()).unwrap_err();
        assert_eq!(
            err,
            PlanError::TargetIsPostDeploy {
                version: 3,
                name: "post_three".into()
            }
        );
        // Status says which pending ones wait for the post phase.
        let lines: Vec<String> = status(&m, &applied(&[1, 2, 4]))
            .iter()
            .map(|l| format!("{} {}", l.version, l.status.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                "1 applied",
                "2 applied",
                "3 pending (post-deploy)",
                "4 applied"
            ]
        );
        // A pre-deployment migration below an applied one is still out of order.
        let err = run(&[1, 4], Phase::Pre).unwrap_err();
        assert_eq!(err.drift_kinds(), vec![DriftKind::OutOfOrder]);
    }

    #[test]
    fn a_breaking_future_row_is_the_floor() {
        let m = known();
        let mut h = applied(&[1, 2, 3, 4, 5, 6]);
        // 5 is breaking, 6 is not: the error names the breaking one.
        h[4].breaking = true;
        h[4].name = "drop_legacy".into();
        let err = plan(&m, &h, &up(None), &DriftPolicy::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the database has breaking migration 5 drop_legacy, newer than the migrations this \
             program carries: deploy a version that has it"
        );
        assert!(plan(
            &m,
            &h,
            &Operation::Redo { count: 1 },
            &DriftPolicy::default()
        )
        .is_err());
        // Non-breaking future rows stay a warning.
        h[4].breaking = false;
        let ok = plan(&m, &h, &up(None), &DriftPolicy::default()).unwrap();
        assert_eq!(ok.warnings[0].kind, DriftKind::Future);
    }

    #[test]
    fn stored_downs_revert_what_the_binary_lacks() {
        let m = Migrations::for_tests(&[
            ("1", "one", "c1", false, true),
            ("2", "two", "c2", false, true),
        ]);
        let stored = |no_transaction| {
            Some(crate::history::StoredDown {
                checksum: "d".into(),
                no_transaction,
            })
        };
        let mut h = applied(&[1, 2, 3, 4]);
        h[2].stored_down = stored(false);
        h[3].stored_down = stored(true);
        h[3].breaking = true;
        let down_to_2 = Operation::Down(DownTarget::To(2));
        // Refused without the flag, naming it.
        let err = plan_with(&m, &h, &down_to_2, &with(Phase::Pre, false)).unwrap_err();
        assert_eq!(
            err,
            PlanError::StoredDownNotAllowed {
                version: 4,
                name: "v4".into()
            }
        );
        assert!(err.to_string().contains("pass --stored-downs"), "{err}");
        // With it: the floor does not stop a revert, and each step says it is a stored down.
        let ok = plan_with(&m, &h, &down_to_2, &with(Phase::Pre, true)).unwrap();
        assert_eq!(steps(&ok), ["down 4", "down 3"]);
        assert!(ok.steps.iter().all(|s| s.stored_down));
        assert!(ok.steps[0].no_transaction && !ok.steps[1].no_transaction);
        // Rows applied before stored downs existed: all named, nothing run.
        h[2].stored_down = None;
        h[3].stored_down = None;
        let err = plan_with(&m, &h, &down_to_2, &with(Phase::Pre, true)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot revert with stored downs: 3 v3, 4 v4 have no down script stored in the \
             database (applied before stored downs existed, or without a down file); revert \
             them with a release that has their files"
        );
        // A known migration's down runs from its file; an edited one is a warning.
        let mut h = applied(&[1, 2]);
        h[1].stored_down = stored(false);
        let ok = plan(
            &m,
            &h,
            &Operation::Down(DownTarget::Count(1)),
            &DriftPolicy::default(),
        )
        .unwrap();
        assert!(!ok.steps[0].stored_down);
        assert_eq!(ok.warnings[0].kind, DriftKind::DownEdited);
        assert!(ok.warnings[0]
            .to_string()
            .contains("stored down checksum d, file checksum down"));
    }

    #[test]
    fn status_shows_every_state() {
        let m = known();
        let mut h = applied(&[1, 3, 9]);
        h[0].checksum = "x".into();
        h.push(AppliedMigration {
            version_digits: "0".into(),
            ..row(0, "c0", State::Applied)
        });
        let lines: Vec<String> = status(&m, &h)
            .iter()
            .map(|l| format!("{} {}", l.version, l.status.as_str()))
            .collect();
        assert_eq!(
            lines,
            vec![
                "0 missing",
                "1 edited",
                "2 out-of-order",
                "3 applied",
                "4 pending",
                "9 future"
            ]
        );
    }
}
