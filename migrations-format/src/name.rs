//! Migration file and folder names: `<version>_<name>.up.sql`, `<version>_<name>.down.sql` and
//! `<version>_<name>/`.

use crate::version::{Version, VersionError};

/// The patterns a user should follow, quoted in every naming error.
pub const FLAT_PATTERN: &str = "<version>_<name>.up.sql or <version>_<name>.down.sql";
/// The folder layout's pattern (diesel's), quoted in every folder naming error.
pub const FOLDER_PATTERN: &str = "<version>_<name>/ holding up.sql and down.sql";

/// Which half of a migration a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The up file: applies the migration (`.up.sql`, or `up.sql` in a folder).
    Up,
    /// The down file: reverts the migration (`.down.sql`, or `down.sql` in a folder).
    Down,
}

impl Direction {
    /// `"up"` or `"down"`, as written in file names and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// Splits `<version>_<name>` and checks both parts.
pub fn parse_stem(stem: &str) -> Result<(Version, String), String> {
    let Some((version, name)) = stem.split_once('_') else {
        return Err(format!(
            "`{stem}` has no `_` between the version and the name"
        ));
    };
    let version = Version::parse(version).map_err(|e| match e {
        VersionError::Empty => "the name does not start with a version".to_owned(),
        other => other.to_string(),
    })?;
    check_name(name)?;
    Ok((version, name.to_owned()))
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the migration name after `_` is empty".to_owned());
    }
    if let Some(c) = name.chars().find(|c| *c == '/' || c.is_control()) {
        return Err(format!(
            "the migration name `{}` holds the character {c:?}, which is not allowed",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// For a stem such as `1_users.donw` whose last dot-part is a near miss of `up` or `down` (a
/// letter case, one edit or two swapped letters away), the stem without it and the direction
/// meant.
fn misspelt_direction(stem: &str) -> Option<(&str, &'static str)> {
    let (base, last) = stem.rsplit_once('.')?;
    parse_stem(base).ok()?;
    let last = last.to_ascii_lowercase();
    ["up", "down"]
        .into_iter()
        .find(|meant| near_miss(&last, meant))
        .map(|meant| (base, meant))
}

/// One insertion, deletion, substitution or swap of neighbours apart (or equal).
fn near_miss(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Optimal string alignment distance, small inputs only.
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    a.len() <= 8 && d[a.len()][b.len()] <= 1
}

/// Parses a flat file name such as `0001_create_users.up.sql`.
pub fn parse_flat_file_name(file_name: &str) -> Result<(Version, String, Direction), String> {
    let (stem, direction) = if let Some(stem) = file_name.strip_suffix(".up.sql") {
        (stem, Direction::Up)
    } else if let Some(stem) = file_name.strip_suffix(".down.sql") {
        (stem, Direction::Down)
    } else {
        // `x.donw.sql`, `x.Up.sql`: a misspelt direction, not a missing one.
        if let Some((base, meant)) = file_name.strip_suffix(".sql").and_then(misspelt_direction) {
            return Err(format!(
                "`{file_name}` is not a migration file name: did you mean `{base}.{meant}.sql`? \
                 (expected {FLAT_PATTERN}, or list it under `ignore` in migrations.toml)"
            ));
        }
        let hint = match file_name.strip_suffix(".sql") {
            Some(stem) if parse_stem(stem).is_ok() => {
                format!("; if it is the up half of a migration, rename it to `{stem}.up.sql`")
            }
            _ => String::new(),
        };
        return Err(format!(
            "`{file_name}` is not a migration file name: expected {FLAT_PATTERN}{hint}, \
             or list it under `ignore` in migrations.toml"
        ));
    };
    let (version, name) = parse_stem(stem).map_err(|why| {
        format!(
            "`{file_name}` is not a migration file name ({why}): expected {FLAT_PATTERN}, \
             or list it under `ignore` in migrations.toml"
        )
    })?;
    Ok((version, name, direction))
}

/// The pattern of a repeatable migration's file name (Flyway's), quoted in its errors.
pub const REPEATABLE_PATTERN: &str = "R__<name>.sql";

/// For a file name starting with `R__`, the repeatable migration's name, or why the name is
/// not one; `None` for any other name.
pub fn parse_repeatable_file_name(file_name: &str) -> Option<Result<String, String>> {
    let rest = file_name.strip_prefix("R__")?;
    let Some(name) = rest.strip_suffix(".sql") else {
        return Some(Err(format!(
            "`{file_name}` starts like a repeatable migration but does not end in `.sql`: \
             expected {REPEATABLE_PATTERN}"
        )));
    };
    if let Some(base) = name
        .strip_suffix(".up")
        .or_else(|| name.strip_suffix(".down"))
    {
        return Some(Err(format!(
            "`{file_name}`: a repeatable migration is one file, with no up or down half (it \
             is applied again whenever it changes); rename it `R__{base}.sql`"
        )));
    }
    // `R__0001_views.sql`, `R__2024.sql`: a version where only a name belongs.
    let version_like = parse_stem(name).is_ok()
        || (!name.is_empty() && name.chars().all(|c| c.is_ascii_digit() || c == '-'));
    if version_like {
        let (version, rest) = name.split_once('_').unwrap_or((name, name));
        return Some(Err(format!(
            "`{file_name}` names a repeatable migration with a version ({version}): a \
             repeatable has no version, it runs after the versioned ones, in name order; \
             rename it `R__{rest}.sql`, or, if it is a versioned migration, \
             `{name}.up.sql`"
        )));
    }
    Some(check_name(name).map(|()| name.to_owned()).map_err(|why| {
        format!("`{file_name}` is not a repeatable migration name ({why}): expected {REPEATABLE_PATTERN}")
    }))
}

/// Parses a migration folder name such as `2019-02-26-002946_add_users`.
pub fn parse_folder_name(folder: &str) -> Result<(Version, String), String> {
    parse_stem(folder).map_err(|why| {
        format!(
            "folder `{folder}` holds .sql files but is not a migration name ({why}): expected \
             {FOLDER_PATTERN}, or list it under `ignore` in migrations.toml"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_direction_is_named() {
        for (file, meant) in [
            ("1_x.donw.sql", "1_x.down.sql"),
            ("1_x.dwn.sql", "1_x.down.sql"),
            ("1_x.Down.sql", "1_x.down.sql"),
            ("1_x.UP.sql", "1_x.up.sql"),
            ("1_x.pu.sql", "1_x.up.sql"),
            (
                "2019-02-26-002946_x.downn.sql",
                "2019-02-26-002946_x.down.sql",
            ),
        ] {
            let e = parse_flat_file_name(file).unwrap_err();
            assert!(
                e.contains(&format!(": did you mean `{meant}`? (expected")),
                "{file}: {e}"
            );
            assert!(!e.contains("up half"), "{file}: {e}");
        }
        // Not a near miss: the old advice (a missing direction).
        let e = parse_flat_file_name("1_x.v2.sql").unwrap_err();
        assert!(e.contains("rename it to `1_x.v2.up.sql`"), "{e}");
        assert!(!e.contains("did you mean"), "{e}");
        let e = parse_flat_file_name("1_x.sql").unwrap_err();
        assert!(e.contains("rename it to `1_x.up.sql`"), "{e}");
    }

    #[test]
    fn flat_names() {
        let (v, n, d) = parse_flat_file_name("0001_create users.v2.up.sql").unwrap();
        assert_eq!(
            (v.value(), n.as_str(), d),
            (1, "create users.v2", Direction::Up)
        );
        let (v, n, d) = parse_flat_file_name("2019-02-26-002946_x_y.down.sql").unwrap();
        assert_eq!(
            (v.value(), n.as_str(), d),
            (20190226002946, "x_y", Direction::Down)
        );
    }

    #[test]
    fn flat_name_errors_say_what_to_do() {
        let e = parse_flat_file_name("0001_init.sql").unwrap_err();
        assert!(e.contains("rename it to `0001_init.up.sql`"), "{e}");
        let e = parse_flat_file_name("data_oauth_github.sql").unwrap_err();
        assert!(e.contains("expected <version>_<name>.up.sql"), "{e}");
        assert!(e.contains("ignore"), "{e}");
        let e = parse_flat_file_name("1_.up.sql").unwrap_err();
        assert!(e.contains("name after `_` is empty"), "{e}");
        let e = parse_flat_file_name("1-_x.up.sql").unwrap_err();
        assert!(e.contains("single `-`"), "{e}");
        let e = parse_flat_file_name("v1_x.up.sql").unwrap_err();
        assert!(e.contains("only digits"), "{e}");
        let e = parse_flat_file_name("1_a\u{7}b.up.sql").unwrap_err();
        assert!(e.contains("not allowed"), "{e}");
    }

    #[test]
    fn repeatable_names() {
        assert_eq!(parse_repeatable_file_name("0001_x.up.sql"), None);
        assert_eq!(
            parse_repeatable_file_name("R__views and grants.sql"),
            Some(Ok("views and grants".to_owned()))
        );
        let e = parse_repeatable_file_name("R__0001_views.sql")
            .unwrap()
            .unwrap_err();
        assert!(e.contains("with a version (0001)"), "{e}");
        assert!(
            e.contains(
                "rename it `R__views.sql`, or, if it is a versioned migration, `0001_views.up.sql`"
            ),
            "{e}"
        );
        let e = parse_repeatable_file_name("R__2024.sql")
            .unwrap()
            .unwrap_err();
        assert!(e.contains("with a version (2024)"), "{e}");
        let e = parse_repeatable_file_name("R__v.up.sql")
            .unwrap()
            .unwrap_err();
        assert!(e.contains("rename it `R__v.sql`"), "{e}");
        let e = parse_repeatable_file_name("R__.sql").unwrap().unwrap_err();
        assert!(e.contains("is empty"), "{e}");
    }

    #[test]
    fn folder_names() {
        let (v, n) =
            parse_folder_name("2019-11-15-182353_Add email notifications to crate owners").unwrap();
        assert_eq!(v.value(), 20191115182353);
        assert_eq!(n, "Add email notifications to crate owners");
        assert!(parse_folder_name("drafts").unwrap_err().contains("no `_`"));
    }
}
