//! Settlement inside `serve`: the ledger follows the event journal on a thread of its own.
//!
//! The thread tails `DATA/journal/events` from the ledger's cursor + 1 and applies bounded
//! batches; each batch's postings and the new cursor are one store transaction, so a restart
//! (clean or killed) resumes after the last durable batch and books no trade twice. It only
//! reads the journal: matching never waits on it. When idle it sleeps
//! ([`SettlementSection::idle_wait_ms`]), and when a business day's cut-off has passed it runs
//! that day's settlement batch (posting the trade legs due by then).
//!
//! It also hands the pre-trade check its [`BuyingPower`] (as an [`oms::funds::FundsConfig`])
//! and the HTTP endpoint the ledger's read API, with the payments API beside it
//! ([`SettlementRun::start_payments`], [`crate::payments_run`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use engine::price_text::PriceText;
use engine::{AccountId, Event, SymbolSpec};
use serde::Deserialize;
use settlement::config::SymbolConfig;
use settlement::{
    AnyStore, Asset, BuyingPower, LedgerLimits, Settlement, SettlementConfig, SettlementError, StoreConfig,
};

/// Transfer ids of opening balances carry this tag (inside the client id range, apart from
/// ids the payments API mints from its own counters).
const OPENING_ID_TAG: u128 = 0x4F50_454E << 88; // "OPEN"

/// The `[settlement]` table of the serve configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SettlementSection {
    /// Run settlement (the ledger, the funds check, the ledger API).
    pub enabled: bool,
    /// Where the ledger lives; absent: redb at `DATA/settlement/ledger.redb`.
    pub store: Option<StoreConfig>,
    /// In-memory bounds of the ledger.
    pub limits: LedgerLimits,
    /// Owner that receives fees (`venue:...`).
    pub fee_owner: String,
    /// UTC time of day (`HH:MM`) closing a business day.
    pub cutoff_utc: String,
    /// Dates (`YYYY-MM-DD`) that are not business days.
    pub holidays: Vec<String>,
    /// Assets (ids in list order).
    pub assets: Vec<Asset>,
    /// How each symbol settles (its tick must be the venue's).
    pub symbols: Vec<SymbolConfig>,
    /// Opening balances, deposited once (idempotent by owner and asset).
    pub opening: Vec<OpeningBalance>,
    /// Most events applied in one store transaction.
    pub batch_events_max: usize,
    /// How long the follower sleeps when the journal has nothing new.
    pub idle_wait_ms: u64,
    /// Shortest time between two of the follower's store transactions while events trickle
    /// in: events that arrive sooner join the next transaction (a full batch commits at once).
    /// 0 commits whatever the journal holds each time round.
    pub commit_interval_ms: u64,
}

/// One owner's opening balances (`[[settlement.opening]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningBalance {
    /// Venue account.
    pub owner: String,
    /// Asset name → decimal amount.
    pub amounts: BTreeMap<String, String>,
}

impl Default for SettlementSection {
    fn default() -> SettlementSection {
        let symbol = |name: &str, base: &str| SymbolConfig {
            name: name.into(),
            base: base.into(),
            quote: "USD".into(),
            tick: "0.01".into(),
            qty_unit: "1".into(),
            maker_fee_bps: 1,
            taker_fee_bps: 5,
            settle_days: 1,
        };
        let amounts: BTreeMap<String, String> =
            [("AAPL", "1000000"), ("BTC", "1000000"), ("ETH", "1000000"), ("USD", "1000000000")]
                .into_iter()
                .map(|(a, v)| (a.to_owned(), v.to_owned()))
                .collect();
        SettlementSection {
            enabled: true,
            store: None,
            limits: LedgerLimits::default(),
            fee_owner: "venue:fees".into(),
            cutoff_utc: "16:00".into(),
            holidays: Vec::new(),
            assets: vec![
                Asset { name: "USD".into(), scale: 2 },
                Asset { name: "BTC".into(), scale: 8 },
                Asset { name: "ETH".into(), scale: 8 },
                Asset { name: "AAPL".into(), scale: 0 },
            ],
            symbols: vec![symbol("BTC-USD", "BTC"), symbol("ETH-USD", "ETH"), symbol("AAPL", "AAPL")],
            opening: ["alice", "bob", "carol", "dave"]
                .into_iter()
                .map(|o| OpeningBalance { owner: o.into(), amounts: amounts.clone() })
                .collect(),
            batch_events_max: 4096,
            idle_wait_ms: 5,
            commit_interval_ms: 20,
        }
    }
}

/// Why settlement could not start.
#[derive(Debug, thiserror::Error)]
pub enum SettlementRunError {
    /// A key of `[settlement]` is wrong.
    #[error("settlement: {0}")]
    Config(String),
    /// The ledger could not be opened or fed.
    #[error("settlement: {0}")]
    Ledger(#[from] SettlementError),
    /// The store could not be opened.
    #[error("settlement store: {0}")]
    Store(#[from] settlement::StoreError),
    /// The event journal could not be read.
    #[error("settlement: event journal: {0}")]
    Journal(String),
    /// An opening balance was refused.
    #[error("settlement.opening: {0}")]
    Opening(String),
    /// The thread could not start.
    #[error("settlement thread: {0}")]
    Thread(std::io::Error),
}

/// The follower, shared with the HTTP handlers.
pub type SharedSettlement = Arc<Mutex<Settlement<AnyStore>>>;

/// The store a section names, with the default under `data_dir`.
pub fn store_config(section: &SettlementSection, data_dir: &Path) -> StoreConfig {
    section.store.clone().unwrap_or_else(|| StoreConfig::Redb { path: default_store_path(data_dir) })
}

/// `DATA/settlement/ledger.redb`.
pub fn default_store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("settlement").join("ledger.redb")
}

/// The crate's configuration from the section.
pub fn settlement_config(section: &SettlementSection, data_dir: &Path) -> SettlementConfig {
    SettlementConfig {
        store: store_config(section, data_dir),
        limits: section.limits,
        fee_owner: section.fee_owner.clone(),
        cutoff_utc: section.cutoff_utc.clone(),
        holidays: section.holidays.clone(),
        assets: section.assets.clone(),
        symbols: section.symbols.clone(),
    }
}

/// Opens the ledger over its store, without opening balances or catching up.
pub fn open_ledger(
    section: &SettlementSection,
    data_dir: &Path,
    accounts: &[String],
    symbols: &[SymbolSpec],
) -> Result<Settlement<AnyStore>, SettlementRunError> {
    let config = settlement_config(section, data_dir);
    if let StoreConfig::Redb { path } = &config.store {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                SettlementRunError::Config(format!("store directory {}: {e}", parent.display()))
            })?;
        }
    }
    let store = AnyStore::open(&config.store)?;
    let names: Vec<String> = symbols.iter().map(|s| s.name.clone()).collect();
    Ok(Settlement::open(&config, store, accounts, &names)?)
}

/// Applies every event journaled after the ledger's cursor, in bounded batches; returns how
/// many events it read.
pub fn catch_up(
    ledger: &Mutex<Settlement<AnyStore>>,
    events_dir: &Path,
    batch_max: usize,
) -> Result<u64, SettlementRunError> {
    let cursor = lock(ledger).cursor();
    let mut tailer = journal::Tailer::open(events_dir, cursor + 1)
        .map_err(|e| SettlementRunError::Journal(e.to_string()))?;
    let mut batch = Vec::with_capacity(batch_max.max(1));
    let mut read = 0;
    loop {
        fill(&mut tailer, &mut batch, batch_max)?;
        if batch.is_empty() {
            return Ok(read);
        }
        read += batch.len() as u64;
        lock(ledger).apply_batch(&batch)?;
    }
}

fn lock(ledger: &Mutex<Settlement<AnyStore>>) -> std::sync::MutexGuard<'_, Settlement<AnyStore>> {
    // A handler that panicked left nothing half-done in the follower (it only reads).
    ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn fill(
    tailer: &mut journal::Tailer,
    batch: &mut Vec<Event>,
    batch_max: usize,
) -> Result<(), SettlementRunError> {
    batch.clear();
    fill_more(tailer, batch, batch_max)
}

/// Appends events the journal holds to `batch` until it has `batch_max`.
fn fill_more(
    tailer: &mut journal::Tailer,
    batch: &mut Vec<Event>,
    batch_max: usize,
) -> Result<(), SettlementRunError> {
    while batch.len() < batch_max.max(1) {
        let Some(record) = tailer.poll().map_err(|e| SettlementRunError::Journal(e.to_string()))? else {
            break;
        };
        if record.kind != journal::RecordKind::Event {
            continue;
        }
        let event = Event::decode(record.payload).map_err(|e| SettlementRunError::Journal(e.to_string()))?;
        batch.push(event);
    }
    Ok(())
}

/// Running settlement: the follower thread, the shared ledger, and what the gate reads.
pub struct SettlementRun {
    ledger: SharedSettlement,
    buying_power: Arc<BuyingPower>,
    funds: oms::funds::FundsConfig,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Registered by [`SettlementRun::monitor`], moved to the thread by `start`.
    metrics: Option<crate::stage_metrics::SettlementMetrics>,
    /// Given by [`SettlementRun::ready_check`], moved to the thread by `start`.
    ready: Option<monitor::health::CheckHandle>,
    section: SettlementSection,
    events_dir: PathBuf,
    payments: Option<crate::payments_run::PaymentsRun>,
}

impl std::fmt::Debug for SettlementRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettlementRun").field("cursor", &self.buying_power.cursor()).finish()
    }
}

/// [`BuyingPower`] as the funds gate's source.
#[derive(Debug)]
struct Source(Arc<BuyingPower>);

impl oms::funds::FundsSource for Source {
    #[inline]
    fn available(&self, account: AccountId, asset: u16) -> Option<i64> {
        self.0.available(account, settlement::AssetId(asset))
    }

    #[inline]
    fn cursor(&self) -> u64 {
        self.0.cursor()
    }
}

impl SettlementRun {
    /// Opens the ledger, deposits the opening balances (once), and applies everything the
    /// journal holds past the cursor, so the funds check starts from the journal's state.
    /// `None` when `[settlement] enabled = false`.
    pub fn open(
        section: &SettlementSection,
        data_dir: &Path,
        accounts: &[String],
        symbols: &[SymbolSpec],
    ) -> Result<Option<SettlementRun>, SettlementRunError> {
        if !section.enabled {
            return Ok(None);
        }
        check_ticks(section, symbols)?;
        let mut ledger = open_ledger(section, data_dir, accounts, symbols)?;
        deposit_opening(&mut ledger, section, accounts)?;
        let buying_power = ledger.buying_power();
        let funds = funds_config(section, data_dir, &buying_power, symbols)?;
        let ledger = Arc::new(Mutex::new(ledger));
        let events_dir = data_dir.join("journal").join("events");
        catch_up(&ledger, &events_dir, section.batch_events_max)?;
        Ok(Some(SettlementRun {
            ledger,
            buying_power,
            funds,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
            metrics: None,
            ready: None,
            section: section.clone(),
            events_dir,
            payments: None,
        }))
    }

    /// Starts the payments API over this ledger (`[payments]`; nothing when disabled): a bad
    /// key of the table is refused here, before the venue serves.
    pub fn start_payments(
        &mut self,
        config: &payments::PaymentsConfig,
    ) -> Result<(), crate::payments_run::PaymentsRunError> {
        self.payments = crate::payments_run::PaymentsRun::start(config, Arc::clone(&self.ledger))?;
        Ok(())
    }

    /// The funds gate's configuration (for [`oms::OmsConfig::funds`]).
    pub fn funds(&self) -> oms::funds::FundsConfig {
        self.funds.clone()
    }

    /// The buying-power table.
    pub fn buying_power(&self) -> Arc<BuyingPower> {
        Arc::clone(&self.buying_power)
    }

    /// The ledger, shared.
    pub fn ledger(&self) -> SharedSettlement {
        Arc::clone(&self.ledger)
    }

    /// The ledger's read API (`/v1/balances`, `/v1/positions`, `/v1/entries`), the payments API
    /// when started (then API keys guard both), and their OpenAPI document at `/openapi.json`.
    pub fn routes(&self) -> axum::Router {
        let doc = crate::payments_run::openapi_document(self.payments.is_some());
        let openapi = axum::routing::get(move || async move { axum::Json(doc) });
        let routes = match &self.payments {
            Some(p) => p.routes(Arc::clone(&self.ledger)),
            None => settlement::api::routes(Arc::clone(&self.ledger), None),
        };
        routes.route("/openapi.json", openapi)
    }

    /// Registers the ledger's metrics; the follower thread started next records them.
    pub fn monitor(&mut self, registry: &mut monitor::Registry) -> Result<(), monitor::CountersError> {
        let assets: Vec<String> =
            lock(&self.ledger).ledger().assets().iter().map(|a| a.name.clone()).collect();
        let names: Vec<&str> = assets.iter().map(String::as_str).collect();
        let mut metrics = crate::stage_metrics::SettlementMetrics::register(registry, &names)?;
        if let Some(p) = &self.payments {
            metrics
                .with_payments(crate::stage_metrics::PaymentsMetrics::register(registry)?, p.stats_source());
        }
        self.metrics = Some(metrics);
        Ok(())
    }

    /// The `/readyz` check the follower keeps (`settlement_caught_up`): it passes once the
    /// follower has booked everything journaled, and fails if it stops. Call before `start`.
    pub fn ready_check(&mut self, check: monitor::health::CheckHandle) {
        check.set(false);
        self.ready = Some(check);
    }

    /// Starts the follower thread.
    pub fn start(&mut self) -> Result<(), SettlementRunError> {
        let ledger = Arc::clone(&self.ledger);
        let stop = Arc::clone(&self.stop);
        let section = self.section.clone();
        let events_dir = self.events_dir.clone();
        let mut metrics = self.metrics.take();
        let ready = self.ready.take();
        let thread = std::thread::Builder::new()
            .name("settlement".into())
            .spawn(move || {
                if let Err(e) = follow(&ledger, &events_dir, &section, &stop, &mut metrics, ready.as_ref()) {
                    if let Some(check) = &ready {
                        check.set(false);
                    }
                    // The venue keeps matching; the ledger stops where its store stopped, and
                    // the next start resumes from its cursor.
                    eprintln!("settlement stopped: {e}");
                }
            })
            .map_err(SettlementRunError::Thread)?;
        self.thread = Some(thread);
        Ok(())
    }
}

impl Drop for SettlementRun {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The follower loop: batches while the journal has events, the day's settlement after the
/// cut-off, a sleep when idle.
fn follow(
    ledger: &Mutex<Settlement<AnyStore>>,
    events_dir: &Path,
    section: &SettlementSection,
    stop: &AtomicBool,
    metrics: &mut Option<crate::stage_metrics::SettlementMetrics>,
    ready: Option<&monitor::health::CheckHandle>,
) -> Result<(), SettlementRunError> {
    let cursor = lock(ledger).cursor();
    let mut tailer = journal::Tailer::open(events_dir, cursor + 1)
        .map_err(|e| SettlementRunError::Journal(e.to_string()))?;
    let batch_max = section.batch_events_max.max(1);
    let mut batch = Vec::with_capacity(batch_max);
    let cutoff = parse_cutoff(&section.cutoff_utc)
        .ok_or_else(|| SettlementRunError::Config(format!("cutoff_utc {:?}", section.cutoff_utc)))?;
    let mut settled: Option<time::Date> = None;
    let idle = Duration::from_millis(section.idle_wait_ms.max(1));
    let mut pace = CommitPace::new(Duration::from_millis(section.commit_interval_ms));
    while !stop.load(Ordering::Acquire) {
        if let Some(m) = metrics.as_mut().filter(|m| m.due(std::time::Instant::now())) {
            m.refresh(&lock(ledger), std::time::Instant::now());
            m.refresh_payments();
        }
        fill_more(&mut tailer, &mut batch, batch_max)?;
        if !batch.is_empty() {
            let now = std::time::Instant::now();
            match pace.wait(now, batch.len() >= batch_max) {
                Some(wait) => std::thread::sleep(wait.min(idle)),
                None => {
                    lock(ledger).apply_batch(&batch)?;
                    batch.clear();
                    pace.committed(now);
                }
            }
            continue;
        }
        // Nothing more to book: caught up with the journal.
        if let Some(check) = ready.filter(|c| !c.is_ok()) {
            check.set(true);
        }
        let now = time::OffsetDateTime::now_utc();
        // The last business day whose cut-off has passed.
        let day =
            if now.time() >= cutoff { now.date() } else { now.date().previous_day().unwrap_or(now.date()) };
        if settled != Some(day) {
            let now_ns = u64::try_from(now.unix_timestamp_nanos()).unwrap_or(0);
            let report = lock(ledger).settle(day, now_ns)?;
            if report.trades > 0 {
                println!(
                    "settlement: {} settled {} trades ({} legs)",
                    report.settle_date, report.trades, report.legs_posted
                );
            }
            settled = Some(day);
        }
        std::thread::sleep(idle);
    }
    // Events read but held back by the pace: book them before stopping (the next start would
    // read them again from the cursor anyway).
    if !batch.is_empty() {
        lock(ledger).apply_batch(&batch)?;
    }
    Ok(())
}

/// When the follower may commit again: at most one store transaction per interval while
/// events trickle in, so a venue taking a few thousand orders a second pays for tens of
/// commits (each an fsync under redb's default durability) a second, not one per turn. A
/// full batch never waits. The funds check loses nothing by the delay: it keeps its own
/// reservation of each order until the follower's published cursor passes it.
#[derive(Debug)]
struct CommitPace {
    interval: Duration,
    last: Option<std::time::Instant>,
}

impl CommitPace {
    fn new(interval: Duration) -> CommitPace {
        CommitPace { interval, last: None }
    }

    /// How long to wait before committing a batch read by `now` (`None`: commit now).
    fn wait(&self, now: std::time::Instant, full: bool) -> Option<Duration> {
        let since = now.saturating_duration_since(self.last?);
        (!full && since < self.interval).then(|| self.interval - since)
    }

    fn committed(&mut self, now: std::time::Instant) {
        self.last = Some(now);
    }
}

fn parse_cutoff(text: &str) -> Option<time::Time> {
    let (h, m) = text.split_once(':')?;
    time::Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
}

/// A symbol's settlement tick must be the venue's: prices arrive in the venue's ticks.
fn check_ticks(section: &SettlementSection, symbols: &[SymbolSpec]) -> Result<(), SettlementRunError> {
    for s in &section.symbols {
        let Some(spec) = symbols.iter().find(|v| v.name == s.name) else { continue };
        let tick = engine::price_text::parse_units(&s.tick).map_err(|e| {
            SettlementRunError::Config(format!("symbols[{}].tick {:?} is not a price: {e}", s.name, s.tick))
        })?;
        if tick != spec.tick_units {
            let (tick, venue) =
                (PriceText::trimmed(tick.into(), 0), PriceText::trimmed(spec.tick_units.into(), 0));
            return Err(SettlementRunError::Config(format!(
                "symbols[{}].tick is {tick}, the venue's tick is {venue}",
                s.name
            )));
        }
    }
    Ok(())
}

fn deposit_opening(
    ledger: &mut Settlement<AnyStore>,
    section: &SettlementSection,
    accounts: &[String],
) -> Result<(), SettlementRunError> {
    for o in &section.opening {
        if !accounts.contains(&o.owner) {
            // The embedded defaults name the demo accounts, which a venue's own list may drop.
            eprintln!("warning: settlement.opening names {}, which is not a venue account; skipped", o.owner);
            continue;
        }
        for (asset, text) in &o.amounts {
            let scale = section
                .assets
                .iter()
                .find(|a| &a.name == asset)
                .ok_or_else(|| {
                    SettlementRunError::Opening(format!("{}: asset {asset} is not configured", o.owner))
                })?
                .scale;
            let amount = settlement::parse_amount(text, scale)
                .map_err(|e| SettlementRunError::Opening(format!("{} {asset} {text:?}: {e}", o.owner)))?;
            if amount == 0 {
                continue;
            }
            let id = OPENING_ID_TAG | u128::from(fnv64(&format!("{}\u{0}{asset}", o.owner)));
            let now_ns = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0);
            match ledger.deposit(id, &o.owner, asset, amount, now_ns) {
                Ok(_) => {}
                // Deposited at an earlier start with another amount: the ledger keeps the first.
                Err(settlement::PaymentError::Transfer(e)) if is_exists(&e) => {}
                Err(e) => return Err(SettlementRunError::Opening(format!("{} {asset}: {e}", o.owner))),
            }
        }
    }
    Ok(())
}

fn is_exists(e: &settlement::TransferError) -> bool {
    matches!(e, settlement::TransferError::IdReused { .. })
}

/// FNV-1a: a stable 64-bit id from a name (not a security boundary; ids only need to differ).
fn fnv64(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn funds_config(
    section: &SettlementSection,
    data_dir: &Path,
    buying_power: &Arc<BuyingPower>,
    symbols: &[SymbolSpec],
) -> Result<oms::funds::FundsConfig, SettlementRunError> {
    let rules = settlement_config(section, data_dir).rules().map_err(SettlementError::from)?;
    let funds_rules = symbols
        .iter()
        .map(|spec| {
            rules.symbols.iter().find(|(n, _)| *n == spec.name).map(|(_, r)| oms::funds::FundsRule {
                base: r.base.0,
                quote: r.quote.0,
                base_minor_per_qty: r.base_minor_per_qty,
                quote_minor_per_tick_qty: r.quote_minor_per_tick_qty,
                fee_bps: r.maker_fee_bps.max(r.taker_fee_bps),
                tick_units: spec.tick_units,
            })
        })
        .collect();
    Ok(oms::funds::FundsConfig {
        source: Arc::new(Source(Arc::clone(buying_power))),
        assets: rules.assets.iter().map(|a| (a.name.clone(), a.scale)).collect(),
        rules: funds_rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn venue_symbols() -> Vec<SymbolSpec> {
        // 0.01 in price units (PRICE_SCALE decimals).
        let tick = 10i64.pow(engine::PRICE_SCALE - 2);
        ["BTC-USD", "ETH-USD", "AAPL"].into_iter().map(|n| SymbolSpec::new(n, tick, 1)).collect()
    }

    #[test]
    fn the_defaults_check_and_match_the_default_venue_ticks() {
        let section = SettlementSection::default();
        settlement_config(&section, Path::new("var")).rules().expect("the embedded defaults check");
        check_ticks(&section, &venue_symbols()).expect("same ticks as the venue");
        let mut wrong = section.clone();
        wrong.symbols[1].tick = "1".into();
        let e = check_ticks(&wrong, &venue_symbols()).unwrap_err().to_string();
        assert!(e.contains("symbols[ETH-USD].tick is 1, the venue's tick is 0.01"), "{e}");
    }

    #[test]
    fn commits_are_paced_while_events_trickle_in_and_never_hold_a_full_batch() {
        let t0 = std::time::Instant::now();
        let ms = Duration::from_millis;
        let mut pace = CommitPace::new(ms(20));
        assert_eq!(pace.wait(t0, false), None, "the first batch after start commits at once");
        pace.committed(t0);
        assert_eq!(pace.wait(t0 + ms(5), false), Some(ms(15)));
        assert_eq!(pace.wait(t0 + ms(5), true), None, "a full batch commits at once");
        assert_eq!(pace.wait(t0 + ms(20), false), None);
        pace.committed(t0 + ms(21));
        assert_eq!(pace.wait(t0 + ms(22), false), Some(ms(19)));
        let mut eager = CommitPace::new(Duration::ZERO);
        eager.committed(t0);
        assert_eq!(eager.wait(t0, false), None, "interval 0 commits every time round");
    }

    #[test]
    fn opening_ids_are_stable_and_in_the_client_range() {
        let id = OPENING_ID_TAG | u128::from(fnv64("alice\u{0}USD"));
        assert_eq!(id, OPENING_ID_TAG | u128::from(fnv64("alice\u{0}USD")));
        assert_ne!(id, OPENING_ID_TAG | u128::from(fnv64("alice\u{0}BTC")));
        assert!(id <= settlement::follower::CLIENT_ID_MAX);
    }
}
