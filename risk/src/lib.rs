//! Pre-trade risk in front of the engine: per-account limits (order size and notional, price
//! band, open orders, credit, position per symbol), duplicate client order ids, and a kill
//! switch. A pure state machine: no I/O, no clock, no threads.
//!
//! **Invariant:** the risk engine's exposure is a function of the checks that passed and the
//! engine events fed back to it, in order — an open order's reservation is always the larger of
//! what the engine may still fill and what a pending replace may make it, so no sequence of
//! orders can slip past a limit while waiting for the engine's answer; every map has a stated
//! bound (`orders_max` orders, `recent_ids_max` finished ids), and a passing check allocates
//! nothing once the order map has grown to its working set.
//!
//! The gateway's router thread owns one [`RiskEngine`] and calls it for every order before the
//! engine's inbound ring ([`RiskEngine::check_new`], [`RiskEngine::check_replace`]) and for
//! every event from the outbound ring ([`RiskEngine::on_event`]). A refusal is a [`RiskReject`]:
//! a `risk_*` name, the FIX 103/102 codes and a text for tag 58, built only when asked for.
//!
//! Units: prices in commands and limits are price units (8 decimals, [`engine::PRICE_SCALE`]);
//! prices in events are ticks, converted with the configured [`engine::SymbolSpec`]s;
//! notionals are price units × quantity ([`Notional`]). No floating point anywhere.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

mod config;
mod exposure;
mod id_key;
mod id_map;
mod limits;
mod notional;
mod reject;
mod risk_engine;

pub use config::{RiskConfig, RiskError};
pub use exposure::{AccountExposure, SymbolExposure};
pub use limits::RiskLimits;
pub use notional::Notional;
pub use reject::{RiskReason, RiskReject};
pub use risk_engine::RiskEngine;
