//! TLS through rustls with libpq's `sslmode` semantics: the root certificates, the certificate
//! verifiers (`verify-full` is rustls's WebPKI verifier; `verify-ca` checks the chain through
//! rustls's public verification API and nothing else; `prefer`/`require` without roots check
//! nothing but the handshake's signatures), and a connector that records how far an attempt's
//! handshake got, so that failures are classified by what happened rather than by their text.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{ConnectError, ConnectErrorKind, SslMode};

/// Where the root certificates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RootCerts {
    /// `sslrootcert=<file>`.
    File(PathBuf),
    /// `~/.postgresql/root.crt`, which exists.
    DefaultFile(PathBuf),
    /// `sslrootcert=system`.
    System,
    /// Nothing given.
    Unset,
}

impl RootCerts {
    /// How to name them in a message.
    pub(super) fn describe(&self) -> String {
        match self {
            RootCerts::File(p) | RootCerts::DefaultFile(p) => {
                format!("the CA in \"{}\"", p.display())
            }
            RootCerts::System | RootCerts::Unset => "the platform's trusted CAs".to_string(),
        }
    }
}

/// The rustls connector for `mode` and the root certificates.
pub(super) fn connector(
    mode: SslMode,
    root_certs: &RootCerts,
) -> Result<MakeRustlsConnect, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = |required: bool| -> Result<Option<Arc<RootCertStore>>, ConnectError> {
        Ok(match root_certs {
            RootCerts::File(path) | RootCerts::DefaultFile(path) => {
                Some(Arc::new(load_root_file(path)?))
            }
            RootCerts::System => Some(Arc::new(system_roots())),
            RootCerts::Unset if required => Some(Arc::new(system_roots())),
            RootCerts::Unset => None,
        })
    };
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        // `prefer`/`require` check the chain when roots are given, as libpq does.
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(ChainOnly {
            roots: if mode == SslMode::Disable {
                None
            } else {
                roots(false)?
            },
            provider: provider.clone(),
        }),
        SslMode::VerifyCa => Arc::new(ChainOnly {
            roots: roots(true)?,
            provider: provider.clone(),
        }),
        SslMode::VerifyFull => {
            let roots = roots(true)?.unwrap_or_else(|| Arc::new(RootCertStore::empty()));
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| {
                    ConnectError::new(
                        ConnectErrorKind::Tls,
                        format!("TLS setup failed: no usable root certificate ({e})"),
                    )
                })?
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::new(ConnectErrorKind::Tls, format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn load_root_file(path: &Path) -> Result<RootCertStore, ConnectError> {
    let unreadable = |reason: String| {
        ConnectError::config(format!(
            "could not use the root certificate file \"{}\" (sslrootcert): {reason}",
            path.display()
        ))
    };
    let pem_error = |e: rustls::pki_types::pem::Error| match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("{other:?}"),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(pem_error(e)))?;
    if certs.is_empty() {
        return Err(unreadable("it holds no PEM certificate".to_string()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| unreadable(format!("a certificate is invalid: {e}")))?;
    }
    Ok(roots)
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        log::debug!("loading the platform's root certificates: {e}");
    }
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        log::debug!("the platform has no root certificates: using the Mozilla roots");
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// `sslmode=verify-ca` (and `prefer`/`require` with roots): the certificate chain is checked
/// against the roots with rustls's own chain verification, and the host name is not looked at.
/// Without roots (`prefer`/`require` with nothing given): nothing is checked but the
/// handshake's signatures, which prove the server holds the certificate's key.
#[derive(Debug)]
struct ChainOnly {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What to say about a rustls error of a connection to `host` (empty for a Unix socket) with
/// `roots`.
pub(super) fn reason(error: &rustls::Error, host: &str, roots: &RootCerts) -> String {
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the server certificate is not valid for host name \"{host}\": connect with a \
             name the certificate lists, or use sslmode=verify-ca"
        ),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the server certificate is not signed by {}: set sslrootcert to the CA that \
             signed it",
            roots.describe()
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server certificate has expired".to_string(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "the server certificate is not valid yet (check the clocks)".to_string(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// How far TLS got
// ---------------------------------------------------------------------------------------

/// How far TLS got in one attempt, as seen by the connector (see [`ObservedTls`]).
#[derive(Default)]
pub(super) struct TlsProgress {
    /// The server agreed to TLS: tokio_postgres called the connector.
    started: AtomicBool,
    /// The handshake completed.
    finished: AtomicBool,
}

impl TlsProgress {
    pub(super) fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    pub(super) fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }
}

/// The rustls connector, recording the attempt's [`TlsProgress`]: tokio_postgres reports "the
/// server does not support TLS" and a broken handshake only as text, while whether the
/// connector was called, and whether its handshake finished, tells them apart for sure.
#[derive(Clone)]
pub(super) struct ObservedTls {
    pub(super) inner: MakeRustlsConnect,
    pub(super) progress: Arc<TlsProgress>,
}

type RustlsConnect = <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect;

impl MakeTlsConnect<Socket> for ObservedTls {
    type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
    type TlsConnect = ObservedConnect<RustlsConnect>;
    type Error = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        Ok(ObservedConnect {
            inner: MakeTlsConnect::<Socket>::make_tls_connect(&mut self.inner, domain)?,
            progress: self.progress.clone(),
        })
    }
}

/// One host's TLS connector, recording the attempt's [`TlsProgress`].
pub(super) struct ObservedConnect<T> {
    inner: T,
    progress: Arc<TlsProgress>,
}

impl<T: TlsConnect<Socket>> TlsConnect<Socket> for ObservedConnect<T> {
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = ObservedHandshake<T::Future>;

    fn connect(self, stream: Socket) -> Self::Future {
        self.progress.started.store(true, Ordering::SeqCst);
        ObservedHandshake {
            inner: Box::pin(self.inner.connect(stream)),
            progress: self.progress,
        }
    }
}

/// A TLS handshake that records its success in the attempt's [`TlsProgress`].
pub(super) struct ObservedHandshake<F> {
    inner: Pin<Box<F>>,
    progress: Arc<TlsProgress>,
}

impl<F: Future<Output = Result<S, E>>, S, E> Future for ObservedHandshake<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = self.inner.as_mut().poll(cx);
        if let Poll::Ready(Ok(_)) = &result {
            self.progress.finished.store(true, Ordering::SeqCst);
        }
        result
    }
}
