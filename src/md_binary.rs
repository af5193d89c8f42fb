//! A subscriber of the binary order-by-order feed (`[network] md`): QUIC (ALPN `itch-md`) with
//! quinn, the live messages from datagrams, snapshots and retransmissions from the recovery
//! stream. Each symbol's book is rebuilt by a [`BookBuilder`] fed in sequence order by a
//! [`Resequencer`], which notices every hole and asks for the missing range (or a snapshot).
//! Used by `exchange md --feed binary` and the end-to-end tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use gateway::tls::{quinn_client_config_alpn, QuicTuning, ALPN_ITCH_MD};
use marketdata::datagram::unpack;
use marketdata::recovery::{next_frame, Listed, Note, Reply, Request, Resequencer, Source};
use marketdata::{Body, BookBuilder, Channel, Message, SymbolId};

/// Why the binary feed client stopped.
#[derive(Debug, thiserror::Error)]
pub enum BinaryFeedError {
    /// TLS set-up.
    #[error(transparent)]
    Tls(#[from] gateway::tls::TlsError),
    /// The connection could not be made or broke.
    #[error("md/quic {addr}: {what}")]
    Connection {
        /// The venue's md address.
        addr: SocketAddr,
        /// What happened.
        what: String,
    },
    /// The venue refused the subscription.
    #[error("the venue says: {0}")]
    Refused(String),
    /// The venue sent something that is not the protocol.
    #[error("unreadable from the venue: {0}")]
    Protocol(String),
}

/// What happened while reading the feed, for a person (`exchange md` prints these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedNote {
    /// A hole in a symbol's sequence.
    Gap(String),
    /// A hole filled.
    Recovered(String),
    /// A retransmission arrived.
    Retransmitted(String),
    /// A snapshot began.
    Snapshot(String),
    /// A request was refused.
    Refused(String),
    /// The rebuilt book disagrees with the feed (a checksum, an update that does not fit).
    Problem(String),
    /// A trade, in sequence: `SYMBOL QTY@PRICE AGGRESSOR-SIDE`.
    Trade(String),
}

/// Counters of a [`BinaryFeedClient`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BinaryFeedStats {
    /// Datagrams received.
    pub datagrams: u64,
    /// Feed messages handed to the books (snapshot parts included).
    pub messages: u64,
    /// Holes seen.
    pub gaps: u64,
    /// Holes filled by a retransmission.
    pub recovered: u64,
    /// Retransmissions served from the venue's log / from its journal.
    pub retransmits_log: u64,
    /// Retransmissions served from the venue's event journal.
    pub retransmits_journal: u64,
    /// Snapshots received.
    pub snapshots: u64,
    /// Problems: a checksum or an update that does not fit the book.
    pub problems: u64,
}

/// One connection to the binary feed; see the module docs.
pub struct BinaryFeedClient {
    addr: SocketAddr,
    _endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    received: Vec<u8>,
    reseq: Resequencer,
    books: BTreeMap<SymbolId, BookBuilder>,
    symbols: Vec<Listed>,
    notes: Vec<FeedNote>,
    /// Every message as it arrived (`D` datagram, `S` stream), when recording.
    pub record: Option<Vec<(char, Message)>>,
    /// Counters.
    pub stats: BinaryFeedStats,
}

impl BinaryFeedClient {
    /// Connects to `addr` trusting `ca`, subscribes to `symbols` and waits for the acknowledgement.
    pub async fn connect(
        addr: SocketAddr,
        ca: &Path,
        server_name: &str,
        symbols: &[String],
    ) -> Result<BinaryFeedClient, BinaryFeedError> {
        let conn_err = |what: String| BinaryFeedError::Connection { addr, what };
        let config = quinn_client_config_alpn(ca, None, &QuicTuning::default(), ALPN_ITCH_MD)?;
        let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
        let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| conn_err(e.to_string()))?;
        endpoint.set_default_client_config(config);
        let connecting = endpoint.connect(addr, server_name).map_err(|e| conn_err(e.to_string()))?;
        let conn = tokio::time::timeout(std::time::Duration::from_secs(5), connecting)
            .await
            .map_err(|_| conn_err("no answer within 5 s: is the venue's [network] md there?".into()))?
            .map_err(|e| conn_err(e.to_string()))?;
        let (send, recv) = conn.open_bi().await.map_err(|e| conn_err(e.to_string()))?;
        let mut client = BinaryFeedClient {
            addr,
            _endpoint: endpoint,
            conn,
            send,
            recv,
            received: Vec::new(),
            reseq: Resequencer::new(&[]),
            books: BTreeMap::new(),
            symbols: Vec::new(),
            notes: Vec::new(),
            record: None,
            stats: BinaryFeedStats::default(),
        };
        client.request(&Request::Subscribe(symbols.to_vec())).await?;
        match client.next_reply().await? {
            Reply::Subscribed(ids) => {
                let id_list: Vec<SymbolId> = ids.iter().map(|l| l.symbol).collect();
                client.reseq = Resequencer::new(&id_list);
                client.books =
                    id_list.iter().map(|&id| (id, BookBuilder::new(Channel::Orders, id))).collect();
                client.symbols = ids;
                Ok(client)
            }
            Reply::Error { reason, .. } => Err(BinaryFeedError::Refused(reason)),
            other => Err(BinaryFeedError::Protocol(format!("{other:?} before the subscription"))),
        }
    }

    /// The symbols subscribed to, with their ids and ticks.
    pub fn symbols(&self) -> &[Listed] {
        &self.symbols
    }

    /// A symbol's rebuilt book.
    pub fn book(&self, symbol: SymbolId) -> Option<&BookBuilder> {
        self.books.get(&symbol)
    }

    /// The resequencer (last sequences, the request in flight).
    pub fn resequencer(&self) -> &Resequencer {
        &self.reseq
    }

    /// What happened since the last call.
    pub fn take_notes(&mut self) -> Vec<FeedNote> {
        std::mem::take(&mut self.notes)
    }

    /// Sends one request on the stream (the client sends its own; tests send any).
    pub async fn request(&mut self, request: &Request) -> Result<(), BinaryFeedError> {
        let mut bytes = Vec::new();
        request.encode(&mut bytes);
        self.send_raw(&bytes).await
    }

    /// Sends raw bytes on the stream (tests: malformed requests).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), BinaryFeedError> {
        let addr = self.addr;
        self.send
            .write_all(bytes)
            .await
            .map_err(|e| BinaryFeedError::Connection { addr, what: e.to_string() })
    }

    /// The next reply on the stream, ignoring datagrams meanwhile (tests of the protocol).
    pub async fn next_reply(&mut self) -> Result<Reply, BinaryFeedError> {
        loop {
            if let Some((kind, payload)) = next_frame(&mut self.received) {
                return Reply::decode(kind, &payload).map_err(|e| BinaryFeedError::Protocol(e.to_string()));
            }
            self.read_stream().await?;
        }
    }

    async fn read_stream(&mut self) -> Result<(), BinaryFeedError> {
        let mut buf = [0u8; 16 * 1024];
        match self.recv.read(&mut buf).await {
            Ok(Some(n)) => {
                self.received.extend_from_slice(&buf[..n]);
                Ok(())
            }
            Ok(None) => Err(self.closed("the venue finished the stream")),
            Err(e) => Err(self.closed(&e.to_string())),
        }
    }

    fn closed(&self, what: &str) -> BinaryFeedError {
        let reason = self.conn.close_reason().map(|r| format!(" ({r})")).unwrap_or_default();
        BinaryFeedError::Connection { addr: self.addr, what: format!("{what}{reason}") }
    }

    /// Waits for the next datagram or stream bytes and processes everything that arrived; sends
    /// the request the resequencer needs, if any.
    pub async fn step(&mut self) -> Result<(), BinaryFeedError> {
        // Frames that came with an earlier read (behind the subscription's acknowledgement).
        if self.process_frames()? {
            return self.send_needed().await;
        }
        let mut buf = [0u8; 16 * 1024];
        tokio::select! {
            datagram = self.conn.read_datagram() => {
                let datagram = datagram.map_err(|e| self.closed(&e.to_string()))?;
                self.stats.datagrams += 1;
                for m in unpack(&datagram) {
                    let m = m.map_err(|e| BinaryFeedError::Protocol(format!("datagram: {e}")))?;
                    self.on_message('D', &m);
                }
            }
            read = self.recv.read(&mut buf) => {
                match read {
                    Ok(Some(n)) => self.received.extend_from_slice(&buf[..n]),
                    Ok(None) => return Err(self.closed("the venue finished the stream")),
                    Err(e) => return Err(self.closed(&e.to_string())),
                }
                self.process_frames()?;
            }
        }
        self.send_needed().await
    }

    /// Handles every whole frame received; true if there was one.
    fn process_frames(&mut self) -> Result<bool, BinaryFeedError> {
        let mut any = false;
        while let Some((kind, payload)) = next_frame(&mut self.received) {
            let reply =
                Reply::decode(kind, &payload).map_err(|e| BinaryFeedError::Protocol(e.to_string()))?;
            self.on_reply(reply);
            any = true;
        }
        Ok(any)
    }

    async fn send_needed(&mut self) -> Result<(), BinaryFeedError> {
        if let Some(request) = self.reseq.poll_request() {
            self.request(&request).await?;
        }
        Ok(())
    }

    fn name(&self, symbol: SymbolId) -> &str {
        self.symbols.iter().find(|l| l.symbol == symbol).map_or("?", |l| l.name.as_str())
    }

    fn on_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Message(m) => self.on_message('S', &m),
            Reply::Complete { from, count, sent, source } => {
                match source {
                    Source::Log => self.stats.retransmits_log += 1,
                    Source::Journal => self.stats.retransmits_journal += 1,
                }
                let from_where = if source == Source::Log { "log" } else { "journal" };
                self.notes.push(FeedNote::Retransmitted(format!(
                    "channel seq {from}..{}: {sent} message(s) of ours, from the venue's {from_where}",
                    from + u64::from(count) - 1
                )));
                self.reseq.on_complete(from, count);
                self.take_reseq_notes();
            }
            Reply::Error { reason, .. } => {
                self.notes.push(FeedNote::Refused(reason));
                if self.reseq.outstanding().is_some() {
                    self.reseq.on_refused();
                }
            }
            Reply::Subscribed(_) => {}
        }
    }

    fn on_message(&mut self, path: char, m: &Message) {
        if let Some(record) = self.record.as_mut() {
            record.push((path, *m));
        }
        let BinaryFeedClient { reseq, books, stats, .. } = self;
        let mut failed = Vec::new();
        let mut trades = Vec::new();
        reseq.on_message(m, &mut |m: &Message| {
            let Some(symbol) = m.header.symbol else { return };
            let Some(book) = books.get_mut(&symbol) else { return };
            stats.messages += 1;
            if let Body::Trade { price, qty, aggressor, .. } = m.body {
                trades.push((symbol, price, qty, aggressor));
            }
            if matches!(m.body, Body::SnapshotEnd { .. }) {
                stats.snapshots += 1;
            }
            if let Err(e) = book.apply(m) {
                failed.push((symbol, e));
            }
        });
        for (symbol, price, qty, aggressor) in trades {
            let listed = self.symbols.iter().find(|l| l.symbol == symbol);
            let tick_units = listed.map_or(1, |l| l.tick_units.get());
            let price = rust_decimal::Decimal::new(price.0.saturating_mul(tick_units), engine::PRICE_SCALE)
                .normalize();
            let side = if aggressor == engine::Side::Buy { "buy" } else { "sell" };
            self.notes.push(FeedNote::Trade(format!("{} {qty}@{price} {side}", self.name(symbol))));
        }
        for (symbol, e) in failed {
            self.stats.problems += 1;
            let text = format!("{}: {e} (asking for a snapshot)", self.name(symbol));
            self.notes.push(FeedNote::Problem(text));
            self.reseq.ask_snapshot(symbol);
        }
        self.take_reseq_notes();
    }

    fn take_reseq_notes(&mut self) {
        for note in self.reseq.take_notes() {
            let text = match note {
                Note::Gap { symbol, expected, got } => {
                    self.stats.gaps += 1;
                    FeedNote::Gap(format!("{}: expected symbol seq {expected}, got {got}", self.name(symbol)))
                }
                Note::Healed { symbol, symbol_seq } => {
                    self.stats.recovered += 1;
                    FeedNote::Recovered(format!(
                        "{}: gapless again through symbol seq {symbol_seq}",
                        self.name(symbol)
                    ))
                }
                Note::Snapshot { symbol, symbol_seq } => {
                    FeedNote::Snapshot(format!("{}: at symbol seq {symbol_seq}", self.name(symbol)))
                }
            };
            self.notes.push(text);
        }
    }
}

/// The first symbol's book as `exchange md` shows it, with the client's counters.
fn shown(
    client: &BinaryFeedClient,
    first: &Listed,
    price: &impl Fn(i64) -> String,
    depth: usize,
) -> crate::md_cli::Shown {
    let s = client.stats;
    let book = client.book(first.symbol).expect("subscribed");
    let side = |side| book.levels(side).take(depth).map(|l| (l.qty, price(l.price.0))).collect();
    crate::md_cli::Shown {
        header: format!(
            "{} (binary)  seq {}  datagrams {}  gaps {}  recovered {}  problems {}",
            first.name,
            book.symbol_seq().unwrap_or(0),
            s.datagrams,
            s.gaps,
            s.recovered,
            s.problems
        ),
        halted: book.halted(),
        bids: side(engine::Side::Buy),
        asks: side(engine::Side::Sell),
    }
}

/// `exchange md --feed binary`: the book of the first symbol (and the tape) from the binary
/// feed, redrawn in place on a terminal by the screen every feed shares; otherwise every gap,
/// recovery, snapshot and trade as a line as it happens, and a `BOOK` line per change; with
/// `--check`, a summary and exit status 1 when the rebuilt book disagreed with the feed.
pub fn main(args: &crate::md_cli::MdArgs) -> Result<(), crate::md_cli::MdError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run_cli(args))
}

async fn run_cli(args: &crate::md_cli::MdArgs) -> Result<(), crate::md_cli::MdError> {
    use std::io::Write;
    let symbols: Vec<String> = args.symbol.split(',').map(|s| s.trim().to_owned()).collect();
    let env = std::env::var_os(crate::fix_client::DATA_DIR_ENV);
    let (ca, _) = crate::fix_client::resolve_ca(args.ca.as_deref(), args.data.as_deref(), env.as_deref());
    let mut client = BinaryFeedClient::connect(args.md_addr, &ca, "localhost", &symbols).await?;
    if args.record.is_some() {
        client.record = Some(Vec::new());
    }
    let mut record = match &args.record {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let first = client.symbols()[0].clone();
    let price = |ticks: i64| {
        let units = ticks.saturating_mul(first.tick_units.get());
        rust_decimal::Decimal::new(units, engine::PRICE_SCALE).normalize().to_string()
    };
    let mut screen = crate::md_cli::Screen::new(args.depth);
    let mut shown_seq = 0;
    let result = loop {
        if args.count > 0 && client.stats.messages >= args.count {
            break Ok(());
        }
        let stepped = tokio::select! {
            r = client.step() => r,
            _ = tokio::signal::ctrl_c() => break Ok(()),
        };
        if let Err(e) = stepped {
            break Err(e);
        }
        if let (Some(file), Some(recorded)) = (record.as_mut(), client.record.as_mut()) {
            for (path, m) in recorded.drain(..) {
                writeln!(file, "{path} {m:?}")?;
            }
        }
        for note in client.take_notes() {
            match note {
                FeedNote::Gap(t) => screen.note(format!("GAP {t}")),
                FeedNote::Recovered(t) => screen.note(format!("RECOVERED {t}")),
                FeedNote::Retransmitted(t) => screen.note(format!("RETRANSMIT {t}")),
                FeedNote::Snapshot(t) => screen.note(format!("SNAPSHOT {t}")),
                FeedNote::Refused(t) => screen.note(format!("REFUSED {t}")),
                FeedNote::Problem(t) => screen.note(format!("CHECK {t}")),
                FeedNote::Trade(t) => screen.trade(t),
            }
        }
        let book = client.book(first.symbol).expect("subscribed");
        if book.is_live() {
            screen.status(&first.name, book.halted());
        }
        let side = |side, depth| {
            book.levels(side).take(depth).map(|l| (l.qty, price(l.price.0))).collect::<Vec<(u64, String)>>()
        };
        if let Some(seq) = book.symbol_seq().filter(|&s| s != shown_seq) {
            shown_seq = seq;
            if !screen.terminal() {
                let text = |levels: Vec<(u64, String)>| {
                    levels.iter().map(|(q, p)| format!("{q}@{p}")).collect::<Vec<_>>().join(" ")
                };
                println!(
                    "BOOK {} seq {seq} bids {} | asks {}",
                    first.name,
                    text(side(engine::Side::Buy, args.depth)),
                    text(side(engine::Side::Sell, args.depth))
                );
            }
        }
        screen.draw(false, |depth| shown(&client, &first, &price, depth))?;
    };
    screen.draw(true, |depth| shown(&client, &first, &price, depth))?;
    if let Some(mut file) = record {
        file.flush()?;
    }
    let s = client.stats;
    let checksums: u64 =
        client.symbols().iter().filter_map(|l| client.book(l.symbol)).map(|b| b.checksums_verified()).sum();
    if args.check {
        println!(
            "check: {} messages in {} datagrams, {checksums} checksums verified, {} gap(s), {} recovered, {} retransmission(s) from the log, {} from the journal, {} snapshot(s), {} problem(s)",
            s.messages, s.datagrams, s.gaps, s.recovered, s.retransmits_log, s.retransmits_journal, s.snapshots, s.problems
        );
    }
    result?;
    if args.check && s.problems > 0 {
        return Err(crate::md_cli::MdError::Check(s.problems));
    }
    Ok(())
}
