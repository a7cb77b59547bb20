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
    /// Lint settings, read by `migrations lint`.
    #[serde(default)]
    pub lint: LintSettings,
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
        Ok(settings)
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
    pub run_in_transaction: Option<bool>,
}

impl Metadata {
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

        let err = Settings::parse("requre_down = true\n").unwrap_err();
        assert!(err.contains("requre_down"), "{err}");
        let err = Settings::parse("ignore = [\"[\"]\n").unwrap_err();
        assert!(err.contains("not a valid glob"), "{err}");
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
