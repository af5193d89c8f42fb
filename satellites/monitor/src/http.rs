//! The monitoring routes the binary merges into its HTTP server on `[network] http`:
//! `/metrics` (Prometheus text), `/livez` and `/readyz` (`?verbose` lists every check; the
//! status says it: 200 passing, 503 failing).
//!
//! Every request reads a fresh snapshot on the server's own thread: a scrape costs the stages
//! nothing, and a slow or stuck scraper holds nothing they need.

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::health::{Health, Probe};
use crate::prometheus::{render, CONTENT_TYPE};
use crate::reader::CountersReader;

/// What the routes read from.
#[derive(Clone, Debug)]
pub struct MonitorState {
    /// The counters (from `Registry::reader` in the writing process, or `CountersReader::open`).
    pub counters: CountersReader,
    /// The health checks.
    pub health: Health,
}

/// `/metrics`, `/livez`, `/readyz`.
pub fn router(state: MonitorState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<MonitorState>) -> Response {
    match state.counters.snapshot() {
        Ok(snapshot) => {
            let mut text = String::new();
            render(&snapshot, &mut text);
            state.health.render(&mut text);
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
        }
        // The file is ours and checked at open, so this means memory corruption: say so
        // loudly to the scraper (and its alert on failed scrapes) rather than serve half.
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn livez(State(state): State<MonitorState>, RawQuery(query): RawQuery) -> Response {
    probe(&state.health, Probe::Live, query.as_deref())
}

async fn readyz(State(state): State<MonitorState>, RawQuery(query): RawQuery) -> Response {
    probe(&state.health, Probe::Ready, query.as_deref())
}

fn probe(health: &Health, probe: Probe, query: Option<&str>) -> Response {
    let verbose = query.is_some_and(|q| q.split('&').any(|p| p == "verbose" || p.starts_with("verbose=")));
    let report = health.report(probe);
    let status = if report.ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], report.text(verbose)).into_response()
}
