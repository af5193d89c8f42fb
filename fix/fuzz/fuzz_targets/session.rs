//! The acceptor session fed arbitrary bytes (after a valid Logon, so the fuzzer reaches the
//! active state) in arbitrary chunks with arbitrary timer calls: never a panic, and sequence
//! numbers only move forward.
#![no_main]

use fix::codec::{tag, Encoder};
use fix::session::{Poll, Session, SessionConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut session = Session::acceptor(SessionConfig::default(), 0);
    let mut e = Encoder::new();
    e.begin(b"A", "alice", "EXCHANGE", 1, 0);
    e.u64(tag::ENCRYPT_METHOD, 0);
    e.u64(tag::HEART_BT_INT, 30);
    e.str(tag::PASSWORD, "pw");
    session.feed(e.finish());
    let mut now = 1u64;
    let mut chunks = data.chunks(61);
    loop {
        loop {
            match session.poll(now) {
                Poll::Idle => break,
                Poll::Logon(_) => session.accept_logon(now),
                Poll::App(msg) => {
                    let seq = msg.get_u64(tag::MSG_SEQ_NUM).ok().flatten().unwrap_or(0);
                    session.send(b"8", now, |e| e.u64(tag::REF_SEQ_NUM, seq));
                }
            }
        }
        let (in_before, out_before) = (session.in_seq_next(), session.out_seq_next());
        let Some(chunk) = chunks.next() else { break };
        if chunk[0] == 0xff {
            now += u64::from(chunk.get(1).copied().unwrap_or(1)) * 1_000_000_000;
            session.on_timer(now);
        } else {
            session.feed(chunk);
        }
        let _ = session.take_tx();
        assert!(session.in_seq_next() >= in_before && session.out_seq_next() >= out_before);
    }
});
