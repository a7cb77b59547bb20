//! Directory resolution: the only filesystem code of the format. Turns a migrations directory
//! into sorted [`MigrationSource`]s, or a [`LoadError`] listing every problem.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use globset::GlobSet;

use crate::cache::{header_of, Cache, CacheOptions, Entry, Facts, Stamp};
use crate::checksum::{normalize, Checksum};
use crate::directive::{parse_header, DirectiveError, Directives};
use crate::facts::{sql_facts, NonTransactionalStatement, SqlFacts};
use crate::name::{
    parse_flat_file_name, parse_folder_name, parse_repeatable_file_name, Direction, FOLDER_PATTERN,
};
use crate::problem::{LoadError, Problem, ProblemKind};
use crate::settings::{Metadata, Settings, METADATA_FILE, SETTINGS_FILE};
use crate::version::Version;

/// How a migration is laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `<version>_<name>.up.sql` and `.down.sql` side by side.
    Flat,
    /// diesel's `<version>_<name>/up.sql` and `down.sql`.
    Folder,
}

/// One SQL file of a migration, read and analysed.
#[derive(Debug, Clone)]
pub struct SqlFile {
    /// The file, as the caller named the directory.
    pub path: PathBuf,
    /// The file's text after normalisation (BOM dropped, line endings LF): what is checksummed
    /// and what is sent to the server.
    pub text: String,
    /// SHA-256 of [`SqlFile::text`]: what the history table and the lock file record.
    pub checksum: Checksum,
    /// The `-- migrations:...` directives of the file's header (timeouts, `no-transaction`,
    /// `lint-ignore`).
    pub directives: Directives,
    /// Whether the file runs outside a transaction (its directive, or diesel's metadata).
    pub no_transaction: bool,
    /// The file holds no statement (only blanks and comments): running it changes nothing. Such
    /// a file loads, up or down; the lint flags it (`empty-migration`, `empty-down`).
    pub is_empty: bool,
    /// Statements that cannot run in the transaction the runner wraps the file in, in order:
    /// those PostgreSQL refuses inside a transaction block (found whatever the file's mode),
    /// and, when the file runs in a transaction, transaction control (`BEGIN`, `COMMIT`,
    /// ...; [`NonTransactionalStatement::transaction_control`]). An up file that runs in a
    /// transaction and holds one does not load; a down file's first one is refused by the
    /// runner before anything runs.
    pub non_transactional: Vec<NonTransactionalStatement>,
    /// The `${name}` placeholders the file uses (lowercased, sorted, once each); their values
    /// are given when the SQL is sent (see [`crate::placeholder`]).
    pub placeholders: Vec<String>,
    /// Byte ranges of the statements in [`SqlFile::text`] ([`crate::statement_ranges`]),
    /// from the loader's one split of the file.
    pub statements: Vec<(usize, usize)>,
}

/// One migration: an up file and an optional down file.
#[derive(Debug, Clone)]
pub struct MigrationSource {
    /// The version from the file or folder name; unique within the directory.
    pub version: Version,
    /// The part of the name after `<version>_`, as written (spaces and dots allowed).
    pub name: String,
    /// Whether the migration is a pair of flat files or a diesel-style folder.
    pub layout: Layout,
    /// The up file, which applies the migration.
    pub up: SqlFile,
    /// The down file, which reverts it; `None` when the migration has none (allowed unless
    /// `require_down` is set).
    pub down: Option<SqlFile>,
}

/// A repeatable migration: `R__<name>.sql`, applied after the versioned migrations of a run
/// whenever it is new or its checksum changed.
#[derive(Debug, Clone)]
pub struct RepeatableSource {
    /// The part of the file name between `R__` and `.sql`; repeatables run in this order.
    pub name: String,
    /// The file (always transactional).
    pub file: SqlFile,
}

/// A loaded migrations directory.
#[derive(Debug, Clone)]
pub struct Directory {
    /// The directory, as the caller named it.
    pub root: PathBuf,
    /// The directory's `migrations.toml`, or the defaults when it has none.
    pub settings: Settings,
    /// In version order.
    pub migrations: Vec<MigrationSource>,
    /// The repeatable migrations (`R__<name>.sql`), in name order.
    pub repeatables: Vec<RepeatableSource>,
    /// Every file read (migrations, metadata, settings), on the real path: the macro tracks them
    /// so an edit rebuilds the crate.
    pub inputs: Vec<PathBuf>,
}

/// Options a caller adds to the directory's own settings.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Show paths in problems under this prefix instead of the real directory (the macro shows
    /// paths relative to the crate, as the user wrote them).
    pub shown_as: Option<PathBuf>,
    /// Require a down file for every migration, whatever `migrations.toml` says.
    pub require_down: bool,
    /// The checksum cache ([`crate::cache`]): each SQL file's checksum and what the loader
    /// learnt from it, keyed by the file's metadata. Written after every load that learnt
    /// something; read only by a [`LoadOptions::heads_only`] load. `None`: no cache.
    pub cache: Option<CacheOptions>,
    /// Load the heads only: every [`SqlFile::text`] is left empty and
    /// [`SqlFile::statements`] too, and a file the cache vouches for (same size, times, inode
    /// and device, unchanged for [`crate::cache::RACY_MARGIN`] before it was recorded) is not
    /// read at all. Checksums, directives, placeholders' names and whether a file is empty
    /// are all there: enough to compare with a history (the CLI's warm start), never to run
    /// or show SQL.
    pub heads_only: bool,
}

/// Loads the migrations directory at `root`: scans it, pairs up and down files, reads and
/// checks every file, and returns the migrations in version order.
///
/// The error lists every problem found, not just the first, each naming its file (and line
/// where there is one) and how to fix it. A directory that does not exist is such a problem.
///
/// ```no_run
/// use std::path::Path;
///
/// match migrations_format::load_dir(Path::new("migrations")) {
///     Ok(directory) => {
///         for m in &directory.migrations {
///             println!("{} {} {}", m.version, m.name, m.up.checksum);
///         }
///     }
///     Err(error) => eprintln!("{error}"), // one `file:line: message` per problem
/// }
/// ```
pub fn load_dir(root: &Path) -> Result<Directory, LoadError> {
    load_dir_with(root, &LoadOptions::default())
}

/// Loads the migrations directory at `root` like [`load_dir`], with extra options (how paths
/// are shown in problems, a required down file).
pub fn load_dir_with(root: &Path, options: &LoadOptions) -> Result<Directory, LoadError> {
    let mut loader = Loader {
        root,
        shown_as: options.shown_as.as_deref().unwrap_or(root),
        problems: Vec::new(),
        inputs: Vec::new(),
        repeatables: Vec::new(),
        fetched: HashMap::new(),
        listed: options.cache.as_ref().map(|_| HashMap::new()),
    };
    let directory = loader.load(options);
    if loader.problems.is_empty() {
        Ok(directory)
    } else {
        Err(LoadError {
            problems: loader.problems,
        })
    }
}

struct Loader<'a> {
    root: &'a Path,
    shown_as: &'a Path,
    problems: Vec<Problem>,
    inputs: Vec<PathBuf>,
    /// `R__<name>.sql` files found by the scan: name and path.
    repeatables: Vec<(String, PathBuf)>,
    /// SQL files read and analysed ahead, in parallel ([`Loader::fetch_all`]); each is taken
    /// out when the loader comes to it in order.
    /// By path as bytes: `Path`'s own hash goes component by component, a cost per file.
    fetched: HashMap<OsString, Fetched>,
    /// With a cache: the listing's entry of each SQL file that is not a symbolic link, whose
    /// metadata is read through the directory's open handle (`fstatat`: no walk of the path,
    /// half the cost of a `stat` by path).
    listed: Option<HashMap<OsString, fs::DirEntry>>,
}

/// What reading one SQL file found, before the loader judges it: the part of the work that
/// needs no loader state, done for all files at once on every core (or what the cache
/// remembers of it, for a heads-only load).
enum Fetched {
    Io(String),
    NotUtf8 { line: u32, offset: usize },
    Read(Box<Analysed>),
}

/// A SQL file's normalised text and what one pass over it learnt.
struct Analysed {
    /// Empty in a heads-only load.
    text: String,
    checksum: Checksum,
    facts: SqlFacts,
    directives: Result<Directives, Vec<DirectiveError>>,
    /// The names used (lowercased, sorted, once each), or the malformed ones.
    placeholders: Result<Vec<String>, Vec<crate::placeholder::PlaceholderProblem>>,
}

impl Analysed {
    /// What the cache keeps of a file: only one without problems or statements refused in a
    /// transaction (their positions and messages are not kept; such files are always read).
    fn facts(&self) -> Option<Facts> {
        let f = &self.facts;
        let plain = f.psql.is_none()
            && f.unterminated.is_none()
            && f.misplaced_directives.is_empty()
            && f.non_transactional.is_empty()
            && f.transaction_control.is_empty()
            && self.directives.is_ok();
        Some(Facts {
            checksum: self.checksum,
            header: header_of(&self.text).to_owned(),
            statement_count: f.statement_count,
            placeholders: self.placeholders.as_ref().ok()?.clone(),
        })
        .filter(|_| plain)
    }

    /// A file as the cache remembers it: no text, no statement ranges.
    fn remembered(facts: &Facts) -> Analysed {
        Analysed {
            text: String::new(),
            checksum: facts.checksum,
            facts: SqlFacts {
                statement_count: facts.statement_count,
                ranges: Vec::new(),
                non_transactional: Vec::new(),
                transaction_control: Vec::new(),
                psql: None,
                unterminated: None,
                misplaced_directives: Vec::new(),
            },
            directives: parse_header(&facts.header),
            placeholders: Ok(facts.placeholders.clone()),
        }
    }
}

/// Reads, normalises, checksums and splits one file (no problem is reported here: the
/// loader does it in file order).
fn fetch(path: &Path) -> Fetched {
    // `fs::read` sizes the buffer from the file's metadata: one allocation of the file's size
    // (a fixed guess cost more in page faults than the extra system call saves).
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return Fetched::Io(e.to_string()),
    };
    let raw = match String::from_utf8(bytes) {
        Ok(raw) => raw,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            return Fetched::NotUtf8 {
                line: valid.iter().filter(|b| **b == b'\n').count() as u32 + 1,
                offset: valid.len(),
            };
        }
    };
    // The file's own buffer when normalising changes nothing (the common case): a large file
    // is held once, not twice.
    let normalized = match normalize(&raw) {
        Cow::Borrowed(b) if b.len() == raw.len() => None,
        Cow::Borrowed(b) => Some(b.to_owned()),
        Cow::Owned(o) => Some(o),
    };
    let text = normalized.unwrap_or(raw);
    let checksum = Checksum::of_normalized(&text);
    let facts = sql_facts(&text);
    let placeholders = crate::placeholder::scan(&text).map(|uses| {
        let mut names: Vec<String> = uses.into_iter().filter_map(|u| u.name).collect();
        names.sort();
        names.dedup();
        names
    });
    let directives = parse_header(&text);
    Fetched::Read(Box::new(Analysed {
        text,
        checksum,
        facts,
        directives,
        placeholders,
    }))
}

/// How [`fetch_all`] uses the cache.
struct CacheUse<'c> {
    options: &'c CacheOptions,
    cache: Cache,
    heads_only: bool,
}

/// What a load does with a file's cache entry.
enum Note {
    /// The entry (if any) stays: it vouched for the file, or said what reading it found.
    Keep,
    /// The file was read: its new entry (its metadata taken before the read, so a change
    /// during the read makes the entry miss next time).
    Record(Entry),
    /// The file was read and is not one the cache keeps (or cannot be stat'ed): no entry.
    Forget,
}

/// [`fetch`] through the cache: in a heads-only load, a file whose entry vouches for it is
/// not read.
fn fetch_through(
    path: &Path,
    relative: &str,
    entry: Option<&fs::DirEntry>,
    cache: Option<&CacheUse<'_>>,
) -> (Fetched, Note) {
    let Some(c) = cache else {
        return (fetch(path), Note::Keep);
    };
    let stamp = match entry {
        Some(entry) => Stamp::of_entry(entry),
        None => Stamp::of(path),
    };
    let known = c.cache.entries.get(relative);
    if let (Some(stamp), Some(entry)) = (&stamp, known) {
        if c.heads_only && entry.trusted_for(stamp) {
            let remembered = Analysed::remembered(&entry.facts);
            return (Fetched::Read(Box::new(remembered)), Note::Keep);
        }
    }
    let mut fetched = fetch(path);
    let mut note = Note::Forget;
    if let (Some(stamp), Fetched::Read(analysed)) = (stamp, &mut fetched) {
        note = match analysed.facts() {
            // A trusted entry that says the same stays as it is: a stable directory is not
            // rewritten by every load.
            Some(f) if known.is_some_and(|e| e.trusted_for(&stamp) && e.facts == f) => Note::Keep,
            Some(f) => Note::Record(Entry::new(stamp, c.options.now, f)),
            None => Note::Forget,
        };
        if c.heads_only {
            analysed.text = String::new();
            analysed.facts.ranges = Vec::new();
        }
    }
    (fetched, note)
}

/// [`fetch_through`] of every path (with its name relative to the directory), spread over the
/// machine's cores (at most 8 threads; one below 32 files, where starting threads costs more
/// than it saves).
fn fetch_all(
    paths: Vec<(PathBuf, String, Option<fs::DirEntry>)>,
    cache: Option<&CacheUse<'_>>,
) -> Vec<(PathBuf, String, Fetched, Note)> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(paths.len().div_ceil(16).max(1));
    if threads <= 1 || paths.len() < 32 {
        return paths
            .into_iter()
            .map(|(p, relative, entry)| {
                let (f, record) = fetch_through(&p, &relative, entry.as_ref(), cache);
                (p, relative, f, record)
            })
            .collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let shared = &paths;
    let next = &next;
    // Workers return results by index; the paths are then moved, not copied, into them.
    let mut results: Vec<Option<(Fetched, Note)>> = Vec::new();
    results.resize_with(paths.len(), || None);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(shared.len() / threads + 8);
                    loop {
                        // Small batches from a shared counter: a few large files do not leave
                        // one thread with all the work.
                        let start = next.fetch_add(8, std::sync::atomic::Ordering::Relaxed);
                        if start >= shared.len() {
                            return out;
                        }
                        let end = (start + 8).min(shared.len());
                        for (i, (p, relative, entry)) in shared[start..end].iter().enumerate() {
                            let result = fetch_through(p, relative, entry.as_ref(), cache);
                            out.push((start + i, result));
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            for (i, result) in worker.join().unwrap_or_default() {
                results[i] = Some(result);
            }
        }
    });
    paths
        .into_iter()
        .zip(results)
        .map(|((p, relative, entry), result)| {
            // A worker that panicked left its files: read here, where the panic shows.
            let (f, note) =
                result.unwrap_or_else(|| fetch_through(&p, &relative, entry.as_ref(), cache));
            (p, relative, f, note)
        })
        .collect()
}

/// A migration's files found by the scan, before they are read.
struct Found {
    version: Version,
    name: String,
    layout: Layout,
    up: Option<PathBuf>,
    down: Option<PathBuf>,
    metadata: Option<PathBuf>,
    /// Where it was found, for duplicate reports.
    origin: String,
}

impl Loader<'_> {
    fn shown(&self, relative: &str) -> PathBuf {
        if relative.is_empty() {
            self.shown_as.to_path_buf()
        } else {
            self.shown_as.join(relative)
        }
    }

    fn problem(&mut self, kind: ProblemKind, relative: &str, line: Option<u32>, message: String) {
        let path = self.shown(relative);
        self.problems.push(Problem {
            kind,
            path,
            line,
            message,
        });
    }

    fn load(&mut self, options: &LoadOptions) -> Directory {
        // The cache file is read and checked on another core while the directory is listed
        // (each is about a tenth of a warm start). A heads-only load trusts its entries;
        // another compares with them only, so that an unchanged directory is not rewritten.
        let (cache, (settings, found)) = std::thread::scope(|scope| {
            let cache = options
                .cache
                .as_ref()
                .map(|o| scope.spawn(move || Cache::read(&o.file)));
            let settings = self.read_settings();
            let ignore = settings.ignore_set().unwrap_or_default();
            let found = self.scan(&ignore);
            let cache = cache.map(|c| c.join().unwrap_or_default());
            (cache, (settings, found))
        });
        let paths = found
            .values()
            .flat_map(|f| [f.up.clone(), f.down.clone()])
            .flatten()
            .chain(self.repeatables.iter().map(|(_, p)| p.clone()))
            .collect::<Vec<PathBuf>>();
        let mut listed = self.listed.take();
        let paths = paths
            .into_iter()
            .map(|p| {
                let relative = self.relative(&p);
                let entry = listed.as_mut().and_then(|l| l.remove(p.as_os_str()));
                (p, relative, entry)
            })
            .collect();
        let cache = options
            .cache
            .as_ref()
            .zip(cache)
            .map(|(o, cache)| CacheUse {
                options: o,
                cache,
                heads_only: options.heads_only,
            });
        let fetched = fetch_all(paths, cache.as_ref());
        if let Some(c) = &cache {
            update_cache(c, &fetched);
        }
        self.fetched = fetched
            .into_iter()
            .map(|(p, _, f, _)| (p.into_os_string(), f))
            .collect();
        let require_down = options.require_down || settings.require_down;
        let mut migrations: Vec<MigrationSource> = found
            .into_values()
            .filter_map(|f| self.read_migration(f, require_down))
            .collect();
        migrations.sort_by(|a, b| a.version.cmp(&b.version));
        let repeatables = self.read_repeatables();
        Directory {
            root: self.shown_as.to_path_buf(),
            settings,
            migrations,
            repeatables,
            inputs: std::mem::take(&mut self.inputs),
        }
    }

    fn read_settings(&mut self) -> Settings {
        let path = self.root.join(SETTINGS_FILE);
        if !path.is_file() {
            return Settings::default();
        }
        let Some(text) = self.read_text(&path, SETTINGS_FILE) else {
            return Settings::default();
        };
        match Settings::parse(&text) {
            Ok(settings) => settings,
            Err(why) => {
                self.problem(
                    ProblemKind::BadSettings,
                    SETTINGS_FILE,
                    None,
                    format!("invalid settings: {}", why.trim()),
                );
                Settings::default()
            }
        }
    }

    /// Lists directory entries sorted by name, so problems come out in a stable order.
    fn entries(&mut self, dir: &Path, relative: &str) -> Vec<(String, PathBuf, bool)> {
        let read = match fs::read_dir(dir) {
            Ok(read) => read,
            Err(e) => {
                let what = if relative.is_empty() {
                    "the migrations directory"
                } else {
                    "this folder"
                };
                let message = if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "{what} does not exist; create it (`migrations init`), or point to the \
                         right one"
                    )
                } else {
                    format!("cannot read {what}: {e}")
                };
                self.problem(ProblemKind::Io, relative, None, message);
                return Vec::new();
            }
        };
        let mut entries = Vec::new();
        let mut sql_entries = Vec::new();
        for entry in read {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.problem(ProblemKind::Io, relative, None, format!("cannot list: {e}"));
                    continue;
                }
            };
            let path = entry.path();
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                let lossy = file_name.to_string_lossy().into_owned();
                if lossy.ends_with(".sql") || path.is_dir() {
                    self.problem(
                        ProblemKind::BadName,
                        &join(relative, &lossy),
                        None,
                        "the name is not valid UTF-8; rename it".to_owned(),
                    );
                }
                continue;
            };
            // The entry's type comes with the listing (no system call per file); a symlink is
            // followed (`is_dir`), as a user expects.
            let is_dir = match entry.file_type() {
                Ok(t) if !t.is_symlink() => t.is_dir(),
                _ => path.is_dir(),
            };
            if self.listed.is_some()
                && !is_dir
                && name.ends_with(".sql")
                && entry.file_type().is_ok_and(|t| t.is_file())
            {
                sql_entries.push((path.clone().into_os_string(), entry));
            }
            entries.push((name.to_owned(), path, is_dir));
        }
        if let Some(listed) = &mut self.listed {
            // Reserved at once: growing a map of a few thousand entries moves them all.
            listed.reserve(sql_entries.len());
            listed.extend(sql_entries);
        }
        entries.sort();
        entries
    }

    fn scan(&mut self, ignore: &GlobSet) -> BTreeMap<i64, Found> {
        let mut found: BTreeMap<i64, Found> = BTreeMap::new();
        let mut flat_downs: Vec<(Version, String, PathBuf, String)> = Vec::new();
        for (name, path, is_dir) in self.entries(self.root, "") {
            if name.starts_with('.') || ignore.is_match(&name) {
                continue;
            }
            if is_dir {
                if let Some(f) = self.scan_folder(&name, &path, ignore) {
                    self.insert(&mut found, f);
                }
                continue;
            }
            if !name.ends_with(".sql") {
                continue; // README.md, migrations.lock, migrations.toml, ...
            }
            if name.contains("${") {
                self.problem(
                    ProblemKind::BadName,
                    &name,
                    None,
                    "a placeholder (`${...}`) in a file name is never replaced: placeholders \
                     belong in the SQL; rename the file"
                        .to_owned(),
                );
                continue;
            }
            match parse_repeatable_file_name(&name) {
                Some(Ok(repeatable)) => {
                    self.repeatables.push((repeatable, path));
                    continue;
                }
                Some(Err(why)) => {
                    self.problem(ProblemKind::BadName, &name, None, why);
                    continue;
                }
                None => {}
            }
            match parse_flat_file_name(&name) {
                Err(why) => self.problem(ProblemKind::BadName, &name, None, why),
                Ok((version, migration, Direction::Up)) => {
                    let f = Found {
                        version,
                        name: migration,
                        layout: Layout::Flat,
                        up: Some(path),
                        down: None,
                        metadata: None,
                        origin: name,
                    };
                    self.insert(&mut found, f);
                }
                Ok((version, migration, Direction::Down)) => {
                    flat_downs.push((version, migration, path, name));
                }
            }
        }
        for (version, migration, path, file_name) in flat_downs {
            match found.get_mut(&version.value()) {
                Some(f) if f.layout == Layout::Flat && f.name == migration && f.down.is_none() => {
                    f.down = Some(path);
                }
                Some(f) if f.layout == Layout::Flat && f.name == migration => {
                    self.problem(
                        ProblemKind::DuplicateVersion,
                        &file_name,
                        None,
                        format!("a second down file for version {version}; keep one"),
                    );
                }
                Some(f) => {
                    let origin = f.origin.clone();
                    self.problem(
                        ProblemKind::DuplicateVersion,
                        &file_name,
                        None,
                        format!(
                            "version {version} is already used by `{origin}`; a down file must \
                             carry its up file's exact version and name"
                        ),
                    );
                }
                None => {
                    let stem = file_name.trim_end_matches(".down.sql");
                    self.problem(
                        ProblemKind::MissingUp,
                        &file_name,
                        None,
                        format!(
                            "down file without an up file; add `{stem}.up.sql` or remove this file"
                        ),
                    );
                }
            }
        }
        found
    }

    fn insert(&mut self, found: &mut BTreeMap<i64, Found>, f: Found) {
        if let Some(existing) = found.get(&f.version.value()) {
            let message = format!(
                "version {} is used twice, by `{}` and `{}`; give one of them a new version",
                f.version, existing.origin, f.origin
            );
            let origin = f.origin.clone();
            self.problem(ProblemKind::DuplicateVersion, &origin, None, message);
            return;
        }
        found.insert(f.version.value(), f);
    }

    fn scan_folder(&mut self, folder: &str, path: &Path, ignore: &GlobSet) -> Option<Found> {
        let entries = self.entries(path, folder);
        let parsed = parse_folder_name(folder);
        let holds_sql = entries
            .iter()
            .any(|(name, _, is_dir)| !is_dir && name.ends_with(".sql"));
        let (version, name) = match parsed {
            Ok(parsed) => parsed,
            Err(why) => {
                if holds_sql {
                    self.problem(ProblemKind::BadName, folder, None, why);
                }
                return None; // a folder of something else: not ours to judge
            }
        };
        let mut f = Found {
            version,
            name,
            layout: Layout::Folder,
            up: None,
            down: None,
            metadata: None,
            origin: format!("{folder}/"),
        };
        for (file, file_path, is_dir) in entries {
            let relative = join(folder, &file);
            if is_dir || file.starts_with('.') || ignore.is_match(&relative) {
                continue;
            }
            match file.as_str() {
                "up.sql" => f.up = Some(file_path),
                "down.sql" => f.down = Some(file_path),
                METADATA_FILE => f.metadata = Some(file_path),
                other if other.ends_with(".sql") => self.problem(
                    ProblemKind::BadName,
                    &relative,
                    None,
                    format!(
                        "unexpected `{other}` in a migration folder: expected up.sql and \
                         down.sql, or list it under `ignore` in migrations.toml"
                    ),
                ),
                _ => {}
            }
        }
        if f.up.is_none() {
            self.problem(
                ProblemKind::MissingUp,
                folder,
                None,
                format!(
                    "migration folder without up.sql: expected {FOLDER_PATTERN}, or list it \
                     under `ignore` in migrations.toml"
                ),
            );
            return None;
        }
        Some(f)
    }

    fn relative(&self, path: &Path) -> String {
        // Paths here are the root joined with listed names: the root's bytes are cut off as
        // they are (`strip_prefix` parses every component, a cost per file on a warm start).
        let root = self.root.as_os_str().as_encoded_bytes();
        let cut = path
            .as_os_str()
            .as_encoded_bytes()
            .strip_prefix(root)
            .and_then(|rest| match rest.strip_prefix(b"/") {
                Some(rest) => Some(rest),
                None if root.ends_with(b"/") => Some(rest),
                None => None,
            });
        let relative = match cut {
            Some(rest) if !rest.is_empty() && !rest.starts_with(b"/") => {
                String::from_utf8_lossy(rest)
            }
            _ => path
                .strip_prefix(self.root)
                .unwrap_or(path)
                .to_string_lossy(),
        };
        if relative.contains('\\') {
            relative.replace('\\', "/")
        } else {
            relative.into_owned()
        }
    }

    fn read_migration(&mut self, f: Found, require_down: bool) -> Option<MigrationSource> {
        let metadata = f.metadata.as_deref().and_then(|path| {
            let relative = self.relative(path);
            let text = self.read_text(path, &relative)?;
            match Metadata::parse(&text) {
                Ok(m) => Some((m, relative)),
                Err(why) => {
                    self.problem(
                        ProblemKind::BadMetadata,
                        &relative,
                        None,
                        format!(
                            "invalid metadata.toml: {}; diesel's only key is \
                             `run_in_transaction = true|false`",
                            why.trim()
                        ),
                    );
                    None
                }
            }
        });
        let up = self.read_sql(f.up.as_deref()?, true, metadata.as_ref());
        let down = match f.down.as_deref() {
            Some(path) => Some(self.read_sql(path, false, metadata.as_ref())?),
            None => {
                if require_down {
                    let relative = self.relative(f.up.as_deref()?);
                    self.problem(
                        ProblemKind::MissingDown,
                        &relative,
                        None,
                        "this migration has no down file, and one is required (`require_down`); \
                         add one that reverses the up"
                            .to_owned(),
                    );
                }
                None
            }
        };
        Some(MigrationSource {
            version: f.version,
            name: f.name,
            layout: f.layout,
            up: up?,
            down,
        })
    }

    /// Reads the repeatable migrations found by the scan (sorted by name, as the scan lists
    /// entries). Each runs in a transaction with its history row: `no-transaction` is refused.
    fn read_repeatables(&mut self) -> Vec<RepeatableSource> {
        let found = std::mem::take(&mut self.repeatables);
        let mut repeatables = Vec::new();
        for (name, path) in found {
            let Some(file) = self.read_sql(&path, true, None) else {
                continue;
            };
            if let Some(line) = file.directives.no_transaction {
                let relative = self.relative(&path);
                self.problem(
                    ProblemKind::BadDirective,
                    &relative,
                    Some(line),
                    "a repeatable migration runs in a transaction with its history row; remove \
                     `no-transaction` (a statement that needs it belongs in a versioned \
                     migration)"
                        .to_owned(),
                );
                continue;
            }
            repeatables.push(RepeatableSource { name, file });
        }
        repeatables
    }

    fn read_text(&mut self, path: &Path, relative: &str) -> Option<String> {
        self.inputs.push(path.to_path_buf());
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.problem(ProblemKind::Io, relative, None, format!("cannot read: {e}"));
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) => {
                let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let line = valid.iter().filter(|b| **b == b'\n').count() as u32 + 1;
                self.problem(
                    ProblemKind::NotUtf8,
                    relative,
                    Some(line),
                    format!(
                        "the file is not valid UTF-8 (bad byte at offset {}); save it as UTF-8",
                        valid.len()
                    ),
                );
                None
            }
        }
    }

    /// Reads one SQL file, an up file when `up`, else a down file.
    fn read_sql(
        &mut self,
        path: &Path,
        up: bool,
        metadata: Option<&(Metadata, String)>,
    ) -> Option<SqlFile> {
        let relative = self.relative(path);
        self.inputs.push(path.to_path_buf());
        let fetched = self
            .fetched
            .remove(path.as_os_str())
            .unwrap_or_else(|| fetch(path));
        let Analysed {
            text,
            checksum,
            mut facts,
            directives,
            placeholders,
        } = match fetched {
            Fetched::Read(analysed) => *analysed,
            Fetched::Io(e) => {
                self.problem(
                    ProblemKind::Io,
                    &relative,
                    None,
                    format!("cannot read: {e}"),
                );
                return None;
            }
            Fetched::NotUtf8 { line, offset } => {
                self.problem(
                    ProblemKind::NotUtf8,
                    &relative,
                    Some(line),
                    format!(
                        "the file is not valid UTF-8 (bad byte at offset {offset}); save it as \
                         UTF-8"
                    ),
                );
                return None;
            }
        };
        let directives = match directives {
            Ok(d) => d,
            Err(errors) => {
                for e in errors {
                    self.problem(
                        ProblemKind::BadDirective,
                        &relative,
                        Some(e.line),
                        e.message,
                    );
                }
                return None;
            }
        };
        // The deploy directives describe the migration, which its up file stands for: in a
        // down file they would be silently without effect.
        if !up {
            for (line, directive) in [
                (directives.post_deploy, "phase=post"),
                (directives.breaking, "breaking"),
            ] {
                if let Some(line) = line {
                    self.problem(
                        ProblemKind::BadDirective,
                        &relative,
                        Some(line),
                        format!(
                            "`{directive}` describes the whole migration: move it to the up file"
                        ),
                    );
                }
            }
            if directives.post_deploy.is_some() || directives.breaking.is_some() {
                return None;
            }
        }
        let no_transaction = match metadata {
            Some((
                Metadata {
                    run_in_transaction: Some(true),
                    ..
                },
                meta_path,
            )) if directives.no_transaction.is_some() => {
                self.problem(
                    ProblemKind::BadMetadata,
                    &relative,
                    directives.no_transaction,
                    format!(
                        "`no-transaction` contradicts `run_in_transaction = true` in {meta_path}; \
                         keep one of them"
                    ),
                );
                return None;
            }
            Some((
                Metadata {
                    run_in_transaction: Some(false),
                    ..
                },
                _,
            )) => true,
            _ => directives.no_transaction.is_some(),
        };
        let mut ok = true;
        if let Some((line, message)) = facts.psql.take() {
            self.problem(ProblemKind::PsqlOnly, &relative, Some(line), message);
            ok = false;
        }
        for (line, message) in &facts.misplaced_directives {
            self.problem(
                ProblemKind::BadDirective,
                &relative,
                Some(*line),
                message.clone(),
            );
            ok = false;
        }
        if let Some((line, message)) = &facts.unterminated {
            self.problem(
                ProblemKind::Unterminated,
                &relative,
                Some(*line),
                message.clone(),
            );
            ok = false;
        }
        // An up file of comments alone loads: it is a no-op migration, recorded like any other
        // (sqlx runs such files, and a history adopted from sqlx holds them unchanged). The
        // lint's `empty-migration` flags it; `migrations new`'s template holds a statement that
        // fails until replaced, so an unwritten migration cannot pass for one.
        let mark_no_transaction = if metadata.is_some() {
            "set `run_in_transaction = false` in metadata.toml"
        } else {
            "add `-- migrations:no-transaction` as the first line of the file"
        };
        if up && !no_transaction {
            let mut refused: Vec<(u32, ProblemKind, String)> = facts
                .transaction_control
                .iter()
                .map(|(kind, s)| {
                    let message = kind.refusal(mark_no_transaction);
                    (s.line, ProblemKind::TransactionControl, message)
                })
                .collect();
            refused.extend(facts.non_transactional.iter().map(|s| {
                let message = format!(
                    "{} cannot run inside a transaction block; {mark_no_transaction} (and keep \
                     it the only statement of its migration, with IF NOT EXISTS / IF EXISTS so \
                     it can be retried)",
                    s.what
                );
                (s.line, ProblemKind::NonTransactional, message)
            }));
            refused.sort_by_key(|(line, _, _)| *line);
            for (line, kind, message) in refused {
                self.problem(kind, &relative, Some(line), message);
                ok = false;
            }
        }
        // Malformed placeholders are the file's problems; values come later (run time).
        let placeholders = match placeholders {
            Ok(names) => names,
            Err(problems) => {
                for p in problems {
                    self.problem(ProblemKind::Placeholder, &relative, Some(p.line), p.message);
                }
                ok = false;
                Vec::new()
            }
        };
        if !ok {
            return None;
        }
        let mut non_transactional = facts.non_transactional;
        if !no_transaction {
            non_transactional.extend(facts.transaction_control.into_iter().map(|(_, s)| s));
            non_transactional.sort_by_key(|s| (s.line, s.column));
        }
        Some(SqlFile {
            path: self.shown(&relative),
            is_empty: facts.statement_count == 0,
            statements: facts.ranges,
            text,
            checksum,
            directives,
            no_transaction,
            non_transactional,
            placeholders,
        })
    }
}

/// Writes the cache when the load learnt something (a file read and recorded) or an entry
/// went (its file gone, or no longer one the cache keeps); a stable directory's cache is left
/// alone.
fn update_cache(c: &CacheUse<'_>, fetched: &[(PathBuf, String, Fetched, Note)]) {
    let mut changed = false;
    let mut entries: Vec<(&str, &Entry)> = Vec::with_capacity(fetched.len());
    for (_, relative, _, note) in fetched {
        let entry = match note {
            Note::Keep => c.cache.entries.get(relative),
            Note::Record(entry) => {
                changed = true;
                Some(entry)
            }
            Note::Forget => {
                changed |= c.cache.entries.contains_key(relative);
                None
            }
        };
        entries.extend(entry.map(|e| (relative.as_str(), e)));
    }
    // Entries of files the scan no longer finds go too.
    let present: std::collections::HashSet<&str> = fetched.iter().map(|f| f.1.as_str()).collect();
    changed |= c
        .cache
        .entries
        .keys()
        .any(|k| !present.contains(k.as_str()));
    if changed {
        entries.sort_by(|a, b| a.0.cmp(b.0));
        Cache::write(&c.options.file, &entries);
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}
