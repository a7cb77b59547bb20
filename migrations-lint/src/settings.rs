//! Run-time parameters a statement sets or resets (`SET`, `RESET`, `set_config(...)`), read
//! from squawk's syntax tree.

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::SyntaxNode;

use crate::syntax::{compact, start, string_value};

/// A `SET`, `RESET` or `set_config(...)` of a run-time parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    /// The parameter, lower case (`timezone` for `TIME ZONE`, `role`, `session authorization`).
    pub param: String,
    pub scope: Scope,
    /// The value as written (`'5s'`, `a, b`); empty for `RESET` and `DEFAULT`.
    pub value: Vec<String>,
    /// `RESET`, `SET ... TO DEFAULT`, `RESET ALL` (param `all`): back to the server's default.
    pub reset: bool,
    /// Byte offset where it is written: the statement, or the `set_config` call.
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Session,
    Local,
}

impl Setting {
    fn new(param: &str, scope: Scope, value: Vec<String>, reset: bool, at: &SyntaxNode) -> Self {
        Setting {
            param: param.to_owned(),
            scope,
            value,
            reset,
            offset: start(at),
        }
    }

    /// The value when it is one constant (`'UTC'`, `UTC`, `0`), unquoted.
    pub fn single_value(&self) -> Option<String> {
        let [v] = self.value.as_slice() else {
            return None;
        };
        Some(
            match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                Some(inner) => inner.replace("''", "'"),
                None => v.trim_matches('"').to_owned(),
            },
        )
    }
}

fn scope(scope: Option<ast::SetScope>) -> Scope {
    match scope {
        Some(ast::SetScope::LocalScope(_)) => Scope::Local,
        _ => Scope::Session,
    }
}

/// A one-part value as written, if there is one.
fn value_of(node: Option<impl AstNode>) -> Vec<String> {
    node.map(|n| compact(n.syntax())).into_iter().collect()
}

/// A parameter name as the server folds it (`work_mem`, `myapp.flag`).
fn param_name(param: &ast::ConfigParameterRef) -> String {
    let mut name = compact(param.syntax()).to_ascii_lowercase();
    name.retain(|c| c != '"');
    // `SET NAMES 'x'` is `client_encoding`; squawk reads NAMES as a parameter name.
    if name == "names" {
        "client_encoding".to_owned()
    } else {
        name
    }
}

/// The `SET` / `RESET` a statement is, and every `set_config(...)` call in it. `text` is the
/// statement's text: the tree is searched for calls only when it names `set_config`.
pub(crate) fn settings(stmt: &ast::Stmt, text: &str) -> Vec<Setting> {
    let mut out: Vec<Setting> = statement_setting(stmt).into_iter().collect();
    if text
        .as_bytes()
        .windows(b"set_config".len())
        .any(|w| w.eq_ignore_ascii_case(b"set_config"))
    {
        out.extend(set_config_calls(stmt.syntax()));
    }
    out
}

/// `SET [SESSION|LOCAL] ...` and `RESET ...`; `None` for other statements and for `SET
/// TRANSACTION` / `SET CONSTRAINTS`, which only last as long as the transaction.
fn statement_setting(stmt: &ast::Stmt) -> Option<Setting> {
    use ast::Stmt as S;
    let at = stmt.syntax();
    let setting = match stmt {
        S::Set(set) => {
            let scope = scope(set.set_scope());
            let (param, value, reset) = match set.set_target()? {
                ast::SetTarget::SetConfig(c) => {
                    let param = param_name(&c.config_parameter_ref()?);
                    match c.config_assignment() {
                        Some(ast::ConfigAssignment::ToConfigValue(v)) => {
                            let reset = v.default_token().is_some();
                            let value = v.config_values().map(|v| compact(v.syntax())).collect();
                            (param, value, reset)
                        }
                        Some(ast::ConfigAssignment::FromCurrent(f)) => {
                            (param, vec![compact(f.syntax())], false)
                        }
                        None => (param, Vec::new(), false),
                    }
                }
                ast::SetTarget::SetTimeZone(tz) => {
                    // `SET TIME ZONE LOCAL` and `DEFAULT` go back to the default.
                    let reset = tz.default_token().is_some() || tz.local_token().is_some();
                    let value = match tz.config_value() {
                        Some(v) => value_of(Some(v)),
                        None => value_of(tz.cast_expr()),
                    };
                    ("timezone".to_owned(), value, reset)
                }
                ast::SetTarget::SetSchemaValue(s) => {
                    ("search_path".to_owned(), value_of(s.literal()), false)
                }
                ast::SetTarget::SetXmlOption(x) => (
                    "xmloption".to_owned(),
                    value_of(x.xml_document_or_content()),
                    false,
                ),
                ast::SetTarget::SetCatalog(c) => {
                    ("catalog".to_owned(), value_of(c.literal()), false)
                }
            };
            let value = if reset { Vec::new() } else { value };
            Setting::new(&param, scope, value, reset, at)
        }
        S::SetRole(set) => {
            let target = set.set_role_target();
            let reset = matches!(target, Some(ast::SetRoleTarget::SetRoleNone(_)));
            let value = match (&target, reset) {
                (Some(t), false) => vec![compact(t.syntax())],
                _ => Vec::new(),
            };
            Setting::new("role", scope(set.set_scope()), value, reset, at)
        }
        S::SetSessionAuth(set) => {
            let target = set.set_session_auth_target();
            let reset = matches!(
                target,
                Some(ast::SetSessionAuthTarget::SetSessionAuthDefault(_))
            );
            let value = match (&target, reset) {
                (Some(t), false) => vec![compact(t.syntax())],
                _ => Vec::new(),
            };
            Setting::new(
                "session authorization",
                scope(set.set_scope()),
                value,
                reset,
                at,
            )
        }
        // `SET SESSION CHARACTERISTICS AS TRANSACTION ...` sets the session's default for every
        // later transaction; plain `SET TRANSACTION` lasts one transaction.
        S::SetTransaction(set) => {
            let characteristics = set.session_characteristics()?;
            let value = vec![compact(characteristics.syntax())];
            Setting::new("session characteristics", Scope::Session, value, false, at)
        }
        S::Reset(reset) => {
            let param = match reset.reset_target()? {
                ast::ResetTarget::All(_) => "all".to_owned(),
                ast::ResetTarget::ConfigParameterRef(p) => param_name(&p),
                ast::ResetTarget::ResetTimeZone(_) => "timezone".to_owned(),
                ast::ResetTarget::ResetTransactionIsolation(_) => {
                    "transaction_isolation".to_owned()
                }
            };
            Setting::new(&param, Scope::Session, Vec::new(), true, at)
        }
        S::ResetRole(_) => Setting::new("role", Scope::Session, Vec::new(), true, at),
        S::ResetSessionAuth(_) => Setting::new(
            "session authorization",
            Scope::Session,
            Vec::new(),
            true,
            at,
        ),
        _ => return None,
    };
    Some(setting)
}

/// `set_config('param', value, is_local)` calls anywhere in a statement.
fn set_config_calls(node: &SyntaxNode) -> Vec<Setting> {
    node.descendants()
        .filter_map(ast::CallExpr::cast)
        .filter_map(|call| {
            let function = match call.expr()? {
                ast::Expr::NameRef(name) => name.text(),
                ast::Expr::FieldExpr(field) => field.field()?.text(), // pg_catalog.set_config
                _ => return None,
            };
            if function != "set_config" {
                return None;
            }
            let args: Vec<SyntaxNode> = call
                .arg_list()?
                .args()
                .map(|a| a.syntax().clone())
                .collect();
            let [name, value, local] = args.as_slice() else {
                return None;
            };
            // The name is a string constant: the argument's only node.
            let param = match name.children().collect::<Vec<_>>().as_slice() {
                [only] => ast::Literal::cast(only.clone()).and_then(|l| string_value(&l))?,
                _ => return None,
            };
            let is_local = is_true(local);
            Some(Setting::new(
                &param.to_ascii_lowercase(),
                if is_local {
                    Scope::Local
                } else {
                    Scope::Session
                },
                vec![compact(value)],
                false,
                call.syntax(),
            ))
        })
        .collect()
}

/// Whether `set_config`'s `is_local` argument is true: anything but a false constant counts,
/// so that a doubtful call is read as the harmless `SET LOCAL`.
fn is_true(arg: &SyntaxNode) -> bool {
    let text = compact(arg);
    let text = text.trim_matches('\'');
    !["f", "false", "off", "no", "0"]
        .iter()
        .any(|f| text.eq_ignore_ascii_case(f))
}

/// A setting's value as a file leaves it, statement by statement: the session's, and the
/// `SET LOCAL` one of the open transaction block, which ends with the block.
#[derive(Debug, Clone)]
pub(crate) struct Scoped<T> {
    session: T,
    local: Option<T>,
}

impl<T: Clone> Scoped<T> {
    pub fn new(session: T) -> Self {
        Scoped {
            session,
            local: None,
        }
    }

    /// A `SET` (or `RESET`) to `value` in `scope`; `SET LOCAL` counts only inside a
    /// transaction block (outside one PostgreSQL only warns).
    pub fn set(&mut self, scope: Scope, in_transaction: bool, value: T) {
        match scope {
            Scope::Local if in_transaction => self.local = Some(value),
            Scope::Local => {}
            Scope::Session => {
                self.session = value;
                self.local = None;
            }
        }
    }

    /// The value in force.
    pub fn current(&self) -> &T {
        self.local.as_ref().unwrap_or(&self.session)
    }

    /// The transaction block ended: its `SET LOCAL`s are gone.
    pub fn end_transaction(&mut self) {
        self.local = None;
    }
}

/// Whether a setting's value means "no limit" for a timeout: `0` in any unit.
pub(crate) fn is_zero_duration(value: &[String]) -> bool {
    let [v] = value else {
        return false;
    };
    let v = v.trim_matches('\'').trim();
    let digits: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    !digits.is_empty() && digits.chars().all(|c| c == '0' || c == '.')
}

/// Whether a `timezone` value is one PostgreSQL treats as UTC for `timestamp` <->
/// `timestamptz` changes: a zone with a fixed offset of zero (PostgreSQL 12+ then skips the
/// table rewrite).
pub(crate) fn is_utc(zone: &str) -> bool {
    let zone = zone.trim().to_ascii_lowercase();
    let zone = zone.strip_prefix("etc/").unwrap_or(&zone);
    [
        "utc",
        "uct",
        "gmt",
        "gmt0",
        "gmt+0",
        "gmt-0",
        "zulu",
        "universal",
        "greenwich",
        "+00",
        "utc0",
    ]
    .contains(&zone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse_statements;

    fn read(sql: &str) -> Vec<(String, Scope, String, bool)> {
        parse_statements(sql)
            .iter()
            .flat_map(|s| settings(s, sql))
            .map(|s| (s.param, s.scope, s.value.join(" "), s.reset))
            .collect()
    }

    fn one(
        param: &str,
        scope: Scope,
        value: &str,
        reset: bool,
    ) -> Vec<(String, Scope, String, bool)> {
        vec![(param.to_owned(), scope, value.to_owned(), reset)]
    }

    #[test]
    fn set_and_reset() {
        use Scope::*;
        assert_eq!(
            read("SET lock_timeout = 0"),
            one("lock_timeout", Session, "0", false)
        );
        assert_eq!(
            read("set local statement_timeout to '5s'"),
            one("statement_timeout", Local, "'5s'", false)
        );
        assert_eq!(
            read("SET SESSION search_path TO a, b"),
            one("search_path", Session, "a b", false)
        );
        assert_eq!(
            read("SET TIME ZONE 'UTC'"),
            one("timezone", Session, "'UTC'", false)
        );
        assert_eq!(
            read("SET LOCAL TIME ZONE LOCAL"),
            one("timezone", Local, "", true)
        );
        assert_eq!(read("SET ROLE NONE"), one("role", Session, "", true));
        assert_eq!(read("SET ROLE admin"), one("role", Session, "admin", false));
        assert_eq!(
            read("SET x.\"Y\" TO DEFAULT"),
            one("x.y", Session, "", true)
        );
        assert_eq!(
            read("SET SCHEMA 'a'"),
            one("search_path", Session, "'a'", false)
        );
        assert_eq!(
            read("SET SESSION AUTHORIZATION DEFAULT"),
            one("session authorization", Session, "", true)
        );
        assert_eq!(
            read("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"),
            one(
                "session characteristics",
                Session,
                "SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
                false
            )
        );
        assert_eq!(read("RESET ALL"), one("all", Session, "", true));
        assert_eq!(read("RESET TIME ZONE"), one("timezone", Session, "", true));
        assert_eq!(read("RESET ROLE"), one("role", Session, "", true));
        assert!(read("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").is_empty());
        assert!(read("SET CONSTRAINTS ALL DEFERRED").is_empty());
        assert!(read("SELECT 'SET x = 1'").is_empty());
    }

    #[test]
    fn set_config_calls_and_values() {
        use Scope::*;
        let calls: Vec<(String, Scope)> = read(
            "SELECT set_config('search_path', 'a', false), pg_catalog.set_config('X', 'y', true), \
             set_config('z', 'y', 'off'), set_config(name, 'y', false), set_config('a', 'b')",
        )
        .into_iter()
        .map(|(p, s, _, _)| (p, s))
        .collect();
        assert_eq!(
            calls,
            [
                ("search_path".into(), Session),
                ("x".into(), Local),
                ("z".into(), Session)
            ]
        );
        assert!(is_zero_duration(&["0".into()]));
        assert!(is_zero_duration(&["'0ms'".into()]));
        assert!(!is_zero_duration(&["'5s'".into()]));
        assert!(is_utc("UTC") && is_utc("Etc/UTC") && is_utc("gmt") && !is_utc("Europe/Berlin"));
    }
}
