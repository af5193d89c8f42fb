//! The QuickFIX peer acceptor builds with `benches/peers/quickfix/build.sh` and answers as the
//! e2e harness expects: a NewOrderSingle with an ExecutionReport 150=0 carrying its ClOrdID, an
//! OrderCancelRequest with 150=4 carrying its ClOrdID and OrigClOrdID. Skipped, with a printed
//! line, where libquickfix-dev or g++ is absent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fix::codec::tag;
use fix::session::{InitiatorLogon, Poll, Session, SessionConfig};
use harness::latency::peer::PeerAcceptor;

/// Reads until the session yields an application message; returns (35, 150, 11, 41).
fn next_app(
    stream: &mut TcpStream,
    session: &mut Session,
    buf: &mut [u8],
) -> (String, String, String, String) {
    loop {
        match session.poll(0) {
            Poll::App(msg) => {
                let field = |t| String::from_utf8_lossy(msg.get(t).unwrap_or(b"")).into_owned();
                return (
                    String::from_utf8_lossy(msg.msg_type()).into_owned(),
                    field(tag::EXEC_TYPE),
                    field(tag::CL_ORD_ID),
                    field(tag::ORIG_CL_ORD_ID),
                );
            }
            Poll::Logon(_) => continue,
            Poll::Idle => {}
        }
        let n = stream.read(buf).expect("read from the acceptor");
        assert!(n > 0, "the acceptor closed the connection: {:?}", session.close_reason());
        session.feed(&buf[..n]);
    }
}

fn flush(stream: &mut TcpStream, session: &mut Session) {
    let tx = session.take_tx();
    stream.write_all(&tx).expect("write to the acceptor");
}

#[test]
fn quickfix_acceptor_builds_and_acknowledges_orders_and_cancels() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("quickfix-peer-test");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/peers/quickfix/build.sh");
    if which_gxx_missing() {
        println!("skipped: g++ is not installed (apt-get install -y libquickfix-dev g++)");
        return;
    }
    let status = Command::new("sh").arg(&script).arg(&out).status().expect("run build.sh");
    if status.code() == Some(3) {
        println!("skipped: libquickfix-dev is not installed (apt-get install -y libquickfix-dev g++)");
        return;
    }
    assert!(status.success(), "build.sh failed: {status}");

    let peer = PeerAcceptor::start_quickfix(&out.join("quickfix-acceptor")).expect("start the acceptor");
    let mut stream = TcpStream::connect(peer.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let logon = InitiatorLogon {
        target_comp_id: "EXCHANGE".into(),
        heartbeat_s: 30,
        username: "alice".into(),
        password: "alice".into(),
    };
    let now = gateway::server::now_ns();
    let mut session = Session::initiator(SessionConfig::default(), "alice", logon, now);
    flush(&mut stream, &mut session);
    let mut buf = vec![0u8; 64 * 1024];
    while !session.is_active() {
        let n = stream.read(&mut buf).expect("read the Logon reply");
        assert!(n > 0 && !session.is_closed(), "logon refused: {:?}", session.close_reason());
        session.feed(&buf[..n]);
        while !matches!(session.poll(now), Poll::Idle) {}
    }

    session.send(b"D", gateway::server::now_ns(), |e| {
        e.str(tag::CL_ORD_ID, "n1_0");
        e.str(tag::SYMBOL, "BTC-USD");
        e.char(tag::SIDE, b'1');
        e.u64(tag::ORDER_QTY, 1);
        e.char(tag::ORD_TYPE, b'2');
        e.str(tag::PRICE, "1.00");
    });
    flush(&mut stream, &mut session);
    assert_eq!(
        next_app(&mut stream, &mut session, &mut buf),
        ("8".into(), "0".into(), "n1_0".into(), String::new())
    );

    session.send(b"F", gateway::server::now_ns(), |e| {
        e.str(tag::ORIG_CL_ORD_ID, "n1_0");
        e.str(tag::CL_ORD_ID, "x1_1");
        e.str(tag::SYMBOL, "BTC-USD");
        e.char(tag::SIDE, b'1');
    });
    flush(&mut stream, &mut session);
    assert_eq!(
        next_app(&mut stream, &mut session, &mut buf),
        ("8".into(), "4".into(), "x1_1".into(), "n1_0".into())
    );
    drop(peer);
    let _ = std::fs::remove_dir_all(&out);
}

/// True when `g++` cannot be run (build.sh then fails without the skip code).
fn which_gxx_missing() -> bool {
    Command::new("g++").arg("--version").output().is_err()
}
