//! What the market-data and settlement threads of `serve` record into the counters file: each
//! registers its handles before its thread starts, and its thread copies its stage's own
//! numbers (the publisher's [`marketdata::PublisherStats`], the ledger's balances) into them at
//! most every [`REFRESH`], off any order's path.

use std::time::{Duration, Instant};

use monitor::{metrics, Counter, CountersError, Gauge, Registry};

/// How often a satellite thread copies its numbers into the counters file.
pub const REFRESH: Duration = Duration::from_millis(100);

/// The market-data thread's handles.
#[derive(Debug)]
pub struct MarketDataMetrics {
    messages: Counter,
    gaps: Counter,
    conflations: Counter,
    slow_cuts: Counter,
    subscribers: Gauge,
    last: marketdata::PublisherStats,
    /// Seq of the last event read from the journal, to see a gap in it.
    last_seq: Option<u64>,
    refreshed: Option<Instant>,
}

const MARKETDATA: &str = "marketdata";

impl MarketDataMetrics {
    /// Registers the market-data metrics.
    pub fn register(registry: &mut Registry) -> Result<MarketDataMetrics, CountersError> {
        Ok(MarketDataMetrics {
            messages: registry.counter(&metrics::MD_MESSAGES, MARKETDATA, &[])?,
            gaps: registry.counter(&metrics::MD_GAPS, MARKETDATA, &[])?,
            conflations: registry.counter(&metrics::MD_CONFLATIONS, MARKETDATA, &[])?,
            slow_cuts: registry.counter(&metrics::MD_SLOW_CUTS, MARKETDATA, &[])?,
            subscribers: registry.gauge(&metrics::MD_SUBSCRIBERS, MARKETDATA, &[])?,
            last: marketdata::PublisherStats::default(),
            last_seq: None,
            refreshed: None,
        })
    }

    /// Handles nobody reads (a thread started without monitoring).
    pub fn unobserved() -> Result<MarketDataMetrics, CountersError> {
        MarketDataMetrics::register(&mut Registry::anonymous()?)
    }

    /// An event with sequence number `seq` was read from the event journal: a number other
    /// than the one after the last is a gap in what the feed was given.
    #[inline]
    pub fn event_read(&mut self, seq: u64) {
        if self.last_seq.is_some_and(|last| seq != last + 1) {
            self.gaps.inc();
        }
        self.last_seq = Some(seq);
    }

    /// Copies the publisher's counters, at most every [`REFRESH`] (it takes the feed's lock).
    pub fn refresh(&mut self, feed: &marketdata::WsFeed, now: Instant) {
        if self.refreshed.is_some_and(|t| now.saturating_duration_since(t) < REFRESH) {
            return;
        }
        self.refreshed = Some(now);
        let (stats, subscribers) = feed.with_publisher(|p| (p.stats(), p.subscribers()));
        self.messages.add(stats.messages.saturating_sub(self.last.messages));
        self.conflations.add(stats.conflations.saturating_sub(self.last.conflations));
        self.slow_cuts.add(stats.disconnections.saturating_sub(self.last.disconnections));
        self.subscribers.set(i64::try_from(subscribers).unwrap_or(i64::MAX));
        self.last = stats;
    }
}

const SETTLEMENT: &str = "settlement";

/// The settlement thread's handles: transfers stored, trade legs waiting for settlement, and
/// per asset the sum of all posted balances, which double entry keeps at 0.
#[derive(Debug)]
pub struct SettlementMetrics {
    postings: Counter,
    pending: Gauge,
    /// One gauge per asset, in the ledger's asset order.
    imbalance: Vec<Gauge>,
    last_postings: Option<u64>,
    refreshed: Option<Instant>,
    /// Scratch sums per asset (kept, so a refresh allocates nothing).
    sums: Vec<i128>,
}

impl SettlementMetrics {
    /// Registers the settlement metrics for a ledger of `assets` (names, in the ledger's order).
    pub fn register(registry: &mut Registry, assets: &[&str]) -> Result<SettlementMetrics, CountersError> {
        let mut imbalance = Vec::with_capacity(assets.len());
        for asset in assets {
            imbalance.push(registry.gauge(&metrics::LEDGER_IMBALANCE, SETTLEMENT, &[("currency", asset)])?);
        }
        Ok(SettlementMetrics {
            postings: registry.counter(&metrics::LEDGER_POSTINGS, SETTLEMENT, &[])?,
            pending: registry.gauge(&metrics::SETTLEMENT_PENDING, SETTLEMENT, &[])?,
            sums: vec![0; assets.len()],
            imbalance,
            last_postings: None,
            refreshed: None,
        })
    }

    /// True when [`REFRESH`] has passed since the last refresh (so the caller takes the
    /// ledger's lock only then).
    pub fn due(&self, now: Instant) -> bool {
        self.refreshed.is_none_or(|t| now.saturating_duration_since(t) >= REFRESH)
    }

    /// Copies the ledger's numbers at `now`: a walk over its accounts, on the settlement
    /// thread, with the ledger's lock held (the HTTP API waits that long).
    pub fn refresh<S: settlement::Store>(&mut self, ledger: &settlement::Settlement<S>, now: Instant) {
        self.refreshed = Some(now);
        let book = ledger.ledger();
        // Transfers stored since start: the first refresh counts those recovered too.
        let stored = book.transfer_count() as u64;
        self.postings.add(stored.saturating_sub(self.last_postings.unwrap_or(0)));
        self.last_postings = Some(stored.max(self.last_postings.unwrap_or(0)));
        self.pending.set(i64::try_from(ledger.unsettled_legs()).unwrap_or(i64::MAX));
        self.sums.iter_mut().for_each(|s| *s = 0);
        for i in 0..book.account_count() {
            let idx = settlement::AccountIdx(i);
            if let (Some((_, asset, _)), Some(balances)) = (book.account_info(idx), book.balances(idx)) {
                if let Some(sum) = self.sums.get_mut(asset.0 as usize) {
                    *sum += balances.posted();
                }
            }
        }
        for (gauge, sum) in self.imbalance.iter().zip(&self.sums) {
            gauge.set(i64::try_from(*sum).unwrap_or(if *sum < 0 { i64::MIN } else { i64::MAX }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_in_the_event_sequence_counts_one_gap() {
        let mut registry = Registry::anonymous().unwrap();
        let mut m = MarketDataMetrics::register(&mut registry).unwrap();
        for seq in [1, 2, 3, 7, 8, 8] {
            m.event_read(seq);
        }
        let mut text = String::new();
        monitor::prometheus::render(&registry.reader().snapshot().unwrap(), &mut text);
        // 3 → 7 skips, 8 → 8 repeats: both are not the event after the last.
        assert!(text.contains("exchange_marketdata_gaps_total 2\n"), "{text}");
    }
}
