//! A journal that cannot be written stops the venue: the real `exchange serve`, its data
//! directory's journal removed under it, gets orders until the journal needs its next segment
//! file. The engine must stop (no order acknowledged without its journal record), and the
//! process must exit non-zero with a message that says the journal failed and why, instead of a
//! line on stderr and a venue that silently stops answering.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::ServeProcess;
use engine::Side;
use fixclient::{new_order_fields, ClientConfig, ClientTransport, FixClient};
use gateway::server::now_ns;

fn serve(dir: &Path, config: &Path) -> ServeProcess {
    ServeProcess::start(dir, config, Stdio::piped())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("exchange-journal-fail-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_journal_that_cannot_be_written_stops_the_venue_with_the_reason() {
    journal_gone("gone", "", "");
}

/// The same when the router writes the command journal before the engine thread's ring.
#[test]
fn a_command_journal_the_router_cannot_write_stops_the_venue_with_the_reason() {
    journal_gone("gone-router", "thread = \"own\"\n", "events = \"derived\"\ncommands = \"router\"\n");
}

fn journal_gone(name: &str, engine: &str, journal: &str) {
    let dir = scratch(name);
    let config = dir.join("venue.toml");
    // 1 MiB segments: the journal needs a new segment file after some thousand orders.
    std::fs::write(
        &config,
        format!(
            "[network]\nquic = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\nhttp = \"\"\nmd = \"\"\n\n[engine]\n{engine}\n\
             [journal]\nsegment_mib = 1\n{journal}\n[rate_limit]\nenabled = false\n\n\
             [[accounts]]\nname = \"alice\"\npassword = \"alice\"\n"
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let mut venue = serve(&data, &config);
    let mut stderr = venue.child.stderr.take().unwrap();
    let stderr_text = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    std::fs::remove_dir_all(data.join("journal")).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = ClientConfig {
        addr: venue.tcp(),
        transport: ClientTransport::Tcp,
        comp_id: "alice".into(),
        target_comp_id: "EXCHANGE".into(),
        username: "alice".into(),
        password: "alice".into(),
        heartbeat_s: 30,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = rt.block_on(async {
        let mut alice = FixClient::connect_resuming(&client, None).await.expect("logon");
        // Resting buys, never crossing: each is one command record and one event record. Send
        // in bursts, reading what comes back, until the venue exits (bounded by the deadline).
        let mut n = 0u32;
        loop {
            if let Some(status) = venue.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the venue kept running after {n} orders without its journal");
            for _ in 0..200 {
                n += 1;
                let id = format!("o{n}");
                let sent = alice
                    .send(b"D", |e| {
                        new_order_fields(e, &id, "BTC-USD", Side::Buy, 1, Some("100.00"), None, now_ns())
                    })
                    .await;
                if sent.is_err() {
                    break;
                }
            }
            while let Ok(Some(_)) = alice.recv(Duration::from_millis(1)).await {}
        }
    });
    assert_eq!(status.code(), Some(1), "the venue must exit with an error");
    let text = stderr_text.join().unwrap();
    assert!(
        text.contains("the journal cannot be written") && text.contains("No such file"),
        "stderr names the journal failure and its cause: {text}"
    );
    drop(venue);
    let _ = std::fs::remove_dir_all(&dir);
}
