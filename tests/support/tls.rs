//! A private certificate authority made in the test, as a chain would make its own
//! (docs/protocol.md, "Transport security"): a CA and one server certificate it signed for
//! `localhost` and `127.0.0.1`, written as PEM files for the services' flags.
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};

/// The PEM files of one private CA and the server certificate it issued.
pub struct Pki {
    /// The CA certificate (what `--central-ca` and `sslrootcert` take).
    pub ca: PathBuf,
    /// The server's certificate chain and key (`--tls-cert`, `--tls-key`).
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// A new CA named `name` under `dir/name/`, and a server certificate for
    /// `localhost`/`127.0.0.1` signed by it.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("pki dir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("colmena test CA {name}"));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
        let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("leaf");
        leaf.distinguished_name.push(DnType::CommonName, "localhost");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf_cert = leaf.signed_by(&leaf_key, &ca).expect("sign leaf");
        let pki = Pki {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
        };
        std::fs::write(&pki.ca, ca.pem()).expect("write ca");
        std::fs::write(&pki.cert, leaf_cert.pem()).expect("write cert");
        std::fs::write(&pki.key, leaf_key.serialize_pem()).expect("write key");
        pki
    }

    /// `--tls-cert`/`--tls-key` flag pairs for a service serving this certificate.
    pub fn serve_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.to_string_lossy().into_owned(),
            "--tls-key".into(),
            self.key.to_string_lossy().into_owned(),
        ]
    }

    /// A client that trusts this CA only.
    pub fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca).expect("read ca");
        super::client_builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("ca pem")])
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("tls client")
    }
}
