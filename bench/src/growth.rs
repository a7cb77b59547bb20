//! How cost grows with the number of migrations (loading the directory, the warm check in
//! process and as a CLI process, at 100, 1,000 and 10,000), drawn as PNG plots
//! (`--only growth`). Memory per command on a large migration is `memory.rs`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use migrations_core::Migrations;

use crate::cluster::Cluster;
use crate::stats::Summary;
use crate::tools::{self, Tool};
use crate::{loadavg, sets, Out};

/// The sizes of the curves.
pub const SIZES: [usize; 3] = [100, 1000, 10_000];

/// One size's figures, medians in milliseconds.
struct Point {
    n: usize,
    load: f64,
    ours_fresh: f64,
    ours_again: f64,
    diesel_fresh: f64,
    diesel_again: f64,
    cli: Option<f64>,
    /// `migrations up --no-cache`: every file read, hashed and split.
    cli_no_cache: Option<f64>,
    /// `sqlx migrate run` on its own applied database.
    sqlx_cli: Option<f64>,
}

#[allow(clippy::too_many_arguments)]
pub fn growth(
    cluster: &mut Cluster,
    cli: Option<&Path>,
    sqlx_cli: Option<&Path>,
    runs: usize,
    rt: &tokio::runtime::Runtime,
    out: &mut Out,
    plots: &Path,
) {
    out.line("\n### Growth: 100, 1,000 and 10,000 generated migrations, all applied\n");
    out.line(format!("Load average before: {}", loadavg()));
    let scratch = tempfile::tempdir().unwrap();
    let mut points = Vec::new();
    for n in SIZES {
        let set = sets::generated(n);
        let (layouts, _) = sets::write_layouts(&set, &scratch.path().join(format!("g{n}")));
        let loaded = tools::load(&set, &layouts, rt);
        // Loading: the CLI's cost before it connects (read, normalise, SHA-256, split).
        let load_runs = if n >= 10_000 { 5 } else { 15 };
        let load: Vec<Duration> = (0..load_runs)
            .map(|_| {
                let t = Instant::now();
                let m = Migrations::from_dir(&layouts.ours).unwrap();
                assert_eq!(m.len(), n);
                t.elapsed()
            })
            .collect();
        let mut check = |tool: Tool| {
            let db = cluster.fresh_db(&format!("growth_{n}"));
            let url = cluster.url(&db);
            let mut conn = tools::connect(tool, &url, rt);
            tools::migrate(tool, &mut conn, &loaded, rt);
            drop(conn);
            let (mut fresh, mut again) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let mut conn = tools::connect(tool, &url, rt);
                fresh.push(tools::migrate(tool, &mut conn, &loaded, rt).0);
                again.push(tools::migrate(tool, &mut conn, &loaded, rt).0);
            }
            (db, Summary::of(&fresh).median, Summary::of(&again).median)
        };
        let (ours_db, ours_fresh, ours_again) = check(Tool::Ours);
        let (diesel_db, diesel_fresh, diesel_again) = check(Tool::Diesel);
        // As processes, interleaved: ours with its checksum cache (settled first: a file
        // changed within the cache's racy margin, 2 s, is read again), ours without it, and
        // sqlx-cli on a database of its own that sqlx's migrator applied.
        let cache_home = scratch.path().join(format!("cache{n}"));
        let sqlx_db = sqlx_cli.map(|_| {
            let db = cluster.fresh_db(&format!("growth_sqlx_{n}"));
            let mut conn = tools::connect(Tool::Sqlx, &cluster.url(&db), rt);
            tools::migrate(Tool::Sqlx, &mut conn, &loaded, rt);
            db
        });
        let mut procs: Vec<Vec<String>> = Vec::new();
        if let Some(cli) = cli {
            let ours = vec![
                cli.display().to_string(),
                "up".into(),
                "-q".into(),
                "--color".into(),
                "never".into(),
                "--dir".into(),
                layouts.ours.display().to_string(),
                "--database-url".into(),
                format!("{}?sslmode=disable", cluster.url(&ours_db)),
            ];
            let mut no_cache = ours.clone();
            no_cache.push("--no-cache".into());
            procs.push(ours);
            procs.push(no_cache);
        }
        if let (Some(sqlx), Some(db)) = (sqlx_cli, &sqlx_db) {
            procs.push(vec![
                sqlx.display().to_string(),
                "migrate".into(),
                "run".into(),
                "--source".into(),
                layouts.sqlx.display().to_string(),
                "--database-url".into(),
                format!("{}?sslmode=disable", cluster.url(db)),
            ]);
        }
        let run_proc = |argv: &[String]| {
            let t = Instant::now();
            let status = Command::new(&argv[0])
                .args(&argv[1..])
                .env("XDG_CACHE_HOME", &cache_home)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "{argv:?} failed");
            t.elapsed()
        };
        for argv in &procs {
            run_proc(argv);
        }
        if cli.is_some() {
            std::thread::sleep(Duration::from_millis(2100));
            run_proc(&procs[0]);
        }
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); procs.len()];
        for _ in 0..runs {
            for (i, argv) in procs.iter().enumerate() {
                times[i].push(run_proc(argv));
            }
        }
        let median = |i: usize| Summary::of(&times[i]).median;
        let (cli_ms, cli_no_cache, sqlx_ms) = match (cli.is_some(), sqlx_db.is_some()) {
            (true, true) => (Some(median(0)), Some(median(1)), Some(median(2))),
            (true, false) => (Some(median(0)), Some(median(1)), None),
            (false, true) => (None, None, Some(median(0))),
            (false, false) => (None, None, None),
        };
        if let Some(db) = &sqlx_db {
            cluster.drop_db(db);
        }
        cluster.drop_db(&ours_db);
        cluster.drop_db(&diesel_db);
        points.push(Point {
            n,
            load: Summary::of(&load).median,
            ours_fresh,
            ours_again,
            diesel_fresh,
            diesel_again,
            cli: cli_ms,
            cli_no_cache,
            sqlx_cli: sqlx_ms,
        });
    }
    out.line(format!(
        "\nMedians of {runs} runs (loading: 15, 5 at 10,000). *fresh* = the migrate call as the \
         first query of a new connection; *again* = a second call on it. The CLI columns are whole \
         processes, {runs} runs each, interleaved (`migrations up -q`: spawn, load the directory \
         (with the checksum cache: unchanged files are not read), connect, check, exit; \
         `--no-cache`: every file read; `sqlx migrate run`: sqlx-cli on its own applied \
         database).\n"
    ));
    out.line("| applied | ours: load the directory | ours: check, fresh | ours: check, again | diesel: check, fresh | diesel: check, again | fresh: diesel / ours | again: diesel / ours | `migrations up` process | `up --no-cache` | `sqlx migrate run` | sqlx / ours |");
    out.line("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &points {
        out.line(format!(
            "| {} | {} | {} | {} | {} | {} | {:.1}x | {:.1}x | {} | {} | {} | {} |",
            p.n,
            Summary::ms(p.load),
            Summary::ms(p.ours_fresh),
            Summary::ms(p.ours_again),
            Summary::ms(p.diesel_fresh),
            Summary::ms(p.diesel_again),
            p.diesel_fresh / p.ours_fresh,
            p.diesel_again / p.ours_again,
            p.cli.map_or("-".into(), Summary::ms),
            p.cli_no_cache.map_or("-".into(), Summary::ms),
            p.sqlx_cli.map_or("-".into(), Summary::ms),
            match (p.sqlx_cli, p.cli) {
                (Some(sqlx), Some(ours)) => format!("{:.2}x", sqlx / ours),
                _ => "-".into(),
            }
        ));
    }
    out.line(format!("\nLoad average after: {}", loadavg()));
    let xs: Vec<f64> = points.iter().map(|p| p.n as f64).collect();
    plot(
        &plots.join("warm-check.png"),
        "Warm check on an open connection (ms) vs applied migrations",
        &xs,
        &[
            ("ours", points.iter().map(|p| p.ours_again).collect()),
            (
                "diesel_migrations",
                points.iter().map(|p| p.diesel_again).collect(),
            ),
        ],
    );
    plot(
        &plots.join("warm-check-fresh.png"),
        "Warm check as the first query of a new connection (ms)",
        &xs,
        &[
            ("ours", points.iter().map(|p| p.ours_fresh).collect()),
            (
                "diesel_migrations",
                points.iter().map(|p| p.diesel_fresh).collect(),
            ),
        ],
    );
    let mut loading = vec![(
        "loading the directory",
        points.iter().map(|p| p.load).collect(),
    )];
    if points.iter().all(|p| p.cli.is_some()) {
        loading.push((
            "migrations up (process)",
            points.iter().map(|p| p.cli.unwrap()).collect(),
        ));
        loading.push((
            "migrations up --no-cache (process)",
            points.iter().map(|p| p.cli_no_cache.unwrap()).collect(),
        ));
    }
    if points.iter().all(|p| p.sqlx_cli.is_some()) {
        loading.push((
            "sqlx migrate run (process)",
            points.iter().map(|p| p.sqlx_cli.unwrap()).collect(),
        ));
    }
    plot(
        &plots.join("cli-warm-start.png"),
        "CLI warm start and its loading (ms) vs migrations",
        &xs,
        &loading,
    );
}

/// A line chart on log-scaled x, as SVG, converted to PNG by `rsvg-convert` (librsvg2-bin) or
/// ImageMagick's `convert` (kept as SVG when neither works).
fn plot(path: &Path, title: &str, xs: &[f64], series: &[(&str, Vec<f64>)]) {
    let (w, h, left, right, top, bottom) = (720.0, 420.0, 70.0, 30.0, 50.0, 60.0);
    let ymax = series
        .iter()
        .flat_map(|(_, ys)| ys.iter().copied())
        .fold(0.0f64, f64::max)
        * 1.15;
    let (x0, x1) = (xs[0].log10(), xs[xs.len() - 1].log10());
    let px = |x: f64| left + (x.log10() - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| h - bottom - y / ymax * (h - top - bottom);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"13\"><rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/><text x=\"{}\" y=\"25\" text-anchor=\"middle\" font-size=\"15\">{title}</text>",
        w / 2.0
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    for &x in xs {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x}</text>",
            px(x),
            h - bottom + 20.0
        );
    }
    for i in 0..=4 {
        let y = ymax * i as f64 / 4.0;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{y:.2}</text>\
             <line x1=\"{left}\" y1=\"{py}\" x2=\"{}\" y2=\"{py}\" stroke=\"#ddd\"/>",
            left - 6.0,
            py(y) + 4.0,
            w - right,
            py = py(y)
        );
    }
    let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    for (k, (label, ys)) in series.iter().enumerate() {
        let c = colors[k % colors.len()];
        let points: Vec<String> = xs
            .iter()
            .zip(ys)
            .map(|(&x, &y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2.5\" points=\"{}\"/>",
            points.join(" ")
        );
        for (&x, &y) in xs.iter().zip(ys) {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{c}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{y:.2}</text>",
                px(x),
                py(y),
                px(x) + 6.0,
                py(y) - 6.0
            );
        }
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{c}\"/>\
             <text x=\"{}\" y=\"{}\">{label}</text>",
            left + 20.0,
            top + 10.0 + 18.0 * k as f64,
            left + 40.0,
            top + 15.0 + 18.0 * k as f64
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">migrations (log scale)</text></svg>",
        w / 2.0,
        h - 15.0
    );
    let svg_path = path.with_extension("svg");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&svg_path, svg).unwrap();
    let converted = Command::new("rsvg-convert")
        .arg("-o")
        .arg(path)
        .arg(&svg_path)
        .status()
        .is_ok_and(|s| s.success())
        || Command::new("convert")
            .arg(&svg_path)
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
    if converted {
        let _ = std::fs::remove_file(&svg_path);
    }
}
