//! Schema differences as a person reads them in a round trip: a whole table missing or extra
//! is one line, "unexpected" reads "extra after down"; differences that are the clock's
//! (`now()` frozen at creation) or only a column order (with `--ignore-column-order`) are told
//! apart. The differences themselves stay complete in the report (and in JSON).

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::snapshot::{Change, Difference};

/// One line per difference, `when` saying after which step (`after down`): a table missing or
/// extra as a whole is one line (`table public.x (31 columns): missing after down`), its
/// columns, constraints, triggers, rules, policies and serial sequences folded into it.
pub(crate) fn lines(differences: &[Difference], when: &str) -> Vec<String> {
    // Whole tables, with how they differ.
    let tables: Vec<(&str, bool)> = differences
        .iter()
        .filter_map(|d| {
            let table = d.object.strip_prefix("table ")?;
            match d.change {
                Change::Missing => Some((table, true)),
                Change::Unexpected => Some((table, false)),
                _ => None,
            }
        })
        .collect();
    let owner = |d: &Difference| -> Option<(&str, bool)> {
        let missing = match d.change {
            Change::Missing => true,
            Change::Unexpected => false,
            _ => return None,
        };
        let (kind, rest) = d.object.split_once(' ')?;
        tables.iter().copied().find(|(table, m)| {
            *m == missing
                && match kind {
                    "column" | "constraint" | "trigger" | "rule" | "policy" => {
                        rest.strip_prefix(table).is_some_and(|r| r.starts_with('.'))
                    }
                    // A serial's sequence: `<table>_<column>_seq`, as PostgreSQL names it.
                    "sequence" => rest
                        .strip_prefix(table)
                        .is_some_and(|r| r.starts_with('_') && r.ends_with("_seq")),
                    _ => false,
                }
        })
    };
    let mut folded: BTreeSet<usize> = BTreeSet::new();
    let mut columns: Vec<usize> = vec![0; tables.len()];
    for (i, d) in differences.iter().enumerate() {
        if let Some((table, missing)) = owner(d) {
            folded.insert(i);
            if d.object.starts_with("column ") {
                if let Some(t) = tables.iter().position(|x| *x == (table, missing)) {
                    columns[t] += 1;
                }
            }
        }
    }
    let mut out = Vec::new();
    for (i, d) in differences.iter().enumerate() {
        if folded.contains(&i) {
            continue;
        }
        let word = match d.change {
            Change::Missing => "missing",
            Change::Unexpected => "extra",
            _ => {
                out.push(d.to_string());
                continue;
            }
        };
        let size = d
            .object
            .strip_prefix("table ")
            .and_then(|table| {
                let missing = matches!(d.change, Change::Missing);
                tables.iter().position(|x| *x == (table, missing))
            })
            .map(|t| match columns[t] {
                1 => " (1 column)".to_owned(),
                n => format!(" ({n} columns)"),
            })
            .unwrap_or_default();
        out.push(format!("{}{size}: {word} {when}", d.object));
    }
    out
}

/// Without the differences that are only an order of columns: a table's
/// ([`Change::ColumnOrder`]) and a view's whose select list holds the same items in another
/// order (a `SELECT *` view recreated over a table whose columns moved).
pub(crate) fn without_column_order(differences: Vec<Difference>) -> Vec<Difference> {
    differences
        .into_iter()
        .filter(|d| match &d.change {
            Change::ColumnOrder { .. } => false,
            Change::Attribute {
                name,
                expected: Some(e),
                actual: Some(a),
            } if name == "definition"
                && (d.object.starts_with("view ")
                    || d.object.starts_with("materialized view ")) =>
            {
                !same_select_list(e, a)
            }
            _ => true,
        })
        .collect()
}

/// Two view definitions (`pg_get_viewdef`'s layout: one select item per line, then `FROM`)
/// that differ only in the order of their select items.
fn same_select_list(expected: &str, actual: &str) -> bool {
    fn parts(definition: &str) -> Option<(Vec<String>, Vec<&str>)> {
        let mut lines = definition.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines.next()?.strip_prefix("SELECT ")?;
        let mut items = vec![first.trim_end_matches(',').to_owned()];
        let mut rest = Vec::new();
        let mut in_list = first.ends_with(',');
        for line in lines {
            if in_list {
                items.push(line.trim_end_matches(',').to_owned());
                in_list = line.ends_with(',');
            } else {
                rest.push(line);
            }
        }
        items.sort();
        Some((items, rest))
    }
    match (parts(expected), parts(actual)) {
        (Some(e), Some(a)) => e == a,
        _ => false,
    }
}

/// A difference that is the clock's: an attribute (a view's definition, a default, a
/// constraint) whose two values differ only in timestamp literals of today (give or take a
/// day), as PostgreSQL writes `now()`/`'now'` frozen when the object was created in this
/// scratch database. A literal of another day is the migration's own and stays a difference.
pub(crate) fn frozen_clock(difference: &Difference) -> bool {
    let Change::Attribute {
        expected: Some(e),
        actual: Some(a),
        ..
    } = &difference.change
    else {
        return false;
    };
    let today = days_since_epoch();
    let (e, e_dates) = mask_dates(e);
    let (a, a_dates) = mask_dates(a);
    e == a
        && !e_dates.is_empty()
        && e_dates
            .iter()
            .chain(&a_dates)
            .all(|d| d.abs_diff(today) <= 1)
}

/// The text with each quoted literal that starts with a date (`'2026-11-30 14:03:11.5+00'`)
/// replaced by `'…'`, and those dates as days since 1970-01-01.
fn mask_dates(text: &str) -> (String, Vec<i64>) {
    let mut out = String::with_capacity(text.len());
    let mut dates = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('\'') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('\'') else {
            out.push_str(&rest[start..]);
            return (out, dates);
        };
        let literal = &after[..end];
        match parse_date(literal) {
            Some(days) => {
                dates.push(days);
                out.push_str("'…'");
            }
            None => {
                out.push('\'');
                out.push_str(literal);
                out.push('\'');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    (out, dates)
}

/// `YYYY-MM-DD...` with a time after it (a timestamp, not a bare date someone wrote) as
/// days since 1970-01-01.
fn parse_date(literal: &str) -> Option<i64> {
    let b = literal.as_bytes();
    if b.len() < 16 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| literal.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    num(11..13)?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn days_since_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(0)
}

/// Howard Hinnant's `days_from_civil`: the proleptic Gregorian date as days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(object: &str, change: Change) -> Difference {
        Difference {
            object: object.to_owned(),
            change,
        }
    }

    #[test]
    fn a_whole_table_is_one_line() {
        let d = vec![
            diff("column public.t.a", Change::Missing),
            diff("column public.t.b", Change::Missing),
            diff("column public.tt.a", Change::Missing),
            diff("constraint public.t.t_pkey", Change::Missing),
            diff("sequence public.t_a_seq", Change::Missing),
            diff("table public.t", Change::Missing),
            diff("table public.u", Change::Unexpected),
            diff("column public.u.x", Change::Unexpected),
        ];
        assert_eq!(
            lines(&d, "after down"),
            [
                "column public.tt.a: missing after down",
                "table public.t (2 columns): missing after down",
                "table public.u (1 column): extra after down",
            ]
        );
    }

    #[test]
    fn dates_of_today_are_the_clocks() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let today = days_since_epoch();
        let (y, m, d) = {
            // Back from days to a date, the slow way (a test only).
            let mut y = 1970;
            while days_from_civil(y + 1, 1, 1) <= today {
                y += 1;
            }
            let mut m = 1;
            while m < 12 && days_from_civil(y, m + 1, 1) <= today {
                m += 1;
            }
            (y, m, today - days_from_civil(y, m, 1) + 1)
        };
        let at = |t: &str| format!("'{y:04}-{m:02}-{d:02} {t}'::timestamp with time zone");
        let view = |v: String| Difference {
            object: "view public.v".to_owned(),
            change: Change::Attribute {
                name: "definition".to_owned(),
                expected: Some(format!(" SELECT 1\n  WHERE now() > {v};")),
                actual: None,
            },
        };
        let pair = |a: String, b: String| {
            let mut d = view(a);
            if let Change::Attribute { actual, .. } = &mut d.change {
                *actual = Some(format!(" SELECT 1\n  WHERE now() > {b};"));
            }
            d
        };
        assert!(frozen_clock(&pair(
            at("10:00:01.5+00"),
            at("10:00:09.1+00")
        )));
        // A literal the migration wrote (another year) is a real difference.
        assert!(!frozen_clock(&pair(
            "'2001-01-01 00:00:00+00'".to_owned(),
            at("10:00:00+00")
        )));
        assert!(!frozen_clock(&view(at("10:00:00+00"))));
    }

    #[test]
    fn a_permuted_select_list_is_a_column_order() {
        let e = " SELECT t.id,\n    t.a,\n    t.b\n   FROM t;";
        let a = " SELECT t.id,\n    t.b,\n    t.a\n   FROM t;";
        assert!(same_select_list(e, a));
        assert!(!same_select_list(e, " SELECT t.id,\n    t.b\n   FROM t;"));
        assert!(!same_select_list(
            e,
            " SELECT t.id,\n    t.b,\n    t.a\n   FROM u;"
        ));
    }
}
