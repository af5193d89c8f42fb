//! `exchange order` (one order, print its execution reports) and `exchange client`
//! (interactive: new, cancel, replace, status), both FIX 4.4 over QUIC (or TCP).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use engine::price_text::{self, PriceTextError};
use fix::codec::tag;
use fixclient::{
    describe_sent, fresh_cl_ord_id, ClientConfig, ClientError, ClientTransport, FixClient, Received,
};
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

/// Why `exchange order` or `exchange client` could not do what was asked; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientCliError {
    /// The TLS handshake failed: the certificate trusted is not the venue's.
    #[error(
        "{source}\n  trusted {} ({ca_source}). Pass the certificate `exchange serve` printed at start-up \
         with --ca PATH, or --data DIR (or {env}=DIR) for a venue started with --data DIR",
        ca.display(),
        env = DATA_DIR_ENV
    )]
    Untrusted {
        /// What the client saw (boxed: a client error is large, and errors travel by value).
        source: Box<ClientError>,
        /// The certificate file trusted.
        ca: PathBuf,
        /// Where that choice came from (`--ca`, `--data DIR`, the default).
        ca_source: String,
    },
    /// Nothing answered in time over QUIC.
    #[error("{0} (--connect-timeout sets the wait; --tcp uses FIX/TCP)")]
    Timeout(Box<ClientError>),
    /// The connection or the session failed.
    #[error(transparent)]
    Session(Box<ClientError>),
    /// The async runtime could not start.
    #[error("starting the I/O runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// `--connect-timeout` out of range.
    #[error("{0:?}: seconds, more than 0 and at most {max}", max = CONNECT_TIMEOUT_S_MAX)]
    ConnectTimeout(String),
    /// A quantity that is not a positive whole number of lots.
    #[error("quantity must be a positive whole number of lots, got {0:?}")]
    Qty(String),
    /// A limit or stop price the venue would refuse as malformed.
    #[error("{field} {text:?}: {source}")]
    Price {
        /// `price` or `stop`.
        field: &'static str,
        /// The text given.
        text: String,
        /// What is wrong with it.
        source: PriceTextError,
    },
    /// `+SECONDS` that is not a whole number.
    #[error("{0:?}: +SECONDS must be a whole number")]
    ExpirySeconds(String),
    /// An expiry neither `+SECONDS` nor a UTCTimestamp.
    #[error("{0:?}: expected +SECONDS or YYYYMMDD-HH:MM:SS (UTC)")]
    ExpiryFormat(String),
    /// Time in force GTD without an expiry.
    #[error("a GTD order needs an expiry (--expire-time / gtd=+SECS)")]
    GtdWithoutExpiry,
    /// An expiry with a time in force other than GTD.
    #[error("an expiry needs time in force gtd")]
    ExpiryWithoutGtd,
    /// An order option of the interactive client not known.
    #[error("unknown order option {0:?} (type help)")]
    UnknownOption(String),
    /// `buy`/`sell` with too few words.
    #[error("usage: buy|sell QTY SYMBOL PRICE|market [OPTION...]")]
    OrderUsage,
    /// `cancel`/`replace` with the wrong words.
    #[error("usage: cancel ID | replace ID QTY [PRICE]")]
    CancelUsage,
    /// A command of the interactive client not known.
    #[error("unknown command {0:?} (type help)")]
    UnknownCommand(String),
}

impl From<ClientError> for ClientCliError {
    fn from(e: ClientError) -> ClientCliError {
        ClientCliError::Session(Box::new(e))
    }
}

fn connect_timeout_secs(text: &str) -> Result<f64, ClientCliError> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= CONNECT_TIMEOUT_S_MAX => Ok(s),
        _ => Err(ClientCliError::ConnectTimeout(text.to_owned())),
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
    pub async fn connect(&self) -> Result<FixClient, ClientCliError> {
        let timeout = Duration::from_secs_f64(self.connect_timeout);
        match FixClient::connect_within(&self.config(), timeout).await {
            Ok(client) => Ok(client),
            Err(e @ (ClientError::Tls(_) | ClientError::Certificate { .. })) => {
                let (ca, ca_source) = self.ca();
                Err(ClientCliError::Untrusted { source: Box::new(e), ca, ca_source })
            }
            Err(e @ ClientError::Timeout { .. }) if !self.tcp => Err(ClientCliError::Timeout(Box::new(e))),
            Err(e) => Err(e.into()),
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SideArg {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

/// Time in force on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TifArg {
    /// Good till cancel.
    Gtc,
    /// Immediate or cancel.
    Ioc,
    /// Fill or kill.
    Fok,
    /// Good till date: with --expire-time.
    Gtd,
}

/// Parses a quantity of whole lots, with a message a person can act on (`-5` would otherwise
/// read as an unknown flag).
fn qty_lots(text: &str) -> Result<u64, ClientCliError> {
    match text.trim().parse::<u64>() {
        Ok(q) if q > 0 => Ok(q),
        _ => Err(ClientCliError::Qty(text.to_owned())),
    }
}

/// When a GTD order expires: `+SECONDS` from now, or a FIX UTCTimestamp
/// (`YYYYMMDD-HH:MM:SS[.sss]`, UTC). Returns nanoseconds since the epoch.
fn expire_time(text: &str, now_ns: u64) -> Result<u64, ClientCliError> {
    if let Some(secs) = text.strip_prefix('+') {
        let secs: u64 = secs.parse().map_err(|_| ClientCliError::ExpirySeconds(text.to_owned()))?;
        return Ok(now_ns.saturating_add(secs.saturating_mul(1_000_000_000)));
    }
    fix::codec::parse_utc_timestamp(text.as_bytes())
        .ok_or_else(|| ClientCliError::ExpiryFormat(text.to_owned()))
}

/// Everything a NewOrderSingle of these clients can say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderSpec {
    /// Symbol.
    pub symbol: String,
    /// Side.
    pub side: SideArg,
    /// Quantity in lots.
    pub qty: u64,
    /// Limit price; none: a market order.
    pub price: Option<String>,
    /// Stop price: a stop (market) or stop-limit order.
    pub stop_price: Option<String>,
    /// Time in force; none: the venue's default (GTC, IOC for market orders).
    pub tif: Option<TifArg>,
    /// Expiry of a GTD order, as written (`+SECONDS` or a UTCTimestamp).
    pub expire: Option<String>,
    /// Displayed quantity of an iceberg.
    pub display_qty: Option<u64>,
    /// Post-only: refused rather than taking liquidity.
    pub post_only: bool,
}

impl OrderSpec {
    /// Checks what the venue would refuse as a malformed message, before sending.
    fn check(&self, now_ns: u64) -> Result<Option<u64>, ClientCliError> {
        for (field, text) in [("price", &self.price), ("stop", &self.stop_price)] {
            if let Some(text) = text {
                price_text::parse_units(text).map_err(|source| ClientCliError::Price {
                    field,
                    text: text.clone(),
                    source,
                })?;
            }
        }
        let expire_ns = self.expire.as_deref().map(|t| expire_time(t, now_ns)).transpose()?;
        match (self.tif, expire_ns) {
            (Some(TifArg::Gtd), None) => return Err(ClientCliError::GtdWithoutExpiry),
            (Some(TifArg::Gtd), Some(_)) | (_, None) => {}
            (_, Some(_)) => return Err(ClientCliError::ExpiryWithoutGtd),
        }
        Ok(expire_ns)
    }

    /// Writes the NewOrderSingle's fields.
    fn encode(&self, e: &mut fix::codec::Encoder, cl_ord_id: &str, expire_ns: Option<u64>, now_ns: u64) {
        e.str(tag::CL_ORD_ID, cl_ord_id);
        e.str(tag::SYMBOL, &self.symbol);
        e.char(tag::SIDE, side_code(self.side));
        e.time(tag::TRANSACT_TIME, now_ns);
        e.u64(tag::ORDER_QTY, self.qty);
        let ord_type = match (&self.price, &self.stop_price) {
            (None, None) => b'1',
            (Some(_), None) => b'2',
            (None, Some(_)) => b'3',
            (Some(_), Some(_)) => b'4',
        };
        e.char(tag::ORD_TYPE, ord_type);
        if let Some(p) = &self.price {
            e.str(tag::PRICE, p);
        }
        if let Some(p) = &self.stop_price {
            e.str(tag::STOP_PX, p);
        }
        if let Some(tif) = self.tif {
            e.char(tag::TIME_IN_FORCE, tif_code(tif));
        }
        if let Some(ns) = expire_ns {
            e.time(tag::EXPIRE_TIME, ns);
        }
        if let Some(d) = self.display_qty {
            e.u64(tag::MAX_FLOOR, d);
        }
        if self.post_only {
            e.char(tag::EXEC_INST, b'6');
        }
    }

    /// How the order reads in `status` (`@ 100.50`, `market`, `stop 99.00`).
    fn price_text(&self) -> String {
        match (&self.price, &self.stop_price) {
            (Some(p), None) => format!("@ {p}"),
            (None, None) => "market".into(),
            (None, Some(s)) => format!("stop {s}"),
            (Some(p), Some(s)) => format!("@ {p} stop {s}"),
        }
    }
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
    /// Quantity (whole lots, more than 0).
    #[arg(long, allow_hyphen_values = true, value_parser = qty_lots)]
    qty: u64,
    /// Limit price; without it, a market order.
    #[arg(long)]
    price: Option<String>,
    /// Stop price: a stop order (with --price, a stop-limit order) that waits until the last
    /// trade reaches it.
    #[arg(long)]
    stop_price: Option<String>,
    /// Time in force (default gtc; ioc for market orders).
    #[arg(long, value_enum)]
    tif: Option<TifArg>,
    /// Expiry of a GTD order: +SECONDS from now or YYYYMMDD-HH:MM:SS (UTC). Implies --tif gtd.
    #[arg(long)]
    expire_time: Option<String>,
    /// Iceberg: show this many lots at a time.
    #[arg(long, allow_hyphen_values = true, value_parser = qty_lots)]
    display_qty: Option<u64>,
    /// Post-only: refused (would_take) instead of taking liquidity.
    #[arg(long)]
    post_only: bool,
    /// Client order id (default: generated).
    #[arg(long)]
    id: Option<String>,
    /// How long to wait for more reports once the order rests, in ms.
    #[arg(long, default_value_t = 300)]
    wait_ms: u64,
}

impl OrderArgs {
    fn spec(&self) -> OrderSpec {
        OrderSpec {
            symbol: self.symbol.clone(),
            side: self.side,
            qty: self.qty,
            price: self.price.clone(),
            stop_price: self.stop_price.clone(),
            tif: self.tif.or(self.expire_time.as_ref().map(|_| TifArg::Gtd)),
            expire: self.expire_time.clone(),
            display_qty: self.display_qty,
            post_only: self.post_only,
        }
    }
}

fn side_code(s: SideArg) -> u8 {
    match s {
        SideArg::Buy => b'1',
        SideArg::Sell => b'2',
    }
}

fn tif_code(t: TifArg) -> u8 {
    match t {
        TifArg::Gtc => b'1',
        TifArg::Ioc => b'3',
        TifArg::Fok => b'4',
        TifArg::Gtd => b'6',
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
pub fn order(args: &OrderArgs) -> Result<bool, ClientCliError> {
    let spec = args.spec();
    let expire_ns = spec.check(now_ns())?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = args.connect.connect().await?;
        let id = args.id.clone().unwrap_or_else(|| fresh_cl_ord_id("o"));
        client.send(b"D", |e| spec.encode(e, &id, expire_ns, now_ns())).await?;
        let mut accepted = true;
        let mut wait = Duration::from_secs(10);
        while let Some(m) = client.recv(wait).await? {
            println!("{}", describe_sent(&m, spec.price.as_deref()));
            if m.msg_type() != "8" || m.get(tag::EXEC_TYPE).as_deref() == Some("8") {
                accepted = false;
            }
            if is_final(&m) {
                break;
            }
            wait = Duration::from_millis(args.wait_ms);
        }
        client.logout().await?;
        Ok(accepted)
    })
}

/// `exchange client`.
#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Prefix of this run's ClOrdIDs (default: derived from the clock, so every run's ids
    /// differ and a second run never collides with the first one's resting orders).
    #[arg(long)]
    id_prefix: Option<String>,
    /// At the end of input (or `quit`), wait at most this many seconds for the answers to
    /// requests still outstanding, then log out.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    answer_timeout: u64,
}

/// The interactive client's commands (also shown by `exchange client --help`).
pub const CLIENT_HELP: &str = "commands:
  buy|sell QTY SYMBOL PRICE|market [OPTION...]   new order; options:
      gtc | ioc | fok | gtd=+SECS | gtd=YYYYMMDD-HH:MM:SS   time in force (default gtc; market: ioc)
      stop=PRICE     stop order (with PRICE: stop-limit), waits until the last trade reaches it
      show=QTY       iceberg: show QTY lots at a time
      post           post-only: rejected instead of taking liquidity
  cancel ID                                      cancel an order (ID: as printed, or its number)
  replace ID QTY [PRICE]                         change quantity (total) and/or price
  status                                         your orders and their state
  wait                                           wait for the answers to every request sent
  help                                           this list
  quit                                           wait for outstanding answers, log out
At the end of input the client waits for outstanding answers (--answer-timeout), so it can be
driven by a script or a here-document.";

/// One line of input, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Input {
    Nothing,
    Quit,
    Help,
    Status,
    Wait,
    New(OrderSpec),
    Cancel(String),
    Replace { id: String, qty: u64, price: Option<String> },
}

/// Reads one command line; the error is what to tell the user.
fn parse_input(line: &str) -> Result<Input, ClientCliError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let qty = |q: &str| qty_lots(q);
    Ok(match words.as_slice() {
        [] => Input::Nothing,
        ["quit" | "exit"] => Input::Quit,
        ["help" | "?"] => Input::Help,
        ["status"] => Input::Status,
        ["wait"] => Input::Wait,
        [s @ ("buy" | "sell"), q, symbol, price, options @ ..] => {
            let mut spec = OrderSpec {
                symbol: symbol.to_string(),
                side: if *s == "buy" { SideArg::Buy } else { SideArg::Sell },
                qty: qty(q)?,
                price: (*price != "market").then(|| price.to_string()),
                stop_price: None,
                tif: None,
                expire: None,
                display_qty: None,
                post_only: false,
            };
            for option in options {
                match option.split_once('=') {
                    None if *option == "gtc" => spec.tif = Some(TifArg::Gtc),
                    None if *option == "ioc" => spec.tif = Some(TifArg::Ioc),
                    None if *option == "fok" => spec.tif = Some(TifArg::Fok),
                    None if *option == "post" => spec.post_only = true,
                    Some(("gtd", when)) => {
                        spec.tif = Some(TifArg::Gtd);
                        spec.expire = Some(when.to_owned());
                    }
                    Some(("stop", p)) => spec.stop_price = Some(p.to_owned()),
                    Some(("show", q)) => spec.display_qty = Some(qty(q)?),
                    _ => return Err(ClientCliError::UnknownOption(option.to_string())),
                }
            }
            Input::New(spec)
        }
        ["buy" | "sell", ..] => return Err(ClientCliError::OrderUsage),
        ["cancel", id] => Input::Cancel(id.to_string()),
        ["replace", id, q, rest @ ..] if rest.len() <= 1 => {
            Input::Replace { id: id.to_string(), qty: qty(q)?, price: rest.first().map(|p| p.to_string()) }
        }
        ["cancel" | "replace", ..] => return Err(ClientCliError::CancelUsage),
        _ => return Err(ClientCliError::UnknownCommand(words[0].to_owned())),
    })
}

/// What the interactive client knows of one of its orders.
#[derive(Clone, Debug)]
struct Tracked {
    /// The order's current ClOrdID (changes with each replace).
    id: String,
    /// The ClOrdID of a replace sent and not yet answered: the venue handles requests in
    /// order, so a cancel or replace sent meanwhile names this one (FIX chaining).
    pending_id: Option<String>,
    spec: OrderSpec,
    /// `sent`, then the venue's OrdStatus (39) in words.
    status: &'static str,
    cum: String,
    leaves: String,
}

/// The client's orders and its requests still waiting for an answer. Sans-IO: lines and
/// venue messages in, text and messages to send out.
#[derive(Debug)]
struct Desk {
    run: String,
    next: u64,
    orders: Vec<Tracked>,
    /// Every ClOrdID this run used (orders, replaces, cancel requests) → its order.
    by_id: std::collections::HashMap<String, usize>,
    /// Requests (by ClOrdID) sent and not yet answered, with the MsgSeqNum that carried them.
    outstanding: BTreeMap<String, u64>,
}

/// Words for OrdStatus (39).
fn status_words(code: &str) -> &'static str {
    match code {
        "0" => "new",
        "1" => "partially filled",
        "2" => "filled",
        "4" => "canceled",
        "8" => "rejected",
        "C" => "expired",
        _ => "?",
    }
}

impl Desk {
    fn new(run: String) -> Desk {
        Desk { run, next: 1, orders: Vec::new(), by_id: Default::default(), outstanding: BTreeMap::new() }
    }

    fn fresh_id(&mut self) -> String {
        let id = format!("{}{}", self.run, self.next);
        self.next += 1;
        id
    }

    /// The order an id names: its ClOrdID, or the number after this run's prefix.
    fn find(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).or_else(|| self.by_id.get(&format!("{}{id}", self.run))).copied()
    }

    fn is_live(o: &Tracked) -> bool {
        matches!(o.status, "sent" | "new" | "partially filled")
    }

    /// A new order: its id and index.
    fn new_order(&mut self, spec: OrderSpec) -> String {
        let id = self.fresh_id();
        let leaves = spec.qty.to_string();
        self.by_id.insert(id.clone(), self.orders.len());
        self.orders.push(Tracked {
            id: id.clone(),
            pending_id: None,
            spec,
            status: "sent",
            cum: "0".into(),
            leaves,
        });
        id
    }

    fn sent(&mut self, id: &str, seq: u64) {
        self.outstanding.insert(id.to_owned(), seq);
    }

    /// Updates the order a venue message concerns and clears the request it answers.
    fn on_message(&mut self, m: &Received) {
        let answered = match m.msg_type().as_str() {
            "8" | "9" => m.get(tag::CL_ORD_ID),
            "j" => m.get(tag::BUSINESS_REJECT_REF_ID),
            "3" => m.get(tag::REF_SEQ_NUM).and_then(|seq| {
                self.outstanding.iter().find(|(_, s)| s.to_string() == seq).map(|(id, _)| id.clone())
            }),
            _ => None,
        };
        if let Some(id) = &answered {
            self.outstanding.remove(id);
            // A new order refused before it became an order (35=j or 35=3) is rejected too.
            if matches!(m.msg_type().as_str(), "j" | "3") {
                if let Some(o) = self.find(id).map(|i| &mut self.orders[i]).filter(|o| o.id == *id) {
                    if o.status == "sent" {
                        o.status = "rejected";
                    }
                }
            }
        }
        if m.msg_type() == "9" {
            // A refused replace: the order keeps its id.
            let refused = m.get(tag::CL_ORD_ID);
            if let Some(o) = refused.as_ref().and_then(|id| self.find(id)).map(|i| &mut self.orders[i]) {
                if o.pending_id == refused {
                    o.pending_id = None;
                }
            }
        }
        if m.msg_type() != "8" {
            return;
        }
        let Some(index) = m.get(tag::CL_ORD_ID).and_then(|id| self.find(&id)) else { return };
        let o = &mut self.orders[index];
        if let Some(status) = m.get(tag::ORD_STATUS) {
            o.status = status_words(&status);
        }
        o.cum = m.get(tag::CUM_QTY).unwrap_or_else(|| o.cum.clone());
        o.leaves = m.get(tag::LEAVES_QTY).unwrap_or_else(|| o.leaves.clone());
        if m.get(tag::EXEC_TYPE).as_deref() == Some("5") {
            // The replace took effect: the order now goes by its new id, quantity and price.
            o.id = m.get(tag::CL_ORD_ID).unwrap_or_default();
            if o.pending_id.as_ref() == Some(&o.id) {
                o.pending_id = None;
            }
            if let Some(q) = m.get(tag::ORDER_QTY).and_then(|q| q.parse().ok()) {
                o.spec.qty = q;
            }
            if let Some(p) = m.get(tag::PRICE) {
                o.spec.price = Some(p);
            }
        }
    }

    fn describe(&self, m: &Received) -> String {
        let sent = m.get(tag::CL_ORD_ID).and_then(|id| self.find(&id)).map(|i| &self.orders[i].spec);
        describe_sent(m, sent.and_then(|s| s.price.as_deref()))
    }

    fn status(&self) -> String {
        if self.orders.is_empty() {
            return "no orders".into();
        }
        let mut lines = Vec::new();
        for o in &self.orders {
            let side = if o.spec.side == SideArg::Buy { "buy" } else { "sell" };
            lines.push(format!(
                "{:<14} {} {side} {} {} {} cum={} leaves={}",
                o.id,
                o.spec.symbol,
                o.spec.qty,
                o.spec.price_text(),
                o.status,
                o.cum,
                if Desk::is_live(o) { o.leaves.as_str() } else { "0" }
            ));
        }
        lines.join("\n")
    }
}

/// A run prefix from the clock: six base-36 digits of the milliseconds (they repeat after 25
/// days), then a dot, so `k3x9qa.1` reads as "order 1 of run k3x9qa".
fn run_prefix(now_ns: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut ms = now_ns / 1_000_000;
    let mut out = [0u8; 6];
    for digit in out.iter_mut().rev() {
        *digit = DIGITS[(ms % 36) as usize];
        ms /= 36;
    }
    format!("{}.", String::from_utf8_lossy(&out))
}

/// Runs the interactive client until `quit` or end of input, then waits for outstanding answers.
pub fn client(args: &ClientArgs) -> Result<(), ClientCliError> {
    use std::io::{IsTerminal, Write};
    let rt = runtime()?;
    let interactive = std::io::stdin().is_terminal();
    let (line_tx, mut line_rx) = tokio::sync::mpsc::channel::<String>(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let prompt = || {
        if interactive {
            print!("> ");
            let _ = std::io::stdout().flush();
        }
    };
    rt.block_on(async {
        let mut client = args.connect.connect().await?;
        let mut desk = Desk::new(args.id_prefix.clone().unwrap_or_else(|| run_prefix(now_ns())));
        println!("logged on as {}; order ids {}N; type help", args.connect.account, desk.run);
        prompt();
        loop {
            tokio::select! {
                line = line_rx.recv() => {
                    let Some(line) = line else { break };
                    let input = match parse_input(&line) {
                        Ok(input) => input,
                        Err(e) => { println!("{e}"); prompt(); continue }
                    };
                    match input {
                        Input::Nothing => {}
                        Input::Quit => break,
                        Input::Help => println!("{CLIENT_HELP}"),
                        Input::Status => println!("{}", desk.status()),
                        Input::Wait => await_answers(&mut client, &mut desk, args.answer_timeout).await?,
                        Input::New(spec) => {
                            let now = now_ns();
                            match spec.check(now) {
                                Err(e) => println!("{e}"),
                                Ok(expire_ns) => {
                                    let id = desk.new_order(spec.clone());
                                    let seq = client.send(b"D", |e| spec.encode(e, &id, expire_ns, now)).await?;
                                    desk.sent(&id, seq);
                                }
                            }
                        }
                        Input::Cancel(id) => {
                            let Some(index) = desk.find(&id) else { println!("no order {id}"); prompt(); continue };
                            let o = desk.orders[index].clone();
                            let request = desk.fresh_id();
                            desk.by_id.insert(request.clone(), index);
                            let seq = client.send(b"F", |e| {
                                e.str(tag::ORIG_CL_ORD_ID, o.pending_id.as_ref().unwrap_or(&o.id));
                                e.str(tag::CL_ORD_ID, &request);
                                e.str(tag::SYMBOL, &o.spec.symbol);
                                e.char(tag::SIDE, side_code(o.spec.side));
                                e.time(tag::TRANSACT_TIME, now_ns());
                            }).await?;
                            desk.sent(&request, seq);
                        }
                        Input::Replace { id, qty, price } => {
                            let Some(index) = desk.find(&id) else { println!("no order {id}"); prompt(); continue };
                            let o = desk.orders[index].clone();
                            let new_id = desk.fresh_id();
                            desk.by_id.insert(new_id.clone(), index);
                            desk.orders[index].pending_id = Some(new_id.clone());
                            let price = price.or(o.spec.price.clone());
                            let seq = client.send(b"G", |e| {
                                e.str(tag::ORIG_CL_ORD_ID, o.pending_id.as_ref().unwrap_or(&o.id));
                                e.str(tag::CL_ORD_ID, &new_id);
                                e.str(tag::SYMBOL, &o.spec.symbol);
                                e.char(tag::SIDE, side_code(o.spec.side));
                                e.u64(tag::ORDER_QTY, qty);
                                e.char(tag::ORD_TYPE, if price.is_some() { b'2' } else { b'1' });
                                if let Some(p) = &price { e.str(tag::PRICE, p); }
                                e.time(tag::TRANSACT_TIME, now_ns());
                            }).await?;
                            desk.sent(&new_id, seq);
                        }
                    }
                    prompt();
                }
                m = client.recv(Duration::from_secs(3600)) => {
                    let Some(m) = m? else { continue };
                    if interactive { println!(); }
                    println!("{}", desk.describe(&m));
                    desk.on_message(&m);
                    prompt();
                }
            }
        }
        // A script's last line is often an order: its answer is what the script is for.
        await_answers(&mut client, &mut desk, args.answer_timeout).await?;
        client.logout().await.map_err(ClientCliError::from)
    })
}

/// Prints venue messages until every request sent has its answer, or `timeout_s` passes.
async fn await_answers(
    client: &mut FixClient,
    desk: &mut Desk,
    timeout_s: u64,
) -> Result<(), ClientCliError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s);
    while !desk.outstanding.is_empty() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.recv(left).await? {
            Some(m) => {
                println!("{}", desk.describe(&m));
                desk.on_message(&m);
            }
            None => {
                let ids: Vec<&str> = desk.outstanding.keys().map(String::as_str).collect();
                eprintln!("client: no answer within {timeout_s} s for {}", ids.join(", "));
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_lines_carry_every_order_type() {
        let Ok(Input::New(spec)) = parse_input("sell 10 BTC-USD 101.00 show=2 post gtd=+60 stop=100.5")
        else {
            panic!()
        };
        assert_eq!(spec.side, SideArg::Sell);
        assert_eq!(
            (spec.qty, spec.price.as_deref(), spec.stop_price.as_deref()),
            (10, Some("101.00"), Some("100.5"))
        );
        assert_eq!((spec.display_qty, spec.post_only, spec.tif), (Some(2), true, Some(TifArg::Gtd)));
        assert_eq!(spec.price_text(), "@ 101.00 stop 100.5");
        let Ok(Input::New(market)) = parse_input("buy 1 AAPL market ioc") else { panic!() };
        assert_eq!((market.price, market.tif), (None, Some(TifArg::Ioc)));
        assert_eq!(
            parse_input("replace 3 8").unwrap(),
            Input::Replace { id: "3".into(), qty: 8, price: None }
        );
        let err = |line: &str| parse_input(line).unwrap_err().to_string();
        assert!(err("buy -5 AAPL 1").contains("positive whole number"));
        assert!(err("buy 1 AAPL 1 hidden").contains("unknown order option"));
        assert!(err("fly").contains("type help"));
        assert!(matches!(parse_input("buy 1"), Err(ClientCliError::OrderUsage)));
        assert!(matches!(parse_input("cancel"), Err(ClientCliError::CancelUsage)));
        assert_eq!(parse_input("  ").unwrap(), Input::Nothing);
    }

    #[test]
    fn expiry_is_relative_or_a_utc_timestamp_and_needs_gtd() {
        assert_eq!(expire_time("+60", 1_000).unwrap(), 60_000_001_000);
        assert_eq!(expire_time("19700101-00:00:02", 0).unwrap(), 2_000_000_000);
        assert!(matches!(expire_time("tomorrow", 0), Err(ClientCliError::ExpiryFormat(_))));
        assert!(matches!(expire_time("+1.5", 0), Err(ClientCliError::ExpirySeconds(_))));
        let mut spec = match parse_input("buy 1 AAPL 1 gtd=+1") {
            Ok(Input::New(spec)) => spec,
            other => panic!("{other:?}"),
        };
        assert_eq!(spec.check(0).unwrap(), Some(1_000_000_000));
        spec.tif = Some(TifArg::Ioc);
        assert!(matches!(spec.check(0), Err(ClientCliError::ExpiryWithoutGtd)));
        spec.expire = None;
        spec.tif = Some(TifArg::Gtd);
        assert!(matches!(spec.check(0), Err(ClientCliError::GtdWithoutExpiry)));
        // Price text the venue would refuse is caught before sending, naming the rule.
        spec.tif = None;
        spec.price = Some("1.000000001".into());
        let e = spec.check(0).unwrap_err().to_string();
        assert_eq!(e, "price \"1.000000001\": 9 decimals: a price has at most 8 (PRICE_SCALE)");
        spec.price = Some("1".into());
        spec.stop_price = Some("+1".into());
        assert!(matches!(spec.check(0), Err(ClientCliError::Price { field: "stop", .. })));
    }

    #[test]
    fn run_prefixes_differ_by_the_millisecond_and_ids_resolve_by_number() {
        assert_ne!(run_prefix(1_000_000), run_prefix(2_000_000));
        assert_eq!(run_prefix(0), "000000.");
        let mut desk = Desk::new("r.".into());
        let spec = match parse_input("buy 1 AAPL 1") {
            Ok(Input::New(spec)) => spec,
            other => panic!("{other:?}"),
        };
        let id = desk.new_order(spec);
        assert_eq!(id, "r.1");
        assert_eq!((desk.find("r.1"), desk.find("1"), desk.find("2")), (Some(0), Some(0), None));
        assert!(
            desk.status().contains("r.1            AAPL buy 1 @ 1 sent cum=0 leaves=1"),
            "{}",
            desk.status()
        );
    }

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
