//! Trade settlement: follows the engine's events in seq order, books each trade as delivery
//! versus payment into pending ("unsettled") balances, and settles them on T+N.
//!
//! Each batch of events is one commit: the postings and the cursor (the last applied seq) go
//! to the store in one transaction, so after a crash the follower resumes after the cursor and
//! events at or below it are skipped. Transfer ids are derived from the event seq as well, so
//! even a second booking attempt of one trade would be answered "already exists".

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use engine::{AccountId, Event, EventKind, Side, SymbolId};
use rustc_hash::FxHashMap;
use serde::Serialize;
use time::Date;

use crate::asset::{format_amount, AssetId};
use crate::buying_power::BuyingPower;
use crate::calendar::day_number;

/// The buckets of [`Settlement::unsettled_legs_by_due`], as labels.
pub const UNSETTLED_DUE: [&str; 4] = ["overdue", "today", "next_business_day", "later"];
use crate::config::{ConfigError, Rules, SettlementConfig, SymbolRule, EXTERNAL_OWNER};
use crate::ledger::{
    codes, AccountError, AccountIdx, AccountKind, Created, Hold, HoldError, HoldId, Ledger, PendingState,
    Rejection, RestoreError, Transfer, TransferError, TransferId, TransferKind,
};
use crate::store::{Store, StoreError};

/// Transfer ids the follower mints carry this tag in their top byte, apart from client ids
/// (which must keep that byte zero; see [`CLIENT_ID_MAX`]).
const TRADE_ID_TAG: u128 = 0x01 << 120;
/// Tag of the posts that settle trade legs.
const SETTLE_ID_TAG: u128 = 0x02 << 120;
/// Tag of the holds the follower places for open orders (`tag | order_id`).
const ORDER_HOLD_TAG: u128 = 0x03 << 120;
/// Largest transfer id a client (deposits, withdrawals) may mint.
pub const CLIENT_ID_MAX: u128 = (1 << 120) - 1;

/// Most recent rejections kept in memory for [`Settlement::rejections`]; the store keeps all.
pub const REJECTIONS_KEPT_MAX: usize = 10_000;

/// Legs of one trade, each with its own id: `tag | seq << 2 | leg`.
const LEG_ASSET: u128 = 0;
const LEG_CASH: u128 = 1;
const LEG_FEE_MAKER: u128 = 2;
const LEG_FEE_TAKER: u128 = 3;

/// Why the follower stopped. Input it cannot book is not an error: it becomes a
/// [`Rejection`], stored and reported, and the follower goes on.
#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed; the in-memory ledger may be ahead of it, so reopen.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored ledger does not restore.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// An account could not be opened.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Events skipped a seq: the feed lost one.
    #[error("event seq {got} follows {cursor}: a gap in the feed")]
    Gap {
        /// Last applied.
        cursor: u64,
        /// Arrived.
        got: u64,
    },
    /// A batch longer than the ledger accepts at once.
    #[error(transparent)]
    Batch(TransferError),
}

/// Why a deposit or withdrawal was refused; each names the field.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The owner has no account for that asset.
    #[error("owner: {owner:?} has no {asset} account")]
    UnknownAccount {
        /// Owner.
        owner: String,
        /// Asset.
        asset: String,
    },
    /// The asset is not configured.
    #[error("asset: {0:?} is not configured")]
    UnknownAsset(String),
    /// The id is in the range the follower reserves for itself.
    #[error("id: must be at most {CLIENT_ID_MAX:#x}")]
    IdReserved,
    /// The ledger refused the transfer.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// The ledger refused the hold.
    #[error(transparent)]
    Hold(#[from] HoldError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a trade could not be booked; stored (as text) as a [`Rejection`] and reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradeRejection {
    /// The symbol has no `[[settlement.symbols]]` entry.
    #[error("symbol {0} has no settlement rule")]
    NoRule(SymbolId),
    /// An engine account id past the venue's account table.
    #[error("account {0} is not a venue account")]
    UnknownAccount(AccountId),
    /// A price of zero or less.
    #[error("price {0} ticks is not positive")]
    BadPrice(i64),
    /// An amount past `u64` minor units.
    #[error("an amount overflows u64 minor units")]
    Overflow,
    /// A self-trade on a symbol without fees: nothing to book.
    #[error("a self-trade without fees books nothing")]
    NothingToBook,
    /// The seller's available base does not cover the delivery.
    #[error("seller {seller} cannot deliver: {error}")]
    CannotDeliver {
        /// Seller's account name.
        seller: String,
        /// The ledger's refusal.
        error: TransferError,
    },
    /// The buyer's available quote does not cover cash and fees.
    #[error("buyer {buyer} cannot pay: {error}")]
    CannotPay {
        /// Buyer's account name.
        buyer: String,
        /// The ledger's refusal.
        error: TransferError,
    },
}

/// What a batch of events did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events at or below the cursor, skipped (already applied before a restart).
    pub skipped: u64,
    /// Trades booked.
    pub trades: u64,
    /// Trades that could not be booked (stored as rejections).
    pub rejected: u64,
    /// Other events (cursor advanced, nothing booked).
    pub other: u64,
    /// Open-order holds placed or resized.
    pub holds: u64,
    /// Accepted orders whose hold did not fit the account's available (no hold placed).
    pub holds_refused: u64,
}

/// A settlement batch: what moved per account and asset when the due trades settled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SettlementReport {
    /// Settlement date (`YYYY-MM-DD`).
    pub settle_date: String,
    /// Trades settled.
    pub trades: u64,
    /// Pending legs posted.
    pub legs_posted: u64,
    /// Net per owner and asset, sorted by owner then asset.
    pub lines: Vec<ReportLine>,
}

/// One owner's net in one asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportLine {
    /// Owner.
    pub owner: String,
    /// Asset.
    pub asset: String,
    /// Received (credits), decimal text.
    pub receive: String,
    /// Delivered or paid (debits), decimal text.
    pub deliver: String,
    /// Receive − deliver, decimal text.
    pub net: String,
    /// Net in minor units.
    pub net_minor: i128,
}

impl SettlementReport {
    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report is plain data")
    }

    /// The lines as CSV with a header: `settle_date,owner,asset,receive,deliver,net`.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let header = ["settle_date", "owner", "asset", "receive", "deliver", "net"];
        w.write_record(header).expect("writing to a Vec");
        for l in &self.lines {
            w.write_record([&self.settle_date, &l.owner, &l.asset, &l.receive, &l.deliver, &l.net])
                .expect("writing to a Vec");
        }
        String::from_utf8(w.into_inner().expect("a Vec flushes")).expect("CSV of UTF-8 fields")
    }
}

/// The trade-settlement follower over a store.
pub struct Settlement<S: Store> {
    ledger: Ledger,
    store: S,
    rules: Rules,
    /// Engine symbol id → rule (None: the symbol does not settle here).
    symbol_rules: Vec<Option<SymbolRule>>,
    /// Engine account id → its account per asset (`[account * assets + asset]`).
    user_accounts: Vec<AccountIdx>,
    account_names: Vec<String>,
    fee_accounts: Vec<AccountIdx>,
    external_accounts: Vec<AccountIdx>,
    /// Pending trade legs by settlement day.
    unsettled: BTreeMap<u32, Vec<TransferId>>,
    rejections: VecDeque<Rejection>,
    legs: Vec<Transfer>,
    batch_max: usize,
    buying_power: Arc<BuyingPower>,
    /// Ledger account → its buying-power cell (`u32::MAX`: not a venue account).
    cell_of: Vec<u32>,
    /// Records to write with the next commit ([`Settlement::stage_record`]).
    staged: Vec<crate::store::RecordWrite>,
    /// Commits the store refused since open: what was staged before one is lost.
    commit_failures: u64,
    /// Why the first refused commit was refused: from then on every commit is refused (see
    /// [`StoreError::RefusedEarlier`]).
    refused: Option<String>,
}

impl<S: Store> Settlement<S> {
    /// Opens the follower: restores the ledger from `store`, opens the accounts of every venue
    /// account (`accounts[engine id]`) and system owner in every asset, and maps the venue's
    /// symbols (`symbols[engine id]`, by name) to their settlement rules.
    pub fn open(
        config: &SettlementConfig,
        mut store: S,
        accounts: &[String],
        symbols: &[String],
    ) -> Result<Settlement<S>, SettlementError> {
        let rules = config.rules()?;
        if let Some(bad) =
            accounts.iter().find(|a| a.is_empty() || a.starts_with(crate::config::SYSTEM_OWNER_PREFIX))
        {
            return Err(ConfigError::AccountName(bad.clone()).into());
        }
        let snapshot = store.load()?;
        let kept_from = snapshot.rejections.len().saturating_sub(REJECTIONS_KEPT_MAX);
        let rejections = snapshot.rejections[kept_from..].iter().cloned().collect();
        let mut ledger = Ledger::restore(rules.assets.clone(), config.limits, snapshot)?;
        let names: Vec<String> = rules.assets.iter().map(|a| a.name.clone()).collect();
        let mut fee_accounts = Vec::with_capacity(names.len());
        let mut external_accounts = Vec::with_capacity(names.len());
        for asset in &names {
            fee_accounts.push(ledger.open_account(&rules.fee_owner, asset, AccountKind::User)?);
            external_accounts.push(ledger.open_account(EXTERNAL_OWNER, asset, AccountKind::System)?);
        }
        let mut user_accounts = Vec::with_capacity(accounts.len() * names.len());
        for owner in accounts {
            for asset in &names {
                user_accounts.push(ledger.open_account(owner, asset, AccountKind::User)?);
            }
        }
        let buying_power = Arc::new(BuyingPower::new(accounts.len(), names.clone()));
        let mut cell_of = vec![u32::MAX; ledger.account_count() as usize];
        for (cell, idx) in user_accounts.iter().enumerate() {
            cell_of[idx.0 as usize] = cell as u32;
            buying_power.publish(cell, ledger.balances(*idx).map_or(0, |b| b.available()));
        }
        buying_power.publish_cursor(ledger.cursor());
        store.commit(&ledger.take_commit())?;
        let by_name: FxHashMap<&str, SymbolRule> =
            rules.symbols.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        let symbol_rules = symbols.iter().map(|s| by_name.get(s.as_str()).copied()).collect();
        let mut unsettled: BTreeMap<u32, Vec<TransferId>> = BTreeMap::new();
        for t in ledger.transfers() {
            let trade_leg = t.transfer.id & !CLIENT_ID_MAX == TRADE_ID_TAG;
            if trade_leg && t.state == Some(PendingState::Pending) {
                unsettled.entry(t.transfer.user_data_32).or_default().push(t.transfer.id);
            }
        }
        // Restored in hash order; settle legs in id (= seq) order, as they were booked.
        unsettled.values_mut().for_each(|ids| ids.sort_unstable());
        Ok(Settlement {
            ledger,
            store,
            rules,
            symbol_rules,
            user_accounts,
            account_names: accounts.to_vec(),
            fee_accounts,
            external_accounts,
            unsettled,
            rejections,
            legs: Vec::with_capacity(4),
            batch_max: config.limits.batch_transfers_max as usize,
            buying_power,
            cell_of,
            staged: Vec::new(),
            commit_failures: 0,
            refused: None,
        })
    }

    /// Writes the ledger's changes in one transaction, then publishes the changed accounts'
    /// available amounts (durable first, visible second).
    fn commit(&mut self) -> Result<(), StoreError> {
        let mut commit = self.ledger.take_commit();
        // Taken even when the write fails: a record never outlives the commit it went with.
        commit.records = std::mem::take(&mut self.staged);
        if let Some(first) = &self.refused {
            // Fail closed: this commit's balances would include the refused one's postings.
            self.commit_failures += 1;
            return Err(StoreError::RefusedEarlier(first.clone()));
        }
        if let Err(e) = self.store.commit(&commit) {
            self.commit_failures += 1;
            self.refused = Some(e.to_string());
            return Err(e);
        }
        for a in &commit.accounts {
            if let Some(&cell) = self.cell_of.get(a.idx.0 as usize).filter(|c| **c != u32::MAX) {
                self.buying_power.publish(cell as usize, a.balances.available());
            }
        }
        // After the values: a reader that sees the cursor sees what it covers.
        self.buying_power.publish_cursor(self.ledger.cursor());
        Ok(())
    }

    /// Adds a record to the next commit (of postings, or [`Settlement::commit_records`]): it
    /// is durable exactly when that commit is.
    pub fn stage_record(&mut self, record: crate::store::RecordWrite) {
        self.staged.push(record);
    }

    /// Drops the staged records (their commit will not happen).
    pub fn discard_staged(&mut self) {
        self.staged.clear();
    }

    /// Commits the store refused since open. A caller that staged work and later finds this
    /// count higher than when it staged cannot tell whether its work was in the refused
    /// commit, and must treat it as lost.
    pub fn commit_failures(&self) -> u64 {
        self.commit_failures
    }

    /// Writes the staged records (and any ledger change not yet written) in one transaction.
    pub fn commit_records(&mut self) -> Result<(), StoreError> {
        self.commit()
    }

    /// Every stored record of `table`, in key order.
    pub fn load_records(
        &mut self,
        table: crate::store::RecordTable,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.store.records(table)
    }

    /// The buying-power table the pre-trade check reads (shared, lock-free).
    pub fn buying_power(&self) -> Arc<BuyingPower> {
        Arc::clone(&self.buying_power)
    }

    /// The ledger (read-only).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Last applied event seq.
    pub fn cursor(&self) -> u64 {
        self.ledger.cursor()
    }

    /// Trades that could not be booked, oldest first (the last [`REJECTIONS_KEPT_MAX`]).
    pub fn rejections(&self) -> &VecDeque<Rejection> {
        &self.rejections
    }

    /// Venue account names by engine account id.
    pub fn account_names(&self) -> &[String] {
        &self.account_names
    }

    /// Pending (unsettled) trade legs.
    pub fn unsettled_legs(&self) -> usize {
        self.unsettled.values().map(Vec::len).sum()
    }

    /// Pending trade legs by when they settle, seen on `today` ([`UNSETTLED_DUE`] order):
    /// overdue (their date passed and no run settled them), due today, on the next business
    /// day, or later. A walk over the settlement dates, not the legs.
    pub fn unsettled_legs_by_due(&self, today: Date) -> [usize; UNSETTLED_DUE.len()] {
        let (today, next) = (day_number(today), day_number(self.rules.calendar.next_business_day(today)));
        let mut by_due = [0; UNSETTLED_DUE.len()];
        for (&day, legs) in &self.unsettled {
            let bucket = match day {
                d if d < today => 0,
                d if d == today => 1,
                d if d <= next => 2,
                _ => 3,
            };
            by_due[bucket] += legs.len();
        }
        by_due
    }

    /// What `owner` may spend of `asset` now (posted − pending debits − holds), in minor
    /// units; `None` when the owner has no such account. The pre-trade check reads this.
    pub fn available(&self, owner: &str, asset: &str) -> Option<i128> {
        let asset = self.ledger.asset_id(asset)?;
        let idx = self.ledger.account(owner, asset)?;
        self.ledger.balances(idx).map(|b| b.available())
    }

    /// Applies one event (one commit).
    pub fn apply(&mut self, event: &Event) -> Result<Applied, SettlementError> {
        self.apply_batch(std::slice::from_ref(event))
    }

    /// Applies events in seq order and writes their postings with the new cursor in one
    /// transaction. Events at or below the cursor are skipped; a gap is an error.
    pub fn apply_batch(&mut self, events: &[Event]) -> Result<Applied, SettlementError> {
        let mut applied = Applied::default();
        // Check the seqs before touching the ledger, so a gap leaves nothing half-applied.
        let mut cursor = self.ledger.cursor();
        for event in events.iter().filter(|e| e.seq > self.ledger.cursor()) {
            if event.seq != cursor + 1 {
                return Err(SettlementError::Gap { cursor, got: event.seq });
            }
            cursor = event.seq;
        }
        let mut cursor = self.ledger.cursor();
        let mut booked_days: Vec<(u32, TransferId)> = Vec::new();
        for event in events {
            if event.seq <= cursor {
                applied.skipped += 1;
                continue;
            }
            cursor = event.seq;
            match event.kind {
                EventKind::Accepted { account, symbol, order_id, side, price, qty, .. } => {
                    applied.other += 1;
                    match self.hold_order(account, symbol, order_id.0, side, price.0, qty) {
                        Some(true) => applied.holds += 1,
                        Some(false) => applied.holds_refused += 1,
                        None => {}
                    }
                }
                EventKind::Replaced { account, symbol, order_id, price, leaves_qty, .. } => {
                    applied.other += 1;
                    // A replace keeps the side; the old hold says which it was.
                    let side = self
                        .ledger
                        .hold(ORDER_HOLD_TAG | u128::from(order_id.0))
                        .and_then(|h| self.side_of(h, symbol));
                    self.resize_order_hold(order_id.0, 0);
                    if let Some(side) = side {
                        match self.hold_order(account, symbol, order_id.0, side, price.0, leaves_qty) {
                            Some(true) => applied.holds += 1,
                            Some(false) => applied.holds_refused += 1,
                            None => {}
                        }
                    }
                }
                EventKind::Canceled { order_id, .. } | EventKind::Expired { order_id, .. } => {
                    applied.other += 1;
                    self.resize_order_hold(order_id.0, 0);
                }
                EventKind::Trade {
                    maker_order_id,
                    maker_leaves_qty,
                    taker_order_id,
                    taker_leaves_qty,
                    ..
                } => {
                    // The orders' holds shrink to what their rest may still cost before the
                    // trade's legs need those funds.
                    self.resize_order_hold(maker_order_id.0, maker_leaves_qty);
                    self.resize_order_hold(taker_order_id.0, taker_leaves_qty);
                    match self.book_trade(event)? {
                        Ok(day) => {
                            applied.trades += 1;
                            for leg in &self.legs {
                                booked_days.push((day, leg.id));
                            }
                        }
                        Err(reason) => {
                            applied.rejected += 1;
                            let rejection = Rejection { seq: event.seq, reason: reason.to_string() };
                            self.ledger.record_rejection(rejection.clone());
                            if self.rejections.len() == REJECTIONS_KEPT_MAX {
                                self.rejections.pop_front();
                            }
                            self.rejections.push_back(rejection);
                        }
                    }
                }
                _ => applied.other += 1,
            }
        }
        if cursor != self.ledger.cursor() {
            self.ledger.set_cursor(cursor);
        }
        self.commit()?;
        for (day, id) in booked_days {
            self.unsettled.entry(day).or_default().push(id);
        }
        Ok(applied)
    }

    /// Books one trade's legs as one linked chain: its settlement day, or why it cannot be.
    fn book_trade(&mut self, event: &Event) -> Result<Result<u32, TradeRejection>, SettlementError> {
        let EventKind::Trade { symbol, price, qty, maker_account, taker_account, aggressor, .. } = event.kind
        else {
            unreachable!("book_trade is called with trades only");
        };
        let Some(rule) = self.symbol_rule(symbol) else {
            return Ok(Err(TradeRejection::NoRule(symbol)));
        };
        let Some(maker) = self.owner_of(maker_account) else {
            return Ok(Err(TradeRejection::UnknownAccount(maker_account)));
        };
        let Some(taker) = self.owner_of(taker_account) else {
            return Ok(Err(TradeRejection::UnknownAccount(taker_account)));
        };
        let (buyer, seller) = match aggressor {
            Side::Buy => (taker, maker),
            Side::Sell => (maker, taker),
        };
        let Ok(price_ticks) = u64::try_from(price.0) else {
            return Ok(Err(TradeRejection::BadPrice(price.0)));
        };
        let asset_amount = qty.checked_mul(rule.base_minor_per_qty);
        let cash = price_ticks.checked_mul(qty).and_then(|x| x.checked_mul(rule.quote_minor_per_tick_qty));
        let (Some(asset_amount), Some(cash)) = (asset_amount, cash) else {
            return Ok(Err(TradeRejection::Overflow));
        };
        let day = day_number(self.rules.calendar.settle_date(event.ts, rule.settle_days));
        let id = |leg: u128| TRADE_ID_TAG | u128::from(event.seq) << 2 | leg;
        let leg = |id, debit, credit, amount, code| Transfer {
            id,
            debit,
            credit,
            amount,
            kind: TransferKind::Pending { timeout_ns: 0 },
            linked: true,
            code,
            user_data_64: event.seq,
            user_data_32: day,
        };
        let (b, q) = (rule.base.0 as usize, rule.quote.0 as usize);
        let n = self.rules.assets.len();
        let acct = |owner: usize, asset: usize| self.user_accounts[owner * n + asset];
        let (maker_fee, taker_fee) =
            (fee_minor(cash, rule.maker_fee_bps), fee_minor(cash, rule.taker_fee_bps));
        let seller_fee = if seller == maker { maker_fee } else { taker_fee };
        self.legs.clear();
        // A self-trade moves nothing between the two sides; only its fees are due.
        if buyer != seller {
            self.legs.push(leg(
                id(LEG_ASSET),
                acct(seller, b),
                acct(buyer, b),
                asset_amount,
                codes::TRADE_ASSET,
            ));
            // The seller's fee is netted out of its proceeds: the buyer's cash goes part to the
            // seller, part to the fee account, so a seller need not hold cash to sell.
            if cash > seller_fee {
                self.legs.push(leg(
                    id(LEG_CASH),
                    acct(buyer, q),
                    acct(seller, q),
                    cash - seller_fee,
                    codes::TRADE_CASH,
                ));
            }
        }
        let fee_payer = acct(buyer, q);
        for (fee, leg_no, code) in
            [(maker_fee, LEG_FEE_MAKER, codes::FEE_MAKER), (taker_fee, LEG_FEE_TAKER, codes::FEE_TAKER)]
        {
            if fee > 0 {
                self.legs.push(leg(id(leg_no), fee_payer, self.fee_accounts[q], fee, code));
            }
        }
        let Some(last) = self.legs.last_mut() else {
            return Ok(Err(TradeRejection::NothingToBook));
        };
        last.linked = false;
        let results = self.ledger.create_transfers(&self.legs, event.ts).map_err(SettlementError::Batch)?;
        let failed = results.iter().enumerate().find_map(|(i, r)| match r {
            Err(TransferError::LinkedEventFailed) | Ok(_) => None,
            Err(e) => Some((i, e.clone())),
        });
        if let Some((i, error)) = failed {
            // Only a debit can fail here: the delivery is the seller's, every other leg the buyer's.
            return Ok(Err(if self.legs[i].code == codes::TRADE_ASSET {
                TradeRejection::CannotDeliver { seller: self.account_names[seller].clone(), error }
            } else {
                TradeRejection::CannotPay { buyer: self.account_names[buyer].clone(), error }
            }));
        }
        // A replay of a leg already stored (`AlreadyExists`) must not be queued again.
        if results.contains(&Ok(Created::AlreadyExists)) {
            self.legs.clear();
        }
        Ok(Ok(day))
    }

    /// Places the hold of an accepted limit order: a buy holds its worst-case cash (limit
    /// price, the larger fee), a sell its assets. `None` when nothing is held (market buy,
    /// unknown symbol or account), else whether the hold fit the account's available.
    fn hold_order(
        &mut self,
        account: AccountId,
        symbol: SymbolId,
        order_id: u64,
        side: Side,
        price_ticks: i64,
        qty: u64,
    ) -> Option<bool> {
        let rule = self.symbol_rule(symbol)?;
        let owner = self.owner_of(account)?;
        let n = self.rules.assets.len();
        let (asset, unit) = match side {
            Side::Sell => (rule.base, rule.base_minor_per_qty),
            Side::Buy => {
                let price = u64::try_from(price_ticks).ok().filter(|p| *p > 0)?;
                let cash = price.checked_mul(rule.quote_minor_per_tick_qty)?;
                let fee = fee_minor(cash, rule.maker_fee_bps.max(rule.taker_fee_bps));
                (rule.quote, cash.checked_add(fee)?)
            }
        };
        let amount = qty.checked_mul(unit).filter(|a| *a > 0)?;
        let account = self.user_accounts[owner * n + asset.0 as usize];
        let hold = Hold { id: ORDER_HOLD_TAG | u128::from(order_id), account, amount, user_data_64: unit };
        Some(self.ledger.place_hold(hold).is_ok())
    }

    /// Shrinks an order's hold to `leaves_qty` times its unit cost (releases it at 0).
    fn resize_order_hold(&mut self, order_id: u64, leaves_qty: u64) {
        let id: HoldId = ORDER_HOLD_TAG | u128::from(order_id);
        let Some(hold) = self.ledger.hold(id) else { return };
        let target = leaves_qty.saturating_mul(hold.user_data_64);
        if target < hold.amount {
            // Cannot fail: the hold exists and the amount is positive and at most its own.
            let _ = self.ledger.release_hold(id, Some(hold.amount - target));
        }
    }

    /// The side of an order's hold: it holds the symbol's quote asset for a buy, its base
    /// for a sell (the two differ, config validation says so).
    fn side_of(&self, hold: Hold, symbol: SymbolId) -> Option<Side> {
        let rule = self.symbol_rule(symbol)?;
        let (_, asset, _) = self.ledger.account_info(hold.account)?;
        Some(if asset == rule.quote { Side::Buy } else { Side::Sell })
    }

    fn symbol_rule(&self, symbol: SymbolId) -> Option<SymbolRule> {
        self.symbol_rules.get(symbol.index()).copied().flatten()
    }

    fn owner_of(&self, account: AccountId) -> Option<usize> {
        (account.index() < self.account_names.len()).then_some(account.index())
    }

    /// Settles every unsettled trade leg due on or before `date`: posts each pending leg (so
    /// every trade keeps its own record) in one commit, and reports the net per owner and
    /// asset. Run it again for the same date and it settles nothing more.
    pub fn settle(&mut self, date: Date, now_ns: u64) -> Result<SettlementReport, SettlementError> {
        let today = day_number(date);
        let due_days: Vec<u32> = self.unsettled.range(..=today).map(|(d, _)| *d).collect();
        let mut receive: BTreeMap<(String, String), (u128, u128)> = BTreeMap::new();
        let mut trades = rustc_hash::FxHashSet::default();
        let mut posts = Vec::new();
        for day in &due_days {
            for id in &self.unsettled[day] {
                let Some(pending) = self.ledger.transfer(*id).copied() else { continue };
                if pending.state != Some(PendingState::Pending) {
                    continue;
                }
                let p = pending.transfer;
                trades.insert(p.user_data_64);
                posts.push(Transfer::post_of(SETTLE_ID_TAG | (p.id & CLIENT_ID_MAX), &p));
                for (idx, credit) in [(p.debit, false), (p.credit, true)] {
                    let (owner, asset, _) =
                        self.ledger.account_info(idx).expect("a stored transfer's account");
                    let key = (owner.to_string(), self.ledger.asset(asset).name.clone());
                    let entry = receive.entry(key).or_default();
                    if credit {
                        entry.0 += u128::from(p.amount);
                    } else {
                        entry.1 += u128::from(p.amount);
                    }
                }
            }
        }
        let chunk = self.batch_max.max(1);
        for batch in posts.chunks(chunk) {
            let results = self.ledger.create_transfers(batch, now_ns).map_err(SettlementError::Batch)?;
            // A pending with no timeout cannot expire, and one still pending can always post.
            assert!(results.iter().all(Result::is_ok), "posting a due trade leg failed: {results:?}");
        }
        self.commit()?;
        for day in due_days {
            self.unsettled.remove(&day);
        }
        let lines = receive
            .into_iter()
            .map(|((owner, asset), (credits, debits))| {
                let scale = self.ledger.asset_id(&asset).map_or(0, |a| self.ledger.asset(a).scale);
                let net = credits as i128 - debits as i128;
                ReportLine {
                    owner,
                    asset,
                    receive: format_amount(credits as i128, scale),
                    deliver: format_amount(debits as i128, scale),
                    net: format_amount(net, scale),
                    net_minor: net,
                }
            })
            .collect();
        let settle_date = date.to_string();
        Ok(SettlementReport {
            settle_date,
            trades: trades.len() as u64,
            legs_posted: posts.len() as u64,
            lines,
        })
    }

    /// Moves `amount` minor units of `asset` from the external account to `owner` (a deposit
    /// that has cleared), under the client's transfer id; a retry is answered as stored.
    pub fn deposit(
        &mut self,
        id: TransferId,
        owner: &str,
        asset: &str,
        amount: u64,
        now_ns: u64,
    ) -> Result<Created, PaymentError> {
        let (account, external) = self.payment_accounts(id, owner, asset)?;
        let t = Transfer { code: codes::DEPOSIT, ..Transfer::posted(id, external, account, amount) };
        self.single(t, now_ns)
    }

    /// Moves `amount` minor units of `asset` from `owner` to the external account; refused
    /// when more than the owner's available (holds and unsettled sales count against it).
    pub fn withdraw(
        &mut self,
        id: TransferId,
        owner: &str,
        asset: &str,
        amount: u64,
        now_ns: u64,
    ) -> Result<Created, PaymentError> {
        let (account, external) = self.payment_accounts(id, owner, asset)?;
        let t = Transfer { code: codes::WITHDRAWAL, ..Transfer::posted(id, account, external, amount) };
        self.single(t, now_ns)
    }

    /// The user account of (owner, asset), for transfers built by the caller.
    pub fn user_account(&self, owner: &str, asset: &str) -> Result<AccountIdx, PaymentError> {
        self.payment_accounts(0, owner, asset).map(|(account, _)| account)
    }

    /// The external account of an asset (the other side of every deposit and withdrawal).
    pub fn external_account(&self, asset: &str) -> Result<AccountIdx, PaymentError> {
        let asset_id =
            self.ledger.asset_id(asset).ok_or_else(|| PaymentError::UnknownAsset(asset.to_string()))?;
        Ok(self.external_accounts[asset_id.0 as usize])
    }

    /// Applies a batch of client transfers (two-phase deposits and withdrawals, linked
    /// chains) in one commit. Ids above [`CLIENT_ID_MAX`] are the follower's own and refused.
    pub fn create_transfers(
        &mut self,
        batch: &[Transfer],
        now_ns: u64,
    ) -> Result<Vec<Result<Created, TransferError>>, PaymentError> {
        if batch.iter().any(|t| t.id > CLIENT_ID_MAX) {
            return Err(PaymentError::IdReserved);
        }
        let results = self.ledger.create_transfers(batch, now_ns)?;
        self.commit()?;
        Ok(results)
    }

    /// [`Settlement::create_transfers`] with `records` in the same transaction when every
    /// transfer is created (or already was); when one fails, the records are not written.
    pub fn create_transfers_with_records(
        &mut self,
        batch: &[Transfer],
        now_ns: u64,
        records: Vec<crate::store::RecordWrite>,
    ) -> Result<Vec<Result<Created, TransferError>>, PaymentError> {
        if batch.iter().any(|t| t.id > CLIENT_ID_MAX) {
            return Err(PaymentError::IdReserved);
        }
        let results = self.ledger.create_transfers(batch, now_ns)?;
        if results.iter().all(Result::is_ok) {
            self.staged.extend(records);
        }
        self.commit()?;
        Ok(results)
    }

    /// [`Settlement::create_transfers_with_records`] without the commit: the transfers apply
    /// in memory and wait, with the records, for the next commit (of anyone:
    /// [`Settlement::commit_records`], the follower's, another payment's), so that several
    /// callers' batches share one durable transaction (group commit). Nothing of it is durable,
    /// nor published to the buying-power table, before that commit.
    pub fn apply_transfers_with_records(
        &mut self,
        batch: &[Transfer],
        now_ns: u64,
        records: Vec<crate::store::RecordWrite>,
    ) -> Result<Vec<Result<Created, TransferError>>, PaymentError> {
        if batch.iter().any(|t| t.id > CLIENT_ID_MAX) {
            return Err(PaymentError::IdReserved);
        }
        let results = self.ledger.create_transfers(batch, now_ns)?;
        if results.iter().all(Result::is_ok) {
            self.staged.extend(records);
        }
        Ok(results)
    }

    /// Voids every pending transfer whose timeout has passed at `now_ns`, in one commit;
    /// returns how many.
    pub fn expire_pending(&mut self, now_ns: u64) -> Result<usize, PaymentError> {
        let expired = self.ledger.expire_pending(now_ns);
        self.commit()?;
        Ok(expired)
    }

    fn payment_accounts(
        &self,
        id: TransferId,
        owner: &str,
        asset: &str,
    ) -> Result<(AccountIdx, AccountIdx), PaymentError> {
        if id > CLIENT_ID_MAX {
            return Err(PaymentError::IdReserved);
        }
        let asset_id: AssetId =
            self.ledger.asset_id(asset).ok_or_else(|| PaymentError::UnknownAsset(asset.to_string()))?;
        let account = self
            .ledger
            .account(owner, asset_id)
            .filter(|idx| self.ledger.account_info(*idx).is_some_and(|(_, _, k)| k == AccountKind::User))
            .ok_or_else(|| PaymentError::UnknownAccount {
                owner: owner.to_string(),
                asset: asset.to_string(),
            })?;
        Ok((account, self.external_accounts[asset_id.0 as usize]))
    }

    fn single(&mut self, t: Transfer, now_ns: u64) -> Result<Created, PaymentError> {
        let result = self.ledger.create_transfers(&[t], now_ns)?.remove(0);
        self.commit()?;
        Ok(result?)
    }

    /// Reserves `amount` of `owner`'s `asset` for an open order under `id`.
    pub fn place_hold(
        &mut self,
        id: u128,
        owner: &str,
        asset: &str,
        amount: u64,
    ) -> Result<Created, PaymentError> {
        let (account, _) = self.payment_accounts(0, owner, asset)?;
        let r = self.ledger.place_hold(crate::ledger::Hold { id, account, amount, user_data_64: 0 });
        self.commit()?;
        Ok(r?)
    }

    /// Releases `amount` (all when `None`) of hold `id`; returns what is still held.
    pub fn release_hold(&mut self, id: u128, amount: Option<u64>) -> Result<u64, PaymentError> {
        let r = self.ledger.release_hold(id, amount);
        self.commit()?;
        Ok(r?)
    }

    /// Gives the store back (to reopen it, as after a restart).
    pub fn into_store(self) -> S {
        self.store
    }
}

/// A fee of `bps` basis points on `cash`, rounded up to the minor unit: a venue never
/// undercharges by rounding, and a fee on a positive trade is never zero when bps is not.
pub fn fee_minor(cash: u64, bps: u32) -> u64 {
    let fee = (u128::from(cash) * u128::from(bps)).div_ceil(10_000);
    // bps ≤ FEE_BPS_MAX (10%), so the fee is below cash and fits.
    fee as u64
}
