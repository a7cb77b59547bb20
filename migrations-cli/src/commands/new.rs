//! `migrations new`: the next version in the directory's style, with up and down files.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use migrations_format::name::parse_stem;
use migrations_format::version::next_spelling;
use migrations_format::{load_dir, template, Layout};

use crate::context::Context;
use crate::exit::Error;

const DOWN_PLACEHOLDER: &str = "-- Write here the SQL that reverses the up file.\n";

pub fn run(
    ctx: &Context<'_>,
    name: &str,
    with_down: bool,
    no_transaction: bool,
) -> Result<(), Error> {
    // Checked here, before the version is prefixed: the loader's wording speaks of the part
    // after `_`, which the user never typed.
    if name.trim().is_empty() {
        return Err(Error::Usage(
            "a migration needs a name, for example `migrations new create_users`".into(),
        ));
    }
    let dir = ctx.global.dir.as_path();
    if !dir.exists() {
        fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
    }
    let directory = load_dir(dir).map_err(Error::Files)?;
    let newest = directory.migrations.last();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let version = next_spelling(newest.map(|m| &m.version), now);
    let stem = format!("{version}_{name}");
    parse_stem(&stem)
        .map_err(|why| Error::Usage(format!("cannot name a migration `{name}`: {why}")))?;

    let layout = newest.map(|m| m.layout).unwrap_or(Layout::Flat);
    let (up_name, down_name) = match layout {
        Layout::Flat => (format!("{stem}.up.sql"), format!("{stem}.down.sql")),
        Layout::Folder => {
            let folder = dir.join(&stem);
            fs::create_dir_all(&folder)
                .map_err(|e| Error::Io(format!("cannot create {}: {e}", folder.display())))?;
            (format!("{stem}/up.sql"), format!("{stem}/down.sql"))
        }
    };
    let (up_path, down_path): (PathBuf, PathBuf) = (dir.join(&up_name), dir.join(&down_name));
    // A statement that fails until replaced, not a comment: an up of comments alone is a valid
    // no-op migration, which an unwritten one must not pass for. The error names the file.
    let mut up = String::new();
    if no_transaction {
        up.push_str("-- migrations:no-transaction\n");
    }
    up.push_str(&template::up_file(&up_name));
    let mut created = vec![write_new(&up_path, &up)?];
    if with_down {
        // The down of a no-transaction up (an index built CONCURRENTLY, say) reverts it the
        // same way (`DROP INDEX CONCURRENTLY`), which cannot run in a transaction either.
        let mut down = String::new();
        if no_transaction {
            down.push_str("-- migrations:no-transaction\n");
        }
        down.push_str(DOWN_PLACEHOLDER);
        created.push(write_new(&down_path, &down)?);
    }
    for path in &created {
        ctx.out.line(path);
    }
    // A number, as every other command's `version` (the spelling is in the file names).
    let number = migrations_format::Version::parse(&version)
        .map(|v| v.value())
        .ok();
    ctx.out
        .document(serde_json::json!({ "command": "new", "version": number, "files": created }));
    Ok(())
}

fn write_new(path: &Path, text: &str) -> Result<String, Error> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", path.display())))?;
    Ok(path.display().to_string())
}
