//! Read endpoints over HTTP (axum 0.8): balances, positions, ledger entries (paged), and the
//! OpenAPI document at `/openapi.json`. The binary merges this router with the others on the
//! shared `[network] http` port.
//!
//! Handlers take the follower's lock only to copy one page out (O(page), never O(ledger) per
//! account filter beyond [`ENTRIES_SCAN_MAX`]); the follower thread is never waited on longer.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::asset::format_amount;
use crate::calendar::date_of_day;
use crate::follower::Settlement;
use crate::ledger::{codes, AccountIdx, AccountKind, Ledger, StoredTransfer, TransferKind};
use crate::store::Store;

/// Rows per page unless `limit` says otherwise.
pub const PAGE_LIMIT_DEFAULT: usize = 100;
/// Most rows per page.
pub const PAGE_LIMIT_MAX: usize = 1_000;
/// Most entries one request looks at while filtering by owner or asset; a page may come back
/// short with a `next_after` to continue from.
pub const ENTRIES_SCAN_MAX: usize = 100_000;

/// The follower, shared between its feeding thread and the HTTP handlers.
pub type Shared<S> = Arc<Mutex<Settlement<S>>>;

/// Who a request reads for, from its headers: `Ok(None)` sees every account (an operator
/// key, or no authentication configured), `Ok(Some(owner))` only that owner's accounts and
/// entries; `Err` is the refusal to send (status and JSON body).
pub type Authorize =
    Arc<dyn Fn(&HeaderMap) -> Result<Option<String>, (StatusCode, serde_json::Value)> + Send + Sync>;

/// What the handlers share.
struct Api<S: Store> {
    settlement: Shared<S>,
    authorize: Option<Authorize>,
}

impl<S: Store> Clone for Api<S> {
    fn clone(&self) -> Api<S> {
        Api { settlement: Arc::clone(&self.settlement), authorize: self.authorize.clone() }
    }
}

/// The read API: `GET /v1/balances`, `/v1/positions`, `/v1/entries`, `/openapi.json`, open to
/// any caller.
pub fn router<S: Store + Send + 'static>(settlement: Shared<S>) -> Router {
    routes(settlement, None).route("/openapi.json", get(openapi))
}

/// `GET /v1/balances`, `/v1/positions`, `/v1/entries` (without the OpenAPI route, for a binary
/// that serves one document of several APIs), each request checked by `authorize` when given.
pub fn routes<S: Store + Send + 'static>(settlement: Shared<S>, authorize: Option<Authorize>) -> Router {
    Router::new()
        .route("/v1/balances", get(balances::<S>))
        .route("/v1/positions", get(positions::<S>))
        .route("/v1/entries", get(entries::<S>))
        .with_state(Api { settlement, authorize })
}

/// The owner filter a request may use: its key's owner (another one asked for is 403), or
/// what it asked for when it may see all.
fn scope<S: Store>(
    api: &Api<S>,
    headers: &HeaderMap,
    asked: Option<String>,
) -> Result<Option<String>, Refused> {
    let Some(authorize) = &api.authorize else { return Ok(asked) };
    match authorize(headers) {
        Err((status, body)) => Err(Refused::Auth(status, body)),
        Ok(None) => Ok(asked),
        Ok(Some(own)) => match asked {
            Some(a) if a != own => Err(Refused::Api(ApiError {
                status: StatusCode::FORBIDDEN,
                field: "owner",
                message: format!("owner: this key may not read {a:?}"),
            })),
            _ => Ok(Some(own)),
        },
    }
}

/// A refused read: a bad parameter, or the authorizer's answer.
#[derive(Debug)]
enum Refused {
    Api(ApiError),
    Auth(StatusCode, serde_json::Value),
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        Refused::Api(e)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Api(e) => e.into_response(),
            Refused::Auth(status, body) => (status, Json(body)).into_response(),
        }
    }
}

/// A refused request: status and a JSON body naming the field.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    field: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message, "field": self.field }))).into_response()
    }
}

fn bad(field: &'static str, message: String) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, field, message }
}

/// Query of the account listings.
#[derive(Debug, Default, Deserialize)]
struct AccountQuery {
    owner: Option<String>,
    asset: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// Query of the entries.
#[derive(Debug, Default, Deserialize)]
struct EntryQuery {
    owner: Option<String>,
    asset: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

fn limit(text: Option<&str>) -> Result<usize, ApiError> {
    match text {
        None => Ok(PAGE_LIMIT_DEFAULT),
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=PAGE_LIMIT_MAX).contains(&n) => Ok(n),
            _ => Err(bad("limit", format!("{t:?} is not a number from 1 to {PAGE_LIMIT_MAX}"))),
        },
    }
}

/// Checks `owner` and `asset` filters against the ledger.
fn filters(
    ledger: &Ledger,
    owner: Option<&str>,
    asset: Option<&str>,
) -> Result<(Option<String>, Option<crate::AssetId>), ApiError> {
    let asset_id = match asset {
        None => None,
        Some(a) => Some(ledger.asset_id(a).ok_or_else(|| ApiError {
            status: StatusCode::NOT_FOUND,
            field: "asset",
            message: format!("asset {a:?} is not configured"),
        })?),
    };
    if let Some(o) = owner {
        let known = ledger
            .assets()
            .iter()
            .any(|a| ledger.asset_id(&a.name).and_then(|id| ledger.account(o, id)).is_some());
        if !known {
            return Err(ApiError {
                status: StatusCode::NOT_FOUND,
                field: "owner",
                message: format!("no account {o:?}"),
            });
        }
    }
    Ok((owner.map(str::to_string), asset_id))
}

#[derive(Serialize)]
struct BalanceRow {
    account: u32,
    owner: String,
    asset: String,
    kind: &'static str,
    posted: String,
    pending_debits: String,
    pending_credits: String,
    held: String,
    available: String,
}

#[derive(Serialize)]
struct PositionRow {
    owner: String,
    asset: String,
    settled: String,
    unsettled: String,
    total: String,
}

#[derive(Serialize)]
struct Page<T> {
    rows: Vec<T>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

/// Accounts matching the query, from `after`, up to `limit`, with the cursor of the next page.
fn account_page(
    ledger: &Ledger,
    q: &AccountQuery,
    users_only: bool,
) -> Result<(Vec<AccountIdx>, Option<String>), ApiError> {
    let (owner, asset) = filters(ledger, q.owner.as_deref(), q.asset.as_deref())?;
    let limit = limit(q.limit.as_deref())?;
    let start = match q.after.as_deref() {
        None => 0,
        Some(t) => t.parse::<u32>().map_err(|_| bad("after", format!("{t:?} is not an account number")))? + 1,
    };
    let mut rows = Vec::with_capacity(limit);
    for i in start..ledger.account_count() {
        let idx = AccountIdx(i);
        let Some((o, a, kind)) = ledger.account_info(idx) else { continue };
        if owner.as_deref().is_some_and(|w| w != o) || asset.is_some_and(|w| w != a) {
            continue;
        }
        if users_only && kind != AccountKind::User {
            continue;
        }
        if rows.len() == limit {
            return Ok((rows, Some((i - 1).to_string())));
        }
        rows.push(idx);
    }
    Ok((rows, None))
}

async fn balances<S: Store + Send + 'static>(
    State(api): State<Api<S>>,
    headers: HeaderMap,
    Query(mut q): Query<AccountQuery>,
) -> Result<Json<Page<BalanceRow>>, Refused> {
    q.owner = scope(&api, &headers, q.owner.take())?;
    let s = api.settlement.lock().unwrap_or_else(|p| p.into_inner());
    let ledger = s.ledger();
    let (idxs, next_after) = account_page(ledger, &q, false)?;
    let rows = idxs
        .into_iter()
        .filter_map(|idx| {
            let (owner, asset, kind) = ledger.account_info(idx)?;
            let b = ledger.balances(idx)?;
            let scale = ledger.asset(asset).scale;
            Some(BalanceRow {
                account: idx.0,
                owner: owner.to_string(),
                asset: ledger.asset(asset).name.clone(),
                kind: kind.as_str(),
                posted: format_amount(b.posted(), scale),
                pending_debits: format_amount(b.debits_pending as i128, scale),
                pending_credits: format_amount(b.credits_pending as i128, scale),
                held: format_amount(b.held as i128, scale),
                available: format_amount(b.available(), scale),
            })
        })
        .collect();
    Ok(Json(Page { rows, next_after }))
}

async fn positions<S: Store + Send + 'static>(
    State(api): State<Api<S>>,
    headers: HeaderMap,
    Query(mut q): Query<AccountQuery>,
) -> Result<Json<Page<PositionRow>>, Refused> {
    q.owner = scope(&api, &headers, q.owner.take())?;
    let s = api.settlement.lock().unwrap_or_else(|p| p.into_inner());
    let ledger = s.ledger();
    let (idxs, next_after) = account_page(ledger, &q, true)?;
    let rows = idxs
        .into_iter()
        .filter_map(|idx| {
            let (owner, asset, _) = ledger.account_info(idx)?;
            let b = ledger.balances(idx)?;
            let scale = ledger.asset(asset).scale;
            Some(PositionRow {
                owner: owner.to_string(),
                asset: ledger.asset(asset).name.clone(),
                settled: format_amount(b.posted(), scale),
                unsettled: format_amount(b.pending(), scale),
                total: format_amount(b.posted() + b.pending(), scale),
            })
        })
        .collect();
    Ok(Json(Page { rows, next_after }))
}

#[derive(Serialize)]
struct EntryRow {
    id: String,
    debit_owner: String,
    credit_owner: String,
    asset: String,
    amount: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settle_date: Option<String>,
    ts_ns: u64,
}

fn code_name(code: u16) -> &'static str {
    match code {
        codes::DEPOSIT => "deposit",
        codes::WITHDRAWAL => "withdrawal",
        codes::TRADE_ASSET => "trade_asset",
        codes::TRADE_CASH => "trade_cash",
        codes::FEE_MAKER => "fee_maker",
        codes::FEE_TAKER => "fee_taker",
        _ => "other",
    }
}

fn entry_row(ledger: &Ledger, s: &StoredTransfer) -> Option<EntryRow> {
    let t = &s.transfer;
    let (debit_owner, asset, _) = ledger.account_info(t.debit)?;
    let (credit_owner, _, _) = ledger.account_info(t.credit)?;
    let (kind, pending_id) = match t.kind {
        TransferKind::Posted => ("posted", None),
        TransferKind::Pending { .. } => ("pending", None),
        TransferKind::PostPending { pending_id } => ("post_pending", Some(pending_id.to_string())),
        TransferKind::VoidPending { pending_id } => ("void_pending", Some(pending_id.to_string())),
    };
    let trade =
        matches!(t.code, codes::TRADE_ASSET | codes::TRADE_CASH | codes::FEE_MAKER | codes::FEE_TAKER);
    Some(EntryRow {
        id: t.id.to_string(),
        debit_owner: debit_owner.to_string(),
        credit_owner: credit_owner.to_string(),
        asset: ledger.asset(asset).name.clone(),
        amount: format_amount(i128::from(t.amount), ledger.asset(asset).scale),
        kind,
        pending_id,
        state: s.state.map(|st| st.as_str()),
        code: code_name(t.code),
        event_seq: trade.then_some(t.user_data_64),
        settle_date: trade.then(|| date_of_day(t.user_data_32).to_string()),
        ts_ns: s.ts_ns,
    })
}

async fn entries<S: Store + Send + 'static>(
    State(api): State<Api<S>>,
    headers: HeaderMap,
    Query(mut q): Query<EntryQuery>,
) -> Result<Json<Page<EntryRow>>, Refused> {
    q.owner = scope(&api, &headers, q.owner.take())?;
    let s = api.settlement.lock().unwrap_or_else(|p| p.into_inner());
    let ledger = s.ledger();
    Ok(Json(entries_page(ledger, &q)?))
}

fn entries_page(ledger: &Ledger, q: &EntryQuery) -> Result<Page<EntryRow>, ApiError> {
    let (owner, asset) = filters(ledger, q.owner.as_deref(), q.asset.as_deref())?;
    let limit = limit(q.limit.as_deref())?;
    let after = match q.after.as_deref() {
        None => None,
        Some(t) => Some(t.parse::<u128>().map_err(|_| bad("after", format!("{t:?} is not an entry id")))?),
    };
    let mut rows = Vec::with_capacity(limit);
    let mut last = None;
    let mut more = false;
    for (scanned, st) in ledger.transfers_after(after).enumerate() {
        if scanned == ENTRIES_SCAN_MAX || rows.len() == limit {
            more = true;
            break;
        }
        last = Some(st.transfer.id);
        let t = &st.transfer;
        let owners = [t.debit, t.credit].map(|i| ledger.account_info(i));
        let touches_owner = owner.as_deref().is_none_or(|w| owners.iter().flatten().any(|(o, _, _)| *o == w));
        let in_asset = asset.is_none_or(|w| owners[0].is_some_and(|(_, a, _)| a == w));
        if touches_owner && in_asset {
            rows.extend(entry_row(ledger, st));
        }
    }
    let next_after = if more { last.map(|id| id.to_string()) } else { None };
    Ok(Page { rows, next_after })
}

async fn openapi() -> Json<serde_json::Value> {
    Json(openapi_document())
}

/// The OpenAPI 3.1 document of these endpoints.
pub fn openapi_document() -> serde_json::Value {
    let page_params = json!([
        { "name": "owner", "in": "query", "schema": { "type": "string" }, "description": "Only this owner's accounts" },
        { "name": "asset", "in": "query", "schema": { "type": "string" }, "description": "Only this asset" },
        { "name": "after", "in": "query", "schema": { "type": "string" }, "description": "next_after of the previous page" },
        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": PAGE_LIMIT_MAX, "default": PAGE_LIMIT_DEFAULT } }
    ]);
    let amount = json!({ "type": "string", "description": "Decimal text with the asset's decimals", "example": "12.50" });
    let page = |row: &str| {
        json!({
            "type": "object",
            "required": ["rows"],
            "properties": {
                "rows": { "type": "array", "items": { "$ref": format!("#/components/schemas/{row}") } },
                "next_after": { "type": "string", "description": "Absent on the last page" }
            }
        })
    };
    let responses = |row: &str| {
        json!({
            "200": { "description": "One page", "content": { "application/json": { "schema": page(row) } } },
            "400": { "description": "A malformed parameter", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
            "404": { "description": "Unknown owner or asset", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
        })
    };
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Exchange settlement ledger", "version": env!("CARGO_PKG_VERSION") },
        "paths": {
            "/v1/balances": { "get": { "summary": "Account counters (posted, pending, held, available) per owner and asset", "parameters": page_params, "responses": responses("Balance") } },
            "/v1/positions": { "get": { "summary": "Settled, unsettled and total position per venue account and asset", "parameters": page_params, "responses": responses("Position") } },
            "/v1/entries": { "get": { "summary": "Ledger entries (transfers) in id order", "parameters": page_params, "responses": responses("Entry") } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3.1" } } } }
        },
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error", "field"], "properties": { "error": { "type": "string" }, "field": { "type": "string" } } },
            "Balance": { "type": "object", "properties": {
                "account": { "type": "integer" }, "owner": { "type": "string" }, "asset": { "type": "string" },
                "kind": { "type": "string", "enum": ["user", "system"] },
                "posted": amount, "pending_debits": amount, "pending_credits": amount, "held": amount, "available": amount } },
            "Position": { "type": "object", "properties": {
                "owner": { "type": "string" }, "asset": { "type": "string" }, "settled": amount, "unsettled": amount, "total": amount } },
            "Entry": { "type": "object", "properties": {
                "id": { "type": "string" }, "debit_owner": { "type": "string" }, "credit_owner": { "type": "string" },
                "asset": { "type": "string" }, "amount": amount,
                "kind": { "type": "string", "enum": ["posted", "pending", "post_pending", "void_pending"] },
                "pending_id": { "type": "string" },
                "state": { "type": "string", "enum": ["pending", "posted", "voided", "expired"] },
                "code": { "type": "string", "enum": ["deposit", "withdrawal", "trade_asset", "trade_cash", "fee_maker", "fee_taker", "other"] },
                "event_seq": { "type": "integer" }, "settle_date": { "type": "string", "format": "date" },
                "ts_ns": { "type": "integer" } } }
        } }
    })
}
