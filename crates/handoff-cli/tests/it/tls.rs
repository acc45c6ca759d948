//! An HTTPS server with a certificate from a private authority: the CLI
//! trusts it only when given `--ca-cert`.

use crate::support::Server;
use std::path::Path;

/// A private certificate authority and a server certificate it issued for
/// `localhost` and `127.0.0.1`: (CA PEM, server certificate PEM, server key PEM).
fn authority_and_server() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "handoff test authority");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn https_works_with_the_authority_given_by_ca_cert() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = authority_and_server();
    let ca = write(tmp.path(), "ca.pem", &ca);
    let cert = write(tmp.path(), "cert.pem", &cert);
    let key = write(tmp.path(), "key.pem", &key);
    let data_dir = tmp.path().join("data");
    let server = Server::start_https(
        tmp.path(),
        &data_dir,
        &[
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
    );
    assert!(server.addr.starts_with("https://"));

    let me = server
        .cli(&["--ca-cert", &ca, "whoami", "--output", "json"])
        .ok()
        .json();
    assert_eq!(me["role"], "admin");

    let untrusted = server.cli(&["whoami"]);
    untrusted.expect_code(1);
    assert!(
        untrusted.stderr.contains("--ca-cert"),
        "{}",
        untrusted.stderr
    );

    let not_pem = server.cli(&["--ca-cert", &key, "whoami"]);
    assert!(
        not_pem
            .expect_code(1)
            .stderr
            .contains("holds no PEM certificate"),
        "{}",
        not_pem.stderr
    );

    let (status, log) = server.terminate();
    assert!(status.success(), "server exit {status}:\n{log}");
}
