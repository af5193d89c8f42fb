//! The read API, driven in-process through the axum router (no socket needed for the logic).

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use engine::Side;
use http_body_util::BodyExt;
use serde_json::Value;
use settlement::{AnyStore, Settlement, StoreConfig};
use tower::ServiceExt;

fn shared(dir: &tempfile::TempDir) -> settlement::api::Shared<AnyStore> {
    let store = AnyStore::open(&StoreConfig::Redb { path: dir.path().join("ledger.redb") }).unwrap();
    let mut s = Settlement::open(&config(), store, &accounts(), &symbols()).unwrap();
    s.deposit(1, "alice", "USD", 1_000_000, 0).unwrap();
    s.deposit(2, "bob", "BTC", 100_000_000, 0).unwrap();
    s.apply(&trade(1, MONDAY_10H_NS, 0, 50_000, 10, 1, 0, Side::Buy)).unwrap();
    Arc::new(Mutex::new(s))
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let response = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn balances_positions_and_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let app = settlement::api::router(shared(&dir));
    let (status, body) = get(&app, "/v1/balances?owner=alice&asset=USD").await;
    assert_eq!(status, StatusCode::OK);
    let row = &body["rows"][0];
    assert_eq!(row["posted"], "10000.00");
    assert_eq!(
        row["pending_debits"], "5002.50",
        "the cash (bob's maker fee is netted out of it) and alice's taker fee"
    );
    assert_eq!(row["available"], "4997.50");

    let (_, body) = get(&app, "/v1/positions?owner=alice").await;
    let btc = body["rows"].as_array().unwrap().iter().find(|r| r["asset"] == "BTC").unwrap();
    assert_eq!(
        (btc["settled"].as_str(), btc["unsettled"].as_str()),
        (Some("0.00000000"), Some("0.10000000"))
    );

    for (uri, status, field) in [
        ("/v1/balances?owner=mallory", StatusCode::NOT_FOUND, "owner"),
        ("/v1/balances?asset=EUR", StatusCode::NOT_FOUND, "asset"),
        ("/v1/entries?limit=0", StatusCode::BAD_REQUEST, "limit"),
        ("/v1/entries?after=x", StatusCode::BAD_REQUEST, "after"),
        ("/v1/positions?after=-1", StatusCode::BAD_REQUEST, "after"),
    ] {
        let (got, body) = get(&app, uri).await;
        assert_eq!((got, body["field"].as_str()), (status, Some(field)), "{uri}: {body}");
    }
}

#[tokio::test]
async fn entries_page_through_everything_once_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let shared = shared(&dir);
    let total = shared.lock().unwrap().ledger().transfer_count();
    let app = settlement::api::router(shared);
    let mut seen = Vec::new();
    let mut uri = "/v1/entries?limit=2".to_string();
    loop {
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK);
        for row in body["rows"].as_array().unwrap() {
            seen.push(row["id"].as_str().unwrap().to_string());
        }
        match body["next_after"].as_str() {
            Some(next) => uri = format!("/v1/entries?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), total);
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(dedup, seen, "ids come in order, each once");

    let (_, body) = get(&app, "/v1/entries?owner=bob&asset=BTC").await;
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "the deposit and the delivery: {body}");
    let delivery = &rows[1];
    assert_eq!(delivery["code"], "trade_asset");
    assert_eq!(delivery["state"], "pending");
    assert_eq!(delivery["event_seq"], 1);
    assert_eq!(delivery["settle_date"], "2026-12-08");
    assert_eq!(delivery["amount"], "0.10000000");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let app = settlement::api::router(shared(&dir));
    let (status, doc) = get(&app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/v1/balances", "/v1/positions", "/v1/entries", "/openapi.json"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
        let (status, _) =
            if path == "/openapi.json" { (StatusCode::OK, Value::Null) } else { get(&app, path).await };
        assert_eq!(status, StatusCode::OK, "{path} answers");
    }
}

/// With an authorizer, an account's key reads only its own accounts and entries (another
/// owner asked for is 403 naming the field), an operator reads all, a bad key is refused.
#[tokio::test]
async fn keys_scope_reads_to_their_account() {
    let dir = tempfile::tempdir().unwrap();
    let authorize: settlement::api::Authorize =
        Arc::new(|h: &axum::http::HeaderMap| match h.get("authorization").and_then(|v| v.to_str().ok()) {
            Some("Bearer alice-key") => Ok(Some("alice".to_string())),
            Some("Bearer op-key") => Ok(None),
            _ => Err((
                StatusCode::UNAUTHORIZED,
                serde_json::json!({ "error": "no key", "field": "Authorization" }),
            )),
        });
    let app = settlement::api::routes(shared(&dir), Some(authorize));
    let call = |uri: &str, key: Option<&str>| {
        let mut r = Request::get(uri);
        if let Some(k) = key {
            r = r.header("authorization", format!("Bearer {k}"));
        }
        let app = app.clone();
        let req = r.body(Body::empty()).unwrap();
        async move {
            let response = app.oneshot(req).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let (status, body) = call("/v1/balances", Some("alice-key")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["rows"].as_array().unwrap().iter().all(|r| r["owner"] == "alice"), "{body}");
    let (_, body) = call("/v1/entries", Some("alice-key")).await;
    let rows = body["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["debit_owner"] == "alice" || r["credit_owner"] == "alice"), "{body}");
    for uri in ["/v1/balances?owner=bob", "/v1/positions?owner=bob", "/v1/entries?owner=bob"] {
        let (status, body) = call(uri, Some("alice-key")).await;
        assert_eq!((status, body["field"].as_str()), (StatusCode::FORBIDDEN, Some("owner")), "{uri}");
    }
    let (status, body) = call("/v1/balances?owner=bob", Some("op-key")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["rows"][0]["owner"], "bob");
    let (status, body) = call("/v1/balances", None).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::UNAUTHORIZED, Some("Authorization")));
}
