//! A venue that requires client certificates (`[tls] client_ca`): a client with a certificate
//! its CA signed logs on; one with none, or one signed by another CA, is refused in the TLS
//! handshake; plain FIX/TCP is unaffected by the setting.

mod common;

use std::path::Path;

use common::*;
use exchange::serve::TlsConfig;
use fixclient::{ClientTransport, FixClient};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};

/// A CA: its certificate PEM written to `dir/<name>-ca.pem`, and what signs with it.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(dir: &Path, name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{name}-ca.pem")), cert.pem()).unwrap();
    Ca { cert, key }
}

/// Writes `dir/<name>.pem` and `dir/<name>.key`, signed by `ca`, for `names`.
fn leaf(dir: &Path, name: &str, ca: &Ca, names: &[&str], purpose: ExtendedKeyUsagePurpose) {
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.extended_key_usages = vec![purpose];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

#[test]
fn client_certificates_signed_by_the_configured_ca_are_required() {
    let pki = std::env::temp_dir().join(format!("exchange-pki-{}", std::process::id()));
    std::fs::create_dir_all(&pki).unwrap();
    let venue_ca = ca(&pki, "venue");
    let rogue_ca = ca(&pki, "rogue");
    leaf(&pki, "server", &venue_ca, &["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    leaf(&pki, "alice", &venue_ca, &["alice"], ExtendedKeyUsagePurpose::ClientAuth);
    leaf(&pki, "mallory", &rogue_ca, &["alice"], ExtendedKeyUsagePurpose::ClientAuth);

    let v = venue_with("mtls", |c| {
        c.tls = Some(TlsConfig {
            cert: pki.join("server.pem"),
            key: pki.join("server.key"),
            client_ca: Some(pki.join("venue-ca.pem")),
        });
    });
    let with_cert = |cert: Option<&str>| {
        let mut config = v.config("alice", "alice", false);
        config.transport = ClientTransport::Quic {
            ca: pki.join("venue-ca.pem"),
            server_name: "localhost".into(),
            client_cert: cert.map(|n| (pki.join(format!("{n}.pem")), pki.join(format!("{n}.key")))),
            tuning: Default::default(),
        };
        config
    };
    rt().block_on(async {
        for refused in [None, Some("mallory")] {
            let err = FixClient::connect(&with_cert(refused)).await.err();
            assert!(err.is_some(), "{refused:?} must be refused");
        }
        let mut alice = FixClient::connect(&with_cert(Some("alice"))).await.expect("a signed client logs on");
        limit(&mut alice, "a1", engine::Side::Buy, 1, "100.00").await;
        check(&next(&mut alice).await, &[(150, "0")]);
        alice.logout().await.unwrap();
        // The refused handshakes did not hurt the venue; FIX/TCP has no TLS to require it.
        v.login_tcp("bob").await.logout().await.unwrap();
    });

    // The command-line client takes the certificate too.
    let info = &v.server().info;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["order", "--account", "carol", "--password", "carol", "--symbol", "BTC-USD"])
        .args(["--side", "buy", "--qty", "1", "--price", "99.00"])
        .args(["--addr", &info.quic_addr.to_string(), "--ca", pki.join("venue-ca.pem").to_str().unwrap()])
        .args([
            "--cert",
            pki.join("alice.pem").to_str().unwrap(),
            "--key",
            pki.join("alice.key").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&pki);
}
