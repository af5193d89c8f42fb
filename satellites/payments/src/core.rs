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

use serde::Serialize;
use settlement::{
    AccountIdx, Created, PaymentError, Settlement, Store, Transfer, TransferError, TransferKind,
};

use crate::breaker::{Breaker, BreakerView};
use crate::config::{ConfigError, PaymentsConfig};
use crate::connector::{Connector, PaymentKind, RailCall, RailError, RailOutcome};
use crate::fraud::{Fraud, FraudDecision};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

/// A payment record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
}

/// A final status to announce by webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalEvent {
    /// The payment after the change.
    pub payment: Payment,
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

/// A fee of `bps` on `amount`, rounded up (never undercharged), as the settlement rounds.
pub fn fee_minor(amount: u64, bps: u32) -> u64 {
    settlement::follower::fee_minor(amount, bps)
}

/// The payments core.
pub struct Payments {
    methods: Vec<(String, u32)>,
    fee_owner: String,
    call_timeout_ms: u64,
    payments_max: usize,
    fraud: Fraud,
    breaker: Breaker,
    connector: Box<dyn Connector>,
    /// Records of this process, `records[i].id == first_id + i`.
    records: Vec<Payment>,
    first_id: u64,
    outbox: Vec<FinalEvent>,
}

impl Payments {
    /// The core over `settlement`'s ledger: checks the config against it and continues payment
    /// ids after the highest one the ledger holds (so ids never collide after a restart).
    pub fn new<S: Store>(
        config: &PaymentsConfig,
        settlement: &Settlement<S>,
        connector: Box<dyn Connector>,
    ) -> Result<Payments, ConfigError> {
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
        Ok(Payments {
            methods: config.methods.iter().map(|m| (m.name.clone(), m.fee_bps)).collect(),
            fee_owner: config.fee_owner.clone(),
            call_timeout_ms: config.call_timeout_ms,
            payments_max: config.payments_max,
            fraud: Fraud::new(config.fraud.clone(), large),
            breaker: Breaker::new(config.breaker),
            connector,
            records: Vec::new(),
            first_id: last + 1,
            outbox: Vec::new(),
        })
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
        self.breaker.view()
    }

    /// Final statuses since the last call, for the webhook sender.
    pub fn drain_events(&mut self) -> Vec<FinalEvent> {
        std::mem::take(&mut self.outbox)
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
        match self.begin(s, req, now_ns)? {
            Begun::Done(p) => Ok(p),
            Begun::Rails(mut f) => {
                let approved = self.call_rails(&mut f, now_ns);
                self.complete(s, f, approved, now_ns)
            }
        }
    }

    /// Phase one, with the ledger: validation (an error writes nothing), fraud rules (a
    /// decline is final here), and a withdrawal's funds reservation. The caller may release
    /// the ledger for the rails call that follows.
    pub fn begin<S: Store>(
        &mut self,
        s: &mut Settlement<S>,
        req: &NewPayment<'_>,
        now_ns: u64,
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
        let net = req.amount_minor - fee;
        let legs = |kind: TransferKind, leg: u128| -> Vec<Transfer> {
            let (debit, credit_main, code) = match req.kind {
                PaymentKind::Deposit => (external, user, codes::DEPOSIT),
                PaymentKind::Withdrawal => (user, external, codes::WITHDRAWAL),
            };
            let (fee_debit, fee_credit) = match req.kind {
                PaymentKind::Deposit => (external, fee_account),
                PaymentKind::Withdrawal => (user, fee_account),
            };
            let mut v = vec![Transfer {
                kind,
                code,
                user_data_64: id,
                ..Transfer::posted(transfer_id(id, leg + LEG_MAIN), debit, credit_main, net)
            }];
            if fee > 0 {
                v[0].linked = true;
                v.push(Transfer {
                    kind,
                    code: codes::FEE,
                    user_data_64: id,
                    ..Transfer::posted(transfer_id(id, leg + LEG_FEE), fee_debit, fee_credit, fee)
                });
            }
            v
        };
        if p.fraud.declined {
            p.failure =
                Some(format!("fraud: score {} above {}", p.fraud.score_milli, p.fraud.decline_above_milli));
            return Ok(Begun::Done(self.finish(p, Status::Failed, now_ns)));
        }
        let (on_success, on_failure) = if req.kind == PaymentKind::Withdrawal {
            let pending = legs(TransferKind::Pending { timeout_ns: 0 }, 0);
            self.book(s, &pending, now_ns)?;
            let second = |ok: bool| -> Vec<Transfer> {
                let phase = if ok { LEG_POST } else { LEG_VOID };
                pending
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let base = if ok { Transfer::post_of(0, t) } else { Transfer::void_of(0, t) };
                        Transfer { id: transfer_id(id, phase * 2 + i as u128), linked: t.linked, ..base }
                    })
                    .collect()
            };
            (second(true), second(false))
        } else {
            (legs(TransferKind::Posted, 0), Vec::new())
        };
        p.set(Status::Processing, now_ns);
        Ok(Begun::Rails(InFlight { payment: p, on_success, on_failure }))
    }

    /// Phase two, without the ledger: the rails call through the breaker. True when the
    /// rails approved.
    pub fn call_rails(&mut self, f: &mut InFlight, now_ns: u64) -> bool {
        let p = &mut f.payment;
        let outcome = if self.breaker.allow(now_ns) {
            let call = RailCall {
                payment_id: p.id,
                kind: p.kind,
                method: &p.method,
                asset: &p.asset,
                amount_minor: p.amount_minor,
            };
            let r = self.connector.execute(&call, self.call_timeout_ms);
            self.breaker.record(r.is_ok(), now_ns);
            r
        } else {
            Err(RailError::Unavailable("circuit breaker open".into()))
        };
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

    /// Phase three, with the ledger: posts (or voids) the legs and records the final status.
    pub fn complete<S: Store>(
        &mut self,
        s: &mut Settlement<S>,
        f: InFlight,
        approved: bool,
        now_ns: u64,
    ) -> Result<Payment, PaymentsError> {
        let legs = if approved { &f.on_success } else { &f.on_failure };
        if !legs.is_empty() {
            self.book(s, legs, now_ns)?;
        }
        Ok(self.finish(f.payment, if approved { Status::Succeeded } else { Status::Failed }, now_ns))
    }

    fn finish(&mut self, mut p: Payment, status: Status, now_ns: u64) -> Payment {
        p.set(status, now_ns);
        self.fraud.record(&p.account, now_ns, status == Status::Failed);
        self.records.push(p.clone());
        self.outbox.push(FinalEvent { payment: p.clone() });
        p
    }

    fn book<S: Store>(
        &mut self,
        s: &mut Settlement<S>,
        batch: &[Transfer],
        now_ns: u64,
    ) -> Result<(), PaymentsError> {
        for r in s.create_transfers(batch, now_ns)? {
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

    /// Refunds `amount_minor` of deposit `id` (partial and repeated, never above the original):
    /// all refunded → `refunded`, else `partially_refunded`.
    pub fn refund<S: Store>(
        &mut self,
        s: &mut Settlement<S>,
        id: u64,
        amount_minor: u64,
        now_ns: u64,
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
        self.book(s, &batch, now_ns)?;
        let i = (id - self.first_id) as usize;
        let p = &mut self.records[i];
        p.refunded_minor = refunded_after;
        p.fee_refunded_minor = fee_after;
        p.refunds.push(Refund { number, amount_minor, fee_minor: fee_part, ts_ns: now_ns });
        let status =
            if refunded_after == p.amount_minor { Status::Refunded } else { Status::PartiallyRefunded };
        p.set(status, now_ns);
        let p = p.clone();
        self.outbox.push(FinalEvent { payment: p.clone() });
        Ok(p)
    }
}
