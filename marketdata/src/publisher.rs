//! Fan-out of one feed to many subscribers, each with its own bounded queue. Publishing never
//! waits for a subscriber: one that falls `queue_len_max` messages behind is either conflated
//! (its queue is replaced by a fresh snapshot, after which its stream goes on gapless) or
//! disconnected with a reason, per [`SlowPolicy`]; either is counted, neither is silent.
//!
//! The queues are windows of one shared log, as in a Disruptor: every message is written once,
//! and each subscriber has a cursor into the log and reads (filtered to its subscription) when
//! drained. Its queue is `log[cursor..head]`, so the bound is on how far behind the head a
//! subscriber may be, counted in feed messages. Publishing costs the same for 1 or 1000
//! subscribers; a drain costs a scan of the messages since the subscriber's last drain.
//!
//! Sans-IO and single-threaded: the thread that owns the `Publisher` calls [`Publisher::on_event`]
//! with each engine event and [`Publisher::drain`] for each subscriber whose socket can take
//! more; nothing here blocks or allocates per message once the log is full-sized.

use engine::Event;

use crate::feed::{FeedConfig, MarketData};
use crate::message::{Channel, Message, Sink};
use crate::projection::ProjectionError;
use crate::SymbolId;

/// What to do with a subscriber whose queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowPolicy {
    /// Replace its queue with a fresh snapshot of what it subscribed to.
    Conflate,
    /// Drop it with [`DisconnectReason::QueueFull`].
    Disconnect,
}

/// Settings of a [`Publisher`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublisherConfig {
    /// The feed.
    pub feed: FeedConfig,
    /// Feed messages a subscriber may be behind: the shared log's length (a snapshot is held
    /// apart from them, bounded by the book, which the engine's order pool bounds).
    pub queue_len_max: usize,
    /// Subscribers at once.
    pub subscribers_max: usize,
    /// What happens to a slow subscriber.
    pub slow_policy: SlowPolicy,
}

impl Default for PublisherConfig {
    fn default() -> PublisherConfig {
        PublisherConfig {
            feed: FeedConfig::default(),
            queue_len_max: 65_536,
            subscribers_max: 1024,
            slow_policy: SlowPolicy::Conflate,
        }
    }
}

/// What a subscriber receives: one channel, for one symbol or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The channel.
    pub channel: Channel,
    /// One symbol, or `None` for every symbol.
    pub symbol: Option<SymbolId>,
}

/// Handle of a subscriber; stale handles (after it left) are refused, never aliased.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriberId {
    index: u32,
    generation: u32,
}

/// Why a subscriber was dropped by the publisher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    /// It fell `queue_len_max` messages behind under [`SlowPolicy::Disconnect`].
    #[error("subscriber fell {queue_len_max} messages behind")]
    QueueFull {
        /// The bound it hit.
        queue_len_max: usize,
    },
}

/// Why a subscription was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// `subscribers_max` subscribers already.
    #[error("already {0} subscribers, the most allowed")]
    TooManySubscribers(usize),
    /// The symbol is not listed.
    #[error("symbol {0} is not listed")]
    UnknownSymbol(SymbolId),
}

/// Why a drain was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    /// No such subscriber (it left, or the handle is stale).
    #[error("no such subscriber")]
    UnknownSubscriber,
    /// The subscriber was disconnected; this is the reason to send it before closing.
    #[error("disconnected: {0}")]
    Disconnected(DisconnectReason),
}

/// Why a retransmission cannot be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RetransmitError {
    /// The range starts after the last message published (or at 0).
    #[error("channel seq {from} not published yet; last is {last}")]
    NotPublished {
        /// Asked from.
        from: u64,
        /// Last published.
        last: u64,
    },
    /// The log no longer holds the start of the range: take a snapshot instead.
    #[error("channel seq {from} is older than the log holds; take a snapshot")]
    TooOld {
        /// Asked from.
        from: u64,
    },
}

/// Counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Messages the feed produced.
    pub messages: u64,
    /// Messages handed to subscribers by [`Publisher::drain`].
    pub delivered: u64,
    /// Times a subscriber's queue was replaced by a snapshot.
    pub conflations: u64,
    /// Subscribers dropped for falling behind.
    pub disconnections: u64,
}

#[derive(Debug)]
struct Subscriber {
    subscription: Subscription,
    /// Snapshot messages, delivered before the log; `snapshot_sent` of them already went out.
    snapshot: Vec<Message>,
    snapshot_sent: usize,
    /// Absolute log position of the next message to read.
    cursor: u64,
    disconnected: Option<DisconnectReason>,
    conflations: u64,
}

impl Subscriber {
    fn wants(&self, message: &Message) -> bool {
        let h = &message.header;
        h.channel == self.subscription.channel
            && (h.symbol.is_none() || self.subscription.symbol.is_none_or(|s| Some(s) == h.symbol))
    }
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    subscriber: Option<Subscriber>,
}

/// The fan-out; see the module docs.
#[derive(Debug)]
pub struct Publisher {
    md: MarketData,
    slots: Vec<Slot>,
    live: usize,
    /// The shared log: message at absolute position `p` is at `log[p % queue_len_max]`.
    log: Vec<Message>,
    /// Absolute position of the next message written.
    head: u64,
    /// Per channel: absolute log position of channel seq `s` at `[s % queue_len_max]`, for
    /// retransmissions.
    positions: [Vec<u64>; 2],
    /// No live subscriber's cursor is below this (a lower bound, refreshed when it matters).
    cursor_min: u64,
    queue_len_max: usize,
    subscribers_max: usize,
    slow_policy: SlowPolicy,
    /// The current event's messages, reused.
    scratch: Vec<Message>,
    stats: PublisherStats,
}

/// Scratch reservation: the messages one engine event makes (a trade makes at most 8, a
/// replace that rests 4, plus checksums); a larger event only grows it once.
const EVENT_MESSAGES_RESERVED: usize = 64;

impl Publisher {
    /// A publisher with no subscribers.
    ///
    /// # Panics
    /// When `queue_len_max` or `subscribers_max` is 0.
    pub fn new(config: PublisherConfig) -> Publisher {
        assert!(config.queue_len_max > 0, "queue_len_max must be positive");
        assert!(config.subscribers_max > 0, "subscribers_max must be positive");
        Publisher {
            md: MarketData::new(config.feed),
            slots: Vec::new(),
            live: 0,
            log: Vec::with_capacity(config.queue_len_max.min(1 << 16)),
            head: 0,
            positions: [Vec::new(), Vec::new()],
            cursor_min: 0,
            queue_len_max: config.queue_len_max,
            subscribers_max: config.subscribers_max,
            slow_policy: config.slow_policy,
            scratch: Vec::with_capacity(EVENT_MESSAGES_RESERVED),
            stats: PublisherStats::default(),
        }
    }

    /// The feed core (projection, sequences).
    pub fn market_data(&self) -> &MarketData {
        &self.md
    }

    /// Counters.
    pub fn stats(&self) -> PublisherStats {
        self.stats
    }

    /// Subscribers connected (disconnected ones not yet drained included).
    pub fn subscribers(&self) -> usize {
        self.live
    }

    /// Adds a subscriber; its first messages are a snapshot of what it asked for (in-band).
    pub fn subscribe(
        &mut self,
        subscription: Subscription,
        ts_ns: u64,
    ) -> Result<SubscriberId, SubscribeError> {
        let symbols = self.md.projection().symbols();
        if let Some(symbol) = subscription.symbol.filter(|&s| s.index() >= symbols) {
            return Err(SubscribeError::UnknownSymbol(symbol));
        }
        if self.live >= self.subscribers_max {
            return Err(SubscribeError::TooManySubscribers(self.subscribers_max));
        }
        let mut subscriber = Subscriber {
            subscription,
            snapshot: Vec::new(),
            snapshot_sent: 0,
            cursor: self.head,
            disconnected: None,
            conflations: 0,
        };
        write_snapshot(&self.md, &mut subscriber, ts_ns);
        let index = match self.slots.iter().position(|s| s.subscriber.is_none()) {
            Some(index) => index,
            None => {
                self.slots.push(Slot { generation: 0, subscriber: None });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.subscriber = Some(subscriber);
        self.live += 1;
        // Slots are at most subscribers_max, which a u32 index holds for any sane config.
        Ok(SubscriberId { index: index as u32, generation: slot.generation })
    }

    /// Removes a subscriber (it left, or the integrator closed it). Unknown ids are ignored.
    pub fn unsubscribe(&mut self, id: SubscriberId) {
        if let Some(slot) = self.slots.get_mut(id.index as usize) {
            if slot.generation == id.generation && slot.subscriber.take().is_some() {
                slot.generation = slot.generation.wrapping_add(1);
                self.live -= 1;
            }
        }
    }

    /// Conflations of one subscriber so far.
    pub fn conflations(&self, id: SubscriberId) -> Option<u64> {
        let slot = self.slots.get(id.index as usize).filter(|s| s.generation == id.generation)?;
        slot.subscriber.as_ref().map(|s| s.conflations)
    }

    /// Applies one engine event and publishes its messages to the log.
    pub fn on_event(&mut self, event: &Event) -> Result<(), ProjectionError> {
        self.scratch.clear();
        self.md.on_event(event, &mut self.scratch)?;
        self.publish();
        Ok(())
    }

    /// Publishes a heartbeat on both channels.
    pub fn heartbeat(&mut self, ts_ns: u64) {
        self.scratch.clear();
        for channel in Channel::ALL {
            self.md.heartbeat(channel, ts_ns, &mut self.scratch);
        }
        self.publish();
    }

    /// Appends `scratch` to the log, first dealing with every subscriber it would overrun.
    fn publish(&mut self) {
        let n = self.scratch.len() as u64;
        self.stats.messages += n;
        let capacity = self.queue_len_max as u64;
        // After the append the log holds positions head + n - capacity .. head + n.
        let oldest_kept = (self.head + n).saturating_sub(capacity);
        if oldest_kept > self.cursor_min {
            self.overrun(oldest_kept);
        }
        for message in &self.scratch {
            let at = (self.head % capacity) as usize;
            if at == self.log.len() {
                self.log.push(*message);
            } else {
                self.log[at] = *message;
            }
            if message.body.is_sequenced() {
                let positions = &mut self.positions[message.header.channel.index()];
                let slot = (message.header.channel_seq % capacity) as usize;
                if slot >= positions.len() {
                    positions.resize(slot + 1, 0);
                }
                positions[slot] = self.head;
            }
            self.head += 1;
        }
    }

    /// Writes up to `max` messages of `channel` with channel seq `from` onwards, as first sent
    /// (a subscriber that saw a gap asks for the missing range, as MoldUDP64's re-request);
    /// returns how many. Served from the log, so only the last `queue_len_max` messages.
    pub fn retransmit<S: Sink>(
        &self,
        channel: Channel,
        from: u64,
        max: usize,
        out: &mut S,
    ) -> Result<usize, RetransmitError> {
        let last = self.md.channel_seq(channel);
        if from == 0 || from > last {
            return Err(RetransmitError::NotPublished { from, last });
        }
        let capacity = self.queue_len_max as u64;
        let too_old = RetransmitError::TooOld { from };
        if last - from >= capacity {
            return Err(too_old);
        }
        let position = self.positions[channel.index()][(from % capacity) as usize];
        let found = &self.log[(position % capacity) as usize];
        let still_held = position + capacity >= self.head;
        if !still_held || found.header.channel != channel || found.header.channel_seq != from {
            return Err(too_old);
        }
        let mut n = 0;
        for p in position..self.head {
            if n == max {
                break;
            }
            let message = &self.log[(p % capacity) as usize];
            if message.header.channel == channel && message.body.is_sequenced() {
                out.message(message);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Conflates or disconnects every subscriber whose cursor is below `oldest_kept`, then
    /// refreshes `cursor_min`.
    fn overrun(&mut self, oldest_kept: u64) {
        let (policy, queue_len_max) = (self.slow_policy, self.queue_len_max);
        let after = self.head + self.scratch.len() as u64;
        let ts_ns = self.scratch.last().map_or(0, |m| m.header.ts_ns);
        let mut cursor_min = after;
        for sub in self.slots.iter_mut().filter_map(|s| s.subscriber.as_mut()) {
            if sub.disconnected.is_some() {
                continue;
            }
            if sub.cursor < oldest_kept {
                match policy {
                    SlowPolicy::Conflate => {
                        // The projection already includes this event: the snapshot replaces
                        // everything up to and including its messages.
                        write_snapshot(&self.md, sub, ts_ns);
                        sub.cursor = after;
                        sub.conflations += 1;
                        self.stats.conflations += 1;
                    }
                    SlowPolicy::Disconnect => {
                        sub.snapshot = Vec::new();
                        sub.disconnected = Some(DisconnectReason::QueueFull { queue_len_max });
                        self.stats.disconnections += 1;
                        continue;
                    }
                }
            }
            cursor_min = cursor_min.min(sub.cursor);
        }
        self.cursor_min = cursor_min;
    }

    /// Moves up to `max` of a subscriber's waiting messages, oldest first (snapshot first), to
    /// `out`; returns how many. A disconnected subscriber gets its reason once, then is gone.
    pub fn drain<S: Sink>(&mut self, id: SubscriberId, out: &mut S, max: usize) -> Result<usize, DrainError> {
        let slot = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .ok_or(DrainError::UnknownSubscriber)?;
        let sub = slot.subscriber.as_mut().ok_or(DrainError::UnknownSubscriber)?;
        if let Some(reason) = sub.disconnected {
            self.unsubscribe(id);
            return Err(DrainError::Disconnected(reason));
        }
        let mut n = 0;
        while n < max && sub.snapshot_sent < sub.snapshot.len() {
            out.message(&sub.snapshot[sub.snapshot_sent]);
            sub.snapshot_sent += 1;
            n += 1;
        }
        if sub.snapshot_sent == sub.snapshot.len() {
            sub.snapshot.clear();
            sub.snapshot_sent = 0;
        }
        let capacity = self.queue_len_max as u64;
        while n < max && sub.cursor < self.head {
            let message = &self.log[(sub.cursor % capacity) as usize];
            sub.cursor += 1;
            if sub.wants(message) {
                out.message(message);
                n += 1;
            }
        }
        self.stats.delivered += n as u64;
        Ok(n)
    }

    /// Disconnected subscribers not yet drained, with their reason (for the shell to close).
    pub fn disconnected(&self) -> impl Iterator<Item = (SubscriberId, DisconnectReason)> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let reason = slot.subscriber.as_ref()?.disconnected?;
            Some((SubscriberId { index: index as u32, generation: slot.generation }, reason))
        })
    }
}

/// Replaces a subscriber's pending snapshot with a fresh snapshot of its subscription.
fn write_snapshot(md: &MarketData, sub: &mut Subscriber, ts_ns: u64) {
    sub.snapshot.clear();
    sub.snapshot_sent = 0;
    let channel = sub.subscription.channel;
    match sub.subscription.symbol {
        Some(symbol) => md.snapshot(channel, symbol, ts_ns, &mut sub.snapshot),
        None => {
            for symbol in 0..md.projection().symbols() {
                md.snapshot(channel, SymbolId(symbol as u32), ts_ns, &mut sub.snapshot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use engine::AccountId;
    use engine::{ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, NewOrder, Side};

    use super::*;
    use crate::builder::BookBuilder;
    use crate::projection::ProjectionConfig;

    const CENT: i64 = engine::PRICE_UNITS_PER_ONE / 100;

    /// Events of `n` limit orders on symbol 0 around 100.00 that rest and trade.
    fn events(n: u64) -> Vec<Event> {
        let mut engine = Engine::new(EngineConfig::default());
        let mut out = Vec::new();
        for seq in 1..=n {
            let side = if seq % 3 == 0 { Side::Sell } else { Side::Buy };
            let ticks = 10_000 + (seq % 7) as i64 - 3;
            let id = ClOrdId::from_str(&format!("o{seq}")).unwrap();
            let order = NewOrder::limit(
                AccountId((seq % 4) as u32),
                SymbolId(0),
                id,
                side,
                ticks * CENT,
                1 + seq % 5,
            );
            engine.process(
                &Command { header: CommandHeader { seq, ts: seq * 1_000 }, kind: CommandKind::New(order) },
                &mut out,
            );
        }
        out
    }

    fn publisher(queue_len_max: usize, slow_policy: SlowPolicy) -> Publisher {
        let feed = FeedConfig { projection: ProjectionConfig::default(), ..FeedConfig::default() };
        Publisher::new(PublisherConfig { feed, queue_len_max, subscribers_max: 3, slow_policy })
    }

    fn all() -> Subscription {
        Subscription { channel: Channel::Orders, symbol: Some(SymbolId(0)) }
    }

    /// Drains everything a subscriber has into a builder; the builder must stay consistent.
    fn drain_into(p: &mut Publisher, id: SubscriberId, builder: &mut BookBuilder) -> usize {
        let mut out = Vec::new();
        let n = p.drain(id, &mut out, usize::MAX).unwrap();
        for m in &out {
            builder.apply(m).unwrap_or_else(|e| panic!("{e} at {m:?}"));
        }
        n
    }

    fn same_as_projection(p: &Publisher, builder: &BookBuilder) {
        let book = p.market_data().projection().book(SymbolId(0)).unwrap();
        for side in [Side::Buy, Side::Sell] {
            let want: Vec<_> = book.orders(side).collect();
            let got: Vec<_> = builder.order_book().unwrap().orders(side).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn subscribers_get_a_snapshot_then_only_their_channel_and_symbol() {
        let mut p = publisher(1 << 16, SlowPolicy::Conflate);
        let evs = events(50);
        for e in &evs[..20] {
            p.on_event(e).unwrap();
        }
        let orders = p.subscribe(all(), 0).unwrap();
        let levels_other =
            p.subscribe(Subscription { channel: Channel::Levels, symbol: Some(SymbolId(1)) }, 0).unwrap();
        for e in &evs[20..] {
            p.on_event(e).unwrap();
        }
        let mut b = BookBuilder::new(Channel::Orders, SymbolId(0));
        assert!(drain_into(&mut p, orders, &mut b) > 0);
        assert!(b.is_live());
        same_as_projection(&p, &b);
        // Symbol 1 saw no event: its subscriber has the (empty) snapshot and nothing else.
        let mut out = Vec::new();
        assert_eq!(p.drain(levels_other, &mut out, usize::MAX), Ok(2));
        assert!(out
            .iter()
            .all(|m| m.header.symbol == Some(SymbolId(1)) && m.header.channel == Channel::Levels));
        assert_eq!(p.stats().conflations, 0);
    }

    #[test]
    fn a_slow_subscriber_is_conflated_and_its_book_stays_exact_while_others_go_on() {
        let mut p = publisher(32, SlowPolicy::Conflate);
        let slow = p.subscribe(all(), 0).unwrap();
        let fast = p.subscribe(all(), 0).unwrap();
        let (mut b_slow, mut b_fast) =
            (BookBuilder::new(Channel::Orders, SymbolId(0)), BookBuilder::new(Channel::Orders, SymbolId(0)));
        for (i, e) in events(300).iter().enumerate() {
            p.on_event(e).unwrap();
            drain_into(&mut p, fast, &mut b_fast);
            if i % 50 == 49 {
                drain_into(&mut p, slow, &mut b_slow);
                same_as_projection(&p, &b_slow);
            }
        }
        drain_into(&mut p, slow, &mut b_slow);
        assert!(p.conflations(slow).unwrap() > 0);
        assert_eq!(p.conflations(fast), Some(0));
        assert_eq!(p.stats().conflations, p.conflations(slow).unwrap());
        same_as_projection(&p, &b_slow);
        same_as_projection(&p, &b_fast);
    }

    #[test]
    fn a_slow_subscriber_is_disconnected_with_its_reason_under_that_policy() {
        let mut p = publisher(32, SlowPolicy::Disconnect);
        let slow = p.subscribe(all(), 0).unwrap();
        let fast = p.subscribe(all(), 0).unwrap();
        let mut b_fast = BookBuilder::new(Channel::Orders, SymbolId(0));
        for e in &events(100) {
            p.on_event(e).unwrap();
            drain_into(&mut p, fast, &mut b_fast);
        }
        let reason = DisconnectReason::QueueFull { queue_len_max: 32 };
        assert_eq!(p.disconnected().collect::<Vec<_>>(), vec![(slow, reason)]);
        assert_eq!(p.stats().disconnections, 1);
        assert_eq!(p.drain(slow, &mut Vec::new(), 10), Err(DrainError::Disconnected(reason)));
        assert_eq!(p.drain(slow, &mut Vec::new(), 10), Err(DrainError::UnknownSubscriber));
        assert_eq!(p.subscribers(), 1);
        same_as_projection(&p, &b_fast);
    }

    #[test]
    fn a_lost_range_is_retransmitted_from_the_log_until_it_is_overwritten() {
        let mut p = publisher(256, SlowPolicy::Conflate);
        let watcher = p.subscribe(Subscription { channel: Channel::Levels, symbol: None }, 0).unwrap();
        let mut seen = Vec::new();
        for e in &events(20) {
            p.on_event(e).unwrap();
        }
        p.drain(watcher, &mut seen, usize::MAX).unwrap();
        let sequenced: Vec<Message> = seen.into_iter().filter(|m| m.body.is_sequenced()).collect();
        let last = sequenced.last().unwrap().header.channel_seq;
        assert!(last > 10);
        let mut again = Vec::new();
        assert_eq!(p.retransmit(Channel::Levels, 4, 5, &mut again), Ok(5));
        assert_eq!(again, sequenced[3..8].to_vec());
        let mut tail = Vec::new();
        assert_eq!(p.retransmit(Channel::Levels, last, 10, &mut tail), Ok(1));
        assert_eq!(
            p.retransmit(Channel::Levels, last + 1, 1, &mut tail),
            Err(RetransmitError::NotPublished { from: last + 1, last })
        );
        assert_eq!(
            p.retransmit(Channel::Levels, 0, 1, &mut tail),
            Err(RetransmitError::NotPublished { from: 0, last })
        );
        for e in &events(300)[events(20).len()..] {
            p.on_event(e).unwrap();
        }
        assert_eq!(p.retransmit(Channel::Levels, 4, 5, &mut tail), Err(RetransmitError::TooOld { from: 4 }));
    }

    #[test]
    fn subscriptions_are_bounded_and_checked_and_stale_ids_refused() {
        let mut p = publisher(8, SlowPolicy::Conflate);
        assert_eq!(
            p.subscribe(Subscription { channel: Channel::Orders, symbol: Some(SymbolId(99)) }, 0),
            Err(SubscribeError::UnknownSymbol(SymbolId(99)))
        );
        let a = p.subscribe(all(), 0).unwrap();
        p.subscribe(all(), 0).unwrap();
        p.subscribe(Subscription { channel: Channel::Levels, symbol: None }, 0).unwrap();
        assert_eq!(p.subscribe(all(), 0), Err(SubscribeError::TooManySubscribers(3)));
        p.unsubscribe(a);
        let b = p.subscribe(all(), 0).unwrap();
        assert_ne!(a, b, "a reused slot gets a new generation");
        assert_eq!(p.drain(a, &mut Vec::new(), 1), Err(DrainError::UnknownSubscriber));
        p.heartbeat(5);
        let mut out = Vec::new();
        p.drain(b, &mut out, usize::MAX).unwrap();
        assert_eq!(out.last().unwrap().body, crate::message::Body::Heartbeat);
    }
}
