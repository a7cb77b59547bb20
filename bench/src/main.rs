//! Benchmarks of migrations-core beside refinery, sqlx and diesel_migrations, all in one run on
//! one throwaway PostgreSQL cluster. See ../BENCHMARKS.md for the results and how to read them.
//!
//! ```text
//! cargo run --release -- --runs 5 [--fsync off|on|both] [--out results.md]
//! ```

mod buildcost;
mod clis;
mod cluster;
mod growth;
mod memory;
mod proxy;
mod sets;
mod stats;
mod tools;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use cluster::Cluster;
use proxy::{Proxy, Traffic};
use stats::{fmt_ms, Summary};
use tools::{Conn, Loaded, Tool};

struct Args {
    runs: usize,
    corpus_runs: usize,
    warm_runs: usize,
    build_runs: usize,
    /// Migrations embedded by the `build` section (`--build-count`, else `--count`).
    build_count: Option<usize>,
    /// The peers' macros the `build` section builds beside ours (`--build-tools`).
    build_tools: Vec<String>,
    fsync: Vec<bool>,
    count: usize,
    corpus: PathBuf,
    cli: Option<PathBuf>,
    sqlx_cli: Option<PathBuf>,
    diesel_cli: Option<PathBuf>,
    refinery_cli: Option<PathBuf>,
    out: Option<PathBuf>,
    sections: Vec<String>,
}

fn parse_args() -> Args {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = Args {
        runs: 5,
        corpus_runs: 0,
        warm_runs: 20,
        build_runs: 3,
        build_count: None,
        build_tools: ["sqlx", "refinery", "diesel"].map(String::from).to_vec(),
        fsync: vec![false],
        count: 1000,
        corpus: manifest.join("../corpus/crates.io/migrations"),
        cli: None,
        sqlx_cli: None,
        diesel_cli: None,
        refinery_cli: None,
        out: None,
        sections: ["cold", "warm", "corpus", "build"]
            .map(String::from)
            .to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--runs" => args.runs = value().parse().unwrap(),
            "--corpus-runs" => args.corpus_runs = value().parse().unwrap(),
            "--warm-runs" => args.warm_runs = value().parse().unwrap(),
            "--build-runs" => args.build_runs = value().parse().unwrap(),
            "--count" => args.count = value().parse().unwrap(),
            "--build-count" => args.build_count = Some(value().parse().unwrap()),
            "--build-tools" => {
                args.build_tools = value().split(',').map(str::to_owned).collect()
            }
            "--corpus" => args.corpus = value().into(),
            "--cli" => args.cli = Some(value().into()),
            "--sqlx-cli" => args.sqlx_cli = Some(value().into()),
            "--diesel-cli" => args.diesel_cli = Some(value().into()),
            "--refinery-cli" => args.refinery_cli = Some(value().into()),
            "--out" => args.out = Some(value().into()),
            "--only" => args.sections = value().split(',').map(str::to_owned).collect(),
            "--fsync" => {
                args.fsync = match value().as_str() {
                    "off" => vec![false],
                    "on" => vec![true],
                    "both" => vec![false, true],
                    other => panic!("--fsync off|on|both, not {other}"),
                }
            }
            "-h" | "--help" => {
                println!(
                    "migrations-bench [--runs N] [--corpus-runs N] [--warm-runs N] [--count N]\n  \
                     [--build-runs N] [--build-count N] [--build-tools sqlx,refinery,diesel]\n  [--fsync off|on|both] [--only cold,warm,corpus,growth,memory,build,profile,floors] [--corpus DIR]\n  \
                     [--cli PATH-to-migrations] [--sqlx-cli PATH] [--diesel-cli PATH] [--refinery-cli PATH]\n  \
                     [--out FILE.md]\n\n\
                     The warm section runs the peers' CLIs as processes: absent ones (not given, not on PATH)\n\
                     are `cargo install`ed into bench/target/peer-clis (niced). diesel_cli links libpq:\n\
                     `apt-get install libpq-dev`. The build section needs binutils (`strip`) and GNU time\n\
                     (`apt-get install time`, for /usr/bin/time)."
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other} (see --help)"),
        }
    }
    if args.corpus_runs == 0 {
        args.corpus_runs = args.runs;
    }
    if args.cli.is_none() {
        // A release build of the CLI: in this target directory (a `cargo build --release -p
        // migrations-cli` run with the same CARGO_TARGET_DIR), else the main workspace's.
        let mut candidates: Vec<PathBuf> = std::env::var_os("CARGO_TARGET_DIR")
            .map(|d| vec![PathBuf::from(d).join("release/migrations")])
            .unwrap_or_default();
        candidates.push(manifest.join("../target/release/migrations"));
        candidates.push(manifest.join("../target/debug/migrations"));
        args.cli = candidates.into_iter().find(|p| p.exists());
    }
    args
}

/// Everything printed goes to stdout and into the report.
struct Out {
    text: String,
}

impl Out {
    fn line(&mut self, s: impl AsRef<str>) {
        println!("{}", s.as_ref());
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut out = Out {
        text: String::new(),
    };
    machine(&mut out);
    let clusters_wanted = args.sections.iter().any(|s| s != "build");
    for &fsync in args.fsync.iter().filter(|_| clusters_wanted) {
        let started = Instant::now();
        let mut cluster = Cluster::start(fsync, args.sections.iter().any(|s| s == "profile"));
        out.line(format!(
            "\n## PostgreSQL {}, fsync={} (synchronous_commit={}, full_page_writes={})\n",
            cluster.version,
            cluster.setting("fsync"),
            cluster.setting("synchronous_commit"),
            cluster.setting("full_page_writes"),
        ));
        out.line(format!(
            "Cluster data directory on the disk: {}",
            cluster.data_dir().display()
        ));
        out.line(format!("Load average at start: {}", loadavg()));
        run_all(&args, &mut cluster, &rt, &mut out);
        out.line(format!(
            "\nLoad average at end: {}; this fsync mode took {:.0} s",
            loadavg(),
            started.elapsed().as_secs_f64()
        ));
    }
    if args.sections.iter().any(|s| s == "build") {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")));
        buildcost::run(
            &mut out,
            args.build_count.unwrap_or(args.count),
            args.build_runs,
            &target,
            &args.build_tools,
        );
    }
    if let Some(path) = &args.out {
        std::fs::write(path, &out.text).unwrap();
        eprintln!("written to {}", path.display());
    }
}

fn machine(out: &mut Out) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("MemTotal")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .unwrap_or_default();
    let version = |name: &str| {
        let needle = format!("name = \"{name}\"\nversion = \"");
        lock.find(&needle)
            .map(|i| {
                let rest = &lock[i + needle.len()..];
                rest[..rest.find('"').unwrap()].to_owned()
            })
            .unwrap_or_else(|| "?".into())
    };
    out.line("# migrations-bench results\n");
    out.line(format!(
        "Machine: {} CPUs ({cpu}), {:.1} GiB memory; rustc {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        mem as f64 / 1024.0 / 1024.0,
        Command::new("rustc")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    ));
    out.line(format!(
        "Crates: migrations-core {} (path), refinery {}, sqlx {}, diesel {}, diesel_migrations {}, postgres {}, tokio-postgres {}",
        version("migrations-core"),
        version("refinery"),
        version("sqlx"),
        version("diesel"),
        version("diesel_migrations"),
        version("postgres"),
        version("tokio-postgres"),
    ));
}

fn run_all(args: &Args, cluster: &mut Cluster, rt: &tokio::runtime::Runtime, out: &mut Out) {
    let scratch = tempfile::tempdir().unwrap();
    let want = |s: &str| args.sections.iter().any(|x| x == s);

    // The generated set.
    let generated = sets::generated(args.count);
    let (layouts, _) = sets::write_layouts(&generated, &scratch.path().join("generated"));
    let loaded = tools::load(&generated, &layouts, rt);
    let peers = [Tool::Refinery, Tool::Sqlx, Tool::Diesel];

    if want("profile") {
        profile(
            cluster,
            &loaded,
            &[Tool::Floor, Tool::Ours, Tool::OursGrouped],
            "generated",
            rt,
            out,
        );
        let corpus = sets::corpus(&args.corpus, scratch.path());
        let (layouts, _) = sets::write_layouts(&corpus, &scratch.path().join("corpus"));
        let corpus = tools::load(&corpus, &layouts, rt);
        profile(
            cluster,
            &corpus,
            &[Tool::Floor, Tool::Ours],
            "corpus",
            rt,
            out,
        );
        warm_profile(cluster, &loaded, args.warm_runs, rt, out);
    }
    if want("growth") {
        let plots = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../benchmarks"));
        growth::growth(
            cluster,
            args.cli.as_deref(),
            args.sqlx_cli.as_deref(),
            args.warm_runs,
            rt,
            out,
            &plots,
        );
    }
    if want("memory") {
        memory::run(cluster, args.cli.as_deref(), out);
    }
    if want("floors") {
        floors(cluster, &loaded, args.runs);
        let corpus = sets::corpus(&args.corpus, scratch.path());
        let (layouts, _) = sets::write_layouts(&corpus, &scratch.path().join("corpus"));
        let loaded = tools::load(&corpus, &layouts, rt);
        floors(cluster, &loaded, args.runs);
    }

    let mut warm_dbs = HashMap::new();
    if want("cold") || want("warm") {
        out.line(format!(
            "\n### Cold apply: {} generated migrations into an empty database\n",
            loaded.count
        ));
        out.line(format!(
            "Our `Migrations::from_dir` (read, parse, SHA-256 every file; not in the figures below, \
             and not paid at all when embedded): {}",
            fmt_ms(loaded.ours_load)
        ));
        let tools = [
            Tool::Floor,
            Tool::Ours,
            Tool::OursGrouped,
            Tool::Refinery,
            Tool::Sqlx,
            Tool::Diesel,
        ];
        let runs = if want("cold") { args.runs } else { 1 };
        let (times, kept) = cold(cluster, &loaded, &tools, runs, rt, "gen");
        warm_dbs = kept;
        if want("cold") {
            cold_table(out, &times, &tools, &peers, Tool::Floor, loaded.count, runs);
            let traffic = cold_traffic(cluster, &loaded, &tools, rt);
            traffic_table(
                out,
                &traffic,
                &tools,
                Some(loaded.count),
                "whole apply, after connecting",
            );
        }
    }

    if want("warm") {
        warm(args, cluster, &loaded, &layouts, &warm_dbs, rt, out);
    }
    for db in warm_dbs.values() {
        cluster.drop_db(db);
    }

    if want("corpus") {
        let corpus = sets::corpus(&args.corpus, scratch.path());
        let (layouts, skipped) = sets::write_layouts(&corpus, &scratch.path().join("corpus"));
        let loaded = tools::load(&corpus, &layouts, rt);
        out.line(format!(
            "\n### Real history: the crates.io corpus, {} migrations ({} no-transaction), into an empty database\n",
            loaded.count,
            corpus.iter().filter(|m| m.no_transaction).count()
        ));
        out.line(format!(
            "refinery cannot run a migration outside a transaction: it runs {} (skipped: {}). \
             Our grouped mode refuses a plan holding no-transaction migrations, so it is not run here. \
             Our loader took {}.",
            loaded.refinery_count,
            skipped.join(", "),
            fmt_ms(loaded.ours_load)
        ));
        let tools = [
            Tool::Floor,
            Tool::FloorTx,
            Tool::Ours,
            Tool::Refinery,
            Tool::Sqlx,
            Tool::Diesel,
        ];
        let (times, kept) = cold(cluster, &loaded, &tools, args.corpus_runs, rt, "corpus");
        cold_table(
            out,
            &times,
            &tools,
            &peers,
            Tool::Floor,
            loaded.count,
            args.corpus_runs,
        );
        let traffic = cold_traffic(cluster, &loaded, &tools, rt);
        traffic_table(
            out,
            &traffic,
            &tools,
            Some(loaded.count),
            "whole apply, after connecting",
        );
        // Warm-start traffic with 285 applied, to show which tools' bytes grow with history.
        let warm_tools = [Tool::Ours, Tool::Refinery, Tool::Sqlx, Tool::Diesel];
        let mut rows = Vec::new();
        for &tool in &warm_tools {
            let (_, check, _) = warm_traffic(cluster, &kept[&tool], tool, &loaded, rt);
            rows.push((tool, check));
        }
        out.line(format!(
            "\nWarm-start check with the {} corpus migrations applied (compare with 1000 above):\n",
            loaded.count
        ));
        let map: HashMap<Tool, Traffic> = rows.into_iter().collect();
        traffic_table(out, &map, &warm_tools, None, "warm check");
        for db in kept.values() {
            cluster.drop_db(db);
        }
    }
}

/// Applies the set with each tool `runs` times, each into a fresh database; the order of the
/// tools rotates between runs so drift in the machine's load spreads over all of them.
fn cold(
    cluster: &mut Cluster,
    set: &Loaded,
    tools: &[Tool],
    runs: usize,
    rt: &tokio::runtime::Runtime,
    label: &str,
) -> (Cold, HashMap<Tool, String>) {
    let mut times: HashMap<Tool, Vec<Duration>> = HashMap::new();
    let mut cpu: HashMap<Tool, Vec<(Duration, Duration)>> = HashMap::new();
    let mut kept = HashMap::new();
    // One untimed apply first: the server's and the file system's caches.
    {
        let db = cluster.fresh_db(&format!("{label}_warmup"));
        let mut conn = tools::connect(Tool::Floor, &cluster.url(&db), rt);
        tools::migrate(Tool::Floor, &mut conn, set, rt);
        drop(conn);
        cluster.drop_db(&db);
    }
    for run in 0..runs {
        let mut order = tools.to_vec();
        order.rotate_left(run % tools.len());
        for tool in order {
            let db = cluster.fresh_db(&format!("{label}_{tool:?}").to_lowercase());
            let url = cluster.url(&db);
            let mut conn = tools::connect(tool, &url, rt);
            let backend = format!("/proc/{}/schedstat", cluster.backend_pid(&db));
            let (server0, client0) = (cpu_ns(&backend), cpu_ns("/proc/thread-self/schedstat"));
            let (elapsed, applied) = tools::migrate(tool, &mut conn, set, rt);
            let (server1, client1) = (cpu_ns(&backend), cpu_ns("/proc/thread-self/schedstat"));
            drop(conn);
            check_applied(cluster, &db, tool, set, applied);
            eprintln!("cold {label} {tool:?} run {run}: {}", fmt_ms(elapsed));
            times.entry(tool).or_default().push(elapsed);
            cpu.entry(tool).or_default().push((
                Duration::from_nanos(server1 - server0),
                Duration::from_nanos(client1 - client0),
            ));
            if run + 1 == runs {
                kept.insert(tool, db);
            } else {
                cluster.drop_db(&db);
            }
        }
    }
    (Cold { times, cpu }, kept)
}

/// Timings of cold applies: wall time, and CPU time of the server backend and of the client
/// thread (from /proc/<pid>/schedstat: on-CPU nanoseconds, far less sensitive than wall time to
/// other processes competing for the CPUs).
struct Cold {
    times: HashMap<Tool, Vec<Duration>>,
    cpu: HashMap<Tool, Vec<(Duration, Duration)>>,
}

fn cpu_ns(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn expected(tool: Tool, set: &Loaded) -> usize {
    match tool {
        Tool::Refinery | Tool::FloorTx => set.refinery_count,
        _ => set.count,
    }
}

/// The tool's own history must hold every migration (and the reported count must agree).
fn check_applied(cluster: &Cluster, db: &str, tool: Tool, set: &Loaded, applied: usize) {
    let want = expected(tool, set);
    if applied != usize::MAX {
        assert_eq!(applied, want, "{tool:?} applied {applied}, expected {want}");
    }
    let query = match tool {
        Tool::Ours | Tool::OursGrouped => {
            "SELECT count(*) FROM migrations_history WHERE state = 'applied'"
        }
        Tool::Refinery => "SELECT count(*) FROM refinery_schema_history",
        Tool::Sqlx => "SELECT count(*) FROM _sqlx_migrations WHERE success",
        Tool::Diesel => "SELECT count(*) FROM __diesel_schema_migrations",
        Tool::Floor | Tool::FloorTx => return,
    };
    let mut client = postgres::Client::connect(&cluster.url(db), postgres::NoTls).unwrap();
    let rows: i64 = client.query_one(query, &[]).unwrap().get(0);
    assert_eq!(
        rows as usize, want,
        "{tool:?}: {rows} history rows, expected {want}"
    );
}

fn cold_table(
    out: &mut Out,
    cold: &Cold,
    tools: &[Tool],
    peers: &[Tool],
    floor: Tool,
    count: usize,
    runs: usize,
) {
    let times = &cold.times;
    let fastest_peer = peers
        .iter()
        .map(|t| Summary::of(&times[t]).median)
        .fold(f64::INFINITY, f64::min);
    let floor_median = Summary::of(&times[&floor]).median;
    out.line(format!(
        "\n{runs} runs each, tools interleaved. Time of the migrate call only (connection open before).\n"
    ));
    out.line("| tool | median | min | max | per migration (median) | vs fastest peer | vs floor |");
    out.line("|---|---:|---:|---:|---:|---:|---:|");
    for t in tools {
        let s = Summary::of(&times[t]);
        let vs_floor = if *t == Tool::Refinery && times.contains_key(&Tool::FloorTx) {
            s.median / Summary::of(&times[&Tool::FloorTx]).median
        } else {
            s.median / floor_median
        };
        out.line(format!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.3} ms | {:.2}x | {:.2}x |",
            t.label(),
            s.median,
            s.min,
            s.max,
            s.median / count as f64,
            s.median / fastest_peer,
            vs_floor
        ));
    }
    if times.contains_key(&Tool::FloorTx) {
        out.line("\n(refinery's ratio to the floor is to the floor over the same transactional migrations.)");
    }
    // CPU time: server backend + client thread, the same runs.
    let total = |t: &Tool| -> Vec<Duration> { cold.cpu[t].iter().map(|(s, c)| *s + *c).collect() };
    let floor_cpu = Summary::of(&total(&floor)).median;
    let floor_tx_cpu = cold
        .cpu
        .get(&Tool::FloorTx)
        .map(|_| Summary::of(&total(&Tool::FloorTx)).median);
    let fastest_peer_cpu = peers
        .iter()
        .map(|t| Summary::of(&total(t)).median)
        .fold(f64::INFINITY, f64::min);
    out.line("\nCPU time of the same runs (on-CPU time from /proc/<pid>/schedstat, less sensitive to the machine's load than wall time):\n");
    out.line("| tool | server backend CPU, median (min–max) | client thread CPU, median | server + client, median | per migration | vs fastest peer | vs floor |");
    out.line("|---|---:|---:|---:|---:|---:|---:|");
    for t in tools {
        let server: Vec<Duration> = cold.cpu[t].iter().map(|(s, _)| *s).collect();
        let client: Vec<Duration> = cold.cpu[t].iter().map(|(_, c)| *c).collect();
        let both = Summary::of(&total(t));
        let base = match (t, floor_tx_cpu) {
            (Tool::Refinery, Some(f)) => f,
            _ => floor_cpu,
        };
        out.line(format!(
            "| {} | {} | {} | {} | {:.3} ms | {:.2}x | {:.2}x |",
            t.label(),
            Summary::of(&server).cell(),
            Summary::ms(Summary::of(&client).median),
            Summary::ms(both.median),
            both.median / count as f64,
            both.median / fastest_peer_cpu,
            both.median / base
        ));
    }
}

fn cold_traffic(
    cluster: &mut Cluster,
    set: &Loaded,
    tools: &[Tool],
    rt: &tokio::runtime::Runtime,
) -> HashMap<Tool, Traffic> {
    let proxy = Proxy::start(cluster.port).unwrap();
    let mut map = HashMap::new();
    for &tool in tools {
        let db = cluster.fresh_db(&format!("traffic_{tool:?}").to_lowercase());
        let url = cluster.url_via(proxy.port, &db);
        let mut conn = tools::connect(tool, &url, rt);
        let before = proxy.snapshot();
        let (_, applied) = tools::migrate(tool, &mut conn, set, rt);
        let after = proxy.snapshot();
        drop(conn);
        check_applied(cluster, &db, tool, set, applied);
        map.insert(tool, after.minus(before));
        cluster.drop_db(&db);
    }
    map
}

fn traffic_table(
    out: &mut Out,
    traffic: &HashMap<Tool, Traffic>,
    tools: &[Tool],
    per: Option<usize>,
    what: &str,
) {
    out.line(format!(
        "\nWire traffic ({what}), counted by a proxy between the tool and the server:\n"
    ));
    let per_col = if per.is_some() {
        " round trips per migration |"
    } else {
        ""
    };
    out.line(format!(
        "| tool | round trips (ReadyForQuery) |{per_col} simple queries (Q) | parse / bind / execute / sync | bytes sent | bytes received |"
    ));
    out.line(format!(
        "|---|---:|{}---:|---|---:|---:|",
        if per.is_some() { "---:|" } else { "" }
    ));
    for t in tools {
        let Some(x) = traffic.get(t) else { continue };
        let per_cell = match per {
            Some(n) => format!(" {:.2} |", x.round_trips as f64 / n as f64),
            None => String::new(),
        };
        out.line(format!(
            "| {} | {} |{per_cell} {} | {} / {} / {} / {} | {} | {} |",
            t.label(),
            x.round_trips,
            x.simple_queries,
            x.parse,
            x.bind,
            x.execute,
            x.sync,
            x.bytes_up,
            x.bytes_down
        ));
    }
}

/// One boot through the proxy: (connect, first check, second check on the same connection).
fn warm_traffic(
    cluster: &Cluster,
    db: &str,
    tool: Tool,
    set: &Loaded,
    rt: &tokio::runtime::Runtime,
) -> (Traffic, Traffic, Traffic) {
    let proxy = Proxy::start(cluster.port).unwrap();
    let url = cluster.url_via(proxy.port, db);
    let s0 = proxy.snapshot();
    let mut conn = tools::connect(tool, &url, rt);
    let s1 = proxy.snapshot();
    let (_, applied) = tools::migrate(tool, &mut conn, set, rt);
    assert!(
        applied == 0 || applied == usize::MAX,
        "{tool:?} applied {applied} on a warm start"
    );
    let s2 = proxy.snapshot();
    let _ = tools::migrate(tool, &mut conn, set, rt);
    let s3 = proxy.snapshot();
    drop(conn);
    (s1.minus(s0), s2.minus(s1), s3.minus(s2))
}

fn warm(
    args: &Args,
    cluster: &mut Cluster,
    set: &Loaded,
    layouts: &sets::Layouts,
    dbs: &HashMap<Tool, String>,
    rt: &tokio::runtime::Runtime,
    out: &mut Out,
) {
    let tools = [Tool::Ours, Tool::Refinery, Tool::Sqlx, Tool::Diesel];
    let peers = [Tool::Refinery, Tool::Sqlx, Tool::Diesel];
    out.line(format!(
        "\n### Warm start: all {} applied, the check every service boot pays\n",
        set.count
    ));
    out.line(format!("Load average before: {}", loadavg()));
    let mut connect_t: HashMap<Tool, Vec<Duration>> = HashMap::new();
    let mut check_t: HashMap<Tool, Vec<Duration>> = HashMap::new();
    let mut boot_t: HashMap<Tool, Vec<Duration>> = HashMap::new();
    let mut again_t: HashMap<Tool, Vec<Duration>> = HashMap::new();
    // One untimed boot each first (the server's caches).
    for &tool in &tools {
        let mut conn = tools::connect(tool, &cluster.url(&dbs[&tool]), rt);
        tools::migrate(tool, &mut conn, set, rt);
    }
    for run in 0..args.warm_runs {
        let mut order = tools.to_vec();
        order.rotate_left(run % tools.len());
        for tool in order {
            let url = cluster.url(&dbs[&tool]);
            let t0 = Instant::now();
            let mut conn: Conn = tools::connect(tool, &url, rt);
            let t1 = Instant::now();
            let (_, applied) = tools::migrate(tool, &mut conn, set, rt);
            let t2 = Instant::now();
            assert!(applied == 0 || applied == usize::MAX);
            let (again, _) = tools::migrate(tool, &mut conn, set, rt);
            again_t.entry(tool).or_default().push(again);
            drop(conn);
            connect_t.entry(tool).or_default().push(t1 - t0);
            check_t.entry(tool).or_default().push(t2 - t1);
            boot_t.entry(tool).or_default().push(t2 - t0);
        }
    }
    let fastest = |m: &HashMap<Tool, Vec<Duration>>| {
        peers
            .iter()
            .map(|t| Summary::of(&m[t]).median)
            .fold(f64::INFINITY, f64::min)
    };
    let (fc, fb, fa) = (fastest(&check_t), fastest(&boot_t), fastest(&again_t));
    out.line(format!(
        "\nIn process, {} boots each (a fresh connection each), tools interleaved. \
         check = the migrate call on a new connection; boot = connect + check; \
         check again = a second check on the same connection (the backend's caches warm).\n",
        args.warm_runs
    ));
    out.line("| tool | check median (min–max) | fastest peer / this | connect median | boot median (min–max) | fastest peer / this | check again, same connection | fastest peer / this |");
    out.line("|---|---:|---:|---:|---:|---:|---:|---:|");
    for t in &tools {
        let c = Summary::of(&check_t[t]);
        let k = Summary::of(&connect_t[t]);
        let b = Summary::of(&boot_t[t]);
        let a = Summary::of(&again_t[t]);
        out.line(format!(
            "| {} | {} | {:.2}x | {} | {} | {:.2}x | {} | {:.2}x |",
            t.label(),
            c.cell(),
            fc / c.median,
            Summary::ms(k.median),
            b.cell(),
            fb / b.median,
            a.cell(),
            fa / a.median
        ));
    }
    out.line(format!("\nLoad average after: {}", loadavg()));

    let mut check_traffic = HashMap::new();
    let mut connect_traffic = HashMap::new();
    let mut second_traffic = HashMap::new();
    for &tool in &tools {
        let (c, k, s) = warm_traffic(cluster, &dbs[&tool], tool, set, rt);
        connect_traffic.insert(tool, c);
        check_traffic.insert(tool, k);
        second_traffic.insert(tool, s);
    }
    traffic_table(
        out,
        &check_traffic,
        &tools,
        None,
        "warm check, after connecting",
    );
    traffic_table(
        out,
        &connect_traffic,
        &tools,
        None,
        "connecting, the tool's own connect call",
    );
    traffic_table(
        out,
        &second_traffic,
        &tools,
        None,
        "a second check on the same connection",
    );

    // As processes: our CLI (reads and hashes the files at every start) and the peers' CLIs.
    let given = clis::Given {
        ours: args.cli.as_deref(),
        sqlx: args.sqlx_cli.as_deref(),
        diesel: args.diesel_cli.as_deref(),
        refinery: args.refinery_cli.as_deref(),
    };
    clis::warm(&given, args.warm_runs, cluster, set, layouts, out);
}

/// Where the time of our cold apply goes, by statement (pg_stat_statements).
fn profile(
    cluster: &mut Cluster,
    set: &Loaded,
    tools: &[Tool],
    label: &str,
    rt: &tokio::runtime::Runtime,
    out: &mut Out,
) {
    out.line(format!(
        "\n### Profile: server time by statement, cold apply of the {label} set (pg_stat_statements)\n"
    ));
    for &tool in tools {
        let db = cluster.fresh_db(&format!("profile_{tool:?}").to_lowercase());
        let mut admin = postgres::Client::connect(&cluster.url(&db), postgres::NoTls).unwrap();
        admin
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset();")
            .unwrap();
        let mut conn = tools::connect(tool, &cluster.url(&db), rt);
        let (elapsed, _) = tools::migrate(tool, &mut conn, set, rt);
        drop(conn);
        let rows = admin
            .query(
                "SELECT calls, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) \
                 FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 ORDER BY total_exec_time DESC LIMIT 12",
                &[],
            )
            .unwrap();
        let total: f64 = admin
            .query_one(
                "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements \
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .unwrap()
            .get(0);
        out.line(format!(
            "\n{}: wall {}, server execution {:.0} ms in all statements\n",
            tool.label(),
            fmt_ms(elapsed),
            total
        ));
        out.line("| calls | total ms | statement |");
        out.line("|---:|---:|---|");
        for r in rows {
            let calls: i64 = r.get(0);
            let ms: f64 = r.get(1);
            let q: String = r.get(2);
            out.line(format!(
                "| {calls} | {ms:.1} | `{}` |",
                q.replace('|', "\\|")
            ));
        }
        drop(admin);
        cluster.drop_db(&db);
    }
}

/// Ways of sending the same SQL with no bookkeeping, to see what the floor should be.
fn floors(cluster: &mut Cluster, set: &Loaded, runs: usize) {
    let variants = [
        "one string",
        "one string (batch_execute)",
        "BEGIN / sql / COMMIT",
        "sql alone (autocommit)",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for run in 0..runs {
        for v in 0..variants.len() {
            let v = (v + run) % variants.len();
            let db = cluster.fresh_db("floors");
            let mut c = postgres::Client::connect(&cluster.url(&db), postgres::NoTls).unwrap();
            let t = Instant::now();
            for m in &set.floor {
                if m.no_transaction {
                    for s in &m.statements {
                        c.batch_execute(s).unwrap();
                    }
                    continue;
                }
                match v {
                    0 => drop(
                        c.simple_query(&format!("BEGIN;\n{}\n;\nCOMMIT;", m.sql))
                            .unwrap(),
                    ),
                    1 => c
                        .batch_execute(&format!("BEGIN;\n{}\n;\nCOMMIT;", m.sql))
                        .unwrap(),
                    2 => {
                        c.batch_execute("BEGIN").unwrap();
                        c.batch_execute(&m.sql).unwrap();
                        c.batch_execute("COMMIT").unwrap();
                    }
                    _ => c.batch_execute(&m.sql).unwrap(),
                }
            }
            times[v].push(t.elapsed());
            drop(c);
            cluster.drop_db(&db);
        }
    }
    for (v, name) in variants.iter().enumerate() {
        println!("floor variant {name}: {}", Summary::of(&times[v]).cell());
    }
}

/// Where the time of our warm-start check goes: the check as sent and parts of it, each timed
/// as the first query of a fresh connection (what a boot pays) and again on that connection.
fn warm_profile(
    cluster: &mut Cluster,
    set: &Loaded,
    runs: usize,
    rt: &tokio::runtime::Runtime,
    out: &mut Out,
) {
    let db = cluster.fresh_db("warm_profile");
    let url = cluster.url(&db);
    let mut conn = tools::connect(Tool::Ours, &url, rt);
    tools::migrate(Tool::Ours, &mut conn, set, rt);
    drop(conn);
    // The text of the format-2 warm check for the default names (before the stored digest).
    let table = "\"public\".\"migrations_history\"";
    let digest =
        "encode(sha256(convert_to(coalesce(string_agg(version::text || ':' || checksum || ':' \
         || CASE WHEN no_transaction THEN 't' ELSE 'f' END, ',' ORDER BY version) \
         FILTER (WHERE state = 'applied'), ''), 'UTF8')), 'hex')";
    let variants: Vec<(&str, String)> = vec![
        (
            "the check as sent (history format 3: the stored digest, one row)",
            "SELECT chain_digest FROM \"public\".\"migrations_history_meta\"".to_owned(),
        ),
        (
            "the check of format 2 and the comment (for comparison)",
            format!(
                "SELECT obj_description(to_regclass(E'{t}'), 'pg_class'), \
                 count(*) FILTER (WHERE state <> 'applied'), {digest} FROM {table}",
                t = table.replace('\'', "''")
            ),
        ),
        (
            "the check of format 2 (string_agg + sha256 over the rows)",
            format!("SELECT count(*) FILTER (WHERE state <> 'applied'), {digest} FROM {table}"),
        ),
        (
            "obj_description alone",
            format!("SELECT obj_description(to_regclass(E'{table}'), 'pg_class')"),
        ),
        (
            "count(*) of the history",
            format!("SELECT count(*) FROM {table}"),
        ),
        (
            "all versions and checksums (what the peers read)",
            format!("SELECT version, checksum FROM {table} ORDER BY version"),
        ),
        ("SELECT 1", "SELECT 1".to_owned()),
    ];
    out.line(format!(
        "\n### Profile: our warm-start check with {} applied, and its parts\n",
        set.count
    ));
    out.line(format!(
        "Each query alone, {runs} fresh connections: first query of the connection (what a boot pays), \
         then the same query again on it.\n"
    ));
    out.line("| query | first on a fresh connection | again, same connection |");
    out.line("|---|---:|---:|");
    for (label, query) in &variants {
        let mut first = Vec::new();
        let mut again = Vec::new();
        for _ in 0..runs {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let t = Instant::now();
            c.simple_query(query).unwrap();
            first.push(t.elapsed());
            let t = Instant::now();
            c.simple_query(query).unwrap();
            again.push(t.elapsed());
        }
        out.line(format!(
            "| {label} | {} | {} |",
            Summary::of(&first).cell(),
            Summary::of(&again).cell()
        ));
    }
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let plan = c
        .simple_query(&format!("EXPLAIN (ANALYZE, TIMING) {}", variants[0].1))
        .unwrap();
    out.line("\n`EXPLAIN ANALYZE` of the check (first query of its connection):\n\n```");
    for m in plan {
        if let postgres::SimpleQueryMessage::Row(r) = m {
            out.line(r.get(0).unwrap_or(""));
        }
    }
    out.line("```");
    drop(c);
    cluster.drop_db(&db);
}
