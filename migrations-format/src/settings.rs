//! Directory settings (`migrations.toml`) and diesel's per-migration `metadata.toml`.
//!
//! `migrations.toml` is read alike by the macro, the CLI, `lock` and `lint`, so they never
//! disagree about which files are migrations.

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

/// The name of the directory settings file.
pub const SETTINGS_FILE: &str = "migrations.toml";
/// The name of diesel's per-migration settings file.
pub const METADATA_FILE: &str = "metadata.toml";

/// `migrations.toml`, as written. Unknown keys are refused so a typo is never silently ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Glob patterns, relative to the migrations directory, of files or folders that are not
    /// migrations (for example `data_*.sql`).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Every migration must have a down file.
    #[serde(default)]
    pub require_down: bool,
    /// `embed_migrations!` checks the directory against `migrations.lock` (as its `verify_lock`
    /// argument does): an edited, removed or inserted locked migration is a compile error.
    #[serde(default)]
    pub verify_lock: bool,
    /// Store a schema snapshot after each `up` that applies something, so
    /// `migrations verify --schema-drift` can list what changed outside migrations. Off by
    /// default: services pay nothing unless asked.
    #[serde(default)]
    pub record_schema: bool,
    /// How migrations run: the same defaults for the CLI and for a service that embeds the
    /// directory (the macro carries them into the binary), so both use one history table.
    /// Flags and `Migrator` methods override them.
    #[serde(default)]
    pub run: RunSettings,
    /// Lint settings, read by `migrations lint`.
    #[serde(default)]
    pub lint: LintSettings,
    /// Other migration sets in the same database, by name, for the CLI's `--set <name>`
    /// (`[sets.<name>]`: `dir`, relative to this file's directory, and the set's own history
    /// `table` and `schema`). The macro and the loader ignore them.
    #[serde(default)]
    pub sets: std::collections::BTreeMap<String, SetSettings>,
    /// `[placeholders]`: default values of `${name}` placeholders (names case-insensitive).
    /// The environment (`MIGRATIONS_PLACEHOLDER_<NAME>`) and `--placeholder name=value`
    /// override them in the CLI, `Migrator::placeholder` in a service (which embeds these).
    #[serde(default)]
    pub placeholders: std::collections::BTreeMap<String, String>,
    /// `[test]`: settings of `migrations test` (`max_lock`, `jobs`).
    #[serde(default)]
    pub test: TestSettings,
}

/// The `[test]` table of `migrations.toml`, read by `migrations test`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSettings {
    /// The strongest table lock an up may take on a table that existed before it (any spelling
    /// of PostgreSQL's eight modes, `share update exclusive`, `AccessExclusiveLock`...), as
    /// `--max-lock`, which overrides it.
    #[serde(default)]
    pub max_lock: Option<String>,
    /// How many scratch databases (and server sessions) the history is split across (default:
    /// the machine's cores, at most 4; 1 checks it on one database).
    #[serde(default)]
    pub jobs: Option<usize>,
}

/// The `[run]` table of `migrations.toml`. Durations take a unit (`5s`, `500ms`, `10min`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Schema of the history tables (default `public`).
    pub schema: Option<String>,
    /// Name of the history table (default `migrations_history`).
    pub table: Option<String>,
    /// `search_path` for the migrations' own SQL.
    pub search_path: Option<String>,
    /// `lock_timeout` for each migration, as a duration such as `5s` (the runner's default,
    /// 5s, when unset); a file's `lock-timeout` directive wins.
    pub lock_timeout: Option<String>,
    /// `statement_timeout` for each migration, as a duration (none when unset or `0`); a
    /// file's `statement-timeout` directive wins.
    pub statement_timeout: Option<String>,
    /// How long to wait for another runner's lock.
    pub lock_wait: Option<String>,
    /// How long the CLI waits for a server that is still starting.
    pub connect_timeout: Option<String>,
}

impl RunSettings {
    /// The durations, parsed; an error names the key.
    pub fn durations(&self) -> Result<RunDurations, String> {
        let parse = |key: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| {
                    crate::directive::parse_duration(v).map_err(|e| format!("[run] {key}: {e}"))
                })
                .transpose()
        };
        Ok(RunDurations {
            lock_timeout: parse("lock_timeout", &self.lock_timeout)?,
            statement_timeout: parse("statement_timeout", &self.statement_timeout)?,
            lock_wait: parse("lock_wait", &self.lock_wait)?,
            connect_timeout: parse("connect_timeout", &self.connect_timeout)?,
        })
    }
}

/// The durations of [`RunSettings`], parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunDurations {
    /// `[run] lock_timeout`; `None` when the key is absent (the runner's default applies).
    pub lock_timeout: Option<std::time::Duration>,
    /// `[run] statement_timeout`; `None` when the key is absent (the runner's default applies).
    pub statement_timeout: Option<std::time::Duration>,
    /// `[run] lock_wait`; `None` when the key is absent (the runner's default applies).
    pub lock_wait: Option<std::time::Duration>,
    /// `[run] connect_timeout`; `None` when the key is absent (the CLI's default applies).
    pub connect_timeout: Option<std::time::Duration>,
}

/// One `[sets.<name>]` table of `migrations.toml`: another migration set (a library crate's
/// `embed_migrations!` directory, say) with its own history table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSettings {
    /// The set's migrations directory, relative to the directory of the `migrations.toml` that
    /// names it.
    pub dir: String,
    /// The set's history table (else its own `[run] table`).
    pub table: Option<String>,
    /// The schema of the set's history tables (else its own `[run] schema`).
    pub schema: Option<String>,
}

/// The `[lint]` table of `migrations.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintSettings {
    /// Rules to run (all when empty).
    #[serde(default)]
    pub select: Vec<String>,
    /// Rules never to run.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Lint only migrations newer than this version.
    #[serde(default)]
    pub since: Option<String>,
}

impl Settings {
    /// Parses `migrations.toml` text. The error is the TOML parser's message, which names the
    /// line and key.
    pub fn parse(text: &str) -> Result<Settings, String> {
        let settings: Settings = toml::from_str(text).map_err(|e| e.to_string())?;
        settings.ignore_set()?;
        settings.run.durations()?;
        settings.placeholder_values()?;
        Ok(settings)
    }

    /// The `[placeholders]` values; the error names a key that is not a placeholder name.
    pub fn placeholder_values(&self) -> Result<crate::Placeholders, String> {
        let mut values = crate::Placeholders::new();
        for (name, value) in &self.placeholders {
            values
                .insert(name, value.clone())
                .map_err(|e| format!("[placeholders]: {e}"))?;
        }
        Ok(values)
    }

    /// The compiled `ignore` patterns.
    pub fn ignore_set(&self) -> Result<GlobSet, String> {
        let mut builder = GlobSetBuilder::new();
        for pattern in &self.ignore {
            let glob = Glob::new(pattern)
                .map_err(|e| format!("`ignore` pattern `{pattern}` is not a valid glob: {e}"))?;
            builder.add(glob);
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// diesel's `metadata.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// `run_in_transaction = false` runs the migration outside a transaction block (like the
    /// `no-transaction` directive); `None` when the key is absent (transactional).
    pub run_in_transaction: Option<bool>,
}

impl Metadata {
    /// Parses `metadata.toml` text; unknown keys are refused. The error is the TOML parser's
    /// message.
    pub fn parse(text: &str) -> Result<Metadata, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_refuse_typos() {
        let s = Settings::parse(
            "ignore = [\"data_*.sql\"]\nrequire_down = true\nverify_lock = true\n[lint]\nsince = \"20200101000000\"\n",
        )
        .unwrap();
        assert!(s.require_down);
        assert!(s.verify_lock);
        assert!(s.ignore_set().unwrap().is_match("data_oauth_github.sql"));
        assert_eq!(s.lint.since.as_deref(), Some("20200101000000"));

        let s = Settings::parse("[placeholders]\nSchema = \"app\"\n").unwrap();
        assert_eq!(s.placeholder_values().unwrap().get("schema"), Some("app"));
        let err = Settings::parse("[placeholders]\n\"a-b\" = \"x\"\n").unwrap_err();
        assert!(
            err.contains("[placeholders]: `a-b` is not a placeholder name"),
            "{err}"
        );

        let err = Settings::parse("requre_down = true\n").unwrap_err();
        assert!(err.contains("requre_down"), "{err}");
        let err = Settings::parse("ignore = [\"[\"]\n").unwrap_err();
        assert!(err.contains("not a valid glob"), "{err}");
    }

    #[test]
    fn sets_parse_and_refuse_typos() {
        let s = Settings::parse(
            "[sets.auth]\ndir = \"../auth/migrations\"\ntable = \"auth_migrations\"\n",
        )
        .unwrap();
        let auth = &s.sets["auth"];
        assert_eq!(auth.dir, "../auth/migrations");
        assert_eq!(auth.table.as_deref(), Some("auth_migrations"));
        assert_eq!(auth.schema, None);
        let err = Settings::parse("[sets.auth]\ndir = \"a\"\ntabel = \"t\"\n").unwrap_err();
        assert!(err.contains("tabel"), "{err}");
        let err = Settings::parse("[sets.auth]\ntable = \"t\"\n").unwrap_err();
        assert!(err.contains("dir"), "{err}");
    }

    #[test]
    fn metadata_parse() {
        assert_eq!(
            Metadata::parse("run_in_transaction = false\n")
                .unwrap()
                .run_in_transaction,
            Some(false)
        );
        assert!(Metadata::parse("run_in_transaction = \"no\"\n").is_err());
        assert!(Metadata::parse("run_in_transactions = false\n").is_err());
    }
}
