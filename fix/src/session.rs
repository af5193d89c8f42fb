//! The FIX 4.4 session layer as a pure state machine (the shape of `quinn-proto`): bytes and
//! time in, bytes and decisions out. No sockets, no clock, no threads; the QUIC and TCP
//! transports drive the same code, and tests drive two of them against each other in memory.
//!
//! Driving it:
//! ```text
//! session.feed(bytes)                 // what the transport read
//! loop { match session.poll(now_ns) { // admin messages are answered inside
//!     Poll::Logon(req) => session.accept_logon(..) / session.refuse_logon(text),
//!     Poll::App(msg)   => the application; replies via session.send(..),
//!     Poll::Idle       => break } }
//! session.on_timer(now_ns)            // at session.deadline(): heartbeats, test requests
//! write(session.take_tx()); if session.is_closed() { close }
//! ```
//!
//! Rules kept, after FIX 4.4 and QuickFIX:
//! - Garbled messages (bad CheckSum) are dropped without consuming a MsgSeqNum. A lost frame
//!   boundary (bad BeginString or BodyLength) or an oversized message ends the session with a
//!   Logout naming the fault, since the byte stream can no longer be cut reliably.
//! - MsgSeqNum too low without PossDupFlag: Logout with the reason. Too high: ResendRequest
//!   for the gap (one at a time); the message is dropped and arrives again in the resend. A
//!   ResendRequest is served even when its own MsgSeqNum is too high, so two sides that each
//!   missed the other's last messages recover instead of asking each other for ever.
//! - ResendRequest is answered from a bounded store of sent application messages
//!   (PossDupFlag=Y, OrigSendingTime); admin messages and messages past the store's bound are
//!   covered by SequenceReset-GapFill.
//! - Sequence numbers persist across connections (QuickFIX's `ResetOnLogon=N`): the shell
//!   keeps a [`SessionState`] per counterparty (durably, in [`crate::session_store`]) and
//!   resumes it with [`Session::accept_logon_resuming`]; a session with no connection is
//!   [`Session::detached`] and still numbers and keeps what is sent to it, for a resend after the
//!   next Logon. ResetSeqNumFlag (141=Y) on a Logon starts both sides again from 1 and is
//!   echoed.
//! - An acceptor checks each in-sequence message against the FIX 4.4 data dictionary
//!   ([`crate::dictionary`]): a tag nobody defines (373=0), a tag its MsgType does not carry
//!   (373=2) or a header tag after the body (373=14) gets a session Reject naming the tag. The
//!   message consumes its MsgSeqNum (it arrived intact) and never reaches the application.

use crate::codec::{self, tag, Encoder, FrameError, Message};
use crate::dictionary::{self, FieldViolation};
use crate::resend_store::{ResendStore, RESEND_STORE_BYTES_MAX};

/// Default most application messages kept for resend.
pub const RESEND_STORE_MAX_DEFAULT: usize = 10_000;
/// Largest HeartBtInt accepted, in seconds.
pub const HEARTBEAT_S_MAX: u64 = 300;
/// How long a connection may stay without a Logon, or wait for the Logout reply.
pub const HANDSHAKE_TIMEOUT_NS: u64 = 5_000_000_000;

/// Session parameters.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Our CompID (SenderCompID of what we send).
    pub our_comp_id: String,
    /// Largest message accepted, in bytes.
    pub message_bytes_max: usize,
    /// Most sent application messages kept for resend.
    pub resend_store_max: usize,
    /// Check received messages against the FIX 4.4 data dictionary and reject those with
    /// unknown or misplaced tags. Acceptors only: an initiator ignores it, since what a venue
    /// sends it (execution reports, its own admin answers) is the venue's business.
    pub validate_fields: bool,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            our_comp_id: "EXCHANGE".to_owned(),
            message_bytes_max: codec::MESSAGE_BYTES_MAX_DEFAULT,
            resend_store_max: RESEND_STORE_MAX_DEFAULT,
            validate_fields: true,
        }
    }
}

/// What an initiator (client) sends in its Logon.
#[derive(Clone, Debug)]
pub struct InitiatorLogon {
    /// The venue's CompID (TargetCompID).
    pub target_comp_id: String,
    /// HeartBtInt in seconds.
    pub heartbeat_s: u64,
    /// Username (553).
    pub username: String,
    /// Password (554).
    pub password: String,
}

/// What a persistent session keeps between connections.
#[derive(Debug, Default)]
pub struct SessionState {
    /// Next MsgSeqNum expected from the counterparty.
    pub in_seq_next: u64,
    /// MsgSeqNum of the next message sent.
    pub out_seq_next: u64,
    /// Sent application messages, for resends.
    pub store: ResendStore,
}

impl SessionState {
    /// A new session: both sides start at 1.
    pub fn new(config: &SessionConfig) -> SessionState {
        SessionState {
            in_seq_next: 1,
            out_seq_next: 1,
            store: ResendStore::new(config.resend_store_max, RESEND_STORE_BYTES_MAX),
        }
    }
}

/// A Logon received by an acceptor, for the application to decide.
#[derive(Clone, Copy, Debug)]
pub struct LogonRequest<'a> {
    /// SenderCompID (49).
    pub sender_comp_id: &'a str,
    /// Username (553); absent means the SenderCompID is the account.
    pub username: Option<&'a str>,
    /// Password (554).
    pub password: Option<&'a str>,
    /// HeartBtInt (108), seconds.
    pub heartbeat_s: u64,
    /// ResetSeqNumFlag (141=Y): the counterparty starts both sides again from 1.
    pub reset_seq_num: bool,
}

/// What [`Session::poll`] found.
// The field index makes `App` large; boxing it would allocate per message instead.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Poll<'a> {
    /// Nothing more until more bytes or time arrive.
    Idle,
    /// An acceptor got a well-formed Logon: call [`Session::accept_logon`] or
    /// [`Session::refuse_logon`].
    Logon(LogonRequest<'a>),
    /// An in-sequence application message.
    App(Message<'a>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Acceptor before the Logon, or initiator waiting for the Logon reply.
    AwaitingLogon,
    /// Acceptor: the Logon was handed to the application.
    LogonPending,
    Active,
    /// We sent Logout and wait for the reply.
    LoggingOut,
    Closed,
    /// No connection: application messages are numbered and kept for a resend after the next
    /// Logon, and nothing is transmitted.
    Detached,
}

/// Counters for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Messages dropped for a bad CheckSum.
    pub garbled: u64,
    /// Session-level Rejects (35=3) sent.
    pub rejects_sent: u64,
    /// ResendRequests received.
    pub resends_served: u64,
    /// ResendRequests sent.
    pub resends_requested: u64,
}

/// Everything but the receive buffer, so a parsed message (which borrows the buffer) and the
/// state can be used together.
#[derive(Debug)]
struct Core {
    config: SessionConfig,
    initiator: Option<InitiatorLogon>,
    state: State,
    their_comp_id: String,
    heartbeat_ns: u64,
    in_seq_next: u64,
    out_seq_next: u64,
    /// MsgSeqNum of the message whose gap the last ResendRequest asked to fill: the request is
    /// outstanding until the expected MsgSeqNum passes it (no second request meanwhile).
    resend_asked_until: u64,
    /// MsgSeqNum of a Logon that came ahead of the expected number: it was handled already, so
    /// the resend that fills the gap before it skips it.
    logon_seq_ahead: Option<u64>,
    /// MsgSeqNum and ResetSeqNumFlag of the Logon the application is deciding on.
    logon_seq: u64,
    logon_reset: bool,
    created_ns: u64,
    last_rx_ns: u64,
    last_tx_ns: u64,
    test_request_sent_ns: Option<u64>,
    logout_sent_ns: u64,
    close_reason: Option<String>,
    /// A Logout arrived: the session ended by agreement, not by losing the connection.
    logout_received: bool,
    store: ResendStore,
    encoder: Encoder,
    tx: Vec<u8>,
    stats: SessionStats,
}

/// One FIX session over one connection.
#[derive(Debug)]
pub struct Session {
    rx: Vec<u8>,
    rx_start: usize,
    /// The field index of the message being handled (reused: see [`codec::Fields`]).
    fields: codec::Fields,
    core: Core,
}

/// How `admit` disposed of a framed message.
enum Admit {
    Handled,
    Logon,
    App,
}

impl Session {
    /// An acceptor (the venue side), waiting for a Logon.
    pub fn acceptor(config: SessionConfig, now_ns: u64) -> Session {
        Session::with_core(Core::new(config, None, now_ns))
    }

    /// An initiator (a client): its Logon is queued in the transmit buffer at once, with
    /// ResetSeqNumFlag (both sides start from 1).
    pub fn initiator(
        config: SessionConfig,
        our_comp_id: &str,
        logon: InitiatorLogon,
        now_ns: u64,
    ) -> Session {
        Session::initiator_resuming(config, our_comp_id, logon, None, now_ns)
    }

    /// An initiator that continues `resume`'s sequence numbers (no ResetSeqNumFlag): a venue
    /// that sent more than it received from us answers the Logon ahead of `in_seq_next`, and the
    /// session asks for the gap, whose messages then arrive with PossDupFlag.
    pub fn initiator_resuming(
        config: SessionConfig,
        our_comp_id: &str,
        logon: InitiatorLogon,
        resume: Option<SessionState>,
        now_ns: u64,
    ) -> Session {
        let config = SessionConfig { our_comp_id: our_comp_id.to_owned(), ..config };
        let mut core = Core::new(config, Some(logon.clone()), now_ns);
        let reset = resume.is_none();
        if let Some(state) = resume {
            core.in_seq_next = state.in_seq_next;
            core.out_seq_next = state.out_seq_next;
            core.store = state.store;
        }
        core.their_comp_id = logon.target_comp_id.clone();
        core.heartbeat_ns = logon.heartbeat_s.max(1) * 1_000_000_000;
        core.send_admin(b"A", now_ns, |e| {
            e.u64(tag::ENCRYPT_METHOD, 0);
            e.u64(tag::HEART_BT_INT, logon.heartbeat_s);
            if reset {
                e.char(tag::RESET_SEQ_NUM_FLAG, b'Y');
            }
            e.str(tag::USERNAME, &logon.username);
            e.str(tag::PASSWORD, &logon.password);
        });
        Session::with_core(core)
    }

    /// A persistent session with no connection: what the application sends it is numbered
    /// and kept (the session's detached state) until a connection logs on and resumes it.
    pub fn detached(config: SessionConfig, their_comp_id: &str, state: SessionState, now_ns: u64) -> Session {
        let mut core = Core::new(config, None, now_ns);
        core.their_comp_id = their_comp_id.to_owned();
        core.in_seq_next = state.in_seq_next;
        core.out_seq_next = state.out_seq_next;
        core.store = state.store;
        core.state = State::Detached;
        Session::with_core(core)
    }

    /// The numbers and sent messages, for the session's next connection (the session keeps an
    /// empty store).
    pub fn take_state(&mut self) -> SessionState {
        SessionState {
            in_seq_next: self.core.in_seq_next,
            out_seq_next: self.core.out_seq_next,
            store: std::mem::take(&mut self.core.store),
        }
    }

    /// The numbers and sent messages as they are now (for persisting them).
    pub fn state_view(&self) -> (u64, u64, &ResendStore) {
        (self.core.in_seq_next, self.core.out_seq_next, &self.core.store)
    }

    fn with_core(core: Core) -> Session {
        Session {
            rx: Vec::with_capacity(core.config.message_bytes_max),
            rx_start: 0,
            fields: codec::Fields::default(),
            core,
        }
    }

    /// Appends bytes read from the transport.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.rx_start > 0 {
            self.rx.drain(..self.rx_start);
            self.rx_start = 0;
        }
        if self.core.state != State::Closed {
            self.rx.extend_from_slice(bytes);
        }
    }

    /// Processes buffered messages until one needs the application, or none is left.
    pub fn poll(&mut self, now_ns: u64) -> Poll<'_> {
        // The loop decides; the message it stops at is viewed again after it, because a borrow
        // returned from inside a loop that also re-borrows would not pass the borrow checker.
        let (range, fields, admit) = loop {
            if matches!(self.core.state, State::Closed | State::LogonPending) {
                return Poll::Idle;
            }
            let rest = &self.rx[self.rx_start..];
            let len = match codec::frame(rest, self.core.config.message_bytes_max) {
                Ok(None) => return Poll::Idle,
                Ok(Some(len)) => len,
                Err(FrameError::BadChecksum { len, .. }) => {
                    self.core.stats.garbled += 1;
                    self.rx_start += len;
                    continue;
                }
                Err(e) => {
                    self.core
                        .logout_and_close(&format!("{e}; closing: the message boundary is lost"), now_ns);
                    return Poll::Idle;
                }
            };
            let start = self.rx_start;
            self.rx_start += len;
            self.core.last_rx_ns = now_ns;
            self.core.test_request_sent_ns = None;
            let bytes = &self.rx[start..start + len];
            let message = match Message::parse(bytes, &mut self.fields) {
                Ok(message) => message,
                Err(e) => {
                    self.core.reject_unparsed(bytes, &e, now_ns);
                    continue;
                }
            };
            match self.core.admit(&message, now_ns) {
                Admit::Handled => continue,
                admit => break (start..start + len, message.fields().len(), admit),
            }
        };
        let message = Message::from_parts(&self.rx[range], self.fields.indexed(fields));
        match admit {
            Admit::Logon => Poll::Logon(LogonRequest {
                sender_comp_id: message.get_str(tag::SENDER_COMP_ID).unwrap_or_default(),
                username: message.get_str(tag::USERNAME),
                password: message.get_str(tag::PASSWORD),
                heartbeat_s: self.core.heartbeat_ns / 1_000_000_000,
                reset_seq_num: self.core.logon_reset,
            }),
            _ => Poll::App(message),
        }
    }

    /// Accepts the pending Logon of a session that starts from 1: replies with a Logon and
    /// starts the session.
    pub fn accept_logon(&mut self, now_ns: u64) {
        let state = SessionState::new(&self.core.config);
        self.core.logon_reset = true;
        self.accept_logon_resuming(state, now_ns);
    }

    /// Accepts the pending Logon, continuing `state` (the counterparty's persistent session):
    /// with ResetSeqNumFlag both sides start again from 1 and the flag is echoed; a Logon below
    /// the expected MsgSeqNum is refused with the reason; one above it is accepted and the gap
    /// asked for. The reply carries our next MsgSeqNum, so a counterparty that missed messages
    /// sees the gap and asks for them.
    pub fn accept_logon_resuming(&mut self, state: SessionState, now_ns: u64) {
        debug_assert_eq!(self.core.state, State::LogonPending);
        let core = &mut self.core;
        let heartbeat_s = core.heartbeat_ns / 1_000_000_000;
        let seq = core.logon_seq;
        core.state = State::Active;
        if core.logon_reset {
            core.in_seq_next = seq + 1;
            core.out_seq_next = 1;
            core.store = state.store;
            core.store.clear();
        } else {
            core.in_seq_next = state.in_seq_next;
            core.out_seq_next = state.out_seq_next;
            core.store = state.store;
            if seq < core.in_seq_next {
                let text = format!("MsgSeqNum too low, expecting {} but received {seq}", core.in_seq_next);
                core.logout_and_close(&text, now_ns);
                return;
            }
        }
        let reset = core.logon_reset;
        core.send_admin(b"A", now_ns, |e| {
            e.u64(tag::ENCRYPT_METHOD, 0);
            e.u64(tag::HEART_BT_INT, heartbeat_s);
            if reset {
                e.char(tag::RESET_SEQ_NUM_FLAG, b'Y');
            }
        });
        if seq == core.in_seq_next {
            core.in_seq_next = seq + 1;
        } else if seq > core.in_seq_next {
            core.ask_resend(seq, now_ns);
            core.logon_seq_ahead = Some(seq);
        }
    }

    /// Refuses the pending Logon: Logout with `text`, then close.
    pub fn refuse_logon(&mut self, text: &str, now_ns: u64) {
        self.core.state = State::Active; // so the Logout goes out normally
        self.core.logout_and_close(text, now_ns);
    }

    /// Sends an application message (its header is written here); it is kept for resend. A
    /// detached session numbers and keeps it without transmitting it.
    pub fn send(&mut self, msg_type: &[u8], now_ns: u64, fields: impl FnOnce(&mut Encoder)) {
        match self.core.state {
            State::Active | State::LoggingOut => self.core.send_app(msg_type, now_ns, fields),
            State::Detached => {
                self.core.send_app(msg_type, now_ns, fields);
                self.core.tx.clear();
            }
            _ => {}
        }
    }

    /// Sends an application message that is numbered but not kept for resend: a ResendRequest
    /// over it is answered with a gap fill. For market data (35=W, 35=X), stale once missed:
    /// a client that lost some asks for a fresh snapshot instead. A detached session sends and
    /// numbers nothing (its subscriptions ended with its connection).
    pub fn send_unstored(&mut self, msg_type: &[u8], now_ns: u64, fields: impl FnOnce(&mut Encoder)) {
        if matches!(self.core.state, State::Active | State::LoggingOut) {
            self.core.send_admin(msg_type, now_ns, fields);
        }
    }

    /// Sends a session-level Reject (35=3) for message `ref_seq`.
    pub fn reject(
        &mut self,
        ref_seq: u64,
        ref_msg_type: &[u8],
        reason: u32,
        ref_tag: Option<u32>,
        text: &str,
        now_ns: u64,
    ) {
        self.core.reject(ref_seq, ref_msg_type, reason, ref_tag, text, now_ns);
    }

    /// Starts a Logout with `text`; the session closes on the reply or after a timeout.
    pub fn logout(&mut self, text: &str, now_ns: u64) {
        if self.core.state == State::Active {
            self.core.send_logout(text, now_ns);
            self.core.state = State::LoggingOut;
            self.core.logout_sent_ns = now_ns;
        }
    }

    /// The transport lost the connection: the session ends without a Logout.
    pub fn connection_lost(&mut self) {
        self.core.close("connection lost");
    }

    /// Heartbeats, test requests and timeouts; call at [`Session::deadline`] (or any time).
    pub fn on_timer(&mut self, now_ns: u64) {
        self.core.on_timer(now_ns);
    }

    /// When [`Session::on_timer`] next has work.
    pub fn deadline(&self) -> u64 {
        self.core.deadline()
    }

    /// Bytes to write to the transport (cleared by the call).
    pub fn take_tx(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.core.tx)
    }

    /// Hands the bytes to write to `sink` and clears them, keeping the buffer: the transports'
    /// way, so that sending allocates nothing once the buffer has grown.
    pub fn drain_tx(&mut self, sink: impl FnOnce(&[u8])) {
        if !self.core.tx.is_empty() {
            sink(&self.core.tx);
            self.core.tx.clear();
        }
    }

    /// True when bytes wait to be written.
    pub fn has_tx(&self) -> bool {
        !self.core.tx.is_empty()
    }

    /// True when the session ended: write what is left in the transmit buffer, then close.
    pub fn is_closed(&self) -> bool {
        self.core.state == State::Closed
    }

    /// True once Logon is done (both sides) and until Logout.
    pub fn is_active(&self) -> bool {
        self.core.state == State::Active
    }

    /// True when the counterparty sent a Logout (a graceful end, as opposed to a lost
    /// connection or a protocol error).
    pub fn logout_received(&self) -> bool {
        self.core.logout_received
    }

    /// Counts the end as agreed (the venue's own shutdown Logout): cancel-on-disconnect does not
    /// apply to it.
    pub fn mark_logout_received(&mut self) {
        self.core.logout_received = true;
    }

    /// Why the session closed, when it did.
    pub fn close_reason(&self) -> Option<&str> {
        self.core.close_reason.as_deref()
    }

    /// The counterparty's CompID (known after Logon).
    pub fn their_comp_id(&self) -> &str {
        &self.core.their_comp_id
    }

    /// Next MsgSeqNum expected from the counterparty.
    pub fn in_seq_next(&self) -> u64 {
        self.core.in_seq_next
    }

    /// MsgSeqNum of the next message sent.
    pub fn out_seq_next(&self) -> u64 {
        self.core.out_seq_next
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.core.stats
    }
}

impl Core {
    fn new(config: SessionConfig, initiator: Option<InitiatorLogon>, now_ns: u64) -> Core {
        Core {
            store: ResendStore::new(config.resend_store_max, RESEND_STORE_BYTES_MAX),
            config,
            initiator,
            state: State::AwaitingLogon,
            their_comp_id: String::new(),
            heartbeat_ns: 30_000_000_000,
            in_seq_next: 1,
            out_seq_next: 1,
            resend_asked_until: 0,
            logon_seq_ahead: None,
            logon_seq: 0,
            logon_reset: false,
            created_ns: now_ns,
            last_rx_ns: now_ns,
            last_tx_ns: now_ns,
            test_request_sent_ns: None,
            logout_sent_ns: 0,
            close_reason: None,
            logout_received: false,
            encoder: Encoder::new(),
            tx: Vec::new(),
            stats: SessionStats::default(),
        }
    }

    fn admit(&mut self, msg: &Message<'_>, now_ns: u64) -> Admit {
        let msg_type = msg.msg_type();
        let Ok(Some(seq)) = msg.get_u64(tag::MSG_SEQ_NUM) else {
            // Without a MsgSeqNum nothing can be referenced or resent: QuickFIX logs out too.
            self.logout_and_close("MsgSeqNum (34) missing or not a number", now_ns);
            return Admit::Handled;
        };
        let sender = msg.get_str(tag::SENDER_COMP_ID);
        let target = msg.get_str(tag::TARGET_COMP_ID);
        if self.state == State::AwaitingLogon {
            return self.admit_logon(msg, seq, sender, target, now_ns);
        }
        if let Some(done) = self.check_header(msg, seq, sender, target, now_ns) {
            return done;
        }
        if let Some(done) = self.check_sequence(msg, seq, now_ns) {
            return done;
        }
        match msg_type {
            b"4" => return self.sequence_reset(msg, seq, now_ns),
            _ => self.advance_in(seq + 1),
        }
        self.on_session_message(msg, seq, now_ns)
    }

    /// CompIDs and SendingTime of a message on an established session: `Some` when the
    /// message was refused (and the session possibly ended), `None` to go on.
    fn check_header(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        sender: Option<&str>,
        target: Option<&str>,
        now_ns: u64,
    ) -> Option<Admit> {
        let msg_type = msg.msg_type();
        if sender != Some(self.their_comp_id.as_str()) || target != Some(self.config.our_comp_id.as_str()) {
            let tag_at_fault = if sender != Some(self.their_comp_id.as_str()) {
                tag::SENDER_COMP_ID
            } else {
                tag::TARGET_COMP_ID
            };
            self.reject(seq, msg_type, 9, Some(tag_at_fault), "CompID problem", now_ns);
            self.logout_and_close("CompID problem", now_ns);
            return Some(Admit::Handled);
        }
        if msg.get(tag::SENDING_TIME).is_none() {
            self.reject(
                seq,
                msg_type,
                1,
                Some(tag::SENDING_TIME),
                "Required tag missing: SendingTime",
                now_ns,
            );
            self.in_seq_next = self.in_seq_next.max(seq + 1);
            return Some(Admit::Handled);
        }
        None
    }

    /// MsgSeqNum against the expected one (a SequenceReset-Reset, a duplicate, a gap) and the
    /// fields of an in-sequence message: `Some` when the message was handled here, `None` when
    /// it is the next in sequence and well formed.
    fn check_sequence(&mut self, msg: &Message<'_>, seq: u64, now_ns: u64) -> Option<Admit> {
        let msg_type = msg.msg_type();
        if msg_type == b"4" && !msg.flag(tag::GAP_FILL_FLAG) {
            // SequenceReset-Reset ignores MsgSeqNum, so a faulty one consumes none either.
            if let Err(violation) = self.check_fields(msg) {
                self.reject_fields(seq, msg_type, violation, now_ns);
                return Some(Admit::Handled);
            }
            return Some(self.sequence_reset(msg, seq, now_ns));
        }
        if seq < self.in_seq_next {
            if !msg.flag(tag::POSS_DUP_FLAG) {
                let text = format!("MsgSeqNum too low, expecting {} but received {seq}", self.in_seq_next);
                self.logout_and_close(&text, now_ns);
            }
            return Some(Admit::Handled);
        }
        if seq > self.in_seq_next {
            if msg_type == b"5" {
                // A Logout beyond a gap still ends the session.
                self.send_logout("", now_ns);
                self.close("counterparty logged out");
                return Some(Admit::Handled);
            }
            if msg_type == b"2" {
                // A ResendRequest is served whatever its MsgSeqNum (as QuickFIX does): when
                // both sides missed the other's last messages (a crash on one side, say), each
                // waiting for the other's resend before serving the other's request would ask
                // for ever, every request another gap at the other end.
                self.serve_resend(msg, seq, now_ns);
            }
            // One request at a time: it asks for everything from the expected MsgSeqNum on, so
            // what arrives while it is outstanding comes again in its answer.
            if self.in_seq_next > self.resend_asked_until {
                self.ask_resend(seq, now_ns);
            }
            return Some(Admit::Handled);
        }
        // Only an in-sequence message is checked: a duplicate is ignored anyway, and one past a
        // gap is checked when it comes again in the resend. A Logout is honoured whatever its
        // fields: rejecting it would only leave the counterparty waiting for its timeout.
        let violation = if msg_type == b"5" { Ok(()) } else { self.check_fields(msg) };
        if let Err(violation) = violation {
            self.in_seq_next = seq + 1;
            self.reject_fields(seq, msg_type, violation, now_ns);
            return Some(Admit::Handled);
        }
        None
    }

    /// An in-sequence, well-formed message: the session messages are answered here, the rest
    /// go to the application once the session is active.
    fn on_session_message(&mut self, msg: &Message<'_>, seq: u64, now_ns: u64) -> Admit {
        match msg.msg_type() {
            b"0" => {}
            b"1" => {
                let id = msg.get(tag::TEST_REQ_ID).unwrap_or(b"").to_vec();
                self.send_admin(b"0", now_ns, |e| {
                    if !id.is_empty() {
                        e.bytes(tag::TEST_REQ_ID, &id);
                    }
                });
            }
            b"2" => self.serve_resend(msg, seq, now_ns),
            // Session Rejects go to the application: a client shows them to its user.
            b"3" if self.state == State::Active => return Admit::App,
            b"3" => {}
            b"5" => {
                if self.state != State::LoggingOut {
                    self.send_logout("", now_ns);
                }
                self.logout_received = true;
                match msg.get_str(tag::TEXT) {
                    Some(text) => self.close(&format!("counterparty logged out: {text}")),
                    None => self.close("counterparty logged out"),
                }
            }
            b"A" => {
                if self.initiator.is_some() && self.state == State::AwaitingLogon {
                    self.state = State::Active;
                } else {
                    self.logout_and_close("Logon received on an active session", now_ns);
                }
            }
            _ if self.state == State::Active => return Admit::App,
            _ => {}
        }
        Admit::Handled
    }

    fn admit_logon(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        sender: Option<&str>,
        target: Option<&str>,
        now_ns: u64,
    ) -> Admit {
        if self.initiator.is_some() && msg.msg_type() == b"5" {
            // The venue refused our Logon; its text says why.
            self.logout_received = true;
            let text = msg.get_str(tag::TEXT).unwrap_or("no reason given");
            self.close(&format!("counterparty logged out: {text}"));
            return Admit::Handled;
        }
        if msg.msg_type() != b"A" {
            self.close("first message was not a Logon");
            return Admit::Handled;
        }
        if self.initiator.is_some() {
            self.admit_logon_reply(msg, seq, sender, now_ns)
        } else {
            self.admit_logon_request(msg, seq, sender, target, now_ns)
        }
    }

    /// Initiator: the venue's reply to our Logon.
    fn admit_logon_reply(&mut self, msg: &Message<'_>, seq: u64, sender: Option<&str>, now_ns: u64) -> Admit {
        let expected = self.initiator.as_ref().map(|i| i.target_comp_id.as_str());
        if sender != expected {
            self.close("Logon reply from an unexpected CompID");
            return Admit::Handled;
        }
        self.state = State::Active;
        if seq > self.in_seq_next && !msg.flag(tag::RESET_SEQ_NUM_FLAG) {
            // The venue sent what we have not seen (while we were away): ask for it.
            self.ask_resend(seq, now_ns);
            self.logon_seq_ahead = Some(seq);
        } else {
            self.in_seq_next = seq + 1;
        }
        Admit::Handled
    }

    /// Acceptor: a counterparty's Logon, checked (HeartBtInt, CompIDs, fields, ResetSeqNumFlag)
    /// and left pending for the caller to accept with the session's persisted numbers.
    fn admit_logon_request(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        sender: Option<&str>,
        target: Option<&str>,
        now_ns: u64,
    ) -> Admit {
        let heartbeat_s = match msg.get_u64(tag::HEART_BT_INT) {
            Ok(Some(s)) if (1..=HEARTBEAT_S_MAX).contains(&s) => s,
            _ => {
                let text = format!("HeartBtInt (108) must be 1 to {HEARTBEAT_S_MAX} seconds");
                return self.refuse_logon(sender.unwrap_or_default(), &text, now_ns);
            }
        };
        let (Some(sender), true) = (sender, target == Some(self.config.our_comp_id.as_str())) else {
            self.close("Logon without SenderCompID or with a TargetCompID that is not ours");
            return Admit::Handled;
        };
        if let Err(violation) = self.check_fields(msg) {
            // No session exists yet to carry a Reject: refuse the Logon, as QuickFIX does.
            return self.refuse_logon(sender, &format!("Logon refused: {violation}"), now_ns);
        }
        if seq != 1 && msg.flag(tag::RESET_SEQ_NUM_FLAG) {
            let text = "ResetSeqNumFlag (141) on a Logon whose MsgSeqNum is not 1";
            return self.refuse_logon(sender, text, now_ns);
        }
        self.their_comp_id = sender.to_owned();
        self.heartbeat_ns = heartbeat_s * 1_000_000_000;
        self.state = State::LogonPending;
        // The numbers are decided with the session's persisted state, at acceptance.
        self.logon_seq = seq;
        self.logon_reset = msg.flag(tag::RESET_SEQ_NUM_FLAG);
        Admit::Logon
    }

    /// Answers a Logon it refuses with a Logout naming why (addressed to `sender`), then closes.
    fn refuse_logon(&mut self, sender: &str, text: &str, now_ns: u64) -> Admit {
        self.their_comp_id = sender.to_owned();
        self.state = State::Active;
        self.logout_and_close(text, now_ns);
        Admit::Handled
    }

    fn sequence_reset(&mut self, msg: &Message<'_>, seq: u64, now_ns: u64) -> Admit {
        match msg.get_u64(tag::NEW_SEQ_NO) {
            Ok(Some(new)) if new >= self.in_seq_next => self.advance_in(new),
            Ok(Some(new)) => {
                let text = format!("NewSeqNo {new} is below the expected {}", self.in_seq_next);
                self.reject(seq, b"4", 5, Some(tag::NEW_SEQ_NO), &text, now_ns);
            }
            _ => self.reject(seq, b"4", 1, Some(tag::NEW_SEQ_NO), "Required tag missing: NewSeqNo", now_ns),
        }
        Admit::Handled
    }

    fn serve_resend(&mut self, msg: &Message<'_>, seq: u64, now_ns: u64) {
        self.stats.resends_served += 1;
        let (Ok(Some(begin)), Ok(Some(end))) = (msg.get_u64(tag::BEGIN_SEQ_NO), msg.get_u64(tag::END_SEQ_NO))
        else {
            self.reject(
                seq,
                b"2",
                1,
                Some(tag::BEGIN_SEQ_NO),
                "Required tag missing: BeginSeqNo/EndSeqNo",
                now_ns,
            );
            return;
        };
        let last = self.out_seq_next - 1;
        let end = if end == 0 || end > last { last } else { end };
        if begin == 0 || begin > end {
            return;
        }
        let store = std::mem::take(&mut self.store);
        // Every seq in begin..=end is either a stored message, resent, or inside a gap that
        // one SequenceReset-GapFill covers (admin messages, and messages the store evicted).
        let mut next = begin;
        for stored in store.range(begin, end) {
            if stored.seq > next {
                self.gap_fill(next, stored.seq, now_ns);
            }
            self.encoder.begin(
                stored.msg_type,
                &self.config.our_comp_id,
                &self.their_comp_id,
                stored.seq,
                now_ns,
            );
            self.encoder.char(tag::POSS_DUP_FLAG, b'Y');
            self.encoder.time(tag::ORIG_SENDING_TIME, stored.sent_ns);
            self.encoder.raw(stored.fields);
            self.tx.extend_from_slice(self.encoder.finish());
            next = stored.seq + 1;
        }
        if next <= end {
            self.gap_fill(next, end + 1, now_ns);
        }
        let evicted = store.evicted_until();
        let kept = store.messages_max();
        self.store = store;
        self.last_tx_ns = now_ns;
        if begin <= evicted {
            // Gap-filled, but some of them were application messages: say so in words (News,
            // 35=B), since a SequenceReset carries no text.
            let text = format!(
                "MsgSeqNum {begin} to {} are past this session's resend store (it keeps the last \
                 {kept} messages): they were gap-filled, not resent",
                evicted.min(end)
            );
            self.send_app(b"B", now_ns, |e| {
                e.str(tag::HEADLINE, "resend beyond the store");
                e.u64(tag::NO_LINES_OF_TEXT, 1);
                e.str(tag::TEXT, &text);
            });
        }
    }

    /// Asks for everything from the expected MsgSeqNum on, having received `seq` (a message,
    /// or the Logon, ahead of it).
    fn ask_resend(&mut self, seq: u64, now_ns: u64) {
        let begin = self.in_seq_next;
        self.send_admin(b"2", now_ns, |e| {
            e.u64(tag::BEGIN_SEQ_NO, begin);
            e.u64(tag::END_SEQ_NO, 0);
        });
        self.resend_asked_until = seq;
        self.stats.resends_requested += 1;
    }

    /// The next expected MsgSeqNum is now `next`; the Logon that came ahead of a gap was
    /// handled already, so reaching it moves past it.
    fn advance_in(&mut self, next: u64) {
        self.in_seq_next = next;
        if self.logon_seq_ahead == Some(next) {
            self.in_seq_next = next + 1;
            self.logon_seq_ahead = None;
        }
    }

    /// SequenceReset-GapFill sent as message `from`, moving the counterparty to `next`.
    fn gap_fill(&mut self, from: u64, next: u64, now_ns: u64) {
        self.encoder.begin(b"4", &self.config.our_comp_id, &self.their_comp_id, from, now_ns);
        self.encoder.char(tag::POSS_DUP_FLAG, b'Y');
        self.encoder.char(tag::GAP_FILL_FLAG, b'Y');
        self.encoder.u64(tag::NEW_SEQ_NO, next);
        self.tx.extend_from_slice(self.encoder.finish());
    }

    /// A framed message whose fields do not parse: Reject it if its MsgSeqNum can be read and
    /// is the expected one (QuickFIX then counts it), else drop it as garbled.
    fn reject_unparsed(&mut self, bytes: &[u8], e: &codec::ParseError, now_ns: u64) {
        let seq = find_field(bytes, b"\x0134=").and_then(codec::parse_u64);
        let msg_type = find_field(bytes, b"\x0135=").unwrap_or(b"");
        match seq {
            Some(seq) if seq == self.in_seq_next && self.state == State::Active => {
                self.in_seq_next += 1;
                let msg_type = msg_type.to_vec();
                self.reject(seq, &msg_type, e.reject_reason(), e.tag(), &e.to_string(), now_ns);
            }
            _ => self.stats.garbled += 1,
        }
    }

    /// The data dictionary's verdict on `msg`; always `Ok` for an initiator or when the check
    /// is configured off.
    fn check_fields(&self, msg: &Message<'_>) -> Result<(), FieldViolation> {
        if !self.config.validate_fields || self.initiator.is_some() {
            return Ok(());
        }
        dictionary::check(msg)
    }

    /// A session Reject for a dictionary violation: RefTagID is the tag, the text names it.
    fn reject_fields(&mut self, seq: u64, msg_type: &[u8], violation: FieldViolation, now_ns: u64) {
        let text = violation.to_string();
        self.reject(seq, msg_type, violation.reject_reason(), Some(violation.tag()), &text, now_ns);
    }

    fn reject(
        &mut self,
        ref_seq: u64,
        ref_msg_type: &[u8],
        reason: u32,
        ref_tag: Option<u32>,
        text: &str,
        now_ns: u64,
    ) {
        self.stats.rejects_sent += 1;
        let ref_msg_type = ref_msg_type.to_vec();
        self.send_admin(b"3", now_ns, |e| {
            e.u64(tag::REF_SEQ_NUM, ref_seq);
            if let Some(t) = ref_tag {
                e.u64(tag::REF_TAG_ID, u64::from(t));
            }
            if !ref_msg_type.is_empty() && !ref_msg_type.contains(&codec::SOH) {
                e.bytes(tag::REF_MSG_TYPE, &ref_msg_type);
            }
            e.u64(tag::SESSION_REJECT_REASON, u64::from(reason));
            e.str(tag::TEXT, text);
        });
    }

    fn send_logout(&mut self, text: &str, now_ns: u64) {
        self.send_admin(b"5", now_ns, |e| {
            if !text.is_empty() {
                e.str(tag::TEXT, text);
            }
        });
    }

    fn logout_and_close(&mut self, text: &str, now_ns: u64) {
        if self.state != State::Closed && !self.their_comp_id.is_empty() {
            self.send_logout(text, now_ns);
        }
        self.close(text);
    }

    fn close(&mut self, reason: &str) {
        self.state = State::Closed;
        self.close_reason.get_or_insert_with(|| reason.to_owned());
    }

    /// Sends a message that is not kept for resend (admin messages are gap-filled).
    fn send_admin(&mut self, msg_type: &[u8], now_ns: u64, fields: impl FnOnce(&mut Encoder)) {
        let seq = self.out_seq_next;
        self.out_seq_next += 1;
        self.encoder.begin(msg_type, &self.config.our_comp_id, &self.their_comp_id, seq, now_ns);
        fields(&mut self.encoder);
        self.tx.extend_from_slice(self.encoder.finish());
        self.last_tx_ns = now_ns;
    }

    fn send_app(&mut self, msg_type: &[u8], now_ns: u64, fields: impl FnOnce(&mut Encoder)) {
        let seq = self.out_seq_next;
        self.out_seq_next += 1;
        self.encoder.begin(msg_type, &self.config.our_comp_id, &self.their_comp_id, seq, now_ns);
        let header_len = self.encoder.body().len();
        fields(&mut self.encoder);
        self.store.push(seq, msg_type, &self.encoder.body()[header_len..], now_ns);
        self.tx.extend_from_slice(self.encoder.finish());
        self.last_tx_ns = now_ns;
    }

    fn on_timer(&mut self, now_ns: u64) {
        match self.state {
            State::AwaitingLogon | State::LogonPending => {
                if now_ns.saturating_sub(self.created_ns) >= HANDSHAKE_TIMEOUT_NS {
                    self.close("no Logon in time");
                }
            }
            State::LoggingOut => {
                if now_ns.saturating_sub(self.logout_sent_ns) >= HANDSHAKE_TIMEOUT_NS {
                    self.close("no Logout reply in time");
                }
            }
            State::Active => {
                if let Some(sent) = self.test_request_sent_ns {
                    if now_ns.saturating_sub(sent) >= self.heartbeat_ns {
                        self.logout_and_close("heartbeat timeout: no answer to TestRequest", now_ns);
                        return;
                    }
                } else if now_ns.saturating_sub(self.last_rx_ns) >= self.heartbeat_ns + self.heartbeat_ns / 5
                {
                    self.send_admin(b"1", now_ns, |e| e.u64(tag::TEST_REQ_ID, now_ns));
                    self.test_request_sent_ns = Some(now_ns);
                }
                if now_ns.saturating_sub(self.last_tx_ns) >= self.heartbeat_ns {
                    self.send_admin(b"0", now_ns, |_| {});
                }
            }
            State::Closed | State::Detached => {}
        }
    }

    fn deadline(&self) -> u64 {
        match self.state {
            State::AwaitingLogon | State::LogonPending => self.created_ns + HANDSHAKE_TIMEOUT_NS,
            State::LoggingOut => self.logout_sent_ns + HANDSHAKE_TIMEOUT_NS,
            State::Active => {
                let rx_due = match self.test_request_sent_ns {
                    Some(sent) => sent + self.heartbeat_ns,
                    None => self.last_rx_ns + self.heartbeat_ns + self.heartbeat_ns / 5,
                };
                rx_due.min(self.last_tx_ns + self.heartbeat_ns)
            }
            State::Closed | State::Detached => u64::MAX,
        }
    }
}

/// The value after `needle` (e.g. `<SOH>34=`) up to the next SOH, scanning raw bytes.
fn find_field<'a>(bytes: &'a [u8], needle: &[u8]) -> Option<&'a [u8]> {
    let at = bytes.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let len = bytes[at..].iter().position(|&b| b == codec::SOH)?;
    Some(&bytes[at..at + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn venue(now: u64) -> Session {
        Session::acceptor(SessionConfig::default(), now)
    }

    fn client(now: u64) -> Session {
        let logon = InitiatorLogon {
            target_comp_id: "EXCHANGE".into(),
            heartbeat_s: 10,
            username: "alice".into(),
            password: "pw".into(),
        };
        Session::initiator(SessionConfig::default(), "alice", logon, now)
    }

    /// Everything `tx` holds, as readable messages.
    fn messages(tx: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < tx.len() {
            let len = codec::frame(&tx[at..], 1 << 20).unwrap().unwrap();
            out.push(String::from_utf8_lossy(&tx[at..at + len]).replace('\x01', "|"));
            at += len;
        }
        out
    }

    fn has(msg: &str, field: &str) -> bool {
        msg.contains(&format!("|{field}|"))
    }

    /// Delivers `from`'s output to `to`, running the venue's logon decision as `accept`.
    fn pump(from: &mut Session, to: &mut Session, now: u64, accept: bool) -> Vec<String> {
        let tx = from.take_tx();
        let seen = messages(&tx);
        to.feed(&tx);
        loop {
            match to.poll(now) {
                Poll::Idle => break,
                Poll::Logon(req) => {
                    assert_eq!(req.sender_comp_id, "alice");
                    assert_eq!(req.password, Some("pw"));
                    if accept {
                        to.accept_logon(now);
                    } else {
                        to.refuse_logon("wrong password", now);
                    }
                }
                Poll::App(msg) => {
                    let id = msg.get_str(tag::CL_ORD_ID).unwrap_or("").to_owned();
                    to.send(b"8", now, |e| e.str(tag::CL_ORD_ID, &id));
                }
            }
        }
        seen
    }

    fn logged_on() -> (Session, Session) {
        let (mut c, mut v) = (client(0), venue(0));
        pump(&mut c, &mut v, 0, true);
        pump(&mut v, &mut c, 0, true);
        assert!(c.is_active() && v.is_active());
        (c, v)
    }

    fn app(c: &mut Session, id: &str, now: u64) {
        c.send(b"D", now, |e| e.str(tag::CL_ORD_ID, id));
    }

    #[test]
    fn logon_handshake_and_application_round_trip() {
        let (mut c, mut v) = logged_on();
        app(&mut c, "a1", 1);
        pump(&mut c, &mut v, 1, true);
        let replies = pump(&mut v, &mut c, 1, true);
        assert_eq!(replies.len(), 1);
        assert!(
            has(&replies[0], "35=8") && has(&replies[0], "11=a1") && has(&replies[0], "34=2"),
            "{replies:?}"
        );
        assert_eq!((v.in_seq_next(), v.out_seq_next()), (3, 3));
    }

    #[test]
    fn refused_logon_gets_a_logout_with_the_reason() {
        let (mut c, mut v) = (client(0), venue(0));
        pump(&mut c, &mut v, 0, false);
        assert!(v.is_closed());
        let out = messages(&v.take_tx());
        assert!(has(&out[0], "35=5") && has(&out[0], "58=wrong password"), "{out:?}");
    }

    #[test]
    fn first_message_must_be_logon() {
        let mut v = venue(0);
        let mut c = logged_on().0; // an active client whose next message is not a Logon
        app(&mut c, "x", 0);
        v.feed(&c.take_tx());
        assert!(matches!(v.poll(0), Poll::Idle));
        assert!(v.is_closed());
        assert!(v.take_tx().is_empty(), "nothing is said to an unknown peer");
    }

    #[test]
    fn too_high_asks_for_resend_and_gap_fill_covers_admin_messages() {
        let (mut c, mut v) = logged_on();
        app(&mut c, "lost", 1);
        let _lost = c.take_tx(); // never delivered
        app(&mut c, "a2", 2);
        pump(&mut c, &mut v, 2, true);
        let out = messages(&v.take_tx());
        assert!(has(&out[0], "35=2") && has(&out[0], "7=2") && has(&out[0], "16=0"), "{out:?}");
        assert_eq!(v.in_seq_next(), 2);
        // The client answers the ResendRequest: both app messages again, PossDup.
        c.feed(&{
            let mut e = Encoder::new();
            e.begin(b"2", "EXCHANGE", "alice", 2, 3);
            e.u64(tag::BEGIN_SEQ_NO, 2);
            e.u64(tag::END_SEQ_NO, 0);
            e.finish().to_vec()
        });
        assert!(matches!(c.poll(3), Poll::Idle));
        let resent = pump(&mut c, &mut v, 3, true);
        assert_eq!(resent.len(), 2, "{resent:?}");
        assert!(resent.iter().all(|m| has(m, "43=Y") && m.contains("|122=")), "{resent:?}");
        assert_eq!(v.in_seq_next(), 4);
    }

    #[test]
    fn resend_request_gap_fills_admin_and_resends_app() {
        let (_c, mut v) = logged_on();
        v.send(b"8", 1, |e| e.str(tag::CL_ORD_ID, "x")); // seq 2
        v.on_timer(31 * S); // a TestRequest, seq 3: nothing was received for 1.2 × HeartBtInt
        v.send(b"8", 31 * S, |e| e.str(tag::CL_ORD_ID, "y"));
        let _ = v.take_tx();
        let mut e = Encoder::new();
        e.begin(b"2", "alice", "EXCHANGE", 2, 0);
        e.u64(tag::BEGIN_SEQ_NO, 1);
        e.u64(tag::END_SEQ_NO, 0);
        v.feed(e.finish());
        assert!(matches!(v.poll(32 * S), Poll::Idle));
        let out = messages(&v.take_tx());
        assert!(has(&out[0], "35=4") && has(&out[0], "34=1") && has(&out[0], "36=2"), "{out:?}");
        assert!(has(&out[1], "35=8") && has(&out[1], "34=2") && has(&out[1], "11=x"), "{out:?}");
        assert!(has(&out[2], "35=4") && has(&out[2], "34=3") && has(&out[2], "36=4"), "{out:?}");
        assert!(has(&out[3], "35=8") && has(&out[3], "34=4") && has(&out[3], "11=y"), "{out:?}");
    }

    #[test]
    fn market_data_is_numbered_but_gap_filled_on_resend() {
        let (_c, mut v) = logged_on();
        v.send_unstored(b"X", 1, |e| e.str(262, "md1")); // seq 2
        v.send(b"8", 1, |e| e.str(tag::CL_ORD_ID, "x")); // seq 3
        let sent = messages(&v.take_tx());
        assert!(has(&sent[0], "35=X") && has(&sent[0], "34=2"), "{sent:?}");
        let mut e = Encoder::new();
        e.begin(b"2", "alice", "EXCHANGE", 2, 0);
        e.u64(tag::BEGIN_SEQ_NO, 2);
        e.u64(tag::END_SEQ_NO, 0);
        v.feed(e.finish());
        assert!(matches!(v.poll(2), Poll::Idle));
        let out = messages(&v.take_tx());
        assert!(has(&out[0], "35=4") && has(&out[0], "34=2") && has(&out[0], "36=3"), "{out:?}");
        assert!(has(&out[1], "35=8") && has(&out[1], "34=3") && has(&out[1], "11=x"), "{out:?}");
        assert_eq!(out.len(), 2, "{out:?}");
    }

    #[test]
    fn a_resend_past_the_store_is_gap_filled_and_said_in_words() {
        let (_c, v) = logged_on();
        let config = SessionConfig { resend_store_max: 2, ..SessionConfig::default() };
        let mut state = v_state(v);
        state.store = ResendStore::new(config.resend_store_max, RESEND_STORE_BYTES_MAX);
        let mut v = Session::detached(config, "alice", state, 0);
        for id in ["a", "b", "c"] {
            v.send(b"8", 1, |e| e.str(tag::CL_ORD_ID, id)); // seqs 2, 3, 4: "a" is evicted
        }
        v.core.state = State::Active;
        let mut e = Encoder::new();
        e.begin(b"2", "alice", "EXCHANGE", 2, 0);
        e.u64(tag::BEGIN_SEQ_NO, 1);
        e.u64(tag::END_SEQ_NO, 0);
        v.feed(e.finish());
        assert!(matches!(v.poll(2 * S), Poll::Idle));
        let out = messages(&v.take_tx());
        assert!(has(&out[0], "35=4") && has(&out[0], "36=3"), "{out:?}");
        assert!(has(&out[1], "11=b") && has(&out[2], "11=c"), "{out:?}");
        assert!(has(&out[3], "35=B") && out[3].contains("MsgSeqNum 1 to 2 are past"), "{out:?}");
    }

    /// Both sides missed the other's last message (as after a crash that cut both ways): each
    /// serves the other's ResendRequest although it arrives past a gap, so both recover with one
    /// request each, and every application message arrives.
    #[test]
    fn crossed_gaps_recover_with_one_resend_request_each() {
        let (mut c, mut v) = logged_on();
        app(&mut c, "lost", 1); // client seq 2, never delivered
        let _ = c.take_tx();
        v.send(b"8", 1, |e| e.str(tag::CL_ORD_ID, "missed")); // venue seq 2, never delivered
        let _ = v.take_tx();
        app(&mut c, "a3", 2); // client seq 3: the venue will ask for 2 on
        v.send(b"8", 2, |e| e.str(tag::CL_ORD_ID, "x")); // venue seq 3, crossing it
                                                         // The client only reads (its application sends nothing back); the venue answers each
                                                         // order with a 35=8 (`pump`).
        let mut to_client = Vec::new();
        for round in 0..4 {
            let now = 3 + round;
            pump(&mut c, &mut v, now, true);
            let tx = v.take_tx();
            to_client.extend(messages(&tx));
            c.feed(&tx);
            while let Poll::App(msg) = c.poll(now) {
                let _ = msg;
            }
        }
        assert!(c.is_active() && v.is_active());
        assert_eq!(c.in_seq_next(), v.out_seq_next(), "the client has every venue message");
        assert_eq!(v.in_seq_next(), c.out_seq_next(), "the venue has every client message");
        assert_eq!((c.stats().resends_requested, v.stats().resends_requested), (1, 1));
        for id in ["11=missed", "11=x", "11=lost", "11=a3"] {
            assert!(to_client.iter().any(|m| has(m, "35=8") && has(m, id)), "{id}: {to_client:#?}");
        }
    }

    fn v_state(mut v: Session) -> SessionState {
        v.take_state()
    }

    #[test]
    fn too_low_without_poss_dup_logs_out_with_the_reason() {
        let (mut c, mut v) = logged_on();
        app(&mut c, "a", 1);
        let tx = c.take_tx();
        v.feed(&tx);
        while !matches!(v.poll(1), Poll::Idle) {}
        v.feed(&tx); // the same seq again
        while !matches!(v.poll(1), Poll::Idle) {}
        assert!(v.is_closed());
        let out = messages(&v.take_tx());
        let logout = out.last().unwrap();
        assert!(
            has(logout, "35=5") && has(logout, "58=MsgSeqNum too low, expecting 3 but received 2"),
            "{out:?}"
        );
    }

    #[test]
    fn garbled_message_is_dropped_without_consuming_a_seq() {
        let (mut c, mut v) = logged_on();
        app(&mut c, "a", 1);
        let mut bad = c.take_tx();
        let i = bad.len() - 12;
        bad[i] ^= 0x04;
        v.feed(&bad);
        assert!(matches!(v.poll(1), Poll::Idle));
        assert_eq!((v.stats().garbled, v.in_seq_next()), (1, 2));
        // The client's next message (seq 3) is too high: the venue asks for 2 again.
        app(&mut c, "b", 2);
        pump(&mut c, &mut v, 2, true);
        assert!(v.is_active());
        assert!(messages(&v.take_tx()).iter().any(|m| has(m, "35=2") && has(m, "7=2")));
    }

    #[test]
    fn bad_body_length_and_oversize_end_the_session_with_the_reason() {
        for (bytes, reason) in [
            (b"8=FIX.4.4\x019=5\x0135=0\x0134=2\x0152=x\x0110=000\x01".to_vec(), "BodyLength"),
            (
                format!("8=FIX.4.4\x019=9000\x0135=D\x01{}", "x".repeat(100)).into_bytes(),
                "exceeds the 4096-byte",
            ),
        ] {
            let (_c, mut v) = logged_on();
            v.feed(&bytes);
            assert!(matches!(v.poll(1), Poll::Idle));
            assert!(v.is_closed());
            let out = messages(&v.take_tx());
            assert!(has(&out[0], "35=5") && out[0].contains(reason), "{out:?}");
        }
    }

    #[test]
    fn unparsable_fields_get_a_session_reject_and_consume_the_seq() {
        let (_c, mut v) = logged_on();
        let body = "35=D|49=alice|56=EXCHANGE|34=2|52=20240101-00:00:00|11=a|11=b|".replace('|', "\x01");
        let mut m = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
        let sum = codec::checksum(&m);
        m.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        v.feed(&m);
        assert!(matches!(v.poll(1), Poll::Idle));
        let out = messages(&v.take_tx());
        assert!(
            has(&out[0], "35=3") && has(&out[0], "45=2") && has(&out[0], "373=13") && has(&out[0], "371=11")
        );
        assert_eq!(v.in_seq_next(), 3);
        assert!(v.is_active());
    }

    #[test]
    fn heartbeat_then_test_request_then_timeout() {
        let (_c, mut v) = logged_on();
        v.on_timer(10 * S); // HeartBtInt 10 s: nothing sent since 0
        let out = messages(&v.take_tx());
        assert_eq!(out.len(), 1);
        assert!(has(&out[0], "35=0"));
        v.on_timer(12 * S); // 1.2 × HeartBtInt without input: TestRequest
        let out = messages(&v.take_tx());
        assert!(has(&out[0], "35=1"), "{out:?}");
        assert_eq!(v.deadline(), 22 * S);
        v.on_timer(22 * S);
        assert!(v.is_closed());
        assert!(v.close_reason().unwrap().contains("heartbeat timeout"));
    }

    #[test]
    fn test_request_is_answered_with_its_id() {
        let (mut c, mut v) = logged_on();
        c.core.send_admin(b"1", 1, |e| e.str(tag::TEST_REQ_ID, "ping-7"));
        pump(&mut c, &mut v, 1, true);
        let out = messages(&v.take_tx());
        assert!(has(&out[0], "35=0") && has(&out[0], "112=ping-7"), "{out:?}");
    }

    #[test]
    fn logout_is_answered_and_both_close() {
        let (mut c, mut v) = logged_on();
        c.logout("bye", 1);
        pump(&mut c, &mut v, 1, true);
        assert!(v.is_closed());
        pump(&mut v, &mut c, 1, true);
        assert!(c.is_closed());
    }

    #[test]
    fn comp_id_mismatch_is_rejected_and_logged_out() {
        let (_c, mut v) = logged_on();
        let mut e = Encoder::new();
        e.begin(b"D", "mallory", "EXCHANGE", 2, 0);
        v.feed(e.finish());
        assert!(matches!(v.poll(1), Poll::Idle));
        let out = messages(&v.take_tx());
        assert!(has(&out[0], "35=3") && has(&out[0], "373=9"));
        assert!(has(&out[1], "35=5"));
        assert!(v.is_closed());
    }

    /// The venue's answers to one message from the client.
    fn answers(c: &mut Session, v: &mut Session, now: u64) -> Vec<String> {
        pump(c, v, now, true);
        messages(&v.take_tx())
    }

    #[test]
    fn unknown_tag_is_rejected_and_consumes_its_seq() {
        let (mut c, mut v) = logged_on();
        c.send(b"D", 1, |e| {
            e.str(tag::CL_ORD_ID, "bad");
            e.str(9999, "x");
        });
        let out = answers(&mut c, &mut v, 1);
        assert_eq!(out.len(), 1, "the application never saw it: {out:?}");
        let reject = &out[0];
        assert!(has(reject, "35=3") && has(reject, "45=2") && has(reject, "372=D"), "{out:?}");
        assert!(has(reject, "373=0") && has(reject, "371=9999"), "{out:?}");
        assert!(has(reject, "58=Invalid tag number: 9999"), "{out:?}");
        assert_eq!((v.in_seq_next(), v.stats().rejects_sent), (3, 1));
        // The next message is in sequence (no ResendRequest) and reaches the application.
        app(&mut c, "good", 2);
        let out = answers(&mut c, &mut v, 2);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(has(&out[0], "35=8") && has(&out[0], "11=good"), "{out:?}");
        assert!(v.is_active());
    }

    #[test]
    fn defined_tag_outside_its_message_type_is_rejected() {
        let (mut c, mut v) = logged_on();
        c.send(b"D", 1, |e| {
            e.str(tag::CL_ORD_ID, "a");
            e.u64(tag::HEART_BT_INT, 30);
        });
        let out = answers(&mut c, &mut v, 1);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(has(&out[0], "35=3") && has(&out[0], "373=2") && has(&out[0], "371=108"), "{out:?}");
        assert!(has(&out[0], "58=Tag not defined for this message type: 108"), "{out:?}");
        // A header tag after the body is out of order.
        c.send(b"D", 2, |e| {
            e.str(tag::CL_ORD_ID, "b");
            e.str(tag::SENDER_SUB_ID, "desk");
        });
        let out = answers(&mut c, &mut v, 2);
        assert!(has(&out[0], "35=3") && has(&out[0], "373=14") && has(&out[0], "371=50"), "{out:?}");
        assert_eq!(v.in_seq_next(), 4);
    }

    #[test]
    fn market_data_request_groups_pass_or_are_rejected_naming_the_group() {
        let (mut c, mut v) = logged_on();
        // Three entry types and two symbols: the session hands it to the application.
        c.send(b"V", 1, |e| {
            e.str(262, "md1");
            e.char(263, b'1');
            e.u64(264, 0);
            e.u64(267, 3);
            for t in [b'0', b'1', b'2'] {
                e.char(269, t);
            }
            e.u64(146, 2);
            e.str(tag::SYMBOL, "BTC-USD");
            e.str(tag::SYMBOL, "ETH-USD");
        });
        let tx = c.take_tx();
        v.feed(&tx);
        match v.poll(1) {
            Poll::App(msg) => {
                assert_eq!(msg.msg_type(), b"V");
                let symbols: Vec<&str> = msg.group(146).filter_map(|e| e.get_str(tag::SYMBOL)).collect();
                assert_eq!(symbols, ["BTC-USD", "ETH-USD"]);
            }
            other => panic!("expected the request, got {other:?}"),
        }
        // Two entry types announced, one sent: 373=16 naming NoMDEntryTypes.
        c.send(b"V", 2, |e| {
            e.str(262, "md2");
            e.char(263, b'0');
            e.u64(264, 0);
            e.u64(267, 2);
            e.char(269, b'0');
            e.u64(146, 1);
            e.str(tag::SYMBOL, "BTC-USD");
        });
        let out = answers(&mut c, &mut v, 2);
        assert!(has(&out[0], "35=3") && has(&out[0], "373=16") && has(&out[0], "371=267"), "{out:?}");
        // A symbol outside NoRelatedSym: 373=15 naming Symbol.
        c.send(b"V", 3, |e| {
            e.str(262, "md3");
            e.char(263, b'0');
            e.u64(264, 0);
            e.str(tag::SYMBOL, "BTC-USD");
        });
        let out = answers(&mut c, &mut v, 3);
        assert!(has(&out[0], "35=3") && has(&out[0], "373=15") && has(&out[0], "371=55"), "{out:?}");
        assert_eq!(v.in_seq_next(), 5);
    }

    #[test]
    fn new_order_with_the_optional_fields_real_engines_send_passes() {
        let (mut c, mut v) = logged_on();
        c.send(b"D", 1, |e| {
            e.str(tag::CL_ORD_ID, "full");
            e.str(tag::ACCOUNT, "alice");
            e.char(21, b'1'); // HandlInst
            e.str(tag::SYMBOL, "BTC-USD");
            e.str(207, "XEXC"); // SecurityExchange
            e.char(tag::SIDE, b'1');
            e.time(tag::TRANSACT_TIME, 1);
            e.u64(tag::ORDER_QTY, 5);
            e.char(tag::ORD_TYPE, b'2');
            e.str(tag::PRICE, "100.5");
            e.char(tag::TIME_IN_FORCE, b'1');
            e.u64(453, 1); // NoPartyIDs
            e.str(448, "TRADER-1");
            e.char(447, b'D');
            e.u64(452, 11);
        });
        let out = answers(&mut c, &mut v, 1);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(has(&out[0], "35=8") && has(&out[0], "11=full"), "{out:?}");
        assert_eq!(v.stats().rejects_sent, 0);
    }

    #[test]
    fn field_check_can_be_turned_off_and_never_applies_to_initiators() {
        let config = SessionConfig { validate_fields: false, ..SessionConfig::default() };
        let mut v = Session::acceptor(config, 0);
        let mut c = client(0);
        pump(&mut c, &mut v, 0, true);
        pump(&mut v, &mut c, 0, true);
        c.send(b"D", 1, |e| {
            e.str(tag::CL_ORD_ID, "lax");
            e.str(9999, "x");
        });
        let out = answers(&mut c, &mut v, 1);
        assert!(has(&out[0], "35=8") && has(&out[0], "11=lax"), "{out:?}");
        // The client (validate_fields on by default) takes the venue's custom tag as it is.
        let (mut c, mut v) = logged_on();
        v.send(b"8", 1, |e| {
            e.str(tag::CL_ORD_ID, "x");
            e.str(9999, "venue-specific");
        });
        c.feed(&v.take_tx());
        assert!(matches!(c.poll(1), Poll::App(m) if m.get_str(9999) == Some("venue-specific")));
        assert!(c.take_tx().is_empty(), "no Reject from the client");
    }

    #[test]
    fn logon_with_an_unknown_tag_is_refused_with_the_reason() {
        let mut v = venue(0);
        let mut e = Encoder::new();
        e.begin(b"A", "alice", "EXCHANGE", 1, 0);
        e.u64(tag::ENCRYPT_METHOD, 0);
        e.u64(tag::HEART_BT_INT, 10);
        e.str(9999, "x");
        v.feed(e.finish());
        assert!(matches!(v.poll(0), Poll::Idle));
        assert!(v.is_closed());
        let out = messages(&v.take_tx());
        assert!(
            has(&out[0], "35=5") && has(&out[0], "58=Logon refused: Invalid tag number: 9999"),
            "{out:?}"
        );
    }

    #[test]
    fn logout_with_an_unknown_tag_still_ends_the_session() {
        let (mut c, mut v) = logged_on();
        c.core.send_admin(b"5", 1, |e| e.str(9999, "x"));
        let out = answers(&mut c, &mut v, 1);
        assert!(v.is_closed());
        assert!(has(&out[0], "35=5") && !out.iter().any(|m| has(m, "35=3")), "{out:?}");
    }

    proptest::proptest! {
        /// Random bytes after a logon never panic the session, and it stays consistent:
        /// either still active with sane seqs or closed.
        #[test]
        fn arbitrary_input_never_panics(chunks in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..200), 1..8)) {
            let (_c, mut v) = logged_on();
            for chunk in chunks {
                v.feed(&chunk);
                while !matches!(v.poll(1), Poll::Idle) {}
                v.on_timer(2);
            }
            proptest::prop_assert!(v.is_closed() || v.in_seq_next() >= 2);
        }
    }
}
