//! The order gateway: FIX 4.4 codec, a sans-IO session layer, and the shells around them (QUIC
//! with quinn, plain TCP with mio, the router thread in front of the engine's rings).
//!
//! Architecture invariant: the codec and the session layer do no I/O and read no clock; the
//! router is the only writer of the engine's command ring and the only reader of its event
//! ring.

#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_code)]

pub mod app;
pub mod auth;
pub mod client;
pub mod dictionary;
pub mod fix;
pub mod metrics;
pub mod parking;
pub mod quic;
pub mod resend_store;
pub mod router;
pub mod server;
pub mod session;
pub mod session_store;
pub mod tls;
pub mod venue;
pub mod write_queue;
