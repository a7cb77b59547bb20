//! Build cost of embedding: scratch crates that embed 1 or N generated migrations with our
//! `embed_migrations!`, sqlx's `migrate!`, refinery's `embed_migrations!` and diesel's
//! `embed_migrations!`, built by cargo in a target directory of their own. The cost of
//! embedding N is the difference between the N crate and the 1 crate of the same tool (same
//! dependencies, same code), so compiling and linking the dependencies cancels out.

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

struct Cargo {
    workspace: PathBuf,
    target: PathBuf,
}

impl Cargo {
    /// Runs cargo; returns the wall time and whether it compiled the crate (not just checked).
    fn run(&self, args: &[&str]) -> (Duration, bool) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let started = Instant::now();
        let out = Command::new(cargo)
            .args(args)
            .current_dir(&self.workspace)
            .env("CARGO_TARGET_DIR", &self.target)
            .env_remove("RUSTFLAGS")
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cargo {args:?} failed:\n{stderr}");
        (elapsed, stderr.contains("Compiling bc_"))
    }
}

pub fn run(out: &mut Out, count: usize, reps: usize, target: &Path) {
    let core = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations-core"))
        .canonicalize()
        .unwrap();
    let workspace = target.join("buildcost-ws");
    let _ = fs::remove_dir_all(&workspace);
    fs::create_dir_all(&workspace).unwrap();
    let kinds = [Kind::Ours, Kind::Sqlx, Kind::Refinery, Kind::Diesel];
    let sizes = [1, count];
    let all: Vec<Mig> = sets::generated(count);
    let mut members = Vec::new();
    for n in sizes {
        let (layouts, _) = sets::write_layouts(&all[..n], &workspace.join(format!("layouts-{n}")));
        for kind in kinds {
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
            migrations_tests::copy_dir(kind.layout(&layouts), &dir.join("migrations"));
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
    let cargo = Cargo {
        workspace: workspace.clone(),
        target: target.join("buildcost-target"),
    };
    // Each crate on its own first: `-p` resolves features for that crate alone, so its
    // dependencies are built as it needs them (a `--workspace` build would unify features).
    eprintln!("build cost: building the dependencies (dev and release) once");
    for name in &members {
        cargo.run(&["build", "-p", name]);
        cargo.run(&["build", "--release", "-p", name]);
    }

    out.line(format!(
        "\n### Build cost of embedding {count} migrations (dev profile, {reps} runs each; binary size from a release build)\n"
    ));
    out.line(format!(
        "Scratch crates in `{}` (one per tool and size; same dependencies and code, only the \
         migrations directory differs). clean = `cargo clean -p <crate>` then `cargo build -p <crate>` \
         (the crate alone: dependencies are built); incremental = append a comment to the newest \
         migration's up file, then `cargo build -p <crate>`. Load average at start: {}.\n",
        workspace.display(),
        crate::loadavg()
    ));
    out.line(format!(
        "| tool | clean, 1 migration | clean, {count} | added by {count} (clean) | incremental, 1 | incremental, {count} | added by {count} (incremental) | release binary, 1 | release binary, {count} | added bytes |"
    ));
    out.line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for kind in kinds {
        let mut clean: Vec<Vec<Duration>> = vec![Vec::new(); sizes.len()];
        let mut incremental: Vec<Vec<Duration>> = vec![Vec::new(); sizes.len()];
        let mut rebuilt = [true; 2];
        for rep in 0..reps {
            for (i, n) in sizes.iter().enumerate() {
                let name = format!("bc_{}_{n}", kind.name());
                cargo.run(&["clean", "-p", &name]);
                let (t, _) = cargo.run(&["build", "-p", &name]);
                clean[i].push(t);
                let file = newest_up_file(kind, &workspace.join(&name).join("migrations"));
                let mut text = fs::read_to_string(&file).unwrap();
                text.push_str(&format!("\n-- touched {rep}\n"));
                fs::write(&file, text).unwrap();
                let (t, compiled) = cargo.run(&["build", "-p", &name]);
                rebuilt[i] &= compiled;
                incremental[i].push(t);
                eprintln!(
                    "build cost {name} rep {rep}: clean {:?}, incremental {:?}",
                    clean[i][rep], t
                );
            }
        }
        let mut size = [0u64; 2];
        for (i, n) in sizes.iter().enumerate() {
            let name = format!("bc_{}_{n}", kind.name());
            cargo.run(&["build", "--release", "-p", &name]);
            size[i] = fs::metadata(cargo.target.join("release").join(&name))
                .unwrap()
                .len();
        }
        let c: Vec<Summary> = clean.iter().map(|t| Summary::of(t)).collect();
        let inc: Vec<Summary> = incremental.iter().map(|t| Summary::of(t)).collect();
        let note = if rebuilt.iter().all(|r| *r) {
            ""
        } else {
            " (an edit did NOT rebuild the crate)"
        };
        out.line(format!(
            "| {}{note} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            kind.label(),
            c[0].cell(),
            c[1].cell(),
            Summary::ms(c[1].median - c[0].median),
            inc[0].cell(),
            inc[1].cell(),
            Summary::ms(inc[1].median - inc[0].median),
            size[0],
            size[1],
            size[1] as i64 - size[0] as i64
        ));
    }
}
