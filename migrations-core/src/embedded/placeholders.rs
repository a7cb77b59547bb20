//! Placeholder values of a migration set, and the set with its scripts substituted.
//!
//! The checksums stay those of the files as written (what the history and the lock file
//! record), so one set applied with different values keeps one checksum. The substitution
//! itself is the format crate's ([`migrations_format::placeholder::substitute`]).

use std::borrow::Cow;

use migrations_format::placeholder::{self, Placeholders};
use migrations_format::{LoadError, Problem, ProblemKind};

use super::{Migrations, Script};

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
        self.clone().into_with_placeholders(values)
    }

    /// [`Migrations::with_placeholders`] consuming the set: scripts without a placeholder
    /// are kept as they are rather than copied, and a set in which no script holds `${`
    /// comes back unchanged. Loading a 100 MB seed file and then substituting holds the file
    /// once, not three times.
    pub fn into_with_placeholders(
        mut self,
        values: &Placeholders,
    ) -> Result<Migrations, LoadError> {
        if self.placeholders.resolved {
            return Ok(self);
        }
        if !self.holds_placeholders() {
            // Nothing to substitute, so nothing a later substitution could misread either.
            self.placeholders.resolved = true;
            return Ok(self);
        }
        let values = self.placeholder_defaults().overridden_by(values);
        let mut problems = Vec::new();
        for m in self.list.to_mut() {
            substitute(&mut m.up, &values, &mut problems);
            if let Some(down) = &mut m.down {
                substitute(down, &values, &mut problems);
            }
        }
        if self
            .repeatables
            .iter()
            .any(|r| placeholder::may_hold_placeholders(r.script().sql()))
        {
            for r in self.repeatables.to_mut() {
                let mut script = r.script().clone();
                if substitute(&mut script, &values, &mut problems) {
                    *r = r.with_script(script);
                }
            }
        }
        if !problems.is_empty() {
            return Err(LoadError { problems });
        }
        self.placeholders.resolved = true;
        Ok(self)
    }
}

/// Replaces the placeholders of `script` (its statements split again: a value may be longer
/// than its placeholder); a script that holds none is left as it is, not copied. Problems are
/// added to `problems`. Returns whether the script changed.
fn substitute(script: &mut Script, values: &Placeholders, problems: &mut Vec<Problem>) -> bool {
    if !placeholder::may_hold_placeholders(&script.sql) {
        return false;
    }
    let substituted = placeholder::substitute(&script.sql, values).map(|sql| match sql {
        Cow::Owned(sql) => Some(sql),
        Cow::Borrowed(_) => None,
    });
    match substituted {
        Ok(Some(sql)) => {
            script.statements = Cow::Owned(migrations_format::statement_ranges(&sql));
            script.sql = Cow::Owned(sql);
            true
        }
        Ok(None) => false,
        Err(found) => {
            problems.extend(found.into_iter().map(|p| Problem {
                kind: ProblemKind::Placeholder,
                path: script.path.as_ref().into(),
                line: Some(p.line),
                message: p.message,
            }));
            false
        }
    }
}
