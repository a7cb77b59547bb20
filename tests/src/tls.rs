//! TLS on a throwaway cluster: certificates made in-process with `rcgen` (no `openssl`
//! command needed), written where the server reads them, and `ssl = on` reloaded. Used by
//! every test that connects with `sslmode`, so none depends on what the machine has.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::Cluster;

/// The files a TLS client test needs; the server side is configured already.
#[derive(Debug)]
pub struct TestTls {
    /// The CA that signed the server's certificate (valid for `localhost` only, not for
    /// `127.0.0.1`, so `verify-full` can be tested both ways).
    pub ca: PathBuf,
    /// Another CA, which signed nothing the server shows.
    pub wrong_ca: PathBuf,
    _dir: tempfile::TempDir,
}

fn make_ca(name: &str) -> Result<(rcgen::Certificate, KeyPair), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok((params.self_signed(&key)?, key))
}

impl Cluster {
    /// Switches TLS on in this cluster (once per process; later calls return the same files).
    /// Plain connections keep working. Panics, with the server log's path, if TLS does not
    /// come up.
    pub fn tls(&self) -> &TestTls {
        self.tls.get_or_init(|| {
            crate::off_runtime(|| enable_tls(self)).unwrap_or_else(|e| {
                panic!(
                    "migrations-tests: could not switch TLS on: {e}; see the server log {}",
                    self.log_file().display()
                )
            })
        })
    }

    /// Writes a file the server reads (atomically, owned by the server's user, with `mode`):
    /// certificates, keys, `pg_hba.conf`.
    pub fn replace_file(&self, path: &Path, contents: &[u8], mode: u32) {
        let write = || -> std::io::Result<()> {
            let owner = fs::metadata(self.data_dir())?;
            let tmp = path.with_extension("tmp-migrations-tests");
            fs::write(&tmp, contents)?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
            if fs::metadata(&tmp)?.uid() != owner.uid() {
                std::os::unix::fs::chown(&tmp, Some(owner.uid()), Some(owner.gid()))?;
            }
            fs::rename(&tmp, path)
        };
        write().unwrap_or_else(|e| panic!("migrations-tests: writing {}: {e}", path.display()));
    }
}

fn enable_tls(server: &Cluster) -> Result<TestTls, String> {
    let (ca, ca_key) = make_ca("migrations test CA").map_err(|e| e.to_string())?;
    let (wrong_ca, _) = make_ca("some other CA").map_err(|e| e.to_string())?;
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .map_err(|e| e.to_string())?;

    let cert_file = server.dir().join("test-server.crt");
    let key_file = server.dir().join("test-server.key");
    server.replace_file(&cert_file, cert.pem().as_bytes(), 0o644);
    server.replace_file(&key_file, key.serialize_pem().as_bytes(), 0o600);

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca_file = dir.path().join("ca.pem");
    let wrong_ca_file = dir.path().join("wrong-ca.pem");
    fs::write(&ca_file, ca.pem()).map_err(|e| e.to_string())?;
    fs::write(&wrong_ca_file, wrong_ca.pem()).map_err(|e| e.to_string())?;

    let mut admin = postgres::Client::connect(server.admin_url(), postgres::NoTls)
        .map_err(|e| e.to_string())?;
    // One statement at a time: ALTER SYSTEM refuses a (implicit) transaction block.
    for sql in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert_file.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", key_file.display()),
        "ALTER SYSTEM SET ssl = on".to_string(),
        "SELECT pg_reload_conf()".to_string(),
    ] {
        admin.batch_execute(&sql).map_err(|e| e.to_string())?;
    }
    // The postmaster reloads asynchronously: a new session sees `ssl = on` once it has.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut probe = postgres::Client::connect(server.admin_url(), postgres::NoTls)
            .map_err(|e| e.to_string())?;
        let on: String = probe
            .query_one("SHOW ssl", &[])
            .map_err(|e| e.to_string())?
            .get(0);
        if on == "on" {
            break;
        }
        if Instant::now() > deadline {
            return Err("ssl is still off 20 s after the reload".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(TestTls {
        ca: ca_file,
        wrong_ca: wrong_ca_file,
        _dir: dir,
    })
}
