//! The sans-IO payments core: validation, fees, fraud, the breaker-guarded rails call, the
//! ledger postings and the status machine. Time enters as `now_ns`; the ledger is the
//! settlement's [`Settlement`], whose store commits each posting batch in one transaction.
//!
//! Postings (all ids derived from the payment id, so a retry after a crash is answered by
//! the ledger as already stored, never booked twice):
//! - deposit, on success: external → account `amount − fee`, external → fee account `fee`
//!   (linked: both or neither);
//! - withdrawal: before the rails call, a pending (two-phase) pair account → external
//!   `amount − fee` and account → fee account `fee` reserves the funds; success posts the
//!   pair, failure voids it;
//! - refund of a deposit: account → external and fee account → external in proportion, so a
//!   full refund undoes the deposit exactly.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use settlement::{
    AccountIdx, Created, PaymentError, PendingState, RecordTable, RecordWrite, Settlement, Store, StoreError,
    Transfer, TransferError, TransferKind,
};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::breaker::{Breaker, BreakerView};
use crate::config::{ConfigError, PaymentsConfig};
use crate::connector::{Connector, PaymentKind, RailCall, RailError, RailOutcome, RailStatus};
use crate::fraud::{Fraud, FraudDecision};
use crate::webhook::{Delivery, DeliveryState, StoredDelivery};

/// Tag of payment transfer ids (below the settlement's `CLIENT_ID_MAX`, above any id a
/// client of the settlement mints by hand in practice).
pub const PAYMENT_ID_TAG: u128 = 1 << 112;
/// Refunds one payment may have.
pub const REFUNDS_PER_PAYMENT_MAX: usize = 200;

/// Ledger codes of payment postings.
pub mod codes {
    /// Deposit, net of fee.
    pub const DEPOSIT: u16 = 20;
    /// Withdrawal, net of fee.
    pub const WITHDRAWAL: u16 = 21;
    /// Payment fee.
    pub const FEE: u16 = 22;
    /// Refund.
    pub const REFUND: u16 = 23;
}

const LEG_MAIN: u128 = 0;
const LEG_FEE: u128 = 1;
const LEG_POST: u128 = 2;
const LEG_VOID: u128 = 4;
const LEG_REFUND: u128 = 16;

fn transfer_id(payment: u64, leg: u128) -> u128 {
    PAYMENT_ID_TAG | (u128::from(payment) << 16) | leg
}

/// Where a payment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Accepted, not yet sent to the rails.
    Pending,
    /// Sent to the rails.
    Processing,
    /// Money moved.
    Succeeded,
    /// Declined (fraud, rails, breaker, timeout).
    Failed,
    /// Part of it refunded.
    PartiallyRefunded,
    /// All of it refunded.
    Refunded,
}

impl Status {
    /// Every status, in [`Status::index`] order.
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Processing,
        Status::Succeeded,
        Status::Failed,
        Status::PartiallyRefunded,
        Status::Refunded,
    ];

    /// Its place in [`Status::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name as shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::PartiallyRefunded => "partially_refunded",
            Status::Refunded => "refunded",
        }
    }
}

/// One refund.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// 1, 2, ... within the payment.
    pub number: u32,
    /// Minor units.
    pub amount_minor: u64,
    /// Of which returned from the fee account.
    pub fee_minor: u64,
    /// When.
    pub ts_ns: u64,
}

/// A payment record (stored as JSON in the ledger's store, table [`RecordTable::Payments`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Id, from 1.
    pub id: u64,
    /// Deposit or withdrawal.
    pub kind: PaymentKind,
    /// Venue account.
    pub account: String,
    /// Asset name.
    pub asset: String,
    /// Asset decimals (for display).
    pub scale: u32,
    /// Method.
    pub method: String,
    /// Gross amount, minor units.
    pub amount_minor: u64,
    /// Fee, minor units.
    pub fee_minor: u64,
    /// Status.
    pub status: Status,
    /// Every status it passed through, with its time.
    pub history: Vec<(Status, u64)>,
    /// Refunded so far, minor units.
    pub refunded_minor: u64,
    /// Fee returned by refunds so far.
    pub fee_refunded_minor: u64,
    /// Refunds.
    pub refunds: Vec<Refund>,
    /// The fraud decision.
    pub fraud: FraudDecision,
    /// Why it failed.
    pub failure: Option<String>,
    /// The rails' reference.
    pub rail_reference: Option<String>,
}

impl Payment {
    fn set(&mut self, status: Status, now_ns: u64) {
        self.status = status;
        self.history.push((status, now_ns));
    }

    /// The store key of payment `id`: zero-padded, so key order is id order.
    pub fn record_key(id: u64) -> String {
        format!("{id:020}")
    }

    /// This payment as a record write.
    pub fn record(&self) -> RecordWrite {
        RecordWrite {
            table: RecordTable::Payments,
            key: Payment::record_key(self.id),
            value: Some(serde_json::to_vec(self).expect("a payment serializes")),
        }
    }
}

/// A payment as JSON, amounts as decimal text in the asset's decimals (the API's answer and
/// the `payment` of a webhook event).
pub fn view(p: &Payment) -> Value {
    let amount = |m: u64| settlement::format_amount(i128::from(m), p.scale);
    json!({
        "id": p.id,
        "kind": p.kind,
        "account": p.account,
        "asset": p.asset,
        "method": p.method,
        "amount": amount(p.amount_minor),
        "fee": amount(p.fee_minor),
        "status": p.status,
        "refunded": amount(p.refunded_minor),
        "refunds": p.refunds.iter().map(|r| json!({
            "number": r.number, "amount": amount(r.amount_minor), "fee": amount(r.fee_minor), "ts_ns": r.ts_ns,
        })).collect::<Vec<_>>(),
        "history": p.history.iter().map(|(s, ts)| json!({ "status": s, "ts_ns": ts })).collect::<Vec<_>>(),
        "fraud": p.fraud,
        "failure": p.failure,
        "rail_reference": p.rail_reference,
    })
}

/// The webhook event of `p`'s current (final) status.
pub fn event_body(p: &Payment) -> String {
    json!({ "type": format!("payment.{}", p.status.as_str()), "payment": view(p) }).to_string()
}

/// Records the caller commits with a payment's change, built from the payment after it (the
/// API's idempotency entry): durable exactly when the change is.
pub type Extra<'a> = &'a dyn Fn(&Payment) -> Vec<RecordWrite>;

fn no_extra(_: &Payment) -> Vec<RecordWrite> {
    Vec::new()
}

/// Why stored payment records could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The store failed.
    #[error("payments: store: {0}")]
    Store(#[from] StoreError),
    /// A record that does not parse, or ids that are not contiguous.
    #[error("payments: stored record {key}: {detail}")]
    Corrupt {
        /// Its key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// Voiding an interrupted withdrawal failed.
    #[error("payments: recovering payment {id}: {detail}")]
    Recover {
        /// The payment.
        id: u64,
        /// What failed.
        detail: String,
    },
}

/// Why the core could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The stored records.
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
}

/// A final status to announce by webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalEvent {
    /// The payment after the change.
    pub payment: Payment,
    /// Its webhook deliveries, one per endpoint, committed with the change.
    pub deliveries: Vec<StoredDelivery>,
    /// The staged step it was booked in (0: committed at once); see [`Payments::defer_commits`].
    pub step: u64,
}

/// A payment between [`Payments::begin`] and [`Payments::complete`]: its record and the
/// ledger legs each answer of the rails leads to (ids fixed in advance).
#[derive(Clone, Debug)]
pub struct InFlight {
    payment: Payment,
    on_success: Vec<Transfer>,
    on_failure: Vec<Transfer>,
}

/// What [`Payments::begin`] decided.
#[derive(Clone, Debug)]
pub enum Begun {
    /// Final already (a fraud decline).
    Done(Payment),
    /// To the rails.
    Rails(InFlight),
}

/// A payment request, amounts already in minor units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPayment<'a> {
    /// Direction.
    pub kind: PaymentKind,
    /// Venue account.
    pub account: &'a str,
    /// Asset name.
    pub asset: &'a str,
    /// Method name.
    pub method: &'a str,
    /// Gross amount.
    pub amount_minor: u64,
}

/// Why a request was refused; nothing of it was written. Each names the field.
#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    /// Unknown method.
    #[error("method: {0:?} is not configured")]
    UnknownMethod(String),
    /// Unknown asset.
    #[error("asset: {0:?} is not configured")]
    UnknownAsset(String),
    /// No such account.
    #[error("account: {account:?} has no {asset} account")]
    UnknownAccount {
        /// Account.
        account: String,
        /// Asset.
        asset: String,
    },
    /// The fee would take all of it.
    #[error("amount: {amount_minor} minor units do not cover the {fee_minor} fee")]
    BelowFee {
        /// Asked.
        amount_minor: u64,
        /// Fee.
        fee_minor: u64,
    },
    /// More than available.
    #[error("amount: {amount_minor} minor units exceed the {available_minor} available")]
    Overdraft {
        /// Asked.
        amount_minor: u64,
        /// Available.
        available_minor: i128,
    },
    /// Refund above what is left.
    #[error("amount: refund of {amount_minor} exceeds the {left_minor} not yet refunded")]
    OverRefund {
        /// Asked.
        amount_minor: u64,
        /// Left.
        left_minor: u64,
    },
    /// No such payment.
    #[error("id: no payment {0}")]
    NotFound(u64),
    /// Not refundable in its status or kind.
    #[error("id: payment {id} is a {kind:?} in status {status} and cannot be refunded")]
    NotRefundable {
        /// Payment.
        id: u64,
        /// Kind.
        kind: PaymentKind,
        /// Status.
        status: &'static str,
    },
    /// Too many refunds on one payment.
    #[error("id: payment {0} has its maximum of {REFUNDS_PER_PAYMENT_MAX} refunds")]
    TooManyRefunds(u64),
    /// The payment table is full.
    #[error("payments: the table holds its maximum of {0}")]
    Full(usize),
    /// The ledger or its store failed (a server error).
    #[error(transparent)]
    Ledger(#[from] PaymentError),
    /// The ledger refused a posting the checks should have caught (a server error).
    #[error("ledger refused a posting: {0}")]
    Posting(TransferError),
}

impl PaymentsError {
    /// The request field at fault (`None` for server errors).
    pub fn field(&self) -> Option<&'static str> {
        Some(match self {
            PaymentsError::UnknownMethod(_) => "method",
            PaymentsError::UnknownAsset(_) => "asset",
            PaymentsError::UnknownAccount { .. } => "account",
            PaymentsError::BelowFee { .. }
            | PaymentsError::Overdraft { .. }
            | PaymentsError::OverRefund { .. } => "amount",
            PaymentsError::NotFound(_)
            | PaymentsError::NotRefundable { .. }
            | PaymentsError::TooManyRefunds(_) => "id",
            PaymentsError::Full(_) | PaymentsError::Ledger(_) | PaymentsError::Posting(_) => return None,
        })
    }
}

/// Final statuses (refunds move a final payment between final statuses).
fn is_final(status: Status) -> bool {
    !matches!(status, Status::Pending | Status::Processing)
}

/// The post (`ok`) or void of a withdrawal's pending legs, ids fixed by the payment id.
fn second_phase(id: u64, pending: &[Transfer], ok: bool) -> Vec<Transfer> {
    let phase = if ok { LEG_POST } else { LEG_VOID };
    pending
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let base = if ok { Transfer::post_of(0, t) } else { Transfer::void_of(0, t) };
            Transfer { id: transfer_id(id, phase * 2 + i as u128), linked: t.linked, ..base }
        })
        .collect()
}

/// The accounts a payment's legs move money between.
#[derive(Clone, Copy, Debug)]
struct LegAccounts {
    user: AccountIdx,
    external: AccountIdx,
    fee: AccountIdx,
}

/// The legs of payment `p` (`kind`: posted for a deposit's success, pending for a withdrawal's
/// reservation): the net amount to or from the account, linked to the fee when there is one.
fn payment_legs(p: &Payment, a: LegAccounts, kind: TransferKind) -> Vec<Transfer> {
    let (debit, credit_main, code, fee_debit) = match p.kind {
        PaymentKind::Deposit => (a.external, a.user, codes::DEPOSIT, a.external),
        PaymentKind::Withdrawal => (a.user, a.external, codes::WITHDRAWAL, a.user),
    };
    let net = p.amount_minor - p.fee_minor;
    let mut v = vec![Transfer {
        kind,
        code,
        user_data_64: p.id,
        ..Transfer::posted(transfer_id(p.id, LEG_MAIN), debit, credit_main, net)
    }];
    if p.fee_minor > 0 {
        v[0].linked = true;
        v.push(Transfer {
            kind,
            code: codes::FEE,
            user_data_64: p.id,
            ..Transfer::posted(transfer_id(p.id, LEG_FEE), fee_debit, a.fee, p.fee_minor)
        });
    }
    v
}

/// The stored webhook deliveries (id order), after deleting finished ones older than the
/// newest `kept_max` (pending ones are all kept): the table stays bounded across restarts.
fn load_deliveries<S: Store>(
    s: &mut Settlement<S>,
    kept_max: usize,
) -> Result<Vec<StoredDelivery>, RecoveryError> {
    let mut all = Vec::new();
    for (key, value) in s.load_records(RecordTable::WebhookDeliveries)? {
        let d =
            StoredDelivery::parse(&key, &value).map_err(|detail| RecoveryError::Corrupt { key, detail })?;
        all.push(d);
    }
    let cut = all.len().saturating_sub(kept_max.max(1));
    let (old, _) = all.split_at(cut);
    let gone: Vec<u64> =
        old.iter().filter(|d| d.delivery.state != DeliveryState::Pending).map(|d| d.delivery.id).collect();
    if !gone.is_empty() {
        let mut index = 0;
        all.retain(|d| {
            index += 1;
            index > cut || d.delivery.state == DeliveryState::Pending
        });
        for id in &gone {
            s.stage_record(RecordWrite {
                table: RecordTable::WebhookDeliveries,
                key: StoredDelivery::record_key(*id),
                value: None,
            });
        }
        s.commit_records()?;
    }
    Ok(all)
}

/// The ledger's answers to a payment's postings: created or already there (a re-driven step),
/// else the refusal the request's checks should have caught.
fn check_postings(results: Vec<Result<Created, TransferError>>) -> Result<(), PaymentsError> {
    for r in results {
        match r {
            Ok(Created::New | Created::AlreadyExists) => {}
            Err(TransferError::Overdraft { available, amount }) => {
                return Err(PaymentsError::Overdraft { amount_minor: amount, available_minor: available })
            }
            Err(TransferError::LinkedEventFailed) => {}
            Err(e) => return Err(PaymentsError::Posting(e)),
        }
    }
    Ok(())
}

/// A fee of `bps` on `amount`, rounded up (never undercharged), as the settlement rounds.
pub fn fee_minor(amount: u64, bps: u32) -> u64 {
    settlement::follower::fee_minor(amount, bps)
}

/// The payments core.
pub struct Payments {
    methods: Vec<(String, u32)>,
    fee_owner: String,
    payments_max: usize,
    fraud: Fraud,
    rails: Arc<Rails>,
    /// Records of this process, `records[i].id == first_id + i`.
    records: Vec<Payment>,
    first_id: u64,
    outbox: Vec<FinalEvent>,
    /// Final statuses passed to the outbox since start, by [`Status::index`].
    finals: [u64; Status::ALL.len()],
    /// Webhook endpoint URLs: each final status gets a delivery to each.
    webhook_urls: Vec<String>,
    /// Id of the next webhook delivery (after the highest stored).
    next_delivery_id: u64,
    /// Deliveries read back at start, until [`Payments::take_stored_deliveries`].
    stored_deliveries: Vec<StoredDelivery>,
    /// Set by [`Payments::defer_commits`]: steps staged so far (shared with the committer).
    staged_steps: Option<Arc<AtomicU64>>,
    /// The step of the last change booked (0 while commits are immediate).
    last_step: u64,
}

/// The rails behind their breaker, shared with the requests at the rails: a slow call holds no
/// lock (the breaker's only briefly, before and after it).
pub struct Rails {
    connector: Box<dyn Connector>,
    breaker: Mutex<Breaker>,
    call_timeout_ms: u64,
}

impl Rails {
    /// Phase two, without the ledger or the core: the rails call through the breaker. True
    /// when the rails approved.
    pub fn call(&self, f: &mut InFlight, now_ns: u64) -> bool {
        let p = &mut f.payment;
        let call = RailCall {
            payment_id: p.id,
            kind: p.kind,
            method: &p.method,
            asset: &p.asset,
            amount_minor: p.amount_minor,
        };
        let outcome = self.guarded(now_ns, || self.connector.execute(&call, self.call_timeout_ms));
        match outcome {
            Ok(RailOutcome::Approved(reference)) => {
                p.rail_reference = Some(reference);
                true
            }
            Ok(RailOutcome::Declined(reason)) => {
                p.failure = Some(format!("declined: {reason}"));
                false
            }
            Err(e) => {
                p.failure = Some(e.to_string());
                false
            }
        }
    }

    /// `f` through the breaker: refused at once while it is open; its success or failure
    /// recorded.
    fn guarded<T>(&self, now_ns: u64, f: impl FnOnce() -> Result<T, RailError>) -> Result<T, RailError> {
        if !self.breaker.lock().expect("breaker lock").allow(now_ns) {
            return Err(RailError::Unavailable("circuit breaker open".into()));
        }
        let r = f();
        self.breaker.lock().expect("breaker lock").record(r.is_ok(), now_ns);
        r
    }

    /// The breaker.
    pub fn breaker(&self) -> BreakerView {
        self.breaker.lock().expect("breaker lock").view()
    }
}

impl Payments {
    /// The core over `settlement`'s ledger: checks the config against it, reads the stored
    /// payment records back, and finishes the payments a stop interrupted during the rails call
    /// (failed; a withdrawal's reserved funds voided), all before serving. Ids continue after
    /// the highest stored one, so they never collide after a restart.
    pub fn new<S: Store>(
        config: &PaymentsConfig,
        settlement: &mut Settlement<S>,
        connector: Box<dyn Connector>,
    ) -> Result<Payments, OpenError> {
        config.validate()?;
        let ledger = settlement.ledger();
        let mut large = vec![None; ledger.assets().len()];
        for (asset, text) in &config.fraud.large_amount {
            let bad = |detail: String| ConfigError::LargeAmount { asset: asset.clone(), detail };
            let id = ledger.asset_id(asset).ok_or_else(|| bad("not a configured asset".into()))?;
            let minor =
                settlement::parse_amount(text, ledger.asset(id).scale).map_err(|e| bad(e.to_string()))?;
            large[id.0 as usize] = Some(minor);
        }
        for a in ledger.assets() {
            let id = ledger.asset_id(&a.name).expect("listed asset");
            ledger
                .account(&config.fee_owner, id)
                .ok_or_else(|| ConfigError::FeeOwner(config.fee_owner.clone()))?;
        }
        let last = ledger
            .transfers()
            .filter(|t| t.transfer.id & !((1u128 << 112) - 1) == PAYMENT_ID_TAG)
            .map(|t| ((t.transfer.id >> 16) & u128::from(u64::MAX)) as u64)
            .max()
            .unwrap_or(0);
        let mut records = Vec::new();
        for (key, value) in settlement.load_records(RecordTable::Payments).map_err(RecoveryError::from)? {
            let corrupt = |detail: String| RecoveryError::Corrupt { key: key.clone(), detail };
            let p: Payment = serde_json::from_slice(&value).map_err(|e| corrupt(e.to_string()))?;
            if key != Payment::record_key(p.id) {
                return Err(corrupt(format!("holds payment {}", p.id)).into());
            }
            records.push(p);
        }
        // Stored in key (= id) order; they must follow each other.
        let first_id = records.first().map_or(last + 1, |p| p.id);
        if let Some((i, p)) = records.iter().enumerate().find(|(i, p)| p.id != first_id + *i as u64) {
            return Err(RecoveryError::Corrupt {
                key: Payment::record_key(p.id),
                detail: format!("expected payment {}", first_id + i as u64),
            }
            .into());
        }
        let stored_deliveries = load_deliveries(settlement, config.delivery.kept_max)?;
        let next_delivery_id = stored_deliveries.last().map_or(1, |d| d.delivery.id + 1);
        let mut core = Payments {
            methods: config
                .methods
                .iter()
                .map(|m| (m.name.clone(), m.fee_bps().expect("validated")))
                .collect(),
            fee_owner: config.fee_owner.clone(),
            payments_max: config.payments_max,
            fraud: Fraud::new(config.fraud.clone(), large),
            rails: Arc::new(Rails {
                connector,
                breaker: Mutex::new(Breaker::new(config.breaker)),
                call_timeout_ms: config.call_timeout_ms,
            }),
            staged_steps: None,
            last_step: 0,
            records,
            first_id,
            outbox: Vec::new(),
            finals: [0; Status::ALL.len()],
            webhook_urls: config.webhooks.iter().map(|w| w.url.clone()).collect(),
            next_delivery_id,
            stored_deliveries,
        };
        for p in &core.records {
            if let Some(&(status, ts)) = p.history.iter().rev().find(|(s, _)| is_final(*s)) {
                core.fraud.record(&p.account, ts, status == Status::Failed);
            }
        }
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let interrupted: Vec<u64> =
            core.records.iter().filter(|p| !is_final(p.status)).map(|p| p.id).collect();
        for id in interrupted {
            core.recover(settlement, id, now_ns)?;
        }
        Ok(core)
    }

    /// Finishes payment `id`, left in `processing` by a stop during its rails call, with what
    /// the rails say of it (asked by reference, through the breaker, within the call timeout):
    /// approved → succeeded, its legs posted; declined, unknown to them, or no answer → failed,
    /// a withdrawal's reserved funds returned. Announced like any final status.
    fn recover<S: Store>(
        &mut self,
        s: &mut Settlement<S>,
        id: u64,
        now_ns: u64,
    ) -> Result<(), RecoveryError> {
        let i = (id - self.first_id) as usize;
        let mut p = self.records[i].clone();
        let fail = |detail: String| RecoveryError::Recover { id, detail };
        let call = RailCall {
            payment_id: p.id,
            kind: p.kind,
            method: &p.method,
            asset: &p.asset,
            amount_minor: p.amount_minor,
        };
        let rails = Arc::clone(&self.rails);
        let asked = rails.guarded(now_ns, || rails.connector.status(&call, rails.call_timeout_ms));
        let pending: Vec<Transfer> = [LEG_MAIN, LEG_FEE]
            .into_iter()
            .filter_map(|leg| s.ledger().transfer(transfer_id(id, leg)))
            .filter(|t| t.state == Some(PendingState::Pending))
            .map(|t| t.transfer)
            .collect();
        let legs = match asked {
            Ok(RailStatus::Approved(reference)) => {
                p.rail_reference = Some(reference);
                p.set(Status::Succeeded, now_ns);
                match p.kind {
                    PaymentKind::Withdrawal => second_phase(id, &pending, true),
                    PaymentKind::Deposit => {
                        let (user, external, fee_account, _) =
                            self.accounts(s, &p.account, &p.asset).map_err(|e| fail(e.to_string()))?;
                        let accounts = LegAccounts { user, external, fee: fee_account };
                        payment_legs(&p, accounts, TransferKind::Posted)
                    }
                }
            }
            other => {
                p.failure = Some(match other {
                    Ok(RailStatus::Declined(reason)) => format!("declined: {reason} (asked after a restart)"),
                    Ok(_) => "interrupted: the venue stopped before the call reached the rails".into(),
                    Err(e) => format!(
                        "interrupted: the venue stopped during the rails call, and asking them failed: {e}"
                    ),
                });
                p.set(Status::Failed, now_ns);
                second_phase(id, &pending, false)
            }
        };
        let deliveries = self.book(s, &legs, &p, &no_extra, now_ns).map_err(|e| fail(e.to_string()))?;
        self.records[i] = p.clone();
        self.finished(p, deliveries);
        Ok(())
    }

    /// The webhook deliveries read back at start (id order), for the webhook worker: pending
    /// ones resume. Empty after the first call.
    pub fn take_stored_deliveries(&mut self) -> Vec<StoredDelivery> {
        std::mem::take(&mut self.stored_deliveries)
    }

    /// A payment by id.
    pub fn get(&self, id: u64) -> Option<&Payment> {
        id.checked_sub(self.first_id).and_then(|i| self.records.get(i as usize))
    }

    /// Payments with id above `after`, oldest first, of `account` when given.
    pub fn list<'a>(
        &'a self,
        account: Option<&'a str>,
        after: u64,
    ) -> impl Iterator<Item = &'a Payment> + 'a {
        let from = after.saturating_add(1).saturating_sub(self.first_id) as usize;
        self.records.iter().skip(from).filter(move |p| account.is_none_or(|a| p.account == a))
    }

    /// The rails breaker.
    pub fn breaker(&self) -> BreakerView {
        self.rails.breaker()
    }

    /// The rails, for calling them without holding the core.
    pub fn rails(&self) -> Arc<Rails> {
        Arc::clone(&self.rails)
    }

    /// From now on each change is applied and staged in the settlement but not committed: the
    /// caller commits (several callers' changes in one transaction, group commit) and answers
    /// only once the commit covering [`Payments::last_step`] is durable. The counter returned
    /// is the number of steps staged, bumped under the settlement's lock.
    pub fn defer_commits(&mut self) -> Arc<AtomicU64> {
        Arc::clone(self.staged_steps.get_or_insert_with(|| Arc::new(AtomicU64::new(0))))
    }

    /// The step of the last change booked (0 while commits are immediate).
    pub fn last_step(&self) -> u64 {
        self.last_step
    }

    /// Final statuses since the last call, for the webhook sender (each is counted in
    /// [`Payments::finals`] as it passes).
    pub fn drain_events(&mut self) -> Vec<FinalEvent> {
        for e in &self.outbox {
            self.finals[e.payment.status.index()] += 1;
        }
        std::mem::take(&mut self.outbox)
    }

    /// [`Payments::drain_events`] of the changes durable so far: those staged at step
    /// `durable_step` or before (all of them while commits are immediate).
    pub fn drain_events_upto(&mut self, durable_step: u64) -> Vec<FinalEvent> {
        let n = self.outbox.iter().take_while(|e| e.step <= durable_step).count();
        let events: Vec<FinalEvent> = self.outbox.drain(..n).collect();
        for e in &events {
            self.finals[e.payment.status.index()] += 1;
        }
        events
    }

    /// Final statuses announced since start, by [`Status::index`] (a refund counts again under
    /// its new status).
    pub fn finals(&self) -> [u64; Status::ALL.len()] {
        self.finals
    }

    /// Does `method` exist? (For the API's validation order.)
    pub fn has_method(&self, method: &str) -> bool {
        self.methods.iter().any(|(m, _)| m == method)
    }

    fn accounts<S: Store>(
        &self,
        s: &Settlement<S>,
        account: &str,
        asset: &str,
    ) -> Result<(AccountIdx, AccountIdx, AccountIdx, u32), PaymentsError> {
        let ledger = s.ledger();
        let asset_id =
            ledger.asset_id(asset).ok_or_else(|| PaymentsError::UnknownAsset(asset.to_string()))?;
        let user = s.user_account(account, asset).map_err(|e| match e {
            PaymentError::UnknownAccount { .. } => {
                PaymentsError::UnknownAccount { account: account.to_string(), asset: asset.to_string() }
            }
            other => other.into(),
        })?;
        if account.starts_with(settlement::config::SYSTEM_OWNER_PREFIX) {
            return Err(PaymentsError::UnknownAccount {
                account: account.to_string(),
                asset: asset.to_string(),
            });
        }
        let external = s.external_account(asset)?;
        let fee = ledger.account(&self.fee_owner, asset_id).expect("checked at start");
        Ok((user, external, fee, ledger.asset(asset_id).scale))
    }

    /// Runs a deposit or withdrawal to its final status: [`Payments::begin`], then (unless
    /// that already decided) [`Payments::call_rails`] and [`Payments::complete`].
    pub fn create<S: Store>(
        &mut self,
        s: &mut Settlement<S>,
        req: &NewPayment<'_>,
        now_ns: u64,
    ) -> Result<Payment, PaymentsError> {
        match self.begin(s, req, now_ns, &no_extra)? {
            Begun::Done(p) => Ok(p),
            Begun::Rails(mut f) => {
                let approved = self.call_rails(&mut f, now_ns);
                self.complete(s, f, approved, now_ns, &no_extra)
            }
        }
    }

    /// Phase one, with the ledger: validation (an error writes nothing), fraud rules (a
    /// decline is final here), and the `processing` record (with a withdrawal's funds
    /// reservation, in one commit with `extra`'s records) before the rails are called. The
    /// caller may release the ledger for the rails call that follows.
    pub fn begin<S: Store>(
        &mut self,
        s: &mut Settlement<S>,
        req: &NewPayment<'_>,
        now_ns: u64,
        extra: Extra<'_>,
    ) -> Result<Begun, PaymentsError> {
        let bps = self
            .methods
            .iter()
            .find(|(m, _)| m == req.method)
            .map(|(_, b)| *b)
            .ok_or_else(|| PaymentsError::UnknownMethod(req.method.to_string()))?;
        let (user, external, fee_account, scale) = self.accounts(s, req.account, req.asset)?;
        let fee = fee_minor(req.amount_minor, bps);
        if fee >= req.amount_minor {
            return Err(PaymentsError::BelowFee { amount_minor: req.amount_minor, fee_minor: fee });
        }
        if req.kind == PaymentKind::Withdrawal {
            let available = s.ledger().balances(user).map_or(0, |b| b.available());
            if i128::from(req.amount_minor) > available {
                return Err(PaymentsError::Overdraft {
                    amount_minor: req.amount_minor,
                    available_minor: available,
                });
            }
        }
        if self.records.len() >= self.payments_max {
            return Err(PaymentsError::Full(self.payments_max));
        }
        let id = self.first_id + self.records.len() as u64;
        let asset_idx = s.ledger().asset_id(req.asset).expect("checked").0 as usize;
        let fraud = self.fraud.evaluate(req.account, asset_idx, req.amount_minor, now_ns);
        let mut p = Payment {
            id,
            kind: req.kind,
            account: req.account.to_string(),
            asset: req.asset.to_string(),
            scale,
            method: req.method.to_string(),
            amount_minor: req.amount_minor,
            fee_minor: fee,
            status: Status::Pending,
            history: vec![(Status::Pending, now_ns)],
            refunded_minor: 0,
            fee_refunded_minor: 0,
            refunds: Vec::new(),
            fraud,
            failure: None,
            rail_reference: None,
        };
        let accounts = LegAccounts { user, external, fee: fee_account };
        if p.fraud.declined {
            p.failure =
                Some(format!("fraud: score {} above {}", p.fraud.score_milli, p.fraud.decline_above_milli));
            p.set(Status::Failed, now_ns);
            let deliveries = self.book(s, &[], &p, extra, now_ns)?;
            self.records.push(p.clone());
            return Ok(Begun::Done(self.finished(p, deliveries)));
        }
        p.set(Status::Processing, now_ns);
        let (on_success, on_failure) = if req.kind == PaymentKind::Withdrawal {
            let pending = payment_legs(&p, accounts, TransferKind::Pending { timeout_ns: 0 });
            self.book(s, &pending, &p, extra, now_ns)?;
            (second_phase(id, &pending, true), second_phase(id, &pending, false))
        } else {
            self.book(s, &[], &p, extra, now_ns)?;
            (payment_legs(&p, accounts, TransferKind::Posted), Vec::new())
        };
        self.records.push(p.clone());
        Ok(Begun::Rails(InFlight { payment: p, on_success, on_failure }))
    }

    /// Phase two, without the ledger: the rails call through the breaker ([`Rails::call`]).
    /// True when the rails approved.
    pub fn call_rails(&mut self, f: &mut InFlight, now_ns: u64) -> bool {
        self.rails.call(f, now_ns)
    }

    /// Phase three, with the ledger: posts (or voids) the legs and records the final status,
    /// in one commit with `extra`'s records.
    pub fn complete<S: Store>(
        &mut self,
        s: &mut Settlement<S>,
        f: InFlight,
        approved: bool,
        now_ns: u64,
        extra: Extra<'_>,
    ) -> Result<Payment, PaymentsError> {
        let legs = if approved { &f.on_success } else { &f.on_failure };
        let mut p = f.payment;
        p.set(if approved { Status::Succeeded } else { Status::Failed }, now_ns);
        let deliveries = self.book(s, legs, &p, extra, now_ns)?;
        let i = (p.id - self.first_id) as usize;
        self.records[i] = p.clone();
        Ok(self.finished(p, deliveries))
    }

    /// A payment that reached its final status: remembered by the fraud rules, announced.
    fn finished(&mut self, p: Payment, deliveries: Vec<StoredDelivery>) -> Payment {
        let ts = p.history.last().map_or(0, |h| h.1);
        self.fraud.record(&p.account, ts, p.status == Status::Failed);
        self.outbox.push(FinalEvent { payment: p.clone(), deliveries, step: self.last_step });
        p
    }

    /// The webhook deliveries of `p`'s status when it is final, one per endpoint, ids from
    /// `next_delivery_id` (taken only once they are committed).
    fn deliveries_of(&self, p: &Payment, now_ns: u64) -> Vec<StoredDelivery> {
        if !is_final(p.status) || self.webhook_urls.is_empty() {
            return Vec::new();
        }
        let body = event_body(p);
        self.webhook_urls
            .iter()
            .enumerate()
            .map(|(i, url)| StoredDelivery {
                delivery: Delivery {
                    id: self.next_delivery_id + i as u64,
                    payment_id: p.id,
                    account: p.account.clone(),
                    status: p.status.as_str().to_string(),
                    url: url.clone(),
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_attempt_ns: now_ns,
                    http_status: None,
                    last_result: None,
                },
                body: body.clone(),
            })
            .collect()
    }

    /// Commits `batch` (possibly empty) with `p`'s record, `extra`'s, and the webhook
    /// deliveries of its status when final, in one transaction; the deliveries once committed.
    fn book<S: Store>(
        &mut self,
        s: &mut Settlement<S>,
        batch: &[Transfer],
        p: &Payment,
        extra: Extra<'_>,
        now_ns: u64,
    ) -> Result<Vec<StoredDelivery>, PaymentsError> {
        let deliveries = self.deliveries_of(p, now_ns);
        let mut records = vec![p.record()];
        records.extend(extra(p));
        records.extend(deliveries.iter().map(StoredDelivery::record));
        let deferred = self.staged_steps.clone();
        if batch.is_empty() {
            records.into_iter().for_each(|r| s.stage_record(r));
            if deferred.is_none() {
                s.commit_records().map_err(|e| PaymentsError::Ledger(e.into()))?;
            }
        } else {
            let results = match &deferred {
                Some(_) => s.apply_transfers_with_records(batch, now_ns, records)?,
                None => s.create_transfers_with_records(batch, now_ns, records)?,
            };
            check_postings(results)?;
        }
        if let Some(steps) = deferred {
            self.last_step = steps.fetch_add(1, Ordering::SeqCst) + 1;
        }
        self.next_delivery_id += deliveries.len() as u64;
        Ok(deliveries)
    }

    /// Refunds `amount_minor` of deposit `id` (partial and repeated, never above the original):
    /// all refunded → `refunded`, else `partially_refunded`.
    pub fn refund<S: Store>(
        &mut self,
        s: &mut Settlement<S>,
        id: u64,
        amount_minor: u64,
        now_ns: u64,
    ) -> Result<Payment, PaymentsError> {
        self.refund_with(s, id, amount_minor, now_ns, &no_extra)
    }

    /// [`Payments::refund`], committing `extra`'s records with it.
    pub fn refund_with<S: Store>(
        &mut self,
        s: &mut Settlement<S>,
        id: u64,
        amount_minor: u64,
        now_ns: u64,
        extra: Extra<'_>,
    ) -> Result<Payment, PaymentsError> {
        let p = self.get(id).ok_or(PaymentsError::NotFound(id))?;
        if p.kind != PaymentKind::Deposit
            || !matches!(p.status, Status::Succeeded | Status::PartiallyRefunded)
        {
            return Err(PaymentsError::NotRefundable { id, kind: p.kind, status: p.status.as_str() });
        }
        if p.refunds.len() >= REFUNDS_PER_PAYMENT_MAX {
            return Err(PaymentsError::TooManyRefunds(id));
        }
        let left = p.amount_minor - p.refunded_minor;
        if amount_minor == 0 || amount_minor > left {
            return Err(PaymentsError::OverRefund { amount_minor, left_minor: left });
        }
        let (user, external, fee_account, _) = self.accounts(s, &p.account, &p.asset)?;
        // The fee returns in proportion (cumulative floor, the last refund takes the rest), so
        // the refunds of a whole deposit return exactly its fee.
        let refunded_after = p.refunded_minor + amount_minor;
        let fee_after = if refunded_after == p.amount_minor {
            p.fee_minor
        } else {
            (u128::from(p.fee_minor) * u128::from(refunded_after) / u128::from(p.amount_minor)) as u64
        };
        let fee_part = fee_after - p.fee_refunded_minor;
        let main = amount_minor - fee_part;
        let number = p.refunds.len() as u32 + 1;
        let leg = LEG_REFUND + 2 * u128::from(number);
        let mut batch = Vec::with_capacity(2);
        if main > 0 {
            batch.push(Transfer {
                code: codes::REFUND,
                user_data_64: id,
                ..Transfer::posted(transfer_id(id, leg), user, external, main)
            });
        }
        if fee_part > 0 {
            if let Some(first) = batch.first_mut() {
                first.linked = true;
            }
            batch.push(Transfer {
                code: codes::REFUND,
                user_data_64: id,
                ..Transfer::posted(transfer_id(id, leg + 1), fee_account, external, fee_part)
            });
        }
        let available = s.ledger().balances(user).map_or(0, |b| b.available());
        if i128::from(main) > available {
            return Err(PaymentsError::Overdraft { amount_minor, available_minor: available });
        }
        let i = (id - self.first_id) as usize;
        let mut p = self.records[i].clone();
        p.refunded_minor = refunded_after;
        p.fee_refunded_minor = fee_after;
        p.refunds.push(Refund { number, amount_minor, fee_minor: fee_part, ts_ns: now_ns });
        let status =
            if refunded_after == p.amount_minor { Status::Refunded } else { Status::PartiallyRefunded };
        p.set(status, now_ns);
        let deliveries = self.book(s, &batch, &p, extra, now_ns)?;
        self.records[i] = p.clone();
        self.outbox.push(FinalEvent { payment: p.clone(), deliveries, step: self.last_step });
        Ok(p)
    }
}
