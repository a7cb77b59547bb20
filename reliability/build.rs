//! Sets `cfg(reliability_as_root)` when the crate is built by root: the disk-full smoke test
//! mounts a tmpfs, which needs root; built by anyone else it is compiled as `#[ignore]`, with
//! the reason and the command that runs it, rather than passing without doing anything.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(reliability_as_root)");
    println!("cargo::rerun-if-changed=build.rs");
    // The effective uid: the third field of `Uid:` in /proc/self/status (Linux; elsewhere the
    // file does not exist and the test is ignored).
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if root {
        println!("cargo::rustc-cfg=reliability_as_root");
    }
}
