//! The engine beside its peers: adapters that run the generator's command stream
//! ([`harness::gen`]) through the `matchcore` and `orderbook-rs` crates ([`peers`]), and the
//! closed-loop latency mode that times each of them one command at a time
//! ([`peers_single_thread`], `latency peers`).
//!
//! This crate is a leaf: the venue (`exchange`) never links it, so no peer order book ends up in
//! the production binary. The open-loop harness behind `exchange bench` is the `harness` crate.
#![warn(missing_docs, unreachable_pub)]

pub mod peers;
pub mod peers_single_thread;
