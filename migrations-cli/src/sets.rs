//! `--set NAME`: another migration set of the same database (a library crate's
//! `embed_migrations!` directory), named under `[sets.NAME]` in `DIR/migrations.toml`. It
//! becomes the `--dir` (and the history table) of the command, so every command works on a set
//! as it works on the main directory.

use std::path::Path;

use migrations_format::{Settings, SETTINGS_FILE};

use crate::cli::Global;
use crate::exit::Error;

/// `global` with `--set` resolved into `dir`, `table` and `schema`; `global` as it is without
/// `--set`.
pub fn resolve(global: &Global) -> Result<Global, Error> {
    let Some(name) = global.set.as_deref() else {
        return Ok(global.clone());
    };
    if global.table.is_some() || global.schema.is_some() {
        return Err(Error::Usage(format!(
            "--set {name} names the set's history table itself; drop --table and --schema, or \
             drop --set and give --dir with them"
        )));
    }
    let file = global.dir.join(SETTINGS_FILE);
    let settings = read(&file)?.ok_or_else(|| {
        Error::Usage(format!(
            "--set {name}: {} does not exist; name the set there under [sets.{name}] with its \
             dir and table",
            file.display()
        ))
    })?;
    let Some(set) = settings.sets.get(name) else {
        let known: Vec<&str> = settings.sets.keys().map(String::as_str).collect();
        return Err(Error::Usage(format!(
            "--set {name}: {} has no [sets.{name}]; {}",
            file.display(),
            if known.is_empty() {
                "it names no sets".to_owned()
            } else {
                format!("its sets are: {}", known.join(", "))
            }
        )));
    };
    let dir = global.dir.join(&set.dir);
    // The set's own settings: what its embedded copy (`embed_migrations!`) runs with.
    let own = read(&dir.join(SETTINGS_FILE))?.unwrap_or_default();
    let table = agree(name, &file, &dir, "table", &set.table, &own.run.table)?;
    let schema = agree(name, &file, &dir, "schema", &set.schema, &own.run.schema)?;
    if table.is_none() {
        return Err(Error::Usage(format!(
            "set {name} has no history table of its own, so its history would mix with the \
             main set's in migrations_history: add `table = \"{name}_migrations\"` under \
             [sets.{name}] in {}, or [run] table in {} (which its embed_migrations! reads too)",
            file.display(),
            dir.join(SETTINGS_FILE).display()
        )));
    }
    Ok(Global {
        dir,
        table,
        schema,
        set: None,
        ..global.clone()
    })
}

/// `migrations.toml` at `file`, `None` when there is none. A malformed file is the loader's
/// error, with its line.
fn read(file: &Path) -> Result<Option<Settings>, Error> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(format!("cannot read {}: {e}", file.display()))),
    };
    Settings::parse(&text)
        .map(Some)
        .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))
}

/// The set's `key` from `[sets.NAME]`, else from its own `[run]`; both given and different is
/// an error: the CLI and the set's embedded copy would keep two histories.
fn agree(
    name: &str,
    file: &Path,
    dir: &Path,
    key: &str,
    named: &Option<String>,
    own: &Option<String>,
) -> Result<Option<String>, Error> {
    match (named, own) {
        (Some(a), Some(b)) if a != b => Err(Error::Usage(format!(
            "set {name}: {key} \"{a}\" under [sets.{name}] in {} differs from [run] {key} \
             \"{b}\" in {}, which its embed_migrations! uses; make them the same (or drop the \
             one under [sets.{name}])",
            file.display(),
            dir.join(SETTINGS_FILE).display()
        ))),
        (Some(a), _) => Ok(Some(a.clone())),
        (None, b) => Ok(b.clone()),
    }
}
