//! Loom model of the doorbell: a consumer parks when its ring looks empty, a producer pushes and
//! rings. Under loom a park has no timeout, so a lost wake-up is a deadlock the model reports:
//! every interleaving (up to the preemption bound) must end with every value received.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p runtime --test loom_doorbell --release`
#![cfg(loom)]

use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use runtime::{spsc_ring, Doorbell};

fn model(body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(body);
}

#[test]
fn a_parked_consumer_is_always_woken_for_a_pushed_value() {
    model(|| {
        let (mut producer, mut consumer) = spsc_ring::<u32>(2);
        let bell = Arc::new(Doorbell::new());
        let registered = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let (b, r) = (bell.clone(), registered.clone());
        let sleeper = thread::spawn(move || {
            b.register();
            r.store(true, loom::sync::atomic::Ordering::Release);
            let mut got = Vec::new();
            while got.len() < 2 {
                match consumer.pop() {
                    Some(v) => got.push(v),
                    None => b.sleep(|| !consumer.is_empty(), Duration::from_secs(1)),
                }
            }
            got
        });
        // The sleeper registers before it can first park (as the engine and router threads do
        // at start); the producer only pushes after that.
        while !registered.load(loom::sync::atomic::Ordering::Acquire) {
            thread::yield_now();
        }
        for v in [1, 2] {
            producer.push(v).unwrap();
            bell.ring();
        }
        assert_eq!(sleeper.join().unwrap(), [1, 2]);
    });
}
