//! `embed_migrations!` against the run-time loader: the same migrations, the same checksums, bit
//! for bit, whatever the line endings.

use migrations_core::{embed_migrations, Migrations};
use migrations_format::{load_dir, Checksum};
use sha2::{Digest, Sha256};
use std::path::Path;

static DOC: Migrations = embed_migrations!("tests/fixtures/doc");
static LF: Migrations = embed_migrations!("tests/fixtures/variants/lf");
static CRLF: Migrations = embed_migrations!("tests/fixtures/variants/crlf");
static CR: Migrations = embed_migrations!("tests/fixtures/variants/cr");
static BOM_CRLF: Migrations = embed_migrations!("tests/fixtures/variants/bom_crlf");

fn fixture(dir: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
}

#[test]
fn embedded_equals_loaded() {
    let loaded = load_dir(&fixture("doc")).unwrap();
    assert_eq!(DOC.len(), loaded.migrations.len());
    for (e, l) in DOC.iter().zip(&loaded.migrations) {
        assert_eq!(e.version(), l.version.value());
        assert_eq!(e.name(), l.name);
        assert_eq!(e.checksum(), l.up.checksum.to_hex());
        assert_eq!(e.no_transaction(), l.up.no_transaction);
        assert_eq!(e.up().sql(), l.up.text);
        assert_eq!(
            e.down().map(|d| d.checksum().to_owned()),
            l.down.as_ref().map(|d| d.checksum.to_hex())
        );
    }
}

#[test]
fn api_of_spec_3_7() {
    let got: Vec<(i64, &str, bool)> = DOC
        .iter()
        .map(|m| (m.version(), m.name(), m.no_transaction()))
        .collect();
    assert_eq!(got, vec![(1, "a", false), (2, "b", true)]);
    let b = DOC.get(2).unwrap();
    assert!(b.down().is_none());
    // Every file is split at build time: a no-transaction one is sent statement by statement,
    // a transactional one whole (the split says which statement failed).
    assert_eq!(
        b.up().statements().collect::<Vec<_>>(),
        vec!["CREATE INDEX CONCURRENTLY IF NOT EXISTS doc_i ON doc_a (id)"]
    );
    let a = DOC.get(1).unwrap();
    assert_eq!(
        a.up().statements().collect::<Vec<_>>(),
        vec!["CREATE TABLE doc_a (id int)"]
    );
    // Errors name the file as the user wrote the directory, relative to the crate.
    assert_eq!(a.up().path(), "tests/fixtures/doc/1_a.up.sql");
    assert_eq!(a.down().unwrap().path(), "tests/fixtures/doc/1_a.down.sql");
    let loaded = Migrations::from_dir(fixture("doc")).unwrap();
    assert_eq!(
        loaded.get(1).unwrap().up().path(),
        fixture("doc").join("1_a.up.sql").display().to_string()
    );
}

#[test]
fn line_ending_variants_share_one_checksum() {
    let lf_bytes = std::fs::read(fixture("variants/lf/1_a.up.sql")).unwrap();
    let expected = hex(&Sha256::digest(&lf_bytes));
    for (label, set, dir) in [
        ("lf", &LF, "variants/lf"),
        ("crlf", &CRLF, "variants/crlf"),
        ("cr", &CR, "variants/cr"),
        ("bom_crlf", &BOM_CRLF, "variants/bom_crlf"),
    ] {
        let embedded = set.iter().next().unwrap();
        assert_eq!(embedded.checksum(), expected, "{label}: macro");
        let loaded = load_dir(&fixture(dir)).unwrap();
        assert_eq!(
            loaded.migrations[0].up.checksum.to_hex(),
            expected,
            "{label}: loader"
        );
        let raw = std::fs::read_to_string(fixture(dir).join("1_a.up.sql")).unwrap();
        assert_eq!(
            Checksum::of_file_text(&raw).to_hex(),
            expected,
            "{label}: function"
        );
        assert_eq!(
            embedded.up().sql(),
            std::str::from_utf8(&lf_bytes).unwrap(),
            "{label}: text"
        );
    }
    // The fixtures really differ on disk (git must not have normalised them).
    let crlf = std::fs::read(fixture("variants/crlf/1_a.up.sql")).unwrap();
    assert!(
        crlf.windows(2).any(|w| w == b"\r\n"),
        "crlf fixture lost its CRLF"
    );
    let bom = std::fs::read(fixture("variants/bom_crlf/1_a.up.sql")).unwrap();
    assert!(bom.starts_with(b"\xef\xbb\xbf"), "bom fixture lost its BOM");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

static RUN_SETTINGS: Migrations = embed_migrations!("tests/fixtures/run_settings");

#[test]
fn run_settings_are_embedded_like_the_cli_reads_them() {
    let embedded = RUN_SETTINGS.run_defaults();
    let loaded = Migrations::from_dir(fixture("run_settings")).unwrap();
    assert_eq!(embedded, loaded.run_defaults());
    assert_eq!(embedded.schema.as_deref(), Some("ops"));
    assert_eq!(embedded.table.as_deref(), Some("applied"));
    assert_eq!(embedded.search_path.as_deref(), Some("ops, public"));
    assert_eq!(embedded.lock_timeout_ms, Some(2000));
    assert_eq!(
        migrations_core::Migrator::new(&RUN_SETTINGS).lock_key(),
        migrations_core::Names {
            schema: "ops".into(),
            table: "applied".into()
        }
        .lock_key()
    );
}
