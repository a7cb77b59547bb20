//! What every command needs, resolved once from the flags: the migrations, a connection, a
//! configured `Migrator`, and the output.

use migrations_core::connect::{connect, ConnectOptions};
use migrations_core::{Migrations, Migrator, Names, Phase};
use migrations_format::cache::{cache_file_for, CacheOptions, DirStamp, WarmRecord};
use migrations_format::{load_dir_with, Directory, LoadOptions, Settings, Version, SETTINGS_FILE};

use crate::cli::Global;
use crate::exit::Error;
use crate::output::Output;

/// What the warm start of a plain `up` found ([`Context::warm_start`]).
pub enum WarmStart {
    /// The database has every migration: nothing to do.
    UpToDate,
    /// The check could not prove it (something pending, drift, no history yet): load the set
    /// and run, on this connection (the check was its only query).
    Unproven(Box<postgres::Client>),
    /// No check was made (a placeholder without a value): the full load reports it.
    NotChecked,
}

/// A connection being opened on another thread ([`Context::connect_early`]), opened, or to be
/// opened when needed (no thread could be started).
pub enum Connecting {
    Pending(
        std::thread::JoinHandle<Result<postgres::Client, migrations_core::connect::ConnectError>>,
    ),
    Done(Box<postgres::Client>),
    Later(Box<ConnectOptions>),
}

impl Connecting {
    /// The connection, once opened (or why it could not be), with the log records the opening
    /// thread held, printed now and its later ones as they come.
    pub fn finish(self) -> Result<postgres::Client, Error> {
        let handle = match self {
            Connecting::Done(client) => return Ok(*client),
            Connecting::Later(options) => {
                log::debug!("connecting ({:?})", options);
                return Ok(connect(&options)?);
            }
            Connecting::Pending(handle) => handle,
        };
        crate::logger::release(handle.thread().id());
        match handle.join() {
            Ok(connected) => Ok(connected?),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// What `wait`'s start found ([`Context::wait_start`]).
pub enum WaitStart {
    /// The warm record's check proved every migration of the phase applied: this many.
    Migrated(usize),
    /// Wait on these heads, on this connection.
    Heads(Box<Migrations>, Connecting),
}

/// The heads of the directory ([`Context::load_heads`]).
struct Heads {
    migrations: Migrations,
    uses_placeholders: bool,
    /// A file uses a placeholder that has no value.
    unset_placeholder: bool,
}

/// The directory as listed by a warm start, and the record of the last load if it describes
/// this listing.
struct WarmLook {
    listing: DirStamp,
    record: Option<WarmRecord>,
    file: std::path::PathBuf,
}

/// Records what the warm check needs of `heads`, loaded after `look` was listed, for the next
/// start: nothing when the listing was not settled or the check needs more than the digest
/// (repeatable migrations).
fn record_warm_start(look: &WarmLook, heads: &Migrations) {
    if !look.listing.is_settled() {
        return;
    }
    let mut current = Vec::new();
    let mut counts = Vec::new();
    for phase in [Phase::Pre, Phase::Post, Phase::All] {
        let Some(digests) = Migrator::new(heads).phase(phase).current_digests() else {
            return;
        };
        current.push((phase.as_str().to_owned(), digests));
        counts.push((
            phase.as_str().to_owned(),
            heads.iter().filter(|m| phase.includes(m)).count(),
        ));
    }
    let defaults = heads.run_defaults();
    let record = WarmRecord {
        dir: look.listing,
        schema: defaults.schema.as_deref().map(str::to_owned),
        table: defaults.table.as_deref().map(str::to_owned),
        current,
        counts,
    };
    record.write(&look.file);
}

pub struct Context<'a> {
    pub global: &'a Global,
    pub out: Output,
}

impl<'a> Context<'a> {
    pub fn new(global: &'a Global) -> Context<'a> {
        Context {
            global,
            out: Output::new(global),
        }
    }

    /// The migrations directory, loaded and checked (every problem is an error naming its file),
    /// its placeholders substituted: every command that sends, prints or tests SQL sees the
    /// values, and a placeholder without one is a file problem before anything connects.
    pub fn migrations(&self) -> Result<Migrations, Error> {
        let migrations = Migrations::from(self.directory()?);
        // Every message after this spells a version as its file does.
        crate::spelling::remember(&migrations);
        migrations
            .into_with_placeholders(&self.placeholders())
            .map_err(Error::Files)
    }

    /// The migrations directory as written, placeholders left in: for the commands that need
    /// the text but no values (adopting sqlx's history, whose checksums are of the text;
    /// baseline and repair, which store the down files).
    pub fn migrations_as_written(&self) -> Result<Migrations, Error> {
        let migrations = Migrations::from(self.directory()?);
        crate::spelling::remember(&migrations);
        Ok(migrations)
    }

    /// The migrations' heads only: checksums, directives, names, no SQL text (every script is
    /// empty), a file the checksum cache vouches for not even read. For what compares
    /// checksums and nothing else: the warm start of `up`, `wait`. Never run or print its
    /// scripts. Checked like the full load, but for the values of its placeholders, which it
    /// only tells of.
    fn load_heads(&self) -> Result<Heads, Error> {
        let directory = self.heads()?;
        let files = || {
            directory
                .migrations
                .iter()
                .flat_map(|m| std::iter::once(&m.up).chain(m.down.as_ref()))
                .chain(directory.repeatables.iter().map(|r| &r.file))
        };
        let uses_placeholders = files().any(|f| !f.placeholders.is_empty());
        let mut unset_placeholder = false;
        if uses_placeholders {
            let given = directory
                .settings
                .placeholder_values()
                .unwrap_or_default()
                .overridden_by(&self.placeholders());
            unset_placeholder = files()
                .flat_map(|f| &f.placeholders)
                .any(|name| given.get(name).is_none());
        }
        let migrations = Migrations::from(directory);
        crate::spelling::remember(&migrations);
        Ok(Heads {
            migrations,
            uses_placeholders,
            unset_placeholder,
        })
    }

    /// [`Context::load_heads`] after `look` listed the directory, and the warm record of that
    /// listing written for the next start (not for files using placeholders, whose values
    /// may change between runs).
    fn load_heads_recorded(&self, look: Option<WarmLook>) -> Result<Heads, Error> {
        let heads = self.load_heads()?;
        if let Some(look) = look.filter(|_| !heads.uses_placeholders) {
            record_warm_start(&look, &heads.migrations);
        }
        Ok(heads)
    }

    /// The warm check by the digests of a warm record that describes the directory (its
    /// `[run]` table under the flags), on the connection being opened: `None` when it proves
    /// the database current, else the connection.
    fn check_by_record(
        &self,
        record: &WarmRecord,
        digests: &[[u8; 32]],
        connecting: Connecting,
    ) -> Result<Option<Box<postgres::Client>>, Error> {
        log::debug!("warm start: the directory is as its warm record describes");
        let names = self.names_over(record.schema.as_deref(), record.table.as_deref());
        let mut client = connecting.finish()?;
        let current = Migrator::is_digest_current(&mut client, &names, digests);
        Ok((!current).then(|| Box::new(client)))
    }

    /// The warm start of a plain `up` of `phase` (docs/cache.md): the one-query warm check,
    /// the first query of the session, before any SQL text is read. When the directory is as
    /// the warm record of the last load describes it (same names, same file stamps), it is
    /// neither loaded nor parsed: the record holds the digests to compare with. Otherwise the
    /// heads are loaded (through the checksum cache), and the record made for the next start.
    /// The connection is opened meanwhile.
    pub fn warm_start(&self, phase: Phase) -> Result<WarmStart, Error> {
        let connecting = self.connect_early();
        let look = self.warm_look();
        let record = look.as_ref().and_then(|l| l.record.as_ref());
        if let Some((record, digests)) =
            record.and_then(|r| Some((r, r.current_for(phase.as_str())?)))
        {
            return Ok(match self.check_by_record(record, digests, connecting)? {
                None => WarmStart::UpToDate,
                Some(client) => WarmStart::Unproven(client),
            });
        }
        let heads = self.load_heads_recorded(look)?;
        if heads.unset_placeholder {
            // The full load reports it, with its file and line, before anything runs (the
            // connection being opened is dropped unseen).
            return Ok(WarmStart::NotChecked);
        }
        let mut client = connecting.finish()?;
        Ok(
            if self
                .migrator(&heads.migrations)
                .phase(phase)
                .is_up_to_date(&mut client)
            {
                WarmStart::UpToDate
            } else {
                WarmStart::Unproven(Box::new(client))
            },
        )
    }

    /// `wait`'s start: when the warm record describes the directory, its warm check (nothing
    /// loaded), and the number of the phase's migrations; otherwise, or when the check cannot
    /// prove the database migrated, the heads to wait on (whatever the placeholders: `wait`
    /// compares checksums only), recorded for the next start. The connection is opened
    /// meanwhile.
    pub fn wait_start(&self, phase: Phase) -> Result<WaitStart, Error> {
        let connecting = self.connect_early();
        let look = self.warm_look();
        let phase = phase.as_str();
        let record = look.as_ref().and_then(|l| l.record.as_ref());
        let Some((record, digests, count)) =
            record.and_then(|r| Some((r, r.current_for(phase)?, r.count_for(phase)?)))
        else {
            let heads = self.load_heads_recorded(look)?;
            return Ok(WaitStart::Heads(Box::new(heads.migrations), connecting));
        };
        let Some(client) = self.check_by_record(record, digests, connecting)? else {
            return Ok(WaitStart::Migrated(count));
        };
        let heads = self.load_heads_recorded(look)?;
        Ok(WaitStart::Heads(
            Box::new(heads.migrations),
            Connecting::Done(client),
        ))
    }

    /// Starts connecting on another thread (`connect`), while this one reads the directory:
    /// the connection's round trips (and the server starting a backend) are mostly waiting.
    /// Its log records are held until the connection is taken ([`Connecting::finish`]), so a
    /// run that stops before that (a file problem) prints what it printed before.
    fn connect_early(&self) -> Connecting {
        let options = self.connect_options();
        let early = options.clone();
        let spawned = std::thread::Builder::new().spawn(move || {
            crate::logger::hold_this_thread();
            log::debug!("connecting ({:?})", early);
            connect(&early)
        });
        match spawned {
            Ok(handle) => Connecting::Pending(handle),
            // No thread to be had: connect when the connection is needed.
            Err(_) => Connecting::Later(Box::new(options)),
        }
    }

    /// The directory listed now, and its warm record when the record is of this very listing.
    /// `None` without a cache, or for a directory no record describes (symbolic links, ...).
    fn warm_look(&self) -> Option<WarmLook> {
        let cache = self.cache()?;
        let listing = DirStamp::of(&self.global.dir, cache.now)?;
        let file = WarmRecord::file_for(&cache.file);
        let record = WarmRecord::read(&file).filter(|r| r.dir.same_as(&listing));
        Some(WarmLook {
            listing,
            record,
            file,
        })
    }

    /// The migrations' heads ([`Context::load_heads`]) whatever the placeholders: for
    /// the commands that only compare checksums with the history (`status`, `current`,
    /// `history`, `wait`), which need no values.
    pub fn migrations_compared(&self) -> Result<Migrations, Error> {
        let migrations = Migrations::from(self.heads()?);
        crate::spelling::remember(&migrations);
        Ok(migrations)
    }

    fn heads(&self) -> Result<Directory, Error> {
        let options = LoadOptions {
            cache: self.cache(),
            heads_only: true,
            ..LoadOptions::default()
        };
        load_dir_with(&self.global.dir, &options).map_err(Error::Files)
    }

    /// The checksum cache of the directory (docs/cache.md): `$XDG_CACHE_HOME/migrations/`, else
    /// `~/.cache/migrations/`, one file per directory (by its canonical path), never inside
    /// the migrations directory (which is committed). `None` with `--no-cache` or
    /// `MIGRATIONS_NO_CACHE=1`, or when neither variable gives an absolute directory.
    fn cache(&self) -> Option<CacheOptions> {
        if self.global.no_cache {
            return None;
        }
        let absolute = |v: std::ffi::OsString| {
            let p = std::path::PathBuf::from(v);
            p.is_absolute().then_some(p)
        };
        let home = std::env::var_os("XDG_CACHE_HOME")
            .and_then(absolute)
            .or_else(|| {
                std::env::var_os("HOME")
                    .and_then(absolute)
                    .map(|h| h.join(".cache"))
            })?;
        Some(CacheOptions {
            file: cache_file_for(&self.global.dir, &home)?,
            now: std::time::SystemTime::now(),
        })
    }

    /// `--placeholder` over `MIGRATIONS_PLACEHOLDER_<NAME>` (over `[placeholders]` in
    /// migrations.toml, which the set carries).
    pub fn placeholders(&self) -> migrations_format::Placeholders {
        let env = migrations_format::Placeholders::from_env_vars(std::env::vars());
        let mut flags = migrations_format::Placeholders::new();
        for (name, value) in &self.global.placeholders {
            // Checked by clap's parser.
            let _ = flags.insert(name, value.clone());
        }
        env.overridden_by(&flags)
    }

    /// The directory as the format crate sees it (files, checksums, settings).
    pub fn directory(&self) -> Result<Directory, Error> {
        // The files are read whatever the cache says; the load records them in it, so the
        // next warm start need not read them.
        let options = LoadOptions {
            cache: self.cache(),
            ..LoadOptions::default()
        };
        load_dir_with(&self.global.dir, &options).map_err(Error::Files)
    }

    /// The directory for `lint`: each file's placeholders replaced by their values, or, where
    /// none is given, by their own name (an identifier, which parses wherever one may stand),
    /// so the lint reads SQL, not `${...}`; lines stay where they are. A file whose values do
    /// not fit is linted as written (running it reports them).
    pub fn substitute_for_lint(&self, directory: &mut Directory) {
        let given = directory
            .settings
            .placeholder_values()
            .unwrap_or_default()
            .overridden_by(&self.placeholders());
        let files = directory
            .migrations
            .iter_mut()
            .flat_map(|m| std::iter::once(&mut m.up).chain(m.down.as_mut()))
            .chain(directory.repeatables.iter_mut().map(|r| &mut r.file));
        for file in files {
            if file.placeholders.is_empty() {
                continue;
            }
            let mut values = migrations_format::Placeholders::new();
            for name in &file.placeholders {
                let _ = values.insert(name, given.get(name).unwrap_or(name).to_owned());
            }
            if let Ok(text) = migrations_format::placeholder::substitute(&file.text, &values) {
                file.text = text.into_owned();
            }
        }
    }

    /// `[run] connect_timeout` from `migrations.toml`, when the file sets it. (A malformed
    /// file is reported by the loader, not here.)
    fn settings_connect_timeout(&self) -> Option<std::time::Duration> {
        let text = std::fs::read_to_string(self.global.dir.join(SETTINGS_FILE)).ok()?;
        let settings = Settings::parse(&text).ok()?;
        settings.run.durations().ok()?.connect_timeout
    }

    /// How to connect: `--database-url` (a URL or `key=value` pairs), else `DATABASE_URL`, else
    /// the `PG*` variables, resolved by the library (the round trip's scratch database too).
    pub fn connect_options(&self) -> ConnectOptions {
        let mut options = ConnectOptions {
            url: self.global.database_url.clone().filter(|u| !u.is_empty()),
            application_name: Some("migrations".to_owned()),
            ..ConnectOptions::default()
        };
        if let Some(timeout) = self
            .global
            .connect_timeout
            .or_else(|| self.settings_connect_timeout())
        {
            options.connect_timeout = timeout;
        }
        options
    }

    pub fn connect(&self) -> Result<postgres::Client, Error> {
        let options = self.connect_options();
        log::debug!("connecting ({:?})", options);
        Ok(connect(&options)?)
    }

    /// Where the history lives: flags, else the directory's `[run]` settings, else defaults.
    pub fn names(&self, migrations: &Migrations) -> Names {
        let defaults = migrations.run_defaults();
        self.names_over(defaults.schema.as_deref(), defaults.table.as_deref())
    }

    /// The flags over the `[run]` settings `schema` and `table`, over the defaults.
    fn names_over(&self, schema: Option<&str>, table: Option<&str>) -> Names {
        let mut names = Names::default();
        if let Some(schema) = self.global.schema.as_deref().or(schema) {
            names.schema = schema.to_owned();
        }
        if let Some(table) = self.global.table.as_deref().or(table) {
            names.table = table.to_owned();
        }
        names
    }

    /// A `Migrator` with the directory's `[run]` settings (applied by `Migrator::new`), then
    /// the flags on top.
    pub fn migrator<'m>(&self, migrations: &'m Migrations) -> Migrator<'m> {
        let mut migrator = Migrator::new(migrations);
        if let Some(schema) = &self.global.schema {
            migrator = migrator.schema(schema.clone());
        }
        if let Some(table) = &self.global.table {
            migrator = migrator.table(table.clone());
        }
        if let Some(path) = &self.global.search_path {
            migrator = migrator.search_path(path.clone());
        }
        if let Some(t) = self.global.lock_timeout {
            migrator = migrator.lock_timeout(t);
        }
        if let Some(t) = self.global.statement_timeout {
            migrator = migrator.statement_timeout(t);
        }
        if let Some(t) = self.global.lock_wait {
            migrator = migrator.lock_wait(t);
        }
        migrator
    }

    /// A version given on the command line, in any spelling the file names use
    /// (`2019-02-26-002946` or its digits).
    pub fn version(&self, text: &str) -> Result<i64, Error> {
        Version::parse(text)
            .map(|v| v.value())
            .map_err(|e| Error::Usage(format!("`{text}` is not a version: {e}")))
    }
}
