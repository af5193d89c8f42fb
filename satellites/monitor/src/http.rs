//! The monitoring routes the binary merges into its HTTP server on `[network] http`:
//! `/metrics` (Prometheus text), `/livez` and `/readyz` (`?verbose` lists every check; the
//! status says it: 200 passing, 503 failing), and the live dashboard at `/`, whose page, script
//! and vendored uPlot are compiled into the binary (no CDN, no files to deploy).
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
        .route("/", get(|| asset(DASHBOARD_HTML, "text/html; charset=utf-8")))
        .route("/dashboard/dashboard.js", get(|| asset(DASHBOARD_JS, JS)))
        .route("/dashboard/uPlot.iife.min.js", get(|| asset(UPLOT_JS, JS)))
        .route("/dashboard/uPlot.min.css", get(|| asset(UPLOT_CSS, "text/css; charset=utf-8")))
        .with_state(state)
}

const JS: &str = "text/javascript; charset=utf-8";
const DASHBOARD_HTML: &str = include_str!("../dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("../dashboard/dashboard.js");
const UPLOT_JS: &str = include_str!("../dashboard/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../dashboard/vendor/uplot/uPlot.min.css");

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
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
