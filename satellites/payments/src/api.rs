//! The HTTP JSON API (axum 0.8): deposits, withdrawals, refunds, payment reads, webhook
//! deliveries and breaker states, and its OpenAPI document at `/openapi/payments.json`.
//!
//! Every request carries `Authorization: Bearer <key>`; keys are stored as
//! `SHA-256(salt ‖ key)` and each is scoped to one account (an operator key, with no account,
//! sees all). Every mutating request carries an `Idempotency-Key`: the first request with a
//! key runs and its answer (success or error) is stored for at least 24 h; a retry with the
//! same body gets the stored answer, byte for byte; with another body, 422; while the first
//! is still running, 409.
//!
//! A key whose request began to move money (a payment record was written) is durable: it is
//! written in the ledger's store in the same transaction as the payment's record and postings
//! (in flight at the rails call, with its answer at the end), so a retry after a restart gets
//! the stored answer too. A request refused by validation wrote nothing, and after a restart
//! its key is free again (as Stripe does: only requests that began executing are saved).
//!
//! The work of a request (ledger steps, their commit, the rails call) runs on the blocking
//! pool, never on the runtime thread shared with the other satellites' routes. Concurrent
//! requests share commits ([`GroupCommit`]): each answers only once the commit holding its
//! steps is durable, and after a refused commit the service fails closed until a restart.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use settlement::{RecordTable, RecordWrite, Store};
use sha2::{Digest, Sha256};

use crate::breaker::BreakerState;
use crate::config::PaymentsConfig;
use crate::connector::{Connector, PaymentKind};
pub use crate::core::view;
use crate::core::{Begun, NewPayment, OpenError, Payment, Payments, PaymentsError, Rails, Status};
use crate::webhook::{hex, unhex, DeliveryLog, Persist, WebhookSender};

/// Rows per page unless `limit` says otherwise.
pub const PAGE_LIMIT_DEFAULT: usize = 100;
/// Most rows per page.
pub const PAGE_LIMIT_MAX: usize = 1_000;
/// Longest `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;
/// Largest request body.
pub const BODY_LEN_MAX: usize = 16 * 1024;

/// The clock of the service, in ns since the Unix epoch (tests pass their own).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    })
}

/// `hex(SHA-256(salt ‖ key))`, the `sha256` of an `[[payments.api_keys]]` entry.
pub fn hash_key(salt: &[u8], key: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(key.as_bytes());
    hex(&h.finalize())
}

struct ApiKey {
    id: String,
    account: Option<String>,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

enum Slot {
    InFlight,
    Done(StatusCode, Bytes),
}

struct IdemEntry {
    fingerprint: [u8; 32],
    created_ns: u64,
    slot: Slot,
}

/// Idempotency keys by (API key id, Idempotency-Key), expiring in insertion order.
struct Idempotency {
    map: FxHashMap<(String, String), IdemEntry>,
    order: VecDeque<(u64, (String, String))>,
    keys_max: usize,
    retention_ns: u64,
    /// Store keys of expired entries, to delete with the next write.
    evicted: Vec<String>,
    /// Retries answered with the stored answer.
    replays: u64,
    /// Refused: the first request with the key is still running (409).
    refused_in_flight: u64,
    /// Refused: the key came with another body (422).
    refused_other_body: u64,
}

/// An idempotency key as stored (table [`RecordTable::Idempotency`]), under
/// [`stored_key`] of its scope.
#[derive(Debug, Serialize, Deserialize)]
struct StoredIdem {
    api_key: String,
    key: String,
    fingerprint: String,
    created_ns: u64,
    payment_id: Option<u64>,
    /// The answer; absent while in flight.
    status: Option<u16>,
    body: Option<String>,
}

/// The store key of a scope: a digest, so any header text fits the store's key rules.
fn stored_key(scope: &(String, String)) -> String {
    let mut h = Sha256::new();
    h.update(scope.0.as_bytes());
    h.update(b"\n");
    h.update(scope.1.as_bytes());
    hex(&h.finalize())
}

/// What the work of a request needs to store its idempotency key with its payment.
struct Stamp {
    scope: (String, String),
    fingerprint: [u8; 32],
    created_ns: u64,
    evicted: Vec<String>,
}

impl Stamp {
    /// The key's record after `p` changed (in flight while `p` is at the rails, else answered
    /// with `p`, as the handler answers), and the deletes of expired keys.
    fn records(&self, p: &Payment) -> Vec<RecordWrite> {
        let answered = p.status != Status::Processing;
        let stored = StoredIdem {
            api_key: self.scope.0.clone(),
            key: self.scope.1.clone(),
            fingerprint: hex(&self.fingerprint),
            created_ns: self.created_ns,
            payment_id: Some(p.id),
            status: answered.then_some(StatusCode::CREATED.as_u16()),
            body: answered.then(|| view(p).to_string()),
        };
        let mut v = vec![RecordWrite {
            table: RecordTable::Idempotency,
            key: stored_key(&self.scope),
            value: Some(serde_json::to_vec(&stored).expect("serializes")),
        }];
        v.extend(self.evicted.iter().map(|k| RecordWrite {
            table: RecordTable::Idempotency,
            key: k.clone(),
            value: None,
        }));
        v
    }
}

enum Begin {
    Run,
    Replay(StatusCode, Bytes),
    Refuse(ApiError),
}

impl Idempotency {
    fn begin(&mut self, scope: (String, String), fingerprint: [u8; 32], now_ns: u64) -> Begin {
        while let Some((created, front)) = self.order.front() {
            let entry = self.map.get(front).filter(|e| e.created_ns == *created);
            // An expired key still in flight stays (and so do the keys behind it) until its
            // answer is stored: every request finishes, a panicked one with a 500.
            if now_ns.saturating_sub(*created) < self.retention_ns
                || entry.is_some_and(|e| matches!(e.slot, Slot::InFlight))
            {
                break;
            }
            let stored = entry.is_some();
            let (_, scope) = self.order.pop_front().expect("front exists");
            if stored {
                self.evicted.push(stored_key(&scope));
                self.map.remove(&scope);
            }
        }
        if let Some(e) = self.map.get(&scope) {
            if e.fingerprint != fingerprint {
                self.refused_other_body += 1;
                return Begin::Refuse(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Idempotency-Key",
                    "was used with a different request body".into(),
                ));
            }
            return match &e.slot {
                Slot::InFlight => {
                    self.refused_in_flight += 1;
                    Begin::Refuse(ApiError::new(
                        StatusCode::CONFLICT,
                        "Idempotency-Key",
                        "a request with this key is still in flight".into(),
                    ))
                }
                Slot::Done(status, body) => {
                    self.replays += 1;
                    Begin::Replay(*status, body.clone())
                }
            };
        }
        if self.map.len() >= self.keys_max {
            return Begin::Refuse(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Idempotency-Key",
                format!("the table holds its maximum of {} keys", self.keys_max),
            ));
        }
        self.order.push_back((now_ns, scope.clone()));
        self.map.insert(scope, IdemEntry { fingerprint, created_ns: now_ns, slot: Slot::InFlight });
        Begin::Run
    }

    fn finish(&mut self, scope: &(String, String), status: StatusCode, body: Bytes) {
        if let Some(e) = self.map.get_mut(scope) {
            e.slot = Slot::Done(status, body);
        }
    }
}

/// Group commit: the payment steps of concurrent requests, applied and staged in the
/// settlement one after another, made durable by one transaction. A request whose step is not
/// yet durable either waits for the commit in progress or, when none is, commits everything
/// staged so far itself (the leader), so a commit covers every step staged while the previous
/// one was being written: one fsync for many under load, one per step when alone.
struct GroupCommit {
    /// Steps staged so far (bumped by the core under the settlement's lock).
    staged: Arc<AtomicU64>,
    state: Mutex<GroupState>,
    done: Condvar,
}

#[derive(Default)]
struct GroupState {
    /// Steps durable so far.
    durable: u64,
    /// A leader is committing.
    leading: bool,
    /// The settlement's refused commits, as the last leader saw them after its commit.
    failures: u64,
    /// The last refusal's text.
    last_error: Option<String>,
    /// Commits made, and steps they covered (for the stats).
    commits: u64,
    steps: u64,
}

/// A step staged in the settlement, to wait for.
#[derive(Clone, Copy, Debug)]
struct Staged {
    /// Its number ([`Payments::last_step`]).
    step: u64,
    /// The settlement's refused commits when it was staged.
    failures: u64,
}

/// Refuses new payment work once the settlement has refused a commit: what that commit carried
/// is lost from the store but not from memory, so anything staged after it could be written
/// over a gap (a payment id missing, balances counting lost postings). Fail closed until a
/// restart rebuilds memory from the store.
fn refuse_after_store_failure<S: Store>(s: &settlement::Settlement<S>) -> Result<(), ApiError> {
    if s.commit_failures() > 0 {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server",
            "payments stopped: the ledger store refused a commit; restart serve".into(),
        ));
    }
    Ok(())
}

impl Staged {
    fn of<S: Store>(core: &Payments, s: &settlement::Settlement<S>) -> Staged {
        Staged { step: core.last_step(), failures: s.commit_failures() }
    }
}

impl GroupCommit {
    /// Returns once `staged` is durable, committing as the leader when no one is. Any commit
    /// refused after it was staged (this leader's, or another writer's of the settlement, such
    /// as the trade follower or the webhook worker, which take what is staged with theirs) may
    /// have carried it: then it is answered as a server error.
    fn wait<S: Store>(
        &self,
        settlement: &settlement::api::Shared<S>,
        staged: Staged,
    ) -> Result<(), ApiError> {
        let mut st = self.state.lock().expect("group commit lock");
        loop {
            if st.durable >= staged.step {
                if st.failures > staged.failures {
                    return Err(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server",
                        format!(
                            "ledger store: a commit was refused after this request's step: {}",
                            st.last_error.as_deref().unwrap_or("(by another writer)")
                        ),
                    ));
                }
                return Ok(());
            }
            if st.leading {
                st = self.done.wait(st).expect("group commit lock");
                continue;
            }
            st.leading = true;
            drop(st);
            let (upto, result, failures) = {
                let mut s = settlement.lock().expect("settlement lock");
                // Read under the settlement's lock: every step staged is counted, and none
                // counted is still being staged.
                let upto = self.staged.load(Ordering::SeqCst);
                let result = s.commit_records();
                (upto, result, s.commit_failures())
            };
            st = self.state.lock().expect("group commit lock");
            st.leading = false;
            st.failures = st.failures.max(failures);
            if let Err(e) = result {
                st.last_error = Some(e.to_string());
            }
            st.commits += 1;
            st.steps += upto.saturating_sub(st.durable);
            st.durable = st.durable.max(upto);
            self.done.notify_all();
        }
    }

    fn durable(&self) -> u64 {
        self.state.lock().expect("group commit lock").durable
    }
}

/// Everything the handlers share.
pub struct Service<S: Store> {
    settlement: settlement::api::Shared<S>,
    core: Mutex<Payments>,
    rails: Arc<Rails>,
    group: GroupCommit,
    idempotency: Mutex<Idempotency>,
    keys: Vec<ApiKey>,
    webhooks: WebhookSender,
    clock: Clock,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The webhook worker thread.
    #[error("payments: webhook worker: {0}")]
    Thread(#[from] std::io::Error),
    /// The stored payment records.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The stored idempotency keys.
    #[error("payments: stored idempotency key {key}: {detail}")]
    Idempotency {
        /// Its store key.
        key: String,
        /// What is wrong.
        detail: String,
    },
}

impl<S: Store + Send + 'static> Service<S> {
    /// The service over the shared settlement, with `connector` as the rails.
    pub fn start(
        config: &PaymentsConfig,
        settlement: settlement::api::Shared<S>,
        connector: Box<dyn Connector>,
        clock: Clock,
    ) -> Result<Arc<Service<S>>, StartError> {
        let mut s = settlement.lock().expect("settlement lock");
        let mut core = Payments::new(config, &mut s, connector)?;
        let retention_ns = config.idempotency_retention_s.saturating_mul(1_000_000_000);
        let idempotency =
            load_idempotency(&mut s, &core, config.idempotency_keys_max, retention_ns, clock())?;
        drop(s);
        let keys = config
            .api_keys
            .iter()
            .map(|k| ApiKey {
                id: k.id.clone(),
                account: k.account.clone(),
                salt: unhex(&k.salt).expect("validated hex"),
                hash: unhex(&k.sha256).expect("validated hex"),
            })
            .collect();
        // The worker stores each attempt in a transaction of its own.
        let persist: Persist = {
            let settlement = Arc::clone(&settlement);
            Arc::new(move |d| {
                let mut s = settlement.lock().expect("settlement lock");
                s.stage_record(d.record());
                s.commit_records().map_err(|e| e.to_string())
            })
        };
        let webhooks = WebhookSender::start(
            config.webhooks.clone(),
            config.delivery,
            config.webhook_breaker,
            core.take_stored_deliveries(),
            persist,
        )?;
        // Payments a stop interrupted were finished while opening, each committed at once;
        // from here on, steps wait for a group commit.
        let staged = core.defer_commits();
        let group = GroupCommit { staged, state: Mutex::new(GroupState::default()), done: Condvar::new() };
        let rails = core.rails();
        let svc = Arc::new(Service {
            settlement,
            rails,
            group,
            core: Mutex::new(core),
            idempotency: Mutex::new(idempotency),
            keys,
            webhooks,
            clock,
        });
        // Payments a stop interrupted were finished while opening: announce them.
        announce(&svc);
        Ok(svc)
    }

    /// The account an API key may act for: `Ok(None)` for an operator key; `Err` for a
    /// missing or unknown key (for other satellites' routes, e.g. the ledger's reads).
    pub fn key_account(&self, headers: &HeaderMap) -> Result<Option<String>, (StatusCode, Value)> {
        authenticate(self, headers).map(|k| k.account.clone()).map_err(|e| {
            let body = json!({ "error": e.message, "field": e.field });
            (e.status, body)
        })
    }

    /// Group commits made since start, and the payment steps they made durable (steps per
    /// commit is the batching).
    pub fn group_commits(&self) -> (u64, u64) {
        let g = self.group.state.lock().expect("group commit lock");
        (g.commits, g.steps)
    }

    /// The webhook delivery records.
    pub fn deliveries(&self) -> Arc<Mutex<DeliveryLog>> {
        self.webhooks.log()
    }

    /// The service's counters and breaker states now: each of its locks taken in turn,
    /// briefly (for a metrics copy, not per request).
    pub fn stats(&self) -> PaymentsStats {
        let (replays, refused_in_flight, refused_other_body) = {
            let t = self.idempotency.lock().expect("idempotency lock");
            (t.replays, t.refused_in_flight, t.refused_other_body)
        };
        let (finals, rails_breaker) = {
            let core = self.core.lock().expect("payments lock");
            (core.finals(), core.breaker().state)
        };
        let log = self.webhooks.log();
        let log = log.lock().expect("delivery log");
        PaymentsStats {
            replays,
            refused_in_flight,
            refused_other_body,
            finals,
            rails_breaker,
            webhook_breaker: log.breaker().map_or(BreakerState::Closed, |b| b.state),
            webhooks: log.outcomes(),
        }
    }
}

/// What [`Service::stats`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentsStats {
    /// Retries answered with the stored answer of their Idempotency-Key.
    pub replays: u64,
    /// Requests refused with 409: their key's first request is still running.
    pub refused_in_flight: u64,
    /// Requests refused with 422: their key came with another body.
    pub refused_other_body: u64,
    /// Final statuses announced, by [`Status::index`].
    pub finals: [u64; Status::ALL.len()],
    /// The rails breaker.
    pub rails_breaker: BreakerState,
    /// The webhook delivery breaker (closed before the first delivery).
    pub webhook_breaker: BreakerState,
    /// Webhook deliveries finished: delivered, failed, dropped.
    pub webhooks: crate::webhook::DeliveryOutcomes,
}

/// The stored idempotency keys, as the in-memory table: expired answered ones deleted, and
/// in-flight ones whose payment was finished while opening answered with it.
fn load_idempotency<S: Store>(
    s: &mut settlement::Settlement<S>,
    core: &Payments,
    keys_max: usize,
    retention_ns: u64,
    now_ns: u64,
) -> Result<Idempotency, StartError> {
    let mut rows = Vec::new();
    let corrupt = |key: &str, detail: String| StartError::Idempotency { key: key.to_string(), detail };
    let stored = s.load_records(RecordTable::Idempotency).map_err(|e| corrupt("(all)", e.to_string()))?;
    for (key, value) in stored {
        let mut r: StoredIdem = serde_json::from_slice(&value).map_err(|e| corrupt(&key, e.to_string()))?;
        let scope = (r.api_key.clone(), r.key.clone());
        let fingerprint: [u8; 32] = unhex(&r.fingerprint)
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| corrupt(&key, "fingerprint is not 32 bytes of hex".into()))?;
        if r.status.is_none() {
            match r.payment_id.and_then(|id| core.get(id)).filter(|p| p.status != Status::Processing) {
                Some(p) => {
                    r.status = Some(StatusCode::CREATED.as_u16());
                    r.body = Some(view(p).to_string());
                    let value = serde_json::to_vec(&r).expect("serializes");
                    s.stage_record(RecordWrite {
                        table: RecordTable::Idempotency,
                        key: key.clone(),
                        value: Some(value),
                    });
                }
                None => {
                    return Err(corrupt(
                        &key,
                        format!("in flight on payment {:?}, which is not final", r.payment_id),
                    ))
                }
            }
        }
        if now_ns.saturating_sub(r.created_ns) >= retention_ns {
            s.stage_record(RecordWrite { table: RecordTable::Idempotency, key, value: None });
            continue;
        }
        let status = r.status.and_then(|c| StatusCode::from_u16(c).ok()).unwrap_or(StatusCode::CREATED);
        let body = Bytes::from(r.body.unwrap_or_default());
        rows.push((
            r.created_ns,
            scope,
            IdemEntry { fingerprint, created_ns: r.created_ns, slot: Slot::Done(status, body) },
        ));
    }
    s.commit_records().map_err(|e| corrupt("(commit)", e.to_string()))?;
    rows.sort_by_key(|r| r.0);
    let mut table = Idempotency {
        map: FxHashMap::default(),
        order: VecDeque::new(),
        keys_max,
        retention_ns,
        evicted: Vec::new(),
        replays: 0,
        refused_in_flight: 0,
        refused_other_body: 0,
    };
    for (created_ns, scope, entry) in rows {
        table.order.push_back((created_ns, scope.clone()));
        table.map.insert(scope, entry);
    }
    Ok(table)
}

/// The routes: `POST /v1/deposits`, `/v1/withdrawals`, `/v1/payments/{id}/refunds`;
/// `GET /v1/payments`, `/v1/payments/{id}`, `/v1/webhooks/deliveries`, `/v1/breakers`,
/// `/openapi/payments.json`.
pub fn router<S: Store + Send + 'static>(service: Arc<Service<S>>) -> Router {
    Router::new()
        .route("/v1/deposits", post(deposit::<S>))
        .route("/v1/withdrawals", post(withdrawal::<S>))
        .route("/v1/payments/{id}/refunds", post(refund::<S>))
        .route("/v1/payments", get(list::<S>))
        .route("/v1/payments/{id}", get(one::<S>))
        .route("/v1/webhooks/deliveries", get(deliveries::<S>))
        .route("/v1/breakers", get(breakers::<S>))
        .route("/openapi/payments.json", get(|| async { axum::Json(openapi_document()) }))
        .with_state(service)
}

/// A refused request: status and a JSON body naming the field.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    field: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, field: &'static str, message: String) -> ApiError {
        ApiError { status, field, message }
    }

    fn parts(&self) -> (StatusCode, Bytes) {
        let body = json!({ "error": self.message, "field": self.field });
        (self.status, Bytes::from(body.to_string()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.parts())
    }
}

impl From<PaymentsError> for ApiError {
    fn from(e: PaymentsError) -> ApiError {
        let message = e.to_string();
        match (&e, e.field()) {
            (PaymentsError::NotFound(_), Some(f)) => ApiError::new(StatusCode::NOT_FOUND, f, message),
            (_, Some(f)) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, f, message),
            (PaymentsError::Full(_), None) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "payments", message)
            }
            (_, None) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server", message),
        }
    }
}

fn json_response((status, body): (StatusCode, Bytes)) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn authenticate<'a, S: Store>(svc: &'a Service<S>, headers: &HeaderMap) -> Result<&'a ApiKey, ApiError> {
    let unauthorized =
        || ApiError::new(StatusCode::UNAUTHORIZED, "Authorization", "missing or unknown API key".into());
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    svc.keys
        .iter()
        .find(|k| {
            let mut h = Sha256::new();
            h.update(&k.salt);
            h.update(presented.as_bytes());
            let got = h.finalize();
            // Constant time: no early exit on the first differing byte.
            got.len() == k.hash.len() && got.iter().zip(&k.hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        })
        .ok_or_else(unauthorized)
}

fn may_see(key: &ApiKey, account: &str) -> bool {
    key.account.as_deref().is_none_or(|a| a == account)
}

/// The work of a mutating request, run on the blocking pool.
type Work<S> = fn(&Service<S>, &ApiKey, &Value, &Stamp) -> Result<(StatusCode, Value), ApiError>;

/// Runs a mutating request under its idempotency key.
async fn idempotent<S: Store + Send + 'static>(
    svc: Arc<Service<S>>,
    headers: HeaderMap,
    route: String,
    body: Bytes,
    work: Work<S>,
) -> Response {
    let key = match authenticate(&svc, &headers) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let idem_key = match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(k) if !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_LEN_MAX => k.to_string(),
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key",
                format!("header required, 1 to {IDEMPOTENCY_KEY_LEN_MAX} characters"),
            )
            .into_response()
        }
    };
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update(b"\n");
    h.update(&body);
    let fingerprint: [u8; 32] = h.finalize().into();
    let scope = (key.id.clone(), idem_key);
    let now = (svc.clock)();
    let evicted = {
        let mut table = svc.idempotency.lock().expect("idempotency lock");
        match table.begin(scope.clone(), fingerprint, now) {
            Begin::Run => std::mem::take(&mut table.evicted),
            Begin::Replay(status, body) => return json_response((status, body)),
            Begin::Refuse(e) => return e.into_response(),
        }
    };
    let stamp = Stamp { scope: scope.clone(), fingerprint, created_ns: now, evicted };
    let key_index = svc.keys.iter().position(|k| k.id == key.id).expect("a key of the service");
    let task = tokio::task::spawn_blocking({
        let svc = Arc::clone(&svc);
        move || {
            let key = &svc.keys[key_index];
            let parsed = if body.len() > BODY_LEN_MAX {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body",
                    format!("over {BODY_LEN_MAX} bytes"),
                ))
            } else {
                serde_json::from_slice::<Value>(&body)
                    .ok()
                    .filter(Value::is_object)
                    .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "body", "not a JSON object".into()))
            };
            match parsed.and_then(|v| work(&svc, key, &v, &stamp)) {
                Ok((status, v)) => (status, Bytes::from(v.to_string())),
                Err(e) => e.parts(),
            }
        }
    });
    let parts = match task.await {
        Ok(parts) => parts,
        Err(e) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server", format!("request failed: {e}")).parts()
        }
    };
    svc.idempotency.lock().expect("idempotency lock").finish(&scope, parts.0, parts.1.clone());
    json_response(parts)
}

fn text_field<'a>(v: &'a Value, field: &'static str) -> Result<&'a str, ApiError> {
    v.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, field, format!("{field}: required, a string")))
}

fn amount_field(v: &Value, scale: u32) -> Result<u64, ApiError> {
    // Text only: a JSON number would pass through a float on many clients.
    let text = text_field(v, "amount")?;
    settlement::parse_amount(text, scale)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "amount", format!("amount: {e}")))
}

fn asset_scale<S: Store>(svc: &Service<S>, asset: &str) -> Result<u32, ApiError> {
    let s = svc.settlement.lock().expect("settlement lock");
    let ledger = s.ledger();
    let id = ledger.asset_id(asset).ok_or_else(|| PaymentsError::UnknownAsset(asset.to_string()))?;
    Ok(ledger.asset(id).scale)
}

fn create<S: Store>(
    svc: &Service<S>,
    key: &ApiKey,
    v: &Value,
    kind: PaymentKind,
    stamp: &Stamp,
) -> Result<(StatusCode, Value), ApiError> {
    let extra = |p: &Payment| stamp.records(p);
    let account = text_field(v, "account")?;
    let asset = text_field(v, "asset")?;
    let method = text_field(v, "method")?;
    if !may_see(key, account) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account",
            format!("account: this key may not act for {account:?}"),
        ));
    }
    let amount_minor = amount_field(v, asset_scale(svc, asset)?)?;
    let now = (svc.clock)();
    // Each step holds the core and the settlement only to apply and stage; the commit that
    // makes it durable (shared with concurrent requests) and the rails call hold neither.
    let (begun, step) = {
        let mut core = svc.core.lock().expect("payments lock");
        let mut s = svc.settlement.lock().expect("settlement lock");
        refuse_after_store_failure(&s)?;
        let req = NewPayment { kind, account, asset, method, amount_minor };
        let begun = core.begin(&mut s, &req, now, &extra)?;
        (begun, Staged::of(&core, &s))
    };
    // `processing` is durable before the rails are called: a stop during the call finds it.
    svc.group.wait(&svc.settlement, step)?;
    let payment = match begun {
        Begun::Done(p) => p,
        Begun::Rails(mut f) => {
            let approved = svc.rails.call(&mut f, now);
            let now = (svc.clock)();
            let (p, step) = {
                let mut core = svc.core.lock().expect("payments lock");
                let mut s = svc.settlement.lock().expect("settlement lock");
                // Left `processing` (durable) if refused: the next start asks the rails.
                refuse_after_store_failure(&s)?;
                let p = core.complete(&mut s, f, approved, now, &extra)?;
                (p, Staged::of(&core, &s))
            };
            svc.group.wait(&svc.settlement, step)?;
            p
        }
    };
    announce(svc);
    Ok((StatusCode::CREATED, view(&payment)))
}

/// Hands the deliveries of the final statuses made durable so far to the webhook worker (a
/// status still waiting for its commit is announced by the request that commits or follows it).
fn announce<S: Store>(svc: &Service<S>) {
    let durable = svc.group.durable();
    let events = svc.core.lock().expect("payments lock").drain_events_upto(durable);
    for e in events {
        svc.webhooks.send(e.deliveries);
    }
}

fn do_deposit<S: Store>(
    svc: &Service<S>,
    key: &ApiKey,
    v: &Value,
    stamp: &Stamp,
) -> Result<(StatusCode, Value), ApiError> {
    create(svc, key, v, PaymentKind::Deposit, stamp)
}

fn do_withdrawal<S: Store>(
    svc: &Service<S>,
    key: &ApiKey,
    v: &Value,
    stamp: &Stamp,
) -> Result<(StatusCode, Value), ApiError> {
    create(svc, key, v, PaymentKind::Withdrawal, stamp)
}

fn do_refund<S: Store>(
    svc: &Service<S>,
    key: &ApiKey,
    v: &Value,
    stamp: &Stamp,
) -> Result<(StatusCode, Value), ApiError> {
    let id = v.get("id").and_then(Value::as_u64).expect("the handler sets id");
    let (payment, step) = {
        let mut core = svc.core.lock().expect("payments lock");
        let p = core.get(id).filter(|p| may_see(key, &p.account)).ok_or(PaymentsError::NotFound(id))?;
        let amount_minor = amount_field(v, p.scale)?;
        let now = (svc.clock)();
        let mut s = svc.settlement.lock().expect("settlement lock");
        refuse_after_store_failure(&s)?;
        let payment = core.refund_with(&mut s, id, amount_minor, now, &|p: &Payment| stamp.records(p))?;
        (payment, Staged::of(&core, &s))
    };
    svc.group.wait(&svc.settlement, step)?;
    announce(svc);
    Ok((StatusCode::CREATED, view(&payment)))
}

async fn deposit<S: Store + Send + 'static>(
    State(svc): State<Arc<Service<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    idempotent(svc, headers, "POST /v1/deposits".into(), body, do_deposit::<S>).await
}

async fn withdrawal<S: Store + Send + 'static>(
    State(svc): State<Arc<Service<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    idempotent(svc, headers, "POST /v1/withdrawals".into(), body, do_withdrawal::<S>).await
}

async fn refund<S: Store + Send + 'static>(
    State(svc): State<Arc<Service<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::new(StatusCode::BAD_REQUEST, "id", format!("id: {id:?} is not a payment id"))
            .into_response();
    };
    // The path id rides inside the body the work sees, and in the fingerprint's route.
    let route = format!("POST /v1/payments/{id}/refunds");
    let body = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut m)) => {
            m.insert("id".into(), json!(id));
            Bytes::from(Value::Object(m).to_string())
        }
        _ => body,
    };
    idempotent(svc, headers, route, body, do_refund::<S>).await
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    account: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

fn page(q: &PageQuery) -> Result<(u64, usize), ApiError> {
    let after = match &q.after {
        None => 0,
        Some(t) => t.parse().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, "after", format!("after: {t:?} is not an id"))
        })?,
    };
    let limit = match &q.limit {
        None => PAGE_LIMIT_DEFAULT,
        Some(t) => t.parse::<usize>().ok().filter(|l| (1..=PAGE_LIMIT_MAX).contains(l)).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "limit", format!("limit: 1 to {PAGE_LIMIT_MAX}"))
        })?,
    };
    Ok((after, limit))
}

fn scoped<'a>(key: &'a ApiKey, asked: Option<&'a str>) -> Result<Option<&'a str>, ApiError> {
    match (key.account.as_deref(), asked) {
        (Some(own), Some(a)) if own != a => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account",
            format!("account: this key may not read {a:?}"),
        )),
        (Some(own), _) => Ok(Some(own)),
        (None, a) => Ok(a),
    }
}

async fn list<S: Store + Send + 'static>(
    State(svc): State<Arc<Service<S>>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let key = authenticate(&svc, &headers)?;
    let (after, limit) = page(&q)?;
    let account = scoped(key, q.account.as_deref())?;
    let core = svc.core.lock().expect("payments lock");
    let rows: Vec<&Payment> = core.list(account, after).take(limit + 1).collect();
    let next_after = (rows.len() > limit).then(|| rows[limit - 1].id);
    let payments: Vec<Value> = rows.iter().take(limit).map(|p| view(p)).collect();
    Ok(axum::Json(json!({ "payments": payments, "next_after": next_after })).into_response())
}

async fn one<S: Store + Send + 'static>(
    State(svc): State<Arc<Service<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let key = authenticate(&svc, &headers)?;
    let id: u64 = id.parse().map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, "id", format!("id: {id:?} is not a payment id"))
    })?;
    let core = svc.core.lock().expect("payments lock");
    let p = core.get(id).ok_or(PaymentsError::NotFound(id))?;
    if !may_see(key, &p.account) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "id",
            format!("id: payment {id} belongs to another account"),
        ));
    }
    Ok(axum::Json(view(p)).into_response())
}

async fn deliveries<S: Store + Send + 'static>(
    State(svc): State<Arc<Service<S>>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let key = authenticate(&svc, &headers)?;
    let (after, limit) = page(&q)?;
    let account = scoped(key, q.account.as_deref())?;
    let log = svc.webhooks.log();
    let log = log.lock().expect("delivery log");
    let rows: Vec<Value> = log
        .records()
        .filter(|d| d.id > after && account.is_none_or(|a| d.account == a))
        .take(limit)
        .map(|d| json!(d))
        .collect();
    let (store_errors, last_store_error) = log.store_errors();
    Ok(axum::Json(json!({
        "deliveries": rows,
        "breaker": log.breaker(),
        "store_errors": store_errors,
        "last_store_error": last_store_error,
    }))
    .into_response())
}

async fn breakers<S: Store + Send + 'static>(
    State(svc): State<Arc<Service<S>>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&svc, &headers)?;
    let rails = svc.core.lock().expect("payments lock").breaker();
    let webhooks = svc.webhooks.log().lock().expect("delivery log").breaker();
    Ok(axum::Json(json!({ "rails": rails, "webhooks": webhooks })).into_response())
}

/// The OpenAPI 3.1 document of these routes.
pub fn openapi_document() -> Value {
    let err = json!({ "description": "refused; the body names the field",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let payment = json!({ "description": "the payment",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Payment" } } } });
    let idem = json!({ "name": "Idempotency-Key", "in": "header", "required": true, "schema": { "type": "string", "maxLength": IDEMPOTENCY_KEY_LEN_MAX } });
    let id = json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } });
    let create = |summary: &str| {
        json!({ "post": {
        "summary": summary, "parameters": [idem],
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NewPayment" } } } },
        "responses": { "201": payment, "400": err, "401": err, "403": err, "409": err, "422": err, "503": err } } })
    };
    let paging = json!([
        { "name": "account", "in": "query", "schema": { "type": "string" } },
        { "name": "after", "in": "query", "schema": { "type": "integer" } },
        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": PAGE_LIMIT_MAX } } ]);
    json!({
        "openapi": "3.1.0",
        "info": { "title": "exchange payments", "version": env!("CARGO_PKG_VERSION") },
        "components": {
            "securitySchemes": { "apiKey": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "field"],
                    "properties": { "error": { "type": "string" }, "field": { "type": "string" } } },
                "NewPayment": { "type": "object", "required": ["account", "asset", "amount", "method"], "properties": {
                    "account": { "type": "string" }, "asset": { "type": "string" },
                    "amount": { "type": "string", "description": "positive decimal, at most the asset's decimals" },
                    "method": { "type": "string", "description": "card, bank_transfer, upi, wallet (as configured)" } } },
                "Payment": { "type": "object", "properties": {
                    "id": { "type": "integer" }, "kind": { "enum": ["deposit", "withdrawal"] },
                    "account": { "type": "string" }, "asset": { "type": "string" }, "method": { "type": "string" },
                    "amount": { "type": "string" }, "fee": { "type": "string" }, "refunded": { "type": "string" },
                    "status": { "enum": ["pending", "processing", "succeeded", "failed", "partially_refunded", "refunded"] },
                    "refunds": { "type": "array" }, "history": { "type": "array" },
                    "fraud": { "type": "object", "properties": { "score_milli": { "type": "integer" },
                        "decline_above_milli": { "type": "integer" }, "declined": { "type": "boolean" }, "rules": { "type": "array" } } },
                    "failure": { "type": ["string", "null"] }, "rail_reference": { "type": ["string", "null"] } } }
            }
        },
        "security": [{ "apiKey": [] }],
        "paths": {
            "/v1/deposits": create("deposit into an account"),
            "/v1/withdrawals": create("withdraw from an account"),
            "/v1/payments/{id}/refunds": { "post": { "summary": "refund part or all of a deposit", "parameters": [id, idem],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object",
                    "required": ["amount"], "properties": { "amount": { "type": "string" } } } } } },
                "responses": { "201": payment, "400": err, "401": err, "404": err, "409": err, "422": err } } },
            "/v1/payments": { "get": { "summary": "payments, paged by id", "parameters": paging,
                "responses": { "200": { "description": "{payments, next_after}" }, "400": err, "401": err, "403": err } } },
            "/v1/payments/{id}": { "get": { "summary": "one payment", "parameters": [id],
                "responses": { "200": payment, "401": err, "403": err, "404": err } } },
            "/v1/webhooks/deliveries": { "get": { "summary": "webhook deliveries and their breaker", "parameters": paging,
                "responses": { "200": { "description": "{deliveries, breaker}" }, "401": err, "403": err } } },
            "/v1/breakers": { "get": { "summary": "circuit breakers of the rails and of webhook deliveries",
                "responses": { "200": { "description": "{rails, webhooks}" }, "401": err } } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_NS: u64 = 86_400 * 1_000_000_000;

    fn table(keys_max: usize) -> Idempotency {
        Idempotency {
            map: FxHashMap::default(),
            order: VecDeque::new(),
            keys_max,
            retention_ns: DAY_NS,
            evicted: Vec::new(),
            replays: 0,
            refused_in_flight: 0,
            refused_other_body: 0,
        }
    }

    fn scope(k: &str) -> (String, String) {
        ("alice-1".into(), k.into())
    }

    #[test]
    fn keys_replay_for_a_day_then_expire_and_in_flight_ones_stay() {
        let mut t = table(2);
        assert!(matches!(t.begin(scope("a"), [1; 32], 0), Begin::Run));
        assert!(matches!(
            t.begin(scope("a"), [1; 32], 1),
            Begin::Refuse(ApiError { status: StatusCode::CONFLICT, .. })
        ));
        assert!(matches!(
            t.begin(scope("a"), [2; 32], 1),
            Begin::Refuse(ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, .. })
        ));
        t.finish(&scope("a"), StatusCode::CREATED, Bytes::from_static(b"{\"id\":1}"));
        match t.begin(scope("a"), [1; 32], DAY_NS - 1) {
            Begin::Replay(status, body) => {
                assert_eq!((status, &body[..]), (StatusCode::CREATED, &b"{\"id\":1}"[..]))
            }
            _ => panic!("a stored key replays within 24 h"),
        }
        // Another key still in flight, then the table is full.
        assert!(matches!(t.begin(scope("b"), [3; 32], 10), Begin::Run));
        assert!(matches!(
            t.begin(scope("c"), [4; 32], 11),
            Begin::Refuse(ApiError { status: StatusCode::SERVICE_UNAVAILABLE, .. })
        ));
        // A day later "a" has expired and goes; "b", expired but still in flight, stays.
        assert!(matches!(t.begin(scope("c"), [4; 32], DAY_NS + 10), Begin::Run));
        assert!(matches!(
            t.begin(scope("b"), [3; 32], DAY_NS + 10),
            Begin::Refuse(ApiError { status: StatusCode::CONFLICT, .. })
        ));
        // Once answered it expires too, making room.
        t.finish(&scope("b"), StatusCode::CREATED, Bytes::from_static(b"{}"));
        assert!(matches!(t.begin(scope("d"), [5; 32], DAY_NS + 11), Begin::Run));
        assert!(matches!(t.begin(scope("a"), [1; 32], DAY_NS + 11), Begin::Refuse(_)), "c and d fill it");
        // The counters: one replay; 409 twice ("a", then "b" in flight); 422 once. The 503s
        // for a full table are neither.
        assert_eq!((t.replays, t.refused_in_flight, t.refused_other_body), (1, 2, 1));
    }
}
