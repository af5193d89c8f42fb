//! `exchange md`: the live book and tape of one symbol from the venue's WebSocket feed, redrawn
//! in place on a terminal (plain lines otherwise); `--check` verifies every sequence number and
//! checksum, `--record` writes every message as it arrived (JSON Lines).

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use engine::price_text::{self, PriceText};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Frame;

/// Trades kept for the display.
const TAPE_SHOWN: usize = 10;
/// Fastest redraw on a terminal.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// `exchange md` arguments.
#[derive(Debug, clap::Args)]
pub struct MdArgs {
    /// The symbol.
    #[arg(long)]
    pub symbol: String,
    /// Levels per side shown.
    #[arg(long, default_value_t = 10)]
    pub depth: usize,
    /// Which feed: `ws` (the WebSocket JSON feed on the HTTP port), `fix` (FIX market data on an
    /// order-entry session: needs --account and --password) or `binary` (the order-by-order feed
    /// over QUIC datagrams on `[network] md`, at --md-addr; --symbol may list several,
    /// comma-separated).
    #[arg(long, default_value = "ws")]
    pub feed: String,
    /// The venue's HTTP address (`[network] http`).
    #[arg(long, default_value = "127.0.0.1:9880")]
    pub addr: String,
    /// Rebuild the book (level2 and level3) and verify every sequence number and checksum;
    /// report each gap or mismatch and exit 1 if there was any.
    #[arg(long)]
    pub check: bool,
    /// Write every message received, one JSON object a line.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Stop after this many feed messages (0: run until interrupted or the feed closes).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// `--feed fix`: the account to log on with (a trader's or a `market_data_only` one).
    #[arg(long)]
    pub account: Option<String>,
    /// `--feed fix`: its password.
    #[arg(long)]
    pub password: Option<String>,
    /// `--feed fix`: the venue's FIX address (QUIC, default 127.0.0.1:9878; with --tcp the
    /// FIX/TCP port, default 127.0.0.1:9877).
    #[arg(long, value_name = "ADDR")]
    pub fix_addr: Option<std::net::SocketAddr>,
    /// `--feed fix`: FIX over plain TCP instead of QUIC.
    #[arg(long)]
    pub tcp: bool,
    /// The venue's binary market-data address (`[network] md`), for `--feed binary`.
    #[arg(long, default_value = "127.0.0.1:9879")]
    pub md_addr: std::net::SocketAddr,
    /// The certificate to trust (`--feed fix` over QUIC, `--feed binary`; the path `exchange
    /// serve` prints). Default: DIR/tls/cert.pem with --data DIR or EXCHANGE_DATA=DIR, else
    /// var/tls/cert.pem.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// The venue's data directory, for its certificate (`--feed fix` over QUIC, `--feed binary`).
    #[arg(long, value_name = "DIR", conflicts_with = "ca")]
    pub data: Option<PathBuf>,
}

/// Why `exchange md` stopped.
#[derive(Debug, thiserror::Error)]
pub enum MdError {
    /// The feed named is not one of ws, fix and binary.
    #[error("--feed {0}: unknown feed (ws, fix or binary)")]
    Feed(String),
    /// The connection failed or broke.
    #[error("ws://{addr}/ws: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The cause.
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The venue refused a subscription or closed the connection with a reason.
    #[error("the venue says: {0}")]
    Refused(String),
    /// A message that is not the feed's JSON.
    #[error("unreadable message {0:?}")]
    Malformed(String),
    /// Output or the record file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// `--feed fix` without an argument it needs.
    #[error("--feed fix needs --{0}")]
    FixArgument(&'static str),
    /// `--feed fix`: the logon failed.
    #[error(transparent)]
    FixLogon(Box<crate::fix_client::ClientCliError>),
    /// `--feed fix`: the session failed after logon.
    #[error("FIX session: {0}")]
    FixSession(Box<fixclient::ClientError>),
    /// The binary feed failed.
    #[error(transparent)]
    Binary(#[from] crate::md_binary::BinaryFeedError),
    /// `--check` found gaps or mismatches (each was printed).
    #[error("{0} problem(s) found")]
    Check(u64),
}

/// Why a feed message does not fit the book `--check` rebuilt (the book then waits for a
/// snapshot).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum BookMismatch {
    /// A field the message type must carry is missing or not a number.
    #[error("no {0}")]
    Missing(&'static str),
    /// A price that is not a whole number of the snapshot's ticks.
    #[error("{0} price off the tick")]
    OffTick(&'static str),
    /// A symbol_seq skipped.
    #[error("gap: symbol_seq {seq} after {last}")]
    Gap { seq: u64, last: u64 },
    /// A level removed, or an order executed, reduced or deleted, that the book does not have.
    #[error("{0} unknown")]
    Unknown(&'static str),
    /// An execution or reduction larger than what the order shows.
    #[error("more than the order shows")]
    Overfill,
    /// An `l3update` op not in the feed's vocabulary.
    #[error("unknown op")]
    UnknownOp,
    /// The feed's checksum of the top levels differs from ours.
    #[error("checksum {ours:#010x} ≠ feed's {theirs} at symbol_seq {seq}")]
    Checksum { ours: u32, theirs: u64, seq: u64 },
}

/// One channel's rebuilt book: levels (level2) or orders (level3), prices in ticks.
#[derive(Default)]
struct Book {
    seq: Option<u64>,
    /// Tick size in price units.
    tick: Option<engine::PriceUnits>,
    /// (side is buy, price ticks) -> qty.
    levels: BTreeMap<(bool, i64), u64>,
    /// order id -> (side is buy, price ticks, qty).
    orders: BTreeMap<u64, (bool, i64, u64)>,
}

impl Book {
    fn ticks(&self, price: &Value) -> Option<i64> {
        let units = price_text::parse_units(price.as_str()?).ok()?.get();
        let tick = self.tick?.get();
        (units % tick == 0).then_some(units / tick)
    }

    fn aggregate(&self, level3: bool) -> BTreeMap<(bool, i64), u64> {
        if !level3 {
            return self.levels.clone();
        }
        let mut out = BTreeMap::new();
        for &(buy, price, qty) in self.orders.values() {
            *out.entry((buy, price)).or_insert(0) += qty;
        }
        out
    }

    fn crc32(&self, level3: bool, depth: usize) -> u32 {
        let levels = self.aggregate(level3);
        let mut text = String::from("A");
        for ((_, p), q) in levels.iter().filter(|((buy, _), _)| !buy).take(depth) {
            text += &format!("{p}:{q};");
        }
        text += "B";
        for ((_, p), q) in levels.iter().rev().filter(|((buy, _), _)| *buy).take(depth) {
            text += &format!("{p}:{q};");
        }
        crc32fast::hash(text.as_bytes())
    }

    /// Applies one message; `Err` names what does not fit (then the book waits for a snapshot).
    fn apply(&mut self, level3: bool, m: &Value) -> Result<(), BookMismatch> {
        use BookMismatch::{Missing, OffTick, Unknown};
        let seq = m["symbol_seq"].as_u64().ok_or(Missing("symbol_seq"))?;
        if m["type"] == "snapshot" {
            self.tick = m["tick_size"]
                .as_str()
                .and_then(|t| price_text::parse_units(t).ok())
                .filter(|&t| t.get() > 0);
            self.levels.clear();
            self.orders.clear();
            for (key, buy) in [("bids", true), ("asks", false)] {
                for e in m[key].as_array().ok_or(Missing(key))? {
                    let price = self.ticks(&e["price"]).ok_or(OffTick("snapshot"))?;
                    let qty = e["qty"].as_u64().ok_or(Missing("qty"))?;
                    if level3 {
                        self.orders
                            .insert(e["order_id"].as_u64().ok_or(Missing("order_id"))?, (buy, price, qty));
                    } else {
                        self.levels.insert((buy, price), qty);
                    }
                }
            }
            self.seq = Some(seq);
            return Ok(());
        }
        let Some(last) = self.seq else { return Ok(()) };
        if seq != last + 1 {
            self.seq = None;
            return Err(BookMismatch::Gap { seq, last });
        }
        self.seq = Some(seq);
        let buy = m["side"] == "buy";
        match m["type"].as_str() {
            Some("l2update") => {
                let price = self.ticks(&m["price"]).ok_or(OffTick("update"))?;
                match m["qty"].as_u64().ok_or(Missing("qty"))? {
                    0 => self.levels.remove(&(buy, price)).map(drop).ok_or(Unknown("removed level"))?,
                    qty => drop(self.levels.insert((buy, price), qty)),
                }
            }
            Some("l3update") => {
                let id = m["order_id"].as_u64().ok_or(Missing("order_id"))?;
                let qty = m["qty"].as_u64().unwrap_or(0);
                match m["op"].as_str() {
                    Some("add" | "replace") => {
                        let price = self.ticks(&m["price"]).ok_or(OffTick("update"))?;
                        self.orders.insert(id, (buy, price, qty));
                    }
                    Some("execute" | "reduce") => {
                        let order = self.orders.get_mut(&id).ok_or(Unknown("order"))?;
                        order.2 = order.2.checked_sub(qty).ok_or(BookMismatch::Overfill)?;
                        if order.2 == 0 {
                            self.orders.remove(&id);
                        }
                    }
                    Some("delete") => drop(self.orders.remove(&id).ok_or(Unknown("deleted order"))?),
                    _ => return Err(BookMismatch::UnknownOp),
                }
            }
            Some("checksum") => {
                let depth = m["depth"].as_u64().ok_or(Missing("depth"))? as usize;
                let ours = self.crc32(level3, depth);
                let theirs = m["crc32"].as_u64().ok_or(Missing("crc32"))?;
                if u64::from(ours) != theirs {
                    self.seq = None;
                    return Err(BookMismatch::Checksum { ours, theirs, seq });
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Runs `exchange md` until `--count` messages, the feed closes, or an error.
pub fn main(args: &MdArgs) -> Result<(), MdError> {
    if args.feed == "fix" {
        return crate::md_fix::main(args);
    }
    if args.feed == "binary" {
        return crate::md_binary::main(args);
    }
    if args.feed != "ws" {
        return Err(MdError::Feed(args.feed.clone()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: &MdArgs) -> Result<(), MdError> {
    let connect_err = |e| MdError::Connect { addr: args.addr.clone(), source: Box::new(e) };
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws", args.addr)).await.map_err(connect_err)?;
    let mut channels = vec!["level2", "trades"];
    if args.check {
        channels.push("level3");
    }
    for channel in &channels {
        let request = json!({"type": "subscribe", "channel": channel, "symbol": args.symbol});
        ws.send(Frame::Text(request.to_string().into())).await.map_err(connect_err)?;
    }
    let mut record = match &args.record {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let mut screen = Screen::new(args.depth);
    let (mut l2, mut l3) = (Book::default(), Book::default());
    let mut halted = false;
    let (mut received, mut problems, mut checksums) = (0u64, 0u64, 0u64);
    while let Some(frame) = ws.next().await {
        let text = match frame.map_err(connect_err)? {
            Frame::Text(text) => text,
            Frame::Close(_) => break,
            _ => continue,
        };
        if let Some(file) = record.as_mut() {
            writeln!(file, "{}", text.as_str())?;
        }
        let m: Value =
            serde_json::from_str(text.as_str()).map_err(|_| MdError::Malformed(text.to_string()))?;
        match (m["type"].as_str(), m["channel"].as_str()) {
            (Some("error"), _) => {
                return Err(MdError::Refused(m["reason"].as_str().unwrap_or("").to_owned()))
            }
            (Some("subscribed" | "unsubscribed"), _) => continue,
            (Some(kind), Some(channel)) => {
                received += 1;
                if kind == "checksum" {
                    checksums += 1;
                }
                if kind == "trade" && channel == "trades" {
                    let side = m["aggressor"].as_str().unwrap_or("");
                    screen.trade(format!(
                        "{} {}@{} {side}",
                        m["symbol"].as_str().unwrap_or(""),
                        m["qty"],
                        m["price"]
                    ));
                }
                if channel == "level2" && matches!(kind, "status" | "snapshot") {
                    halted = m["halted"].as_bool().unwrap_or(false);
                    screen.status(&args.symbol, halted);
                }
                let book = match channel {
                    "level2" => Some((&mut l2, false)),
                    "level3" => Some((&mut l3, true)),
                    _ => None,
                };
                if let Some((book, level3)) = book {
                    if let Err(e) = book.apply(level3, &m) {
                        problems += 1;
                        screen.note(format!("CHECK {channel}: {e}; waiting for a snapshot (resubscribing)"));
                        for request in [
                            json!({"type": "unsubscribe", "channel": channel, "symbol": args.symbol}),
                            json!({"type": "subscribe", "channel": channel, "symbol": args.symbol}),
                        ] {
                            ws.send(Frame::Text(request.to_string().into())).await.map_err(connect_err)?;
                        }
                    } else if !screen.terminal() && channel == "level2" && kind == "checksum" {
                        println!("BOOK seq {} {}", book.seq.unwrap_or(0), top_line(book, args.depth));
                    }
                }
                screen.draw(false, |depth| shown(args, &l2, halted, checksums, problems, depth))?;
            }
            _ => {}
        }
        if args.count > 0 && received >= args.count {
            break;
        }
    }
    if let Some(mut file) = record {
        file.flush()?;
    }
    screen.draw(true, |depth| shown(args, &l2, halted, checksums, problems, depth))?;
    if args.check {
        println!("check: {received} messages, {checksums} checksums verified, {problems} problem(s)");
        if problems > 0 {
            return Err(MdError::Check(problems));
        }
    }
    Ok(())
}

fn price_text(book: &Book, ticks: i64) -> String {
    book.tick.map_or_else(
        || ticks.to_string(),
        |t| PriceText::trimmed(i128::from(t) * i128::from(ticks), 0).to_string(),
    )
}

/// `bid Q@P | ask Q@P` of the best level each side, then the depth levels.
fn top_line(book: &Book, depth: usize) -> String {
    let bids: Vec<String> = book
        .levels
        .iter()
        .rev()
        .filter(|((buy, _), _)| *buy)
        .take(depth)
        .map(|((_, p), q)| format!("{q}@{}", price_text(book, *p)))
        .collect();
    let asks: Vec<String> = book
        .levels
        .iter()
        .filter(|((buy, _), _)| !buy)
        .take(depth)
        .map(|((_, p), q)| format!("{q}@{}", price_text(book, *p)))
        .collect();
    format!("bids {} | asks {}", bids.join(" "), asks.join(" "))
}

/// Notes (gaps, recoveries, refusals) the terminal frame keeps.
const NOTES_SHOWN: usize = 5;

/// One symbol's book as the screen shows it: `(qty, price text)` per level, best first.
#[derive(Debug, Default)]
pub(crate) struct Shown {
    /// First line: the symbol, the feed's sequence and its counters.
    pub header: String,
    /// The symbol is halted.
    pub halted: bool,
    /// Bids, best first.
    pub bids: Vec<(u64, String)>,
    /// Asks, best first.
    pub asks: Vec<(u64, String)>,
}

/// What every feed of `exchange md` prints, in one place: on a terminal, a frame redrawn in
/// place (the book, `--depth` levels a side, the last trades and notes) at most every
/// [`REDRAW_EVERY`]; otherwise plain lines (`TRADE`, a note's own line, `STATUS`), each as it
/// happens, the feed printing its `BOOK` lines itself.
pub(crate) struct Screen {
    depth: usize,
    terminal: bool,
    tape: VecDeque<String>,
    notes: VecDeque<String>,
    halted: Option<bool>,
    last_draw: Option<Instant>,
}

impl Screen {
    /// A screen for standard output.
    pub(crate) fn new(depth: usize) -> Screen {
        Screen::with_terminal(depth, std::io::stdout().is_terminal())
    }

    fn with_terminal(depth: usize, terminal: bool) -> Screen {
        Screen {
            depth,
            terminal,
            tape: VecDeque::with_capacity(TAPE_SHOWN),
            notes: VecDeque::with_capacity(NOTES_SHOWN),
            halted: None,
            last_draw: None,
        }
    }

    /// Standard output is a terminal: frames, not lines.
    pub(crate) fn terminal(&self) -> bool {
        self.terminal
    }

    /// A trade (`SYMBOL QTY@PRICE ...`): a `TRADE` line, or the top of the frame's tape.
    pub(crate) fn trade(&mut self, line: String) {
        if !self.terminal {
            println!("TRADE {line}");
        }
        push_bounded(&mut self.tape, line, TAPE_SHOWN);
    }

    /// Something the feed's client did or saw (`GAP ...`, `CHECK ...`): its own line, or one of
    /// the frame's last notes.
    pub(crate) fn note(&mut self, line: String) {
        if !self.terminal {
            println!("{line}");
        }
        push_bounded(&mut self.notes, line, NOTES_SHOWN);
    }

    /// The symbol's trading status: a `STATUS SYMBOL halted|trading` line when it changes.
    pub(crate) fn status(&mut self, symbol: &str, halted: bool) {
        if self.halted != Some(halted) {
            if !self.terminal && (self.halted.is_some() || halted) {
                println!("STATUS {symbol} {}", if halted { "halted" } else { "trading" });
            }
            self.halted = Some(halted);
        }
    }

    /// Redraws the frame on a terminal if the last one is older than [`REDRAW_EVERY`] (always
    /// with `force`, for the last frame); `shown` is asked for only then.
    pub(crate) fn draw(&mut self, force: bool, shown: impl FnOnce(usize) -> Shown) -> std::io::Result<()> {
        if !self.terminal || !(force || self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW_EVERY)) {
            return Ok(());
        }
        self.last_draw = Some(Instant::now());
        // The whole frame in one write: the terminal never shows half of one (stdout alone
        // would flush it line by line).
        let mut frame = Vec::with_capacity(4096);
        self.frame(&shown(self.depth), &mut frame)?;
        let mut out = std::io::stdout().lock();
        out.write_all(&frame)?;
        out.flush()
    }

    /// One frame: home and clear, then the header, the book, the tape and the notes.
    fn frame(&self, shown: &Shown, out: &mut impl Write) -> std::io::Result<()> {
        write!(out, "\x1b[H\x1b[2J")?;
        let halted = if shown.halted { "  HALTED" } else { "" };
        writeln!(out, "{}{halted}", shown.header)?;
        writeln!(out, "{:>12} {:>14} | {:<14} {:<12}", "bid qty", "bid", "ask", "ask qty")?;
        for i in 0..self.depth {
            let cell = |levels: &[(u64, String)]| levels.get(i).map(|(q, p)| (q.to_string(), p.clone()));
            let (bq, bp) = cell(&shown.bids).unwrap_or_default();
            let (aq, ap) = cell(&shown.asks).unwrap_or_default();
            writeln!(out, "{bq:>12} {bp:>14} | {ap:<14} {aq:<12}")?;
        }
        writeln!(out, "trades:")?;
        for line in &self.tape {
            writeln!(out, "  {line}")?;
        }
        if !self.notes.is_empty() {
            writeln!(out, "notes:")?;
            for line in &self.notes {
                writeln!(out, "  {line}")?;
            }
        }
        Ok(())
    }
}

/// Newest first, at most `len_max`.
fn push_bounded(list: &mut VecDeque<String>, line: String, len_max: usize) {
    list.push_front(line);
    list.truncate(len_max);
}

/// The WebSocket level2 book as the screen shows it.
fn shown(args: &MdArgs, book: &Book, halted: bool, checksums: u64, problems: u64, depth: usize) -> Shown {
    let level = |((_, p), q): (&(bool, i64), &u64)| (*q, price_text(book, *p));
    Shown {
        header: format!(
            "{}  seq {}  checksums {checksums}  problems {problems}",
            args.symbol,
            book.seq.unwrap_or(0)
        ),
        halted,
        bids: book.levels.iter().rev().filter(|((buy, _), _)| *buy).take(depth).map(level).collect(),
        asks: book.levels.iter().filter(|((buy, _), _)| !buy).take(depth).map(level).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Value {
        json!({"type": "snapshot", "channel": "level2", "symbol_seq": 5, "tick_size": "0.01",
               "bids": [{"price": "100.00", "qty": 5, "count": 1}, {"price": "99.99", "qty": 7, "count": 2}],
               "asks": [{"price": "100.01", "qty": 2, "count": 1}]})
    }

    #[test]
    fn a_frame_shows_depth_levels_the_tape_newest_first_notes_and_a_halt() {
        let mut screen = Screen::with_terminal(2, true);
        for i in 0..(TAPE_SHOWN + 3) {
            screen.trade(format!("BTC-USD {i}@100.00"));
        }
        screen.note("GAP BTC-USD: expected symbol seq 5".into());
        let shown = Shown {
            header: "BTC-USD  seq 9".into(),
            halted: true,
            bids: vec![(5, "100.00".into()), (7, "99.99".into()), (1, "99.98".into())],
            asks: vec![(2, "100.01".into())],
        };
        let mut out = Vec::new();
        screen.frame(&shown, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.strip_prefix("\x1b[H\x1b[2J").expect("home, clear").lines().collect();
        assert_eq!(lines[0], "BTC-USD  seq 9  HALTED");
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["5", "100.00", "|", "100.01", "2"]);
        assert_eq!(lines[3].split_whitespace().collect::<Vec<_>>(), ["7", "99.99", "|"]);
        assert_eq!(lines[4], "trades:");
        assert_eq!(lines[5].trim(), format!("BTC-USD {}@100.00", TAPE_SHOWN + 2));
        assert_eq!(lines.len(), 5 + TAPE_SHOWN + 2, "two levels a side, the last trades, one note");
        assert_eq!(lines.last().unwrap().trim(), "GAP BTC-USD: expected symbol seq 5");
    }

    #[test]
    fn the_check_accepts_a_consistent_stream_and_names_a_gap_or_a_bad_checksum() {
        let mut book = Book::default();
        book.apply(false, &snapshot()).unwrap();
        let text = "A10001:2;B10000:5;9999:7;";
        let crc = crc32fast::hash(text.as_bytes());
        book.apply(false, &json!({"type": "checksum", "symbol_seq": 6, "depth": 10, "crc32": crc})).unwrap();
        let update =
            json!({"type": "l2update", "symbol_seq": 7, "side": "sell", "price": "100.01", "qty": 0});
        book.apply(false, &update).unwrap();
        let e = book.apply(false, &json!({"type": "checksum", "symbol_seq": 8, "depth": 10, "crc32": crc}));
        assert!(
            matches!(e, Err(BookMismatch::Checksum { seq: 8, .. })),
            "the ask left: the old checksum no longer fits"
        );
        book.apply(false, &snapshot()).unwrap();
        let e = book.apply(
            false,
            &json!({"type": "l2update", "symbol_seq": 7, "side": "buy", "price": "1", "qty": 1}),
        );
        assert_eq!(e.unwrap_err().to_string(), "gap: symbol_seq 7 after 5");
    }
}
