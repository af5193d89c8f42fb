//! QUIC without an async runtime: `quinn-proto` (quinn's sans-IO protocol state machine, the
//! same TLS 1.3 and congestion control as quinn) driven from a caller's poll loop over one
//! non-blocking UDP socket.
//!
//! Why not quinn's tokio driver: there, a datagram passes from the endpoint task to the
//! connection task to the stream's reader, and a report from the router to the session task,
//! each a wake-up. On a machine with fewer cores than threads every cross-thread wake-up is a
//! scheduler round trip of ~10–20 µs. Here the gateway's one thread reads the datagram, runs the
//! FIX session and the order through the router and the engine, and writes the answer, without
//! waking anything.
//!
//! Each connection carries one long-lived bidirectional stream (the FIX session) and a value of
//! the caller's, `S`. The loop is, per turn:
//!
//! 1. [`QuicSocket::receive`] reads every waiting datagram and hands it to its connection (a new
//!    one is accepted, up to the bound, with the state `accept` returns);
//! 2. [`QuicSocket::drive`] runs each connection's timers and events, and moves the stream's
//!    bytes into [`QuicConn::received`];
//! 3. the caller consumes `received` and writes its answers with [`QuicConn::write`];
//! 4. [`QuicSocket::transmit`] sends what the connections have to send and retires the drained
//!    ones, returning their state.
//!
//! Used by the gateway (server side) and by the latency harness (client side, so that the
//! harness thread drives its own connection without a hop to a runtime thread).

use rustc_hash::FxHashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::write_queue::WriteQueue;
use bytes::{Bytes, BytesMut};
use mio::net::UdpSocket;
pub use quinn_proto::ConnectionHandle;
use quinn_proto::{
    ClientConfig, DatagramEvent, Dir, Endpoint, EndpointConfig, Event, ReadError, ServerConfig, StreamEvent,
    StreamId,
};

/// Bytes of one receive buffer: the largest datagram, or one GRO batch of datagrams (the
/// kernel coalesces at most 64 KiB into one read).
const RECV_BUFFER_BYTES: usize = 64 * 1024;
/// Receive buffers filled by one `recvmmsg` (quinn-udp's batch on Linux, 1 elsewhere).
const RECV_BATCH: usize = quinn_udp::BATCH_SIZE;
/// Most datagrams in one GSO batch, quinn's own bound: more would pass the 64 KiB a UDP send
/// can carry (the kernel refuses the whole batch, which then counts as lost).
const GSO_SEGMENTS_MAX: usize = 10;
/// Most bytes one transmit carries: a GSO batch of full datagrams.
const SEND_BUFFER_BYTES: usize = GSO_SEGMENTS_MAX * 1500;
/// Most bytes one connection may have queued for its stream beyond what QUIC flow control took;
/// past it the caller should close the session as a slow consumer.
pub const QUIC_WRITE_BUFFER_MAX: usize = 4 << 20;
/// How long a finished stream waits for the peer to close the connection before we do.
const LINGER: Duration = Duration::from_secs(2);
/// Kernel buffers asked for on the UDP socket, each way. Linux's default (208 KiB) holds
/// ~150 full datagrams: a few milliseconds of a busy session while the thread is off the CPU,
/// after which the kernel drops datagrams and QUIC's loss recovery (timeouts of tens of
/// milliseconds) becomes the tail. The kernel caps the request at `net.core.rmem_max` /
/// `wmem_max`; [`QuicSocket::buffer_bytes`] tells what was granted.
pub const UDP_BUFFER_BYTES: usize = 4 << 20;

/// One connection: quinn-proto's state, its FIX stream, and the caller's state.
pub struct QuicConn<S> {
    conn: quinn_proto::Connection,
    stream: Option<StreamId>,
    /// Bytes the stream has delivered and the caller has not consumed yet.
    pub received: Vec<u8>,
    /// Bytes written but not yet taken by the stream (flow control).
    pending: WriteQueue,
    /// The peer finished or reset its side, or the connection is lost.
    pub peer_gone: bool,
    /// When we finished our side of the stream.
    finished_at: Option<Instant>,
    /// We are the client: we open the stream once the handshake is done.
    opens_stream: bool,
    /// quinn-proto may have something to do or send: set by every input (a datagram, a timer,
    /// a write, a close), cleared once `poll_transmit` has nothing more. An idle connection
    /// costs a turn nothing but its timer check: a spinning loop then notices a datagram
    /// sooner.
    dirty: bool,
    /// The caller's state.
    pub state: S,
}

impl<S> QuicConn<S> {
    fn new(conn: quinn_proto::Connection, opens_stream: bool, state: S) -> QuicConn<S> {
        QuicConn {
            conn,
            stream: None,
            received: Vec::new(),
            pending: WriteQueue::new(),
            peer_gone: false,
            finished_at: None,
            opens_stream,
            dirty: true,
            state,
        }
    }

    /// Queues `bytes` on the stream (sent at the next [`QuicSocket::transmit`]).
    pub fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.finished_at.is_some() {
            return;
        }
        self.dirty = true;
        // Straight into the stream when nothing waits before these bytes: one copy fewer.
        let mut taken = 0;
        if self.pending.is_empty() {
            if let Some(id) = self.stream {
                while taken < bytes.len() {
                    match self.conn.send_stream(id).write(&bytes[taken..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => taken += n,
                    }
                }
            }
        }
        self.pending.push(&bytes[taken..]);
    }

    /// The largest datagram (QUIC DATAGRAM frame payload) the peer accepts now; `None` when
    /// the peer does not take datagrams (or the handshake is not done).
    pub fn datagram_max_bytes(&mut self) -> Option<usize> {
        self.conn.datagrams().max_size()
    }

    /// Bytes of datagrams that can be queued before [`QuicConn::send_datagram`] refuses.
    pub fn datagram_space_bytes(&mut self) -> usize {
        self.conn.datagrams().send_buffer_space()
    }

    /// Queues one unreliable datagram (sent at the next [`QuicSocket::transmit`]); never
    /// drops an older one to make room: a full buffer hands the datagram back
    /// (`SendDatagramError::Blocked`), so the caller keeps its own bound.
    pub fn send_datagram(&mut self, bytes: Bytes) -> Result<(), quinn_proto::SendDatagramError> {
        self.dirty = true;
        self.conn.datagrams().send(bytes, false)
    }

    /// quinn-proto's statistics of the connection (packets, losses, congestion, RTT).
    pub fn stats(&self) -> quinn_proto::ConnectionStats {
        self.conn.stats()
    }

    /// Bytes waiting for flow control.
    pub fn backlog(&self) -> usize {
        self.pending.len()
    }

    /// The stream is open (the peer opened it and it is not finished).
    pub fn is_open(&self) -> bool {
        self.stream.is_some() && !self.peer_gone
    }

    /// Ends our side of the stream once its bytes are sent; the connection closes when the peer
    /// closes it or after a short linger.
    pub fn finish(&mut self, now: Instant) {
        if self.finished_at.is_none() {
            self.dirty = true;
            self.flush_stream();
            self.finished_at = Some(now);
            if let Some(id) = self.stream {
                if self.pending.is_empty() {
                    let _ = self.conn.send_stream(id).finish();
                }
            }
        }
    }

    /// Closes the connection at once with `reason`.
    pub fn close(&mut self, now: Instant, reason: &'static [u8]) {
        self.dirty = true;
        self.conn.close(now, 0u32.into(), Bytes::from_static(reason));
    }

    fn flush_stream(&mut self) {
        let Some(id) = self.stream else { return };
        while !self.pending.is_empty() {
            match self.conn.send_stream(id).write(self.pending.front()) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.pending.consume(n),
            }
        }
        if self.pending.is_empty() && self.finished_at.is_some() {
            let _ = self.conn.send_stream(id).finish();
        }
    }

    fn read_stream(&mut self, id: StreamId) {
        let mut stream = self.conn.recv_stream(id);
        let Ok(mut chunks) = stream.read(true) else {
            self.peer_gone = true;
            return;
        };
        loop {
            match chunks.next(usize::MAX) {
                Ok(Some(chunk)) => self.received.extend_from_slice(&chunk.bytes),
                Ok(None) | Err(ReadError::Reset(_)) => {
                    self.peer_gone = true;
                    break;
                }
                Err(ReadError::Blocked) => break,
            }
        }
        let _ = chunks.finalize();
    }

    /// quinn-proto's events: the stream opening, data, the connection going away.
    fn handle_events(&mut self) {
        while let Some(event) = self.conn.poll() {
            match event {
                Event::Stream(StreamEvent::Opened { dir: Dir::Bi }) => {
                    while let Some(id) = self.conn.streams().accept(Dir::Bi) {
                        if self.stream.is_none() {
                            self.stream = Some(id);
                            self.read_stream(id);
                        } else {
                            // One FIX session per connection: a second stream is refused.
                            let _ = self.conn.recv_stream(id).stop(0u32.into());
                        }
                    }
                }
                Event::Stream(StreamEvent::Readable { id }) if Some(id) == self.stream => {
                    self.read_stream(id)
                }
                Event::Stream(StreamEvent::Writable { id }) if Some(id) == self.stream => self.flush_stream(),
                Event::Connected if self.opens_stream && self.stream.is_none() => {
                    self.stream = self.conn.streams().open(Dir::Bi);
                    self.flush_stream();
                }
                Event::ConnectionLost { .. } => self.peer_gone = true,
                Event::Stream(StreamEvent::Stopped { id, .. }) if Some(id) == self.stream => {
                    self.peer_gone = true;
                }
                _ => {}
            }
        }
    }
}

/// A UDP socket with its QUIC endpoint and connections.
///
/// The socket's I/O goes through quinn-udp, as quinn's own driver does: one `recvmmsg` reads
/// up to [`RECV_BATCH`] datagrams (each possibly a GRO batch), and one `sendmsg` sends a whole
/// GSO batch that quinn-proto built. Under load that is one system call for many packets
/// instead of one each way per packet.
pub struct QuicSocket<S> {
    socket: UdpSocket,
    udp: quinn_udp::UdpSocketState,
    endpoint: Endpoint,
    conns: FxHashMap<ConnectionHandle, QuicConn<S>>,
    connections_max: usize,
    /// [`RECV_BATCH`] receive buffers of [`RECV_BUFFER_BYTES`], back to back.
    recv_bufs: Vec<u8>,
    recv_meta: [quinn_udp::RecvMeta; RECV_BATCH],
    send_buf: Vec<u8>,
    local_addr: SocketAddr,
    /// Tests: drop every n-th transmit instead of sending it (deterministic loss).
    #[cfg(test)]
    drop_every: Option<u64>,
    #[cfg(test)]
    transmits: u64,
}

/// Sends one transmit (a datagram or a GSO batch). A full socket buffer drops it: QUIC's loss
/// recovery resends what it carried.
fn send_transmit(
    socket: &UdpSocket,
    udp: &quinn_udp::UdpSocketState,
    transmit: &quinn_proto::Transmit,
    contents: &[u8],
) {
    let ecn = transmit.ecn.and_then(|e| quinn_udp::EcnCodepoint::from_bits(e as u8));
    let out = quinn_udp::Transmit {
        destination: transmit.destination,
        ecn,
        contents: &contents[..transmit.size],
        segment_size: transmit.segment_size,
        src_ip: transmit.src_ip,
    };
    let _ = udp.send(quinn_udp::UdpSockRef::from(socket), &out);
}

impl<S> QuicSocket<S> {
    /// A server endpoint on `socket` (made non-blocking), accepting up to `connections_max`
    /// connections.
    pub fn server(
        socket: std::net::UdpSocket,
        config: ServerConfig,
        connections_max: usize,
    ) -> io::Result<QuicSocket<S>> {
        let endpoint = Endpoint::new(Arc::new(EndpointConfig::default()), Some(Arc::new(config)), true, None);
        QuicSocket::with_endpoint(socket, endpoint, connections_max)
    }

    /// A client endpoint on `socket`, with one connection to `server`. The handshake is in
    /// progress: drive the socket until [`QuicSocket::is_connected`]; what is written before
    /// then waits, and goes out on the stream the client opens once connected.
    pub fn client(
        socket: std::net::UdpSocket,
        config: ClientConfig,
        server: SocketAddr,
        server_name: &str,
        state: S,
    ) -> io::Result<(QuicSocket<S>, ConnectionHandle)> {
        let endpoint = Endpoint::new(Arc::new(EndpointConfig::default()), None, true, None);
        let mut quic = QuicSocket::with_endpoint(socket, endpoint, 1)?;
        let (handle, conn) = quic
            .endpoint
            .connect(Instant::now(), config, server, server_name)
            .map_err(|e| io::Error::other(format!("QUIC connect: {e}")))?;
        quic.conns.insert(handle, QuicConn::new(conn, true, state));
        Ok((quic, handle))
    }

    fn with_endpoint(
        socket: std::net::UdpSocket,
        endpoint: Endpoint,
        connections_max: usize,
    ) -> io::Result<QuicSocket<S>> {
        socket.set_nonblocking(true)?;
        // Best effort: a smaller grant still works, with less room for a stall.
        let sock = socket2::SockRef::from(&socket);
        let _ = sock.set_recv_buffer_size(UDP_BUFFER_BYTES);
        let _ = sock.set_send_buffer_size(UDP_BUFFER_BYTES);
        let local_addr = socket.local_addr()?;
        let udp = quinn_udp::UdpSocketState::new(quinn_udp::UdpSockRef::from(&socket))?;
        let socket = UdpSocket::from_std(socket);
        Ok(QuicSocket {
            socket,
            udp,
            endpoint,
            conns: FxHashMap::default(),
            connections_max,
            recv_bufs: vec![0; RECV_BUFFER_BYTES * RECV_BATCH],
            recv_meta: [quinn_udp::RecvMeta::default(); RECV_BATCH],
            send_buf: Vec::with_capacity(SEND_BUFFER_BYTES),
            local_addr,
            #[cfg(test)]
            drop_every: None,
            #[cfg(test)]
            transmits: 0,
        })
    }

    /// The kernel's receive and send buffer sizes of the socket (as the kernel reports them,
    /// bookkeeping overhead included).
    pub fn buffer_bytes(&self) -> (usize, usize) {
        let sock = socket2::SockRef::from(&self.socket);
        (sock.recv_buffer_size().unwrap_or(0), sock.send_buffer_size().unwrap_or(0))
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The socket, to register with a poll.
    pub fn socket_mut(&mut self) -> &mut UdpSocket {
        &mut self.socket
    }

    /// The connections.
    pub fn conns_mut(&mut self) -> impl Iterator<Item = (&ConnectionHandle, &mut QuicConn<S>)> {
        self.conns.iter_mut()
    }

    /// One connection.
    pub fn conn_mut(&mut self, handle: ConnectionHandle) -> Option<&mut QuicConn<S>> {
        self.conns.get_mut(&handle)
    }

    /// Number of connections.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// No connections.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The handshake of `handle` is done.
    pub fn is_connected(&self, handle: ConnectionHandle) -> bool {
        self.conns.get(&handle).is_some_and(|c| !c.conn.is_handshaking() && !c.conn.is_closed())
    }

    /// Reads every waiting datagram. A new connection is accepted while there is room, with
    /// the state `accept` makes for its handle; otherwise it is refused.
    pub fn receive(&mut self, now: Instant, mut accept: impl FnMut(ConnectionHandle) -> S) -> io::Result<()> {
        loop {
            let count = {
                let mut slices: [io::IoSliceMut<'_>; RECV_BATCH] = {
                    let mut chunks = self.recv_bufs.chunks_mut(RECV_BUFFER_BYTES);
                    std::array::from_fn(|_| io::IoSliceMut::new(chunks.next().expect("RECV_BATCH chunks")))
                };
                match self.udp.recv(
                    quinn_udp::UdpSockRef::from(&self.socket),
                    &mut slices,
                    &mut self.recv_meta,
                ) {
                    Ok(count) => count,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // An ICMP error from an earlier send (a peer gone): not this socket's fault.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e),
                }
            };
            for i in 0..count {
                let meta = self.recv_meta[i];
                let buf_start = i * RECV_BUFFER_BYTES;
                let ecn = meta.ecn.and_then(|e| quinn_proto::EcnCodepoint::from_bits(e as u8));
                // A GRO batch holds datagrams of `stride` bytes each (the last may be shorter).
                let stride = meta.stride.max(1);
                let mut at = 0;
                while at < meta.len {
                    let end = (at + stride).min(meta.len);
                    let data = BytesMut::from(&self.recv_bufs[buf_start + at..buf_start + end]);
                    self.handle_datagram(now, meta.addr, meta.dst_ip, ecn, data, &mut accept);
                    at = end;
                }
            }
            if count < RECV_BATCH {
                // Fewer than asked for: the socket had no more. The call that would say
                // WouldBlock is a system call per wake-up for nothing; a datagram arriving
                // later raises a new readiness edge (Linux epoll signals every arrival).
                return Ok(());
            }
        }
    }

    fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local_ip: Option<std::net::IpAddr>,
        ecn: Option<quinn_proto::EcnCodepoint>,
        data: BytesMut,
        accept: &mut impl FnMut(ConnectionHandle) -> S,
    ) {
        self.send_buf.clear();
        match self.endpoint.handle(now, from, local_ip, ecn, data, &mut self.send_buf) {
            None => {}
            Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                if let Some(c) = self.conns.get_mut(&handle) {
                    c.conn.handle_event(event);
                    c.dirty = true;
                }
            }
            Some(DatagramEvent::Response(transmit)) => {
                send_transmit(&self.socket, &self.udp, &transmit, &self.send_buf);
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                if self.conns.len() >= self.connections_max {
                    let transmit = self.endpoint.refuse(incoming, &mut self.send_buf);
                    send_transmit(&self.socket, &self.udp, &transmit, &self.send_buf);
                    return;
                }
                match self.endpoint.accept(incoming, now, &mut self.send_buf, None) {
                    Ok((handle, conn)) => {
                        self.conns.insert(handle, QuicConn::new(conn, false, accept(handle)));
                    }
                    Err(e) => {
                        if let Some(transmit) = e.response {
                            send_transmit(&self.socket, &self.udp, &transmit, &self.send_buf);
                        }
                    }
                }
            }
        }
    }

    /// Runs every connection's expired timers and pending events; stream bytes land in
    /// [`QuicConn::received`].
    pub fn drive(&mut self, now: Instant) {
        for (handle, c) in self.conns.iter_mut() {
            if c.conn.poll_timeout().is_some_and(|t| t <= now) {
                c.conn.handle_timeout(now);
                c.dirty = true;
            }
            if c.dirty {
                while let Some(event) = c.conn.poll_endpoint_events() {
                    if let Some(back) = self.endpoint.handle_event(*handle, event) {
                        c.conn.handle_event(back);
                    }
                }
                c.handle_events();
            }
            if let Some(at) = c.finished_at {
                if now.saturating_duration_since(at) >= LINGER && !c.conn.is_closed() {
                    c.close(now, b"session ended");
                }
            }
        }
    }

    /// Sends what every connection has to send, and retires drained connections, returning
    /// their states.
    pub fn transmit(&mut self, now: Instant) -> Vec<S> {
        let mut drained = Vec::new();
        for (handle, c) in self.conns.iter_mut() {
            if !c.dirty {
                continue;
            }
            c.flush_stream();
            let segments_max = self.udp.max_gso_segments().min(GSO_SEGMENTS_MAX);
            loop {
                self.send_buf.clear();
                let Some(transmit) = c.conn.poll_transmit(now, segments_max, &mut self.send_buf) else {
                    break;
                };
                #[cfg(test)]
                {
                    self.transmits += 1;
                    if self.drop_every.is_some_and(|n| self.transmits.is_multiple_of(n)) {
                        continue;
                    }
                }
                send_transmit(&self.socket, &self.udp, &transmit, &self.send_buf);
            }
            c.dirty = false;
            while let Some(event) = c.conn.poll_endpoint_events() {
                if let Some(back) = self.endpoint.handle_event(*handle, event) {
                    c.conn.handle_event(back);
                    c.dirty = true;
                }
            }
            if c.conn.is_drained() {
                drained.push(*handle);
            }
        }
        drained.into_iter().filter_map(|h| self.conns.remove(&h)).map(|c| c.state).collect()
    }

    /// The earliest timer of any connection.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        self.conns.values_mut().filter_map(|c| c.conn.poll_timeout()).min()
    }

    /// Closes every connection with `reason` and sends the closes.
    pub fn close_all(&mut self, reason: &'static [u8]) {
        let now = Instant::now();
        for c in self.conns.values_mut() {
            c.close(now, reason);
        }
        let _ = self.transmit(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{quinn_client_config, quinn_server_config, QuicTuning, ServerTls};

    struct Pair {
        server: QuicSocket<u32>,
        client: QuicSocket<()>,
        handle: ConnectionHandle,
        ca: std::path::PathBuf,
        dir: std::path::PathBuf,
    }

    impl Drop for Pair {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn tls_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gateway-quic-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn loopback() -> std::net::UdpSocket {
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap()
    }

    fn pair(name: &str, connections_max: usize) -> Pair {
        let dir = tls_dir(name);
        let (tls, _) = ServerTls::self_signed_in(&dir).unwrap();
        let config = quinn_server_config(&tls, &QuicTuning::default()).unwrap();
        let server = QuicSocket::server(loopback(), config, connections_max).unwrap();
        let (client, handle) = connect(&tls.cert, server.local_addr());
        Pair { server, client, handle, ca: tls.cert, dir }
    }

    fn connect(ca: &std::path::Path, to: SocketAddr) -> (QuicSocket<()>, ConnectionHandle) {
        let config = quinn_client_config(ca, None, &QuicTuning::default()).unwrap();
        QuicSocket::client(loopback(), config, to, "localhost", ()).unwrap()
    }

    /// One turn of both ends; the server numbers the connections it accepts.
    fn turn(server: &mut QuicSocket<u32>, client: &mut QuicSocket<()>, accepted: &mut u32) {
        let now = Instant::now();
        client.receive(now, |_| ()).unwrap();
        client.drive(now);
        client.transmit(now);
        server
            .receive(now, |_| {
                *accepted += 1;
                *accepted
            })
            .unwrap();
        server.drive(now);
        server.transmit(now);
    }

    fn until(p: &mut Pair, accepted: &mut u32, mut done: impl FnMut(&mut Pair) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(p) {
            assert!(Instant::now() < deadline, "timed out");
            turn(&mut p.server, &mut p.client, accepted);
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    #[test]
    fn bytes_cross_both_ways_on_one_stream_and_a_finish_reaches_the_peer() {
        let mut p = pair("both-ways", 4);
        let mut accepted = 0;
        // Written before the handshake: held, then sent on the stream opened once connected.
        p.client.conn_mut(p.handle).unwrap().write(b"8=FIX.4.4|hello");
        until(&mut p, &mut accepted, |p| p.server.conns_mut().any(|(_, c)| c.received.ends_with(b"hello")));
        assert!(p.client.is_connected(p.handle));
        assert_eq!(p.server.len(), 1);
        let (_, conn) = p.server.conns_mut().next().unwrap();
        assert_eq!(conn.state, 1);
        assert!(conn.is_open());
        assert_eq!(std::mem::take(&mut conn.received), b"8=FIX.4.4|hello");
        conn.write(b"answer");
        until(&mut p, &mut accepted, |p| p.client.conn_mut(p.handle).unwrap().received == b"answer");

        let (_, conn) = p.server.conns_mut().next().unwrap();
        conn.finish(Instant::now());
        until(&mut p, &mut accepted, |p| p.client.conn_mut(p.handle).unwrap().peer_gone);
        assert_eq!(accepted, 1);
    }

    /// A bulk answer goes out in GSO batches: none may be refused by the kernel (a batch past
    /// 64 KiB is, whole), so on loopback nothing is lost.
    #[test]
    fn bulk_transfer_in_gso_batches_loses_nothing() {
        let mut p = pair("bulk", 4);
        let mut accepted = 0;
        p.client.conn_mut(p.handle).unwrap().write(b"go");
        until(&mut p, &mut accepted, |p| p.server.conns_mut().any(|(_, c)| c.received == b"go"));
        let bulk: Vec<u8> = (0..4u32 << 20).map(|i| (i % 253) as u8).collect();
        p.server.conns_mut().next().unwrap().1.write(&bulk);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < bulk.len() {
            assert!(Instant::now() < deadline, "timed out at {} bytes", got.len());
            turn(&mut p.server, &mut p.client, &mut accepted);
            got.append(&mut p.client.conn_mut(p.handle).unwrap().received);
        }
        assert!(got == bulk, "bytes differ");
        let (_, conn) = p.server.conns_mut().next().unwrap();
        assert_eq!(conn.stats().path.lost_packets, 0, "{:?}", conn.stats().path);
    }

    /// Every 7th transmit of each side is dropped: every byte must still arrive, in order,
    /// through QUIC's loss recovery as this driver runs it (timers included).
    #[test]
    fn every_byte_arrives_in_order_through_heavy_loss() {
        let mut p = pair("lossy", 4);
        let mut accepted = 0;
        p.server.drop_every = Some(7);
        p.client.drop_every = Some(7);
        let chunk: Vec<u8> = (0..250u32).map(|i| (i % 251) as u8).collect();
        let chunks = 4_000;
        let expected: Vec<u8> = chunk.iter().copied().cycle().take(chunk.len() * chunks).collect();
        let mut written = 0;
        let mut echoed = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "timed out: {echoed} of {} bytes back", expected.len());
            // The client writes in bursts; the server sends everything it gets straight back.
            let client = p.client.conn_mut(p.handle).unwrap();
            for _ in 0..20 {
                if written < chunks && client.backlog() < 64 * 1024 {
                    client.write(&chunk);
                    written += 1;
                }
            }
            turn(&mut p.server, &mut p.client, &mut accepted);
            for (_, conn) in p.server.conns_mut() {
                let got = std::mem::take(&mut conn.received);
                conn.write(&got);
            }
            let client = p.client.conn_mut(p.handle).unwrap();
            let got = std::mem::take(&mut client.received);
            assert_eq!(got[..], expected[echoed..echoed + got.len()], "bytes out of order at {echoed}");
            echoed += got.len();
            if echoed == expected.len() {
                break;
            }
        }
        let lost = p.client.conn_mut(p.handle).unwrap().stats().path.lost_packets
            + p.server.conns_mut().map(|(_, c)| c.stats().path.lost_packets).sum::<u64>();
        assert!(lost > 0, "the test meant to lose datagrams and lost none");
    }

    #[test]
    fn a_connection_past_the_bound_is_refused_and_the_first_lives_on() {
        let mut p = pair("bound", 1);
        let mut accepted = 0;
        p.client.conn_mut(p.handle).unwrap().write(b"first");
        until(&mut p, &mut accepted, |p| p.server.conns_mut().any(|(_, c)| c.received == b"first"));

        let (mut second, handle) = connect(&p.ca, p.server.local_addr());
        second.conn_mut(handle).unwrap().write(b"second");
        let deadline = Instant::now() + Duration::from_secs(10);
        // Refused: the second client's connection ends without ever connecting.
        while !second.is_empty() {
            assert!(Instant::now() < deadline, "the second connection was never refused");
            turn(&mut p.server, &mut second, &mut accepted);
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(accepted, 1);
        assert_eq!(p.server.len(), 1);
        let (_, conn) = p.server.conns_mut().next().unwrap();
        conn.write(b"still here");
        until(&mut p, &mut accepted, |p| p.client.conn_mut(p.handle).unwrap().received == b"still here");
    }

    #[test]
    fn closing_drains_the_connection_and_returns_its_state() {
        let mut p = pair("close", 4);
        let mut accepted = 0;
        p.client.conn_mut(p.handle).unwrap().write(b"x");
        until(&mut p, &mut accepted, |p| p.server.len() == 1 && p.client.is_connected(p.handle));
        p.client.conn_mut(p.handle).unwrap().close(Instant::now(), b"bye");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut returned = Vec::new();
        while returned.is_empty() {
            assert!(Instant::now() < deadline, "the server never drained the connection");
            let now = Instant::now();
            p.client.transmit(now);
            p.server.receive(now, |_| 99).unwrap();
            p.server.drive(now);
            returned = p.server.transmit(now);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(returned, [1]);
        assert!(p.server.is_empty());
    }
}
