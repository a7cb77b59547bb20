//! Build cost of embedding: scratch crates that embed 1 or N generated migrations with our
//! `embed_migrations!`, sqlx's `migrate!`, refinery's `embed_migrations!` and diesel's
//! `embed_migrations!`, built by cargo in a target directory of their own. The cost of
//! embedding N is the difference between the N crate and the 1 crate of the same tool (same
//! dependencies, same code), so compiling and linking the dependencies cancels out.
//!
//! Every scratch crate has the one-line `build.rs` each tool documents
//! (`cargo:rerun-if-changed=migrations`): without it no tool's crate rebuilds when a migration
//! file is added. rustc runs under a `RUSTC_WRAPPER` that logs, for the scratch crate's own
//! compile only, rustc's CPU time and peak resident memory (`/usr/bin/time`), so cargo's own
//! work (fingerprints, scanning 20,000 files) and the dependencies stay out of those columns.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::sets::{self, Mig};
use crate::stats::Summary;
use crate::Out;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Ours,
    Sqlx,
    Refinery,
    Diesel,
}

const KINDS: [Kind; 4] = [Kind::Ours, Kind::Sqlx, Kind::Refinery, Kind::Diesel];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Sqlx => "sqlx",
            Kind::Refinery => "refinery",
            Kind::Diesel => "diesel",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Ours => "ours: `embed_migrations!`",
            Kind::Sqlx => "sqlx: `migrate!`",
            Kind::Refinery => "refinery: `embed_migrations!`",
            Kind::Diesel => "diesel_migrations: `embed_migrations!`",
        }
    }

    fn dependencies(self, core: &Path) -> String {
        match self {
            Kind::Ours => format!("migrations-core = {{ path = \"{}\" }}\n", core.display()),
            Kind::Sqlx => "sqlx = { version = \"0.8\", default-features = false, features = [\"postgres\", \"migrate\", \"macros\", \"runtime-tokio\"] }\n".into(),
            Kind::Refinery => "refinery = { version = \"0.8\", features = [\"postgres\"] }\n".into(),
            Kind::Diesel => "diesel = { version = \"2\", default-features = false, features = [\"postgres\"] }\ndiesel_migrations = { version = \"2\", features = [\"postgres\"] }\n".into(),
        }
    }

    /// A main that touches every embedded script, so none is optimised away.
    fn main_rs(self) -> &'static str {
        match self {
            Kind::Ours => {
                "use migrations_core::{embed_migrations, Migrations};\n\
                 static MIGRATIONS: Migrations = embed_migrations!(\"migrations\");\n\
                 fn main() {\n    let bytes: usize = MIGRATIONS.iter().map(|m| m.up().sql().len()).sum();\n    \
                 println!(\"{} migrations, {bytes} bytes\", MIGRATIONS.len());\n}\n"
            }
            Kind::Sqlx => {
                "static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!(\"./migrations\");\n\
                 fn main() {\n    let bytes: usize = MIGRATOR.iter().map(|m| m.sql.len()).sum();\n    \
                 println!(\"{} migrations, {bytes} bytes\", MIGRATOR.iter().count());\n}\n"
            }
            Kind::Refinery => {
                "mod embedded {\n    refinery::embed_migrations!(\"migrations\");\n}\n\
                 fn main() {\n    let runner = embedded::migrations::runner();\n    \
                 let bytes: usize = runner.get_migrations().iter().map(|m| m.sql().map_or(0, str::len)).sum();\n    \
                 println!(\"{} migrations, {bytes} bytes\", runner.get_migrations().len());\n}\n"
            }
            Kind::Diesel => {
                "use diesel::migration::MigrationSource;\n\
                 use diesel_migrations::{embed_migrations, EmbeddedMigrations};\n\
                 pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!(\"migrations\");\n\
                 fn main() {\n    let list = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS).unwrap();\n    \
                 println!(\"{} migrations\", list.len());\n}\n"
            }
        }
    }

    /// The layout directory written by `sets::write_layouts` for this tool.
    fn layout(self, l: &sets::Layouts) -> &Path {
        match self {
            Kind::Ours => &l.ours,
            Kind::Sqlx => &l.sqlx,
            Kind::Refinery => &l.refinery,
            Kind::Diesel => &l.diesel,
        }
    }

    /// Writes one more migration after the `n` in `dir`, as a developer adding one would (the
    /// tool's naming, the version after the newest); returns what to delete to undo it.
    fn add_one(self, dir: &Path, n: usize, rep: usize) -> PathBuf {
        let width = newest_version_width(dir);
        let version = format!("{:0width$}", n + 1);
        let up = format!("CREATE TABLE added_{rep} (id bigint PRIMARY KEY);\n");
        let down = format!("DROP TABLE added_{rep};\n");
        let write = |path: PathBuf, text: &str| fs::write(path, text).unwrap();
        match self {
            Kind::Ours => {
                write(dir.join(format!("{version}_added.up.sql")), &up);
                write(dir.join(format!("{version}_added.down.sql")), &down);
                dir.join(format!("{version}_added.up.sql"))
            }
            Kind::Sqlx => {
                write(dir.join(format!("{}_added.up.sql", n + 1)), &up);
                write(dir.join(format!("{}_added.down.sql", n + 1)), &down);
                dir.join(format!("{}_added.up.sql", n + 1))
            }
            Kind::Refinery => {
                write(dir.join(format!("V{}__added.sql", n + 1)), &up);
                dir.join(format!("V{}__added.sql", n + 1))
            }
            Kind::Diesel => {
                let folder = dir.join(format!("{version}_added"));
                fs::create_dir_all(&folder).unwrap();
                write(folder.join("up.sql"), &up);
                write(folder.join("down.sql"), &down);
                folder
            }
        }
    }
}

/// Removes what `Kind::add_one` wrote.
fn remove_added(kind: Kind, added: &Path) {
    match kind {
        Kind::Diesel => fs::remove_dir_all(added).unwrap(),
        Kind::Ours | Kind::Sqlx => {
            fs::remove_file(added).unwrap();
            let down = added.to_string_lossy().replace(".up.sql", ".down.sql");
            fs::remove_file(down).unwrap();
        }
        Kind::Refinery => fs::remove_file(added).unwrap(),
    }
}

/// The number of digits of the version in the directory's file names (they are zero-padded).
fn newest_version_width(dir: &Path) -> usize {
    let newest = newest_up_file(Kind::Ours, dir);
    let name = newest
        .strip_prefix(dir)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    name.trim_start_matches('V')
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .count()
}

/// The file a developer would edit: the newest migration's up script.
fn newest_up_file(kind: Kind, dir: &Path) -> PathBuf {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // Sorting by the numeric prefix: the tools' names all start with the version.
    let key = |p: &PathBuf| -> u64 {
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        n.trim_start_matches('V')
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap_or(0)
    };
    names.retain(|p| !p.to_string_lossy().ends_with(".down.sql"));
    names.sort_by_key(key);
    let newest = names.pop().unwrap();
    match kind {
        Kind::Diesel => newest.join("up.sql"),
        Kind::Ours if newest.is_dir() => newest.join("up.sql"),
        _ => newest,
    }
}

/// One cargo run: its wall time, and rustc's CPU time (user + system) and peak memory for the
/// scratch crate itself when cargo compiled it.
struct Build {
    cargo: Duration,
    rustc: Option<(Duration, u64)>,
}

struct Cargo {
    workspace: PathBuf,
    target: PathBuf,
    wrapper: PathBuf,
    log: PathBuf,
}

impl Cargo {
    fn run(&self, args: &[&str]) -> Build {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let _ = fs::remove_file(&self.log);
        let started = Instant::now();
        let out = Command::new(cargo)
            .args(args)
            .current_dir(&self.workspace)
            .env("CARGO_TARGET_DIR", &self.target)
            .env("RUSTC_WRAPPER", &self.wrapper)
            .env("BC_RUSTC_LOG", &self.log)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cargo {args:?} failed:\n{stderr}");
        // Lines `<crate> <wall s> <max RSS KiB> <user s> <system s>`, written by the wrapper
        // for bc_* crates. CPU time, not wall: other processes on the machine stretch wall time.
        let rustc = fs::read_to_string(&self.log).ok().and_then(|log| {
            log.lines().rev().find_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let [krate, _wall, kib, user, system] = f[..] else {
                    return None;
                };
                krate.starts_with("bc_").then_some(())?;
                let cpu = user.parse::<f64>().ok()? + system.parse::<f64>().ok()?;
                Some((Duration::from_secs_f64(cpu), kib.parse().ok()?))
            })
        });
        Build {
            cargo: elapsed,
            rustc,
        }
    }
}

/// The timings of one tool at one size.
#[derive(Default)]
struct Series {
    clean: Vec<Duration>,
    clean_rustc: Vec<Duration>,
    clean_rss: Vec<u64>,
    edit: Vec<Duration>,
    edit_rustc: Vec<Duration>,
    add: Vec<Duration>,
    add_rustc: Vec<Duration>,
    /// Every edit and every added file rebuilt the crate.
    rebuilt: bool,
    size: u64,
    stripped: u64,
}

fn rustc_of(build: &Build, rebuilt: &mut bool) -> Duration {
    match build.rustc {
        Some((t, _)) => t,
        None => {
            *rebuilt = false;
            Duration::ZERO
        }
    }
}

/// `tools`: which of ours, sqlx, refinery, diesel to build (`--build-tools`); ours always.
pub fn run(out: &mut Out, count: usize, reps: usize, target: &Path, tools: &[String]) {
    let kinds: Vec<Kind> = KINDS
        .into_iter()
        .filter(|k| *k == Kind::Ours || tools.iter().any(|t| t == k.name()))
        .collect();
    let core = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations-core"))
        .canonicalize()
        .unwrap();
    let workspace = target.join("buildcost-ws");
    let _ = fs::remove_dir_all(&workspace);
    fs::create_dir_all(&workspace).unwrap();
    let sizes = [1, count];
    let all: Vec<Mig> = sets::generated(count);
    let mut members = Vec::new();
    for n in sizes {
        let (layouts, _) = sets::write_layouts(&all[..n], &workspace.join(format!("layouts-{n}")));
        for &kind in &kinds {
            let name = format!("bc_{}_{n}", kind.name());
            let dir = workspace.join(&name);
            fs::create_dir_all(dir.join("src")).unwrap();
            fs::write(
                dir.join("Cargo.toml"),
                format!(
                    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n{}",
                    kind.dependencies(&core)
                ),
            )
            .unwrap();
            fs::write(dir.join("src/main.rs"), kind.main_rs()).unwrap();
            fs::write(
                dir.join("build.rs"),
                "fn main() {\n    println!(\"cargo:rerun-if-changed=migrations\");\n}\n",
            )
            .unwrap();
            // Moved, not copied: 20,000 files per tool at 10,000 migrations.
            fs::rename(kind.layout(&layouts), dir.join("migrations")).unwrap();
            members.push(name);
        }
    }
    fs::write(
        workspace.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n\n[profile.dev.package.\"*\"]\ndebug = false\n",
            members
                .iter()
                .map(|m| format!("\"{m}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .unwrap();
    // Start from the bench's lock file, so the scratch crates build the same versions.
    let _ = fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"),
        workspace.join("Cargo.lock"),
    );
    let wrapper = workspace.join("rustc-wrapper.sh");
    fs::write(
        &wrapper,
        "#!/bin/sh\n# rustc's time and peak memory, for the scratch crates' own compile only.\n\
         case \"$CARGO_CRATE_NAME\" in\n  bc_*) exec /usr/bin/time -a -o \"$BC_RUSTC_LOG\" -f \"$CARGO_CRATE_NAME %e %M %U %S\" \"$@\" ;;\n  *) exec \"$@\" ;;\nesac\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cargo = Cargo {
        workspace: workspace.clone(),
        target: target.join("buildcost-target"),
        log: workspace.join("rustc.log"),
        wrapper,
    };
    // Each crate on its own first: `-p` resolves features for that crate alone, so its
    // dependencies are built as it needs them (a `--workspace` build would unify features).
    eprintln!("build cost: building the dependencies (dev and release) once");
    for name in &members {
        cargo.run(&["build", "-p", name]);
        cargo.run(&["build", "--release", "-p", name]);
    }

    let load_start = crate::loadavg();
    let mut series: Vec<Vec<Series>> = kinds
        .iter()
        .map(|_| {
            sizes
                .iter()
                .map(|_| Series {
                    rebuilt: true,
                    ..Series::default()
                })
                .collect()
        })
        .collect();
    // Tools and sizes interleaved within each repetition, so drift in the machine's load
    // spreads over all of them.
    for rep in 0..reps {
        for (k, kind) in kinds.iter().copied().enumerate() {
            for (i, n) in sizes.iter().copied().enumerate() {
                let s = &mut series[k][i];
                let name = format!("bc_{}_{n}", kind.name());
                let migrations = workspace.join(&name).join("migrations");
                cargo.run(&["clean", "-p", &name]);
                let b = cargo.run(&["build", "-p", &name]);
                s.clean.push(b.cargo);
                let (t, rss) = b.rustc.expect("a clean build compiles the crate");
                s.clean_rustc.push(t);
                s.clean_rss.push(rss);

                let file = newest_up_file(kind, &migrations);
                let mut text = fs::read_to_string(&file).unwrap();
                text.push_str(&format!("\n-- touched {rep}\n"));
                fs::write(&file, text).unwrap();
                let b = cargo.run(&["build", "-p", &name]);
                s.edit.push(b.cargo);
                s.edit_rustc.push(rustc_of(&b, &mut s.rebuilt));

                let added = kind.add_one(&migrations, n, rep);
                let b = cargo.run(&["build", "-p", &name]);
                s.add.push(b.cargo);
                s.add_rustc.push(rustc_of(&b, &mut s.rebuilt));
                remove_added(kind, &added);
                eprintln!(
                    "build cost {name} rep {rep}: clean {:?} (rustc CPU {:?}, {} MiB), edit {:?}, add {:?}",
                    s.clean[rep],
                    s.clean_rustc[rep],
                    s.clean_rss[rep] / 1024,
                    s.edit[rep],
                    s.add[rep]
                );
            }
        }
    }
    for (k, kind) in kinds.iter().copied().enumerate() {
        for (i, n) in sizes.iter().copied().enumerate() {
            let name = format!("bc_{}_{n}", kind.name());
            cargo.run(&["build", "--release", "-p", &name]);
            let binary = cargo.target.join("release").join(&name);
            let stripped = binary.with_extension("stripped");
            let status = Command::new("strip")
                .arg("-o")
                .arg(&stripped)
                .arg(&binary)
                .status()
                .expect("strip (binutils) runs");
            assert!(status.success(), "strip {} failed", binary.display());
            series[k][i].size = fs::metadata(&binary).unwrap().len();
            series[k][i].stripped = fs::metadata(&stripped).unwrap().len();
        }
    }
    report(out, &kinds, &series, count, reps, &workspace, &load_start);
}

fn median(times: &[Duration]) -> f64 {
    Summary::of(times).median
}

/// The fastest (smallest) peer's value, for the ratio columns.
fn best_peer(kinds: &[Kind], series: &[Vec<Series>], f: impl Fn(&Series) -> f64) -> f64 {
    kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| **k != Kind::Ours)
        .map(|(k, _)| f(&series[k][1]))
        .fold(f64::INFINITY, f64::min)
}

fn report(
    out: &mut Out,
    kinds: &[Kind],
    series: &[Vec<Series>],
    count: usize,
    reps: usize,
    workspace: &Path,
    load_start: &str,
) {
    out.line(format!(
        "\n### Build cost of embedding {count} migrations ({reps} runs each, tools interleaved; dev profile, binary sizes from a release build)\n"
    ));
    out.line(format!(
        "Scratch crates in `{}`, one per tool and size (1 and {count}): same dependencies, same \
         code, the one-line `build.rs` each tool documents (`cargo:rerun-if-changed=migrations`), \
         only the migrations directory differs. Dependencies are prebuilt. **clean** = `cargo clean \
         -p <crate>` then `cargo build -p <crate>`; **edit** = append a comment to the newest \
         migration's up file, then build; **add** = write one more migration (the tool's naming, \
         the next version), then build. *cargo* = the whole `cargo build` (wall); *rustc CPU* = \
         user + system CPU time of the crate's own rustc process only, which expands the macro \
         (less sensitive to the machine's load than wall time), and its peak resident memory \
         (`/usr/bin/time` through a `RUSTC_WRAPPER`). Medians (min–max). Load average at start: \
         {load_start}; at end: {}.\n",
        workspace.display(),
        crate::loadavg()
    ));
    let ratio = |v: f64, best: f64| format!("{:.2}x", v / best);
    out.line(format!(
        "| tool | clean, 1: cargo | clean, {count}: cargo | clean, {count}: rustc CPU | vs fastest peer | rustc peak memory, 1 → {count} |"
    ));
    out.line("|---|---:|---:|---:|---:|---:|");
    let best = best_peer(kinds, series, |s| median(&s.clean_rustc));
    for (k, kind) in kinds.iter().enumerate() {
        let (one, many) = (&series[k][0], &series[k][1]);
        let rss = |s: &Series| {
            let mut v = s.clean_rss.clone();
            v.sort_unstable();
            v[v.len() / 2] as f64 / 1024.0
        };
        out.line(format!(
            "| {} | {} | {} | {} | {} | {:.0} → {:.0} MiB |",
            kind.label(),
            Summary::of(&one.clean).cell(),
            Summary::of(&many.clean).cell(),
            Summary::of(&many.clean_rustc).cell(),
            ratio(median(&many.clean_rustc), best),
            rss(one),
            rss(many),
        ));
    }
    out.line(format!(
        "\nIncremental rebuilds at {count} migrations (and at 1, for the part that is not the migrations):\n"
    ));
    out.line(format!(
        "| tool | edit, 1: cargo | edit, {count}: cargo | edit, {count}: rustc CPU | add one, 1: cargo | add one, {count}: cargo | add one, {count}: rustc CPU | add one: vs fastest peer (cargo) |"
    ));
    out.line("|---|---:|---:|---:|---:|---:|---:|---:|");
    let best = best_peer(kinds, series, |s| median(&s.add));
    for (k, kind) in kinds.iter().enumerate() {
        let (one, many) = (&series[k][0], &series[k][1]);
        let note = if one.rebuilt && many.rebuilt {
            ""
        } else {
            " (an edit or an added file did NOT rebuild the crate)"
        };
        out.line(format!(
            "| {}{note} | {} | {} | {} | {} | {} | {} | {} |",
            kind.label(),
            Summary::of(&one.edit).cell(),
            Summary::of(&many.edit).cell(),
            Summary::of(&many.edit_rustc).cell(),
            Summary::of(&one.add).cell(),
            Summary::of(&many.add).cell(),
            Summary::of(&many.add_rustc).cell(),
            ratio(median(&many.add), best),
        ));
    }
    out.line(format!(
        "\nRelease binary size (bytes; stripped = `strip` of the same binary):\n"
    ));
    out.line(format!(
        "| tool | 1 | {count} | added by {count} | stripped, 1 | stripped, {count} | added by {count}, stripped | per migration, stripped | vs smallest peer |"
    ));
    out.line("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let added = |k: usize| series[k][1].stripped as f64 - series[k][0].stripped as f64;
    let best = (1..kinds.len()).map(added).fold(f64::INFINITY, f64::min);
    for (k, kind) in kinds.iter().enumerate() {
        let (one, many) = (&series[k][0], &series[k][1]);
        out.line(format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
            kind.label(),
            one.size,
            many.size,
            many.size as i64 - one.size as i64,
            one.stripped,
            many.stripped,
            added(k),
            added(k) / (count.max(2) - 1) as f64,
            ratio(added(k), best),
        ));
    }
}
