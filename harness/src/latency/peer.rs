//! A peer FIX engine beside our venue: the QuickFIX acceptor that
//! `benches/peers/quickfix/build.sh` builds (`target/quickfix-acceptor` and its settings
//! `target/quickfix-acceptor.cfg`), started by the harness on a loopback port and driven by the
//! same client and schedule as the venue (`exchange bench e2e --transport tcp --peer quickfix`).
//!
//! The acceptor acknowledges every NewOrderSingle with an ExecutionReport 150=0 and every
//! OrderCancelRequest with 150=4, as QuickFIX's executor example does: no risk checks, no
//! book, no journal. Our venue does all three, so the ratio of the two is an upper bound of
//! what the FIX layers alone cost.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use clap::ValueEnum;

use super::BenchError;

/// A peer FIX engine the harness can drive beside the venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PeerArg {
    /// QuickFIX (C++, Debian's libquickfix-dev): `benches/peers/quickfix/build.sh`.
    Quickfix,
}

/// A running peer acceptor, stopped (stdin closed, then killed) when dropped.
pub struct PeerAcceptor {
    child: Child,
    /// Where it accepts FIX over TCP.
    pub addr: SocketAddr,
}

/// The settings file beside the acceptor binary `bin`: `BIN.cfg`.
pub fn settings_path(bin: &Path) -> PathBuf {
    let mut name = bin.as_os_str().to_owned();
    name.push(".cfg");
    PathBuf::from(name)
}

impl PeerAcceptor {
    /// Starts the QuickFIX acceptor `bin` with its settings `BIN.cfg` on a free loopback port
    /// and waits until it says it listens.
    pub fn start_quickfix(bin: &Path) -> Result<PeerAcceptor, BenchError> {
        let settings = settings_path(bin);
        if !bin.exists() || !settings.exists() {
            return Err(BenchError::Config(format!(
                "{} or {} is missing: run benches/peers/quickfix/build.sh first",
                bin.display(),
                settings.display()
            )));
        }
        // QuickFIX cannot report a port the OS chose, so take one from the OS and hand it over;
        // another process could take it in between, which would show as a failed start.
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").map_err(|e| BenchError::io("pick a port", e))?;
            probe.local_addr().map_err(|e| BenchError::io("pick a port", e))?.port()
        };
        let mut child = Command::new(bin)
            .arg(&settings)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| BenchError::io("start the QuickFIX acceptor", e))?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let peer = PeerAcceptor { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) };
        match read {
            Ok(_) if line.starts_with("listening on") => Ok(peer),
            Ok(_) => Err(BenchError::Thread(format!("the QuickFIX acceptor did not start (said {line:?})"))),
            Err(e) => Err(BenchError::io("read the QuickFIX acceptor's start line", e)),
        }
    }

    /// The acceptor's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PeerAcceptor {
    fn drop(&mut self) {
        // Closing stdin asks it to stop; kill in case it does not.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
