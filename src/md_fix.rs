//! `exchange md --feed fix`: the book and tape of one symbol from FIX market data on an
//! order-entry session (QUIC, or TCP with `--tcp`): logs on, sends a MarketDataRequest (35=V),
//! rebuilds the book from 35=W and 35=X, redraws it in place on a terminal (plain lines
//! otherwise). `--check` verifies every RptSeq (83) and that every update fits the book, asking
//! for a fresh snapshot after a problem; `--record` writes every message as it arrived, one a
//! line.

use std::io::Write;
use std::time::Duration;

use fix::codec::Encoder;
use fixclient::FixClient;
use gateway::md::{tags, MdBook, MdBooks};
use rust_decimal::Decimal;

use crate::fix_client::ConnectArgs;
use crate::md_cli::{MdArgs, MdError, Screen, Shown};
/// How long one wait for a message lasts before the loop looks again.
const RECV_WAIT: Duration = Duration::from_secs(1);

/// The MDReqID this client uses.
fn req_id(symbol: &str) -> String {
    format!("md-{symbol}")
}

fn request(e: &mut Encoder, req_id: &str, kind: &str, depth: usize, symbol: &str) {
    e.str(tags::MD_REQ_ID, req_id);
    e.str(tags::SUBSCRIPTION_REQUEST_TYPE, kind);
    if kind != "2" {
        e.u64(tags::MARKET_DEPTH, depth as u64);
        e.str(tags::MD_UPDATE_TYPE, "1");
        e.u64(tags::NO_MD_ENTRY_TYPES, 3);
        for t in ["0", "1", "2"] {
            e.str(tags::MD_ENTRY_TYPE, t);
        }
        e.u64(tags::NO_RELATED_SYM, 1);
        e.str(fix::codec::tag::SYMBOL, symbol);
    }
}

/// The connection arguments `md --feed fix` was given.
fn connect_args(args: &MdArgs) -> Result<ConnectArgs, MdError> {
    let needed = MdError::FixArgument;
    Ok(ConnectArgs {
        account: args.account.clone().ok_or_else(|| needed("account"))?,
        password: args.password.clone().ok_or_else(|| needed("password"))?,
        addr: args.fix_addr,
        tcp: args.tcp,
        ca: args.ca.clone(),
        data: args.data.clone(),
        connect_timeout: 5.0,
        server_name: "localhost".into(),
        cert: None,
        key: None,
        comp_id: None,
        target: "EXCHANGE".into(),
    })
}

/// Runs `exchange md --feed fix` until `--count` messages, the session ends, or an error.
pub fn main(args: &MdArgs) -> Result<(), MdError> {
    let connect = connect_args(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut client = connect.connect().await.map_err(|e| MdError::FixLogon(Box::new(e)))?;
        let outcome = run(args, &mut client).await;
        let _ = client.logout().await;
        outcome
    })
}

async fn run(args: &MdArgs, client: &mut FixClient) -> Result<(), MdError> {
    let fix_err = |e: fixclient::ClientError| MdError::FixSession(Box::new(e));
    let id = req_id(&args.symbol);
    // `--check` verifies the whole book; the display needs only `--depth` levels.
    let depth = if args.check { 0 } else { args.depth };
    client.send(b"V", |e| request(e, &id, "1", depth, &args.symbol)).await.map_err(fix_err)?;
    let mut record = match &args.record {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let mut screen = Screen::new(args.depth);
    let mut books = MdBooks::new();
    let (mut received, mut snapshots, mut problems) = (0u64, 0u64, 0u64);
    loop {
        let Some(m) = client.recv(RECV_WAIT).await.map_err(fix_err)? else { continue };
        let msg = m.message();
        if let Some(file) = record.as_mut() {
            // The message as it arrived (SOH-separated), one a line.
            file.write_all(msg.bytes())?;
            file.write_all(b"\n")?;
        }
        match msg.msg_type() {
            b"Y" => return Err(MdError::Refused(m.get(58).unwrap_or_default())),
            b"W" | b"X" => {}
            b"f" => {
                // A halt or resume (SecurityStatus): kept by the books, shown by the screen.
                if let Err(e) = books.apply(&msg) {
                    screen.note(format!("CHECK {e}"));
                }
                if let Some(book) = books.book(&args.symbol) {
                    screen.status(&args.symbol, book.halted);
                }
                screen
                    .draw(false, |depth| shown(args, books.book(&args.symbol), snapshots, problems, depth))?;
                continue;
            }
            _ => continue,
        }
        received += 1;
        if msg.msg_type() == b"W" {
            snapshots += 1;
        }
        for entry in msg.group(tags::NO_MD_ENTRIES) {
            if msg.msg_type() == b"X" && entry.get(tags::MD_ENTRY_TYPE) == Some(b"2") {
                screen.trade(format!(
                    "{} {}@{}",
                    entry.get_str(fix::codec::tag::SYMBOL).unwrap_or(""),
                    entry.get_str(tags::MD_ENTRY_SIZE).unwrap_or(""),
                    entry.get_str(tags::MD_ENTRY_PX).unwrap_or("")
                ));
            }
        }
        if let Err(e) = books.apply(&msg) {
            problems += 1;
            screen.note(format!("CHECK {e}; asking for a fresh snapshot"));
            client.send(b"V", |e| request(e, &id, "2", depth, &args.symbol)).await.map_err(fix_err)?;
            client.send(b"V", |e| request(e, &id, "1", depth, &args.symbol)).await.map_err(fix_err)?;
        } else if let Some(book) = books.book(&args.symbol).filter(|_| !screen.terminal()) {
            println!("BOOK rptseq {} {}", book.rpt_seq.unwrap_or(0), top_line(book, args.depth));
        }
        screen.draw(false, |depth| shown(args, books.book(&args.symbol), snapshots, problems, depth))?;
        if args.count > 0 && received >= args.count {
            break;
        }
    }
    if let Some(mut file) = record {
        file.flush()?;
    }
    screen.draw(true, |depth| shown(args, books.book(&args.symbol), snapshots, problems, depth))?;
    if args.check {
        println!("check: {received} messages, {snapshots} snapshots, {problems} problem(s)");
        if problems > 0 {
            return Err(MdError::Check(problems));
        }
    }
    Ok(())
}

fn price(units: engine::PriceUnits) -> String {
    Decimal::new(units.get(), engine::PRICE_SCALE).normalize().to_string()
}

/// `bids Q@P … | asks Q@P …`, `depth` levels each side.
fn top_line(book: &MdBook, depth: usize) -> String {
    let side = |bid| {
        book.side(bid)
            .iter()
            .take(depth)
            .map(|&(p, q)| format!("{q}@{}", price(p)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!("bids {} | asks {}", side(true), side(false))
}

/// The FIX book as the screen shows it.
fn shown(args: &MdArgs, book: Option<&MdBook>, snapshots: u64, problems: u64, depth: usize) -> Shown {
    let rpt_seq = book.and_then(|b| b.rpt_seq).unwrap_or(0);
    let side = |bid| -> Vec<(u64, String)> {
        book.map(|b| b.side(bid).into_iter().take(depth).map(|(p, q)| (q, price(p))).collect())
            .unwrap_or_default()
    };
    Shown {
        header: format!(
            "{} (FIX)  RptSeq {rpt_seq}  snapshots {snapshots}  problems {problems}",
            args.symbol
        ),
        halted: book.is_some_and(|b| b.halted),
        bids: side(true),
        asks: side(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_asks_for_bids_offers_and_trades_of_one_symbol() {
        let mut e = Encoder::new();
        e.begin(b"V", "me", "EXCHANGE", 2, 0);
        request(&mut e, "md-BTC-USD", "1", 0, "BTC-USD");
        let text = String::from_utf8_lossy(e.finish()).replace('\x01', "|");
        assert!(
            text.contains("|262=md-BTC-USD|263=1|264=0|265=1|267=3|269=0|269=1|269=2|146=1|55=BTC-USD|"),
            "{text}"
        );
        let mut e = Encoder::new();
        e.begin(b"V", "me", "EXCHANGE", 3, 0);
        request(&mut e, "md-BTC-USD", "2", 0, "BTC-USD");
        let text = String::from_utf8_lossy(e.finish()).replace('\x01', "|");
        assert!(text.contains("|262=md-BTC-USD|263=2|10="), "{text}");
        assert_eq!(price(engine::PriceUnits(10_050_000_000)), "100.5");
    }
}
