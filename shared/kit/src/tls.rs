//! TLS for both services, with rustls and its `ring` provider (docs/protocol.md, "Transport
//! security").
//!
//! - Serving: `--tls-cert FILE --tls-key FILE` (PEM). The certificate is held by a
//!   [`ReloadingCert`] resolver, so `SIGHUP` swaps in renewed files without a restart; a
//!   reload that fails keeps the certificate in use and says why in the log.
//! - Calling: [`tls_cause`] finds the TLS reason in a client error's chain, so the relay can
//!   count `kind="tls"` and log the cause instead of a vague "connect".
//! - [`install_crypto_provider`] runs first in every `Application::build`: reqwest and
//!   tokio-postgres-rustls take the process-wide provider, and there is exactly one (`ring`),
//!   so no C toolchain beyond `cc` is needed and nothing depends on OpenSSL.
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

/// Why a certificate, key or CA file could not be used. The text names the file and never
/// contains key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("--tls-cert and --tls-key go together: give both or neither")]
    HalfConfigured,
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The serving flags, shared by both services' command lines.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, leaf first). Needs `--tls-key`.
    /// `SIGHUP` reloads both files.
    #[arg(long, env = "COLMENA_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "COLMENA_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// `Ok(None)` for plain HTTP, the loaded resolver for HTTPS.
    pub fn load(&self) -> Result<Option<Arc<ReloadingCert>>, TlsError> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(Arc::new(ReloadingCert::load(cert, key)?))),
            _ => Err(TlsError::HalfConfigured),
        }
    }
}

/// Installs `ring` as the process's rustls provider. Idempotent: several services in one
/// process (the tests) all call it.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    install_crypto_provider();
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Every certificate in a PEM file; an empty file is an error (a CA bundle or chain that
/// holds nothing is a mistake, not "trust nothing").
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    let signing = provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| file_error(key, e))?;
    let certified = CertifiedKey::new(chain, signing);
    // A key that does not belong to the certificate would fail every handshake later.
    certified
        .keys_match()
        .map_err(|e| file_error(key, format!("does not match {}: {e}", cert.display())))?;
    Ok(certified)
}

/// The serving certificate, swappable while the server runs.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCert {
    pub fn load(cert: &Path, key: &Path) -> Result<ReloadingCert, TlsError> {
        Ok(ReloadingCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(certified_key(cert, key)?)),
        })
    }

    /// Re-reads both files; on error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(certified_key(&self.cert, &self.key)?);
        match self.current.write() {
            Ok(mut slot) => *slot = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// A rustls server configuration answering with this certificate (HTTP/2 and 1.1).
    pub fn server_config(self: &Arc<Self>) -> rustls::ServerConfig {
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            // The ring provider supports the default versions; this cannot fail with it.
            .unwrap_or_else(|_| rustls::ServerConfig::builder())
            .with_no_client_auth()
            .with_cert_resolver(self.clone())
    }

    /// Reloads on every `SIGHUP` until `cancel`.
    pub async fn reload_on_sighup(self: Arc<Self>, cancel: CancellationToken) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: TLS certificates reload only on restart");
            return;
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                got = hangups.recv() => {
                    if got.is_none() { return; }
                    match self.reload() {
                        Ok(()) => tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "TLS certificate NOT reloaded; still serving the previous one"),
                    }
                }
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let slot = match self.current.read() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(slot.clone())
    }
}

/// The TLS reason behind a client error, if TLS is what failed: a certificate that does not
/// verify, a handshake the peer aborted, or plain HTTP answering a TLS hello. Walks the
/// error's `source()` chain, looking through `io::Error` wrappers.
pub fn tls_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // `io::Error::source()` skips the error it wraps (its Display shows it), and the
        // connectors nest them (`Other` around `InvalidData` around the rustls error): look
        // inside instead.
        next = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_missing_file_is_refused_with_its_name() {
        let dir = tempfile_dir();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = read_certs(&empty).unwrap_err().to_string();
        assert!(err.contains("empty.pem") && err.contains("no PEM certificate"), "{err}");
        let err = read_certs(&dir.join("absent.pem")).unwrap_err().to_string();
        assert!(err.contains("absent.pem"), "{err}");
    }

    #[test]
    fn a_certificate_without_its_key_is_a_configuration_error() {
        let args = TlsArgs {
            tls_cert: Some("c.pem".into()),
            tls_key: None,
        };
        assert!(matches!(args.load(), Err(TlsError::HalfConfigured)));
        assert!(matches!(TlsArgs::default().load(), Ok(None)));
    }

    #[test]
    fn a_tls_error_is_found_behind_io_wrappers() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        let io = std::io::Error::other(io);
        let cause = tls_cause(&io).expect("found");
        assert!(
            cause.contains("UnknownIssuer") || cause.contains("unknown issuer"),
            "{cause}"
        );
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(tls_cause(&plain), None);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("colmena-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
