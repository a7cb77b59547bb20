//! What every command needs, resolved once from the flags: the migrations, a connection, a
//! configured `Migrator`, and the output.

use migrations_core::connect::{connect, ConnectOptions};
use migrations_core::{Migrations, Migrator, Names};
use migrations_format::{load_dir, Directory, Settings, Version, SETTINGS_FILE};

use crate::cli::Global;
use crate::exit::Error;
use crate::output::Output;

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
        let migrations = Migrations::from_dir(&self.global.dir).map_err(Error::Files)?;
        // Every message after this spells a version as its file does.
        crate::spelling::remember(&migrations);
        migrations
            .with_placeholders(&self.placeholders())
            .map_err(Error::Files)
    }

    /// The migrations directory as written, placeholders left in: for the commands that only
    /// compare checksums (status, history, current, wait) or another tool's (adopting sqlx's
    /// history), which need no values.
    pub fn migrations_as_written(&self) -> Result<Migrations, Error> {
        let migrations = Migrations::from_dir(&self.global.dir).map_err(Error::Files)?;
        crate::spelling::remember(&migrations);
        Ok(migrations)
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
        load_dir(&self.global.dir).map_err(Error::Files)
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
        let mut names = Names::default();
        if let Some(schema) = self.global.schema.as_deref().or(defaults.schema.as_deref()) {
            names.schema = schema.to_owned();
        }
        if let Some(table) = self.global.table.as_deref().or(defaults.table.as_deref()) {
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
