//! `exchange order` (one order, print its execution reports) and `exchange client`
//! (interactive: new, cancel, replace, status), both FIX 4.4 over QUIC (or TCP).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use engine::Side;
use gateway::client::{
    describe, fresh_cl_ord_id, new_order_fields, ClientConfig, ClientError, ClientTransport, FixClient,
    Received,
};
use gateway::fix::tag;
use gateway::server::now_ns;

/// How to reach and log on to the venue.
#[derive(Args, Clone, Debug)]
pub struct ConnectArgs {
    /// Account name.
    #[arg(long)]
    pub account: String,
    /// Password.
    #[arg(long)]
    pub password: String,
    /// Venue address (QUIC; with --tcp the FIX/TCP port, default 127.0.0.1:9877).
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// Plain TCP instead of QUIC.
    #[arg(long)]
    pub tcp: bool,
    /// Certificate to trust: the path `exchange serve` prints at start-up. Default:
    /// DIR/tls/cert.pem with --data DIR or EXCHANGE_DATA=DIR, else var/tls/cert.pem.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// The venue's data directory (its `serve --data`): trust DIR/tls/cert.pem. The environment
    /// variable EXCHANGE_DATA does the same.
    #[arg(long, value_name = "DIR", conflicts_with = "ca")]
    pub data: Option<PathBuf>,
    /// Seconds to wait for the QUIC handshake (or TCP connect) before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = connect_timeout_secs)]
    pub connect_timeout: f64,
    /// Name the venue's certificate carries.
    #[arg(long, default_value = "localhost")]
    pub server_name: String,
    /// Client certificate (PEM), for a venue that requires one (`tls.client_ca`).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// SenderCompID (default: the account name).
    #[arg(long)]
    pub comp_id: Option<String>,
    /// The venue's CompID.
    #[arg(long, default_value = "EXCHANGE")]
    pub target: String,
}

/// The environment variable naming the venue's data directory, for clients.
pub const DATA_DIR_ENV: &str = "EXCHANGE_DATA";

/// Longest `--connect-timeout`: past it, the QUIC idle timeout (60 s) ends the attempt anyway.
const CONNECT_TIMEOUT_S_MAX: f64 = 60.0;

fn connect_timeout_secs(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= CONNECT_TIMEOUT_S_MAX => Ok(s),
        _ => Err(format!("{text:?}: seconds, more than 0 and at most {CONNECT_TIMEOUT_S_MAX}")),
    }
}

/// The certificate a client trusts: `--ca`, else `--data DIR`, else `$EXCHANGE_DATA`, each
/// giving `DIR/tls/cert.pem`, else `var/tls/cert.pem` (the default data directory, relative to
/// the working directory, as `serve` makes it). Also says where the choice came from.
pub fn resolve_ca(
    ca: Option<&Path>,
    data: Option<&Path>,
    env_data: Option<&std::ffi::OsStr>,
) -> (PathBuf, String) {
    let in_data = |dir: &Path| dir.join("tls").join("cert.pem");
    match (ca, data, env_data.filter(|d| !d.is_empty())) {
        (Some(ca), _, _) => (ca.to_path_buf(), "--ca".into()),
        (None, Some(dir), _) => (in_data(dir), format!("--data {}", dir.display())),
        (None, None, Some(dir)) => {
            (in_data(Path::new(dir)), format!("{DATA_DIR_ENV}={}", Path::new(dir).display()))
        }
        (None, None, None) => (PathBuf::from("var/tls/cert.pem"), "the default".into()),
    }
}

impl ConnectArgs {
    /// The certificate to trust and where that choice came from.
    pub fn ca(&self) -> (PathBuf, String) {
        let env = std::env::var_os(DATA_DIR_ENV);
        resolve_ca(self.ca.as_deref(), self.data.as_deref(), env.as_deref())
    }

    /// Connects and logs on; a failure is one message saying what was tried and what to do.
    pub async fn connect(&self) -> Result<FixClient, String> {
        let timeout = Duration::from_secs_f64(self.connect_timeout);
        match FixClient::connect_within(&self.config(), timeout).await {
            Ok(client) => Ok(client),
            Err(e @ (ClientError::Tls(_) | ClientError::Certificate { .. })) => {
                let (ca, source) = self.ca();
                Err(format!(
                    "{e}\n  trusted {} ({source}). Pass the certificate `exchange serve` printed at start-up \
                     with --ca PATH, or --data DIR (or {DATA_DIR_ENV}=DIR) for a venue started with --data DIR",
                    ca.display()
                ))
            }
            Err(e @ ClientError::Timeout { .. }) if !self.tcp => {
                Err(format!("{e} (--connect-timeout sets the wait; --tcp uses FIX/TCP)"))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// The client settings these arguments describe.
    pub fn config(&self) -> ClientConfig {
        let default_addr = if self.tcp { "127.0.0.1:9877" } else { "127.0.0.1:9878" };
        ClientConfig {
            addr: self.addr.unwrap_or_else(|| default_addr.parse().expect("literal")),
            transport: if self.tcp {
                ClientTransport::Tcp
            } else {
                ClientTransport::Quic {
                    ca: self.ca().0,
                    server_name: self.server_name.clone(),
                    client_cert: self.cert.clone().zip(self.key.clone()),
                    tuning: Default::default(),
                }
            },
            comp_id: self.comp_id.clone().unwrap_or_else(|| self.account.clone()),
            target_comp_id: self.target.clone(),
            username: self.account.clone(),
            password: self.password.clone(),
            heartbeat_s: 30,
        }
    }
}

/// Order side on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SideArg {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

/// Time in force on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TifArg {
    /// Good till cancel.
    Gtc,
    /// Immediate or cancel.
    Ioc,
    /// Fill or kill.
    Fok,
}

/// `exchange order`.
#[derive(Args, Clone, Debug)]
pub struct OrderArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Symbol.
    #[arg(long)]
    symbol: String,
    /// Side.
    #[arg(long, value_enum)]
    side: SideArg,
    /// Quantity (lots).
    #[arg(long)]
    qty: u64,
    /// Limit price; without it, a market order.
    #[arg(long)]
    price: Option<String>,
    /// Time in force (limit orders).
    #[arg(long, value_enum)]
    tif: Option<TifArg>,
    /// Client order id (default: generated).
    #[arg(long)]
    id: Option<String>,
    /// How long to wait for more reports once the order rests, in ms.
    #[arg(long, default_value_t = 300)]
    wait_ms: u64,
}

fn side(s: SideArg) -> Side {
    match s {
        SideArg::Buy => Side::Buy,
        SideArg::Sell => Side::Sell,
    }
}

fn tif_code(t: TifArg) -> u8 {
    match t {
        TifArg::Gtc => b'1',
        TifArg::Ioc => b'3',
        TifArg::Fok => b'4',
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// True when the report ends the order's life (filled, canceled, rejected, expired).
fn is_final(m: &Received) -> bool {
    match m.msg_type().as_str() {
        "8" => matches!(m.get(tag::ORD_STATUS).as_deref(), Some("2" | "4" | "8" | "C")),
        "j" | "3" | "9" => true,
        _ => false,
    }
}

/// Runs `exchange order`: prints each report; exit code 0 unless the order was rejected or
/// the session failed.
pub fn order(args: &OrderArgs) -> Result<bool, String> {
    let rt = runtime().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut client = args.connect.connect().await?;
        let id = args.id.clone().unwrap_or_else(|| fresh_cl_ord_id("o"));
        let tif = args.tif.map(tif_code);
        client
            .send(b"D", |e| {
                new_order_fields(
                    e,
                    &id,
                    &args.symbol,
                    side(args.side),
                    args.qty,
                    args.price.as_deref(),
                    tif,
                    now_ns(),
                )
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut accepted = true;
        let mut wait = Duration::from_secs(10);
        while let Some(m) = client.recv(wait).await.map_err(|e| e.to_string())? {
            println!("{}", describe(&m));
            if m.msg_type() != "8" || m.get(tag::EXEC_TYPE).as_deref() == Some("8") {
                accepted = false;
            }
            if is_final(&m) {
                break;
            }
            wait = Duration::from_millis(args.wait_ms);
        }
        client.logout().await.map_err(|e| e.to_string())?;
        Ok(accepted)
    })
}

/// `exchange client`.
#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    #[command(flatten)]
    connect: ConnectArgs,
}

/// What the interactive client knows of one of its orders.
#[derive(Clone, Debug)]
struct Tracked {
    symbol: String,
    side: String,
    qty: String,
    price: String,
    status: String,
    cum: String,
    leaves: String,
}

const HELP: &str = "commands:
  buy|sell QTY SYMBOL PRICE|market [gtc|ioc|fok]   new order
  cancel ID                                        cancel an order
  replace ID QTY [PRICE]                           change quantity and/or price
  status                                           your orders as reported so far
  help, quit";

/// Runs the interactive client until `quit` or end of input.
pub fn client(args: &ClientArgs) -> Result<(), String> {
    let rt = runtime().map_err(|e| e.to_string())?;
    let (line_tx, mut line_rx) = tokio::sync::mpsc::channel::<String>(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rt.block_on(async {
        let mut client = args.connect.connect().await?;
        println!("logged on as {}; type help", args.connect.account);
        let mut orders: BTreeMap<String, Tracked> = BTreeMap::new();
        let mut next = 1u64;
        loop {
            tokio::select! {
                line = line_rx.recv() => {
                    let Some(line) = line else { break };
                    let words: Vec<&str> = line.split_whitespace().collect();
                    match words.as_slice() {
                        [] => {}
                        ["quit" | "exit"] => break,
                        ["help"] => println!("{HELP}"),
                        ["status"] => {
                            if orders.is_empty() { println!("no orders"); }
                            for (id, o) in &orders {
                                println!("{id:<12} {} {} {} @ {} {} cum={} leaves={}", o.symbol, o.side, o.qty, o.price, o.status, o.cum, o.leaves);
                            }
                        }
                        [s @ ("buy" | "sell"), qty, symbol, price, rest @ ..] => {
                            let Ok(qty) = qty.parse::<u64>() else { println!("quantity must be a whole number"); continue };
                            let tif = match rest { [] | ["gtc"] => None, ["ioc"] => Some(b'3'), ["fok"] => Some(b'4'), _ => { println!("{HELP}"); continue } };
                            let side = if *s == "buy" { Side::Buy } else { Side::Sell };
                            let price = (*price != "market").then_some(*price);
                            let id = format!("c{next}");
                            next += 1;
                            orders.insert(id.clone(), Tracked { symbol: symbol.to_string(), side: s.to_string(), qty: qty.to_string(), price: price.unwrap_or("market").to_owned(), status: "sent".into(), cum: "0".into(), leaves: qty.to_string() });
                            client.send(b"D", |e| new_order_fields(e, &id, symbol, side, qty, price, tif, now_ns())).await.map_err(|e| e.to_string())?;
                        }
                        ["cancel", id] => {
                            let Some(o) = orders.get(*id).cloned() else { println!("no order {id}"); continue };
                            let new_id = format!("c{next}");
                            next += 1;
                            client.send(b"F", |e| {
                                e.str(tag::ORIG_CL_ORD_ID, id);
                                e.str(tag::CL_ORD_ID, &new_id);
                                e.str(tag::SYMBOL, &o.symbol);
                                e.char(tag::SIDE, if o.side == "buy" { b'1' } else { b'2' });
                                e.time(tag::TRANSACT_TIME, now_ns());
                            }).await.map_err(|e| e.to_string())?;
                        }
                        ["replace", id, qty, price @ ..] => {
                            let Some(o) = orders.get(*id).cloned() else { println!("no order {id}"); continue };
                            let new_id = format!("c{next}");
                            next += 1;
                            let price = price.first().map(|p| p.to_string()).or_else(|| (o.price != "market").then(|| o.price.clone()));
                            let mut renamed = o.clone();
                            renamed.qty = qty.to_string();
                            orders.insert(new_id.clone(), renamed);
                            client.send(b"G", |e| {
                                e.str(tag::ORIG_CL_ORD_ID, id);
                                e.str(tag::CL_ORD_ID, &new_id);
                                e.str(tag::SYMBOL, &o.symbol);
                                e.char(tag::SIDE, if o.side == "buy" { b'1' } else { b'2' });
                                e.str(tag::ORDER_QTY, qty);
                                e.char(tag::ORD_TYPE, b'2');
                                if let Some(p) = &price { e.str(tag::PRICE, p); }
                                e.time(tag::TRANSACT_TIME, now_ns());
                            }).await.map_err(|e| e.to_string())?;
                        }
                        _ => println!("{HELP}"),
                    }
                }
                m = client.recv(Duration::from_secs(3600)) => {
                    let Some(m) = m.map_err(|e| e.to_string())? else { continue };
                    println!("{}", describe(&m));
                    if m.msg_type() == "8" {
                        if let Some(o) = m.get(tag::CL_ORD_ID).and_then(|id| orders.get_mut(&id)) {
                            o.status = describe(&m).split_whitespace().next().unwrap_or("?").to_lowercase();
                            o.cum = m.get(tag::CUM_QTY).unwrap_or_default();
                            o.leaves = m.get(tag::LEAVES_QTY).unwrap_or_default();
                            if let Some(p) = m.get(tag::PRICE) { o.price = p; }
                        }
                    }
                }
            }
        }
        client.logout().await.map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_comes_from_ca_then_data_then_the_environment_then_var() {
        let (ca, data, env) = (Path::new("/x/ca.pem"), Path::new("/d"), std::ffi::OsStr::new("/e"));
        assert_eq!(resolve_ca(Some(ca), Some(data), Some(env)), (ca.to_path_buf(), "--ca".into()));
        assert_eq!(
            resolve_ca(None, Some(data), Some(env)),
            (PathBuf::from("/d/tls/cert.pem"), "--data /d".into())
        );
        assert_eq!(
            resolve_ca(None, None, Some(env)),
            (PathBuf::from("/e/tls/cert.pem"), "EXCHANGE_DATA=/e".into())
        );
        let default = (PathBuf::from("var/tls/cert.pem"), "the default".into());
        assert_eq!(resolve_ca(None, None, Some(std::ffi::OsStr::new(""))), default);
        assert_eq!(resolve_ca(None, None, None), default);
    }
}
