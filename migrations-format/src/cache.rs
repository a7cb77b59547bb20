//! The loader's checksum cache: what reading each SQL file taught the loader (its checksum,
//! header, statement count, placeholders), keyed by the file's metadata, so that a warm start
//! (`migrations up` with nothing to do) need not read the files at all. As git's index does,
//! a file is trusted unread only when its size, modification and change times (in
//! nanoseconds), inode and device all match what was recorded, and when it had not changed
//! for [`RACY_MARGIN`] before the load that recorded it (a file edited in the same timestamp
//! tick as that read could keep its metadata).
//!
//! The cache is an accelerator, never a source of truth: a file that is missing, unreadable,
//! of another version, or whose trailing digest does not match is ignored as a whole, and a
//! load that needs a file's text (anything that runs, prints or lints SQL) always reads and
//! hashes the file itself. The file is replaced by a rename, so concurrent writers never
//! leave a torn file. Used only by the run-time loader (the CLI); the macro never passes one.
//! See docs/cache.md.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::checksum::{hex, Checksum};

/// How long before the recording load a file must have last changed for its entry to be
/// trusted: above the coarsest timestamp granularity of common filesystems (FAT's 2 s) and the
/// lag of the kernel's coarse clock behind the system clock.
pub const RACY_MARGIN: Duration = Duration::from_secs(2);

/// The first line of a cache file: the layout's version, and the crate's, since what the
/// loader learns of a file may change between releases (a foreign one is ignored).
const MAGIC: &str = concat!("migrations-cache 1 ", env!("CARGO_PKG_VERSION"));

/// Where the loader keeps its cache, and the caller's clock (the format crate reads none).
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// The cache file: read when present, replaced (through a temporary file and a rename)
    /// when the load learnt something new. Its directory is created when missing; a cache
    /// that cannot be written is silently not written.
    pub file: PathBuf,
    /// When the load starts: a file read by this load is trusted unread by a later one only if
    /// it had last changed at least [`RACY_MARGIN`] before this time.
    pub now: SystemTime,
}

/// The cache file for the migrations directory `root` under `cache_home` (for example
/// `$XDG_CACHE_HOME`): `<cache_home>/migrations/<first 32 hex digits of SHA-256 of the
/// canonical path of root>`, so two directories never share one and a path spelt two ways
/// finds the same. `None` when `root` cannot be resolved (it does not exist).
pub fn cache_file_for(root: &Path, cache_home: &Path) -> Option<PathBuf> {
    let canonical = fs::canonicalize(root).ok()?;
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    Some(cache_home.join("migrations").join(&hex(&digest)[..32]))
}

/// A file's identity and state, from one `stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Stamp {
    /// The file at `path` (a symbolic link followed, as reading it does).
    pub(crate) fn of(path: &Path) -> Option<Stamp> {
        Stamp::of_metadata(&fs::metadata(path).ok()?)
    }

    /// A listed file that is not a symbolic link: its metadata read through the directory's
    /// handle.
    pub(crate) fn of_entry(entry: &fs::DirEntry) -> Option<Stamp> {
        Stamp::of_metadata(&entry.metadata().ok()?)
    }

    #[cfg(unix)]
    fn of_metadata(m: &fs::Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt as _;
        Some(Stamp {
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        })
    }

    /// Without a change time and inode the racy check cannot be made: no cache.
    #[cfg(not(unix))]
    fn of_metadata(_m: &fs::Metadata) -> Option<Stamp> {
        None
    }
}

/// What the loader learnt from reading a file whose analysis found nothing to report (files
/// with a problem, or with statements refused in a transaction, are always read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    pub checksum: Checksum,
    /// The leading blank and `--` lines, where the directives are (`parse_header` reads them
    /// again, so a directive means what the running version says).
    pub header: String,
    pub statement_count: usize,
    /// The `${name}` placeholders used (lowercased, sorted, once each).
    pub placeholders: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    stamp: Stamp,
    /// Nanoseconds since the epoch when the recording load started.
    read_at_ns: i128,
    pub facts: Facts,
}

impl Entry {
    pub(crate) fn new(stamp: Stamp, now: SystemTime, facts: Facts) -> Entry {
        Entry {
            stamp,
            read_at_ns: epoch_ns(now),
            facts,
        }
    }

    /// Whether the file, as `stamp` describes it now, is the one this entry read: the same
    /// metadata, and not changed within [`RACY_MARGIN`] of the read (an edit in that window
    /// may keep the timestamps it had when it was read).
    pub(crate) fn trusted_for(&self, stamp: &Stamp) -> bool {
        let margin = RACY_MARGIN.as_nanos() as i128;
        self.stamp == *stamp
            && self.stamp.mtime_ns.max(self.stamp.ctime_ns) < self.read_at_ns - margin
    }
}

/// The entries of a cache file, by the file's path relative to the migrations directory.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    pub entries: HashMap<String, Entry>,
}

impl Cache {
    /// Reads the cache file; anything unexpected (missing, torn, another version, a digest that
    /// does not match) gives an empty cache.
    pub(crate) fn read(file: &Path) -> Cache {
        fs::read_to_string(file)
            .ok()
            .and_then(|text| parse(&text))
            .unwrap_or_default()
    }

    /// Writes `entries` to `file` through a temporary file in the same directory and a rename:
    /// a reader sees the old file or the new one, never a part. Failures are ignored (the
    /// cache is optional).
    pub(crate) fn write(file: &Path, entries: &[(&str, &Entry)]) {
        let Some(dir) = file.parent() else {
            return;
        };
        let mut body = String::with_capacity(entries.len() * 160);
        body.push_str(MAGIC);
        body.push('\n');
        for (path, e) in entries {
            let s = &e.stamp;
            body.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                escape(path),
                s.size,
                s.mtime_ns,
                s.ctime_ns,
                s.ino,
                s.dev,
                e.read_at_ns,
                e.facts.checksum.to_hex(),
                e.facts.statement_count,
                escape(&e.facts.placeholders.join(",")),
                escape(&e.facts.header),
            ));
        }
        let digest = hex(&Sha256::digest(body.as_bytes()));
        body.push_str("end ");
        body.push_str(&digest);
        body.push('\n');
        if fs::create_dir_all(dir).is_err() {
            return;
        }
        // A name of its own per process: two writers never write one temporary file.
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            file.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let written = fs::File::create(&tmp).and_then(|mut f| f.write_all(body.as_bytes()));
        if written.is_err() || fs::rename(&tmp, file).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}

fn epoch_ns(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

fn parse(text: &str) -> Option<Cache> {
    let (body, trailer) = text.rsplit_once("end ")?;
    let digest = trailer.strip_suffix('\n')?;
    if hex(&Sha256::digest(body.as_bytes())) != digest {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    // Sized once: growing a map of a few thousand entries rehashes and moves them all.
    let mut entries = HashMap::with_capacity(body.bytes().filter(|b| *b == b'\n').count());
    for line in lines {
        // Eleven fields, no more: no vector per line.
        let mut f = line.split('\t');
        let mut next = || f.next();
        let (path, size, mtime, ctime, ino, dev) =
            (next()?, next()?, next()?, next()?, next()?, next()?);
        let (read_at, checksum, count, placeholders, header) =
            (next()?, next()?, next()?, next()?, next()?);
        if f.next().is_some() {
            return None;
        }
        let placeholders = unescape(placeholders)?;
        let entry = Entry {
            stamp: Stamp {
                size: size.parse().ok()?,
                mtime_ns: mtime.parse().ok()?,
                ctime_ns: ctime.parse().ok()?,
                ino: ino.parse().ok()?,
                dev: dev.parse().ok()?,
            },
            read_at_ns: read_at.parse().ok()?,
            facts: Facts {
                checksum: Checksum::from_hex(checksum)?,
                header: unescape(header)?,
                statement_count: count.parse().ok()?,
                placeholders: if placeholders.is_empty() {
                    Vec::new()
                } else {
                    placeholders.split(',').map(str::to_owned).collect()
                },
            },
        };
        entries.insert(unescape(path)?, entry);
    }
    Some(Cache { entries })
}

/// Tabs, line ends and backslashes as `\t`, `\n`, `\r`, `\\`: one entry is one line.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    if !s.contains('\\') {
        return Some(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

/// The header `parse_header` reads: the leading lines that are blank or `--` comments (the
/// first other line ends it).
pub(crate) fn header_of(text: &str) -> &str {
    let mut end = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if !trimmed.is_empty() && !trimmed.starts_with("--") {
            break;
        }
        end += line.len();
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(read_at_ns: i128, mtime_ns: i128) -> Entry {
        Entry {
            stamp: Stamp {
                size: 10,
                mtime_ns,
                ctime_ns: mtime_ns,
                ino: 7,
                dev: 1,
            },
            read_at_ns,
            facts: Facts {
                checksum: Checksum::of_normalized("x"),
                header: "-- a\t\\b\n-- migrations:no-transaction\n".to_owned(),
                statement_count: 2,
                placeholders: vec!["a".to_owned(), "b".to_owned()],
            },
        }
    }

    #[test]
    fn round_trips_and_refuses_a_tampered_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("c");
        let e = entry(5_000_000_000, 1_000_000_000);
        Cache::write(&file, &[("a\tb.up.sql", &e)]);
        let read = Cache::read(&file);
        let got = &read.entries["a\tb.up.sql"];
        assert_eq!(got.facts, e.facts);
        assert_eq!(got.stamp, e.stamp);
        // One byte changed anywhere: the digest no longer matches, the whole cache is ignored.
        let text = fs::read_to_string(&file).unwrap();
        fs::write(&file, text.replacen("\t2\t", "\t3\t", 1)).unwrap();
        assert!(Cache::read(&file).entries.is_empty());
        // Another version's cache is ignored too.
        fs::write(
            &file,
            text.replacen("migrations-cache 1", "migrations-cache 0", 1),
        )
        .unwrap();
        assert!(Cache::read(&file).entries.is_empty());
        fs::write(&file, &text[..text.len() - 3]).unwrap();
        assert!(Cache::read(&file).entries.is_empty());
    }

    #[test]
    fn an_entry_read_within_the_margin_of_its_change_is_not_trusted() {
        let changed = 100_000_000_000;
        let stamp = entry(0, changed).stamp;
        assert!(entry(changed + 2_000_000_001, changed).trusted_for(&stamp));
        assert!(!entry(changed + 2_000_000_000, changed).trusted_for(&stamp));
        assert!(!entry(changed + 500_000_000, changed).trusted_for(&stamp));
        let mut other = stamp;
        other.ctime_ns += 1;
        assert!(!entry(changed + 10_000_000_000, changed).trusted_for(&other));
    }

    /// A file the cache vouches for is not read: a (forged) checksum recorded for it is what
    /// the load reports. Recorded within the racy margin of the file's change, it is read.
    #[test]
    fn a_vouched_file_is_not_read_and_a_racy_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1_a.up.sql");
        fs::write(&path, "SELECT 1;\n").unwrap();
        let cache = dir.path().join("cache");
        let stamp = Stamp::of(&path).unwrap();
        let forged = Checksum::of_normalized("forged");
        let changed = stamp.mtime_ns.max(stamp.ctime_ns);
        let load = |read_at_ns: i128| {
            let entry = Entry {
                stamp,
                read_at_ns,
                facts: Facts {
                    checksum: forged,
                    header: String::new(),
                    statement_count: 1,
                    placeholders: Vec::new(),
                },
            };
            Cache::write(&cache, &[("1_a.up.sql", &entry)]);
            let options = crate::LoadOptions {
                cache: Some(CacheOptions {
                    file: cache.clone(),
                    now: SystemTime::now(),
                }),
                heads_only: true,
                ..Default::default()
            };
            crate::load_dir_with(dir.path(), &options)
                .unwrap()
                .migrations[0]
                .up
                .checksum
        };
        assert_eq!(load(changed + 3_000_000_000), forged);
        assert_eq!(
            load(changed + 1_000_000_000),
            Checksum::of_normalized("SELECT 1;\n")
        );
    }

    #[test]
    fn the_header_is_what_parse_header_reads() {
        assert_eq!(
            header_of("\n-- x\n  -- y\nCREATE TABLE t ();\n-- z\n"),
            "\n-- x\n  -- y\n"
        );
        assert_eq!(header_of("-- only\n-- comments"), "-- only\n-- comments");
        assert_eq!(header_of("/* c */\n-- x\n"), "");
    }
}
