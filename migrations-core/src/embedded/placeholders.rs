//! Placeholder values of a migration set, and the set with its scripts substituted.
//!
//! The checksums stay those of the files as written (what the history and the lock file
//! record), so one set applied with different values keeps one checksum. The substitution
//! itself is the format crate's ([`migrations_format::placeholder::substitute`]).

use std::borrow::Cow;

use migrations_format::placeholder::{self, Placeholders};
use migrations_format::{LoadError, Problem, ProblemKind};

use super::{Migration, Migrations, Script};
use crate::repeatable::Repeatable;

/// What a set knows of placeholders.
#[derive(Debug, Clone)]
pub(crate) struct PlaceholderState {
    /// `[placeholders]` of a directory loaded at run time.
    loaded: Option<Placeholders>,
    /// The scripts hold values, not placeholders: substituting again would read a value's
    /// `${` (or an escaped `$${`, now `${`) as a placeholder.
    resolved: bool,
}

impl PlaceholderState {
    pub(crate) const EMPTY: PlaceholderState = PlaceholderState {
        loaded: None,
        resolved: false,
    };

    #[cfg(feature = "load")]
    pub(crate) fn loaded(settings: &migrations_format::Settings) -> PlaceholderState {
        PlaceholderState {
            // Validated when the settings were read.
            loaded: settings.placeholder_values().ok(),
            ..PlaceholderState::EMPTY
        }
    }
}

impl Migrations {
    /// The `[placeholders]` values of the directory's `migrations.toml` (embedded by the macro,
    /// or read by [`Migrations::from_dir`]): the defaults that [`Migrations::with_placeholders`]
    /// and [`Migrator::placeholder`](crate::Migrator::placeholder) override.
    pub fn placeholder_defaults(&self) -> Placeholders {
        let mut values = self.placeholders.loaded.clone().unwrap_or_default();
        for (name, value) in self.fixed_placeholders {
            // Names were checked when the macro read them.
            let _ = values.insert(name, *value);
        }
        values
    }

    /// Whether a script (up or down) may hold a placeholder or a `$${` escape.
    pub(crate) fn holds_placeholders(&self) -> bool {
        self.list.iter().any(|m| {
            placeholder::may_hold_placeholders(&m.up.sql)
                || m.down
                    .as_ref()
                    .is_some_and(|d| placeholder::may_hold_placeholders(&d.sql))
        }) || self
            .repeatables
            .iter()
            .any(|r| placeholder::may_hold_placeholders(r.script().sql()))
    }

    /// Whether the scripts are already substituted ([`Migrations::with_placeholders`]).
    pub fn placeholders_resolved(&self) -> bool {
        self.placeholders.resolved
    }

    /// The set with every `${name}` of every script (up and down) replaced: `values` over the
    /// [`placeholder_defaults`](Migrations::placeholder_defaults), each value quoted for where
    /// its placeholder sits (see [`migrations_format::placeholder`]); `$${` becomes `${`.
    /// Checksums stay those of the files as written.
    ///
    /// The error lists every placeholder without a value, and every value that cannot go
    /// where its placeholder sits, each with its file and line: nothing has run. A set that
    /// is already resolved comes back as it is.
    ///
    /// ```
    /// use migrations_core::Migrations;
    /// use migrations_format::Placeholders;
    ///
    /// let migrations = Migrations::from_dir("tests/fixtures/doc")?;
    /// let mut values = Placeholders::new();
    /// values.insert("schema", "tenant_1").unwrap();
    /// let resolved = migrations.with_placeholders(&values)?;
    /// assert_eq!(resolved.len(), migrations.len());
    /// # Ok::<(), migrations_format::LoadError>(())
    /// ```
    pub fn with_placeholders(&self, values: &Placeholders) -> Result<Migrations, LoadError> {
        if self.placeholders.resolved {
            return Ok(self.clone());
        }
        let values = self.placeholder_defaults().overridden_by(values);
        let mut problems = Vec::new();
        let list: Vec<Migration> = self
            .list
            .iter()
            .map(|m| Migration {
                up: substitute(&m.up, &values, &mut problems),
                down: m
                    .down
                    .as_ref()
                    .map(|d| substitute(d, &values, &mut problems)),
                ..m.clone()
            })
            .collect();
        let repeatables: Vec<Repeatable> = self
            .repeatables
            .iter()
            .map(|r| r.with_script(substitute(r.script(), &values, &mut problems)))
            .collect();
        if !problems.is_empty() {
            return Err(LoadError { problems });
        }
        Ok(Migrations {
            list: Cow::Owned(list),
            repeatables: Cow::Owned(repeatables),
            placeholders: PlaceholderState {
                resolved: true,
                ..self.placeholders.clone()
            },
            ..self.clone()
        })
    }
}

/// `script` with its placeholders replaced (its statements split again: a value may be
/// longer than its placeholder), or `script` itself when it holds none. Problems are added
/// to `problems`.
fn substitute(script: &Script, values: &Placeholders, problems: &mut Vec<Problem>) -> Script {
    match placeholder::substitute(&script.sql, values) {
        Ok(Cow::Borrowed(_)) => script.clone(),
        Ok(Cow::Owned(sql)) => Script {
            statements: Cow::Owned(migrations_format::statement_ranges(&sql)),
            sql: Cow::Owned(sql),
            ..script.clone()
        },
        Err(found) => {
            problems.extend(found.into_iter().map(|p| Problem {
                kind: ProblemKind::Placeholder,
                path: script.path.as_ref().into(),
                line: Some(p.line),
                message: p.message,
            }));
            script.clone()
        }
    }
}
