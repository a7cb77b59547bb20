//! `ClusterBuilder` and `Cluster`, the one throwaway-cluster implementation (the harness's own
//! cluster, the reliability runs', the benchmarks', the German-locale standby of the connect
//! tests): each what a caller relies on, against real servers of their own.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use migrations_tests::{Cluster, ClusterBuilder};
use postgres::error::SqlState;
use postgres::{Client, NoTls};

fn start(builder: ClusterBuilder) -> Cluster {
    builder.start().unwrap_or_else(|e| panic!("{e}"))
}

fn connect(url: &str) -> Client {
    Client::connect(url, NoTls).unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

fn show(client: &mut Client, setting: &str) -> String {
    client
        .query_one(&format!("SHOW {setting}"), &[])
        .unwrap()
        .get(0)
}

/// The error of a connection that must fail.
fn refusal(url: &str) -> postgres::Error {
    match Client::connect(url, NoTls) {
        Ok(_) => panic!("{url} accepted a connection"),
        Err(e) => e,
    }
}

fn port_accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

fn process_exists(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

#[test]
fn settings_hba_lines_and_files_reach_the_server() {
    let cluster = start(
        ClusterBuilder::new()
            .setting("work_mem", "7MB")
            // Replaces the default of the same name rather than adding a second line.
            .setting("max_connections", "33")
            .hba_line("host all mt_scram 127.0.0.1/32 scram-sha-256")
            .file("marker.txt", b"from the builder"),
    );
    let mut admin = connect(cluster.admin_url());
    assert_eq!(show(&mut admin, "work_mem"), "7MB");
    assert_eq!(show(&mut admin, "max_connections"), "33");
    // A default the builder was not asked to change.
    assert_eq!(show(&mut admin, "fsync"), "off");
    assert_eq!(
        show(&mut admin, "data_directory"),
        cluster.data_dir().display().to_string()
    );
    let conf = std::fs::read_to_string(cluster.data_dir().join("postgresql.conf")).unwrap();
    // The builder's lines are the quoted ones (initdb writes its own, unquoted, earlier).
    assert_eq!(conf.matches("\nmax_connections = '").count(), 1, "{conf}");

    admin
        .batch_execute(
            "SET password_encryption = 'scram-sha-256';
             CREATE ROLE mt_scram LOGIN PASSWORD 'right-pw';
             CREATE ROLE mt_trusted LOGIN;",
        )
        .unwrap();
    let url = |user: &str, password: &str| {
        format!(
            "postgres://{user}{password}@127.0.0.1:{}/postgres",
            cluster.port()
        )
    };
    let e = refusal(&url("mt_scram", ":wrong-pw"));
    assert_eq!(e.code(), Some(&SqlState::INVALID_PASSWORD), "{e}");
    connect(&url("mt_scram", ":right-pw"));
    // Everyone else keeps initdb's trust lines.
    connect(&url("mt_trusted", ""));

    let marker = cluster.data_dir().join("marker.txt");
    assert_eq!(std::fs::read(&marker).unwrap(), b"from the builder");
    let mode = std::fs::metadata(&marker).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn stop_start_and_restart_keep_the_data_and_the_port() {
    let cluster = start(ClusterBuilder::new());
    let first = cluster.pid();
    assert!(process_exists(first));
    let mut client = connect(cluster.admin_url());
    // Durable before the immediate shutdowns (the default is synchronous_commit = off).
    client
        .batch_execute(
            "SET synchronous_commit = on; CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)",
        )
        .unwrap();
    drop(client);

    cluster.restart().unwrap_or_else(|e| panic!("{e}"));
    let second = cluster.pid();
    assert_ne!(second, first);
    assert!(
        !process_exists(first),
        "the old postmaster {first} still runs"
    );
    let mut client = connect(cluster.admin_url());
    let rows: i64 = client
        .query_one("SELECT count(*) FROM kept", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    drop(client);

    cluster.stop().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cluster.pid(), 0);
    assert!(!process_exists(second));
    assert!(!port_accepts(cluster.port()));
    cluster.start().unwrap_or_else(|e| panic!("{e}"));
    assert!(process_exists(cluster.pid()));
    let mut client = connect(&cluster.url("postgres"));
    let rows: i64 = client
        .query_one("SELECT count(*) FROM kept", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}

#[test]
fn dropping_stops_the_server_and_removes_its_directories() {
    let parent = tempfile::tempdir().unwrap();
    if let Some((uid, gid)) = migrations_tests::cluster::server_user().unwrap() {
        std::os::unix::fs::chown(parent.path(), Some(uid), Some(gid)).unwrap();
    }
    let cluster = start(ClusterBuilder::new().data_dir_in(parent.path()));
    // The data where asked, the WAL in the cluster's own directory.
    assert_eq!(cluster.data_dir(), parent.path().join("data"));
    let wal = std::fs::read_link(cluster.data_dir().join("pg_wal")).unwrap();
    assert_eq!(wal, cluster.dir().join("wal"));
    cluster
        .create_database("made_here")
        .unwrap_or_else(|e| panic!("{e}"));
    connect(&cluster.url("made_here"));

    let (pid, port) = (cluster.pid(), cluster.port());
    let (dir, data) = (
        cluster.dir().to_path_buf(),
        cluster.data_dir().to_path_buf(),
    );
    drop(cluster);
    assert!(!process_exists(pid), "the postmaster {pid} still runs");
    assert!(!port_accepts(port));
    assert!(!dir.exists(), "{} is left", dir.display());
    assert!(!data.exists(), "{} is left", data.display());
}

#[test]
fn a_standby_refuses_with_57p03_until_promoted() {
    let cluster = start(ClusterBuilder::new().standby());
    let e = refusal(cluster.admin_url());
    assert_eq!(e.code(), Some(&SqlState::CANNOT_CONNECT_NOW), "{e}");
    cluster.promote().unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut client = loop {
        match Client::connect(cluster.admin_url(), NoTls) {
            Ok(client) => break client,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.code(), Some(&SqlState::CANNOT_CONNECT_NOW), "{e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("not promoted after 30 s: {e}"),
        }
    };
    let in_recovery: bool = client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .unwrap()
        .get(0);
    assert!(!in_recovery);
}

#[test]
fn an_unreachable_base_directory_is_explained() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let base = file.path().join("below-a-file");
    let e = ClusterBuilder::new()
        .base_dir(&base)
        .start()
        .map(drop)
        .unwrap_err();
    assert!(
        e.starts_with(&format!(
            "migrations-tests: cannot use {} for a throwaway cluster: ",
            base.display()
        )),
        "{e}"
    );
    assert!(
        e.ends_with("(set MIGRATIONS_TEST_TMPDIR to a writable directory)"),
        "{e}"
    );
    assert!(!Path::new(&base).exists());
}

/// The repository's Rust files, less build output and hidden folders.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// ARCHITECTURE.md's invariant: every throwaway cluster (the harness's, the reliability runs',
/// the benchmarks', a test's own) is made by `tests/src/cluster.rs`; no other Rust file runs
/// the server's tools or looks up the server's user (the last three copies did it each its own
/// way: versions sorted as text, a non-reentrant user lookup).
#[test]
fn only_the_harness_starts_clusters() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let own = root.join("tests").join("src").join("cluster.rs");
    // Spelt in pieces, so that this file does not match itself.
    let forbidden = [
        ["\"init", "db\""].concat(),
        ["\"pg_", "ctl\""].concat(),
        ["getpw", "nam"].concat(),
    ];
    let mut files = Vec::new();
    rust_files(root, &mut files);
    assert!(files.contains(&own), "{} not found", own.display());
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| **f != own)
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let found: Vec<&String> = forbidden.iter().filter(|p| text.contains(*p)).collect();
            (!found.is_empty()).then(|| format!("{}: {found:?}", f.display()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "make these clusters with migrations_tests::ClusterBuilder:\n{}",
        offenders.join("\n")
    );
}
