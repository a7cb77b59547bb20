//! The README is right, as a newcomer reads it: its two commands are the scripts CI runs, the
//! install script says what to install when it cannot, its links stay inside the repository,
//! and its service snippet builds as written, migrates a real database and reports errors and
//! warnings with Display.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use migrations_format::Checksum;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness crate is in the repository")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The text of `## heading` up to the next `## ` heading.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no `{heading}` section"));
    let rest = &text[start + 1..];
    match rest[heading.len()..].find("\n## ") {
        Some(end) => &rest[..heading.len() + end],
        None => rest,
    }
}

/// The fenced code blocks of a markdown text, as (info string, body).
fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => open = Some((info.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// The text outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if !in_block {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Lines of a shell script that are not comments or blank, trimmed.
fn script_lines(script: &str) -> Vec<&str> {
    script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn assert_executable(relative: &str) {
    let path = repo().join(relative);
    let mode = fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "{relative} is not executable");
}

#[test]
fn the_readmes_two_commands_are_the_scripts_ci_runs() {
    let readme = read("README.md");
    let commands_section = section(&readme, "## The two commands");
    let blocks = fenced_blocks(commands_section);
    let [(info, body)] = blocks.as_slice() else {
        panic!("`## The two commands` should hold one code block, found {blocks:?}");
    };
    assert_eq!(info, "sh");
    let commands: Vec<&str> = body
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(commands, ["scripts/demo", "scripts/test"]);
    for script in [
        "scripts/demo",
        "scripts/test",
        "scripts/install-deps",
        ".ci/run",
    ] {
        assert_executable(script);
    }

    // What the README says each script runs is what it runs.
    let demo = read("scripts/demo");
    let test = read("scripts/test");
    let prose = prose(commands_section);
    for (script, text, command) in [
        ("scripts/demo", &demo, "cargo run --example quickstart"),
        (
            "scripts/test",
            &test,
            "cargo test --workspace --no-fail-fast",
        ),
    ] {
        assert!(
            prose.contains(&format!("`{script}` runs `{command}`")),
            "README.md should say that `{script}` runs `{command}`"
        );
        assert!(
            script_lines(text).contains(&format!("exec {command} \"$@\"").as_str()),
            "{script} should run `{command}`"
        );
    }
    assert!(
        read("examples/Cargo.toml").contains("name = \"quickstart\""),
        "examples/Cargo.toml has no example `quickstart`"
    );

    // The install logic exists once: both scripts and CI call scripts/install-deps.
    assert!(script_lines(&demo).contains(&"scripts/install-deps --demo"));
    assert!(script_lines(&test).contains(&"scripts/install-deps"));
    let ci = read(".ci/run");
    let ci_lines = script_lines(&ci);
    assert!(ci_lines.contains(&"scripts/install-deps"));
    assert!(
        !ci.contains("apt-get"),
        ".ci/run installs packages itself; that belongs in scripts/install-deps"
    );
    // CI runs the README's test command, as written, and last.
    assert_eq!(ci_lines.last(), Some(&"scripts/test"));
}

/// With nothing to install from (no apt-get, no sudo), scripts/install-deps installs nothing
/// and says exactly what is missing.
#[test]
fn install_deps_says_what_is_missing_when_it_cannot_install() {
    // A PATH with the tools the script itself uses and pgbouncer, but no C compiler, psql,
    // git, apt-get or sudo. The server binaries are named by MIGRATIONS_TEST_PG_BINDIR.
    let bin = tempfile::tempdir().expect("temp dir");
    let which = |tool: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("`{tool}` is not installed"))
    };
    for tool in [
        "bash",
        "id",
        "dirname",
        "readlink",
        "grep",
        "locale",
        "find",
        "sort",
        "pgbouncer",
    ] {
        std::os::unix::fs::symlink(which(tool), bin.path().join(tool)).expect("symlink");
    }
    let pg_bin = migrations_tests::server_bin_dir().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(which("bash"))
        .arg(repo().join("scripts/install-deps"))
        .env_clear()
        .env("PATH", bin.path())
        .env("MIGRATIONS_TEST_PG_BINDIR", &pg_bin)
        .envs(std::env::var_os("LIBCLANG_PATH").map(|p| ("LIBCLANG_PATH", p)))
        .output()
        .expect("run scripts/install-deps");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "error: missing a C compiler, psql, git, file, kill (procps).\n\
         There is no apt-get here: install them with this system's package manager.\n",
        "stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_user_docs_link_only_inside_the_repository() {
    let root = repo().canonicalize().expect("repository root");
    let mut files = vec![root.join("README.md")];
    for dir in ["docs", "examples"] {
        for entry in walk(&root.join(dir)) {
            if entry.extension().is_some_and(|e| e == "md") {
                files.push(entry);
            }
        }
    }
    let mut problems = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("read a markdown file");
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        // A user has the repository, not the project's SPEC.
        for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            if word == "SPEC" {
                problems.push(format!("{shown}: mentions SPEC, a file users do not have"));
                break;
            }
        }
        let prose = prose(&text);
        for (at, _) in prose.match_indices("](") {
            let rest = &prose[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let path = target.split('#').next().unwrap_or(target);
            let resolved = file.parent().expect("a file's directory").join(path);
            match resolved.canonicalize() {
                Ok(p) if p.starts_with(&root) => {}
                Ok(_) => problems.push(format!("{shown}: `{target}` is outside the repository")),
                Err(_) => problems.push(format!("{shown}: `{target}` does not exist")),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The README's service, built as written in a crate of its own (its Cargo.toml lines, its
/// main.rs, its build.rs, the quickstart's migrations), run against a real database.
struct Service {
    dir: tempfile::TempDir,
    target: PathBuf,
}

impl Service {
    fn from_readme() -> Service {
        let readme = read("README.md");
        let blocks = fenced_blocks(section(
            &readme,
            "## Quickstart: a service that migrates itself",
        ));
        let find = |what: &str, pick: &dyn Fn(&str, &str) -> bool| {
            blocks
                .iter()
                .find(|(info, body)| pick(info, body))
                .map(|(_, body)| body.clone())
                .unwrap_or_else(|| panic!("the README's quickstart has no {what} block"))
        };
        let toml = find("Cargo.toml", &|i, b| {
            i == "toml" && b.starts_with("# Cargo.toml")
        });
        let main_rs = find("main.rs", &|i, b| {
            i == "rust" && b.contains("embed_migrations!") && b.contains("fn main")
        });
        let build_rs = find("build.rs", &|i, b| {
            i == "rust" && b.starts_with("// build.rs")
        });

        // The README's dependency line points at a checkout; point it at this one.
        let core = repo().join("migrations-core");
        let toml: String = toml
            .lines()
            .map(|line| {
                if !line.starts_with("migrations-core = { path = \"") {
                    return format!("{line}\n");
                }
                let start = line.find("path = \"").expect("a path") + "path = \"".len();
                let end = start + line[start..].find('"').expect("a closing quote");
                format!("{}{}{}\n", &line[..start], core.display(), &line[end..])
            })
            .collect();
        assert!(
            toml.contains(&core.display().to_string()),
            "the README's Cargo.toml should depend on migrations-core by path:\n{toml}"
        );

        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = format!(
            "[package]\nname = \"readme-service\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[workspace]\n\n{toml}"
        );
        fs::write(dir.path().join("Cargo.toml"), manifest).expect("write Cargo.toml");
        // The workspace's lock file: the same versions, all already downloaded.
        fs::copy(repo().join("Cargo.lock"), dir.path().join("Cargo.lock")).expect("Cargo.lock");
        fs::create_dir(dir.path().join("src")).expect("src/");
        fs::write(dir.path().join("src/main.rs"), main_rs).expect("write main.rs");
        fs::write(dir.path().join("build.rs"), build_rs).expect("write build.rs");
        let migrations = dir.path().join("migrations");
        fs::create_dir(&migrations).expect("migrations/");
        for entry in walk(&repo().join("examples/quickstart/migrations")) {
            fs::copy(
                &entry,
                migrations.join(entry.file_name().expect("a file name")),
            )
            .expect("copy a migration");
        }
        Service {
            dir,
            // Its own target directory (its own cargo lock), kept between runs.
            target: Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme-service"),
        }
    }

    fn migration(&self, file: &str) -> PathBuf {
        self.dir.path().join("migrations").join(file)
    }

    fn build(&self) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--offline", "--quiet"])
            .current_dir(self.dir.path())
            .env("CARGO_TARGET_DIR", &self.target)
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "the README's service does not build:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn run(&self, database_url: Option<&str>) -> Output {
        let mut command = Command::new(self.target.join("debug/readme-service"));
        command.env_remove("DATABASE_URL");
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        command.output().expect("run the README's service")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_readmes_service_migrates_and_reports_with_display() {
    let service = Service::from_readme();
    service.build();
    let db = migrations_tests::test_db();

    // Without DATABASE_URL: one line that says what to set, exit 1.
    let out = service.run(None);
    assert_eq!(
        text(&out.stderr),
        "error: set DATABASE_URL to the database\n"
    );
    assert_eq!(out.status.code(), Some(1));

    // The first start applies the three migrations, in order.
    let out = service.run(Some(db.url()));
    assert_eq!(text(&out.stderr), "", "nothing on stderr");
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let expected = [
        "applied 1 create_users in ",
        "applied 2 create_posts in ",
        "applied 3 index_posts_author in ",
    ];
    assert_eq!(lines.len(), expected.len(), "stdout:\n{stdout}");
    for (line, prefix) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(prefix),
            "`{line}` should start with `{prefix}`"
        );
    }

    // A binary without the newest migration (a rollback of the code): it starts, and the
    // warning is printed.
    let up = service.migration("0003_index_posts_author.up.sql");
    let down = service.migration("0003_index_posts_author.down.sql");
    let (up_text, down_text) = (fs::read(&up).expect("read"), fs::read(&down).expect("read"));
    fs::remove_file(&up).expect("remove");
    fs::remove_file(&down).expect("remove");
    service.build();
    let out = service.run(Some(db.url()));
    assert_eq!(
        text(&out.stderr),
        "warning: future: applied migrations newer than any of the migrations being run (an \
         older release after a rollback?)\n  3 index_posts_author\n"
    );
    assert_eq!(text(&out.stdout), "");
    assert_eq!(out.status.code(), Some(0));
    fs::write(&up, up_text).expect("restore");
    fs::write(&down, down_text).expect("restore");

    // An edited released migration: refused with the message, not a Debug dump, exit 1.
    let first = service.migration("0001_create_users.up.sql");
    let original = fs::read_to_string(&first).expect("read");
    let edited = format!("{original}-- edited after release\n");
    fs::write(&first, &edited).expect("edit");
    service.build();
    let out = service.run(Some(db.url()));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: the database has drifted from the migrations; nothing was run\n\
             edited: applied migrations whose file changed since (restore the file, or accept \
             the new checksum with `migrations repair <version> --accept-checksum`)\n  \
             1 create_users: applied checksum {}, file checksum {}\n",
            Checksum::of_file_text(&original),
            Checksum::of_file_text(&edited)
        )
    );
    assert_eq!(text(&out.stdout), "");
    assert_eq!(out.status.code(), Some(1));
}
