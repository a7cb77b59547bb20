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
        replace_file(file, body.as_bytes());
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

/// The state of a migrations directory in one digest, for the warm start's record
/// ([`WarmRecord`]): every entry's name and kind, and the stamp (size, mtime, ctime, inode, device) of every file, in the root
/// and in its folders (diesel's layout), sorted by name. Two equal `DirStamp`s, the older one
/// [settled](DirStamp::is_settled), mean the loader would read the same directory: a file
/// created, removed or renamed changes the names; a file edited, replaced or touched, its
/// stamp.
#[derive(Debug, Clone, Copy)]
pub struct DirStamp {
    digest: [u8; 32],
    /// Whether every file had last changed at least [`RACY_MARGIN`] before the listing.
    settled: bool,
}

impl DirStamp {
    /// Lists `root` (and each folder in it, one level down, as the loader does) and `stat`s
    /// every file through the open directory. `now` is the time before the listing. `None`
    /// when the directory holds what the digest does not describe (a symbolic link, which the
    /// loader follows; a folder inside a folder; anything but files and folders), or cannot be
    /// read: then there is no warm record.
    pub fn of(root: &Path, now: SystemTime) -> Option<DirStamp> {
        let mut listing = Listing::default();
        listing.list(root)?;
        let Listing { names, mut entries } = listing;
        // By name: the listing's order is the file system's (hash order on ext4).
        entries.sort_unstable_by(|a, b| names[a.0.clone()].cmp(&names[b.0.clone()]));
        let limit = epoch_ns(now) - RACY_MARGIN.as_nanos() as i128;
        let mut settled = true;
        let mut hasher = Sha256::new();
        for (name, stamp) in &entries {
            hasher.update((name.len() as u64).to_le_bytes());
            hasher.update(&names[name.clone()]);
            match stamp {
                None => hasher.update([0]),
                Some(s) => {
                    settled &= s.mtime_ns.max(s.ctime_ns) < limit;
                    hasher.update([1]);
                    hasher.update(s.size.to_le_bytes());
                    hasher.update(s.mtime_ns.to_le_bytes());
                    hasher.update(s.ctime_ns.to_le_bytes());
                    hasher.update(s.ino.to_le_bytes());
                    hasher.update(s.dev.to_le_bytes());
                }
            }
        }
        Some(DirStamp {
            digest: hasher.finalize().into(),
            settled,
        })
    }

    /// Whether a record made from this listing may be trusted later: every file had last
    /// changed at least [`RACY_MARGIN`] before it, so any later change moves its stamp
    /// (a change within the margin could keep the timestamps of the listing).
    pub fn is_settled(&self) -> bool {
        self.settled
    }

    /// Whether both listings saw the same names and stamps.
    pub fn same_as(&self, other: &DirStamp) -> bool {
        self.digest == other.digest
    }
}

/// Every name in a directory and in its folders (one level down, as the loader looks), as
/// paths below the root in one buffer (a folder's with a trailing `/`), each file with its
/// [`Stamp`], a folder with none.
#[derive(Default)]
struct Listing {
    names: Vec<u8>,
    entries: Vec<(std::ops::Range<usize>, Option<Stamp>)>,
}

impl Listing {
    fn push(&mut self, parts: &[&[u8]], stamp: Option<Stamp>) {
        let start = self.names.len();
        for part in parts {
            self.names.extend_from_slice(part);
        }
        self.entries.push((start..self.names.len(), stamp));
    }
}

/// Linux: `getdents64` into one buffer and a raw `statx` of four fields per file, through the
/// open directory: nothing allocated per entry (std's listing allocates each name twice).
/// `None` for what the digest does not describe (a symbolic link, which the loader follows; a
/// folder inside a folder; a device, a socket, a pipe), a listing that fails, or a kernel
/// without `statx` (before 4.11).
#[cfg(target_os = "linux")]
impl Listing {
    fn list(&mut self, root: &Path) -> Option<()> {
        use rustix::fs::{open, Mode, OFlags};
        let dir = open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        // 2,000 entries of a few dozen bytes: two or three calls.
        let mut buffer = Vec::with_capacity(64 * 1024);
        self.list_fd(&dir, &[], &mut buffer)
    }

    fn list_fd(
        &mut self,
        dir: &rustix::fd::OwnedFd,
        prefix: &[u8],
        buffer: &mut Vec<u8>,
    ) -> Option<()> {
        use rustix::fs::{openat, statx, AtFlags, FileType, Mode, OFlags, RawDir, StatxFlags};
        let wanted = StatxFlags::TYPE
            | StatxFlags::SIZE
            | StatxFlags::MTIME
            | StatxFlags::CTIME
            | StatxFlags::INO;
        // Listed after this directory's own entries: the buffer is in use until then.
        let mut folders: Vec<Vec<u8>> = Vec::new();
        let mut entries = RawDir::new(dir, buffer.spare_capacity_mut());
        while let Some(entry) = entries.next() {
            let entry = entry.ok()?;
            let name = entry.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let mut kind = entry.file_type();
            let mut stamp = None;
            if matches!(kind, FileType::RegularFile | FileType::Unknown) {
                let s = statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, wanted).ok()?;
                if !StatxFlags::from_bits_retain(s.stx_mask).contains(wanted) {
                    return None;
                }
                kind = FileType::from_raw_mode(s.stx_mode.into());
                let ns = |t: rustix::fs::StatxTimestamp| {
                    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
                };
                stamp = Some(Stamp {
                    size: s.stx_size,
                    mtime_ns: ns(s.stx_mtime),
                    ctime_ns: ns(s.stx_ctime),
                    ino: s.stx_ino,
                    dev: rustix::fs::makedev(s.stx_dev_major, s.stx_dev_minor),
                });
            }
            match kind {
                FileType::RegularFile => self.push(&[prefix, bytes], stamp),
                FileType::Directory if prefix.is_empty() => {
                    self.push(&[bytes, b"/"], None);
                    folders.push(bytes.to_vec());
                }
                _ => return None,
            }
        }
        for folder in folders {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
            let fd = openat(dir, folder.as_slice(), flags, Mode::empty()).ok()?;
            let mut prefix = folder;
            prefix.push(b'/');
            self.list_fd(&fd, &prefix, buffer)?;
        }
        Some(())
    }
}

/// Other Unix systems: std's listing and `fstatat`.
#[cfg(all(unix, not(target_os = "linux")))]
impl Listing {
    fn list(&mut self, root: &Path) -> Option<()> {
        self.list_dir(root, &[])
    }

    fn list_dir(&mut self, dir: &Path, prefix: &[u8]) -> Option<()> {
        use std::os::unix::ffi::OsStrExt as _;
        for entry in fs::read_dir(dir).ok()? {
            let entry = entry.ok()?;
            let kind = entry.file_type().ok()?;
            let name = entry.file_name();
            let bytes = name.as_bytes();
            if kind.is_file() {
                self.push(&[prefix, bytes], Some(Stamp::of_entry(&entry)?));
            } else if kind.is_dir() && prefix.is_empty() {
                self.push(&[bytes, b"/"], None);
                let mut prefix = bytes.to_vec();
                prefix.push(b'/');
                self.list_dir(&entry.path(), &prefix)?;
            } else {
                return None;
            }
        }
        Some(())
    }
}

/// Without inode numbers and change times there is no stamp, hence no warm record.
#[cfg(not(unix))]
impl Listing {
    fn list(&mut self, _root: &Path) -> Option<()> {
        None
    }
}

/// What the last load of a directory established for a warm start, kept beside its cache
/// ([`WarmRecord::file_for`]): the directory's [`DirStamp`] then, and what the warm check
/// needs of the set, so that a directory that has not changed since is neither loaded nor
/// parsed: `[run]`'s history table, and the chain digests with which a plain `up` has nothing
/// to do. Written only for a settled listing taken before that load, of a set the check needs
/// nothing else of (no placeholders, no repeatables).
#[derive(Debug, Clone)]
pub struct WarmRecord {
    /// The directory as listed before the load that made the record.
    pub dir: DirStamp,
    /// `[run] schema` of `migrations.toml`, when set.
    pub schema: Option<String>,
    /// `[run] table` of `migrations.toml`, when set.
    pub table: Option<String>,
    /// By phase (`pre`, `post`, `all`): the stored chain digests with which an `up` of that
    /// phase has nothing to do.
    pub current: Vec<(String, Vec<[u8; 32]>)>,
    /// By phase: how many migrations an `up` of that phase applies (what `wait` reports).
    pub counts: Vec<(String, usize)>,
}

/// The first line of a warm record (layout and crate version, as the cache's).
const WARM_MAGIC: &str = concat!("migrations-warm 1 ", env!("CARGO_PKG_VERSION"));

impl WarmRecord {
    /// The record of the directory whose cache is `cache_file` (see [`cache_file_for`]): the
    /// same name with `.warm` added.
    pub fn file_for(cache_file: &Path) -> PathBuf {
        let mut name = cache_file.as_os_str().to_owned();
        name.push(".warm");
        PathBuf::from(name)
    }

    /// The record in `file`; `None` when it is missing, torn, of another version, or its
    /// digest does not match.
    pub fn read(file: &Path) -> Option<WarmRecord> {
        let text = fs::read_to_string(file).ok()?;
        let (body, trailer) = text.rsplit_once("end ")?;
        if hex(&Sha256::digest(body.as_bytes())) != trailer.strip_suffix('\n')? {
            return None;
        }
        let mut lines = body.lines();
        if lines.next()? != WARM_MAGIC {
            return None;
        }
        let digest = |h: &str| Checksum::from_hex(h).map(|c| *c.as_bytes());
        let mut record = WarmRecord {
            dir: DirStamp {
                digest: digest(lines.next()?.strip_prefix("dir ")?)?,
                settled: true,
            },
            schema: None,
            table: None,
            current: Vec::new(),
            counts: Vec::new(),
        };
        for line in lines {
            let (key, value) = line.split_once(' ')?;
            match key {
                "schema" => record.schema = Some(unescape(value)?),
                "table" => record.table = Some(unescape(value)?),
                "current" => {
                    let (phase, digests) = value.split_once(' ')?;
                    let digests = digests.split(',').map(digest).collect::<Option<_>>()?;
                    record.current.push((phase.to_owned(), digests));
                }
                "count" => {
                    let (phase, count) = value.split_once(' ')?;
                    record.counts.push((phase.to_owned(), count.parse().ok()?));
                }
                _ => return None,
            }
        }
        Some(record)
    }

    /// Writes the record as the cache is written (a temporary file renamed over the old one);
    /// failures are ignored. Nothing is written for a listing that was not settled.
    pub fn write(&self, file: &Path) {
        if !self.dir.settled {
            return;
        }
        let mut body = format!("{WARM_MAGIC}\ndir {}\n", hex(&self.dir.digest));
        let fields = [("schema", &self.schema), ("table", &self.table)];
        for (key, value) in fields {
            if let Some(value) = value {
                body.push_str(&format!("{key} {}\n", escape(value)));
            }
        }
        for (phase, digests) in &self.current {
            let digests: Vec<String> = digests.iter().map(|d| hex(d)).collect();
            body.push_str(&format!("current {} {}\n", phase, digests.join(",")));
        }
        for (phase, count) in &self.counts {
            body.push_str(&format!("count {phase} {count}\n"));
        }
        let digest = hex(&Sha256::digest(body.as_bytes()));
        body.push_str(&format!("end {digest}\n"));
        replace_file(file, body.as_bytes());
    }

    /// The number of migrations recorded for `phase`, if any.
    pub fn count_for(&self, phase: &str) -> Option<usize> {
        self.counts
            .iter()
            .find(|(p, _)| p == phase)
            .map(|(_, n)| *n)
    }

    /// The digests recorded for `phase`, if any.
    pub fn current_for(&self, phase: &str) -> Option<&[[u8; 32]]> {
        self.current
            .iter()
            .find(|(p, _)| p == phase)
            .map(|(_, d)| d.as_slice())
    }
}

/// Replaces `file` with `bytes` through a temporary file in the same directory and a rename:
/// a reader sees the old file or the new one, never a part. Failures are ignored (the cache
/// is optional).
fn replace_file(file: &Path, bytes: &[u8]) {
    let Some(dir) = file.parent() else {
        return;
    };
    if fs::create_dir_all(dir).is_err() {
        return;
    }
    // A name of its own per process: two writers never write one temporary file.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let written = fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
    if written.is_err() || fs::rename(&tmp, file).is_err() {
        let _ = fs::remove_file(&tmp);
    }
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

    /// The listing's digest moves with every name and every file's stamp, in the root and in
    /// its folders; a fresh file is not settled; a symbolic link gives no stamp at all.
    #[test]
    fn a_dir_stamp_sees_names_and_stamps() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("1_a.up.sql"), "SELECT 1;\n").unwrap();
        fs::create_dir(root.join("2_b")).unwrap();
        fs::write(root.join("2_b/up.sql"), "SELECT 2;\n").unwrap();
        let now = SystemTime::now();
        let later = now + Duration::from_secs(3);
        let stamp = || DirStamp::of(root, later).unwrap();
        let first = stamp();
        assert!(first.is_settled());
        assert!(!DirStamp::of(root, now).unwrap().is_settled());
        assert!(stamp().same_as(&first));
        let changes: [&dyn Fn(); 4] = [
            // Another size: a rewrite within the same clock tick may keep both times.
            &|| fs::write(root.join("2_b/up.sql"), "SELECT 33;\n").unwrap(),
            &|| fs::write(root.join("README.md"), "").unwrap(),
            &|| fs::rename(root.join("1_a.up.sql"), root.join("1_c.up.sql")).unwrap(),
            &|| fs::remove_file(root.join("README.md")).unwrap(),
        ];
        let mut seen = vec![first];
        for change in changes {
            change();
            let now = stamp();
            assert!(seen.iter().all(|s| !s.same_as(&now)));
            seen.push(now);
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("1_c.up.sql"), root.join("3_d.up.sql")).unwrap();
            assert!(DirStamp::of(root, later).is_none());
        }
    }

    #[test]
    fn a_warm_record_round_trips_and_a_tampered_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("1_a.up.sql"), "SELECT 1;\n").unwrap();
        let listing = DirStamp::of(dir.path(), SystemTime::now() + RACY_MARGIN * 2).unwrap();
        let file = WarmRecord::file_for(&dir.path().join("cache").join("c"));
        let record = WarmRecord {
            dir: listing,
            schema: Some("a b\tc".to_owned()),
            table: None,
            current: vec![
                ("pre".to_owned(), vec![[1; 32], [2; 32]]),
                ("all".to_owned(), vec![[1; 32]]),
            ],
            counts: vec![("pre".to_owned(), 3)],
        };
        record.write(&file);
        let read = WarmRecord::read(&file).unwrap();
        assert!(read.dir.same_as(&listing));
        assert_eq!(read.schema, record.schema);
        assert_eq!(read.table, None);
        assert_eq!(read.current, record.current);
        assert_eq!(read.current_for("pre"), Some(&[[1; 32], [2; 32]][..]));
        assert_eq!(
            (read.count_for("pre"), read.count_for("post")),
            (Some(3), None)
        );
        let text = fs::read_to_string(&file).unwrap();
        fs::write(&file, text.replacen("pre", "all", 1)).unwrap();
        assert!(WarmRecord::read(&file).is_none());
        // An unsettled listing is not recorded.
        let unsettled = WarmRecord {
            dir: DirStamp::of(dir.path(), SystemTime::now()).unwrap(),
            ..record
        };
        fs::remove_file(&file).unwrap();
        unsettled.write(&file);
        assert!(!file.exists());
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
