//! The CLIs as processes (spawn, read the directory, connect, check, exit): `migrations up`,
//! `sqlx migrate run`, `diesel migration run` and `refinery migrate`, each on a database it
//! applied itself from the set in its own layout, measured warm and interleaved.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::proxy::Proxy;
use crate::stats::{fmt_ms, Summary};
use crate::tools::{self, Loaded, Tool};
use crate::{loadavg, sets, Out};

/// Where a command takes the database URL.
enum UrlAt {
    /// Appended as the last argument (after `--database-url`).
    LastArg,
    /// In this environment variable (refinery's `-e`).
    Env(&'static str),
}

struct Proc {
    label: String,
    program: PathBuf,
    args: Vec<String>,
    url_at: UrlAt,
    tool: Tool,
    db: String,
}

impl Proc {
    /// Runs the command once against `url`; panics, with its output, when it fails. Returns
    /// its wall time and its CPU time (user + system).
    fn run(&self, url: &str, cwd: &Path) -> (Duration, Duration) {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .current_dir(cwd)
            .env("PGSSLMODE", "disable");
        match self.url_at {
            UrlAt::LastArg => cmd.arg(url),
            UrlAt::Env(name) => cmd.env(name, url),
        };
        let cpu_before = children_cpu();
        let started = Instant::now();
        let out = cmd.output().unwrap();
        let elapsed = started.elapsed();
        let cpu = children_cpu().saturating_sub(cpu_before);
        assert!(
            out.status.success(),
            "{} {:?} failed:\n{}{}",
            self.program.display(),
            self.args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (elapsed, cpu)
    }
}

/// User + system CPU time of every child process waited for so far (`getrusage`): the delta
/// around one run is that process's CPU time, which other processes on the machine stretch far
/// less than its wall time.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes one plain struct it is given; zeroed is a valid value of it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Peer CLI paths given on the command line (`--sqlx-cli`, `--diesel-cli`, `--refinery-cli`);
/// absent ones are looked up, then installed (`tools::peer_cli`).
pub struct Given<'a> {
    pub ours: Option<&'a Path>,
    pub sqlx: Option<&'a Path>,
    pub diesel: Option<&'a Path>,
    pub refinery: Option<&'a Path>,
}

pub fn warm(
    given: &Given,
    runs: usize,
    cluster: &mut Cluster,
    set: &Loaded,
    layouts: &sets::Layouts,
    out: &mut Out,
) {
    let dir = |p: &Path| p.display().to_string();
    let mut procs: Vec<Proc> = Vec::new();
    if let Some(cli) = given.ours {
        procs.push(Proc {
            label: format!("`migrations up` ({})", cli.display()),
            program: cli.to_path_buf(),
            args: ["up", "--dir", &dir(&layouts.ours), "-q", "--color", "never"]
                .map(String::from)
                .into_iter()
                .chain(["--database-url".to_owned()])
                .collect(),
            url_at: UrlAt::LastArg,
            tool: Tool::Ours,
            db: String::new(),
        });
    }
    let peers = [
        (Tool::Sqlx, given.sqlx),
        (Tool::Diesel, given.diesel),
        (Tool::Refinery, given.refinery),
    ];
    for (tool, path) in peers {
        let Some(cli) = tools::peer_cli(tool, path) else {
            continue;
        };
        let (command, args, url_at) = match tool {
            Tool::Sqlx => (
                "sqlx migrate run",
                vec![
                    "migrate".into(),
                    "run".into(),
                    "--source".into(),
                    dir(&layouts.sqlx),
                    "--database-url".into(),
                ],
                UrlAt::LastArg,
            ),
            Tool::Diesel => (
                "diesel migration run",
                vec![
                    "migration".into(),
                    "run".into(),
                    "--migration-dir".into(),
                    dir(&layouts.diesel),
                    "--database-url".into(),
                ],
                UrlAt::LastArg,
            ),
            _ => (
                "refinery migrate",
                vec![
                    "migrate".into(),
                    "-e".into(),
                    "DATABASE_URL".into(),
                    "-p".into(),
                    dir(&layouts.refinery),
                ],
                UrlAt::Env("DATABASE_URL"),
            ),
        };
        procs.push(Proc {
            label: format!("`{command}` ({})", cli.version),
            program: cli.program,
            args,
            url_at,
            tool,
            db: String::new(),
        });
    }
    if procs.is_empty() {
        out.line("\n(No CLI binary found: the process comparison is skipped.)");
        return;
    }
    // A directory of no project: diesel looks upwards for a Cargo.toml and its diesel.toml.
    let cwd = tempfile::tempdir().unwrap();
    let url = |cluster: &Cluster, db: &str| format!("{}?sslmode=disable", cluster.url(db));
    // Each CLI applies the whole set to a fresh database (its first run, timed once), so the
    // history is the one that CLI writes and reads; then every row must be there.
    let mut first = Vec::new();
    for p in &mut procs {
        p.db = cluster.fresh_db(&format!("cli_{:?}", p.tool).to_lowercase());
        first.push(p.run(&url(cluster, &p.db), cwd.path()).0);
        crate::check_applied(cluster, &p.db, p.tool, set, usize::MAX);
        // One untimed warm run: the server's and the file system's caches.
        p.run(&url(cluster, &p.db), cwd.path());
    }
    out.line(format!(
        "\nAs a process (spawn, read the directory, connect, check, exit), all {} applied, {runs} \
         runs each, interleaved (the order rotates). Each CLI checks a database it applied itself \
         from the set in its own layout. Load average before: {}.\n",
        set.count,
        loadavg()
    ));
    out.line("| command | wall median (min–max) | fastest peer CLI / this | CPU (user + system) median (min–max) | fastest peer CLI / this | connections | round trips after startup | bytes sent | bytes received | first run: apply all (1 run) |");
    out.line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); procs.len()];
    let mut cpus: Vec<Vec<Duration>> = vec![Vec::new(); procs.len()];
    for run in 0..runs {
        let mut order: Vec<usize> = (0..procs.len()).collect();
        order.rotate_left(run % procs.len());
        for i in order {
            let (wall, cpu) = procs[i].run(&url(cluster, &procs[i].db), cwd.path());
            times[i].push(wall);
            cpus[i].push(cpu);
        }
    }
    let fastest = |series: &[Vec<Duration>]| {
        procs
            .iter()
            .zip(series)
            .filter(|(p, _)| p.tool != Tool::Ours)
            .map(|(_, t)| Summary::of(t).median)
            .fold(f64::INFINITY, f64::min)
    };
    let (fastest_peer, fastest_peer_cpu) = (fastest(&times), fastest(&cpus));
    for ((p, t), c) in procs.iter().zip(&times).zip(&cpus) {
        let proxy = Proxy::start(cluster.port).unwrap();
        p.run(
            &format!("{}?sslmode=disable", cluster.url_via(proxy.port, &p.db)),
            cwd.path(),
        );
        let x = proxy.snapshot();
        let s = Summary::of(t);
        let c = Summary::of(c);
        let i = procs.iter().position(|q| q.tool == p.tool).unwrap();
        out.line(format!(
            "| {} | {} | {:.2}x | {} | {:.2}x | {} | {} | {} | {} | {} |",
            p.label,
            s.cell(),
            fastest_peer / s.median,
            c.cell(),
            fastest_peer_cpu / c.median,
            x.connections,
            // The startup exchange ends with one ReadyForQuery per connection.
            x.round_trips - x.connections,
            x.bytes_up,
            x.bytes_down,
            fmt_ms(first[i]),
        ));
    }
    out.line(format!("\nLoad average after: {}", loadavg()));
    for p in &procs {
        cluster.drop_db(&p.db);
    }
}
