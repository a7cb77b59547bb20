//! CLI manners (issue 17 items 4 and 6): each command lists only the flags it uses, and one
//! spelling everywhere (versions as the file writes them for people, numbers and RFC 3339 times
//! in JSON).

use migrations_tests::test_db;
use serde_json::Value;

use crate::common::Project;

/// The flags a command's help lists, as `--name` words.
fn flags_in_help(p: &Project, command: &[&str]) -> Vec<String> {
    let mut args = command.to_vec();
    args.push("--help");
    let run = p.run(&args);
    assert_eq!(run.code, 0, "{command:?}: {}", run.stderr);
    run.stdout
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches(',').to_owned())
        .collect()
}

/// `init` and `new` never connect: their help shows no connection flag. The commands that
/// connect show them all, under "Connection".
#[test]
fn connection_flags_show_only_where_they_are_used() {
    let p = Project::new(&[("1_a.up.sql", "SELECT 1;\n")]);
    let connection = [
        "--database-url",
        "--schema",
        "--table",
        "--search-path",
        "--lock-timeout",
        "--statement-timeout",
        "--lock-wait",
        "--connect-timeout",
    ];
    for command in [&["init"][..], &["new"], &["lint"], &["completions"]] {
        let shown = flags_in_help(&p, command);
        for flag in connection {
            assert!(!shown.iter().any(|s| s == flag), "{command:?} lists {flag}");
        }
        assert!(shown.iter().any(|s| s == "--dir"), "{command:?}: {shown:?}");
    }
    for command in [
        &["up"][..],
        &["down"],
        &["status"],
        &["history"],
        &["baseline"],
        &["repair"],
        &["sql"],
        &["test"],
        &["verify"],
    ] {
        let shown = flags_in_help(&p, command);
        for flag in connection {
            assert!(shown.iter().any(|s| s == flag), "{command:?} lacks {flag}");
        }
    }
    let up = p.run(&["up", "--help"]);
    assert!(up.stdout.contains("\nConnection:\n"), "{}", up.stdout);
    // Given to a command that does not connect, a connection flag is a usage error (exit 2)
    // that names it.
    let refused = p.run(&["new", "x", "--database-url", "postgres://localhost/db"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .starts_with("error: unexpected argument '--database-url' found"),
        "{}",
        refused.stderr
    );
}

/// The connection flags are still taken before the command, as every earlier version took
/// them; given on both sides, the one after the command wins.
#[test]
fn connection_flags_before_the_command_still_work() {
    let db = test_db();
    let p = Project::new(&[("1_a.up.sql", "CREATE TABLE a ();\n")]);
    let url = db.url();
    p.run(&["--database-url", url, "--table", "before_h", "up"])
        .expect(0);
    let status = p.run(&[
        "--table",
        "before_h",
        "--format",
        "json",
        "status",
        "--database-url",
        url,
    ]);
    status.expect(0);
    let doc: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["migrations"][0]["status"], "applied", "{doc}");
    // After the command wins: a history table of another name has nothing applied.
    let other = p.run(&[
        "--table",
        "before_h",
        "--format",
        "json",
        "status",
        "--table",
        "after_h",
        "--database-url",
        url,
    ]);
    other.expect(0);
    let doc: Value = serde_json::from_str(&other.stdout).unwrap();
    assert_eq!(doc["migrations"][0]["status"], "pending", "{doc}");
}
