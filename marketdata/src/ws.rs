//! The WebSocket JSON feed: channels `level2`, `level3`, `trades`, `ticker` and `candles`, cut
//! from a [`Publisher`]. A subscribe gets its snapshot in-band, then updates; every message
//! carries the sequence fields of the binary feed (`epoch`, `channel_seq`, `symbol_seq`).
//!
//! `level2` is the levels channel and `level3` the orders channel, message for message (their
//! trades, checksums and status changes included), so their `symbol_seq` is gapless per
//! subscription. `trades`, `ticker` and `candles` are derived from the levels channel and carry
//! the sequence of the message they are as of (not gapless).
//!
//! This is the shell: the only part of the crate that links tokio and axum (feature `ws`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::{Message as WsFrame, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use engine::price_text::PriceText;
use engine::{Event, SymbolSpec};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::book::Bbo;
use crate::builder::BookBuilder;
use crate::message::{Body, Channel, Header, Message};
use crate::projection::ProjectionError;
use crate::publisher::{DrainError, Publisher, SubscriberId, Subscription};
use crate::tape::{Bar, BarPeriod, Bars};
use crate::{Price, Side, SymbolId};

/// Subscriptions one WebSocket connection may hold.
pub const WS_SUBSCRIPTIONS_MAX: usize = 32;
/// Messages taken from the publisher per lock.
const DRAIN_BATCH_MAX: usize = 256;
/// Bars a candles subscriber keeps (only the newest is ever sent again).
const CANDLES_KEPT: usize = 2;

/// A WebSocket channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WsChannel {
    /// Aggregated levels.
    Level2,
    /// Order by order.
    Level3,
    /// Trades.
    Trades,
    /// Best bid and offer with sizes and the last trade price.
    Ticker,
    /// OHLCV bars.
    Candles,
}

/// Bar length on the `candles` channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WsPeriod {
    /// One second.
    #[serde(rename = "1s")]
    OneSecond,
    /// One minute.
    #[serde(rename = "1m")]
    OneMinute,
}

/// What a client sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WsRequest {
    /// Start a channel for a symbol.
    Subscribe {
        /// Channel.
        channel: WsChannel,
        /// Symbol name, e.g. `BTC-USD`.
        symbol: String,
        /// Candle period (candles only; default 1m).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        period: Option<WsPeriod>,
    },
    /// Stop a channel for a symbol.
    Unsubscribe {
        /// Channel.
        channel: WsChannel,
        /// Symbol name.
        symbol: String,
    },
}

/// The channel and sequence fields every feed message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsSeq {
    /// The subscription's channel.
    pub channel: WsChannel,
    /// Publisher epoch.
    pub epoch: u64,
    /// Sequence on the underlying channel (for a snapshot: the last it includes).
    pub channel_seq: u64,
    /// Per-symbol sequence on the underlying channel (for a snapshot: the last it includes).
    pub symbol_seq: u64,
}

impl WsSeq {
    fn new(channel: WsChannel, h: &Header) -> WsSeq {
        WsSeq { channel, epoch: h.epoch, channel_seq: h.channel_seq, symbol_seq: h.symbol_seq }
    }
}

/// One level or order in a snapshot: price as decimal text, displayed quantity, and either the
/// order count (level2) or the order id (level3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsEntry {
    /// Price.
    pub price: String,
    /// Displayed quantity.
    pub qty: u64,
    /// Orders at the level (level2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Order id (level3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<u64>,
}

/// What the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsMessage {
    /// A subscription started; its snapshot follows.
    Subscribed {
        /// Channel.
        channel: WsChannel,
        /// Symbol.
        symbol: String,
    },
    /// A subscription ended.
    Unsubscribed {
        /// Channel.
        channel: WsChannel,
        /// Symbol.
        symbol: String,
    },
    /// The full book (level2: levels; level3: orders in priority), best first.
    Snapshot {
        /// Symbol.
        symbol: String,
        /// Sequences it includes.
        #[serde(flatten)]
        seq: WsSeq,
        /// The symbol's tick: the checksum is over prices in ticks (`price / tick_size`).
        tick_size: String,
        /// Trading status.
        halted: bool,
        /// Bids.
        bids: Vec<WsEntry>,
        /// Asks.
        asks: Vec<WsEntry>,
    },
    /// A level's new total (0: gone).
    L2update {
        /// Symbol.
        symbol: String,
        /// Sequences.
        #[serde(flatten)]
        seq: WsSeq,
        /// `buy` or `sell`.
        side: String,
        /// Price.
        price: String,
        /// Displayed quantity.
        qty: u64,
        /// Orders at the level.
        count: u32,
    },
    /// An order book change (`add`, `execute`, `reduce`, `delete`, `replace`; see
    /// `docs/marketdata.md`). `side` and `price` are present for add and replace.
    L3update {
        /// Symbol.
        symbol: String,
        /// Sequences.
        #[serde(flatten)]
        seq: WsSeq,
        /// Operation.
        op: String,
        /// Order.
        order_id: u64,
        /// Side (add, replace).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        side: Option<String>,
        /// Price (add, replace).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        price: Option<String>,
        /// Displayed quantity (add, replace) or quantity taken (execute, reduce).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qty: Option<u64>,
    },
    /// A trade.
    Trade {
        /// Symbol.
        symbol: String,
        /// Sequences.
        #[serde(flatten)]
        seq: WsSeq,
        /// Event time, ns.
        ts_ns: u64,
        /// Price.
        price: String,
        /// Quantity.
        qty: u64,
        /// Side of the incoming order.
        aggressor: String,
        /// Resting order.
        maker_order_id: u64,
        /// Incoming order.
        taker_order_id: u64,
    },
    /// Best bid and offer with sizes, and the last trade price.
    Ticker {
        /// Symbol.
        symbol: String,
        /// Sequences.
        #[serde(flatten)]
        seq: WsSeq,
        /// Best bid.
        bid: Option<String>,
        /// Its size.
        bid_qty: Option<u64>,
        /// Best ask.
        ask: Option<String>,
        /// Its size.
        ask_qty: Option<u64>,
        /// Last trade price.
        last: Option<String>,
    },
    /// The current bar (sent on each trade; the first after subscribing is the newest bar).
    Candle {
        /// Symbol.
        symbol: String,
        /// Sequences.
        #[serde(flatten)]
        seq: WsSeq,
        /// Period.
        period: WsPeriod,
        /// Period start, ns.
        start_ts_ns: u64,
        /// Open.
        open: String,
        /// High.
        high: String,
        /// Low.
        low: String,
        /// Close.
        close: String,
        /// Volume.
        volume: u64,
        /// Trades.
        trades: u64,
    },
    /// CRC-32 of the top `depth` levels (input in `docs/marketdata.md`), level2 and level3.
    Checksum {
        /// Symbol.
        symbol: String,
        /// Sequences.
        #[serde(flatten)]
        seq: WsSeq,
        /// Levels per side.
        depth: u16,
        /// The checksum.
        crc32: u32,
    },
    /// Trading status changed.
    Status {
        /// Symbol.
        symbol: String,
        /// Sequences.
        #[serde(flatten)]
        seq: WsSeq,
        /// True when halted.
        halted: bool,
    },
    /// A request was refused, or the connection is being closed; the reason says which.
    Error {
        /// Why.
        reason: String,
    },
}

/// A publisher shared between the thread that feeds it events and the WebSocket connections.
pub struct WsFeed {
    publisher: Mutex<Publisher>,
    symbols: Vec<SymbolSpec>,
    changed: watch::Sender<u64>,
}

impl WsFeed {
    /// Wraps a publisher; `symbols` is the engine's symbol table (names and ticks).
    pub fn new(publisher: Publisher, symbols: Vec<SymbolSpec>) -> Arc<WsFeed> {
        Arc::new(WsFeed { publisher: Mutex::new(publisher), symbols, changed: watch::channel(0).0 })
    }

    fn lock(&self) -> MutexGuard<'_, Publisher> {
        // A panic while holding the lock leaves the publisher as it was between two calls.
        self.publisher.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies one engine event (in sequence order) and wakes the connections.
    pub fn on_event(&self, event: &Event) -> Result<(), ProjectionError> {
        self.lock().on_event(event)?;
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Publishes a heartbeat and wakes the connections.
    pub fn heartbeat(&self, ts_ns: u64) {
        self.lock().heartbeat(ts_ns);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Runs `f` on the publisher (stats, projection) under its lock.
    pub fn with_publisher<R>(&self, f: impl FnOnce(&Publisher) -> R) -> R {
        f(&self.lock())
    }

    /// Runs `f` on the publisher under its lock, mutably: other feeds (binary, FIX) subscribe,
    /// drain and retransmit through the same publisher. Keep `f` short: event delivery waits.
    pub fn with_publisher_mut<R>(&self, f: impl FnOnce(&mut Publisher) -> R) -> R {
        f(&mut self.lock())
    }

    fn tick_size(&self, symbol: SymbolId) -> String {
        PriceText::trimmed(i128::from(self.symbols[symbol.index()].tick_units), 0).to_string()
    }

    fn price(&self, symbol: SymbolId, price: Price) -> String {
        PriceText::ticks(&self.symbols[symbol.index()], price).to_string()
    }
}

/// `GET /ws` upgrading to the JSON feed of `feed`.
pub fn ws_router(feed: Arc<WsFeed>) -> axum::Router {
    axum::Router::new().route("/ws", get(upgrade)).with_state(feed)
}

async fn upgrade(ws: WebSocketUpgrade, State(feed): State<Arc<WsFeed>>) -> Response {
    ws.on_upgrade(move |socket| connection(socket, feed))
}

fn side_str(side: Side) -> String {
    side.as_str().to_string()
}

/// One subscription of a connection and what it needs to render its channel.
struct Stream {
    channel: WsChannel,
    symbol: SymbolId,
    name: String,
    id: SubscriberId,
    /// Snapshot entries being collected (bids, asks).
    snapshot: (Vec<WsEntry>, Vec<WsEntry>),
    halted: bool,
    /// Ticker: the book, for the best bid and offer.
    book: Option<BookBuilder>,
    last_bbo: Bbo,
    last_trade: Option<Price>,
    /// Candles: the current bars.
    bars: Option<(WsPeriod, Bars)>,
    /// Sent before anything drained: the newest bar at subscription (candles).
    initial: Option<WsMessage>,
}

impl Stream {
    /// Renders one core message for this stream's channel.
    fn render(&mut self, feed: &WsFeed, m: &Message, out: &mut VecDeque<WsMessage>) {
        let (symbol, seq) = (self.name.clone(), WsSeq::new(self.channel, &m.header));
        let id = self.symbol;
        let price = |p| feed.price(id, p);
        if let Some(book) = self.book.as_mut() {
            // Our own feed disagreeing with itself is a bug: say so, and the ticker pauses
            // (the builder waits for a snapshot) rather than show a book it cannot prove.
            if let Err(e) = book.apply(m) {
                out.push_back(WsMessage::Error { reason: format!("ticker book for {}: {e}", self.name) });
            }
        }
        match (self.channel, m.body) {
            (WsChannel::Level2 | WsChannel::Level3, Body::SnapshotBegin { halted, .. }) => {
                self.snapshot.0.clear();
                self.snapshot.1.clear();
                self.halted = halted;
            }
            (WsChannel::Level2, Body::SnapshotLevel(l)) => {
                let entry =
                    WsEntry { price: price(l.price), qty: l.qty, count: Some(l.count), order_id: None };
                if l.side == Side::Buy { &mut self.snapshot.0 } else { &mut self.snapshot.1 }.push(entry);
            }
            (WsChannel::Level3, Body::SnapshotOrder(o)) => {
                let entry =
                    WsEntry { price: price(o.price), qty: o.qty, count: None, order_id: Some(o.order_id.0) };
                if o.side == Side::Buy { &mut self.snapshot.0 } else { &mut self.snapshot.1 }.push(entry);
            }
            (WsChannel::Level2 | WsChannel::Level3, Body::SnapshotEnd { .. }) => {
                let (bids, asks) = std::mem::take(&mut self.snapshot);
                let tick_size = feed.tick_size(id);
                out.push_back(WsMessage::Snapshot {
                    symbol,
                    seq,
                    tick_size,
                    halted: self.halted,
                    bids,
                    asks,
                });
            }
            (WsChannel::Level2, Body::Level(l)) => out.push_back(WsMessage::L2update {
                symbol,
                seq,
                side: side_str(l.side),
                price: price(l.price),
                qty: l.qty,
                count: l.count,
            }),
            (WsChannel::Level3, _) => out.extend(level3_message(feed, id, symbol, seq, m)),
            (WsChannel::Level2, Body::Checksum { depth, crc32 }) => {
                out.push_back(WsMessage::Checksum { symbol, seq, depth, crc32 })
            }
            (WsChannel::Level2 | WsChannel::Trades, Body::TradingStatus { halted }) => {
                out.push_back(WsMessage::Status { symbol, seq, halted })
            }
            (WsChannel::Level2 | WsChannel::Trades, Body::Trade { .. }) => {
                out.extend(trade_message(feed, id, symbol, seq, m))
            }
            (WsChannel::Ticker, body) => out.extend(self.ticker(feed, symbol, seq, body)),
            (WsChannel::Candles, Body::Trade { price: p, qty, .. }) => {
                let Some((period, bars)) = self.bars.as_mut() else { return };
                bars.record(m.header.ts_ns, p, qty);
                if let Some(bar) = bars.iter().next_back() {
                    out.push_back(candle(feed, self.symbol, symbol, seq, *period, bar));
                }
            }
            _ => {}
        }
    }

    /// The ticker after `body`: a message when the best bid or offer moved, or on a trade or a
    /// fresh snapshot; nothing while the book cannot be shown.
    fn ticker(&mut self, feed: &WsFeed, symbol: String, seq: WsSeq, body: Body) -> Option<WsMessage> {
        if let Body::Trade { price: p, .. } = body {
            self.last_trade = Some(p);
        }
        let book = self.book.as_ref().filter(|b| b.is_live())?;
        let top = |side| book.levels(side).next().map(|l| (l.price, l.qty));
        let bbo = Bbo { bid: top(Side::Buy), ask: top(Side::Sell) };
        let fresh = matches!(body, Body::SnapshotEnd { .. } | Body::Trade { .. });
        if !fresh && bbo == self.last_bbo {
            return None;
        }
        self.last_bbo = bbo;
        let price = |p| feed.price(self.symbol, p);
        Some(WsMessage::Ticker {
            symbol,
            seq,
            bid: bbo.bid.map(|(p, _)| price(p)),
            bid_qty: bbo.bid.map(|(_, q)| q),
            ask: bbo.ask.map(|(p, _)| price(p)),
            ask_qty: bbo.ask.map(|(_, q)| q),
            last: self.last_trade.map(price),
        })
    }
}

/// A `trade` message of `m` (None unless `m` is a trade).
fn trade_message(feed: &WsFeed, id: SymbolId, symbol: String, seq: WsSeq, m: &Message) -> Option<WsMessage> {
    let Body::Trade { price, qty, aggressor, maker_order_id, taker_order_id } = m.body else { return None };
    Some(WsMessage::Trade {
        symbol,
        seq,
        ts_ns: m.header.ts_ns,
        price: feed.price(id, price),
        qty,
        aggressor: side_str(aggressor),
        maker_order_id: maker_order_id.0,
        taker_order_id: taker_order_id.0,
    })
}

/// What the `level3` channel says of `m`: an order added, replaced, executed, reduced or
/// deleted, a checksum, a status or a trade (snapshots are gathered by the caller).
fn level3_message(feed: &WsFeed, id: SymbolId, symbol: String, seq: WsSeq, m: &Message) -> Option<WsMessage> {
    let (op, order_id, order, qty) = match m.body {
        Body::AddOrder(o) => ("add", o.order_id, Some(o), o.qty),
        Body::Replace(o) => ("replace", o.order_id, Some(o), o.qty),
        Body::Execute { order_id, qty } => ("execute", order_id, None, qty),
        Body::Reduce { order_id, qty } => ("reduce", order_id, None, qty),
        Body::Delete { order_id } => ("delete", order_id, None, 0),
        Body::Checksum { depth, crc32 } => return Some(WsMessage::Checksum { symbol, seq, depth, crc32 }),
        Body::TradingStatus { halted } => return Some(WsMessage::Status { symbol, seq, halted }),
        Body::Trade { .. } => return trade_message(feed, id, symbol, seq, m),
        _ => return None,
    };
    Some(WsMessage::L3update {
        symbol,
        seq,
        op: op.into(),
        order_id: order_id.0,
        side: order.map(|o| side_str(o.side)),
        price: order.map(|o| feed.price(id, o.price)),
        qty: (op != "delete").then_some(qty),
    })
}

fn candle(feed: &WsFeed, id: SymbolId, symbol: String, seq: WsSeq, period: WsPeriod, bar: &Bar) -> WsMessage {
    WsMessage::Candle {
        symbol,
        seq,
        period,
        start_ts_ns: bar.start_ts,
        open: feed.price(id, bar.open),
        high: feed.price(id, bar.high),
        low: feed.price(id, bar.low),
        close: feed.price(id, bar.close),
        volume: bar.volume,
        trades: bar.trades,
    }
}

async fn send(socket: &mut WebSocket, message: &WsMessage) -> bool {
    // Serializing our own enum of strings and integers cannot fail.
    let text = serde_json::to_string(message).expect("serializable");
    socket.send(WsFrame::Text(text.into())).await.is_ok()
}

/// Handles one request; returns what to tell the client.
fn request(feed: &WsFeed, streams: &mut Vec<Stream>, text: &str) -> WsMessage {
    let error = |reason: String| WsMessage::Error { reason };
    let request: WsRequest = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => return error(format!("malformed request: {e}")),
    };
    match request {
        WsRequest::Subscribe { channel, symbol, period } => {
            let Some(id) = feed.symbols.iter().position(|s| s.name == symbol) else {
                return error(format!("unknown symbol {symbol}"));
            };
            let id = SymbolId(id as u32);
            if period.is_some() && channel != WsChannel::Candles {
                return error("period applies to the candles channel only".into());
            }
            if streams.iter().any(|s| s.channel == channel && s.symbol == id) {
                return error(format!("already subscribed to {symbol} on this channel"));
            }
            if streams.len() >= WS_SUBSCRIPTIONS_MAX {
                return error(format!("at most {WS_SUBSCRIPTIONS_MAX} subscriptions per connection"));
            }
            let core = if channel == WsChannel::Level3 { Channel::Orders } else { Channel::Levels };
            let mut publisher = feed.lock();
            let ts_ns = publisher.market_data().projection().last_ts();
            let subscriber =
                match publisher.subscribe(Subscription { channel: core, symbol: Some(id) }, ts_ns) {
                    Ok(subscriber) => subscriber,
                    Err(e) => return error(e.to_string()),
                };
            let period = period.unwrap_or(WsPeriod::OneMinute);
            let bars = (channel == WsChannel::Candles).then(|| {
                let core_period = match period {
                    WsPeriod::OneSecond => BarPeriod::OneSecond,
                    WsPeriod::OneMinute => BarPeriod::OneMinute,
                };
                let mut bars = Bars::new(core_period, CANDLES_KEPT);
                if let Some(last) = publisher.market_data().projection().bars(id, core_period).last() {
                    bars.push(*last);
                }
                (period, bars)
            });
            let last_trade = publisher.market_data().projection().tape(id).last().map(|t| t.price);
            let md = publisher.market_data();
            let seq = WsSeq {
                channel,
                epoch: md.epoch(),
                channel_seq: md.channel_seq(Channel::Levels),
                symbol_seq: md.symbol_seq(Channel::Levels, id),
            };
            drop(publisher);
            let initial = bars.as_ref().and_then(|(period, bars)| {
                bars.iter().next_back().map(|bar| candle(feed, id, symbol.clone(), seq, *period, bar))
            });
            streams.push(Stream {
                channel,
                symbol: id,
                name: symbol.clone(),
                id: subscriber,
                snapshot: (Vec::new(), Vec::new()),
                halted: false,
                book: (channel == WsChannel::Ticker).then(|| BookBuilder::new(Channel::Levels, id)),
                last_bbo: Bbo::default(),
                last_trade,
                bars,
                initial,
            });
            WsMessage::Subscribed { channel, symbol }
        }
        WsRequest::Unsubscribe { channel, symbol } => {
            let Some(i) = streams.iter().position(|s| s.channel == channel && s.name == symbol) else {
                return error(format!("not subscribed to {symbol} on this channel"));
            };
            let stream = streams.swap_remove(i);
            feed.lock().unsubscribe(stream.id);
            WsMessage::Unsubscribed { channel, symbol }
        }
    }
}

async fn connection(mut socket: WebSocket, feed: Arc<WsFeed>) {
    let mut changed = feed.changed.subscribe();
    let mut streams: Vec<Stream> = Vec::new();
    let mut batch: Vec<Message> = Vec::with_capacity(DRAIN_BATCH_MAX);
    let mut rendered: VecDeque<WsMessage> = VecDeque::new();
    'connection: loop {
        // Deliver what is waiting: one batch per stream in turn (a batch per lock, so the feeding
        // thread never waits long), so that a busy stream cannot starve the connection's others
        // while the feed keeps it full; `more` while some stream had a whole batch.
        let mut more = false;
        for stream in &mut streams {
            rendered.extend(stream.initial.take());
            batch.clear();
            let drained = feed.lock().drain(stream.id, &mut batch, DRAIN_BATCH_MAX);
            match drained {
                Ok(n) => {
                    more |= n >= DRAIN_BATCH_MAX;
                    batch.iter().for_each(|m| stream.render(&feed, m, &mut rendered));
                }
                Err(e @ (DrainError::Disconnected(_) | DrainError::UnknownSubscriber)) => {
                    let _ = send(&mut socket, &WsMessage::Error { reason: e.to_string() }).await;
                    break 'connection;
                }
            }
            while let Some(m) = rendered.pop_front() {
                if !send(&mut socket, &m).await {
                    break 'connection;
                }
            }
        }
        tokio::select! {
            biased;
            frame = socket.recv() => match frame {
                Some(Ok(WsFrame::Text(text))) => {
                    let reply = request(&feed, &mut streams, text.as_str());
                    if !send(&mut socket, &reply).await {
                        break;
                    }
                }
                Some(Ok(WsFrame::Binary(_))) => {
                    let reply = WsMessage::Error { reason: "malformed request: binary frame".into() };
                    if !send(&mut socket, &reply).await {
                        break;
                    }
                }
                Some(Ok(WsFrame::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            // Batches still wait: the next pass, without waiting for a change.
            () = std::future::ready(()), if more => {}
            result = changed.changed() => if result.is_err() { break },
        }
    }
    let mut publisher = feed.lock();
    for stream in &streams {
        publisher.unsubscribe(stream.id);
    }
}
