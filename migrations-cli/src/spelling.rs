//! One spelling of a version for people: as its file name writes it (`2025-08-01-000015`,
//! `0004`, `20250801000015`), in every command's text. JSON gives the number, the history's key
//! (docs/cli.md, "Output formats"). Commands take either spelling.

use std::collections::HashMap;

use migrations_core::Migrations;

/// The file's spelling of each version of a migration set.
#[derive(Debug, Clone, Default)]
pub struct Spellings(HashMap<i64, String>);

impl Spellings {
    pub fn of(migrations: &Migrations) -> Spellings {
        Spellings(
            migrations
                .iter()
                .filter_map(|m| Some((m.version(), m.file_spelling()?)))
                .collect(),
        )
    }

    /// `version` as its file writes it; the number for a version no file has (a history row
    /// of another release).
    pub fn get(&self, version: i64) -> String {
        self.0
            .get(&version)
            .cloned()
            .unwrap_or_else(|| version.to_string())
    }

    /// Like [`Spellings::get`], but for a version no file has, the digits the history kept
    /// (zero padding and all).
    pub fn or_digits(&self, version: i64, digits: &str) -> String {
        match self.0.get(&version) {
            Some(spelling) => spelling.clone(),
            None if !digits.is_empty() => digits.to_owned(),
            None => version.to_string(),
        }
    }
}

/// The spellings of the set this process works on (one per run), for messages written far from
/// where the set was loaded (the run's events, the stall watchdog's thread).
static CURRENT: std::sync::RwLock<Option<Spellings>> = std::sync::RwLock::new(None);

/// Makes `migrations` the set whose spellings [`version`] uses.
pub fn remember(migrations: &Migrations) {
    let spellings = Spellings::of(migrations);
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(spellings);
}

/// `version` as the file of the set last [`remember`]ed writes it (the number before any set
/// was loaded, or for a version no file has).
pub fn version(version: i64) -> String {
    match &*CURRENT.read().unwrap_or_else(|e| e.into_inner()) {
        Some(spellings) => spellings.get(version),
        None => version.to_string(),
    }
}

/// A drift as the library writes it (`kind: what to do`, then a line per migration), each
/// version spelled as its file does (a version whose file is gone keeps its number).
pub fn drift(drift: &migrations_core::Drift) -> String {
    let text = drift.to_string();
    // The library's first line says what kind and what to do; the lines after it are the items
    // rewritten below.
    let mut out = text.lines().next().unwrap_or_default().to_owned();
    for item in &drift.items {
        out.push_str(&format!("\n  {} {}", version(item.version), item.name));
        if !item.detail.is_empty() {
            out.push_str(&format!(": {}", item.detail));
        }
    }
    out
}
