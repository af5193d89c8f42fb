//! The configurations a user is shown actually run: `serve --print-config` and the README's
//! sample, and a placeholder `password_hash` is refused at start-up naming the account.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use exchange::serve::{ServeConfig, Server};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("exchange-cfg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The listening addresses on OS-chosen ports: tests run next to other venues on the machine, so
/// the one line each sample must change is its ports.
fn loopback_any_port(toml: &str) -> String {
    toml.replace("127.0.0.1:9878", "127.0.0.1:0")
        .replace("127.0.0.1:9877", "127.0.0.1:0")
        .replace("127.0.0.1:9880", "127.0.0.1:0")
        .replace("127.0.0.1:9879", "127.0.0.1:0")
}

/// The ```toml block of README.md that follows `marker`.
fn readme_toml(marker: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let after = &readme[readme.find(marker).expect("README marker")..];
    let start = after.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = after[start..].find("```").unwrap();
    after[start..start + end].to_owned()
}

#[test]
fn printed_config_runs_unchanged_with_serve() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_exchange")).args(["serve", "--print-config"]).output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("[[accounts]]") && printed.contains("comp_id = \"EXCHANGE\""), "{printed}");

    let dir = TempDir::new("print");
    let path = dir.0.join("venue.toml");
    std::fs::write(&path, loopback_any_port(&printed)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["serve", "--config", path.to_str().unwrap(), "--data", dir.0.join("data").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let ready = line.starts_with("ready");
        lines.push(line);
        if ready || Instant::now() > deadline {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines.iter().any(|l| l.starts_with("ready")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("fix/quic: 127.0.0.1:")), "{lines:?}");
    // The exact flag clients need, as an absolute path that exists.
    let data = std::path::absolute(dir.0.join("data")).unwrap();
    let ca = data.join("tls").join("cert.pem");
    let expected = format!("clients: --ca {}   (or --data {})", ca.display(), data.display());
    assert!(lines.contains(&expected), "{expected:?} in {lines:?}");
    assert!(ca.exists());
}

#[test]
fn readme_sample_config_runs_and_its_password_hash_logs_on() {
    let text = loopback_any_port(&readme_toml("Every field of the TOML configuration is optional"));
    let mut config = ServeConfig::from_toml(&text, "README.md").expect("the README's sample parses");
    let dir = TempDir::new("readme");
    // The sample pins the engine's thread to core 1, which a 1-core machine does not have.
    if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
        config.engine.pin_core = None;
    }
    let server = Server::start(&config, Some(&dir.0)).expect("the README's sample starts");
    let mut v = Venue { server: Some(server), dir: dir.0.clone(), serve_config: config };
    let rt = rt();
    rt.block_on(async {
        // The sample's hash is of "alice": the logon proves it is a usable hash, not a placeholder.
        let client = fixclient::FixClient::connect(&v.config("alice", "alice", false)).await;
        assert!(client.is_ok(), "alice logs on with the README's hash: {:?}", client.err());
    });
    v.server.take().unwrap().stop();
}

#[test]
fn an_unparseable_password_hash_is_a_start_up_error_naming_the_account() {
    let text = loopback_any_port(
        r#"
[[accounts]]
name = "alice"
password = "alice"

[[accounts]]
name = "carol"
password_hash = "$argon2id$v=19$..."
"#,
    );
    let config = ServeConfig::from_toml(&text, "test").unwrap();
    let dir = TempDir::new("badhash");
    let e = Server::start(&config, Some(&dir.0)).expect_err("a placeholder hash is refused").to_string();
    assert!(e.contains("account carol") && e.contains("password_hash"), "{e}");
}
