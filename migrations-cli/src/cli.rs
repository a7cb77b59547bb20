//! The command line: each flag documented where it is defined; the same definitions feed
//! `--help` and the shell completions.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// PostgreSQL migrations: plain SQL up/down pairs, checksummed, applied safely.
///
/// Connection: --database-url, else DATABASE_URL, else the PG* variables (PGHOST, PGUSER, ...)
/// and ~/.pgpass. Exit codes: 0 done; 1 operational failure (connection, SQL error, lock
/// timeout); 2 bad usage or bad migration files; 3 findings (drift, `status --exit-code` with
/// work pending).
#[derive(Debug, Parser)]
#[command(name = "migrations", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    /// The connection flags given before the command (see [`ConnectArgs`]).
    #[command(flatten)]
    pub connect_before: ConnectArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes. The connection fields are not flags here: they are
/// [`ConnectArgs`], given to the commands that connect, and copied here by [`parse`].
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// See [`ConnectArgs::database_url`].
    #[arg(skip)]
    pub database_url: Option<String>,

    /// The migrations directory.
    #[arg(long, global = true, default_value = "migrations", value_name = "DIR")]
    pub dir: PathBuf,

    /// Work on another migration set of this database instead of DIR: the one named under
    /// [sets.NAME] in DIR/migrations.toml (its directory and its own history table).
    #[arg(long, global = true, value_name = "NAME")]
    pub set: Option<String>,

    /// See [`ConnectArgs::schema`].
    #[arg(skip)]
    pub schema: Option<String>,

    /// See [`ConnectArgs::table`].
    #[arg(skip)]
    pub table: Option<String>,

    /// See [`ConnectArgs::search_path`].
    #[arg(skip)]
    pub search_path: Option<String>,

    /// Output format: text for people, json for scripts (one document on stdout).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// See [`ConnectArgs::lock_timeout`].
    #[arg(skip)]
    pub lock_timeout: Option<Duration>,

    /// See [`ConnectArgs::statement_timeout`].
    #[arg(skip)]
    pub statement_timeout: Option<Duration>,

    /// See [`ConnectArgs::lock_wait`].
    #[arg(skip)]
    pub lock_wait: Option<Duration>,

    /// See [`ConnectArgs::connect_timeout`].
    #[arg(skip)]
    pub connect_timeout: Option<Duration>,

    /// Colour: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "debug")]
    pub quiet: bool,

    /// Also log what the runner does, every connection attempt and query, to stderr
    /// (`[debug]` lines). Not `--verbose`: that is `history`'s own flag for more details.
    #[arg(short = 'v', long, global = true)]
    pub debug: bool,

    /// The value of a `${name}` placeholder in the SQL; repeatable. Wins over
    /// `MIGRATIONS_PLACEHOLDER_<NAME>` and `[placeholders]` in migrations.toml.
    #[arg(long = "placeholder", global = true, value_parser = parse_placeholder, value_name = "NAME=VALUE")]
    pub placeholders: Vec<(String, String)>,

    /// Do not use the checksum cache (which lets a warm `up` or `status` skip reading files
    /// that have not changed; it lives under $XDG_CACHE_HOME or ~/.cache, see docs/cache.md).
    #[arg(long, global = true, env = "MIGRATIONS_NO_CACHE", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_cache: bool,
}

// The flags of the commands that connect (or, for `sql`, name the history table). Given after
// the command (`migrations up --database-url ...`), or before it as every version took them
// (`migrations --database-url ... up`); after the command wins. `init`, `new`, `lint` and
// `completions` take none, so their help lists none. (Not a doc comment: clap would make it
// the about text of every command it is added to.)
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// The database: a postgres:// URL or key=value pairs ("host=h port=5432 user=u dbname=d").
    /// Its password never appears in any output.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Schema of the history tables (default public). Does not change search_path.
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<String>,

    /// Name of the history table (default migrations_history).
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,

    /// search_path for the migrations' own SQL.
    #[arg(long, value_name = "PATH")]
    pub search_path: Option<String>,

    /// lock_timeout for each migration, e.g. 5s (a file's directive wins).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub lock_timeout: Option<Duration>,

    /// statement_timeout for each migration, e.g. 1h; 0 means none (the default).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub statement_timeout: Option<Duration>,

    /// How long to wait for another runner's migrations lock (default 10min).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub lock_wait: Option<Duration>,

    /// How long to keep trying while the server is starting (default 10s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Option<Duration>,
}

/// The fleet flags of `up`, `status`, `verify --online` and `wait` (docs/fleet.md).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Fleet")]
pub struct FleetArgs {
    /// Run on every database of this file (`[[database]]` entries: url or service, name,
    /// labels), each as a single run with its own lock and drift checks.
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
    /// Run on every tenant schema this query lists (one schema name per row) in the database
    /// (or in each database of --fleet): the history in that schema, ${tenant} its name.
    #[arg(long, value_name = "SQL")]
    pub tenants_query: Option<String>,
    /// How many targets run at once (default 4): also the most connections held.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Run the first K targets first, alone; if one fails, start no other.
    #[arg(long, value_name = "K")]
    pub canary: Option<usize>,
    /// After the canary, run the targets in waves of N, one wave after another.
    #[arg(long, value_name = "N")]
    pub wave_size: Option<usize>,
    /// Start no other target after the first one fails (default: report it, go on).
    #[arg(long)]
    pub fail_fast: bool,
    /// Take slice I of N of the targets (by a stable hash of each name), so that N workers
    /// (a Kubernetes Indexed Job, a CI matrix) cover the fleet exactly once.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<migrations_core::fleet::Shard>,
}

fn parse_shard(text: &str) -> Result<migrations_core::fleet::Shard, String> {
    text.parse()
}

/// Commands that neither connect nor name the history table: no connection flags.
const LOCAL_COMMANDS: &[&str] = &["init", "new", "lint", "completions"];

/// The command line as parsed and shown (help, completions): the derived definition with
/// [`ConnectArgs`] added to every command but [`LOCAL_COMMANDS`] (to the leaves of a command
/// that has subcommands, such as `database create`). Added here rather than written into each
/// command, so a new command connects by default.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    fn with_connect_args(command: clap::Command) -> clap::Command {
        let children: Vec<String> = command
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        if children.is_empty() {
            return ConnectArgs::augment_args(command);
        }
        children
            .into_iter()
            .fold(command, |c, name| c.mut_subcommand(name, with_connect_args))
    }
    let mut command = Cli::command();
    let connecting: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .filter(|name| !LOCAL_COMMANDS.contains(&name.as_str()))
        .collect();
    for name in connecting {
        command = command.mut_subcommand(name, with_connect_args);
    }
    command
}

/// Parses the command line with [`command`]; the connection flags given after the command win
/// over those given before it, and land in [`Global`].
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let matches = command().try_get_matches()?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    let mut connect = cli.connect_before.clone();
    if !matches
        .subcommand_name()
        .is_some_and(|name| LOCAL_COMMANDS.contains(&name))
    {
        let mut leaf = &matches;
        while let Some((_, sub)) = leaf.subcommand() {
            leaf = sub;
        }
        let after = ConnectArgs::from_arg_matches(leaf)?;
        connect = ConnectArgs {
            database_url: after.database_url.or(connect.database_url),
            schema: after.schema.or(connect.schema),
            table: after.table.or(connect.table),
            search_path: after.search_path.or(connect.search_path),
            lock_timeout: after.lock_timeout.or(connect.lock_timeout),
            statement_timeout: after.statement_timeout.or(connect.statement_timeout),
            lock_wait: after.lock_wait.or(connect.lock_wait),
            connect_timeout: after.connect_timeout.or(connect.connect_timeout),
        };
    }
    let g = &mut cli.global;
    g.database_url = connect.database_url;
    g.schema = connect.schema;
    g.table = connect.table;
    g.search_path = connect.search_path;
    g.lock_timeout = connect.lock_timeout;
    g.statement_timeout = connect.statement_timeout;
    g.lock_wait = connect.lock_wait;
    g.connect_timeout = connect.connect_timeout;
    Ok(cli)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `--phase`: which migrations `up` applies (`-- migrations:phase=post`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseArg {
    Pre,
    Post,
    All,
}

impl PhaseArg {
    pub fn phase(self) -> migrations_core::Phase {
        match self {
            PhaseArg::Pre => migrations_core::Phase::Pre,
            PhaseArg::Post => migrations_core::Phase::Post,
            PhaseArg::All => migrations_core::Phase::All,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

fn parse_placeholder(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE (for example schema=tenant_1)"))?;
    migrations_format::placeholder::check_name(name)?;
    Ok((name.to_owned(), value.to_owned()))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    migrations_format::directive::parse_duration(text)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the migrations directory and a build.rs that makes Cargo notice new migration
    /// files (run it in the crate that calls embed_migrations!).
    Init,

    /// Create the next migration's files. The version follows the directory's style
    /// (sequential with the same zero padding, or timestamps); the layout follows the newest
    /// migration (flat files or diesel folders).
    New {
        /// What the migration does, for example add_users_email.
        name: String,
        /// Write no down file.
        #[arg(long)]
        no_down: bool,
        /// Mark the up and down files to run outside a transaction (CREATE INDEX CONCURRENTLY
        /// and its DROP INDEX CONCURRENTLY).
        #[arg(long)]
        no_transaction: bool,
    },

    /// Apply pending migrations.
    Up {
        /// Stop after this version (it is applied).
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Print the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply pending migrations below the highest applied version too.
        #[arg(long)]
        allow_out_of_order: bool,
        /// Run every pending migration in one transaction: all or nothing.
        #[arg(long)]
        single_transaction: bool,
        /// Store a schema snapshot afterwards, for `verify --schema-drift` (also
        /// `record_schema = true` in migrations.toml).
        #[arg(long)]
        record_schema: bool,
        /// Which migrations to apply: pre (the default: all but `-- migrations:phase=post`
        /// ones, safe while older releases still run), post (only the post-deployment ones,
        /// once every instance runs the new release) or all.
        #[arg(long, value_enum, default_value_t = PhaseArg::Pre)]
        phase: PhaseArg,
        #[command(flatten)]
        fleet: FleetArgs,
    },

    /// Revert applied migrations, newest first.
    Down {
        /// How many (default 1).
        #[arg(conflicts_with_all = ["to", "all"])]
        count: Option<usize>,
        /// Revert every migration above this version (it stays applied).
        #[arg(long, value_name = "VERSION", conflicts_with = "all")]
        to: Option<String>,
        /// Revert every applied migration.
        #[arg(long)]
        all: bool,
        /// Print the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run downs marked `-- migrations:lossy-down <reason>` (they lose data on purpose).
        #[arg(long)]
        allow_data_loss: bool,
        /// Revert migrations the directory no longer has (after a rollback to an older
        /// release) with the down script the database stored when each was applied.
        #[arg(long)]
        stored_downs: bool,
    },

    /// Revert the newest N applied migrations (default 1), then apply them again.
    Redo {
        /// How many of the newest applied migrations to revert and apply again (default 1).
        count: Option<usize>,
        /// Run downs marked `-- migrations:lossy-down <reason>` (they lose data on purpose).
        #[arg(long)]
        allow_data_loss: bool,
    },

    /// Print the database's current version (`none` when nothing is applied).
    Current,

    /// List applied migrations; --verbose adds time, duration, who, checksum and the audit
    /// events.
    History {
        /// Add when, by whom, how long, the checksum and the audit events (not logging: that
        /// is the global -v).
        #[arg(long)]
        verbose: bool,
    },

    /// Every migration with its state: pending, applied, edited, missing, future, failed,
    /// out-of-order.
    Status {
        /// Exit 3 when anything is pending or drifted.
        #[arg(long)]
        exit_code: bool,
        #[command(flatten)]
        fleet: FleetArgs,
    },

    /// Record every migration up to VERSION as applied without running it (for a database
    /// that already has the schema), or import diesel's or sqlx's history.
    Baseline {
        /// The newest version the database already has: it and every migration before it are
        /// recorded as applied. With --from-diesel or --from-sqlx it is optional: without it
        /// that tool's whole history is imported; with it, only its rows up to VERSION.
        #[arg(required_unless_present_any = ["from_diesel", "from_sqlx"])]
        version: Option<String>,
        /// Import __diesel_schema_migrations (versions only, taken on trust).
        #[arg(long, conflicts_with = "from_sqlx")]
        from_diesel: bool,
        /// Import _sqlx_migrations (its SHA-384 checksums are checked against the files).
        #[arg(long)]
        from_sqlx: bool,
    },

    /// Clear a failed no-transaction migration (dropping the invalid indexes it left) so the
    /// next `up` runs it again; with --accept-checksum, record the new checksum of an edited
    /// migration.
    Repair {
        /// Repair only this migration (default: all of them).
        version: Option<String>,
        /// Accept the current file's checksum for edited migrations.
        #[arg(long)]
        accept_checksum: bool,
    },

    /// Write an offline script (bookkeeping included) to stdout, for `psql -f`.
    Sql {
        /// Up: start after this version. Down: start at this version.
        #[arg(long, value_name = "VERSION")]
        from: Option<String>,
        /// Up: stop at this version. Down: stop above it.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Write the down direction.
        #[arg(long)]
        down: bool,
        /// Which migrations an up script applies: pre (default), post or all (see `up`).
        #[arg(long, value_enum, default_value_t = PhaseArg::Pre)]
        phase: PhaseArg,
    },

    /// Wait until the database has every migration of the directory (the pre-deployment ones,
    /// or --phase all), for replicas and init containers that must not migrate. Takes no lock
    /// and writes nothing (a read-only role is enough). Exit 0 when migrated, 1 after
    /// --timeout, 3 at once on drift or a database newer than the directory allows.
    Wait {
        /// How long to wait (default 5min).
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        timeout: Option<Duration>,
        /// What to wait for: pre (default), post or all.
        #[arg(long, value_enum, default_value_t = PhaseArg::Pre)]
        phase: PhaseArg,
        #[command(flatten)]
        fleet: FleetArgs,
    },

    /// Prove that every down undoes its up: on a scratch database created on the server (and
    /// dropped after), each migration in order goes up, down and up again; the schema and the
    /// rows generated in every table are compared after each step, and the locks each up takes
    /// are read from the server. Exit 3 when a migration fails the check.
    Test {
        /// Check from this version on (the migrations before it are applied unchecked).
        #[arg(long, value_name = "VERSION")]
        from: Option<String>,
        /// Check up to this version (the migrations after it are not applied).
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Do not report columns that came back in another order.
        #[arg(long)]
        ignore_column_order: bool,
        /// Check the schema only: no generated rows, no data comparison, no observed locks.
        #[arg(long)]
        schema_only: bool,
        /// Fail a migration whose up takes a stronger lock than MODE on a table that existed
        /// before it (e.g. `SHARE UPDATE EXCLUSIVE`).
        #[arg(long, value_name = "MODE")]
        max_lock: Option<String>,
        /// Rows generated in each empty table before each migration.
        #[arg(long, value_name = "N", default_value_t = 3)]
        rows: usize,
    },

    /// Safety lint: flag statements that lock tables for long (index without CONCURRENTLY,
    /// constraint without NOT VALID, column type change, ...), statements refused in a
    /// transaction, missing or empty downs, and more; each finding with the lock taken and
    /// the safe rewrite (`--list-rules` lists the rules). Exit 3 when anything is found.
    Lint {
        /// Migration files or folders to lint (default: the whole --dir).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Run only these rules (comma-separated or repeated; `all` for every rule, `default`
        /// for the default set). Replaces `[lint] select` in migrations.toml.
        #[arg(long, value_delimiter = ',', value_name = "RULE")]
        select: Vec<String>,
        /// Never run these rules. Replaces `[lint] exclude` in migrations.toml.
        #[arg(long, value_delimiter = ',', value_name = "RULE")]
        exclude: Vec<String>,
        /// Lint only migrations newer than this version. Replaces `[lint] since`.
        #[arg(long, value_name = "VERSION")]
        since: Option<String>,
        /// List every rule (id, default or opt-in, the lock it is about, the safe rewrite).
        #[arg(long)]
        list_rules: bool,
    },

    /// Append new migrations to migrations.lock (the lock file CI verifies). A locked entry
    /// changes only with --rewrite VERSION (recorded in the audit when a database is given).
    Lock {
        /// Accept a deliberate change to this locked migration (a fixed down, say).
        #[arg(long, value_name = "VERSION")]
        rewrite: Option<String>,
    },

    /// Check the directory against migrations.lock: edited, removed or inserted migrations are
    /// findings (exit 3); new unlocked ones are listed. Without a lock file: exit 2.
    Verify {
        /// Also check the database against the directory (never implied by DATABASE_URL).
        #[arg(long)]
        online: bool,
        /// Compare the live schema with the snapshot recorded by the last `up` and list, object
        /// by object, what changed outside migrations (needs record_schema).
        #[arg(long)]
        schema_drift: bool,
        #[command(flatten)]
        fleet: FleetArgs,
    },

    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Create, drop or recreate the database the connection string names (as sqlx and
    /// diesel do), from the server's maintenance database (postgres, else template1).
    Database {
        #[command(subcommand)]
        command: DatabaseCommand,
    },
}

/// `migrations database ...`.
#[derive(Debug, Subcommand)]
pub enum DatabaseCommand {
    /// Create the database (nothing to do when it exists). Needs the CREATEDB privilege.
    Create,
    /// Drop the database. Asks on a terminal; elsewhere needs --force.
    Drop {
        /// Do not ask, and end the sessions still connected to it (DROP DATABASE ... WITH
        /// (FORCE) on PostgreSQL 13 and later).
        #[arg(long)]
        force: bool,
    },
    /// Drop the database, create it again, and apply every migration. Asks on a terminal;
    /// elsewhere needs --force.
    Reset {
        /// Do not ask, and end the sessions still connected to it.
        #[arg(long)]
        force: bool,
    },
    /// Create the database if it is missing, then apply every migration.
    Setup,
}
