//! File and folder names, and versions: `parse_flat_file_name`, `parse_folder_name`,
//! `Version::parse`, and the version order.
//!
//! Invariants checked beyond "no panic":
//! - an accepted version has 1..=18 digits, its value is those digits, its spelling is the
//!   input, and the digits are the spelling without its dashes;
//! - an accepted name is non-empty and holds no `/` and no control character; the flat and the
//!   folder parser agree on `<stem>` versus `<stem>.up.sql` / `<stem>.down.sql`;
//! - the order on versions is total: antisymmetric, transitive on every triple the input
//!   gives, and `Equal` only for versions of the same value (a duplicate is a duplicate).
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use migrations_format::name::{parse_flat_file_name, parse_folder_name, parse_stem, Direction};
use migrations_format::Version;

fn check_version(spelling: &str) -> Option<Version> {
    let v = Version::parse(spelling).ok()?;
    assert_eq!(v.spelling(), spelling);
    let digits: String = spelling.chars().filter(|c| *c != '-').collect();
    assert_eq!(v.digits(), digits);
    assert!(!digits.is_empty() && digits.len() <= 18, "{spelling:?}");
    assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{spelling:?}");
    assert_eq!(v.value(), digits.parse::<i64>().unwrap(), "{spelling:?}");
    assert!(v.value() >= 0);
    Some(v)
}

fn check_name(name: &str) {
    assert!(!name.is_empty());
    assert!(
        !name.chars().any(|c| c == '/' || c.is_control()),
        "{name:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;

    // The whole input as a file name, a folder name and a version.
    if let Ok((version, name, direction)) = parse_flat_file_name(text) {
        check_name(&name);
        let suffix = match direction {
            Direction::Up => ".up.sql",
            Direction::Down => ".down.sql",
        };
        let stem = text.strip_suffix(suffix).expect("the suffix it claims");
        assert_eq!(stem, format!("{}_{}", version.spelling(), name));
        let (v2, n2) = parse_folder_name(stem).expect("a flat stem is a folder name");
        assert_eq!((v2, n2), (version, name));
    }
    match parse_folder_name(text) {
        Ok((version, name)) => {
            check_name(&name);
            assert_eq!(text, format!("{}_{}", version.spelling(), name));
            for suffix in [".up.sql", ".down.sql"] {
                let (v2, n2, _) = parse_flat_file_name(&format!("{text}{suffix}"))
                    .expect("a folder name plus a suffix is a flat name");
                assert_eq!((&v2, &n2), (&version, &name));
            }
        }
        Err(message) => {
            assert!(!message.is_empty());
            assert!(parse_stem(text).is_err());
        }
    }
    check_version(text);

    // The input's lines as versions: the order must be total.
    let versions: Vec<Version> = text.split('\n').take(8).filter_map(check_version).collect();
    for a in &versions {
        assert_eq!(a.cmp(a), Ordering::Equal);
        for b in &versions {
            let ab = a.cmp(b);
            assert_eq!(ab, b.cmp(a).reverse(), "{a:?} {b:?}");
            if ab == Ordering::Equal {
                assert_eq!(a.value(), b.value(), "{a:?} {b:?}");
            }
            for c in &versions {
                if ab != Ordering::Greater && b.cmp(c) != Ordering::Greater {
                    assert_ne!(a.cmp(c), Ordering::Greater, "{a:?} <= {b:?} <= {c:?}");
                }
            }
        }
    }
    let mut sorted = versions.clone();
    sorted.sort();
    for w in sorted.windows(2) {
        assert_ne!(w[0].cmp(&w[1]), Ordering::Greater);
    }
});
