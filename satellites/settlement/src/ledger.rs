//! The sans-IO double-entry ledger: accounts per (owner, asset), transfers with client-minted
//! ids, two-phase transfers, linked chains, holds, and the zero-sum invariant.
//!
//! The model follows TigerBeetle: every transfer debits one account and credits another of the
//! same asset by the same integer amount; an account keeps four counters (debits and credits,
//! pending and posted) and never a free-form balance, so the sum over an asset's accounts is
//! zero by construction and checked at every commit. Nothing here does I/O or reads a clock:
//! time enters as `now_ns`, and each batch of changes leaves as a [`Commit`] that a
//! [`Store`](crate::Store) writes in one transaction.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::asset::{Asset, AssetId};

/// A client-minted transfer id. Zero is refused: it is the "no id" of too many client libraries.
pub type TransferId = u128;

/// A client-minted hold id.
pub type HoldId = u128;

/// Dense account number: the account's index in the ledger, stable across restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountIdx(pub u32);

/// What an account may do with its balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A customer (or the venue's fee account): debits never exceed posted credits.
    User,
    /// A system account (external rails, settlement clearing): may go negative, because its
    /// balance mirrors money that lives outside this ledger.
    System,
}

impl AccountKind {
    /// Name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "user",
            AccountKind::System => "system",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<AccountKind> {
        match text {
            "user" => Some(AccountKind::User),
            "system" => Some(AccountKind::System),
            _ => None,
        }
    }
}

/// An account's counters in minor units. `u128` so that sums of `u64` amounts never overflow
/// in practice; an overflow is still checked and refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    /// Debits of pending (two-phase, not yet posted) transfers.
    pub debits_pending: u128,
    /// Debits of posted transfers.
    pub debits_posted: u128,
    /// Credits of pending transfers.
    pub credits_pending: u128,
    /// Credits of posted transfers.
    pub credits_posted: u128,
    /// Sum of open holds (funds reserved for open orders).
    pub held: u128,
}

impl Balances {
    /// Posted balance: credits minus debits, posted only.
    pub fn posted(&self) -> i128 {
        self.credits_posted as i128 - self.debits_posted as i128
    }

    /// Pending balance: pending credits minus pending debits.
    pub fn pending(&self) -> i128 {
        self.credits_pending as i128 - self.debits_pending as i128
    }

    /// What can be spent: posted − pending debits − holds. Pending credits are not spendable
    /// until they post (an unsettled purchase cannot be sold twice over).
    pub fn available(&self) -> i128 {
        self.posted() - self.debits_pending as i128 - self.held as i128
    }
}

/// What kind of transfer this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum TransferKind {
    /// Posted at once.
    Posted,
    /// Reserved on both accounts until posted or voided (phase one).
    Pending {
        /// Voided automatically this long after creation; 0 means never.
        timeout_ns: u64,
    },
    /// Posts a pending transfer (phase two). Accounts and amount must equal the pending's.
    PostPending {
        /// The pending transfer.
        pending_id: TransferId,
    },
    /// Voids a pending transfer. Accounts and amount must equal the pending's.
    VoidPending {
        /// The pending transfer.
        pending_id: TransferId,
    },
}

/// A transfer as a client asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Client-minted id; a retry with the same id and body is answered from the stored one.
    pub id: TransferId,
    /// Account debited.
    pub debit: AccountIdx,
    /// Account credited.
    pub credit: AccountIdx,
    /// Minor units, positive.
    pub amount: u64,
    /// Single-phase, pending, post or void.
    pub kind: TransferKind,
    /// Linked to the next transfer of the batch: the chain commits or fails as one.
    pub linked: bool,
    /// What the transfer is for (see [`codes`]).
    pub code: u16,
    /// Free for the caller (trade settlement stores the engine event seq here).
    pub user_data_64: u64,
    /// Free for the caller (trade settlement stores the settlement day here).
    pub user_data_32: u32,
}

/// Transfer codes this crate uses.
pub mod codes {
    /// Deposit from the external account.
    pub const DEPOSIT: u16 = 1;
    /// Withdrawal to the external account.
    pub const WITHDRAWAL: u16 = 2;
    /// Delivery leg of a trade (asset, seller → buyer), pending until settlement.
    pub const TRADE_ASSET: u16 = 10;
    /// Payment leg of a trade (cash, buyer → seller), pending until settlement.
    pub const TRADE_CASH: u16 = 11;
    /// Maker fee to the venue's fee account.
    pub const FEE_MAKER: u16 = 12;
    /// Taker fee to the venue's fee account.
    pub const FEE_TAKER: u16 = 13;
}

/// Where a pending transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingState {
    /// Reserved, not yet posted or voided.
    Pending,
    /// Posted by a `PostPending` transfer.
    Posted,
    /// Voided by a `VoidPending` transfer.
    Voided,
    /// Voided because its timeout passed.
    Expired,
}

impl PendingState {
    /// Name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            PendingState::Pending => "pending",
            PendingState::Posted => "posted",
            PendingState::Voided => "voided",
            PendingState::Expired => "expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<PendingState> {
        match text {
            "pending" => Some(PendingState::Pending),
            "posted" => Some(PendingState::Posted),
            "voided" => Some(PendingState::Voided),
            "expired" => Some(PendingState::Expired),
            _ => None,
        }
    }
}

/// A transfer as the ledger stored it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTransfer {
    /// The transfer as asked (with `linked` as it was in its batch).
    pub transfer: Transfer,
    /// When it was created (the `now_ns` of its batch).
    pub ts_ns: u64,
    /// For a pending transfer, where it stands; `None` for every other kind.
    pub state: Option<PendingState>,
}

/// Funds reserved on an account (an open order's worst-case cost); lowers `available`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Client-minted id.
    pub id: HoldId,
    /// The account held.
    pub account: AccountIdx,
    /// Minor units held, positive.
    pub amount: u64,
    /// Free for the caller (the follower stores an open order's cost per unit here).
    pub user_data_64: u64,
}

/// An account as stored: identity and counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Index.
    pub idx: AccountIdx,
    /// Owner name (a venue account name or a system owner such as `venue:fees`).
    pub owner: String,
    /// Asset name.
    pub asset: String,
    /// User or system.
    pub kind: AccountKind,
    /// Counters.
    pub balances: Balances,
}

/// Everything one commit changed, for a store to write in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    /// After-images of accounts created or changed.
    pub accounts: Vec<AccountRecord>,
    /// Transfers created.
    pub transfers: Vec<StoredTransfer>,
    /// New states of pending transfers created earlier (or in this commit).
    pub pending_states: Vec<(TransferId, PendingState)>,
    /// Holds placed or changed (after-images).
    pub holds_placed: Vec<Hold>,
    /// Holds released.
    pub holds_released: Vec<HoldId>,
    /// Inputs that could not be booked, kept with their reason.
    pub rejections: Vec<Rejection>,
    /// The follower cursor to store with these postings (last applied engine event seq).
    pub cursor: Option<u64>,
    /// Records of the satellites that write beside the ledger (payment records, idempotency
    /// keys), in the same transaction as the postings they go with.
    pub records: Vec<crate::store::RecordWrite>,
}

/// An input (an engine event) the follower could not book, stored with its reason so that it
/// is reported rather than lost (e.g. a trade whose seller had not the assets to deliver).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Engine event seq.
    pub seq: u64,
    /// Why, in words.
    pub reason: String,
}

impl Commit {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.transfers.is_empty()
            && self.pending_states.is_empty()
            && self.holds_placed.is_empty()
            && self.holds_released.is_empty()
            && self.rejections.is_empty()
            && self.cursor.is_none()
            && self.records.is_empty()
    }
}

/// Bounds of the in-memory ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerLimits {
    /// Accounts the ledger holds.
    pub accounts_max: u32,
    /// Transfers kept for idempotency and pending lookups.
    pub transfers_max: u64,
    /// Open holds.
    pub holds_max: u32,
    /// Transfers in one batch.
    pub batch_transfers_max: u32,
}

impl Default for LedgerLimits {
    fn default() -> LedgerLimits {
        // 4M transfers at ~90 bytes each stay under 512 MB; an operator who needs more
        // raises it knowingly.
        LedgerLimits {
            accounts_max: 1 << 20,
            transfers_max: 4_000_000,
            holds_max: 1 << 20,
            batch_transfers_max: 65_536,
        }
    }
}

/// Why an account could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The asset is not configured.
    #[error("asset {0:?} is not configured")]
    UnknownAsset(String),
    /// The owner name is empty.
    #[error("owner is empty")]
    EmptyOwner,
    /// It exists with another kind.
    #[error("account {owner}/{asset} exists as a {existing} account")]
    KindMismatch {
        /// Owner.
        owner: String,
        /// Asset.
        asset: String,
        /// Kind it has.
        existing: &'static str,
    },
    /// `accounts_max` reached.
    #[error("the ledger holds its maximum of {0} accounts")]
    Full(u32),
}

/// Why a transfer was refused. Nothing of a refused transfer (or of its linked chain) is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// Id zero.
    #[error("id: must not be zero")]
    IdZero,
    /// Amount zero.
    #[error("amount: must be positive")]
    AmountZero,
    /// Debit and credit are one account.
    #[error("credit: must differ from debit")]
    SameAccount,
    /// An account index the ledger does not have.
    #[error("{field}: no such account")]
    UnknownAccount {
        /// `debit` or `credit`.
        field: &'static str,
    },
    /// The two accounts hold different assets.
    #[error("credit: asset differs from the debit account's")]
    AssetMismatch,
    /// The id exists with a different body.
    #[error("id: exists with a different {field}")]
    IdReused {
        /// The first field that differs.
        field: &'static str,
    },
    /// The debit would take a user account below zero available.
    #[error("amount: {amount} exceeds the {available} available on the debit account")]
    Overdraft {
        /// Available before the transfer.
        available: i128,
        /// Asked.
        amount: u64,
    },
    /// A counter would overflow `u128`.
    #[error("amount: a balance would overflow")]
    Overflow,
    /// Post or void of an id that is not a pending transfer.
    #[error("pending_id: no pending transfer with that id")]
    PendingNotFound,
    /// Post or void of a pending transfer already posted, voided or expired.
    #[error("pending_id: the transfer is already {0}")]
    PendingNotPending(&'static str),
    /// Post of a pending transfer whose timeout has passed.
    #[error("pending_id: the pending transfer expired")]
    PendingExpired,
    /// Post or void whose accounts or amount differ from the pending's.
    #[error("{field}: differs from the pending transfer's")]
    PendingMismatch {
        /// The first field that differs.
        field: &'static str,
    },
    /// A transfer linked to this one failed.
    #[error("linked: another transfer of the chain failed")]
    LinkedEventFailed,
    /// The last transfer of the batch is marked linked: the chain never closes.
    #[error("linked: the batch ends inside a linked chain")]
    LinkedChainOpen,
    /// `transfers_max` reached.
    #[error("the ledger holds its maximum of {0} transfers")]
    Full(u64),
    /// The batch is longer than `batch_transfers_max`.
    #[error("batch of {len} transfers is longer than the {max} allowed")]
    BatchTooLong {
        /// Length given.
        len: usize,
        /// The bound.
        max: u32,
    },
}

/// Why a hold could not be placed or released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldError {
    /// Id zero.
    #[error("id: must not be zero")]
    IdZero,
    /// Amount zero.
    #[error("amount: must be positive")]
    AmountZero,
    /// No such account.
    #[error("account: no such account")]
    UnknownAccount,
    /// The id is an open hold with a different body.
    #[error("id: an open hold has that id with a different {field}")]
    IdReused {
        /// The first field that differs.
        field: &'static str,
    },
    /// Not enough available.
    #[error("amount: {amount} exceeds the {available} available")]
    Overdraft {
        /// Available before the hold.
        available: i128,
        /// Asked.
        amount: u64,
    },
    /// No open hold with that id.
    #[error("id: no open hold with that id")]
    NotFound,
    /// Releasing more than is held.
    #[error("amount: {amount} exceeds the {held} held")]
    ReleaseTooLarge {
        /// Held now.
        held: u64,
        /// Asked.
        amount: u64,
    },
    /// `holds_max` reached.
    #[error("the ledger holds its maximum of {0} holds")]
    Full(u32),
}

/// Why a stored ledger could not be restored: the store and the ledger disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// An account names an asset the configuration lacks.
    #[error("account {idx} holds asset {asset:?}, which is not configured")]
    UnknownAsset {
        /// Account index.
        idx: u32,
        /// Asset name.
        asset: String,
    },
    /// Account indexes are not dense from 0.
    #[error("account indexes are not dense: expected {expected}, found {found}")]
    AccountGap {
        /// Index expected.
        expected: u32,
        /// Index found.
        found: u32,
    },
    /// The same (owner, asset) twice.
    #[error("account {owner}/{asset} is stored twice")]
    DuplicateAccount {
        /// Owner.
        owner: String,
        /// Asset.
        asset: String,
    },
    /// A transfer or hold names an account that is not stored.
    #[error("{what} {id} names account {idx}, which is not stored")]
    DanglingAccount {
        /// `transfer` or `hold`.
        what: &'static str,
        /// Its id.
        id: u128,
        /// The account index.
        idx: u32,
    },
    /// Counters rebuilt from the transfers differ from the stored ones.
    #[error("account {owner}/{asset}: stored counters {stored:?} but the transfers add up to {rebuilt:?}")]
    BalanceMismatch {
        /// Owner.
        owner: String,
        /// Asset.
        asset: String,
        /// As stored.
        stored: Box<Balances>,
        /// As rebuilt.
        rebuilt: Box<Balances>,
    },
    /// A bound of [`LedgerLimits`] is below what is stored.
    #[error("the store holds more {0} than the configured limit")]
    OverLimit(&'static str),
    /// The per-asset sum is not zero.
    #[error("{0}")]
    Invariant(#[from] InvariantError),
}

/// A broken ledger invariant (a bug or a corrupt store, never bad input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvariantError {
    /// Posted balances of an asset do not sum to zero.
    #[error("posted balances of {asset} sum to {sum}, not zero")]
    PostedSum {
        /// Asset.
        asset: String,
        /// The sum.
        sum: i128,
    },
    /// Pending balances of an asset do not sum to zero.
    #[error("pending balances of {asset} sum to {sum}, not zero")]
    PendingSum {
        /// Asset.
        asset: String,
        /// The sum.
        sum: i128,
    },
    /// A user account is overdrawn.
    #[error("user account {owner}/{asset} has {available} available")]
    Overdrawn {
        /// Owner.
        owner: String,
        /// Asset.
        asset: String,
        /// Available.
        available: i128,
    },
}

/// A transfer that was accepted: new, or the stored one of a retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// Created now.
    New,
    /// The id existed with this body: nothing changed.
    AlreadyExists,
}

#[derive(Clone, Debug)]
struct AccountMeta {
    owner: String,
    asset: AssetId,
    kind: AccountKind,
}

/// An undo step inside a linked chain.
enum Undo {
    Balances(u32, Balances),
    TransferInserted(TransferId),
    PendingState(TransferId, PendingState),
}

/// The ledger: all accounts and their counters, the transfers (for idempotency and two-phase
/// lookups) and open holds, in memory; changes leave through [`Ledger::take_commit`].
pub struct Ledger {
    limits: LedgerLimits,
    assets: Vec<Asset>,
    asset_by_name: FxHashMap<String, AssetId>,
    metas: Vec<AccountMeta>,
    balances: Vec<Balances>,
    /// Per asset, owner → account (a map per asset so a lookup by `&str` allocates nothing).
    by_owner: Vec<FxHashMap<String, AccountIdx>>,
    transfers: FxHashMap<TransferId, StoredTransfer>,
    /// Transfer ids in order, for paged reads of the entries.
    ordered: BTreeSet<TransferId>,
    /// Pending transfers with a timeout, by expiry time. Entries of pendings that were posted
    /// or voided stay until popped; an entry is live only while its transfer is still pending.
    expiries: BinaryHeap<Reverse<(u64, TransferId)>>,
    holds: FxHashMap<HoldId, Hold>,
    cursor: u64,
    // Per-commit bookkeeping.
    dirty: Vec<bool>,
    before: Vec<(u32, Balances)>,
    commit: Commit,
    undo: Vec<Undo>,
}

impl Ledger {
    /// An empty ledger over `assets` (ids in list order).
    pub fn new(assets: Vec<Asset>, limits: LedgerLimits) -> Ledger {
        let asset_count = assets.len();
        let asset_by_name =
            assets.iter().enumerate().map(|(i, a)| (a.name.clone(), AssetId(i as u16))).collect();
        Ledger {
            limits,
            assets,
            asset_by_name,
            metas: Vec::new(),
            balances: Vec::new(),
            by_owner: vec![FxHashMap::default(); asset_count],
            transfers: FxHashMap::default(),
            ordered: BTreeSet::new(),
            expiries: BinaryHeap::new(),
            holds: FxHashMap::default(),
            cursor: 0,
            dirty: Vec::new(),
            before: Vec::new(),
            commit: Commit::default(),
            undo: Vec::new(),
        }
    }

    /// Rebuilds a ledger from what a store loaded, checking that the stored counters equal
    /// the ones the stored transfers and holds add up to (the read-back half of the
    /// write-time zero-sum assertion).
    pub fn restore(
        assets: Vec<Asset>,
        limits: LedgerLimits,
        snapshot: Snapshot,
    ) -> Result<Ledger, RestoreError> {
        let mut ledger = Ledger::new(assets, limits);
        let Snapshot { mut accounts, transfers, holds, cursor, .. } = snapshot;
        if accounts.len() as u64 > u64::from(limits.accounts_max) {
            return Err(RestoreError::OverLimit("accounts"));
        }
        if transfers.len() as u64 > limits.transfers_max {
            return Err(RestoreError::OverLimit("transfers"));
        }
        if holds.len() as u64 > u64::from(limits.holds_max) {
            return Err(RestoreError::OverLimit("holds"));
        }
        accounts.sort_by_key(|a| a.idx);
        let mut stored = Vec::with_capacity(accounts.len());
        for (i, a) in accounts.into_iter().enumerate() {
            if a.idx.0 != i as u32 {
                return Err(RestoreError::AccountGap { expected: i as u32, found: a.idx.0 });
            }
            let asset = *ledger
                .asset_by_name
                .get(&a.asset)
                .ok_or_else(|| RestoreError::UnknownAsset { idx: a.idx.0, asset: a.asset.clone() })?;
            if ledger.by_owner[asset.0 as usize].insert(a.owner.clone(), a.idx).is_some() {
                return Err(RestoreError::DuplicateAccount { owner: a.owner, asset: a.asset });
            }
            ledger.metas.push(AccountMeta { owner: a.owner, asset, kind: a.kind });
            ledger.balances.push(Balances::default());
            ledger.dirty.push(false);
            stored.push(a.balances);
        }
        let n = ledger.metas.len() as u32;
        for t in &transfers {
            for idx in [t.transfer.debit, t.transfer.credit] {
                if idx.0 >= n {
                    return Err(RestoreError::DanglingAccount {
                        what: "transfer",
                        id: t.transfer.id,
                        idx: idx.0,
                    });
                }
            }
            let amount = u128::from(t.transfer.amount);
            let (d, c) = (t.transfer.debit.0 as usize, t.transfer.credit.0 as usize);
            match (t.transfer.kind, t.state) {
                (TransferKind::Posted, _) | (TransferKind::Pending { .. }, Some(PendingState::Posted)) => {
                    ledger.balances[d].debits_posted += amount;
                    ledger.balances[c].credits_posted += amount;
                }
                (TransferKind::Pending { timeout_ns }, Some(PendingState::Pending)) => {
                    ledger.balances[d].debits_pending += amount;
                    ledger.balances[c].credits_pending += amount;
                    if timeout_ns > 0 {
                        ledger.expiries.push(Reverse((t.ts_ns.saturating_add(timeout_ns), t.transfer.id)));
                    }
                }
                // Voided or expired pendings, and the post/void records themselves, leave no
                // counter behind (the pending's own state carries the effect).
                _ => {}
            }
            ledger.transfers.insert(t.transfer.id, *t);
            ledger.ordered.insert(t.transfer.id);
        }
        for h in holds {
            if h.account.0 >= n {
                return Err(RestoreError::DanglingAccount { what: "hold", id: h.id, idx: h.account.0 });
            }
            ledger.balances[h.account.0 as usize].held += u128::from(h.amount);
            ledger.holds.insert(h.id, h);
        }
        for (i, s) in stored.iter().enumerate() {
            if *s != ledger.balances[i] {
                let meta = &ledger.metas[i];
                return Err(RestoreError::BalanceMismatch {
                    owner: meta.owner.clone(),
                    asset: ledger.assets[meta.asset.0 as usize].name.clone(),
                    stored: Box::new(*s),
                    rebuilt: Box::new(ledger.balances[i]),
                });
            }
        }
        ledger.cursor = cursor;
        ledger.verify()?;
        Ok(ledger)
    }

    /// The configured assets.
    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }

    /// Id of an asset by name.
    pub fn asset_id(&self, name: &str) -> Option<AssetId> {
        self.asset_by_name.get(name).copied()
    }

    /// The asset of an id.
    pub fn asset(&self, id: AssetId) -> &Asset {
        &self.assets[id.0 as usize]
    }

    /// The account of (owner, asset), if opened.
    pub fn account(&self, owner: &str, asset: AssetId) -> Option<AccountIdx> {
        self.by_owner.get(asset.0 as usize)?.get(owner).copied()
    }

    /// Number of accounts.
    pub fn account_count(&self) -> u32 {
        self.metas.len() as u32
    }

    /// Owner, asset and kind of an account.
    pub fn account_info(&self, idx: AccountIdx) -> Option<(&str, AssetId, AccountKind)> {
        self.metas.get(idx.0 as usize).map(|m| (m.owner.as_str(), m.asset, m.kind))
    }

    /// Counters of an account.
    pub fn balances(&self, idx: AccountIdx) -> Option<Balances> {
        self.balances.get(idx.0 as usize).copied()
    }

    /// A stored transfer.
    pub fn transfer(&self, id: TransferId) -> Option<&StoredTransfer> {
        self.transfers.get(&id)
    }

    /// Number of stored transfers.
    pub fn transfer_count(&self) -> usize {
        self.transfers.len()
    }

    /// Iterates over stored transfers (any order).
    pub fn transfers(&self) -> impl Iterator<Item = &StoredTransfer> {
        self.transfers.values()
    }

    /// Stored transfers in id order, starting after `after` (from the first when `None`).
    pub fn transfers_after(&self, after: Option<TransferId>) -> impl Iterator<Item = &StoredTransfer> {
        let start = match after {
            Some(id) => std::ops::Bound::Excluded(id),
            None => std::ops::Bound::Unbounded,
        };
        self.ordered.range((start, std::ops::Bound::Unbounded)).filter_map(|id| self.transfers.get(id))
    }

    /// An open hold.
    pub fn hold(&self, id: HoldId) -> Option<Hold> {
        self.holds.get(&id).copied()
    }

    /// The last engine event seq applied (as stored with the postings).
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Opens the account of (owner, asset), or returns it when it exists with that kind.
    pub fn open_account(
        &mut self,
        owner: &str,
        asset: &str,
        kind: AccountKind,
    ) -> Result<AccountIdx, AccountError> {
        let asset_id = self.asset_id(asset).ok_or_else(|| AccountError::UnknownAsset(asset.to_string()))?;
        if owner.is_empty() {
            return Err(AccountError::EmptyOwner);
        }
        if let Some(idx) = self.account(owner, asset_id) {
            let existing = self.metas[idx.0 as usize].kind;
            if existing != kind {
                return Err(AccountError::KindMismatch {
                    owner: owner.to_string(),
                    asset: asset.to_string(),
                    existing: existing.as_str(),
                });
            }
            return Ok(idx);
        }
        if self.metas.len() as u32 >= self.limits.accounts_max {
            return Err(AccountError::Full(self.limits.accounts_max));
        }
        let idx = AccountIdx(self.metas.len() as u32);
        self.metas.push(AccountMeta { owner: owner.to_string(), asset: asset_id, kind });
        self.balances.push(Balances::default());
        self.dirty.push(false);
        self.by_owner[asset_id.0 as usize].insert(owner.to_string(), idx);
        self.touch(idx.0);
        Ok(idx)
    }

    /// Applies a batch of transfers in order at time `now_ns`. A linked chain (transfers with
    /// `linked` set, closed by the first one without) commits or fails as a whole. One result
    /// per transfer; the changes wait in the next [`Ledger::take_commit`].
    pub fn create_transfers(
        &mut self,
        batch: &[Transfer],
        now_ns: u64,
    ) -> Result<Vec<Result<Created, TransferError>>, TransferError> {
        if batch.len() > self.limits.batch_transfers_max as usize {
            return Err(TransferError::BatchTooLong {
                len: batch.len(),
                max: self.limits.batch_transfers_max,
            });
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut start = 0;
        while start < batch.len() {
            let mut end = start;
            while batch[end].linked && end + 1 < batch.len() {
                end += 1;
            }
            self.undo.clear();
            let marks = (self.commit.transfers.len(), self.commit.pending_states.len());
            let mut failed = None;
            if batch[end].linked {
                failed = Some((end, TransferError::LinkedChainOpen));
            } else {
                for (i, t) in batch.iter().enumerate().take(end + 1).skip(start) {
                    match self.apply(t, now_ns) {
                        Ok(c) => results.push(Ok(c)),
                        Err(e) => {
                            failed = Some((i, e));
                            break;
                        }
                    }
                }
            }
            if let Some((at, error)) = failed {
                self.rollback(marks);
                results.truncate(start);
                for i in start..=end {
                    results.push(Err(if i == at { error.clone() } else { TransferError::LinkedEventFailed }));
                }
            }
            start = end + 1;
        }
        self.undo.clear();
        Ok(results)
    }

    /// Voids every pending transfer whose timeout has passed at `now_ns`; returns how many.
    pub fn expire_pending(&mut self, now_ns: u64) -> usize {
        let mut expired = 0;
        while let Some(Reverse((at, id))) = self.expiries.peek().copied() {
            if at > now_ns {
                break;
            }
            self.expiries.pop();
            let Some(stored) = self.transfers.get(&id).copied() else { continue };
            if stored.state != Some(PendingState::Pending) {
                continue;
            }
            let t = stored.transfer;
            let amount = u128::from(t.amount);
            self.touch(t.debit.0);
            self.touch(t.credit.0);
            self.balances[t.debit.0 as usize].debits_pending -= amount;
            self.balances[t.credit.0 as usize].credits_pending -= amount;
            self.set_state(id, PendingState::Expired);
            expired += 1;
        }
        expired
    }

    /// Reserves `amount` of an account's available funds under a client-minted id. Placing
    /// an open hold again with the same body changes nothing.
    pub fn place_hold(&mut self, hold: Hold) -> Result<Created, HoldError> {
        if hold.id == 0 {
            return Err(HoldError::IdZero);
        }
        if hold.amount == 0 {
            return Err(HoldError::AmountZero);
        }
        if hold.account.0 as usize >= self.metas.len() {
            return Err(HoldError::UnknownAccount);
        }
        if let Some(existing) = self.holds.get(&hold.id) {
            if existing.account != hold.account {
                return Err(HoldError::IdReused { field: "account" });
            }
            if existing.amount != hold.amount {
                return Err(HoldError::IdReused { field: "amount" });
            }
            if existing.user_data_64 != hold.user_data_64 {
                return Err(HoldError::IdReused { field: "user_data_64" });
            }
            return Ok(Created::AlreadyExists);
        }
        if self.holds.len() as u32 >= self.limits.holds_max {
            return Err(HoldError::Full(self.limits.holds_max));
        }
        let i = hold.account.0 as usize;
        if self.metas[i].kind == AccountKind::User {
            let available = self.balances[i].available();
            if available < i128::from(hold.amount) {
                return Err(HoldError::Overdraft { available, amount: hold.amount });
            }
        }
        self.touch(hold.account.0);
        self.balances[i].held += u128::from(hold.amount);
        self.holds.insert(hold.id, hold);
        self.commit.holds_released.retain(|id| *id != hold.id);
        self.commit.holds_placed.push(hold);
        Ok(Created::New)
    }

    /// Releases `amount` of a hold (all of it when `None`, or when `amount` is all that is
    /// left); returns what is still held.
    pub fn release_hold(&mut self, id: HoldId, amount: Option<u64>) -> Result<u64, HoldError> {
        let Some(hold) = self.holds.get(&id).copied() else { return Err(HoldError::NotFound) };
        let release = amount.unwrap_or(hold.amount);
        if release == 0 {
            return Err(HoldError::AmountZero);
        }
        if release > hold.amount {
            return Err(HoldError::ReleaseTooLarge { held: hold.amount, amount: release });
        }
        self.touch(hold.account.0);
        self.balances[hold.account.0 as usize].held -= u128::from(release);
        let left = hold.amount - release;
        self.commit.holds_placed.retain(|h| h.id != id);
        if left == 0 {
            self.holds.remove(&id);
            self.commit.holds_released.push(id);
        } else {
            let kept = Hold { amount: left, ..hold };
            self.holds.insert(id, kept);
            self.commit.holds_placed.push(kept);
        }
        Ok(left)
    }

    /// Records an input that could not be booked, to store with this commit.
    pub fn record_rejection(&mut self, rejection: Rejection) {
        self.commit.rejections.push(rejection);
    }

    /// Records the follower cursor to store with this commit's postings.
    pub fn set_cursor(&mut self, seq: u64) {
        self.cursor = seq;
        self.commit.cursor = Some(seq);
    }

    /// Takes the changes since the last call, after asserting that, per asset, the changed
    /// accounts' posted and pending movements sum to zero (the untouched accounts did not
    /// move, so the whole asset still sums to zero).
    pub fn take_commit(&mut self) -> Commit {
        let mut posted = vec![0i128; self.assets.len()];
        let mut pending = vec![0i128; self.assets.len()];
        let mut commit = std::mem::take(&mut self.commit);
        for (i, before) in self.before.drain(..) {
            let after = self.balances[i as usize];
            let meta = &self.metas[i as usize];
            posted[meta.asset.0 as usize] += after.posted() - before.posted();
            pending[meta.asset.0 as usize] += after.pending() - before.pending();
            assert!(
                meta.kind == AccountKind::System || after.available() >= 0,
                "user account {}/{} overdrawn: {after:?}",
                meta.owner,
                self.assets[meta.asset.0 as usize].name
            );
            self.dirty[i as usize] = false;
            commit.accounts.push(AccountRecord {
                idx: AccountIdx(i),
                owner: meta.owner.clone(),
                asset: self.assets[meta.asset.0 as usize].name.clone(),
                kind: meta.kind,
                balances: after,
            });
        }
        for (a, asset) in self.assets.iter().enumerate() {
            assert_eq!(posted[a], 0, "posted movements of {} do not sum to zero", asset.name);
            assert_eq!(pending[a], 0, "pending movements of {} do not sum to zero", asset.name);
        }
        commit
    }

    /// Checks the whole ledger: per asset, posted and pending balances sum to zero, and no
    /// user account is overdrawn. O(accounts); the per-commit check is O(changed accounts).
    pub fn verify(&self) -> Result<(), InvariantError> {
        let mut posted = vec![0i128; self.assets.len()];
        let mut pending = vec![0i128; self.assets.len()];
        for (meta, b) in self.metas.iter().zip(&self.balances) {
            posted[meta.asset.0 as usize] += b.posted();
            pending[meta.asset.0 as usize] += b.pending();
            if meta.kind == AccountKind::User && b.available() < 0 {
                return Err(InvariantError::Overdrawn {
                    owner: meta.owner.clone(),
                    asset: self.assets[meta.asset.0 as usize].name.clone(),
                    available: b.available(),
                });
            }
        }
        for (a, asset) in self.assets.iter().enumerate() {
            if posted[a] != 0 {
                return Err(InvariantError::PostedSum { asset: asset.name.clone(), sum: posted[a] });
            }
            if pending[a] != 0 {
                return Err(InvariantError::PendingSum { asset: asset.name.clone(), sum: pending[a] });
            }
        }
        Ok(())
    }

    fn touch(&mut self, i: u32) {
        if !self.dirty[i as usize] {
            self.dirty[i as usize] = true;
            self.before.push((i, self.balances[i as usize]));
        }
    }

    /// Changes counters of account `i`, keeping an undo step for the chain.
    fn change(&mut self, i: u32, f: impl FnOnce(&mut Balances) -> Option<()>) -> Result<(), TransferError> {
        let old = self.balances[i as usize];
        let mut new = old;
        f(&mut new).ok_or(TransferError::Overflow)?;
        self.touch(i);
        self.undo.push(Undo::Balances(i, old));
        self.balances[i as usize] = new;
        Ok(())
    }

    fn set_state(&mut self, id: TransferId, state: PendingState) {
        if let Some(t) = self.transfers.get_mut(&id) {
            if let Some(old) = t.state.replace(state) {
                self.undo.push(Undo::PendingState(id, old));
            }
        }
        self.commit.pending_states.push((id, state));
    }

    fn rollback(&mut self, (transfers, states): (usize, usize)) {
        while let Some(step) = self.undo.pop() {
            match step {
                Undo::Balances(i, b) => self.balances[i as usize] = b,
                Undo::TransferInserted(id) => {
                    self.transfers.remove(&id);
                    self.ordered.remove(&id);
                }
                Undo::PendingState(id, s) => {
                    if let Some(t) = self.transfers.get_mut(&id) {
                        t.state = Some(s);
                    }
                }
            }
        }
        self.commit.transfers.truncate(transfers);
        self.commit.pending_states.truncate(states);
    }

    fn apply(&mut self, t: &Transfer, now_ns: u64) -> Result<Created, TransferError> {
        if t.id == 0 {
            return Err(TransferError::IdZero);
        }
        if let Some(existing) = self.transfers.get(&t.id) {
            return match first_difference(&existing.transfer, t) {
                None => Ok(Created::AlreadyExists),
                Some(field) => Err(TransferError::IdReused { field }),
            };
        }
        if t.amount == 0 {
            return Err(TransferError::AmountZero);
        }
        let n = self.metas.len() as u32;
        if t.debit.0 >= n {
            return Err(TransferError::UnknownAccount { field: "debit" });
        }
        if t.credit.0 >= n {
            return Err(TransferError::UnknownAccount { field: "credit" });
        }
        if t.debit == t.credit {
            return Err(TransferError::SameAccount);
        }
        if self.metas[t.debit.0 as usize].asset != self.metas[t.credit.0 as usize].asset {
            return Err(TransferError::AssetMismatch);
        }
        if self.transfers.len() as u64 >= self.limits.transfers_max {
            return Err(TransferError::Full(self.limits.transfers_max));
        }
        let amount = u128::from(t.amount);
        let mut state = None;
        match t.kind {
            TransferKind::Posted | TransferKind::Pending { .. } => {
                let d = t.debit.0 as usize;
                if self.metas[d].kind == AccountKind::User {
                    let available = self.balances[d].available();
                    if available < i128::from(t.amount) {
                        return Err(TransferError::Overdraft { available, amount: t.amount });
                    }
                }
                if let TransferKind::Pending { timeout_ns } = t.kind {
                    self.change(t.debit.0, |b| add(&mut b.debits_pending, amount))?;
                    self.change(t.credit.0, |b| add(&mut b.credits_pending, amount))?;
                    state = Some(PendingState::Pending);
                    if timeout_ns > 0 {
                        self.expiries.push(Reverse((now_ns.saturating_add(timeout_ns), t.id)));
                    }
                } else {
                    self.change(t.debit.0, |b| add(&mut b.debits_posted, amount))?;
                    self.change(t.credit.0, |b| add(&mut b.credits_posted, amount))?;
                }
            }
            TransferKind::PostPending { pending_id } | TransferKind::VoidPending { pending_id } => {
                let pending = self.transfers.get(&pending_id).ok_or(TransferError::PendingNotFound)?;
                let TransferKind::Pending { timeout_ns } = pending.transfer.kind else {
                    return Err(TransferError::PendingNotFound);
                };
                match pending.state {
                    Some(PendingState::Pending) => {}
                    Some(other) => return Err(TransferError::PendingNotPending(other.as_str())),
                    None => return Err(TransferError::PendingNotFound),
                }
                let p = pending.transfer;
                let post = matches!(t.kind, TransferKind::PostPending { .. });
                if post && timeout_ns > 0 && now_ns >= pending.ts_ns.saturating_add(timeout_ns) {
                    return Err(TransferError::PendingExpired);
                }
                if p.debit != t.debit {
                    return Err(TransferError::PendingMismatch { field: "debit" });
                }
                if p.credit != t.credit {
                    return Err(TransferError::PendingMismatch { field: "credit" });
                }
                if p.amount != t.amount {
                    return Err(TransferError::PendingMismatch { field: "amount" });
                }
                self.change(t.debit.0, |b| {
                    b.debits_pending = b.debits_pending.checked_sub(amount)?;
                    if post {
                        b.debits_posted = b.debits_posted.checked_add(amount)?;
                    }
                    Some(())
                })?;
                self.change(t.credit.0, |b| {
                    b.credits_pending = b.credits_pending.checked_sub(amount)?;
                    if post {
                        b.credits_posted = b.credits_posted.checked_add(amount)?;
                    }
                    Some(())
                })?;
                self.set_state(pending_id, if post { PendingState::Posted } else { PendingState::Voided });
            }
        }
        let stored = StoredTransfer { transfer: *t, ts_ns: now_ns, state };
        self.transfers.insert(t.id, stored);
        self.ordered.insert(t.id);
        self.undo.push(Undo::TransferInserted(t.id));
        self.commit.transfers.push(stored);
        Ok(Created::New)
    }
}

/// What a store loads to rebuild a [`Ledger`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every account.
    pub accounts: Vec<AccountRecord>,
    /// Every transfer, pending ones with their current state.
    pub transfers: Vec<StoredTransfer>,
    /// Open holds.
    pub holds: Vec<Hold>,
    /// Inputs that could not be booked.
    pub rejections: Vec<Rejection>,
    /// Last applied engine event seq (0 before the first).
    pub cursor: u64,
}

/// Adds to a counter, `None` on overflow.
fn add(counter: &mut u128, amount: u128) -> Option<()> {
    *counter = counter.checked_add(amount)?;
    Some(())
}

/// The first field in which two transfer bodies differ.
fn first_difference(a: &Transfer, b: &Transfer) -> Option<&'static str> {
    if a.debit != b.debit {
        Some("debit")
    } else if a.credit != b.credit {
        Some("credit")
    } else if a.amount != b.amount {
        Some("amount")
    } else if a.kind != b.kind {
        Some("kind")
    } else if a.linked != b.linked {
        Some("linked")
    } else if a.code != b.code {
        Some("code")
    } else if a.user_data_64 != b.user_data_64 {
        Some("user_data_64")
    } else if a.user_data_32 != b.user_data_32 {
        Some("user_data_32")
    } else {
        None
    }
}

impl Transfer {
    /// A single-phase transfer with no link, code 0 and no user data.
    pub fn posted(id: TransferId, debit: AccountIdx, credit: AccountIdx, amount: u64) -> Transfer {
        Transfer {
            id,
            debit,
            credit,
            amount,
            kind: TransferKind::Posted,
            linked: false,
            code: 0,
            user_data_64: 0,
            user_data_32: 0,
        }
    }

    /// The post (phase two) of `pending`, under a new id.
    pub fn post_of(id: TransferId, pending: &Transfer) -> Transfer {
        Transfer { id, kind: TransferKind::PostPending { pending_id: pending.id }, linked: false, ..*pending }
    }

    /// The void of `pending`, under a new id.
    pub fn void_of(id: TransferId, pending: &Transfer) -> Transfer {
        Transfer { id, kind: TransferKind::VoidPending { pending_id: pending.id }, linked: false, ..*pending }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Vec<Asset> {
        vec![Asset { name: "USD".into(), scale: 2 }, Asset { name: "BTC".into(), scale: 8 }]
    }

    /// A ledger with `bank` (system) and users `a`, `b`, with `a` funded with 1000.
    fn funded() -> (Ledger, AccountIdx, AccountIdx, AccountIdx) {
        let mut l = Ledger::new(usd(), LedgerLimits::default());
        let bank = l.open_account("bank", "USD", AccountKind::System).unwrap();
        let a = l.open_account("a", "USD", AccountKind::User).unwrap();
        let b = l.open_account("b", "USD", AccountKind::User).unwrap();
        let r = l.create_transfers(&[Transfer::posted(1, bank, a, 1000)], 0).unwrap();
        assert_eq!(r, vec![Ok(Created::New)]);
        l.take_commit();
        (l, bank, a, b)
    }

    #[test]
    fn a_transfer_moves_posted_balances_and_sums_to_zero() {
        let (mut l, bank, a, b) = funded();
        l.create_transfers(&[Transfer::posted(2, a, b, 300)], 5).unwrap();
        let c = l.take_commit();
        assert_eq!(c.transfers.len(), 1);
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(l.balances(a).unwrap().posted(), 700);
        assert_eq!(l.balances(b).unwrap().posted(), 300);
        assert_eq!(l.balances(bank).unwrap().posted(), -1000);
        l.verify().unwrap();
    }

    #[test]
    fn overdraft_of_a_user_account_is_refused_and_nothing_changes() {
        let (mut l, _, a, b) = funded();
        let r = l.create_transfers(&[Transfer::posted(2, a, b, 1001)], 0).unwrap();
        assert_eq!(r, vec![Err(TransferError::Overdraft { available: 1000, amount: 1001 })]);
        assert!(l.take_commit().is_empty());
        assert_eq!(l.balances(a).unwrap().posted(), 1000);
    }

    #[test]
    fn same_id_same_body_is_the_stored_result_other_body_names_the_field() {
        let (mut l, _, a, b) = funded();
        let t = Transfer::posted(2, a, b, 10);
        assert_eq!(l.create_transfers(&[t], 0).unwrap(), vec![Ok(Created::New)]);
        assert_eq!(l.create_transfers(&[t], 1).unwrap(), vec![Ok(Created::AlreadyExists)]);
        assert_eq!(l.balances(b).unwrap().posted(), 10, "a retry books nothing");
        let other = Transfer { amount: 11, ..t };
        assert_eq!(
            l.create_transfers(&[other], 2).unwrap(),
            vec![Err(TransferError::IdReused { field: "amount" })]
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let (mut l, _, a, b) = funded();
        let btc = l.open_account("a", "BTC", AccountKind::User).unwrap();
        let cases = [
            (Transfer::posted(0, a, b, 1), TransferError::IdZero),
            (Transfer::posted(9, a, b, 0), TransferError::AmountZero),
            (Transfer::posted(9, a, a, 1), TransferError::SameAccount),
            (Transfer::posted(9, AccountIdx(99), b, 1), TransferError::UnknownAccount { field: "debit" }),
            (Transfer::posted(9, a, AccountIdx(99), 1), TransferError::UnknownAccount { field: "credit" }),
            (Transfer::posted(9, a, btc, 1), TransferError::AssetMismatch),
        ];
        for (t, e) in cases {
            assert_eq!(l.create_transfers(&[t], 0).unwrap(), vec![Err(e)]);
        }
        assert!(TransferError::UnknownAccount { field: "debit" }.to_string().starts_with("debit:"));
    }

    #[test]
    fn a_linked_chain_fails_as_a_whole() {
        let (mut l, _, a, b) = funded();
        let first = Transfer { linked: true, ..Transfer::posted(2, a, b, 600) };
        let second = Transfer::posted(3, a, b, 600);
        let r = l.create_transfers(&[first, second, Transfer::posted(4, a, b, 1)], 0).unwrap();
        assert_eq!(r[0], Err(TransferError::LinkedEventFailed));
        assert_eq!(r[1], Err(TransferError::Overdraft { available: 400, amount: 600 }));
        assert_eq!(r[2], Ok(Created::New), "the next chain is independent");
        assert!(l.transfer(2).is_none(), "the first of the failed chain is not kept");
        let ids: Vec<_> = l.transfers_after(None).map(|t| t.transfer.id).collect();
        assert_eq!(ids, vec![1, 4], "nor listed");
        assert_eq!(l.transfers_after(Some(1)).map(|t| t.transfer.id).collect::<Vec<_>>(), vec![4]);
        let c = l.take_commit();
        assert_eq!(c.transfers.len(), 1);
        assert_eq!(l.balances(a).unwrap().posted(), 999);
    }

    #[test]
    fn a_batch_ending_inside_a_chain_is_refused() {
        let (mut l, _, a, b) = funded();
        let open = Transfer { linked: true, ..Transfer::posted(2, a, b, 1) };
        assert_eq!(l.create_transfers(&[open], 0).unwrap(), vec![Err(TransferError::LinkedChainOpen)]);
        assert!(l.take_commit().is_empty());
    }

    #[test]
    fn pending_reserves_then_posts_or_voids() {
        let (mut l, _, a, b) = funded();
        let p = Transfer { kind: TransferKind::Pending { timeout_ns: 0 }, ..Transfer::posted(2, a, b, 400) };
        l.create_transfers(&[p], 0).unwrap();
        let ba = l.balances(a).unwrap();
        assert_eq!((ba.posted(), ba.available(), ba.debits_pending), (1000, 600, 400));
        assert_eq!(l.balances(b).unwrap().available(), 0, "pending credits are not spendable");
        assert_eq!(
            l.create_transfers(&[Transfer::posted(3, a, b, 601)], 0).unwrap()[0].clone().unwrap_err(),
            TransferError::Overdraft { available: 600, amount: 601 }
        );
        l.create_transfers(&[Transfer::post_of(4, &p)], 1).unwrap();
        assert_eq!(l.balances(b).unwrap().posted(), 400);
        assert_eq!(l.transfer(2).unwrap().state, Some(PendingState::Posted));
        let again = l.create_transfers(&[Transfer::void_of(5, &p)], 2).unwrap();
        assert_eq!(again, vec![Err(TransferError::PendingNotPending("posted"))]);
        let c = l.take_commit();
        assert_eq!(c.pending_states, vec![(2, PendingState::Posted)]);
        l.verify().unwrap();
    }

    #[test]
    fn a_void_returns_the_reservation_and_a_mismatch_names_the_field() {
        let (mut l, _, a, b) = funded();
        let p = Transfer { kind: TransferKind::Pending { timeout_ns: 0 }, ..Transfer::posted(2, a, b, 400) };
        l.create_transfers(&[p], 0).unwrap();
        let wrong = Transfer { amount: 1, ..Transfer::void_of(3, &p) };
        assert_eq!(
            l.create_transfers(&[wrong], 0).unwrap(),
            vec![Err(TransferError::PendingMismatch { field: "amount" })]
        );
        l.create_transfers(&[Transfer::void_of(3, &p)], 0).unwrap();
        assert_eq!(l.balances(a).unwrap().available(), 1000);
        assert_eq!(l.balances(b).unwrap().pending(), 0);
        let missing = Transfer { kind: TransferKind::PostPending { pending_id: 77 }, ..p };
        assert_eq!(
            l.create_transfers(&[Transfer { id: 9, ..missing }], 0).unwrap(),
            vec![Err(TransferError::PendingNotFound)]
        );
    }

    #[test]
    fn a_pending_transfer_expires_at_its_timeout() {
        let (mut l, _, a, b) = funded();
        let p =
            Transfer { kind: TransferKind::Pending { timeout_ns: 100 }, ..Transfer::posted(2, a, b, 400) };
        l.create_transfers(&[p], 1_000).unwrap();
        assert_eq!(l.expire_pending(1_099), 0);
        assert_eq!(
            l.create_transfers(&[Transfer::post_of(3, &p)], 1_100).unwrap(),
            vec![Err(TransferError::PendingExpired)]
        );
        assert_eq!(l.expire_pending(1_100), 1);
        assert_eq!(l.transfer(2).unwrap().state, Some(PendingState::Expired));
        assert_eq!(l.balances(a).unwrap().available(), 1000);
        l.take_commit();
        l.verify().unwrap();
    }

    #[test]
    fn holds_lower_available_and_block_overdraft() {
        let (mut l, _, a, b) = funded();
        l.place_hold(Hold { id: 7, account: a, amount: 900, user_data_64: 0 }).unwrap();
        assert_eq!(l.balances(a).unwrap().available(), 100);
        assert_eq!(
            l.create_transfers(&[Transfer::posted(2, a, b, 101)], 0).unwrap()[0],
            Err(TransferError::Overdraft { available: 100, amount: 101 })
        );
        assert_eq!(
            l.place_hold(Hold { id: 8, account: a, amount: 101, user_data_64: 0 }),
            Err(HoldError::Overdraft { available: 100, amount: 101 })
        );
        assert_eq!(
            l.place_hold(Hold { id: 7, account: a, amount: 900, user_data_64: 0 }),
            Ok(Created::AlreadyExists)
        );
        assert_eq!(
            l.place_hold(Hold { id: 7, account: a, amount: 1, user_data_64: 0 }),
            Err(HoldError::IdReused { field: "amount" })
        );
        assert_eq!(l.release_hold(7, Some(400)), Ok(500));
        assert_eq!(l.balances(a).unwrap().available(), 500);
        assert_eq!(l.release_hold(7, Some(501)), Err(HoldError::ReleaseTooLarge { held: 500, amount: 501 }));
        assert_eq!(l.release_hold(7, None), Ok(0));
        assert_eq!(l.release_hold(7, None), Err(HoldError::NotFound));
        let c = l.take_commit();
        assert_eq!(c.holds_released, vec![7]);
        assert!(c.holds_placed.is_empty());
    }

    #[test]
    fn restore_rebuilds_counters_and_refuses_a_mismatch() {
        let (mut l, _, a, b) = funded();
        let p = Transfer { kind: TransferKind::Pending { timeout_ns: 0 }, ..Transfer::posted(2, a, b, 100) };
        l.create_transfers(&[p], 0).unwrap();
        l.place_hold(Hold { id: 1, account: a, amount: 50, user_data_64: 0 }).unwrap();
        l.set_cursor(42);
        l.take_commit();
        let snapshot = snapshot_of(&l);
        let back = Ledger::restore(usd(), LedgerLimits::default(), snapshot.clone()).unwrap();
        assert_eq!(back.balances(a), l.balances(a));
        assert_eq!(back.cursor(), 42);
        let mut bad = snapshot;
        bad.accounts[1].balances.credits_posted += 1;
        assert!(matches!(
            Ledger::restore(usd(), LedgerLimits::default(), bad),
            Err(RestoreError::BalanceMismatch { .. })
        ));
    }

    #[test]
    fn bounds_are_rejects() {
        let limits = LedgerLimits { accounts_max: 2, transfers_max: 1, holds_max: 0, batch_transfers_max: 2 };
        let mut l = Ledger::new(usd(), limits);
        let x = l.open_account("x", "USD", AccountKind::System).unwrap();
        let y = l.open_account("y", "USD", AccountKind::System).unwrap();
        assert_eq!(l.open_account("z", "USD", AccountKind::System), Err(AccountError::Full(2)));
        let t = |id| Transfer::posted(id, x, y, 1);
        assert_eq!(l.create_transfers(&[t(1), t(2)], 0).unwrap()[1], Err(TransferError::Full(1)));
        assert!(matches!(
            l.create_transfers(&[t(3), t(4), t(5)], 0),
            Err(TransferError::BatchTooLong { .. })
        ));
        assert_eq!(
            l.place_hold(Hold { id: 1, account: x, amount: 1, user_data_64: 0 }),
            Err(HoldError::Full(0))
        );
    }

    pub(crate) fn snapshot_of(l: &Ledger) -> Snapshot {
        Snapshot {
            accounts: (0..l.account_count())
                .map(|i| {
                    let (owner, asset, kind) = l.account_info(AccountIdx(i)).unwrap();
                    AccountRecord {
                        idx: AccountIdx(i),
                        owner: owner.into(),
                        asset: l.asset(asset).name.clone(),
                        kind,
                        balances: l.balances(AccountIdx(i)).unwrap(),
                    }
                })
                .collect(),
            transfers: l.transfers().copied().collect(),
            holds: l.holds.values().copied().collect(),
            rejections: Vec::new(),
            cursor: l.cursor(),
        }
    }
}
