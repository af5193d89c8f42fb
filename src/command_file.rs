//! The command file format (JSON Lines, `docs/formats.md`): parsing lines into engine
//! commands, with names resolved through [`Names`].
//!
//! A line that cannot become a command (malformed JSON, unknown op, missing or malformed field)
//! is a [`LineError`]. A line that is well formed but asks for something the engine refuses
//! (unknown symbol, off-tick price, zero quantity) becomes a command, so the engine rejects it
//! with a sequenced `rejected` event like any other bad order.

use engine::price_text::{self, PriceTextError};
use engine::{
    AccountId, CancelOrder, ClOrdId, CommandKind, NewOrder, OrdType, PriceUnits, ReplaceOrder, Side, StpMode,
    SymbolId, Tif,
};
use serde::Deserialize;
use serde_json::Value;

use crate::names::Names;

/// Why a line of a command file was not turned into a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    /// Not valid JSON, or a field of the wrong JSON type.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// `op` is not one of the known operations.
    #[error("unknown op {0:?} (expected new, cancel, replace, cancel_all, halt or resume)")]
    UnknownOp(String),
    /// A field the op needs is absent.
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    /// A field has a value outside its allowed set.
    #[error("field {field:?}: {message}")]
    BadField {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// More distinct account names than the name table holds.
    #[error("too many accounts (at most {0})")]
    TooManyAccounts(usize),
    /// A field name the format does not have (a misspelling would otherwise be ignored, and a
    /// `"post_onyl": true` order would trade as a taker).
    #[error("unknown field {field:?}{}", suggestion.map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownField {
        /// The field as written.
        field: String,
        /// The known field it is closest to, if any is close.
        suggestion: Option<&'static str>,
    },
}

/// Every field name a command line may carry.
pub const FIELDS: [&str; 16] = [
    "op",
    "account",
    "symbol",
    "id",
    "orig_id",
    "side",
    "type",
    "tif",
    "price",
    "qty",
    "post_only",
    "stop_price",
    "display_qty",
    "expire_ts",
    "stp",
    "ts",
];

/// One parsed line: the command, its optional timestamp (`ts`, nanoseconds) and the field names
/// the format does not have, which the caller refuses (`--strict`) or warns about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine {
    /// The command.
    pub kind: CommandKind,
    /// `ts` from the line; the sequencer stamps one when absent.
    pub ts: Option<u64>,
    /// Unknown field names, sorted (usually none).
    pub unknown_fields: Vec<String>,
}

impl ParsedLine {
    /// The first unknown field as an error, if the line has one.
    pub fn unknown_field_error(&self) -> Option<LineError> {
        let field = self.unknown_fields.first()?;
        Some(LineError::UnknownField { field: field.clone(), suggestion: closest_field(field) })
    }
}

/// The known field within two edits of `field` (`post_onyl` → `post_only`, `tfi` → `tif`).
fn closest_field(field: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|known| (edit_distance(field, known), *known))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(_, known)| known)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// adjacent characters each cost 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[derive(Deserialize)]
struct RawLine {
    op: Option<String>,
    account: Option<String>,
    symbol: Option<String>,
    id: Option<String>,
    orig_id: Option<String>,
    side: Option<String>,
    #[serde(rename = "type")]
    ord_type: Option<String>,
    tif: Option<String>,
    price: Option<Value>,
    qty: Option<Value>,
    post_only: Option<bool>,
    stop_price: Option<Value>,
    display_qty: Option<Value>,
    expire_ts: Option<u64>,
    stp: Option<String>,
    ts: Option<u64>,
    /// Whatever else the line names; kept in order to report, never used.
    #[serde(flatten)]
    unknown: serde_json::Map<String, Value>,
}

/// Parses one line of a command file.
pub fn parse_line(line: &str, names: &mut Names) -> Result<ParsedLine, LineError> {
    let raw: RawLine = serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
    let op = raw.op.as_deref().ok_or(LineError::MissingField("op"))?;
    let kind = match op {
        "new" => CommandKind::New(parse_new(&raw, names)?),
        "cancel" => CommandKind::Cancel(CancelOrder {
            account: account(&raw, names)?,
            symbol: symbol(&raw, names)?,
            id: cl_ord_id("id", raw.id.as_deref())?,
            request_id: None,
        }),
        "replace" => CommandKind::Replace(ReplaceOrder {
            account: account(&raw, names)?,
            symbol: symbol(&raw, names)?,
            orig_id: cl_ord_id("orig_id", raw.orig_id.as_deref())?,
            id: cl_ord_id("id", raw.id.as_deref())?,
            price: raw.price.as_ref().map(|v| price_units("price", v)).transpose()?,
            qty: qty("qty", raw.qty.as_ref().ok_or(LineError::MissingField("qty"))?)?,
        }),
        "cancel_all" => CommandKind::CancelAll {
            account: account(&raw, names)?,
            // No symbol: every symbol. An unlisted one has nothing to cancel, but it must not
            // pass as "every symbol" (the journal writes None as SYMBOL_UNKNOWN): refused.
            symbol: match raw.symbol.as_deref() {
                Some(name) => Some(names.symbol_id(name).ok_or_else(|| {
                    bad("symbol", format!("{name:?} is not listed: cancel_all names a listed symbol or none"))
                })?),
                None => None,
            },
        },
        "halt" => CommandKind::Halt { symbol: symbol(&raw, names)? },
        "resume" => CommandKind::Resume { symbol: symbol(&raw, names)? },
        other => return Err(LineError::UnknownOp(other.to_string())),
    };
    Ok(ParsedLine { kind, ts: raw.ts, unknown_fields: raw.unknown.keys().cloned().collect() })
}

fn parse_new(raw: &RawLine, names: &mut Names) -> Result<NewOrder, LineError> {
    let side = match raw.side.as_deref().ok_or(LineError::MissingField("side"))? {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        other => return Err(bad("side", format!("{other:?} is not buy or sell"))),
    };
    let ord_type = match raw.ord_type.as_deref().unwrap_or("limit") {
        "limit" => OrdType::Limit,
        "market" => OrdType::Market,
        other => return Err(bad("type", format!("{other:?} is not limit or market"))),
    };
    let tif = match raw.tif.as_deref() {
        None if ord_type == OrdType::Market => Tif::Ioc,
        None => Tif::Gtc,
        Some("gtc") => Tif::Gtc,
        Some("ioc") => Tif::Ioc,
        Some("fok") => Tif::Fok,
        Some("gtd") => Tif::Gtd,
        Some(other) => return Err(bad("tif", format!("{other:?} is not gtc, ioc, fok or gtd"))),
    };
    let stp = match raw.stp.as_deref() {
        None | Some("cancel_newest") => StpMode::CancelNewest,
        Some("cancel_oldest") => StpMode::CancelOldest,
        Some("cancel_both") => StpMode::CancelBoth,
        Some(other) => {
            return Err(bad("stp", format!("{other:?} is not cancel_newest, cancel_oldest or cancel_both")))
        }
    };
    let price = match (ord_type, raw.price.as_ref()) {
        (OrdType::Limit, None) => return Err(LineError::MissingField("price")),
        (OrdType::Limit, Some(v)) => price_units("price", v)?,
        // A market order's price is ignored by the engine; still refuse one that is not a price.
        (OrdType::Market, Some(v)) => price_units("price", v)?,
        (OrdType::Market, None) => PriceUnits::ZERO,
    };
    Ok(NewOrder {
        account: account(raw, names)?,
        symbol: symbol(raw, names)?,
        id: cl_ord_id("id", raw.id.as_deref())?,
        side,
        ord_type,
        tif,
        price,
        qty: qty("qty", raw.qty.as_ref().ok_or(LineError::MissingField("qty"))?)?,
        stop_price: raw.stop_price.as_ref().map(|v| price_units("stop_price", v)).transpose()?,
        display_qty: raw.display_qty.as_ref().map(|v| qty("display_qty", v)).transpose()?,
        expire_ts: raw.expire_ts,
        post_only: raw.post_only.unwrap_or(false),
        stp,
    })
}

fn bad(field: &'static str, message: String) -> LineError {
    LineError::BadField { field, message }
}

fn account(raw: &RawLine, names: &mut Names) -> Result<AccountId, LineError> {
    let name = raw.account.as_deref().ok_or(LineError::MissingField("account"))?;
    if name.is_empty() || name.contains(['\n', '\r']) {
        return Err(bad("account", "empty or contains a line break".to_string()));
    }
    names.account_id(name).ok_or(LineError::TooManyAccounts(names.accounts_max()))
}

fn symbol(raw: &RawLine, names: &Names) -> Result<SymbolId, LineError> {
    let name = raw.symbol.as_deref().ok_or(LineError::MissingField("symbol"))?;
    // An unlisted symbol is a well-formed command the engine rejects `unknown_symbol`.
    Ok(names.symbol_id(name).unwrap_or(engine::SYMBOL_UNKNOWN))
}

fn cl_ord_id(field: &'static str, value: Option<&str>) -> Result<ClOrdId, LineError> {
    let value = value.ok_or(LineError::MissingField(field))?;
    ClOrdId::from_str(value).map_err(|e| bad(field, e.to_string()))
}

/// A quantity: a JSON integer. A negative or fractional number is a well-formed order with a
/// bad quantity, so it maps to 0 and the engine rejects it `bad_qty`.
fn qty(field: &'static str, value: &Value) -> Result<u64, LineError> {
    match value {
        Value::Number(n) => Ok(n.as_u64().unwrap_or(0)),
        Value::String(s) => match (s.trim().parse::<u64>(), price_text::parse_units_wide(s.trim())) {
            (Ok(q), _) => Ok(q),
            (Err(_), Ok(_)) => Ok(0),
            (Err(_), Err(_)) => Err(bad(field, format!("{s:?} is not a quantity"))),
        },
        other => Err(bad(field, format!("{other} is not a quantity"))),
    }
}

/// A price as a decimal string (or JSON number) → price units. A price with more decimals than
/// the engine's scale, or out of range, can never be on tick: it maps to -1, which the engine
/// rejects `bad_price_tick`.
pub fn price_units(field: &'static str, value: &Value) -> Result<PriceUnits, LineError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => return Err(bad(field, format!("{other} is not a price"))),
    };
    match price_text::parse_units(text.trim()) {
        Ok(units) => Ok(units),
        Err(PriceTextError::TooManyDecimals { .. } | PriceTextError::Overflow) => Ok(PriceUnits(-1)),
        Err(e) => Err(bad(field, format!("{text:?} is not a decimal price: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::default_symbols;

    fn names() -> Names {
        Names::new(&default_symbols(), 16)
    }

    #[test]
    fn parses_the_design_examples() {
        let mut n = names();
        let l = parse_line(
            r#"{"op":"new","account":"alice","symbol":"BTC-USD","id":"a1","side":"buy","type":"limit","tif":"gtc","price":"100.50","qty":10}"#,
            &mut n,
        )
        .unwrap();
        let CommandKind::New(o) = l.kind else { panic!() };
        assert_eq!((o.price, o.qty, o.side, o.tif), (PriceUnits(10_050_000_000), 10, Side::Buy, Tif::Gtc));
        let l = parse_line(r#"{"op":"new","account":"bob","symbol":"BTC-USD","id":"b1","side":"sell","type":"market","qty":4}"#, &mut n).unwrap();
        let CommandKind::New(o) = l.kind else { panic!() };
        assert_eq!((o.ord_type, o.tif, o.account), (OrdType::Market, Tif::Ioc, AccountId(1)));
        let l = parse_line(r#"{"op":"replace","account":"alice","symbol":"BTC-USD","orig_id":"a1","id":"a2","price":"100.25","qty":8}"#, &mut n).unwrap();
        let CommandKind::Replace(r) = l.kind else { panic!() };
        assert_eq!((r.price, r.qty), (Some(PriceUnits(10_025_000_000)), 8));
    }

    #[test]
    fn line_errors_are_precise() {
        let mut n = names();
        assert!(matches!(parse_line("{not json", &mut n), Err(LineError::Json(_))));
        assert_eq!(
            parse_line(r#"{"op":"fly","account":"a","symbol":"AAPL"}"#, &mut n),
            Err(LineError::UnknownOp("fly".into()))
        );
        assert_eq!(
            parse_line(r#"{"op":"new","account":"a","symbol":"AAPL","id":"x","side":"buy","qty":1}"#, &mut n),
            Err(LineError::MissingField("price"))
        );
        assert!(matches!(
            parse_line(
                r#"{"op":"new","account":"a","symbol":"AAPL","id":"x","side":"up","price":"1","qty":1}"#,
                &mut n
            ),
            Err(LineError::BadField { field: "side", .. })
        ));
        assert_eq!(parse_line(r#"{"account":"a"}"#, &mut n), Err(LineError::MissingField("op")));
    }

    #[test]
    fn unknown_fields_are_reported_with_the_closest_known_field() {
        let mut n = names();
        let l = parse_line(
            r#"{"op":"new","account":"a","symbol":"AAPL","id":"x","side":"buy","price":"1","qty":1,"post_onyl":true,"tfi":"ioc"}"#,
            &mut n,
        )
        .unwrap();
        assert_eq!(l.unknown_fields, ["post_onyl", "tfi"]);
        assert_eq!(
            l.unknown_field_error(),
            Some(LineError::UnknownField { field: "post_onyl".into(), suggestion: Some("post_only") })
        );
        assert_eq!(
            l.unknown_field_error().unwrap().to_string(),
            r#"unknown field "post_onyl" (did you mean "post_only"?)"#
        );
        assert_eq!(closest_field("tfi"), Some("tif"));
        assert_eq!(closest_field("colour"), None);
        let clean = parse_line(r#"{"op":"halt","symbol":"AAPL"}"#, &mut n).unwrap();
        assert!(clean.unknown_fields.is_empty() && clean.unknown_field_error().is_none());
    }

    #[test]
    fn cancel_all_names_one_listed_symbol_or_every_symbol() {
        let mut n = names();
        let all = parse_line(r#"{"op":"cancel_all","account":"a"}"#, &mut n).unwrap();
        assert!(matches!(all.kind, CommandKind::CancelAll { symbol: None, .. }));
        let one = parse_line(r#"{"op":"cancel_all","account":"a","symbol":"AAPL"}"#, &mut n).unwrap();
        assert!(matches!(one.kind, CommandKind::CancelAll { symbol: Some(_), .. }));
        // An unlisted symbol must not turn into "every symbol".
        let err = parse_line(r#"{"op":"cancel_all","account":"a","symbol":"NOPE"}"#, &mut n).unwrap_err();
        assert!(err.to_string().contains("\"NOPE\" is not listed"), "{err}");
    }

    #[test]
    fn engine_rejectable_values_become_commands() {
        let mut n = names();
        let l = parse_line(
            r#"{"op":"new","account":"a","symbol":"NOPE","id":"x","side":"buy","price":"1.001","qty":-3}"#,
            &mut n,
        )
        .unwrap();
        let CommandKind::New(o) = l.kind else { panic!() };
        assert_eq!((o.symbol, o.price, o.qty), (engine::SYMBOL_UNKNOWN, PriceUnits(100_100_000), 0));
        let price = |text: &str| price_units("price", &Value::String(text.into()));
        assert_eq!(price("0.000000001").unwrap(), PriceUnits(-1));
        assert_eq!(price("99999999999999").unwrap(), PriceUnits(-1));
        assert_eq!(price(" 100.50 ").unwrap(), PriceUnits(10_050_000_000));
        let err = price("+1").unwrap_err().to_string();
        assert!(err.contains("misplaced sign"), "{err}");
    }
}
