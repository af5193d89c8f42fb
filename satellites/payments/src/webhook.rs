//! Signed webhooks on each final status, delivered by one worker thread from a bounded queue,
//! retried with exponential backoff behind a circuit breaker; every delivery's state is kept
//! (bounded) for `GET /v1/webhooks/deliveries`.
//!
//! Signature: `X-Payments-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//! (the timestamp is signed with the body so that a captured delivery cannot be replayed
//! later with a fresh timestamp). [`verify`] is what a receiver runs.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use serde::Serialize;

use crate::breaker::{Breaker, BreakerConfig, BreakerView};
use crate::config::{DeliveryConfig, WebhookEndpoint};

/// Header carrying the timestamp and signature.
pub const SIGNATURE_HEADER: &str = "X-Payments-Signature";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// `hex(HMAC-SHA256(secret, "<ts>.<body>"))`.
pub fn signature(secret: &[u8], ts_s: u64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(ts_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// The header value for `body` at `ts_s`.
pub fn header_value(secret: &[u8], ts_s: u64, body: &[u8]) -> String {
    format!("t={ts_s},v1={}", signature(secret, ts_s, body))
}

/// Checks a header value against `body` in constant time; returns its timestamp when valid.
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> Option<u64> {
    let mut ts = None;
    let mut sig = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => ts = v.parse::<u64>().ok(),
            Some(("v1", v)) => sig = unhex(v),
            _ => {}
        }
    }
    let (ts, sig) = (ts?, sig?);
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).ok().map(|_| ts)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex text to bytes (`None` when not hex).
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting in the queue or for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
    /// The queue was full: never attempted.
    Dropped,
}

/// One delivery (one event to one endpoint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Sequence, from 1.
    pub id: u64,
    /// The payment.
    pub payment_id: u64,
    /// Its account (for scoping the listing).
    pub account: String,
    /// The status announced.
    pub status: &'static str,
    /// Endpoint URL.
    pub url: String,
    /// State.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's HTTP status or error.
    pub last_result: Option<String>,
}

/// The delivery records, shared by the worker and the API.
#[derive(Debug, Default)]
pub struct DeliveryLog {
    records: VecDeque<Delivery>,
    kept_max: usize,
    next_id: u64,
    breaker: Option<BreakerView>,
    outcomes: DeliveryOutcomes,
}

/// Deliveries finished since start, by how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryOutcomes {
    /// The endpoint answered 2xx.
    pub delivered: u64,
    /// Every attempt failed.
    pub failed: u64,
    /// The queue was full: never attempted.
    pub dropped: u64,
}

impl DeliveryOutcomes {
    fn count(&mut self, state: DeliveryState) {
        match state {
            DeliveryState::Pending => {}
            DeliveryState::Delivered => self.delivered += 1,
            DeliveryState::Failed => self.failed += 1,
            DeliveryState::Dropped => self.dropped += 1,
        }
    }
}

impl DeliveryLog {
    /// Records, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &Delivery> {
        self.records.iter()
    }

    /// The delivery breaker.
    pub fn breaker(&self) -> Option<BreakerView> {
        self.breaker
    }

    /// Deliveries finished since start (also those whose records were since let go).
    pub fn outcomes(&self) -> DeliveryOutcomes {
        self.outcomes
    }

    /// Sets delivery `id`'s final state and counts it.
    fn finish(&mut self, id: u64, state: DeliveryState, f: impl FnOnce(&mut Delivery)) {
        self.outcomes.count(state);
        self.update(id, |d| {
            d.state = state;
            f(d);
        });
    }

    fn add(&mut self, mut d: Delivery) -> u64 {
        self.next_id += 1;
        d.id = self.next_id;
        if self.records.len() >= self.kept_max.max(1) {
            self.records.pop_front();
        }
        self.records.push_back(d);
        self.next_id
    }

    fn update(&mut self, id: u64, f: impl FnOnce(&mut Delivery)) {
        if let Some(d) = self.records.iter_mut().rev().find(|d| d.id == id) {
            f(d);
        }
    }
}

struct Job {
    delivery_id: u64,
    endpoint: usize,
    body: Vec<u8>,
}

/// The sending side: enqueues deliveries for the worker thread.
pub struct WebhookSender {
    endpoints: Arc<Vec<WebhookEndpoint>>,
    queue: Option<SyncSender<Job>>,
    log: Arc<Mutex<DeliveryLog>>,
    worker: Option<JoinHandle<()>>,
}

impl WebhookSender {
    /// Starts the worker thread (when there are endpoints).
    pub fn start(
        endpoints: Vec<WebhookEndpoint>,
        delivery: DeliveryConfig,
        breaker: BreakerConfig,
    ) -> std::io::Result<WebhookSender> {
        let log = Arc::new(Mutex::new(DeliveryLog { kept_max: delivery.kept_max, ..DeliveryLog::default() }));
        let endpoints = Arc::new(endpoints);
        if endpoints.is_empty() {
            return Ok(WebhookSender { endpoints, queue: None, log, worker: None });
        }
        let (tx, rx) = sync_channel(delivery.queue_max);
        let worker = std::thread::Builder::new().name("payments-webhooks".into()).spawn({
            let (endpoints, log) = (Arc::clone(&endpoints), Arc::clone(&log));
            move || worker(rx, &endpoints, delivery, Breaker::new(breaker), &log)
        })?;
        Ok(WebhookSender { endpoints, queue: Some(tx), log, worker: Some(worker) })
    }

    /// The delivery records.
    pub fn log(&self) -> Arc<Mutex<DeliveryLog>> {
        Arc::clone(&self.log)
    }

    /// Queues `body` (the event JSON) for every endpoint; a full queue records the delivery
    /// as dropped rather than blocking the request.
    pub fn send(&self, payment_id: u64, account: &str, status: &'static str, body: &[u8]) {
        let Some(queue) = &self.queue else { return };
        for (endpoint, e) in self.endpoints.iter().enumerate() {
            let delivery = Delivery {
                id: 0,
                payment_id,
                account: account.to_string(),
                status,
                url: e.url.clone(),
                state: DeliveryState::Pending,
                attempts: 0,
                last_result: None,
            };
            let delivery_id = self.log.lock().expect("delivery log").add(delivery);
            let job = Job { delivery_id, endpoint, body: body.to_vec() };
            if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) = queue.try_send(job) {
                self.log.lock().expect("delivery log").finish(job.delivery_id, DeliveryState::Dropped, |d| {
                    d.last_result = Some("queue full".into());
                });
            }
        }
    }
}

impl Drop for WebhookSender {
    fn drop(&mut self) {
        // Closing the queue ends the worker after what is queued.
        self.queue.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn worker(
    rx: Receiver<Job>,
    endpoints: &[WebhookEndpoint],
    config: DeliveryConfig,
    mut breaker: Breaker,
    log: &Mutex<DeliveryLog>,
) {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_millis(config.timeout_ms)).build();
    while let Ok(job) = rx.recv() {
        let endpoint = &endpoints[job.endpoint];
        let mut attempt = 0;
        let final_state = loop {
            // An open breaker: wait out its cool-down instead of spending an attempt.
            while !breaker.allow(now_ns()) {
                let wait_ns = breaker.open_until_ns().saturating_sub(now_ns()).max(1_000_000);
                std::thread::sleep(Duration::from_nanos(wait_ns));
            }
            attempt += 1;
            let ts_s = now_ns() / 1_000_000_000;
            let result = agent
                .post(&endpoint.url)
                .set("Content-Type", "application/json")
                .set(SIGNATURE_HEADER, &header_value(endpoint.secret.as_bytes(), ts_s, &job.body))
                .send_bytes(&job.body);
            let (ok, text) = match result {
                Ok(r) => (true, r.status().to_string()),
                Err(ureq::Error::Status(code, _)) => (false, code.to_string()),
                Err(e) => (false, e.to_string()),
            };
            breaker.record(ok, now_ns());
            {
                let mut log = log.lock().expect("delivery log");
                log.breaker = Some(breaker.view());
                log.update(job.delivery_id, |d| {
                    d.attempts = attempt;
                    d.last_result = Some(text);
                });
            }
            if ok {
                break DeliveryState::Delivered;
            }
            if attempt >= config.attempts_max.max(1) {
                break DeliveryState::Failed;
            }
            let backoff = config.backoff_ms.saturating_mul(1 << (attempt - 1).min(20));
            std::thread::sleep(Duration::from_millis(backoff));
        };
        log.lock().expect("delivery log").finish(job.delivery_id, final_state, |_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_any_change_breaks_them() {
        let h = header_value(b"whsec", 1_700_000_000, b"{\"a\":1}");
        assert_eq!(verify(b"whsec", &h, b"{\"a\":1}"), Some(1_700_000_000));
        assert_eq!(verify(b"other", &h, b"{\"a\":1}"), None);
        assert_eq!(verify(b"whsec", &h, b"{\"a\":2}"), None);
        let replayed = h.replace("t=1700000000", "t=1700000001");
        assert_eq!(verify(b"whsec", &replayed, b"{\"a\":1}"), None);
        // RFC 4231 test case 2 checks the HMAC itself: key "Jefe".
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
