//! Disk full: a cluster whose data directory lives on a small tmpfs, filled up (by a filler
//! file placed there) so that a migration that inserts a lot of data runs out of space.
//!
//! Needs root (`mount -t tmpfs`); the server runs as `postgres` ([`Cluster`]). The WAL stays
//! off the tmpfs (`initdb --waldir`): PostgreSQL treats a full WAL file system as a PANIC
//! (the server restarts, a fault the server-fault run covers), a full data file system as an
//! error of the statement that needed the space, SQLSTATE 53100 `disk_full`, which is the
//! case here.
//!
//! Each trial, on a fresh database: the filler leaves [`HEADROOM_MB`] free, `migrations up`
//! runs a set whose migration 2 inserts about [`FILL_MB`] (transactional, or the second
//! statement of a no-transaction file, alternately). Expected, each counted by code: exit 1
//! and one clear `error:` line naming the migration and 53100; nothing half-applied
//! (transactional: the history and the state are a clean run's after migration 1;
//! no-transaction: migration 2 recorded `failed`); no lock left; then, with the filler
//! removed, a rerun (`up`, with `repair` first for the failed no-transaction migration)
//! completes and the database equals a clean run. The tmpfs is unmounted at the end, also
//! when a trial fails or panics (a guard's `Drop`).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use migrations_tests::test_db;

use crate::bin::{clear_error_line, named_statement, Cli};
use crate::check::{self, compare, migrations_locks, read_state, rerun, State};
use crate::cluster::{self, server_user, Cluster};
use crate::network::mask_digits;
use crate::{sets, Summary};

/// Settings of a disk-full run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Trials, alternating the transactional and the no-transaction variant.
    pub trials: usize,
    /// Print one line per trial.
    pub verbose: bool,
}

/// Size of the tmpfs (the data directory of a fresh PostgreSQL 15 cluster without its WAL
/// is about 25 MB, each database about 8 MB).
pub const TMPFS_MB: u64 = 128;
/// What migration 2 inserts.
pub const FILL_MB: u32 = 24;
/// Space left free by the filler file: less than [`FILL_MB`], more than the history and audit
/// writes of a failure need.
pub const HEADROOM_MB: u64 = 8;
/// How long the server may take to release a finished runner's lock.
const LOCK_LIMIT: Duration = Duration::from_secs(30);

/// Whether this process may mount a tmpfs (it runs as root).
pub fn can_mount() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs mounted for this run; unmounted (and its mount point removed) when dropped.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `megabytes` on a new directory under the temporary directory, owned
    /// by `owner` (the server's user).
    pub fn mount(megabytes: u64, owner: Option<(u32, u32)>) -> Result<Tmpfs, String> {
        let path = std::env::temp_dir().join(format!(
            "reliability-tmpfs-{}-{}",
            std::process::id(),
            crate::rng::clock_seed()
        ));
        fs::create_dir_all(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={megabytes}m,mode=0755"),
                "tmpfs",
            ])
            .arg(&path)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            let _ = fs::remove_dir(&path);
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let tmpfs = Tmpfs { path };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&tmpfs.path, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", tmpfs.path.display()))?;
        }
        Ok(tmpfs)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes available to unprivileged writers (tmpfs has no reserved blocks, so also to the
    /// server).
    pub fn available(&self) -> Result<u64, String> {
        let c =
            CString::new(self.path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: statvfs fills the struct it is given; the path is a valid C string.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        if rc != 0 {
            return Err(format!("statvfs: {}", std::io::Error::last_os_error()));
        }
        Ok(st.f_bavail as u64 * st.f_frsize as u64)
    }

    fn filler(&self) -> PathBuf {
        self.path.join("filler")
    }

    /// Places a filler file that leaves `leave` bytes free (really allocated: tmpfs does not
    /// count a sparse file's holes).
    pub fn fill(&self, leave: u64) -> Result<u64, String> {
        self.unfill()?;
        let size = self.available()?.saturating_sub(leave);
        let file = fs::File::create(self.filler()).map_err(|e| format!("filler: {e}"))?;
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; posix_fallocate allocates the range.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, size as libc::off_t) };
        if rc != 0 {
            return Err(format!(
                "posix_fallocate of {size} bytes: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        Ok(size)
    }

    /// Removes the filler file (frees the space).
    pub fn unfill(&self) -> Result<(), String> {
        match fs::remove_file(self.filler()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("removing the filler: {e}")),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // The server was stopped before (the cluster is dropped first); a lazy unmount as a
        // last resort, so a mount is never left behind.
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "umount {} failed; unmounting lazily (umount -l)",
                self.path.display()
            );
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
        let _ = fs::remove_dir(&self.path);
    }
}

/// Per variant: what held, counted.
#[derive(Debug, Default)]
struct Tally {
    trials: usize,
    clear: usize,
    consistent: usize,
    lock_released: usize,
    rerun_ok: usize,
    repairs: usize,
}

/// Runs the trials and returns what was found. Fails (as an inconsistency) when not root.
pub fn run(bin: &Path, options: &Options) -> Summary {
    let mut summary = Summary::new("disk full (data directory on a small tmpfs)");
    if !can_mount() {
        summary.fail("disk-full needs root to mount a tmpfs".to_owned());
        return summary;
    }
    let owner = match server_user() {
        Ok(o) => o,
        Err(e) => {
            summary.fail(e);
            return summary;
        }
    };
    // Declared before the cluster, so dropped after it: the server stops, then the unmount.
    let tmpfs = match Tmpfs::mount(TMPFS_MB, owner) {
        Ok(t) => t,
        Err(e) => {
            summary.fail(e);
            return summary;
        }
    };
    let cluster = match cluster::start_in(tmpfs.path()) {
        Ok(c) => c,
        Err(e) => {
            summary.fail(format!("could not start a cluster on the tmpfs: {e}"));
            return summary;
        }
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let mut variants = Vec::new();
    for no_transaction in [false, true] {
        let dir = work.path().join(if no_transaction { "notx" } else { "tx" });
        let set = sets::disk_set(FILL_MB, no_transaction);
        sets::write(&dir, &set);
        // References on the harness's server: the tmpfs has no room for them.
        let reference = test_db();
        match check::references(bin, reference.url(), &dir, &set) {
            Ok(r) => variants.push((no_transaction, dir, r)),
            Err(e) => {
                summary.fail(e);
                return summary;
            }
        }
    }
    if let Err(e) = cluster
        .create_database("probe")
        .and_then(|()| check::connect(&cluster.url("postgres")))
        .and_then(|mut admin| check::prove_lock_query(&cluster.url("probe"), &mut admin, "probe"))
    {
        summary.fail(e);
        return summary;
    }
    let _ = check::connect(&cluster.url("postgres")).and_then(|mut a| {
        a.batch_execute("DROP DATABASE probe")
            .map_err(|e| e.to_string())
    });

    let started = Instant::now();
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut lines = BTreeMap::new();
    for trial in 1..=options.trials {
        let (no_transaction, dir, references) = &variants[(trial - 1) % 2];
        let kind = if *no_transaction {
            "no-transaction"
        } else {
            "transactional"
        };
        let tally = tallies.entry(kind).or_default();
        tally.trials += 1;
        let label = format!("trial {trial} ({kind} migration 2)");
        let db = format!("disk_{trial}");
        match one_trial(
            bin,
            &tmpfs,
            &cluster,
            &db,
            dir,
            references,
            *no_transaction,
            tally,
        ) {
            Ok(line) => {
                if options.verbose {
                    println!("{label}: ok: {line}");
                }
                *lines.entry(format!("{kind}: {line}")).or_insert(0usize) += 1;
            }
            Err(problems) => {
                for p in problems {
                    summary.fail(format!("{label}: {p}"));
                }
            }
        }
        // Free the space for the next trial, whatever happened.
        let _ = tmpfs.unfill();
        if let Ok(mut admin) = check::connect(&cluster.url("postgres")) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"));
        }
    }
    summary.figure(
        "tmpfs",
        format!("{TMPFS_MB} MB, data directory only (WAL elsewhere)"),
    );
    summary.figure(
        "migration 2 inserts",
        format!("about {FILL_MB} MB, with {HEADROOM_MB} MB left free by the filler"),
    );
    for (kind, t) in &tallies {
        summary.figure(&format!("{kind}: trials"), t.trials);
        summary.figure(
            &format!("{kind}: exit 1, one clear line naming the migration and 53100"),
            t.clear,
        );
        summary.figure(&format!("{kind}: nothing half-applied"), t.consistent);
        summary.figure(&format!("{kind}: lock released"), t.lock_released);
        summary.figure(
            &format!("{kind}: rerun after freeing the space completed, state = clean run"),
            t.rerun_ok,
        );
        summary.figure(&format!("{kind}: reruns that needed repair"), t.repairs);
    }
    for (line, n) in &lines {
        summary.figure("error line", format!("{line} (×{n})"));
    }
    summary.figure(
        "wall time",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    );
    drop(cluster);
    drop(tmpfs);
    summary
}

#[allow(clippy::too_many_arguments)]
fn one_trial(
    bin: &Path,
    tmpfs: &Tmpfs,
    cluster: &Cluster,
    db: &str,
    dir: &Path,
    references: &[State],
    no_transaction: bool,
    tally: &mut Tally,
) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    tmpfs.unfill().map_err(|e| vec![e])?;
    cluster.create_database(db).map_err(|e| vec![e])?;
    let url = cluster.url(db);
    tmpfs.fill(HEADROOM_MB << 20).map_err(|e| vec![e])?;
    let cli = Cli::new(bin, &url, dir);
    let up = cli.run(&["up"]);
    let mut line = String::new();
    match clear_error_line(&up, Some(2), &["bulk_rows", "53100"]) {
        Ok(l) => {
            // The INSERT that ran out of space is statement 2 of the file, in both variants.
            match named_statement(&l) {
                Some(n) if n != 2 => problems.push(format!(
                    "the error names statement {n}, but the INSERT is statement 2: {l}"
                )),
                _ => tally.clear += 1,
            }
            line = mask_digits(&l.replace(&dir.display().to_string(), "<dir>"));
        }
        Err(e) => problems.push(e),
    }
    let mut admin = check::connect(&cluster.url("postgres")).map_err(|e| vec![e])?;
    match check::wait_lock_released(&mut admin, db, LOCK_LIMIT) {
        Ok(_) => tally.lock_released += 1,
        Err(e) => problems.push(e),
    }
    // Nothing half-applied.
    match read_state(&url) {
        Ok(state) if no_transaction => {
            let expected = [(1, "applied".to_owned()), (2, "failed".to_owned())];
            if state.history == expected {
                tally.consistent += 1;
            } else {
                problems.push(format!(
                    "after the failure the history is {:?}, expected {expected:?}",
                    state.history
                ));
            }
        }
        Ok(state) => {
            let d = compare(&references[1], &state);
            if d.is_empty() {
                tally.consistent += 1;
            }
            problems.extend(d.into_iter().map(|p| format!("half-applied: {p}")));
        }
        Err(e) => problems.push(e),
    }
    // Space freed: the rerun completes.
    tmpfs.unfill().map_err(|e| vec![e])?;
    match rerun(&cli, &["up"], &url) {
        Ok(r) => {
            tally.repairs += r.repairs;
            match read_state(&url) {
                Ok(state) => {
                    let d = compare(references.last().expect("non-empty"), &state);
                    if d.is_empty() {
                        tally.rerun_ok += 1;
                    }
                    problems.extend(d.into_iter().map(|p| format!("after the rerun: {p}")));
                }
                Err(e) => problems.push(e),
            }
        }
        Err(e) => problems.push(e),
    }
    match migrations_locks(&mut admin, db) {
        Ok(0) => {}
        Ok(n) => problems.push(format!("{n} lock row(s) left after the rerun")),
        Err(e) => problems.push(e),
    }
    if problems.is_empty() {
        Ok(line)
    } else {
        Err(problems)
    }
}
