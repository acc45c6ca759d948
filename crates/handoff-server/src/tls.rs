//! HTTPS: loads a PEM certificate chain and private key and builds the
//! acceptor the serve loop wraps connections in.
//!
//! Uses rustls with the aws-lc-rs provider, chosen explicitly rather than
//! through the process default, and offers HTTP/2 and HTTP/1.1 by ALPN.
//! It does not do the handshake (the serve loop does, per connection, with
//! a time limit) and does not reload certificates.

use crate::config::TlsFiles;
use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// ALPN protocols offered, most preferred first (RFC 7301).
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file cannot be read.
    #[error("cannot read the tls certificate \"{}\": {error}", .path.display())]
    ReadCert {
        /// The file.
        path: PathBuf,
        /// The IO error.
        error: io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("the tls certificate \"{}\" is not usable: {reason}", .path.display())]
    InvalidCert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file cannot be read.
    #[error("cannot read the tls private key \"{}\": {error}", .path.display())]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// The IO error.
        error: io::Error,
    },
    /// The key file holds no usable PEM private key.
    #[error("the tls private key \"{}\" is not usable: {reason}", .path.display())]
    InvalidKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (for example the key does not match the certificate).
    #[error(
        "the tls certificate \"{}\" and private key \"{}\" cannot be used together: {reason}",
        .cert.display(),
        .key.display()
    )]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls reported.
        reason: String,
    },
}

/// Loads the certificate chain and key named in `files` and builds an
/// acceptor offering `h2` and `http/1.1`.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let certs = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let pair_error = |e: rustls::Error| TlsError::Pair {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: lowercase_first(&e.to_string()),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(pair_error)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(pair_error)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Every `CERTIFICATE` block of a PEM file, leaf first.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|error| TlsError::ReadCert {
        path: path.to_owned(),
        error,
    })?;
    let invalid = |reason: String| TlsError::InvalidCert {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(describe(&e)))?;
    if certs.is_empty() {
        return Err(invalid(
            "no pem certificate found (expected \"-----BEGIN CERTIFICATE-----\")".into(),
        ));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|error| TlsError::ReadKey {
        path: path.to_owned(),
        error,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::InvalidKey {
        path: path.to_owned(),
        reason: match e {
            pem::Error::NoItemsFound => {
                "no pem private key found (expected \"-----BEGIN PRIVATE KEY-----\" or an rsa or ec private key)".into()
            }
            other => describe(&other),
        },
    })
}

/// A PEM error in the style of our messages (the library's shows raw bytes).
fn describe(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "a pem section is not closed (missing \"{}\")",
            String::from_utf8_lossy(end_marker).trim()
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "malformed pem section start \"{}\"",
            String::from_utf8_lossy(line).trim()
        ),
        pem::Error::Base64Decode(reason) => format!("invalid base64 in a pem section: {reason}"),
        pem::Error::Io(e) => e.to_string(),
        pem::Error::NoItemsFound => "no pem items found".into(),
        pem::Error::SectionTooLarge => "a pem section is too large".into(),
        other => lowercase_first(&other.to_string()),
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_valid_pair_builds_an_acceptor_offering_h2_and_http1() {
        let tmp = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let files = TlsFiles {
            cert: write(tmp.path(), "cert.pem", &cert),
            key: write(tmp.path(), "key.pem", &key),
        };
        let acceptor = acceptor(&files).unwrap();
        assert_eq!(
            acceptor.config().alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn a_missing_cert_file_is_named() {
        let err = load_certs(Path::new("/nonexistent/cert.pem")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("cannot read the tls certificate \"/nonexistent/cert.pem\": "),
            "{msg}"
        );
        let err = load_key(Path::new("/nonexistent/key.pem")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read the tls private key \"/nonexistent/key.pem\": "),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_pem_blocks_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let p = write(tmp.path(), "junk.pem", "hello\n");
        let msg = load_certs(&p).unwrap_err().to_string();
        assert!(
            msg.contains("is not usable: no pem certificate found"),
            "{msg}"
        );
        let msg = load_key(&p).unwrap_err().to_string();
        assert!(
            msg.contains("is not usable: no pem private key found"),
            "{msg}"
        );
    }

    #[test]
    fn swapped_files_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let cert_path = write(tmp.path(), "cert.pem", &cert);
        let key_path = write(tmp.path(), "key.pem", &key);
        assert!(matches!(
            load_certs(&key_path),
            Err(TlsError::InvalidCert { .. })
        ));
        assert!(matches!(
            load_key(&cert_path),
            Err(TlsError::InvalidKey { .. })
        ));
    }

    #[test]
    fn corrupt_pem_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let p = write(
            tmp.path(),
            "cert.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n",
        );
        let msg = load_certs(&p).unwrap_err().to_string();
        assert!(msg.starts_with("the tls certificate \""), "{msg}");
    }

    #[test]
    fn a_key_of_another_certificate_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        let files = TlsFiles {
            cert: write(tmp.path(), "cert.pem", &cert),
            key: write(tmp.path(), "key.pem", &other_key),
        };
        let Err(err) = acceptor(&files) else {
            panic!("a mismatched pair was accepted");
        };
        assert!(matches!(err, TlsError::Pair { .. }), "{err:?}");
        assert!(err.to_string().contains("cannot be used together"), "{err}");
    }
}
