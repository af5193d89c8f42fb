//! Signed webhooks on each final status, delivered by one worker thread, retried with
//! exponential backoff behind a circuit breaker.
//!
//! Deliveries are durable: each is a record of the ledger's store (table
//! [`RecordTable::WebhookDeliveries`]), written by the core in the same transaction as the
//! status it announces, rewritten by the worker after every attempt (attempts, next attempt
//! time, last HTTP status, state), and read back at start-up, where the pending ones resume at
//! their stored next-attempt time with the attempts they already had. Delivery is at least
//! once: a stop between an attempt and its record repeats the attempt, so every request carries
//! the delivery id in [`DELIVERY_HEADER`] for a receiver to drop repeats.
//!
//! Signature: `X-Payments-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//! (the timestamp is signed with the body so that a captured delivery cannot be replayed
//! later with a fresh timestamp). [`verify`] is what a receiver runs.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use settlement::{RecordTable, RecordWrite};

use crate::breaker::{Breaker, BreakerConfig, BreakerView};
use crate::config::{DeliveryConfig, WebhookEndpoint};

/// Header carrying the timestamp and signature.
pub const SIGNATURE_HEADER: &str = "X-Payments-Signature";
/// Header carrying the delivery id: the same on every attempt of a delivery (and across
/// restarts), so a receiver can de-duplicate.
pub const DELIVERY_HEADER: &str = "X-Payments-Delivery";
/// Header carrying the attempt number, from 1.
pub const ATTEMPT_HEADER: &str = "X-Payments-Attempt";

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed, or its endpoint is no longer configured.
    Failed,
    /// The worker's queue was full: never attempted.
    Dropped,
}

/// One delivery (one event to one endpoint), as `GET /v1/webhooks/deliveries` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Id, from 1, never reused (also across restarts): [`DELIVERY_HEADER`].
    pub id: u64,
    /// The payment.
    pub payment_id: u64,
    /// Its account (for scoping the listing).
    pub account: String,
    /// The status announced.
    pub status: String,
    /// Endpoint URL.
    pub url: String,
    /// State.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (ns since the Unix epoch), while pending.
    pub next_attempt_ns: u64,
    /// The last attempt's HTTP status, when one came back.
    pub http_status: Option<u16>,
    /// The last attempt's HTTP status or error, as text.
    pub last_result: Option<String>,
}

/// A delivery as stored: its state and the exact body it posts (signed afresh per attempt).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDelivery {
    /// The state.
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The event JSON.
    pub body: String,
}

impl StoredDelivery {
    /// The store key of delivery `id`: zero-padded, so key order is id order.
    pub fn record_key(id: u64) -> String {
        format!("{id:020}")
    }

    /// This delivery as a record write.
    pub fn record(&self) -> RecordWrite {
        RecordWrite {
            table: RecordTable::WebhookDeliveries,
            key: StoredDelivery::record_key(self.delivery.id),
            value: Some(serde_json::to_vec(self).expect("a delivery serializes")),
        }
    }

    /// Reads a stored record back, checking it is filed under its own id.
    pub fn parse(key: &str, value: &[u8]) -> Result<StoredDelivery, String> {
        let d: StoredDelivery = serde_json::from_slice(value).map_err(|e| e.to_string())?;
        if key != StoredDelivery::record_key(d.delivery.id) {
            return Err(format!("holds delivery {}", d.delivery.id));
        }
        Ok(d)
    }
}

/// Writes a delivery's record to the store (its own transaction); the error as text.
pub type Persist = Arc<dyn Fn(&StoredDelivery) -> Result<(), String> + Send + Sync>;

/// The delivery records, shared by the worker and the API.
#[derive(Debug, Default)]
pub struct DeliveryLog {
    records: VecDeque<Delivery>,
    kept_max: usize,
    breaker: Option<BreakerView>,
    outcomes: DeliveryOutcomes,
    store_errors: u64,
    last_store_error: Option<String>,
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
    /// Records, oldest first (the last `delivery.kept_max`; the store keeps them all until the
    /// next start prunes finished ones).
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

    /// Delivery records the store refused since start, and the last refusal: such a delivery
    /// goes on in memory, and after a restart resumes from its last stored state.
    pub fn store_errors(&self) -> (u64, Option<&str>) {
        (self.store_errors, self.last_store_error.as_deref())
    }

    fn add(&mut self, d: Delivery) {
        if self.records.len() >= self.kept_max.max(1) {
            self.records.pop_front();
        }
        self.outcomes.count(d.state);
        self.records.push_back(d);
    }

    /// Replaces delivery `d.id`'s record, counting it when it just finished.
    fn set(&mut self, d: &Delivery) {
        if let Some(old) = self.records.iter_mut().rev().find(|o| o.id == d.id) {
            if old.state == DeliveryState::Pending {
                self.outcomes.count(d.state);
            }
            *old = d.clone();
        } else {
            self.outcomes.count(d.state);
        }
    }

    fn store_failed(&mut self, e: String) {
        self.store_errors += 1;
        self.last_store_error = Some(e);
    }
}

fn persist_into(persist: &Persist, log: &Mutex<DeliveryLog>, d: &StoredDelivery) {
    if let Err(e) = persist(d) {
        log.lock().expect("delivery log").store_failed(format!("delivery {}: {e}", d.delivery.id));
    }
}

/// The sending side: hands committed deliveries to the worker thread.
pub struct WebhookSender {
    queue: Option<SyncSender<StoredDelivery>>,
    log: Arc<Mutex<DeliveryLog>>,
    persist: Persist,
    worker: Option<JoinHandle<()>>,
}

impl WebhookSender {
    /// Starts the worker thread (when there are endpoints) with the `stored` deliveries (read
    /// back from the store, id order): the pending ones resume; those whose endpoint is no
    /// longer configured are failed (and stored so).
    pub fn start(
        endpoints: Vec<WebhookEndpoint>,
        delivery: DeliveryConfig,
        breaker: BreakerConfig,
        stored: Vec<StoredDelivery>,
        persist: Persist,
    ) -> std::io::Result<WebhookSender> {
        let log = Arc::new(Mutex::new(DeliveryLog { kept_max: delivery.kept_max, ..DeliveryLog::default() }));
        let mut resume = Vec::new();
        for mut d in stored {
            if d.delivery.state == DeliveryState::Pending {
                if endpoints.iter().any(|e| e.url == d.delivery.url) {
                    resume.push(d.clone());
                } else {
                    d.delivery.state = DeliveryState::Failed;
                    d.delivery.last_result = Some("endpoint no longer configured".into());
                    persist_into(&persist, &log, &d);
                }
            }
            // Counted only from here on: `outcomes` counts what finishes after this start.
            let mut log = log.lock().expect("delivery log");
            let outcomes = log.outcomes;
            log.add(d.delivery);
            log.outcomes = outcomes;
        }
        if endpoints.is_empty() {
            return Ok(WebhookSender { queue: None, log, persist, worker: None });
        }
        let (tx, rx) = sync_channel(delivery.queue_max);
        let worker = std::thread::Builder::new().name("payments-webhooks".into()).spawn({
            let (log, persist) = (Arc::clone(&log), Arc::clone(&persist));
            move || {
                Worker { endpoints, config: delivery, breaker: Breaker::new(breaker), log, persist }
                    .run(rx, resume)
            }
        })?;
        Ok(WebhookSender { queue: Some(tx), log, persist, worker: Some(worker) })
    }

    /// The delivery records.
    pub fn log(&self) -> Arc<Mutex<DeliveryLog>> {
        Arc::clone(&self.log)
    }

    /// Hands deliveries (already committed with their payment's status) to the worker; a full
    /// queue finishes one as dropped (stored so) rather than blocking the request.
    pub fn send(&self, deliveries: Vec<StoredDelivery>) {
        let Some(queue) = &self.queue else { return };
        for d in deliveries {
            self.log.lock().expect("delivery log").add(d.delivery.clone());
            if let Err(TrySendError::Full(mut d) | TrySendError::Disconnected(mut d)) = queue.try_send(d) {
                d.delivery.state = DeliveryState::Dropped;
                d.delivery.last_result = Some("queue full".into());
                persist_into(&self.persist, &self.log, &d);
                self.log.lock().expect("delivery log").set(&d.delivery);
            }
        }
    }
}

impl Drop for WebhookSender {
    fn drop(&mut self) {
        // Closing the queue ends the worker at its next wake-up; what is pending stays stored
        // and resumes at the next start.
        self.queue.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The delivering thread: deliveries by due time, one attempt at a time.
struct Worker {
    endpoints: Vec<WebhookEndpoint>,
    config: DeliveryConfig,
    breaker: Breaker,
    log: Arc<Mutex<DeliveryLog>>,
    persist: Persist,
}

impl Worker {
    fn run(mut self, rx: Receiver<StoredDelivery>, resume: Vec<StoredDelivery>) {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_millis(self.config.timeout_ms)).build();
        // By (due time, id): the earliest first, and in id order among equals.
        let mut due: BTreeMap<(u64, u64), StoredDelivery> = BTreeMap::new();
        for d in resume {
            self.schedule(&mut due, d);
        }
        loop {
            let now = now_ns();
            let wait = due.keys().next().map(|&(at, _)| at.saturating_sub(now));
            let received = match wait {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(0) => rx.try_recv().map_err(|e| match e {
                    std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                    std::sync::mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                }),
                Some(ns) => rx.recv_timeout(Duration::from_nanos(ns)),
            };
            match received {
                Ok(d) => {
                    self.schedule(&mut due, d);
                    continue;
                }
                // Stopping: the pending deliveries are stored and resume at the next start.
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let Some(entry) = due.first_entry() else { continue };
            let now = now_ns();
            if entry.key().0 > now {
                continue;
            }
            // An open breaker: wait out its cool-down instead of spending an attempt.
            if !self.breaker.allow(now) {
                let at = self.breaker.open_until_ns().max(now + 1_000_000);
                let mut d = entry.remove();
                d.delivery.next_attempt_ns = at;
                due.insert((at, d.delivery.id), d);
                continue;
            }
            let d = entry.remove();
            if let Some(d) = self.attempt(&agent, d) {
                due.insert((d.delivery.next_attempt_ns, d.delivery.id), d);
            }
        }
    }

    /// Takes `d` into the schedule; past `queue_max` pending it is dropped (and stored so).
    fn schedule(&mut self, due: &mut BTreeMap<(u64, u64), StoredDelivery>, mut d: StoredDelivery) {
        if due.len() >= self.config.queue_max.max(1) {
            d.delivery.state = DeliveryState::Dropped;
            d.delivery.last_result = Some("queue full".into());
            persist_into(&self.persist, &self.log, &d);
            self.log.lock().expect("delivery log").set(&d.delivery);
            return;
        }
        due.insert((d.delivery.next_attempt_ns, d.delivery.id), d);
    }

    /// One attempt, stored; the delivery back when it is to be tried again.
    fn attempt(&mut self, agent: &ureq::Agent, mut d: StoredDelivery) -> Option<StoredDelivery> {
        // The endpoints are fixed for the process, and stored deliveries to one no longer
        // configured were failed at start: this is only a guard.
        let Some(secret) = self.endpoints.iter().find(|e| e.url == d.delivery.url).map(|e| e.secret.clone())
        else {
            d.delivery.state = DeliveryState::Failed;
            d.delivery.last_result = Some("endpoint no longer configured".into());
            persist_into(&self.persist, &self.log, &d);
            self.log.lock().expect("delivery log").set(&d.delivery);
            return None;
        };
        let attempt = d.delivery.attempts + 1;
        let ts_s = now_ns() / 1_000_000_000;
        let result = agent
            .post(&d.delivery.url)
            .set("Content-Type", "application/json")
            .set(SIGNATURE_HEADER, &header_value(secret.as_bytes(), ts_s, d.body.as_bytes()))
            .set(DELIVERY_HEADER, &d.delivery.id.to_string())
            .set(ATTEMPT_HEADER, &attempt.to_string())
            .send_bytes(d.body.as_bytes());
        let (ok, http_status, text) = match result {
            Ok(r) => (true, Some(r.status()), r.status().to_string()),
            Err(ureq::Error::Status(code, _)) => (false, Some(code), code.to_string()),
            Err(e) => (false, None, e.to_string()),
        };
        let now = now_ns();
        self.breaker.record(ok, now);
        let x = &mut d.delivery;
        x.attempts = attempt;
        x.http_status = http_status;
        x.last_result = Some(text);
        if ok {
            x.state = DeliveryState::Delivered;
        } else if attempt >= self.config.attempts_max.max(1) {
            x.state = DeliveryState::Failed;
        } else {
            let backoff_ms = self.config.backoff_ms.saturating_mul(1 << (attempt - 1).min(20));
            x.next_attempt_ns = now.saturating_add(backoff_ms.saturating_mul(1_000_000));
        }
        persist_into(&self.persist, &self.log, &d);
        {
            let mut log = self.log.lock().expect("delivery log");
            log.breaker = Some(self.breaker.view());
            log.set(&d.delivery);
        }
        (d.delivery.state == DeliveryState::Pending).then_some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: u64, url: &str, attempts: u32, next_attempt_ns: u64) -> StoredDelivery {
        StoredDelivery {
            delivery: Delivery {
                id,
                payment_id: 7,
                account: "alice".into(),
                status: "succeeded".into(),
                url: url.into(),
                state: DeliveryState::Pending,
                attempts,
                next_attempt_ns,
                http_status: Some(500),
                last_result: Some("500".into()),
            },
            body: "{\"type\":\"payment.succeeded\"}".into(),
        }
    }

    /// A persist that keeps what it is given.
    fn kept() -> (Persist, Arc<Mutex<Vec<StoredDelivery>>>) {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let k = Arc::clone(&kept);
        let persist: Persist = Arc::new(move |d: &StoredDelivery| {
            k.lock().unwrap().push(d.clone());
            Ok(())
        });
        (persist, kept)
    }

    /// A stored pending delivery resumes with the attempts it had, not before its stored due
    /// time (the third and last attempt here: the receiver's 500 fails it for good, stored so);
    /// one to an endpoint no longer configured is failed at start.
    #[test]
    fn stored_deliveries_resume_with_their_attempts_and_due_time() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        std::thread::spawn({
            let seen = Arc::clone(&seen);
            move || {
                use std::io::{BufRead, BufReader, Write};
                for stream in listener.incoming() {
                    let mut stream = stream.unwrap();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut head = Vec::new();
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                        head.push(line.trim().to_ascii_lowercase());
                        line.clear();
                    }
                    seen.lock().unwrap().push((now_ns(), head));
                    let _ =
                        write!(stream, "HTTP/1.1 500 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
            }
        });
        let due_ns = now_ns() + 300_000_000;
        let (persist, kept) = kept();
        let endpoint = WebhookEndpoint { url: url.clone(), secret: "whsec".into() };
        let config = DeliveryConfig { attempts_max: 3, backoff_ms: 10, ..DeliveryConfig::default() };
        let gone = "http://127.0.0.1:9/gone";
        let sender = WebhookSender::start(
            vec![endpoint],
            config,
            BreakerConfig::default(),
            vec![stored(4, gone, 1, 0), stored(5, &url, 2, due_ns)],
            persist,
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while kept.lock().unwrap().len() < 2 {
            assert!(std::time::Instant::now() < deadline, "{:?}", kept.lock().unwrap());
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(sender);
        let kept = kept.lock().unwrap().clone();
        assert_eq!(kept[0].delivery.id, 4);
        assert_eq!(kept[0].delivery.state, DeliveryState::Failed);
        assert_eq!(kept[0].delivery.last_result.as_deref(), Some("endpoint no longer configured"));
        let d = &kept[1].delivery;
        assert_eq!((d.id, d.attempts, d.state, d.http_status), (5, 3, DeliveryState::Failed, Some(500)));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "one attempt left of three");
        assert!(seen[0].0 >= due_ns, "not before its stored due time");
        assert!(seen[0].1.contains(&"x-payments-delivery: 5".to_string()), "{:?}", seen[0].1);
        assert!(seen[0].1.contains(&"x-payments-attempt: 3".to_string()), "{:?}", seen[0].1);
    }

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
