//! The up file `migrations new` writes, and how the lint recognises one still unwritten.
//!
//! An up file of comments alone is a valid no-op migration (sqlx runs them, and adopted
//! histories hold them), so an untouched template must not be comments alone: it holds one
//! statement that fails with `write this migration: <file>` until it is replaced. Applying it,
//! `migrations test` and the offline script all stop there; the lint's `unwritten-migration`
//! names it before anything runs.

/// The words the template's statement raises, followed by the file's name. The lint looks for
/// them; keep them in this one place.
const MARKER: &str = "write this migration: ";

/// The text of a new up file: a comment saying what to do, and the statement that fails until
/// it is replaced. `file` names the file within the migrations directory
/// (`20250801000015_add_users.up.sql`, or `20250801000015_add_users/up.sql`): the error a user
/// reads when applying it names the file to edit.
///
/// ```
/// let text = migrations_format::template::up_file("1_users.up.sql");
/// assert!(text.contains("RAISE EXCEPTION 'write this migration: 1_users.up.sql'"));
/// let statements = migrations_format::sql::split_statements(&text).statements;
/// assert!(migrations_format::template::is_unwritten(statements[0].text));
/// ```
pub fn up_file(file: &str) -> String {
    // Inside a string literal of the DO body: `'` is doubled, and `%` (RAISE's placeholder)
    // written `%%`. The body's dollar quote must not occur in the name.
    let literal = file.replace('\'', "''").replace('%', "%%");
    let tag = if file.contains('$') {
        "$unwritten$"
    } else {
        "$$"
    };
    format!(
        "-- Write the migration here, in place of the statement below: it fails until it is\n\
         -- replaced, so an unwritten migration is never applied as one that does nothing.\n\
         DO {tag} BEGIN RAISE EXCEPTION '{MARKER}{literal}'; END {tag};\n"
    )
}

/// Whether a statement (as the splitter cuts it) is the failing statement of
/// [`up_file`]'s template.
pub fn is_unwritten(statement: &str) -> bool {
    let statement = statement.trim_start();
    statement
        .get(..2)
        .is_some_and(|s| s.eq_ignore_ascii_case("DO"))
        && statement.contains(&format!("RAISE EXCEPTION '{MARKER}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::split_statements;

    #[test]
    fn the_template_is_one_statement_that_is_recognised() {
        for file in ["1_a.up.sql", "1_it's 100%/up.sql", "1_a$$b.up.sql"] {
            let text = up_file(file);
            let split = split_statements(&text);
            assert_eq!(split.statements.len(), 1, "{text}");
            assert!(is_unwritten(split.statements[0].text), "{text}");
        }
        assert!(!is_unwritten("DO $$ BEGIN RAISE NOTICE 'hello'; END $$"));
        assert!(!is_unwritten("CREATE TABLE t (x int)"));
    }
}
