//! Migration versions: parsing diesel's dashed spellings and the order SPEC section 1 fixes.

use std::cmp::Ordering;
use std::fmt;

/// Most digits a version may have once its dashes are dropped: 18 digits always fit in an
/// `i64` (the type of the history table's `version` column).
pub const MAX_DIGITS: usize = 18;

/// Versions at or above this value have at least 14 digits and are timestamps
/// (`YYYYMMDDhhmmss`, with or without diesel's 4-digit suffix). They compare as digit strings,
/// as diesel does; smaller versions compare numerically.
const TIMESTAMP_FLOOR: i64 = 10_000_000_000_000;

/// A migration version: the digits of its spelling (dashes dropped) and their value.
///
/// Two versions are the same migration when their values are equal (the history table keys on
/// the value), so `1` and `001` collide.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    value: i64,
    digits: String,
    spelling: String,
}

/// Why a version spelling was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VersionError {
    /// Nothing before the `_` of the name.
    #[error("the version is empty")]
    Empty,
    /// The spelling (carried) holds something other than digits and single dashes between
    /// digit groups.
    #[error("the version `{0}` may hold only digits and single `-` separators between digits")]
    BadCharacters(String),
    /// More than [`MAX_DIGITS`] digits once dashes are dropped: the value would not fit the
    /// history table's `bigint`.
    #[error("the version `{spelling}` has {digits} digits; at most {MAX_DIGITS} are allowed")]
    TooLong {
        /// The version as written.
        spelling: String,
        /// How many digits it has, dashes dropped.
        digits: usize,
    },
}

impl Version {
    /// Parses a spelling such as `42`, `20140924113530`, `2019-02-26-002946` or
    /// `2026-07-30-140000-0000`.
    pub fn parse(spelling: &str) -> Result<Version, VersionError> {
        if spelling.is_empty() {
            return Err(VersionError::Empty);
        }
        let well_formed = spelling
            .split('-')
            .all(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit()));
        if !well_formed {
            return Err(VersionError::BadCharacters(spelling.to_owned()));
        }
        let digits: String = spelling.chars().filter(|c| *c != '-').collect();
        if digits.len() > MAX_DIGITS {
            return Err(VersionError::TooLong {
                spelling: spelling.to_owned(),
                digits: digits.len(),
            });
        }
        // At most 18 ASCII digits: always fits in an i64.
        let value = digits
            .bytes()
            .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
        Ok(Version {
            value,
            digits,
            spelling: spelling.to_owned(),
        })
    }

    /// The numeric value, as stored in the history table.
    pub fn value(&self) -> i64 {
        self.value
    }

    /// The digits with dashes dropped (`2019-02-26-002946` gives `20190226002946`).
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The version as written in the file name.
    pub fn spelling(&self) -> &str {
        &self.spelling
    }

    /// Compares two versions by the rule of SPEC section 1, given only their digit strings.
    ///
    /// The history table stores the digits next to the value, so rows unknown to a binary can
    /// be ordered by the same rule.
    pub fn compare_digits(a: &str, b: &str) -> Ordering {
        SortKey::of(a).cmp(&SortKey::of(b))
    }
}

/// The total order behind [`Version`]'s `Ord`.
///
/// SPEC: equal lengths compare numerically; two versions with 14 or more digits compare as
/// digit strings (diesel's order, so `2026-01-20-162913` sorts after `2025-11-19-091444-0000`);
/// otherwise numerically. Applied pairwise, that rule is not transitive for contrived inputs
/// with many leading zeros, and `sort` may panic on an order that is not total, so the rule is
/// realised as a key: values below 10^13 first, numerically; then timestamps, by digit string.
/// The two agree on every input that has no leading zeros in a 14+ digit version.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortKey<'a> {
    Small { value: i64, len: usize },
    Timestamp(&'a str),
}

impl<'a> SortKey<'a> {
    fn of(digits: &'a str) -> SortKey<'a> {
        let value = digits.bytes().take(MAX_DIGITS).fold(0i64, |acc, b| {
            acc * 10 + i64::from(b.wrapping_sub(b'0') % 10)
        });
        if value < TIMESTAMP_FLOOR {
            SortKey::Small {
                value,
                len: digits.len(),
            }
        } else {
            SortKey::Timestamp(digits)
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        Version::compare_digits(&self.digits, &other.digits)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spelling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn parses_diesel_spellings() {
        assert_eq!(v("2019-02-26-002946").value(), 20190226002946);
        assert_eq!(v("2019-02-26-002946").digits(), "20190226002946");
        assert_eq!(v("2026-07-30-140000-0000").value(), 202607301400000000);
        assert_eq!(v("00000000000000").value(), 0);
        assert_eq!(v("0").value(), 0);
        assert_eq!(v("999999999999999999").value(), 999_999_999_999_999_999);
    }

    #[test]
    fn refuses_malformed_spellings() {
        for bad in ["", "-1", "1-", "1--2", "1a", "v1", " 1", "1_2", "١"] {
            assert!(Version::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            Version::parse("1234567890123456789"),
            Err(VersionError::TooLong {
                spelling: "1234567890123456789".into(),
                digits: 19
            })
        );
    }

    #[test]
    fn orders_as_spec_section_1() {
        // Sequential numbers compare numerically.
        assert!(v("2") < v("10"));
        assert!(v("0001") < v("0002"));
        // Timestamps compare as digit strings, like diesel.
        assert!(v("2025-11-19-091444-0000") < v("2026-01-20-162913"));
        assert!(v("20140924113530") < v("2017-09-23-210614"));
        assert!(v("2017-09-23-210614") < v("2017-09-23-210614-0001"));
        // Small numbers come before timestamps.
        assert!(v("00000000000000") < v("1"));
        assert!(v("999") < v("20140924113530"));
    }

    #[test]
    fn order_is_total_on_awkward_inputs() {
        let mut all: Vec<Version> = [
            "00000000000005",
            "3",
            "0000000000000100",
            "20260120162913",
            "202511190914440000",
            "0",
            "0020140924113530",
            "10",
        ]
        .iter()
        .map(|s| v(s))
        .collect();
        all.sort();
        for w in all.windows(2) {
            assert!(w[0] < w[1]);
        }
        for a in &all {
            for b in &all {
                assert_eq!(a.cmp(b), b.cmp(a).reverse());
            }
        }
    }
}

/// The spelling of the version `migrations new` gives the next migration, following the
/// directory's style: sequential numbers keep their zero padding (`0007` after `0006`);
/// timestamps take the current UTC time in the newest migration's spelling (diesel's
/// `2026-07-30-140000-0000` stays dashed, with its suffix). An empty directory starts with a
/// plain `YYYYMMDDhhmmss` timestamp. The result is always above `newest`.
///
/// `now_utc` is seconds since the Unix epoch: the caller reads the clock, this function does not.
pub fn next_spelling(newest: Option<&Version>, now_utc: u64) -> String {
    let stamp = utc_timestamp(now_utc);
    let Some(newest) = newest else {
        return stamp;
    };
    let width = newest.digits.len();
    let digits = if newest.value >= TIMESTAMP_FLOOR || width >= 14 {
        let mut candidate = stamp;
        candidate.truncate(width);
        while candidate.len() < width {
            candidate.push('0');
        }
        if Version::compare_digits(&candidate, &newest.digits) == Ordering::Greater {
            candidate
        } else {
            increment(&newest.digits)
        }
    } else {
        increment(&newest.digits)
    };
    if digits.len() != width {
        return digits;
    }
    // Put the dashes back where the newest spelling has them.
    let mut out = String::with_capacity(newest.spelling.len());
    let mut next_digit = digits.chars();
    for c in newest.spelling.chars() {
        if c == '-' {
            out.push('-');
        } else if let Some(d) = next_digit.next() {
            out.push(d);
        }
    }
    out
}

/// Adds one to a digit string, keeping its width when it fits.
fn increment(digits: &str) -> String {
    let mut bytes: Vec<u8> = digits.bytes().collect();
    for b in bytes.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return String::from_utf8(bytes).unwrap_or_default();
        }
    }
    format!("1{}", String::from_utf8(bytes).unwrap_or_default())
}

/// `YYYYMMDDhhmmss` in UTC for seconds since the Unix epoch (proleptic Gregorian calendar).
pub fn utc_timestamp(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Days to civil date: count in 400-year eras starting on 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}{h:02}{mi:02}{s:02}")
}

#[cfg(test)]
mod next_tests {
    use super::*;

    // 2026-11-24 01:02:03 UTC
    const NOW: u64 = 1_795_482_123;

    #[test]
    fn utc_timestamps() {
        assert_eq!(utc_timestamp(0), "19700101000000");
        assert_eq!(utc_timestamp(951_782_400), "20000229000000");
        assert_eq!(utc_timestamp(NOW), "20261124010203");
    }

    #[test]
    fn follows_the_directory_style() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert_eq!(next_spelling(None, NOW), "20261124010203");
        assert_eq!(next_spelling(Some(&v("0006")), NOW), "0007");
        assert_eq!(next_spelling(Some(&v("9")), NOW), "10");
        assert_eq!(next_spelling(Some(&v("0099")), NOW), "0100");
        assert_eq!(
            next_spelling(Some(&v("20140924113530")), NOW),
            "20261124010203"
        );
        assert_eq!(
            next_spelling(Some(&v("2019-02-26-002946")), NOW),
            "2026-11-24-010203"
        );
        assert_eq!(
            next_spelling(Some(&v("2026-07-30-140000-0000")), NOW),
            "2026-11-24-010203-0000"
        );
        // A newest version from the future (clock skew): one above it.
        assert_eq!(
            next_spelling(Some(&v("2030-01-01-000000")), NOW),
            "2030-01-01-000001"
        );
    }
}
