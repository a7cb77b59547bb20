//! A service that embeds its migrations (`examples/sync-service`), and the `migrations` CLI,
//! build as single static executables and run alone: `scripts/static-build` builds them with
//! glibc's `+crt-static` into `target/static`, checks them with `ldd` and `file`, and runs each
//! in a chroot holding only the binary against this test's database over TCP (127.0.0.1): the
//! service migrates and exits 0, the CLI reverts and re-applies, and the service reports
//! drift with a `Display` error and exit 1 (docs/static-binary.md).
//!
//! The first run compiles the release build of both binaries (about 3 minutes for the
//! service's dependencies on 2 cores, more for the CLI's); later runs only what changed.

use std::path::Path;
use std::process::Command;

#[test]
fn the_service_and_the_cli_build_static_and_run_alone_in_a_chroot() {
    // The harness's own cluster: it listens on 127.0.0.1, which a static glibc binary reaches
    // without the name service libraries a chroot lacks (a DATABASE_URL naming a host might not).
    let db = migrations_tests::TestDb::on_own_server();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/static-build");
    let out = Command::new(&script)
        .env("DATABASE_URL", db.url())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/static-build failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // Printed so that `--nocapture` shows the sizes and build time.
    println!("{stdout}");
    assert!(stdout.contains("static build: ok"), "{stdout}\n{stderr}");
}
