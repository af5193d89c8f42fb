//! Criterion: what one order round trip costs the QUIC transport itself, both ends on one
//! thread, so no thread wakes up and no scheduler is measured: the floor under
//! `exchange bench e2e --transport quic` beside the floor under `exchange bench udp-baseline`.
//!
//! Each iteration is a request of [`REQUEST_BYTES`] (a FIX NewOrderSingle's size) from a
//! client to a server on one long-lived bidirectional stream and an answer of [`ANSWER_BYTES`]
//! (an ExecutionReport's size) back, read by the client:
//! - `udp/connected`: the same sizes as plain datagrams between two connected loopback
//!   sockets (`send`, `recv`, `send`, `recv`): the kernel's share of a round trip.
//! - `udp/server_unconnected`: the same, the server side unconnected (`recv_from`,
//!   `send_to`), as `exchange bench udp-baseline`'s echo thread and any server.
//! - `udp/quinn_udp`: the same datagrams through quinn-udp as [`QuicSocket`] calls it
//!   (`sendmsg` with ECN and source-address control messages, `recvmmsg` into a full batch,
//!   GRO, packet info and TOS enabled on the sockets): the kernel path QUIC's datagrams take.
//! - `quic/in_memory`: quinn-proto at both ends (packet building, TLS 1.3 AEAD and header
//!   protection, ACK and loss bookkeeping, stream reassembly), datagrams handed across in
//!   memory: QUIC's CPU per round trip, no system call.
//! - `quic/loopback`: the gateway's [`QuicSocket`] at both ends (quinn-proto plus quinn-udp's
//!   `recvmmsg`/`sendmsg` on loopback sockets): what the venue and the harness run.

use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use gateway::quic::QuicSocket;
use gateway::tls::{quinn_client_config, quinn_server_config, QuicTuning, ServerTls};
use quinn_proto::{ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig, StreamId};

/// A NewOrderSingle on the wire is ~160 bytes.
const REQUEST_BYTES: usize = 160;
/// An ExecutionReport acknowledging it is ~260 bytes.
const ANSWER_BYTES: usize = 260;

/// Both ends' configurations, trusting a self-signed certificate made in a directory of its own
/// (removed again once the configurations hold what they need).
fn configs() -> (quinn_proto::ServerConfig, quinn_proto::ClientConfig) {
    let dir = std::env::temp_dir().join(format!("exchange-bench-quic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (tls, _) = ServerTls::self_signed_in(&dir).expect("self-signed certificate");
    let tuning = QuicTuning::default();
    let server = quinn_server_config(&tls, &tuning).expect("server config");
    let client = quinn_client_config(&tls.cert, None, &tuning).expect("client config");
    let _ = std::fs::remove_dir_all(&dir);
    (server, client)
}

fn loopback() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind a loopback socket")
}

fn udp_kernel(c: &mut Criterion) {
    let (request, answer) = (vec![7u8; REQUEST_BYTES], vec![9u8; ANSWER_BYTES]);
    let mut buf = vec![0u8; 2048];
    // Blocking reads never block here: a loopback send has queued the datagram at the peer
    // by the time it returns.
    let (client, server) = (loopback(), loopback());
    client.connect(server.local_addr().unwrap()).unwrap();
    server.connect(client.local_addr().unwrap()).unwrap();
    c.bench_function("round_trip/udp/connected", |b| {
        b.iter(|| {
            client.send(&request).unwrap();
            assert_eq!(server.recv(&mut buf).unwrap(), REQUEST_BYTES);
            server.send(&answer).unwrap();
            assert_eq!(client.recv(&mut buf).unwrap(), ANSWER_BYTES);
        })
    });
    // As `exchange bench udp-baseline` does it: the echo side is not connected (a server).
    let (client, server) = (loopback(), loopback());
    client.connect(server.local_addr().unwrap()).unwrap();
    c.bench_function("round_trip/udp/server_unconnected", |b| {
        b.iter(|| {
            client.send(&request).unwrap();
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(n, REQUEST_BYTES);
            server.send_to(&answer, from).unwrap();
            assert_eq!(client.recv(&mut buf).unwrap(), ANSWER_BYTES);
        })
    });
    // Both ends through quinn-udp as `QuicSocket` calls it: `sendmsg` with the ECN and source
    // address control messages, `recvmmsg` into a full batch of buffers, both unconnected.
    let ends = [loopback(), loopback()];
    let states =
        ends.each_ref().map(|s| quinn_udp::UdpSocketState::new(quinn_udp::UdpSockRef::from(s)).unwrap());
    let addrs = ends.each_ref().map(|s| s.local_addr().unwrap());
    let mut bufs = vec![0u8; 64 * 1024 * quinn_udp::BATCH_SIZE];
    let mut meta = [quinn_udp::RecvMeta::default(); quinn_udp::BATCH_SIZE];
    let mut hop = |from: usize, to: usize, bytes: &[u8]| {
        let transmit = quinn_udp::Transmit {
            destination: addrs[to],
            ecn: Some(quinn_udp::EcnCodepoint::Ect0),
            contents: bytes,
            segment_size: None,
            src_ip: Some(addrs[from].ip()),
        };
        states[from].send(quinn_udp::UdpSockRef::from(&ends[from]), &transmit).unwrap();
        let mut chunks = bufs.chunks_mut(64 * 1024);
        let mut slices: [std::io::IoSliceMut<'_>; quinn_udp::BATCH_SIZE] =
            std::array::from_fn(|_| std::io::IoSliceMut::new(chunks.next().unwrap()));
        assert_eq!(
            states[to].recv(quinn_udp::UdpSockRef::from(&ends[to]), &mut slices, &mut meta).unwrap(),
            1
        );
        assert_eq!(meta[0].len, bytes.len());
    };
    c.bench_function("round_trip/udp/quinn_udp", |b| {
        b.iter(|| {
            hop(0, 1, &request);
            hop(1, 0, &answer);
        })
    });
}

/// One end of an in-memory QUIC connection.
struct End {
    endpoint: Endpoint,
    addr: SocketAddr,
    conn: Option<(ConnectionHandle, quinn_proto::Connection)>,
    stream: Option<StreamId>,
    out: Vec<u8>,
    read: usize,
}

impl End {
    fn new(endpoint: Endpoint, port: u16) -> End {
        End {
            endpoint,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            conn: None,
            stream: None,
            out: Vec::with_capacity(1500),
            read: 0,
        }
    }

    /// Timers due, endpoint events, and the application events: stream bytes are counted
    /// into `read` and dropped.
    fn drive(&mut self, now: Instant) {
        let Some((handle, conn)) = self.conn.as_mut() else { return };
        if conn.poll_timeout().is_some_and(|t| t <= now) {
            conn.handle_timeout(now);
        }
        while let Some(event) = conn.poll_endpoint_events() {
            if let Some(back) = self.endpoint.handle_event(*handle, event) {
                conn.handle_event(back);
            }
        }
        while conn.poll().is_some() {}
        if self.stream.is_none() {
            self.stream = conn.streams().accept(Dir::Bi);
        }
        if let Some(id) = self.stream {
            if let Ok(mut chunks) = conn.recv_stream(id).read(true) {
                while let Ok(Some(chunk)) = chunks.next(usize::MAX) {
                    self.read += chunk.bytes.len();
                }
                let _ = chunks.finalize();
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let (_, conn) = self.conn.as_mut().expect("connected");
        let id = *self.stream.get_or_insert_with(|| conn.streams().open(Dir::Bi).expect("a stream"));
        assert_eq!(conn.send_stream(id).write(bytes).expect("stream write"), bytes.len());
    }

    /// Every datagram this end has to send, handed to `to`.
    fn send_to(&mut self, to: &mut End, now: Instant) {
        let Some((_, conn)) = self.conn.as_mut() else { return };
        loop {
            self.out.clear();
            let Some(transmit) = conn.poll_transmit(now, 1, &mut self.out) else { break };
            let data = BytesMut::from(&self.out[..transmit.size]);
            to.receive(self.addr, data, now);
        }
    }

    fn receive(&mut self, from: SocketAddr, data: BytesMut, now: Instant) {
        let mut response = Vec::new();
        match self.endpoint.handle(now, from, None, None, data, &mut response) {
            Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                if let Some((h, conn)) = self.conn.as_mut() {
                    assert_eq!(*h, handle);
                    conn.handle_event(event);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                let accepted = self.endpoint.accept(incoming, now, &mut response, None);
                self.conn = Some(accepted.map_err(|e| e.cause).expect("accept"));
            }
            Some(DatagramEvent::Response(_)) => panic!("unexpected stateless response"),
            None => {}
        }
    }
}

/// Client and server connected in memory, handshake done, the stream open both ways.
fn in_memory_pair() -> (End, End) {
    let (server_config, config) = configs();
    let mut server = End::new(
        Endpoint::new(Arc::new(EndpointConfig::default()), Some(Arc::new(server_config)), true, None),
        4433,
    );
    let mut client = End::new(Endpoint::new(Arc::new(EndpointConfig::default()), None, true, None), 50000);
    client.conn =
        Some(client.endpoint.connect(Instant::now(), config, server.addr, "localhost").expect("connect"));
    for _ in 0..100 {
        let now = Instant::now();
        client.drive(now);
        client.send_to(&mut server, now);
        server.drive(now);
        server.send_to(&mut client, now);
        let connected = |e: &End| e.conn.as_ref().is_some_and(|(_, c)| !c.is_handshaking());
        if connected(&client) && connected(&server) {
            break;
        }
    }
    // The client opens the stream; the server learns of it from the first bytes.
    round_trip(&mut client, &mut server, &[1; REQUEST_BYTES], &[2; ANSWER_BYTES]);
    assert!(server.stream.is_some(), "the server accepted the stream");
    (client, server)
}

fn round_trip(client: &mut End, server: &mut End, request: &[u8], answer: &[u8]) {
    let now = Instant::now();
    let (client_had, server_had) = (client.read, server.read);
    client.write(request);
    client.send_to(server, now);
    server.drive(now);
    assert_eq!(server.read - server_had, request.len(), "the request arrived whole");
    server.write(answer);
    server.send_to(client, now);
    client.drive(now);
    assert_eq!(client.read - client_had, answer.len(), "the answer arrived whole");
}

fn quic_in_memory(c: &mut Criterion) {
    let (mut client, mut server) = in_memory_pair();
    let (request, answer) = (vec![7u8; REQUEST_BYTES], vec![9u8; ANSWER_BYTES]);
    c.bench_function("round_trip/quic/in_memory", |b| {
        b.iter(|| round_trip(&mut client, &mut server, black_box(&request), black_box(&answer)))
    });
}

fn quic_loopback(c: &mut Criterion) {
    let (server_config, config) = configs();
    let mut server: QuicSocket<()> = QuicSocket::server(loopback(), server_config, 4).expect("server");
    let (mut client, handle) =
        QuicSocket::client(loopback(), config, server.local_addr(), "localhost", ()).expect("client");
    let (request, answer) = (vec![7u8; REQUEST_BYTES], vec![9u8; ANSWER_BYTES]);

    // One step of an end with nothing to answer: read, timers, send.
    fn step<S>(quic: &mut QuicSocket<S>, state: impl FnMut(ConnectionHandle) -> S) {
        let now = Instant::now();
        quic.receive(now, state).expect("receive");
        quic.drive(now);
        quic.transmit(now);
    }
    // As the venue and the harness turn: read and drive, answer what arrived, then send (the
    // answer carries the ACK of its request).
    let round = |client: &mut QuicSocket<()>, server: &mut QuicSocket<()>| {
        client.conn_mut(handle).expect("client connection").write(&request);
        client.transmit(Instant::now());
        let mut answered = false;
        for _ in 0..1_000_000 {
            let now = Instant::now();
            server.receive(now, |_| ()).expect("receive");
            server.drive(now);
            for (_, conn) in server.conns_mut() {
                if !conn.received.is_empty() {
                    assert_eq!(conn.received.len(), REQUEST_BYTES, "the request arrived whole");
                    conn.received.clear();
                    conn.write(&answer);
                    answered = true;
                }
            }
            server.transmit(now);
            if answered {
                break;
            }
            step(client, |_| ());
        }
        assert!(answered, "no request arrived");
        for _ in 0..1_000_000 {
            let now = Instant::now();
            client.receive(now, |_| ()).expect("receive");
            client.drive(now);
            let conn = client.conn_mut(handle).expect("client connection");
            let got = std::mem::take(&mut conn.received).len();
            client.transmit(now);
            if got > 0 {
                assert_eq!(got, ANSWER_BYTES, "the answer arrived whole");
                return;
            }
            step(server, |_| ());
        }
        panic!("no answer");
    };
    while !client.is_connected(handle) {
        step(&mut client, |_| ());
        step(&mut server, |_| ());
    }
    round(&mut client, &mut server);
    c.bench_function("round_trip/quic/loopback", |b| b.iter(|| round(&mut client, &mut server)));
}

criterion_group!(benches, udp_kernel, quic_in_memory, quic_loopback);
criterion_main!(benches);
