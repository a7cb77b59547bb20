//! The lock file parser: `lockfile::parse`, and `parse(render(x)) == x`.
//!
//! Two ways in, chosen by the first byte:
//! - raw text, as a damaged or hand-edited file would be: no panic; every problem names a line
//!   of the input; a lock that parses renders to a text that parses back to the same entries
//!   (line numbers aside), and rendering is then a fixed point;
//! - entries built from the input (one per line: `<version> <name>`, checksums derived from
//!   the line, chain hashes computed): the fuzzer reaches names with odd characters without
//!   having to guess 64 hex digits. Sorted and de-duplicated, they must survive the round trip
//!   exactly and verify as an unbroken chain.
#![no_main]

use libfuzzer_sys::fuzz_target;
use migrations_format::lockfile::{parse, render};
use migrations_format::name::parse_stem;
use migrations_format::{Checksum, LockEntry, LockFile};

fn without_lines(lock: &LockFile) -> Vec<LockEntry> {
    lock.entries
        .iter()
        .cloned()
        .map(|mut e| {
            e.line = 0;
            e
        })
        .collect()
}

fn round_trip(lock: &LockFile) {
    let text = render(lock);
    let again = parse(&text).unwrap_or_else(|e| panic!("render gave {text:?}, which fails: {e}"));
    assert_eq!(without_lines(&again), without_lines(lock), "{text:?}");
    for (i, e) in again.entries.iter().enumerate() {
        assert_eq!(e.line as usize, i + 2, "line numbers of a rendered lock");
    }
    assert_eq!(render(&again), text, "render is a fixed point");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if mode & 1 == 0 {
        let line_count = text.split('\n').count() as u32;
        match parse(&text) {
            Ok(lock) => {
                for w in lock.entries.windows(2) {
                    assert!(w[0].version < w[1].version);
                    assert!(w[0].line < w[1].line);
                }
                round_trip(&lock);
            }
            Err(e) => {
                assert!(!e.problems.is_empty());
                for p in &e.problems {
                    assert!(p.line >= 1 && p.line <= line_count, "{p} in {text:?}");
                    assert!(!p.message.is_empty());
                }
            }
        }
    } else {
        let mut entries: Vec<LockEntry> = Vec::new();
        for (i, line) in text.split('\n').take(32).enumerate() {
            let Some((version, name)) = line.split_once(' ') else {
                continue;
            };
            let Ok((version, name)) = parse_stem(&format!("{version}_{name}")) else {
                continue;
            };
            let up = Checksum::of_normalized(line);
            let down = (i % 3 != 0).then(|| Checksum::of_normalized(&format!("{line}\ndown")));
            entries.push(LockEntry {
                version,
                name,
                no_transaction: i % 2 == 1,
                up,
                down,
                chain: up,
                line: 0,
            });
        }
        entries.sort_by(|a, b| a.version.cmp(&b.version));
        let mut kept: Vec<LockEntry> = Vec::new();
        for e in entries {
            if kept.iter().all(|k| k.version.value() != e.version.value()) {
                kept.push(e);
            }
        }
        let mut previous: Option<Checksum> = None;
        for e in &mut kept {
            e.chain = e.expected_chain(previous.as_ref());
            previous = Some(e.chain);
        }
        round_trip(&LockFile { entries: kept });
    }
});
