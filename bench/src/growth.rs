//! How cost grows with the number of migrations (loading the directory, the warm check in
//! process and as a CLI process, at 100, 1,000 and 10,000), drawn as PNG plots, and what one
//! large seed-data migration costs in memory per CLI command (`--only growth,memory`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
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
}

pub fn growth(
    cluster: &mut Cluster,
    cli: Option<&Path>,
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
        let cli_ms = cli.map(|cli| {
            let url = format!("{}?sslmode=disable", cluster.url(&ours_db));
            let times: Vec<Duration> = (0..runs.min(10) + 1)
                .map(|_| {
                    let t = Instant::now();
                    let status = Command::new(cli)
                        .args(["up", "-q", "--color", "never", "--dir"])
                        .arg(&layouts.ours)
                        .arg("--database-url")
                        .arg(&url)
                        .status()
                        .unwrap();
                    assert!(status.success());
                    t.elapsed()
                })
                .skip(1)
                .collect();
            Summary::of(&times).median
        });
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
        });
    }
    out.line(format!(
        "\nMedians of {runs} runs (loading: 15, 5 at 10,000). *fresh* = the migrate call as the \
         first query of a new connection; *again* = a second call on it. The CLI row is a whole \
         process (`migrations up -q`: spawn, load the directory, connect, check, exit).\n"
    ));
    out.line("| applied | ours: load the directory | ours: check, fresh | ours: check, again | diesel: check, fresh | diesel: check, again | fresh: diesel / ours | again: diesel / ours | `migrations up` process |");
    out.line("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &points {
        out.line(format!(
            "| {} | {} | {} | {} | {} | {} | {:.1}x | {:.1}x | {} |",
            p.n,
            Summary::ms(p.load),
            Summary::ms(p.ours_fresh),
            Summary::ms(p.ours_again),
            Summary::ms(p.diesel_fresh),
            Summary::ms(p.diesel_again),
            p.diesel_fresh / p.ours_fresh,
            p.diesel_again / p.ours_again,
            p.cli.map_or("-".into(), Summary::ms)
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

/// Peak memory of each CLI command on one large seed-data migration (a `CREATE TABLE` and a
/// 200,000-row `INSERT`), from `/usr/bin/time -v`, beside psql applying the same file.
pub fn memory(cluster: &mut Cluster, cli: Option<&Path>, out: &mut Out) {
    let Some(cli) = cli else {
        out.line("\n(No CLI binary found: the memory section is skipped.)");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("migrations");
    std::fs::create_dir_all(&dir).unwrap();
    let mut sql = String::from(
        "CREATE TABLE seed (id int PRIMARY KEY, name text, email text);\nINSERT INTO seed VALUES\n",
    );
    for i in 0..200_000 {
        let sep = if i == 199_999 { ";\n" } else { ",\n" };
        let _ = write!(sql, "({i}, 'name {i:06}', 'u{i}@ex.org'){sep}");
    }
    let file = dir.join("1_seed.up.sql");
    std::fs::write(&file, &sql).unwrap();
    std::fs::write(dir.join("1_seed.down.sql"), "DROP TABLE seed;\n").unwrap();
    let size = sql.len() as f64 / 1e6;
    out.line(format!(
        "\n### Memory: one {size:.1} MB migration (a 200,000-row INSERT)\n"
    ));
    out.line("Peak resident memory (`/usr/bin/time -v`, maximum resident set size) of one process each; the goal is at most 3x the file plus a constant.\n");
    out.line("| command | peak memory | / file size | wall |");
    out.line("|---|---:|---:|---:|");
    let measure = |label: &str, program: &Path, args: Vec<String>, out: &mut Out| {
        let t = Instant::now();
        let o = Command::new("/usr/bin/time")
            .arg("-v")
            .arg(program)
            .args(&args)
            .current_dir(scratch.path())
            .output()
            .unwrap();
        let wall = t.elapsed();
        let stderr = String::from_utf8_lossy(&o.stderr);
        let kb: f64 = stderr
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        let mb = kb / 1024.0;
        out.line(format!(
            "| {label}{} | {mb:.0} MB | {:.1}x | {} |",
            if o.status.success() { "" } else { " (failed)" },
            mb / size,
            Summary::ms(wall.as_secs_f64() * 1000.0)
        ));
    };
    let dir_s = dir.display().to_string();
    let db = cluster.fresh_db("memory");
    let url = format!("{}?sslmode=disable", cluster.url(&db));
    let psql_db = cluster.fresh_db("memory_psql");
    let cmds: Vec<(&str, Vec<String>)> = vec![
        (
            "`migrations up`",
            vec![
                "up".into(),
                "-q".into(),
                "--dir".into(),
                dir_s.clone(),
                "--database-url".into(),
                url.clone(),
            ],
        ),
        (
            "`migrations lock`",
            vec!["lock".into(), "--dir".into(), dir_s.clone()],
        ),
        (
            "`migrations sql` (offline script)",
            vec!["sql".into(), "--dir".into(), dir_s.clone()],
        ),
        (
            "`migrations lint`",
            vec!["lint".into(), "--dir".into(), dir_s.clone()],
        ),
        (
            "`migrations status`",
            vec![
                "status".into(),
                "--dir".into(),
                dir_s.clone(),
                "--database-url".into(),
                url.clone(),
            ],
        ),
    ];
    for (label, args) in cmds {
        measure(label, cli, args, out);
    }
    let psql = PathBuf::from("psql");
    let psql = which(&psql).unwrap_or(psql);
    measure(
        "psql -f (the same file, for scale)",
        &psql,
        vec![
            "-X".into(),
            "-q".into(),
            "-f".into(),
            file.display().to_string(),
            format!("{}?sslmode=disable", cluster.url(&psql_db)),
        ],
        out,
    );
    cluster.drop_db(&db);
    cluster.drop_db(&psql_db);
}

fn which(program: &Path) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
}
