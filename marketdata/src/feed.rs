//! The sequencer of the feeds: engine events in, stamped messages out, on both channels.
//!
//! Sequences are a pure function of the event stream: a publisher restarted from the journal
//! and fed every event again from seq 1 produces the same messages with the same numbers, so
//! it keeps its epoch. The epoch changes only when that history is lost.

use engine::Event;

use crate::book::{BookOrder, Level};
use crate::message::{Body, Channel, Header, Message, Sink};
use crate::projection::{BookOp, Projection, ProjectionConfig, ProjectionError, ProjectionSink};
use crate::tape::TradeTick;
use crate::{Price, Side, SymbolId};

/// Settings of a [`MarketData`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedConfig {
    /// The epoch every message carries (see [`Header::epoch`]).
    pub epoch: u64,
    /// Bounds of the projection.
    pub projection: ProjectionConfig,
    /// Levels per side a [`Body::Checksum`] covers; `None` sends no checksums.
    pub checksum_depth: Option<u16>,
}

impl Default for FeedConfig {
    fn default() -> FeedConfig {
        FeedConfig { epoch: 1, projection: ProjectionConfig::default(), checksum_depth: Some(10) }
    }
}

/// Next sequences of each channel and symbol.
#[derive(Debug)]
struct Sequences {
    epoch: u64,
    /// Last channel sequence assigned, per channel.
    channel: [u64; 2],
    /// Last symbol sequence assigned, per symbol and channel.
    symbol: Vec<[u64; 2]>,
}

impl Sequences {
    fn stamp<S: Sink>(&mut self, out: &mut S, channel: Channel, symbol: SymbolId, ts_ns: u64, body: Body) {
        let c = channel.index();
        self.channel[c] += 1;
        let symbol_seq = &mut self.symbol[symbol.index()][c];
        *symbol_seq += 1;
        let header = Header {
            epoch: self.epoch,
            channel,
            channel_seq: self.channel[c],
            symbol_seq: *symbol_seq,
            symbol: Some(symbol),
            ts_ns,
        };
        out.message(&Message { header, body });
    }
}

/// A symbol's last checksum, kept while no change reaches the top N levels: a level worse than
/// the Nth best cannot enter the top N unless a level in it changes, which clears the cache.
#[derive(Clone, Copy, Debug, Default)]
struct ChecksumCache {
    crc32: Option<u32>,
    /// The Nth best price per side (buy, sell) when it was computed; `None`: fewer levels, so
    /// any change on that side reaches the top N.
    cutoff: [Option<Price>; 2],
}

impl ChecksumCache {
    fn on_level(&mut self, level: &Level) {
        let reaches_top = match (level.side, self.cutoff[side_index(level.side)]) {
            (_, None) => true,
            (Side::Buy, Some(cutoff)) => level.price >= cutoff,
            (Side::Sell, Some(cutoff)) => level.price <= cutoff,
        };
        if reaches_top {
            self.crc32 = None;
        }
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// Turns projection output into messages on both channels.
struct Stamper<'a, S> {
    seqs: &'a mut Sequences,
    out: &'a mut S,
    checksums: &'a mut [ChecksumCache],
    /// The symbol whose book the event changed, if any (one event touches one symbol).
    touched: Option<(SymbolId, u64)>,
}

impl<S: Sink> ProjectionSink for Stamper<'_, S> {
    fn op(&mut self, symbol: SymbolId, ts: u64, op: &BookOp, levels: &[Level]) {
        let body = match *op {
            BookOp::Add(order) => Body::AddOrder(order),
            BookOp::Execute { order_id, qty } => Body::Execute { order_id, qty },
            BookOp::Reduce { order_id, qty } => Body::Reduce { order_id, qty },
            BookOp::Delete { order_id } => Body::Delete { order_id },
            BookOp::Replace(order) => Body::Replace(order),
        };
        self.seqs.stamp(self.out, Channel::Orders, symbol, ts, body);
        for level in levels {
            self.seqs.stamp(self.out, Channel::Levels, symbol, ts, Body::Level(*level));
            self.checksums[symbol.index()].on_level(level);
        }
        self.touched = Some((symbol, ts));
    }

    fn trade(&mut self, symbol: SymbolId, t: &TradeTick) {
        let body = Body::Trade {
            price: t.price,
            qty: t.qty,
            aggressor: t.aggressor,
            maker_order_id: t.maker_order_id,
            taker_order_id: t.taker_order_id,
        };
        for channel in Channel::ALL {
            self.seqs.stamp(self.out, channel, symbol, t.ts, body);
        }
    }

    fn status(&mut self, symbol: SymbolId, ts: u64, halted: bool) {
        for channel in Channel::ALL {
            self.seqs.stamp(self.out, channel, symbol, ts, Body::TradingStatus { halted });
        }
    }
}

/// Projection plus sequencing: the core every feed (binary, WebSocket, FIX) is cut from.
#[derive(Debug)]
pub struct MarketData {
    projection: Projection,
    seqs: Sequences,
    checksum_depth: Option<u16>,
    checksums: Vec<ChecksumCache>,
}

impl MarketData {
    /// A feed core before event seq 1.
    pub fn new(config: FeedConfig) -> MarketData {
        let projection = Projection::new(config.projection);
        let seqs = Sequences {
            epoch: config.epoch,
            channel: [0; 2],
            symbol: vec![[0; 2]; config.projection.symbols],
        };
        let checksums = vec![ChecksumCache::default(); config.projection.symbols];
        MarketData { projection, seqs, checksum_depth: config.checksum_depth, checksums }
    }

    /// The projected books, tapes and bars.
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    /// The epoch stamped on every message.
    pub fn epoch(&self) -> u64 {
        self.seqs.epoch
    }

    /// Last channel sequence assigned (0 before any).
    pub fn channel_seq(&self, channel: Channel) -> u64 {
        self.seqs.channel[channel.index()]
    }

    /// Last symbol sequence assigned on a channel (0 before any or for an unknown symbol).
    pub fn symbol_seq(&self, channel: Channel, symbol: SymbolId) -> u64 {
        self.seqs.symbol.get(symbol.index()).map_or(0, |s| s[channel.index()])
    }

    /// Applies the next engine event and writes its messages, both channels interleaved in the
    /// order they happened, to `out`. After a book change, a checksum on each channel if enabled.
    pub fn on_event<S: Sink>(&mut self, event: &Event, out: &mut S) -> Result<(), ProjectionError> {
        let mut stamper =
            Stamper { seqs: &mut self.seqs, out, checksums: &mut self.checksums, touched: None };
        self.projection.apply(event, &mut stamper)?;
        if let (Some(depth), Some((symbol, ts))) = (self.checksum_depth, stamper.touched) {
            let book = self.projection.book(symbol).expect("touched symbols are listed");
            let cache = &mut stamper.checksums[symbol.index()];
            let crc32 = match cache.crc32 {
                Some(crc32) => crc32,
                None => {
                    let depth = usize::from(depth);
                    let crc32 = book.checksum(depth);
                    let nth =
                        |side| depth.checked_sub(1).and_then(|n| book.levels(side).nth(n)).map(|l| l.price);
                    *cache = ChecksumCache { crc32: Some(crc32), cutoff: [nth(Side::Buy), nth(Side::Sell)] };
                    crc32
                }
            };
            let body = Body::Checksum { depth, crc32 };
            for channel in Channel::ALL {
                stamper.seqs.stamp(stamper.out, channel, symbol, ts, body);
            }
        }
        Ok(())
    }

    /// Writes a snapshot of one symbol on one channel: begin, every order (priority order) or
    /// level (best first, bids then asks), end. Its header sequences are the last it includes.
    /// Nothing is written for a symbol outside the table.
    pub fn snapshot<S: Sink>(&self, channel: Channel, symbol: SymbolId, ts_ns: u64, out: &mut S) {
        let Some(book) = self.projection.book(symbol) else { return };
        let header = Header {
            epoch: self.seqs.epoch,
            channel,
            channel_seq: self.channel_seq(channel),
            symbol_seq: self.symbol_seq(channel, symbol),
            symbol: Some(symbol),
            ts_ns,
        };
        let mut send = |body| out.message(&Message { header, body });
        let halted = self.projection.halted(symbol);
        let items = match channel {
            Channel::Orders => book.len(),
            Channel::Levels => book.levels(Side::Buy).count() + book.levels(Side::Sell).count(),
        };
        // A book holds at most the engine's order pool, far below u32::MAX.
        let items = u32::try_from(items).expect("book size fits u32");
        send(Body::SnapshotBegin { items, halted });
        for side in [Side::Buy, Side::Sell] {
            match channel {
                Channel::Orders => book.orders(side).for_each(|o: BookOrder| send(Body::SnapshotOrder(o))),
                Channel::Levels => book.levels(side).for_each(|l| send(Body::SnapshotLevel(l))),
            }
        }
        send(Body::SnapshotEnd { items });
    }

    /// Writes a heartbeat for a channel: the last channel sequence, so a subscriber that missed
    /// the tail of the stream sees the gap without waiting for the next update.
    pub fn heartbeat<S: Sink>(&self, channel: Channel, ts_ns: u64, out: &mut S) {
        let header = Header {
            epoch: self.seqs.epoch,
            channel,
            channel_seq: self.channel_seq(channel),
            symbol_seq: 0,
            symbol: None,
            ts_ns,
        };
        out.message(&Message { header, body: Body::Heartbeat });
    }
}
