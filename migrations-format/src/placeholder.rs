//! Placeholders: `${name}` in a migration's SQL, replaced by a value when the SQL is sent.
//!
//! The checksum covers the file as written, so one file applied with different values (one
//! schema per tenant) keeps one checksum. Substitution is one function, [`substitute`], called
//! by the runner (embedded or loaded migrations), the offline script and `migrations test`.
//!
//! How a value goes in depends on where the placeholder sits, so that a value can never end
//! the construct around it (injection-safe by default):
//!
//! | where | `${name}` | `${name:ident}` | `${name:literal}` | `${name:raw}` |
//! |---|---|---|---|---|
//! | SQL code (and dollar-quoted bodies) | a plain identifier or number, else an error | `"quoted"` identifier | `'quoted'` string | as written |
//! | inside `'...'` / `E'...'` | `'` doubled (and `\` in `E''`) | error | same as `${name}` | as written |
//! | inside `"..."` | `"` doubled | same as `${name}` | error | as written |
//! | comments | left as written | | | |
//!
//! A plain identifier is `[A-Za-z_][A-Za-z0-9_]*` (at most 63 bytes), a plain number is
//! `[0-9]+` or `[0-9]+.[0-9]+`: neither can hold a space, a quote, a `;` or a `$`, so nothing
//! outside the placeholder's own token can change. `$${` is an escape for a literal `${`
//! everywhere but in comments (so `$${` never opens a dollar quote). Names are
//! case-insensitive (`${Schema}` is `${schema}`), made of `[A-Za-z0-9_]`, starting with a
//! letter or `_`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

/// How a placeholder's value is inserted, from its `:kind` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// `${name}`: validated (code) or escaped (inside a string or a quoted identifier).
    Checked,
    /// `${name:ident}`: always a quoted identifier.
    Ident,
    /// `${name:literal}`: always a string constant.
    Literal,
    /// `${name:raw}`: the value as written, unchecked: only for values the migration's author
    /// controls (a clause, a type, a list).
    Raw,
}

impl Kind {
    fn suffix(self) -> &'static str {
        match self {
            Kind::Checked => "",
            Kind::Ident => ":ident",
            Kind::Literal => ":literal",
            Kind::Raw => ":raw",
        }
    }
}

/// Where a placeholder sits in the SQL, which decides how its value is quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Context {
    /// SQL code, including a dollar-quoted body (a function's or a `DO` block's code).
    Code,
    /// Inside a string constant; `escape` for an `E'...'` string (backslash escapes).
    String {
        /// An `E'...'` string, where a backslash escapes.
        escape: bool,
    },
    /// Inside a `"quoted identifier"`.
    QuotedIdent,
}

/// One `${...}` (or `$${` escape) found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    /// The placeholder's name, lowercased; `None` for a `$${` escape.
    pub name: Option<String>,
    /// How the value goes in.
    pub kind: Kind,
    /// Where it sits.
    pub context: Context,
    /// Byte range of `${...}` (or of `$${`) in the text.
    pub span: Range<usize>,
    /// 1-based line of its `$`.
    pub line: u32,
}

/// A problem with a placeholder: its line and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderProblem {
    /// 1-based line of the placeholder.
    pub line: u32,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The placeholder has no value (rather than a malformed placeholder or a bad value).
    pub unset: bool,
}

impl fmt::Display for PlaceholderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Placeholder values by name (names lowercased, so lookups are case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placeholders {
    values: BTreeMap<String, String>,
}

impl Placeholders {
    /// No values.
    pub fn new() -> Placeholders {
        Placeholders::default()
    }

    /// Sets a value (replacing an earlier one). The error says why the name is not one.
    pub fn insert(
        &mut self,
        name: impl AsRef<str>,
        value: impl Into<String>,
    ) -> Result<(), String> {
        let name = name.as_ref();
        check_name(name)?;
        self.values.insert(name.to_ascii_lowercase(), value.into());
        Ok(())
    }

    /// The value of `name` (any letter case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Every value, by lowercased name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `self`'s values, with `over`'s replacing any of the same name.
    pub fn overridden_by(&self, over: &Placeholders) -> Placeholders {
        let mut values = self.values.clone();
        values.extend(over.values.iter().map(|(k, v)| (k.clone(), v.clone())));
        Placeholders { values }
    }

    /// The values from `MIGRATIONS_PLACEHOLDER_<NAME>` variables among `vars` (the name
    /// lowercased); a variable whose suffix is not a name is ignored.
    pub fn from_env_vars(vars: impl IntoIterator<Item = (String, String)>) -> Placeholders {
        let mut placeholders = Placeholders::new();
        for (key, value) in vars {
            if let Some(name) = key.strip_prefix(ENV_PREFIX) {
                let _ = placeholders.insert(name, value);
            }
        }
        placeholders
    }
}

/// The prefix of the environment variables that give placeholder values.
pub const ENV_PREFIX: &str = "MIGRATIONS_PLACEHOLDER_";

/// Checks a placeholder name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a placeholder name: use letters, digits and `_`, starting with a \
             letter or `_`",
            name.escape_debug()
        ))
    }
}

/// Whether `text` may hold a placeholder or an escape (a quick test before [`scan`]).
pub fn may_hold_placeholders(text: &str) -> bool {
    text.contains("${")
}

/// Finds every placeholder and `$${` escape in `text`, in order. Problems are malformed
/// placeholders (no `}`, a bad name, an unknown `:kind`, a kind that contradicts where it
/// sits); the file cannot be used until they are fixed.
pub fn scan(text: &str) -> Result<Vec<Use>, Vec<PlaceholderProblem>> {
    // Every use and every problem starts at a `${` (an escape is `$${`): a text without one
    // has neither. The loader scans every file it reads; the scanner follows the SQL's
    // strings and comments byte by byte, a quarter of the client's CPU on a 100 MB seed file.
    if !may_hold_placeholders(text) {
        return Ok(Vec::new());
    }
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        at: 0,
        uses: Vec::new(),
        problems: Vec::new(),
    };
    scanner.run();
    if scanner.problems.is_empty() {
        Ok(scanner.uses)
    } else {
        Err(scanner.problems)
    }
}

/// The names `text` uses (lowercased, sorted, once each); malformed ones are left out.
pub fn names(text: &str) -> Vec<String> {
    let uses = match scan(text) {
        Ok(uses) => uses,
        Err(_) => return Vec::new(),
    };
    let mut names: Vec<String> = uses.into_iter().filter_map(|u| u.name).collect();
    names.sort();
    names.dedup();
    names
}

/// `text` with every placeholder replaced by its value, quoted for where it sits, and every
/// `$${` by `${`. Borrowed when the text holds none. Every problem is listed (unset values,
/// values that are not plain identifiers where code goes, malformed placeholders), each with
/// its line.
pub fn substitute<'t>(
    text: &'t str,
    values: &Placeholders,
) -> Result<Cow<'t, str>, Vec<PlaceholderProblem>> {
    if !may_hold_placeholders(text) {
        return Ok(Cow::Borrowed(text));
    }
    let uses = scan(text)?;
    if uses.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut at = 0;
    for u in &uses {
        out.push_str(&text[at..u.span.start]);
        at = u.span.end;
        let Some(name) = &u.name else {
            out.push_str("${");
            continue;
        };
        let Some(value) = values.get(name) else {
            problems.push(PlaceholderProblem {
                line: u.line,
                message: unset_message(name, u.kind),
                unset: true,
            });
            continue;
        };
        match insert(name, u.kind, u.context, value) {
            Ok(piece) => out.push_str(&piece),
            // Once per line: `${s}.a, ${s}.b` is one mistake.
            Err(message)
                if problems.last().is_some_and(|p: &PlaceholderProblem| {
                    p.line == u.line && p.message == message
                }) => {}
            Err(message) => problems.push(PlaceholderProblem {
                line: u.line,
                message,
                unset: false,
            }),
        }
    }
    out.push_str(&text[at..]);
    if problems.is_empty() {
        Ok(Cow::Owned(out))
    } else {
        Err(problems)
    }
}

fn unset_message(name: &str, kind: Kind) -> String {
    format!(
        "placeholder `${{{name}{}}}` has no value; give it one with `--placeholder {name}=VALUE`, \
         the variable {ENV_PREFIX}{}, `{name} = \"...\"` under [placeholders] in \
         migrations.toml, or Migrator::placeholder (write `$${{` for a literal `${{`)",
        kind.suffix(),
        name.to_ascii_uppercase()
    )
}

/// The text that replaces one placeholder.
fn insert(name: &str, kind: Kind, context: Context, value: &str) -> Result<String, String> {
    let shown = format!("${{{name}{}}}", kind.suffix());
    match (kind, context) {
        (Kind::Raw, _) => Ok(value.to_owned()),
        (Kind::Checked, Context::Code) => {
            check_plain(value)
                .map(|()| value.to_owned())
                .map_err(|why| {
                    format!(
                    "the value of placeholder `{shown}` {why}, and `{shown}` sits in SQL code, \
                     where only a plain identifier ([A-Za-z_][A-Za-z0-9_]*) or number is \
                     inserted as is: write `${{{name}:ident}}` to insert it as a quoted \
                     identifier, `${{{name}:literal}}` as a string, or `${{{name}:raw}}` to insert \
                     it unchecked"
                )
                })
        }
        (Kind::Ident, Context::Code) => Ok(quote_ident(value)),
        (Kind::Literal, Context::Code) => Ok(quote_literal(value)),
        (Kind::Checked | Kind::Literal, Context::String { escape }) => {
            let mut escaped = value.replace('\'', "''");
            if escape {
                escaped = escaped.replace('\\', "\\\\");
            }
            Ok(escaped)
        }
        (Kind::Checked | Kind::Ident, Context::QuotedIdent) => Ok(value.replace('"', "\"\"")),
        // `scan` refuses the other pairs.
        _ => Err(format!("`{shown}` cannot be used here")),
    }
}

/// Why `value` is not a plain identifier or number, if it is not.
fn check_plain(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".to_owned());
    }
    let bytes = value.as_bytes();
    let is_ident = (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if is_ident {
        if value.len() > 63 {
            return Err("is longer than PostgreSQL's 63-byte identifiers".to_owned());
        }
        return Ok(());
    }
    let is_number = {
        let (whole, fraction) = value.split_once('.').unwrap_or((value, "0"));
        !whole.is_empty()
            && !fraction.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.bytes().all(|b| b.is_ascii_digit())
    };
    if is_number {
        return Ok(());
    }
    // Name the first character that disqualifies it, never the value (it may be a secret).
    let bad = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
        .unwrap_or(value.chars().next().unwrap_or(' '));
    Err(format!("holds {bad:?}"))
}

fn quote_ident(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// A string constant that means `value` whatever `standard_conforming_strings` is.
fn quote_literal(value: &str) -> String {
    if value.contains('\\') {
        format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    uses: Vec<Use>,
    problems: Vec<PlaceholderProblem>,
}

impl Scanner<'_> {
    fn line(&self, at: usize) -> u32 {
        self.bytes[..at].iter().filter(|b| **b == b'\n').count() as u32 + 1
    }

    fn starts(&self, s: &str) -> bool {
        self.bytes[self.at..].starts_with(s.as_bytes())
    }

    /// Reads `$${` or `${...}` at `self.at`, if there is one; true when it consumed it.
    fn placeholder(&mut self, context: Context) -> bool {
        if self.starts("$${") {
            let line = self.line(self.at);
            self.uses.push(Use {
                name: None,
                kind: Kind::Raw,
                context,
                span: self.at..self.at + 3,
                line,
            });
            self.at += 3;
            return true;
        }
        if !self.starts("${") {
            return false;
        }
        let start = self.at;
        let line = self.line(start);
        let body_start = start + 2;
        let end = self.bytes[body_start..]
            .iter()
            .position(|b| *b == b'}' || *b == b'\n')
            .map(|i| body_start + i)
            .filter(|i| self.bytes[*i] == b'}');
        let Some(end) = end else {
            self.problems.push(PlaceholderProblem {
                line,
                message: "`${` opens a placeholder that is not closed by `}` on its line; close \
                          it, or write `$${` for a literal `${`"
                    .to_owned(),
                unset: false,
            });
            self.at = body_start;
            return true;
        };
        let body = &self.text[body_start..end];
        self.at = end + 1;
        let (name, kind) = match body.split_once(':') {
            None => (body, Some(Kind::Checked)),
            Some((name, "raw")) => (name, Some(Kind::Raw)),
            Some((name, "ident")) => (name, Some(Kind::Ident)),
            Some((name, "literal")) => (name, Some(Kind::Literal)),
            Some((name, _)) => (name, None),
        };
        let Some(kind) = kind else {
            self.problems.push(PlaceholderProblem {
                line,
                message: format!(
                    "`${{{}}}`: unknown placeholder kind; write `${{{name}}}`, \
                     `${{{name}:ident}}`, `${{{name}:literal}}` or `${{{name}:raw}}`",
                    body.escape_debug()
                ),
                unset: false,
            });
            return true;
        };
        if let Err(why) = check_name(name) {
            self.problems.push(PlaceholderProblem {
                line,
                message: format!(
                    "`${{{}}}`: {why} (write `$${{` for a literal `${{`)",
                    body.escape_debug()
                ),
                unset: false,
            });
            return true;
        }
        let clash = match (kind, context) {
            (Kind::Ident, Context::String { .. }) => Some("inside a string constant"),
            (Kind::Literal, Context::QuotedIdent) => Some("inside a quoted identifier"),
            _ => None,
        };
        if let Some(place) = clash {
            self.problems.push(PlaceholderProblem {
                line,
                message: format!(
                    "`${{{body}}}` sits {place}, where its quotes would be wrong; write \
                     `${{{name}}}`, which is escaped for where it sits"
                ),
                unset: false,
            });
            return true;
        }
        self.uses.push(Use {
            name: Some(name.to_ascii_lowercase()),
            kind,
            context,
            span: start..end + 1,
            line,
        });
        true
    }

    fn run(&mut self) {
        while self.at < self.bytes.len() {
            if self.placeholder(Context::Code) {
                continue;
            }
            let b = self.bytes[self.at];
            match b {
                b'-' if self.starts("--") => {
                    self.at = self.bytes[self.at..]
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(self.bytes.len(), |i| self.at + i);
                }
                b'/' if self.starts("/*") => self.block_comment(),
                b'\'' => {
                    let escape = self.at > 0
                        && matches!(self.bytes[self.at - 1], b'e' | b'E')
                        && (self.at < 2 || !is_ident_byte(self.bytes[self.at - 2]));
                    self.at += 1;
                    self.quoted(b'\'', Context::String { escape });
                }
                b'"' => {
                    self.at += 1;
                    self.quoted(b'"', Context::QuotedIdent);
                }
                b'$' if self.at == 0 || !is_ident_byte(self.bytes[self.at - 1]) => {
                    match self.dollar_tag() {
                        Some(tag_len) => {
                            let tag = self.text[self.at..self.at + tag_len].to_owned();
                            self.at += tag_len;
                            self.dollar_body(&tag);
                        }
                        None => self.at += 1,
                    }
                }
                _ => self.at += 1,
            }
        }
    }

    fn block_comment(&mut self) {
        let mut depth = 0usize;
        while self.at < self.bytes.len() {
            if self.starts("/*") {
                depth += 1;
                self.at += 2;
            } else if self.starts("*/") {
                depth -= 1;
                self.at += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.at += 1;
            }
        }
    }

    /// Inside `'...'` or `"..."`, after the opening quote.
    fn quoted(&mut self, quote: u8, context: Context) {
        let escape = matches!(context, Context::String { escape: true });
        while self.at < self.bytes.len() {
            if self.placeholder(context) {
                continue;
            }
            let b = self.bytes[self.at];
            if escape && b == b'\\' {
                self.at += 2;
            } else if b == quote {
                if self.bytes.get(self.at + 1) == Some(&quote) {
                    self.at += 2;
                } else {
                    self.at += 1;
                    return;
                }
            } else {
                self.at += 1;
            }
        }
    }

    /// The length of a dollar-quote opening tag (`$$`, `$tag$`) at `self.at`.
    fn dollar_tag(&self) -> Option<usize> {
        let rest = &self.bytes[self.at + 1..];
        let first = *rest.first()?;
        if first == b'$' {
            return Some(2);
        }
        if !(first.is_ascii_alphabetic() || first == b'_' || first >= 0x80) {
            return None;
        }
        let len = rest
            .iter()
            .position(|b| !(is_ident_byte(*b) && *b != b'$'))?;
        (rest[len] == b'$').then_some(len + 2)
    }

    /// Inside a dollar-quoted body: code (a function's), up to the closing tag.
    fn dollar_body(&mut self, tag: &str) {
        while self.at < self.bytes.len() {
            if self.placeholder(Context::Code) {
                continue;
            }
            if self.starts(tag) {
                self.at += tag.len();
                return;
            }
            self.at += 1;
        }
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Placeholders {
        let mut p = Placeholders::new();
        for (k, v) in pairs {
            p.insert(k, *v).unwrap();
        }
        p
    }

    fn sub(text: &str, pairs: &[(&str, &str)]) -> Result<String, Vec<PlaceholderProblem>> {
        substitute(text, &values(pairs)).map(Cow::into_owned)
    }

    #[test]
    fn code_takes_plain_identifiers_and_numbers() {
        assert_eq!(
            sub(
                "CREATE TABLE ${Schema}.t_${n} (x int DEFAULT ${d});",
                &[("schema", "tenant_1"), ("n", "7"), ("d", "1.5")]
            )
            .unwrap(),
            "CREATE TABLE tenant_1.t_7 (x int DEFAULT 1.5);"
        );
        for bad in ["a; DROP TABLE x", "a b", "x\"y", "", "a$b", "1e5", "é"] {
            let e = sub("SELECT * FROM ${s}.t;", &[("s", bad)]).unwrap_err();
            assert_eq!(e[0].line, 1);
            assert!(
                e[0].message.contains("sits in SQL code"),
                "{bad}: {}",
                e[0].message
            );
            assert!(
                !bad.contains(' ') || !e[0].message.contains(bad),
                "value printed"
            );
        }
        // Dollar-quoted bodies are code too.
        let e = sub(
            "DO $$ BEGIN PERFORM ${s}; END $$;",
            &[("s", "1); DROP TABLE x; --")],
        )
        .unwrap_err();
        assert!(
            e[0].message.contains("sits in SQL code"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn kinds_quote_for_where_they_sit() {
        let v = [("v", "it's \"x\" \\n")];
        assert_eq!(
            sub("SELECT ${v:ident}", &v).unwrap(),
            r#"SELECT "it's ""x"" \n""#
        );
        assert_eq!(
            sub("SELECT ${v:literal}", &v).unwrap(),
            r#"SELECT E'it''s "x" \\n'"#
        );
        assert_eq!(sub("SELECT ${v:raw}", &v).unwrap(), r#"SELECT it's "x" \n"#);
        assert_eq!(
            sub("SELECT 'a ${v} b'", &v).unwrap(),
            r#"SELECT 'a it''s "x" \n b'"#
        );
        assert_eq!(
            sub("SELECT E'${v}'", &v).unwrap(),
            r#"SELECT E'it''s "x" \\n'"#
        );
        assert_eq!(
            sub(r#"SELECT "${v}""#, &v).unwrap(),
            r#"SELECT "it's ""x"" \n""#
        );
        // A word ending in e before a quote is not an E string.
        assert_eq!(
            sub("SELECT type'${v}'", &[("v", "\\")]).unwrap(),
            "SELECT type'\\'"
        );
    }

    #[test]
    fn escapes_comments_and_unchanged_text() {
        assert_eq!(
            sub("SELECT '$${x}' -- ${y}\n/* ${z} /* ${w} */ */ ;", &[]).unwrap(),
            "SELECT '${x}' -- ${y}\n/* ${z} /* ${w} */ */ ;"
        );
        assert!(matches!(
            substitute("SELECT 1", &Placeholders::new()),
            Ok(Cow::Borrowed(_))
        ));
        // A `$` inside a word is not a dollar quote.
        assert_eq!(
            sub("SELECT a$b, ${x}", &[("x", "y")]).unwrap(),
            "SELECT a$b, y"
        );
        // The closing tag ends the body.
        assert_eq!(
            sub("SELECT $f$ ${x} $f$, '${x}'", &[("x", "y")]).unwrap(),
            "SELECT $f$ y $f$, 'y'"
        );
    }

    #[test]
    fn unset_and_malformed_name_the_line_and_the_fix() {
        let e = sub("SELECT 1;\nSELECT ${tenant};\nSELECT ${tenant:raw};", &[]).unwrap_err();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.starts_with("placeholder `${tenant}` has no value; give it one with `--placeholder tenant=VALUE`, the variable MIGRATIONS_PLACEHOLDER_TENANT"), "{}", e[0].message);
        assert!(
            e[1].message.starts_with("placeholder `${tenant:raw}`"),
            "{}",
            e[1].message
        );
        let e =
            scan("SELECT ${a b};\n${x:weird}\n${oops\n'${v:ident}'\n\"${v:literal}\"").unwrap_err();
        let lines: Vec<u32> = e.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5]);
        assert!(
            e[0].message.contains("not a placeholder name"),
            "{}",
            e[0].message
        );
        assert!(
            e[1].message.contains("unknown placeholder kind"),
            "{}",
            e[1].message
        );
        assert!(
            e[2].message.contains("not closed by `}`"),
            "{}",
            e[2].message
        );
        assert!(
            e[3].message.contains("inside a string constant"),
            "{}",
            e[3].message
        );
        assert!(
            e[4].message.contains("inside a quoted identifier"),
            "{}",
            e[4].message
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        let pieces = [
            "${", "$${", "}", "$$", "$a$", "'", "E'", "\\", "\"", "--", "\n", "/*", "*/", "é", "x",
            ":raw", ":ident", ":literal", " ", "$",
        ];
        let values = values(&[("x", "v"), ("a", "'\"$")]);
        // Every sequence of three pieces, and a few long mixes.
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let text = format!("{a}{b}{c}{a}x}}");
                    let _ = scan(&text);
                    let _ = substitute(&text, &values);
                }
            }
        }
        let long: String = (0..500).map(|i| pieces[(i * 7) % pieces.len()]).collect();
        let _ = substitute(&long, &values);
    }

    #[test]
    fn names_and_env() {
        assert_eq!(names("${B} ${a} ${b:raw} $${c}"), ["a", "b"]);
        let p = Placeholders::from_env_vars([
            ("MIGRATIONS_PLACEHOLDER_SCHEMA".to_owned(), "s".to_owned()),
            ("MIGRATIONS_PLACEHOLDER_".to_owned(), "x".to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ]);
        assert_eq!(p.iter().collect::<Vec<_>>(), [("schema", "s")]);
        let over = values(&[("schema", "t"), ("x", "1")]);
        let merged = p.overridden_by(&over);
        assert_eq!(merged.get("SCHEMA"), Some("t"));
        assert_eq!(merged.get("x"), Some("1"));
        assert!(Placeholders::new().insert("1a", "x").is_err());
    }
}
