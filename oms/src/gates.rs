//! The gates every request passes before the engine: message rate limits (per session and per
//! account) and pre-trade risk. A refusal is answered at once and never queued.

use engine::{AccountId, NewOrder, OrdType, Price, PriceUnits, SymbolSpec, Tif};
use std::time::Instant;

use ratelimit::{Decision, KeyedLimiter, LimitConfig};
use risk::{RiskEngine, RiskReject};

use crate::funds::{Funds, FundsConfig, Replaced};
use crate::request::{Request, SessionId};
use crate::OmsError;

/// Rate limits, per session and per account.
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Every session's limit.
    pub session: LimitConfig,
    /// Every account's limit (across its sessions over time).
    pub account: LimitConfig,
    /// Accounts with their own account limit.
    pub account_overrides: Vec<(AccountId, LimitConfig)>,
    /// Most keys tracked (idle ones are evicted).
    pub keys_max: usize,
}

/// What a rate limit is kept for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum LimitKey {
    Session(SessionId),
    Account(AccountId),
}

/// Why a gate refused a request.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Over the rate: retry after this long.
    RateLimited { retry_after_ns: u64 },
    /// Sustained abuse of the rate limit: the session is logged out.
    Abuse,
    /// A pre-trade limit.
    Risk(RiskReject),
    /// The account's available funds (`risk_funds`); the text names the asset and amounts.
    Funds(String),
}

/// One request in this many has its rate-limit and risk checks timed (four monotonic clock
/// reads, vDSO calls, no system call), so the stage histograms cost the others nothing. A power
/// of two: the test is a mask.
pub const GATE_SAMPLE_EVERY: u64 = 64;
const _: () = assert!(GATE_SAMPLE_EVERY.is_power_of_two());

/// Rate limits and risk, both optional.
pub(crate) struct Gates {
    risk: Option<RiskEngine>,
    limiter: Option<KeyedLimiter<LimitKey>>,
    funds: Option<Funds>,
}

impl std::fmt::Debug for Gates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gates")
            .field("risk", &self.risk.is_some())
            .field("rate_limit", &self.limiter.is_some())
            .field("funds", &self.funds.is_some())
            .finish()
    }
}

impl Gates {
    pub(crate) fn new(
        risk: Option<RiskEngine>,
        rate_limit: Option<RateLimits>,
        funds: Option<FundsConfig>,
        accounts: usize,
    ) -> Result<Gates, OmsError> {
        let limiter = match rate_limit {
            None => None,
            Some(limits) => {
                let mut keyed = KeyedLimiter::new(limits.session, limits.keys_max)?;
                // Account keys get the account limit; sessions keep the keyed default.
                for account in (0..accounts as u32).map(AccountId) {
                    let account_limit = limits
                        .account_overrides
                        .iter()
                        .find(|(a, _)| *a == account)
                        .map_or(limits.account, |(_, l)| *l);
                    keyed.set_override(LimitKey::Account(account), account_limit)?;
                }
                Some(keyed)
            }
        };
        Ok(Gates { risk, limiter, funds: funds.map(|f| Funds::new(f, accounts)) })
    }

    pub(crate) fn risk_mut(&mut self) -> Option<&mut RiskEngine> {
        self.risk.as_mut()
    }

    /// Accounts whose kill switch is engaged.
    pub(crate) fn killed_accounts(&self, accounts: usize) -> Vec<AccountId> {
        match &self.risk {
            Some(risk) => (0..accounts as u32).map(AccountId).filter(|&a| risk.is_killed(a)).collect(),
            None => Vec::new(),
        }
    }

    /// An engine event for the funds gate's reservations.
    pub(crate) fn on_engine_event(&mut self, event: &engine::Event) {
        if let Some(funds) = self.funds.as_mut() {
            funds.on_event(event);
        }
    }

    /// The rate limits of the session and of its account, then risk for orders and replaces,
    /// then the account's funds (new orders, and replaces of the live order `replaced`); a
    /// passed order is reserved under `command_seq`.
    pub(crate) fn admit(
        &mut self,
        session: SessionId,
        request: &Request,
        replaced: Option<Replaced>,
        now_ns: u64,
        command_seq: u64,
    ) -> Result<(), Refusal> {
        self.rate_limit(session, request, now_ns)?;
        self.risk_and_funds(request, replaced, command_seq)
    }

    /// [`Gates::admit`], timed: the outcome, then the nanoseconds the rate limits took and the
    /// nanoseconds risk and funds took (0 when a gate before them refused).
    pub(crate) fn admit_timed(
        &mut self,
        session: SessionId,
        request: &Request,
        replaced: Option<Replaced>,
        now_ns: u64,
        command_seq: u64,
    ) -> (Result<(), Refusal>, u64, u64) {
        let ns = |t: Instant| u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let started = Instant::now();
        if let Err(refusal) = self.rate_limit(session, request, now_ns) {
            return (Err(refusal), ns(started), 0);
        }
        let ratelimit_ns = ns(started);
        let started = Instant::now();
        let admitted = self.risk_and_funds(request, replaced, command_seq);
        (admitted, ratelimit_ns, ns(started))
    }

    /// The rate limits of the session and of its account.
    fn rate_limit(&mut self, session: SessionId, request: &Request, now_ns: u64) -> Result<(), Refusal> {
        if let Some(limiter) = self.limiter.as_mut() {
            let mut decision = limiter.check(&LimitKey::Session(session), now_ns);
            if decision == Decision::Allow {
                decision = limiter.check(&LimitKey::Account(request.account()), now_ns);
            }
            match decision {
                Decision::Allow => {}
                Decision::Limited { retry_after_ns } => return Err(Refusal::RateLimited { retry_after_ns }),
                Decision::Abuse => {
                    limiter.remove(&LimitKey::Session(session));
                    return Err(Refusal::Abuse);
                }
            }
        }
        Ok(())
    }

    /// Pre-trade risk for orders and replaces, then (new orders) the account's funds.
    fn risk_and_funds(
        &mut self,
        request: &Request,
        replaced: Option<Replaced>,
        command_seq: u64,
    ) -> Result<(), Refusal> {
        if let Some(risk) = self.risk.as_mut() {
            let checked = match request {
                Request::New { order, .. } => risk.check_new(order),
                Request::Replace { replace, .. } => risk.check_replace(replace),
                Request::Cancel { .. }
                | Request::MassCancel { .. }
                | Request::Status { .. }
                | Request::MassStatus { .. } => Ok(()),
            };
            checked.map_err(Refusal::Risk)?;
        }
        let Some(funds) = self.funds.as_mut() else { return Ok(()) };
        let checked = match (request, replaced) {
            (Request::New { order, .. }, _) => {
                // A market order costs at most its band edge, else the reference price (in ticks,
                // rounded up: the cost is counted in ticks and must not be understated).
                let cap = self.risk.as_ref().and_then(|r| {
                    let spec = r.symbols().get(order.symbol.index())?;
                    r.market_cap(order).or_else(|| r.reference_price(order.symbol).map(|u| ticks_up(spec, u)))
                });
                funds.check(order, cap, command_seq)
            }
            (Request::Replace { replace, .. }, Some(old)) => funds.check_replace(replace, old, command_seq),
            _ => Ok(()),
        };
        if let Err(r) = checked {
            // Risk passed it and reserved for it: give that back, nothing goes to the engine.
            if let Some(risk) = self.risk.as_mut() {
                match request {
                    Request::New { order, .. } => risk.withdraw_new(order.account, &order.id),
                    Request::Replace { replace, .. } => {
                        risk.withdraw_replace(replace.account, &replace.orig_id, &replace.id)
                    }
                    _ => {}
                }
            }
            return Err(Refusal::Funds(r.text));
        }
        Ok(())
    }

    /// A market order of an account with a price band goes to the engine as an IOC limit at
    /// the band's edge, so it cannot fill outside the band. (The order's own reports still
    /// describe a market order: they come from the request, not from the command.)
    pub(crate) fn capped(&self, mut order: NewOrder) -> NewOrder {
        let Some(risk) = self.risk.as_ref() else { return order };
        if let (Some(cap), Some(spec)) = (risk.market_cap(&order), risk.symbols().get(order.symbol.index())) {
            order.ord_type = OrdType::Limit;
            order.tif = Tif::Ioc;
            order.price = PriceUnits(cap.0.saturating_mul(spec.tick_units.get()));
        }
        order
    }
}

/// `units` in ticks of `spec`, rounded up (a price between two ticks costs the upper one).
fn ticks_up(spec: &SymbolSpec, units: PriceUnits) -> Price {
    let tick = spec.tick_units.get();
    let (q, r) = (units.get() / tick, units.get() % tick);
    Price(if r > 0 { q + 1 } else { q })
}
