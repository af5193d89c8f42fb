//! The order gateway: the shells around the `fix` crate's sans-IO session layer (QUIC with
//! quinn, plain TCP with mio, the router thread in front of the engine's rings).
//!
//! Architecture invariant: the router is the only writer of the engine's command ring and the only reader of its event
//! ring.

#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_code)]

pub mod app;
pub mod auth;
pub mod md;
pub mod metrics;
pub mod parking;
pub mod quic;
pub mod router;
pub mod server;
pub mod tls;
pub mod venue;
pub mod write_queue;
