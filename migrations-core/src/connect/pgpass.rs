//! `.pgpass`: libpq's password file. One `host:port:database:user:password` a line, `*`
//! matches anything, `\:` and `\\` escape, `#` starts a comment, the first matching line wins;
//! a file its group or others may read or write is ignored (with a warning), as in libpq.

use std::fs;
use std::path::Path;

/// One line of a password file: host, port, database, user (`None` = `*`) and the password.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct PgPassEntry {
    fields: [Option<String>; 4],
    password: String,
}

/// Parses one line of a password file; `None` for comments, blank and incomplete lines.
fn parse_pgpass_line(line: &str) -> Option<PgPassEntry> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let mut fields: Vec<Option<String>> = Vec::with_capacity(4);
    let mut current = String::new();
    let mut escaped_any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => {
                    current.push(next);
                    escaped_any = true;
                }
                None => current.push('\\'),
            },
            ':' => {
                if fields.len() == 4 {
                    // The password ends at an unescaped `:`; the rest is ignored, as in libpq.
                    break;
                }
                let field = std::mem::take(&mut current);
                fields.push(if field == "*" && !escaped_any {
                    None
                } else {
                    Some(field)
                });
                escaped_any = false;
            }
            c => current.push(c),
        }
    }
    if fields.len() < 4 {
        return None;
    }
    let fields: [Option<String>; 4] = fields.try_into().ok()?;
    Some(PgPassEntry {
        fields,
        password: current,
    })
}

fn parse_pgpass(text: &str) -> Vec<PgPassEntry> {
    text.lines().filter_map(parse_pgpass_line).collect()
}

/// The password of the first entry matching all four values; an empty one counts as none.
pub(super) fn pgpass_lookup(
    entries: &[PgPassEntry],
    host: &str,
    port: &str,
    database: &str,
    user: &str,
) -> Option<String> {
    let wanted = [host, port, database, user];
    entries
        .iter()
        .find(|entry| {
            entry
                .fields
                .iter()
                .zip(wanted)
                .all(|(field, value)| field.as_deref().is_none_or(|f| f == value))
        })
        .map(|entry| entry.password.clone())
        .filter(|password| !password.is_empty())
}

/// Reads a password file; `None` when it is missing, not a file, or (with a warning) readable
/// by others.
pub(super) fn read_pgpass(path: &Path) -> Option<Vec<PgPassEntry>> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() {
        log::warn!(
            "password file \"{}\" is not a plain file: ignoring it",
            path.display()
        );
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            log::warn!(
                "password file \"{}\" has group or world access; permissions should be u=rw \
                 (0600) or less: ignoring it",
                path.display()
            );
            return None;
        }
    }
    match fs::read(path) {
        Ok(bytes) => Some(parse_pgpass(&String::from_utf8_lossy(&bytes))),
        Err(e) => {
            log::warn!("could not read password file \"{}\": {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pgpass_lines() {
        let entry = |f: [Option<&str>; 4], pw: &str| PgPassEntry {
            fields: f.map(|x| x.map(str::to_string)),
            password: pw.to_string(),
        };
        assert_eq!(
            parse_pgpass_line("h:5432:db:u:pw"),
            Some(entry(
                [Some("h"), Some("5432"), Some("db"), Some("u")],
                "pw"
            ))
        );
        assert_eq!(
            parse_pgpass_line("*:*:*:*:p\\:w\\\\x\r"),
            Some(entry([None, None, None, None], "p:w\\x"))
        );
        // `\*` is a literal star, not a wildcard; `\:` inside a field.
        assert_eq!(
            parse_pgpass_line("\\*:5432:d\\:b:u:pw:ignored"),
            Some(entry(
                [Some("*"), Some("5432"), Some("d:b"), Some("u")],
                "pw"
            ))
        );
        assert_eq!(
            parse_pgpass_line("h:1:d:u:"),
            Some(entry([Some("h"), Some("1"), Some("d"), Some("u")], ""))
        );
        assert_eq!(parse_pgpass_line("# h:1:d:u:pw"), None);
        assert_eq!(parse_pgpass_line("h:1:d:u"), None);
        assert_eq!(parse_pgpass_line(""), None);
        assert_eq!(parse_pgpass_line("   "), None);
        // Trailing lone backslash is kept.
        assert_eq!(parse_pgpass_line("h:1:d:u:pw\\").unwrap().password, "pw\\");
    }

    #[test]
    fn looks_up_pgpass_entries() {
        let entries = parse_pgpass(
            "# comment\n\
             localhost:5432:app:alice:first\n\
             *:5432:app:alice:second\n\
             db.example:*:*:bob:bobpw\n\
             db.example:6432:*:*:\n\
             *:*:*:*:fallback\n",
        );
        assert_eq!(entries.len(), 5);
        let look = |h: &str, p: &str, d: &str, u: &str| pgpass_lookup(&entries, h, p, d, u);
        assert_eq!(
            look("localhost", "5432", "app", "alice").as_deref(),
            Some("first")
        );
        assert_eq!(
            look("other", "5432", "app", "alice").as_deref(),
            Some("second")
        );
        assert_eq!(
            look("db.example", "1", "x", "bob").as_deref(),
            Some("bobpw")
        );
        // An empty password counts as none (the fallback line is not consulted past a match).
        assert_eq!(look("db.example", "6432", "x", "carol"), None);
        assert_eq!(
            look("elsewhere", "1", "x", "carol").as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_lookup(&[], "h", "1", "d", "u"), None);
    }
}
