//! How `exchange order` finds the venue and its certificate: `--data DIR` and `EXCHANGE_DATA`
//! lead to `DIR/tls/cert.pem`; a wrong or missing certificate is an error naming the file tried
//! and the flags that fix it; a QUIC attempt at an address where nothing answers gives up after
//! `--connect-timeout`, naming the address.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// `exchange order` for one small buy on `v`, with `extra` arguments; `EXCHANGE_DATA` is taken
/// from `env_data` only (never inherited from the test's environment).
fn order(v: &Venue, addr: Option<&str>, extra: &[&str], env_data: Option<&Path>, cwd: &Path) -> Output {
    let quic = v.server().info.quic_addr.to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_exchange"));
    cmd.args(["order", "--account", "carol", "--password", "carol", "--symbol", "BTC-USD"])
        .args(["--side", "buy", "--qty", "1", "--price", "99.00", "--wait-ms", "0"])
        .args(["--addr", addr.unwrap_or(&quic)])
        .args(extra)
        .current_dir(cwd)
        .env_remove("EXCHANGE_DATA");
    if let Some(dir) = env_data {
        cmd.env("EXCHANGE_DATA", dir);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn data_dir_flag_and_environment_find_the_certificate_from_any_directory() {
    let v = venue("connect-data");
    let elsewhere = std::env::temp_dir();
    let data = v.dir.to_str().unwrap();

    let out = order(&v, None, &["--data", data], None, &elsewhere);
    assert_eq!(out.status.code(), Some(0), "--data: {}", stderr(&out));

    let out = order(&v, None, &[], Some(&v.dir), &elsewhere);
    assert_eq!(out.status.code(), Some(0), "EXCHANGE_DATA: {}", stderr(&out));

    // Neither: the default var/tls/cert.pem, which this directory does not have.
    let out = order(&v, None, &[], None, &elsewhere);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains("var/tls/cert.pem") && e.contains("--ca PATH") && e.contains("--data DIR"), "{e}");
}

#[test]
fn a_certificate_from_another_venue_is_named_with_the_fix() {
    let v = venue("connect-wrong-ca");
    let other = venue("connect-other");
    let wrong = other.server().info.cert.clone();
    let out = order(&v, None, &["--ca", wrong.to_str().unwrap()], None, &v.dir);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains("TLS handshake with") && e.contains(&v.server().info.quic_addr.to_string()), "{e}");
    assert!(e.contains(wrong.to_str().unwrap()) && e.contains("(--ca)") && e.contains("--ca PATH"), "{e}");
}

#[test]
fn quic_to_a_silent_address_gives_up_after_the_connect_timeout_naming_it() {
    let v = venue("connect-silent");
    // A UDP socket that never answers: the QUIC handshake gets no reply at all.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let cert = v.server().info.cert.to_str().unwrap().to_owned();
    let out = order(&v, Some(&addr), &["--ca", &cert, "--connect-timeout", "0.5"], None, &v.dir);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains(&format!("no answer from {addr} over QUIC within 500 ms")), "{e}");
    assert!(e.contains("--connect-timeout"), "{e}");
    drop(silent);
}
