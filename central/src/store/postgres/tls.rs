//! TLS towards PostgreSQL, as libpq's `sslmode` and `sslrootcert` URL parameters ask
//! (docs/protocol.md, "Transport security"). tokio-postgres itself knows only
//! `disable|prefer|require` and no root file, so both parameters are taken out of the URL
//! here and turned into a rustls connector:
//!
//! | `sslmode` | encrypted | server verified |
//! |---|---|---|
//! | `disable` | no | — |
//! | `prefer` (the default, as libpq) | if the server offers it | no |
//! | `require` | yes | no; with `sslrootcert`, as `verify-ca` (as libpq) |
//! | `verify-ca` | yes | chain to `sslrootcert` |
//! | `verify-full` | yes | chain to `sslrootcert` and the host name |
//!
//! `verify-ca` and `verify-full` need `sslrootcert=FILE` (a PEM bundle; a managed database's
//! CA, or `/etc/ssl/certs/ca-certificates.crt` for public roots). Handshake signatures are
//! always checked, whatever the mode.
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// What the URL asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTls {
    pub mode: Mode,
    pub root_cert: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL's query string: the URL
/// tokio-postgres should parse, and what TLS to use.
pub fn split_url(url: &str) -> Result<(String, PgTls), String> {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, q),
        None => (url, ""),
    };
    let mut mode = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => {
                mode = Some(match v {
                    "disable" => Mode::Disable,
                    "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                        ))
                    }
                })
            }
            Some(("sslrootcert", v)) if !v.is_empty() => root_cert = Some(PathBuf::from(percent_decode(v)?)),
            _ => kept.push(pair),
        }
    }
    let mode = match (mode, &root_cert) {
        // libpq: `require` with a root certificate verifies the chain.
        (Some(Mode::Require), Some(_)) => Mode::VerifyCa,
        (Some(m), _) => m,
        (None, _) => Mode::Prefer,
    };
    if matches!(mode, Mode::VerifyCa | Mode::VerifyFull) && root_cert.is_none() {
        return Err(
            "sslmode=verify-ca and verify-full need sslrootcert=FILE (the CA that signed the server's certificate)"
                .into(),
        );
    }
    let url = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((url, PgTls { mode, root_cert }))
}

fn percent_decode(v: &str) -> Result<String, String> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = v.get(i + 1..i + 3).ok_or("sslrootcert: bad %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "sslrootcert: bad %-escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "sslrootcert: not UTF-8".to_string())
}

impl PgTls {
    /// The mode tokio-postgres negotiates with (whether TLS is attempted, and required).
    pub fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// The connector for this mode.
    pub fn connector(&self) -> Result<MakeRustlsConnect, String> {
        colmena_shared::tls::install_crypto_provider();
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .ok_or("no TLS crypto provider")?;
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let verifier: Arc<dyn ServerCertVerifier> = match (&self.mode, &self.root_cert) {
            (Mode::VerifyCa | Mode::VerifyFull, Some(path)) => {
                let mut roots = RootCertStore::empty();
                for cert in colmena_shared::tls::read_certs(path).map_err(|e| format!("sslrootcert {e}"))? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                }
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                Arc::new(Verifier {
                    chain: Some(webpki),
                    check_name: self.mode == Mode::VerifyFull,
                    provider,
                })
            }
            _ => Arc::new(Verifier {
                chain: None,
                check_name: false,
                provider,
            }),
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }
}

/// The server check for each mode: none (encryption only), the chain, or the chain and the
/// name. Handshake signatures are verified in every case, so the peer holds the key of the
/// certificate it showed.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_parameters_are_taken_out_of_the_url() {
        let (url, tls) =
            split_url("postgres://u:p@db:5432/c?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem")
                .unwrap();
        assert_eq!(url, "postgres://u:p@db:5432/c?application_name=x");
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/ca.pem")));
    }

    #[test]
    fn the_modes_follow_libpq() {
        let mode = |u: &str| split_url(u).map(|(_, t)| t.mode);
        assert_eq!(mode("postgres://h/d"), Ok(Mode::Prefer));
        assert_eq!(mode("postgres://h/d?sslmode=disable"), Ok(Mode::Disable));
        assert_eq!(mode("postgres://h/d?sslmode=require"), Ok(Mode::Require));
        assert_eq!(
            mode("postgres://h/d?sslmode=require&sslrootcert=ca.pem"),
            Ok(Mode::VerifyCa)
        );
        assert!(mode("postgres://h/d?sslmode=verify-full")
            .unwrap_err()
            .contains("sslrootcert"));
        assert!(mode("postgres://h/d?sslmode=allow-anything")
            .unwrap_err()
            .contains("not one of"));
    }
}
