//! Compact, fixed-layout, little-endian binary encoding of [`Command`] and [`Event`]: the bytes
//! the journal stores.
//!
//! Every field is written in declaration order at a fixed width; the only variable parts are a
//! client order id (one length byte, then that many bytes) and optional fields, which are
//! announced by a flags byte and written only when present. Neither direction allocates.
//!
//! Decoding trusts nothing: every tag, enum byte, flag bit, bool and id length is checked, the
//! input must hold exactly one value (trailing bytes are an error), and a malformed input is a
//! [`CodecError`] naming the field and byte offset, never a panic.
//!
//! ```text
//! Command = tag:u8 seq:u64 ts:u64 body
//!   1 New      account:u32 symbol:u32 id side:u8 ord_type:u8 tif:u8 stp:u8 flags:u8
//!              price:i64 qty:u64 [stop_price:i64] [display_qty:u64] [expire_ts:u64]
//!              flags: 1 stop_price, 2 display_qty, 4 expire_ts, 8 post_only
//!   2 Cancel   account:u32 symbol:u32 id
//!   3 Replace  account:u32 symbol:u32 orig_id id flags:u8 qty:u64 [price:i64]   flags: 1 price
//!   4 CancelAll account:u32 symbol:u32 (u32::MAX, SYMBOL_UNKNOWN: every symbol)
//!   5 Halt     symbol:u32
//!   6 Resume   symbol:u32
//! Event = tag:u8 seq:u64 command_seq:u64 ts:u64 body
//!   1 Accepted account id symbol order_id:u64 side price:i64 qty tif:u8 flags:u8
//!              [stop_price:i64] [display_qty:u64]   flags: 1 stop_price, 2 display_qty
//!   2 Trade    symbol price qty maker_account maker_id maker_order_id maker_leaves_qty
//!              taker_account taker_id taker_order_id taker_leaves_qty aggressor
//!   3 Canceled account id symbol order_id reason:u8 leaves_qty
//!   4 Rejected account id symbol reason:u8
//!   5 Replaced account orig_id id symbol order_id price qty leaves_qty
//!   6 Expired  account id symbol order_id leaves_qty
//!   7 Triggered account id symbol order_id
//!   8 TradingStatus symbol halted:u8 (0 or 1)
//! id = len:u8 (1..=32) bytes[len]
//! ```
//!
//! Commands also have a **fixed layout** ([`Command::encode_fixed`], tags with the high bit
//! set): a 48-byte head with every field at a fixed offset, written as whole words, then a new
//! order's optional block and the ids padded to whole words. It is what the journal stores since
//! its format version 4: the matching thread writes it with a few stores. [`Command::decode`]
//! reads both layouts; a well-formed fixed-layout command takes a short path that reads whole
//! words, and anything that path refuses goes to the checking decoder for the precise error.
//!
//! A layout change is a new journal format version (`journal::SEGMENT_FORMAT_VERSION`).

use crate::command::{CancelOrder, Command, CommandHeader, CommandKind, NewOrder, ReplaceOrder};
use crate::event::{CancelReason, Event, EventKind, RejectReason};
use crate::types::{
    AccountId, ClOrdId, OrdType, OrderId, Price, PriceUnits, Side, StpMode, SymbolId, Tif, CL_ORD_ID_LEN_MAX,
    SYMBOL_UNKNOWN,
};

/// Encoded size of the largest command (a replace with two full-length ids and a price).
pub const COMMAND_ENCODED_LEN_MAX: usize = 1 + 8 + 8 + (4 + 4 + 2 * ID_LEN_MAX + 1 + 8 + 8);

/// Encoded size of the largest event (a trade with two full-length ids).
pub const EVENT_ENCODED_LEN_MAX: usize = 1 + 8 + 8 + 8 + (4 + 8 + 8 + 2 * (4 + ID_LEN_MAX + 8 + 8) + 1);

/// Encoded size of a full-length client order id: its length byte and bytes.
const ID_LEN_MAX: usize = 1 + CL_ORD_ID_LEN_MAX;

const NEW_ORDER_LEN_MAX: usize = 1 + 8 + 8 + (4 + 4 + ID_LEN_MAX + 5 + 8 + 8 + 3 * 8);
const _: () = assert!(NEW_ORDER_LEN_MAX <= COMMAND_ENCODED_LEN_MAX);
// The journal stores one value per record; both must fit comfortably in a record.
const _: () = assert!(COMMAND_ENCODED_LEN_MAX <= 128 && EVENT_ENCODED_LEN_MAX <= 256);

const CMD_NEW: u8 = 1;
const CMD_CANCEL: u8 = 2;
const CMD_REPLACE: u8 = 3;
const CMD_CANCEL_ALL: u8 = 4;
const CMD_HALT: u8 = 5;
const CMD_RESUME: u8 = 6;
/// A cancel whose request has a ClOrdID of its own (FIX 11 of an OrderCancelRequest, apart
/// from the order's 41): a new code rather than a new layout of [`CMD_CANCEL`], so journals
/// written before it read as they were.
const CMD_CANCEL_WITH_REQUEST_ID: u8 = 7;

const EV_ACCEPTED: u8 = 1;
const EV_TRADE: u8 = 2;
const EV_CANCELED: u8 = 3;
const EV_REJECTED: u8 = 4;
const EV_REPLACED: u8 = 5;
const EV_EXPIRED: u8 = 6;
const EV_TRIGGERED: u8 = 7;
const EV_TRADING_STATUS: u8 = 8;

const NEW_HAS_STOP_PRICE: u8 = 1;
const NEW_HAS_DISPLAY_QTY: u8 = 2;
const NEW_HAS_EXPIRE_TS: u8 = 4;
const NEW_POST_ONLY: u8 = 8;
const NEW_FLAGS_ALL: u8 = NEW_HAS_STOP_PRICE | NEW_HAS_DISPLAY_QTY | NEW_HAS_EXPIRE_TS | NEW_POST_ONLY;
const REPLACE_HAS_PRICE: u8 = 1;
const ACCEPTED_HAS_STOP_PRICE: u8 = 1;
const ACCEPTED_HAS_DISPLAY_QTY: u8 = 2;
const ACCEPTED_FLAGS_ALL: u8 = ACCEPTED_HAS_STOP_PRICE | ACCEPTED_HAS_DISPLAY_QTY;

/// Why bytes could not be decoded into a command or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ends inside a field.
    #[error("input ends inside field `{field}` at byte {offset}")]
    Truncated {
        /// Field being read.
        field: &'static str,
        /// Byte offset where the field starts.
        offset: usize,
    },
    /// A tag, enum, flags or bool byte holds a value no encoder writes.
    #[error("field `{field}` at byte {offset} holds invalid value {value}")]
    InvalidValue {
        /// Field being read.
        field: &'static str,
        /// Byte offset of the field.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// A client order id's length byte is 0 or above [`CL_ORD_ID_LEN_MAX`].
    #[error("client order id `{field}` at byte {offset} has length {len}, allowed 1..={max}", max = CL_ORD_ID_LEN_MAX)]
    ClOrdIdLen {
        /// Field being read.
        field: &'static str,
        /// Byte offset of the length byte.
        offset: usize,
        /// The length found.
        len: u8,
    },
    /// Bytes follow a complete value.
    #[error("{extra} bytes follow the encoded value")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

/// Writes fields into a buffer the caller has checked is long enough.
struct Put<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Put<'_> {
    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }
    #[inline]
    fn u8(&mut self, v: u8) {
        self.buf[self.pos] = v;
        self.pos += 1;
    }
    #[inline]
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    #[inline]
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    #[inline]
    fn i64(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }
    // Ids go on the wire as their inner integers: the newtypes changed no byte of the format.
    #[inline]
    fn account(&mut self, v: AccountId) {
        self.u32(v.0);
    }
    #[inline]
    fn symbol(&mut self, v: SymbolId) {
        self.u32(v.0);
    }
    #[inline]
    fn order_id(&mut self, v: OrderId) {
        self.u64(v.0);
    }
    #[inline]
    fn id(&mut self, id: &ClOrdId) {
        let bytes = id.as_bytes();
        // A `ClOrdId` holds at most CL_ORD_ID_LEN_MAX (< 256) bytes, so the length fits a byte.
        self.u8(bytes.len() as u8);
        self.bytes(bytes);
    }
}

/// Reads fields, checking every length; never panics.
struct Get<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Get<'a> {
    #[inline]
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CodecError> {
        let end = self.pos.checked_add(N);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(slice) => {
                let mut out = [0u8; N];
                out.copy_from_slice(slice);
                self.pos += N;
                Ok(out)
            }
            None => Err(CodecError::Truncated { field, offset: self.pos }),
        }
    }
    #[inline]
    fn u8(&mut self, field: &'static str) -> Result<u8, CodecError> {
        Ok(self.take::<1>(field)?[0])
    }
    #[inline]
    fn u32(&mut self, field: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.take(field)?))
    }
    #[inline]
    fn u64(&mut self, field: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.take(field)?))
    }
    #[inline]
    fn i64(&mut self, field: &'static str) -> Result<i64, CodecError> {
        Ok(i64::from_le_bytes(self.take(field)?))
    }
    #[inline]
    fn account(&mut self, field: &'static str) -> Result<AccountId, CodecError> {
        self.u32(field).map(AccountId)
    }
    #[inline]
    fn symbol(&mut self, field: &'static str) -> Result<SymbolId, CodecError> {
        self.u32(field).map(SymbolId)
    }
    #[inline]
    fn order_id(&mut self, field: &'static str) -> Result<OrderId, CodecError> {
        self.u64(field).map(OrderId)
    }
    /// Reads a byte that must be one of `0..count`, and maps it through `f`.
    #[inline]
    fn enum_u8<T>(&mut self, field: &'static str, f: fn(u8) -> Option<T>) -> Result<T, CodecError> {
        let offset = self.pos;
        let value = self.u8(field)?;
        f(value).ok_or(CodecError::InvalidValue { field, offset, value })
    }
    #[inline]
    fn flags(&mut self, field: &'static str, allowed: u8) -> Result<u8, CodecError> {
        let offset = self.pos;
        let value = self.u8(field)?;
        if value & !allowed != 0 {
            return Err(CodecError::InvalidValue { field, offset, value });
        }
        Ok(value)
    }
    #[inline]
    fn id(&mut self, field: &'static str) -> Result<ClOrdId, CodecError> {
        let offset = self.pos;
        let len = self.u8(field)?;
        if len == 0 || len as usize > CL_ORD_ID_LEN_MAX {
            return Err(CodecError::ClOrdIdLen { field, offset, len });
        }
        let start = self.pos;
        let bytes = self
            .buf
            .get(start..start + len as usize)
            .ok_or(CodecError::Truncated { field, offset: start })?;
        self.pos += len as usize;
        // The length was checked to be 1..=CL_ORD_ID_LEN_MAX just above.
        ClOrdId::from_bytes(bytes).map_err(|_| CodecError::ClOrdIdLen { field, offset, len })
    }
    fn finish(&self) -> Result<(), CodecError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            extra => Err(CodecError::TrailingBytes { extra }),
        }
    }
}

fn side_u8(side: Side) -> u8 {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}
fn side_from(v: u8) -> Option<Side> {
    match v {
        0 => Some(Side::Buy),
        1 => Some(Side::Sell),
        _ => None,
    }
}
fn ord_type_u8(t: OrdType) -> u8 {
    match t {
        OrdType::Market => 0,
        OrdType::Limit => 1,
    }
}
fn ord_type_from(v: u8) -> Option<OrdType> {
    match v {
        0 => Some(OrdType::Market),
        1 => Some(OrdType::Limit),
        _ => None,
    }
}
fn tif_u8(t: Tif) -> u8 {
    match t {
        Tif::Gtc => 0,
        Tif::Ioc => 1,
        Tif::Fok => 2,
        Tif::Gtd => 3,
    }
}
fn tif_from(v: u8) -> Option<Tif> {
    match v {
        0 => Some(Tif::Gtc),
        1 => Some(Tif::Ioc),
        2 => Some(Tif::Fok),
        3 => Some(Tif::Gtd),
        _ => None,
    }
}
fn stp_u8(s: StpMode) -> u8 {
    match s {
        StpMode::CancelNewest => 0,
        StpMode::CancelOldest => 1,
        StpMode::CancelBoth => 2,
    }
}
fn stp_from(v: u8) -> Option<StpMode> {
    match v {
        0 => Some(StpMode::CancelNewest),
        1 => Some(StpMode::CancelOldest),
        2 => Some(StpMode::CancelBoth),
        _ => None,
    }
}
fn cancel_reason_u8(r: CancelReason) -> u8 {
    match r {
        CancelReason::User => 0,
        CancelReason::Ioc => 1,
        CancelReason::Fok => 2,
        CancelReason::SelfTrade => 3,
        CancelReason::BookFull => 4,
        CancelReason::MassCancel => 5,
    }
}
fn cancel_reason_from(v: u8) -> Option<CancelReason> {
    match v {
        0 => Some(CancelReason::User),
        1 => Some(CancelReason::Ioc),
        2 => Some(CancelReason::Fok),
        3 => Some(CancelReason::SelfTrade),
        4 => Some(CancelReason::BookFull),
        5 => Some(CancelReason::MassCancel),
        _ => None,
    }
}
fn reject_reason_u8(r: RejectReason) -> u8 {
    match r {
        RejectReason::UnknownSymbol => 0,
        RejectReason::BadPriceTick => 1,
        RejectReason::BadQty => 2,
        RejectReason::DuplicateId => 3,
        RejectReason::UnknownOrder => 4,
        RejectReason::WouldTake => 5,
        RejectReason::Halted => 6,
        RejectReason::BadOrder => 7,
        RejectReason::BookFull => 8,
    }
}
fn reject_reason_from(v: u8) -> Option<RejectReason> {
    match v {
        0 => Some(RejectReason::UnknownSymbol),
        1 => Some(RejectReason::BadPriceTick),
        2 => Some(RejectReason::BadQty),
        3 => Some(RejectReason::DuplicateId),
        4 => Some(RejectReason::UnknownOrder),
        5 => Some(RejectReason::WouldTake),
        6 => Some(RejectReason::Halted),
        7 => Some(RejectReason::BadOrder),
        8 => Some(RejectReason::BookFull),
        _ => None,
    }
}
fn bool_from(v: u8) -> Option<bool> {
    match v {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// Encoded length of a client order id.
fn id_len(id: &ClOrdId) -> usize {
    1 + id.as_bytes().len()
}

impl Command {
    /// Number of bytes [`Command::encode`] writes for this command (at most
    /// [`COMMAND_ENCODED_LEN_MAX`]).
    pub fn encoded_len(&self) -> usize {
        let body = match &self.kind {
            CommandKind::New(o) => {
                4 + 4
                    + id_len(&o.id)
                    + 5
                    + 8
                    + 8
                    + 8 * (o.stop_price.is_some() as usize
                        + o.display_qty.is_some() as usize
                        + o.expire_ts.is_some() as usize)
            }
            CommandKind::Cancel(c) => 4 + 4 + id_len(&c.id) + c.request_id.as_ref().map_or(0, id_len),
            CommandKind::Replace(r) => {
                4 + 4 + id_len(&r.orig_id) + id_len(&r.id) + 1 + 8 + 8 * r.price.is_some() as usize
            }
            CommandKind::CancelAll { .. } => 8,
            CommandKind::Halt { .. } | CommandKind::Resume { .. } => 4,
        };
        1 + 8 + 8 + body
    }

    /// Writes the command into `buf` and returns the number of bytes written.
    ///
    /// # Panics
    /// When `buf` is shorter than [`Command::encoded_len`]; a buffer of
    /// [`COMMAND_ENCODED_LEN_MAX`] bytes always fits.
    pub fn encode(&self, buf: &mut [u8]) -> usize {
        let len = self.encoded_len();
        assert!(buf.len() >= len, "command needs {len} bytes, buffer has {}", buf.len());
        let mut p = Put { buf, pos: 0 };
        let tag = match self.kind {
            CommandKind::New(_) => CMD_NEW,
            CommandKind::Cancel(c) if c.request_id.is_some() => CMD_CANCEL_WITH_REQUEST_ID,
            CommandKind::Cancel(_) => CMD_CANCEL,
            CommandKind::Replace(_) => CMD_REPLACE,
            CommandKind::CancelAll { .. } => CMD_CANCEL_ALL,
            CommandKind::Halt { .. } => CMD_HALT,
            CommandKind::Resume { .. } => CMD_RESUME,
        };
        p.u8(tag);
        p.u64(self.header.seq);
        p.u64(self.header.ts);
        match &self.kind {
            CommandKind::New(o) => {
                p.account(o.account);
                p.symbol(o.symbol);
                p.id(&o.id);
                p.u8(side_u8(o.side));
                p.u8(ord_type_u8(o.ord_type));
                p.u8(tif_u8(o.tif));
                p.u8(stp_u8(o.stp));
                let mut flags = 0;
                if o.stop_price.is_some() {
                    flags |= NEW_HAS_STOP_PRICE;
                }
                if o.display_qty.is_some() {
                    flags |= NEW_HAS_DISPLAY_QTY;
                }
                if o.expire_ts.is_some() {
                    flags |= NEW_HAS_EXPIRE_TS;
                }
                if o.post_only {
                    flags |= NEW_POST_ONLY;
                }
                p.u8(flags);
                p.i64(o.price.get());
                p.u64(o.qty);
                if let Some(v) = o.stop_price {
                    p.i64(v.get());
                }
                if let Some(v) = o.display_qty {
                    p.u64(v);
                }
                if let Some(v) = o.expire_ts {
                    p.u64(v);
                }
            }
            CommandKind::Cancel(c) => {
                p.account(c.account);
                p.symbol(c.symbol);
                p.id(&c.id);
                if let Some(request_id) = &c.request_id {
                    p.id(request_id);
                }
            }
            CommandKind::Replace(r) => {
                p.account(r.account);
                p.symbol(r.symbol);
                p.id(&r.orig_id);
                p.id(&r.id);
                p.u8(if r.price.is_some() { REPLACE_HAS_PRICE } else { 0 });
                p.u64(r.qty);
                if let Some(v) = r.price.map(PriceUnits::get) {
                    p.i64(v);
                }
            }
            CommandKind::CancelAll { account, symbol } => {
                p.account(*account);
                p.symbol(symbol.unwrap_or(SYMBOL_UNKNOWN));
            }
            CommandKind::Halt { symbol } | CommandKind::Resume { symbol } => p.symbol(*symbol),
        }
        debug_assert_eq!(p.pos, len, "encoded_len disagrees with encode");
        p.pos
    }

    /// Reads exactly one command from `bytes`, in either layout (the first byte says which).
    ///
    /// A well-formed fixed-layout command takes the short path of [`Command::decode_fixed_fast`]
    /// (inlined into the caller's loop); anything it does not accept goes through the checking
    /// decoder, which names the field and offset of what is wrong.
    #[inline]
    pub fn decode(bytes: &[u8]) -> Result<Command, CodecError> {
        if bytes.first().is_some_and(|&tag| tag & FIXED_TAG != 0) {
            return match Command::decode_fixed_fast(bytes) {
                Some(command) => Ok(command),
                None => Command::decode_fixed(bytes),
            };
        }
        Command::decode_variable(bytes)
    }

    /// Reads exactly one command in the variable layout.
    fn decode_variable(bytes: &[u8]) -> Result<Command, CodecError> {
        let mut g = Get { buf: bytes, pos: 0 };
        let tag_offset = g.pos;
        let tag = g.u8("command.tag")?;
        let header = CommandHeader { seq: g.u64("command.seq")?, ts: g.u64("command.ts")? };
        let kind = match tag {
            CMD_NEW => {
                let account = g.account("new.account")?;
                let symbol = g.symbol("new.symbol")?;
                let id = g.id("new.id")?;
                let side = g.enum_u8("new.side", side_from)?;
                let ord_type = g.enum_u8("new.ord_type", ord_type_from)?;
                let tif = g.enum_u8("new.tif", tif_from)?;
                let stp = g.enum_u8("new.stp", stp_from)?;
                let flags = g.flags("new.flags", NEW_FLAGS_ALL)?;
                let price = PriceUnits(g.i64("new.price")?);
                let qty = g.u64("new.qty")?;
                let stop_price = match flags & NEW_HAS_STOP_PRICE {
                    0 => None,
                    _ => Some(PriceUnits(g.i64("new.stop_price")?)),
                };
                let display_qty = match flags & NEW_HAS_DISPLAY_QTY {
                    0 => None,
                    _ => Some(g.u64("new.display_qty")?),
                };
                let expire_ts = match flags & NEW_HAS_EXPIRE_TS {
                    0 => None,
                    _ => Some(g.u64("new.expire_ts")?),
                };
                CommandKind::New(NewOrder {
                    account,
                    symbol,
                    id,
                    side,
                    ord_type,
                    tif,
                    price,
                    qty,
                    stop_price,
                    display_qty,
                    expire_ts,
                    post_only: flags & NEW_POST_ONLY != 0,
                    stp,
                })
            }
            CMD_CANCEL | CMD_CANCEL_WITH_REQUEST_ID => CommandKind::Cancel(CancelOrder {
                account: g.account("cancel.account")?,
                symbol: g.symbol("cancel.symbol")?,
                id: g.id("cancel.id")?,
                request_id: match tag {
                    CMD_CANCEL_WITH_REQUEST_ID => Some(g.id("cancel.request_id")?),
                    _ => None,
                },
            }),
            CMD_REPLACE => {
                let account = g.account("replace.account")?;
                let symbol = g.symbol("replace.symbol")?;
                let orig_id = g.id("replace.orig_id")?;
                let id = g.id("replace.id")?;
                let flags = g.flags("replace.flags", REPLACE_HAS_PRICE)?;
                let qty = g.u64("replace.qty")?;
                let price = match flags & REPLACE_HAS_PRICE {
                    0 => None,
                    _ => Some(PriceUnits(g.i64("replace.price")?)),
                };
                CommandKind::Replace(ReplaceOrder { account, symbol, orig_id, id, price, qty })
            }
            CMD_CANCEL_ALL => CommandKind::CancelAll {
                account: g.account("cancel_all.account")?,
                symbol: Some(g.symbol("cancel_all.symbol")?).filter(|&s| s != SYMBOL_UNKNOWN),
            },
            CMD_HALT => CommandKind::Halt { symbol: g.symbol("halt.symbol")? },
            CMD_RESUME => CommandKind::Resume { symbol: g.symbol("resume.symbol")? },
            value => {
                return Err(CodecError::InvalidValue { field: "command.tag", offset: tag_offset, value })
            }
        };
        g.finish()?;
        Ok(Command { header, kind })
    }
}

/// Bytes of a fixed-layout command's head (see [`Command::encode_fixed`]).
pub const COMMAND_FIXED_HEAD_LEN: usize = 48;

/// Bytes of a fixed-layout new order's optional block (stop price, display quantity, expiry).
const FIXED_EXTRAS_LEN: usize = 24;

/// Bytes [`Command::encode_fixed`] may write (not all of them count: it returns the length):
/// the head, then a new order's optional block and one id, or two ids (replace, cancel with a
/// request id), each written as four whole words.
pub const COMMAND_FIXED_LEN_MAX: usize = COMMAND_FIXED_HEAD_LEN + 2 * CL_ORD_ID_LEN_MAX;
const _: () = assert!(FIXED_EXTRAS_LEN + CL_ORD_ID_LEN_MAX <= 2 * CL_ORD_ID_LEN_MAX);
const _: () = assert!(CL_ORD_ID_LEN_MAX == 32, "ids are written as four u64 words");

/// The fixed layout's tags are the variable layout's with this bit set, so one decoder reads
/// both ([`Command::decode`] looks at the first byte).
const FIXED_TAG: u8 = 0x80;
const NEW_HAS_EXTRAS: u8 = NEW_HAS_STOP_PRICE | NEW_HAS_DISPLAY_QTY | NEW_HAS_EXPIRE_TS;

/// A client order id's length rounded up to whole words: its bytes in the fixed layout.
#[inline]
const fn id_words_len(len: usize) -> usize {
    (len + 7) & !7
}

#[inline]
fn put8(buf: &mut [u8; COMMAND_FIXED_LEN_MAX], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[inline]
fn get8(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Writes `id` as its four words at `at` (the words past its length are zero: a `ClOrdId`'s
/// tail always is); returns the offset after its rounded length.
#[inline]
fn put_id_words(buf: &mut [u8; COMMAND_FIXED_LEN_MAX], at: usize, id: &ClOrdId) -> usize {
    let w = id.words();
    put8(buf, at, w[0]);
    put8(buf, at + 8, w[1]);
    put8(buf, at + 16, w[2]);
    put8(buf, at + 24, w[3]);
    at + id_words_len(id.as_bytes().len())
}

/// A fixed-layout id of `len` bytes at the start of `bytes` (its words; the pad past `len` must
/// be zero), or `None` when `len` is not 1..=[`CL_ORD_ID_LEN_MAX`] or the bytes run short.
#[inline]
fn fixed_id(bytes: &[u8], len: u8) -> Option<ClOrdId> {
    let n = len as usize;
    if !(1..=CL_ORD_ID_LEN_MAX).contains(&n) {
        return None;
    }
    let padded = id_words_len(n);
    let src = bytes.get(..padded)?;
    let mut out = [0u8; CL_ORD_ID_LEN_MAX];
    out[..padded].copy_from_slice(src);
    // Only the last word can hold pad bytes.
    let last = u64::from_le_bytes(out[padded - 8..padded].try_into().expect("8 bytes"));
    let tail_bits = 8 * (n % 8) as u32;
    if tail_bits != 0 && last >> tail_bits != 0 {
        return None;
    }
    Some(ClOrdId::from_raw_parts(len, out))
}

impl Command {
    /// Number of bytes [`Command::encode_fixed`] counts for this command.
    pub fn encoded_len_fixed(&self) -> usize {
        let ids = match &self.kind {
            CommandKind::New(o) => {
                let extras = if o.stop_price.is_some() || o.display_qty.is_some() || o.expire_ts.is_some() {
                    FIXED_EXTRAS_LEN
                } else {
                    0
                };
                extras + id_words_len(o.id.as_bytes().len())
            }
            CommandKind::Cancel(c) => {
                id_words_len(c.id.as_bytes().len())
                    + c.request_id.map_or(0, |r| id_words_len(r.as_bytes().len()))
            }
            CommandKind::Replace(r) => {
                id_words_len(r.orig_id.as_bytes().len()) + id_words_len(r.id.as_bytes().len())
            }
            CommandKind::CancelAll { .. } | CommandKind::Halt { .. } | CommandKind::Resume { .. } => 0,
        };
        COMMAND_FIXED_HEAD_LEN + ids
    }

    /// Writes the command in the fixed layout (journal format version 4) and returns its
    /// length: every field at a fixed offset of a 48-byte head, written as whole words, then a
    /// new order's optional block when it has an optional field, then its client order ids,
    /// each rounded up to whole words (zero padded):
    ///
    /// ```text
    /// 0 tag:u8 (0x80 | the variable layout's tag)  1 side  2 ord_type  3 tif  4 stp
    /// 5 flags:u8 (new: as the variable layout; replace: 1 price)  6 id_len:u8  7 id2_len:u8
    /// 8 seq:u64  16 ts:u64  24 account:u32  28 symbol:u32  32 price:i64  40 qty:u64
    /// 48 [new with a stop price, display qty or expiry: stop_price:i64 display_qty:u64 expire_ts:u64]
    /// .. id (new's id, cancel's id, replace's orig_id)  .. id2 (replace's id, cancel's request id)
    /// ```
    ///
    /// Fields a command does not have are zero. Up to [`COMMAND_FIXED_LEN_MAX`] bytes of `buf`
    /// are written, but every byte past the returned length is written zero, so a caller
    /// handing in a zeroed buffer gets it back zero past the command (the journal relies on it).
    ///
    /// # Panics
    /// When `buf` is shorter than [`COMMAND_FIXED_LEN_MAX`].
    #[inline(always)]
    pub fn encode_fixed(&self, buf: &mut [u8]) -> usize {
        let have = buf.len();
        let buf: &mut [u8; COMMAND_FIXED_LEN_MAX] =
            buf.get_mut(..COMMAND_FIXED_LEN_MAX).and_then(|b| b.try_into().ok()).unwrap_or_else(|| {
                panic!("the fixed layout needs {COMMAND_FIXED_LEN_MAX} bytes, buffer has {have}")
            });
        put8(buf, 8, self.header.seq);
        put8(buf, 16, self.header.ts);
        let small = |tag: u8, bytes: [u8; 5], id: usize, id2: usize| {
            u64::from_le_bytes([
                tag | FIXED_TAG,
                bytes[0],
                bytes[1],
                bytes[2],
                bytes[3],
                bytes[4],
                id as u8,
                id2 as u8,
            ])
        };
        let ids = |account: AccountId, symbol: SymbolId| u64::from(account.0) | (u64::from(symbol.0) << 32);
        match &self.kind {
            CommandKind::New(o) => {
                let mut flags = (o.stop_price.is_some() as u8 * NEW_HAS_STOP_PRICE)
                    | (o.display_qty.is_some() as u8 * NEW_HAS_DISPLAY_QTY)
                    | (o.expire_ts.is_some() as u8 * NEW_HAS_EXPIRE_TS);
                let extras = flags != 0;
                flags |= o.post_only as u8 * NEW_POST_ONLY;
                let head = [side_u8(o.side), ord_type_u8(o.ord_type), tif_u8(o.tif), stp_u8(o.stp), flags];
                put8(buf, 0, small(CMD_NEW, head, o.id.as_bytes().len(), 0));
                put8(buf, 24, ids(o.account, o.symbol));
                put8(buf, 32, o.price.get() as u64);
                put8(buf, 40, o.qty);
                let mut at = COMMAND_FIXED_HEAD_LEN;
                if extras {
                    put8(buf, at, o.stop_price.map_or(0, PriceUnits::get) as u64);
                    put8(buf, at + 8, o.display_qty.unwrap_or(0));
                    put8(buf, at + 16, o.expire_ts.unwrap_or(0));
                    at += FIXED_EXTRAS_LEN;
                }
                put_id_words(buf, at, &o.id)
            }
            CommandKind::Cancel(c) => {
                let id2 = c.request_id.map_or(0, |r| r.as_bytes().len());
                put8(buf, 0, small(CMD_CANCEL, [0; 5], c.id.as_bytes().len(), id2));
                put8(buf, 24, ids(c.account, c.symbol));
                put8(buf, 32, 0);
                put8(buf, 40, 0);
                let at = put_id_words(buf, COMMAND_FIXED_HEAD_LEN, &c.id);
                match &c.request_id {
                    Some(r) => put_id_words(buf, at, r),
                    None => at,
                }
            }
            CommandKind::Replace(r) => {
                let flags = if r.price.is_some() { REPLACE_HAS_PRICE } else { 0 };
                let head = [0, 0, 0, 0, flags];
                put8(buf, 0, small(CMD_REPLACE, head, r.orig_id.as_bytes().len(), r.id.as_bytes().len()));
                put8(buf, 24, ids(r.account, r.symbol));
                put8(buf, 32, r.price.map_or(0, PriceUnits::get) as u64);
                put8(buf, 40, r.qty);
                let at = put_id_words(buf, COMMAND_FIXED_HEAD_LEN, &r.orig_id);
                put_id_words(buf, at, &r.id)
            }
            CommandKind::CancelAll { account, symbol } => {
                put8(buf, 0, small(CMD_CANCEL_ALL, [0; 5], 0, 0));
                put8(buf, 24, ids(*account, symbol.unwrap_or(SYMBOL_UNKNOWN)));
                put8(buf, 32, 0);
                put8(buf, 40, 0);
                COMMAND_FIXED_HEAD_LEN
            }
            CommandKind::Halt { symbol } | CommandKind::Resume { symbol } => {
                let tag = if matches!(self.kind, CommandKind::Halt { .. }) { CMD_HALT } else { CMD_RESUME };
                put8(buf, 0, small(tag, [0; 5], 0, 0));
                put8(buf, 24, ids(AccountId(0), *symbol));
                put8(buf, 32, 0);
                put8(buf, 40, 0);
                COMMAND_FIXED_HEAD_LEN
            }
        }
    }

    /// The fixed layout's short path: the command when `bytes` hold exactly one well-formed
    /// fixed-layout command, `None` for anything else (then [`Command::decode_fixed`] says what
    /// is wrong). It accepts exactly what `decode_fixed` accepts (a property test holds them to
    /// it), but reads the head as six words from one length check and tests the small fields
    /// a word at a time.
    #[inline]
    fn decode_fixed_fast(bytes: &[u8]) -> Option<Command> {
        let head: &[u8; COMMAND_FIXED_HEAD_LEN] = bytes.get(..COMMAND_FIXED_HEAD_LEN)?.try_into().ok()?;
        let rest = &bytes[COMMAND_FIXED_HEAD_LEN..];
        let w = |i: usize| u64::from_le_bytes(head[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        let w0 = w(0);
        let header = CommandHeader { seq: w(1), ts: w(2) };
        let ids = w(3);
        let (account, symbol) = (AccountId(ids as u32), SymbolId((ids >> 32) as u32));
        let (price, qty) = (w(4), w(5));
        let [tag, side, ord_type, tif, stp, flags, id_len, id2_len] = w0.to_le_bytes();
        // Bytes of the first word, by mask: 1..=5 the enums and flags, 6 and 7 the id lengths.
        const ENUMS_AND_FLAGS: u64 = 0x0000_FFFF_FFFF_FF00;
        const ID2_LEN: u64 = 0xFF00_0000_0000_0000;
        let kind = match tag {
            t if t == FIXED_TAG | CMD_NEW => {
                // side 0..=1, ord_type 0..=1, tif 0..=3, stp 0..=2, flags within NEW_FLAGS_ALL.
                const OUT_OF_RANGE: u64 = 0x0000_F0FC_FCFE_FE00;
                if w0 & (OUT_OF_RANGE | ID2_LEN) != 0 || stp == 3 {
                    return None;
                }
                let (stop, display, expire, id_bytes) = if flags & NEW_HAS_EXTRAS != 0 {
                    let x: &[u8; FIXED_EXTRAS_LEN] = rest.get(..FIXED_EXTRAS_LEN)?.try_into().ok()?;
                    let x = |i: usize| u64::from_le_bytes(x[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
                    (x(0), x(1), x(2), &rest[FIXED_EXTRAS_LEN..])
                } else {
                    (0, 0, 0, rest)
                };
                // An absent optional field is written zero.
                let absent_nonzero = (flags & NEW_HAS_STOP_PRICE == 0 && stop != 0)
                    | (flags & NEW_HAS_DISPLAY_QTY == 0 && display != 0)
                    | (flags & NEW_HAS_EXPIRE_TS == 0 && expire != 0);
                if absent_nonzero || id_bytes.len() != id_words_len(id_len as usize) {
                    return None;
                }
                CommandKind::New(NewOrder {
                    account,
                    symbol,
                    id: fixed_id(id_bytes, id_len)?,
                    side: if side == 0 { Side::Buy } else { Side::Sell },
                    ord_type: if ord_type == 0 { OrdType::Market } else { OrdType::Limit },
                    tif: [Tif::Gtc, Tif::Ioc, Tif::Fok, Tif::Gtd][(tif & 3) as usize],
                    price: PriceUnits(price as i64),
                    qty,
                    stop_price: (flags & NEW_HAS_STOP_PRICE != 0).then_some(PriceUnits(stop as i64)),
                    display_qty: (flags & NEW_HAS_DISPLAY_QTY != 0).then_some(display),
                    expire_ts: (flags & NEW_HAS_EXPIRE_TS != 0).then_some(expire),
                    post_only: flags & NEW_POST_ONLY != 0,
                    stp: match stp {
                        0 => StpMode::CancelNewest,
                        1 => StpMode::CancelOldest,
                        _ => StpMode::CancelBoth,
                    },
                })
            }
            t if t == FIXED_TAG | CMD_CANCEL => {
                let id_end = id_words_len(id_len as usize);
                if w0 & ENUMS_AND_FLAGS != 0
                    || price | qty != 0
                    || rest.len() != id_end + id_words_len(id2_len as usize)
                {
                    return None;
                }
                let request_id = match id2_len {
                    0 => None,
                    _ => Some(fixed_id(&rest[id_end..], id2_len)?),
                };
                CommandKind::Cancel(CancelOrder { account, symbol, id: fixed_id(rest, id_len)?, request_id })
            }
            t if t == FIXED_TAG | CMD_REPLACE => {
                // Bytes 1..=4 zero, flags 0 or 1; without the price flag the price word is zero.
                let id_end = id_words_len(id_len as usize);
                if w0 & 0x0000_FEFF_FFFF_FF00 != 0
                    || (flags == 0 && price != 0)
                    || rest.len() != id_end + id_words_len(id2_len as usize)
                {
                    return None;
                }
                CommandKind::Replace(ReplaceOrder {
                    account,
                    symbol,
                    orig_id: fixed_id(rest, id_len)?,
                    id: fixed_id(&rest[id_end..], id2_len)?,
                    price: (flags != 0).then_some(PriceUnits(price as i64)),
                    qty,
                })
            }
            t if (FIXED_TAG | CMD_CANCEL_ALL..=FIXED_TAG | CMD_RESUME).contains(&t) => {
                if w0 >> 8 != 0 || price | qty != 0 || !rest.is_empty() {
                    return None;
                }
                match t & !FIXED_TAG {
                    CMD_CANCEL_ALL => CommandKind::CancelAll {
                        account,
                        symbol: Some(symbol).filter(|&s| s != SYMBOL_UNKNOWN),
                    },
                    _ if account.0 != 0 => return None,
                    CMD_HALT => CommandKind::Halt { symbol },
                    _ => CommandKind::Resume { symbol },
                }
            }
            _ => return None,
        };
        Some(Command { header, kind })
    }

    /// Reads exactly one command in the fixed layout (called by [`Command::decode`] for a tag
    /// with the high bit set when the short path refuses it). Every byte is checked: enum
    /// bytes, flags, id lengths, the zero padding of ids and the zero fields of commands that
    /// lack them.
    #[cold]
    #[inline(never)]
    fn decode_fixed(bytes: &[u8]) -> Result<Command, CodecError> {
        let invalid = |field, offset, value| Err(CodecError::InvalidValue { field, offset, value });
        let tag = bytes[0];
        if !(FIXED_TAG | CMD_NEW..=FIXED_TAG | CMD_RESUME).contains(&tag) {
            return invalid("command.tag", 0, tag);
        }
        if bytes.len() < COMMAND_FIXED_HEAD_LEN {
            return Err(CodecError::Truncated { field: "command.head", offset: 0 });
        }
        let b = |at: usize| bytes[at];
        let header = CommandHeader { seq: get8(bytes, 8), ts: get8(bytes, 16) };
        let account = AccountId(u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes")));
        let symbol = SymbolId(u32::from_le_bytes(bytes[28..32].try_into().expect("4 bytes")));
        let (price, qty) = (get8(bytes, 32), get8(bytes, 40));
        let tag = tag & !FIXED_TAG;
        // Bytes 1..=5 (enums and flags) that this tag does not use must be zero, as must the
        // price and quantity words of commands without them.
        let unused = match tag {
            CMD_NEW => 1..1,
            CMD_REPLACE => 1..5,
            _ => 1..6,
        };
        if let Some(at) = unused.into_iter().find(|&at| b(at) != 0) {
            return invalid("command.reserved", at, b(at));
        }
        let no_price_qty = matches!(tag, CMD_CANCEL | CMD_CANCEL_ALL | CMD_HALT | CMD_RESUME);
        if no_price_qty && (price != 0 || qty != 0) {
            let at = if price != 0 { 32 } else { 40 };
            return invalid(
                "command.reserved",
                at,
                bytes[at..at + 8].iter().copied().find(|&v| v != 0).unwrap_or(0),
            );
        }
        if matches!(tag, CMD_HALT | CMD_RESUME) && account.0 != 0 {
            return invalid(
                "command.reserved",
                24,
                bytes[24..28].iter().copied().find(|&v| v != 0).unwrap_or(0),
            );
        }
        // Which ids the tag carries: (first required, second: 0 none, 1 optional, 2 required).
        let (id_needed, id2_allowed) = match tag {
            CMD_NEW => (true, 0),
            CMD_CANCEL => (true, 1),
            CMD_REPLACE => (true, 2),
            _ => (false, 0),
        };
        let (id_len, id2_len) = (b(6), b(7));
        let id_ok = |len: u8, needed: bool| {
            if needed {
                (1..=CL_ORD_ID_LEN_MAX as u8).contains(&len)
            } else {
                len == 0
            }
        };
        if !id_ok(id_len, id_needed) {
            return Err(CodecError::ClOrdIdLen { field: "command.id_len", offset: 6, len: id_len });
        }
        let id2_ok = match id2_allowed {
            0 => id2_len == 0,
            1 => id2_len == 0 || id_ok(id2_len, true),
            _ => id_ok(id2_len, true),
        };
        if !id2_ok {
            return Err(CodecError::ClOrdIdLen { field: "command.id2_len", offset: 7, len: id2_len });
        }
        let flags = b(5);
        let extras = tag == CMD_NEW && flags & NEW_HAS_EXTRAS != 0;
        let ids_at = COMMAND_FIXED_HEAD_LEN + if extras { FIXED_EXTRAS_LEN } else { 0 };
        let id2_at = ids_at + id_words_len(id_len as usize);
        let end = id2_at + id_words_len(id2_len as usize);
        if bytes.len() < end {
            return Err(CodecError::Truncated { field: "command.ids", offset: bytes.len() });
        }
        if bytes.len() > end {
            return Err(CodecError::TrailingBytes { extra: bytes.len() - end });
        }
        let id_at = |field: &'static str, at: usize, len: u8| -> Result<Option<ClOrdId>, CodecError> {
            if len == 0 {
                return Ok(None);
            }
            let len = len as usize;
            let padded = id_words_len(len);
            if let Some(pad) = (at + len..at + padded).find(|&p| bytes[p] != 0) {
                return Err(CodecError::InvalidValue { field, offset: pad, value: bytes[pad] });
            }
            // The length was checked to be 1..=CL_ORD_ID_LEN_MAX above.
            ClOrdId::from_bytes(&bytes[at..at + len]).map(Some).map_err(|_| CodecError::ClOrdIdLen {
                field,
                offset: at,
                len: len as u8,
            })
        };
        let id = id_at("command.id", ids_at, id_len)?;
        let id2 = id_at("command.id2", id2_at, id2_len)?;
        let kind = match tag {
            CMD_NEW => {
                fn check<T>(
                    bytes: &[u8],
                    at: usize,
                    field: &'static str,
                    f: fn(u8) -> Option<T>,
                ) -> Result<T, CodecError> {
                    f(bytes[at]).ok_or(CodecError::InvalidValue { field, offset: at, value: bytes[at] })
                }
                let side = check(bytes, 1, "new.side", side_from)?;
                let ord_type = check(bytes, 2, "new.ord_type", ord_type_from)?;
                let tif = check(bytes, 3, "new.tif", tif_from)?;
                let stp = check(bytes, 4, "new.stp", stp_from)?;
                if flags & !NEW_FLAGS_ALL != 0 {
                    return invalid("new.flags", 5, flags);
                }
                let x = |i: usize| get8(bytes, COMMAND_FIXED_HEAD_LEN + 8 * i);
                let (stop, display, expire) = if extras { (x(0), x(1), x(2)) } else { (0, 0, 0) };
                // An absent optional field is written zero: anything else is not canonical.
                for (bit, v, at) in [
                    (NEW_HAS_STOP_PRICE, stop, 48),
                    (NEW_HAS_DISPLAY_QTY, display, 56),
                    (NEW_HAS_EXPIRE_TS, expire, 64),
                ] {
                    if flags & bit == 0 && v != 0 {
                        return invalid(
                            "new.extras",
                            at,
                            bytes[at..at + 8].iter().copied().find(|&v| v != 0).unwrap_or(0),
                        );
                    }
                }
                CommandKind::New(NewOrder {
                    account,
                    symbol,
                    id: id.expect("checked: a new order has an id"),
                    side,
                    ord_type,
                    tif,
                    price: PriceUnits(price as i64),
                    qty,
                    stop_price: (flags & NEW_HAS_STOP_PRICE != 0).then_some(PriceUnits(stop as i64)),
                    display_qty: (flags & NEW_HAS_DISPLAY_QTY != 0).then_some(display),
                    expire_ts: (flags & NEW_HAS_EXPIRE_TS != 0).then_some(expire),
                    post_only: flags & NEW_POST_ONLY != 0,
                    stp,
                })
            }
            CMD_CANCEL => CommandKind::Cancel(CancelOrder {
                account,
                symbol,
                id: id.expect("checked: a cancel has an id"),
                request_id: id2,
            }),
            CMD_REPLACE => {
                if flags & !REPLACE_HAS_PRICE != 0 {
                    return invalid("replace.flags", 5, flags);
                }
                if flags == 0 && price != 0 {
                    return invalid(
                        "replace.price",
                        32,
                        bytes[32..40].iter().copied().find(|&v| v != 0).unwrap_or(0),
                    );
                }
                CommandKind::Replace(ReplaceOrder {
                    account,
                    symbol,
                    orig_id: id.expect("checked: a replace has an orig_id"),
                    id: id2.expect("checked: a replace has an id"),
                    price: (flags != 0).then_some(PriceUnits(price as i64)),
                    qty,
                })
            }
            CMD_CANCEL_ALL => {
                CommandKind::CancelAll { account, symbol: Some(symbol).filter(|&s| s != SYMBOL_UNKNOWN) }
            }
            CMD_HALT => CommandKind::Halt { symbol },
            _ => CommandKind::Resume { symbol },
        };
        Ok(Command { header, kind })
    }
}

impl Event {
    /// Number of bytes [`Event::encode`] writes for this event (at most
    /// [`EVENT_ENCODED_LEN_MAX`]).
    pub fn encoded_len(&self) -> usize {
        let body = match &self.kind {
            EventKind::Accepted { id, stop_price, display_qty, .. } => {
                4 + id_len(id)
                    + 4
                    + 8
                    + 1
                    + 8
                    + 8
                    + 1
                    + 1
                    + 8 * usize::from(stop_price.is_some())
                    + 8 * usize::from(display_qty.is_some())
            }
            EventKind::Trade { maker_id, taker_id, .. } => {
                4 + 8 + 8 + (4 + id_len(maker_id) + 8 + 8) + (4 + id_len(taker_id) + 8 + 8) + 1
            }
            EventKind::Canceled { id, .. } => 4 + id_len(id) + 4 + 8 + 1 + 8,
            EventKind::Rejected { id, .. } => 4 + id_len(id) + 4 + 1,
            EventKind::Replaced { orig_id, id, .. } => 4 + id_len(orig_id) + id_len(id) + 4 + 8 + 8 + 8 + 8,
            EventKind::Expired { id, .. } => 4 + id_len(id) + 4 + 8 + 8,
            EventKind::Triggered { id, .. } => 4 + id_len(id) + 4 + 8,
            EventKind::TradingStatus { .. } => 4 + 1,
        };
        1 + 8 + 8 + 8 + body
    }

    /// Writes the event into `buf` and returns the number of bytes written.
    ///
    /// # Panics
    /// When `buf` is shorter than [`Event::encoded_len`]; a buffer of
    /// [`EVENT_ENCODED_LEN_MAX`] bytes always fits.
    pub fn encode(&self, buf: &mut [u8]) -> usize {
        let len = self.encoded_len();
        assert!(buf.len() >= len, "event needs {len} bytes, buffer has {}", buf.len());
        let mut p = Put { buf, pos: 0 };
        let tag = match self.kind {
            EventKind::Accepted { .. } => EV_ACCEPTED,
            EventKind::Trade { .. } => EV_TRADE,
            EventKind::Canceled { .. } => EV_CANCELED,
            EventKind::Rejected { .. } => EV_REJECTED,
            EventKind::Replaced { .. } => EV_REPLACED,
            EventKind::Expired { .. } => EV_EXPIRED,
            EventKind::Triggered { .. } => EV_TRIGGERED,
            EventKind::TradingStatus { .. } => EV_TRADING_STATUS,
        };
        p.u8(tag);
        p.u64(self.seq);
        p.u64(self.command_seq);
        p.u64(self.ts);
        match &self.kind {
            EventKind::Accepted {
                account,
                id,
                symbol,
                order_id,
                side,
                price,
                qty,
                tif,
                stop_price,
                display_qty,
            } => {
                p.account(*account);
                p.id(id);
                p.symbol(*symbol);
                p.order_id(*order_id);
                p.u8(side_u8(*side));
                p.i64(price.0);
                p.u64(*qty);
                p.u8(tif_u8(*tif));
                let flags = if stop_price.is_some() { ACCEPTED_HAS_STOP_PRICE } else { 0 }
                    | if display_qty.is_some() { ACCEPTED_HAS_DISPLAY_QTY } else { 0 };
                p.u8(flags);
                if let Some(stop) = stop_price {
                    p.i64(stop.0);
                }
                if let Some(display) = display_qty {
                    p.u64(*display);
                }
            }
            EventKind::Trade {
                symbol,
                price,
                qty,
                maker_account,
                maker_id,
                maker_order_id,
                maker_leaves_qty,
                taker_account,
                taker_id,
                taker_order_id,
                taker_leaves_qty,
                aggressor,
            } => {
                p.symbol(*symbol);
                p.i64(price.0);
                p.u64(*qty);
                p.account(*maker_account);
                p.id(maker_id);
                p.order_id(*maker_order_id);
                p.u64(*maker_leaves_qty);
                p.account(*taker_account);
                p.id(taker_id);
                p.order_id(*taker_order_id);
                p.u64(*taker_leaves_qty);
                p.u8(side_u8(*aggressor));
            }
            EventKind::Canceled { account, id, symbol, order_id, reason, leaves_qty } => {
                p.account(*account);
                p.id(id);
                p.symbol(*symbol);
                p.order_id(*order_id);
                p.u8(cancel_reason_u8(*reason));
                p.u64(*leaves_qty);
            }
            EventKind::Rejected { account, id, symbol, reason } => {
                p.account(*account);
                p.id(id);
                p.symbol(*symbol);
                p.u8(reject_reason_u8(*reason));
            }
            EventKind::Replaced { account, orig_id, id, symbol, order_id, price, qty, leaves_qty } => {
                p.account(*account);
                p.id(orig_id);
                p.id(id);
                p.symbol(*symbol);
                p.order_id(*order_id);
                p.i64(price.0);
                p.u64(*qty);
                p.u64(*leaves_qty);
            }
            EventKind::Expired { account, id, symbol, order_id, leaves_qty } => {
                p.account(*account);
                p.id(id);
                p.symbol(*symbol);
                p.order_id(*order_id);
                p.u64(*leaves_qty);
            }
            EventKind::Triggered { account, id, symbol, order_id } => {
                p.account(*account);
                p.id(id);
                p.symbol(*symbol);
                p.order_id(*order_id);
            }
            EventKind::TradingStatus { symbol, halted } => {
                p.symbol(*symbol);
                p.u8(*halted as u8);
            }
        }
        debug_assert_eq!(p.pos, len, "encoded_len disagrees with encode");
        p.pos
    }

    /// Reads exactly one event from `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Event, CodecError> {
        let mut g = Get { buf: bytes, pos: 0 };
        let tag_offset = g.pos;
        let tag = g.u8("event.tag")?;
        let seq = g.u64("event.seq")?;
        let command_seq = g.u64("event.command_seq")?;
        let ts = g.u64("event.ts")?;
        let kind = match tag {
            EV_ACCEPTED => {
                let account = g.account("accepted.account")?;
                let id = g.id("accepted.id")?;
                let symbol = g.symbol("accepted.symbol")?;
                let order_id = g.order_id("accepted.order_id")?;
                let side = g.enum_u8("accepted.side", side_from)?;
                let price = Price(g.i64("accepted.price")?);
                let qty = g.u64("accepted.qty")?;
                let tif = g.enum_u8("accepted.tif", tif_from)?;
                let flags = g.flags("accepted.flags", ACCEPTED_FLAGS_ALL)?;
                let stop_price = if flags & ACCEPTED_HAS_STOP_PRICE != 0 {
                    Some(Price(g.i64("accepted.stop_price")?))
                } else {
                    None
                };
                let display_qty = if flags & ACCEPTED_HAS_DISPLAY_QTY != 0 {
                    Some(g.u64("accepted.display_qty")?)
                } else {
                    None
                };
                EventKind::Accepted {
                    account,
                    id,
                    symbol,
                    order_id,
                    side,
                    price,
                    qty,
                    tif,
                    stop_price,
                    display_qty,
                }
            }
            EV_TRADE => EventKind::Trade {
                symbol: g.symbol("trade.symbol")?,
                price: Price(g.i64("trade.price")?),
                qty: g.u64("trade.qty")?,
                maker_account: g.account("trade.maker_account")?,
                maker_id: g.id("trade.maker_id")?,
                maker_order_id: g.order_id("trade.maker_order_id")?,
                maker_leaves_qty: g.u64("trade.maker_leaves_qty")?,
                taker_account: g.account("trade.taker_account")?,
                taker_id: g.id("trade.taker_id")?,
                taker_order_id: g.order_id("trade.taker_order_id")?,
                taker_leaves_qty: g.u64("trade.taker_leaves_qty")?,
                aggressor: g.enum_u8("trade.aggressor", side_from)?,
            },
            EV_CANCELED => EventKind::Canceled {
                account: g.account("canceled.account")?,
                id: g.id("canceled.id")?,
                symbol: g.symbol("canceled.symbol")?,
                order_id: g.order_id("canceled.order_id")?,
                reason: g.enum_u8("canceled.reason", cancel_reason_from)?,
                leaves_qty: g.u64("canceled.leaves_qty")?,
            },
            EV_REJECTED => EventKind::Rejected {
                account: g.account("rejected.account")?,
                id: g.id("rejected.id")?,
                symbol: g.symbol("rejected.symbol")?,
                reason: g.enum_u8("rejected.reason", reject_reason_from)?,
            },
            EV_REPLACED => EventKind::Replaced {
                account: g.account("replaced.account")?,
                orig_id: g.id("replaced.orig_id")?,
                id: g.id("replaced.id")?,
                symbol: g.symbol("replaced.symbol")?,
                order_id: g.order_id("replaced.order_id")?,
                price: Price(g.i64("replaced.price")?),
                qty: g.u64("replaced.qty")?,
                leaves_qty: g.u64("replaced.leaves_qty")?,
            },
            EV_EXPIRED => EventKind::Expired {
                account: g.account("expired.account")?,
                id: g.id("expired.id")?,
                symbol: g.symbol("expired.symbol")?,
                order_id: g.order_id("expired.order_id")?,
                leaves_qty: g.u64("expired.leaves_qty")?,
            },
            EV_TRIGGERED => EventKind::Triggered {
                account: g.account("triggered.account")?,
                id: g.id("triggered.id")?,
                symbol: g.symbol("triggered.symbol")?,
                order_id: g.order_id("triggered.order_id")?,
            },
            EV_TRADING_STATUS => EventKind::TradingStatus {
                symbol: g.symbol("trading_status.symbol")?,
                halted: g.enum_u8("trading_status.halted", bool_from)?,
            },
            value => return Err(CodecError::InvalidValue { field: "event.tag", offset: tag_offset, value }),
        };
        g.finish()?;
        Ok(Event { seq, command_seq, ts, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cl_ord_id() -> impl Strategy<Value = ClOrdId> {
        proptest::collection::vec(any::<u8>(), 1..=CL_ORD_ID_LEN_MAX)
            .prop_map(|bytes| ClOrdId::from_bytes(&bytes).expect("length in range"))
    }
    fn side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Buy), Just(Side::Sell)]
    }
    fn ord_type() -> impl Strategy<Value = OrdType> {
        prop_oneof![Just(OrdType::Market), Just(OrdType::Limit)]
    }
    fn tif() -> impl Strategy<Value = Tif> {
        prop_oneof![Just(Tif::Gtc), Just(Tif::Ioc), Just(Tif::Fok), Just(Tif::Gtd)]
    }
    fn stp() -> impl Strategy<Value = StpMode> {
        prop_oneof![Just(StpMode::CancelNewest), Just(StpMode::CancelOldest), Just(StpMode::CancelBoth)]
    }
    fn cancel_reason() -> impl Strategy<Value = CancelReason> {
        (0u8..6).prop_map(|v| cancel_reason_from(v).expect("in range"))
    }
    fn reject_reason() -> impl Strategy<Value = RejectReason> {
        (0u8..9).prop_map(|v| reject_reason_from(v).expect("in range"))
    }

    fn account() -> impl Strategy<Value = AccountId> {
        any::<u32>().prop_map(AccountId)
    }
    fn symbol() -> impl Strategy<Value = SymbolId> {
        any::<u32>().prop_map(SymbolId)
    }
    fn order_id() -> impl Strategy<Value = OrderId> {
        any::<u64>().prop_map(OrderId)
    }

    fn new_order() -> impl Strategy<Value = NewOrder> {
        (
            (account(), symbol(), cl_ord_id(), side(), ord_type(), tif(), stp()),
            (any::<i64>(), any::<u64>(), any::<Option<i64>>(), any::<Option<u64>>()),
            (any::<Option<u64>>(), any::<bool>()),
        )
            .prop_map(
                |(
                    (account, symbol, id, side, ord_type, tif, stp),
                    (price, qty, stop_price, display_qty),
                    (expire_ts, post_only),
                )| NewOrder {
                    account,
                    symbol,
                    id,
                    side,
                    ord_type,
                    tif,
                    price: PriceUnits(price),
                    qty,
                    stop_price: stop_price.map(PriceUnits),
                    display_qty,
                    expire_ts,
                    post_only,
                    stp,
                },
            )
    }

    fn command_kind() -> impl Strategy<Value = CommandKind> {
        prop_oneof![
            new_order().prop_map(CommandKind::New),
            (account(), symbol(), cl_ord_id(), proptest::option::of(cl_ord_id())).prop_map(
                |(account, symbol, id, request_id)| CommandKind::Cancel(CancelOrder {
                    account,
                    symbol,
                    id,
                    request_id
                })
            ),
            (account(), symbol(), cl_ord_id(), cl_ord_id(), any::<Option<i64>>(), any::<u64>()).prop_map(
                |(account, symbol, orig_id, id, price, qty)| {
                    CommandKind::Replace(ReplaceOrder {
                        account,
                        symbol,
                        orig_id,
                        id,
                        price: price.map(PriceUnits),
                        qty,
                    })
                }
            ),
            (account(), proptest::option::of((0..SYMBOL_UNKNOWN.0).prop_map(SymbolId)))
                .prop_map(|(account, symbol)| CommandKind::CancelAll { account, symbol }),
            symbol().prop_map(|symbol| CommandKind::Halt { symbol }),
            symbol().prop_map(|symbol| CommandKind::Resume { symbol }),
        ]
    }

    fn command() -> impl Strategy<Value = Command> {
        (any::<u64>(), any::<u64>(), command_kind())
            .prop_map(|(seq, ts, kind)| Command { header: CommandHeader { seq, ts }, kind })
    }

    fn event_kind() -> impl Strategy<Value = EventKind> {
        let price = any::<i64>().prop_map(Price);
        prop_oneof![
            (
                (account(), cl_ord_id(), symbol(), order_id(), side(), price.clone(), any::<u64>()),
                (tif(), proptest::option::of(price.clone()), proptest::option::of(any::<u64>()))
            )
                .prop_map(
                    |((account, id, symbol, order_id, side, price, qty), (tif, stop_price, display_qty))| {
                        EventKind::Accepted {
                            account,
                            id,
                            symbol,
                            order_id,
                            side,
                            price,
                            qty,
                            tif,
                            stop_price,
                            display_qty,
                        }
                    }
                ),
            (
                (symbol(), price.clone(), any::<u64>()),
                (account(), cl_ord_id(), order_id(), any::<u64>()),
                (account(), cl_ord_id(), order_id(), any::<u64>()),
                side()
            )
                .prop_map(|((symbol, price, qty), m, t, aggressor)| EventKind::Trade {
                    symbol,
                    price,
                    qty,
                    maker_account: m.0,
                    maker_id: m.1,
                    maker_order_id: m.2,
                    maker_leaves_qty: m.3,
                    taker_account: t.0,
                    taker_id: t.1,
                    taker_order_id: t.2,
                    taker_leaves_qty: t.3,
                    aggressor,
                }),
            (account(), cl_ord_id(), symbol(), order_id(), cancel_reason(), any::<u64>()).prop_map(
                |(account, id, symbol, order_id, reason, leaves_qty)| {
                    EventKind::Canceled { account, id, symbol, order_id, reason, leaves_qty }
                }
            ),
            (account(), cl_ord_id(), symbol(), reject_reason()).prop_map(|(account, id, symbol, reason)| {
                EventKind::Rejected { account, id, symbol, reason }
            }),
            (
                (account(), cl_ord_id(), cl_ord_id(), symbol()),
                (order_id(), price, any::<u64>(), any::<u64>())
            )
                .prop_map(
                    |((account, orig_id, id, symbol), (order_id, price, qty, leaves_qty))| {
                        EventKind::Replaced { account, orig_id, id, symbol, order_id, price, qty, leaves_qty }
                    }
                ),
            (account(), cl_ord_id(), symbol(), order_id(), any::<u64>()).prop_map(
                |(account, id, symbol, order_id, leaves_qty)| {
                    EventKind::Expired { account, id, symbol, order_id, leaves_qty }
                }
            ),
            (account(), cl_ord_id(), symbol(), order_id()).prop_map(|(account, id, symbol, order_id)| {
                EventKind::Triggered { account, id, symbol, order_id }
            }),
            (symbol(), any::<bool>())
                .prop_map(|(symbol, halted)| EventKind::TradingStatus { symbol, halted }),
        ]
    }

    fn event() -> impl Strategy<Value = Event> {
        (any::<u64>(), any::<u64>(), any::<u64>(), event_kind())
            .prop_map(|(seq, command_seq, ts, kind)| Event { seq, command_seq, ts, kind })
    }

    proptest! {
        #[test]
        fn command_roundtrip(cmd in command()) {
            let mut buf = [0u8; COMMAND_ENCODED_LEN_MAX];
            let len = cmd.encode(&mut buf);
            prop_assert_eq!(len, cmd.encoded_len());
            prop_assert_eq!(Command::decode(&buf[..len]), Ok(cmd));
        }

        #[test]
        fn event_roundtrip(ev in event()) {
            let mut buf = [0u8; EVENT_ENCODED_LEN_MAX];
            let len = ev.encode(&mut buf);
            prop_assert_eq!(len, ev.encoded_len());
            prop_assert_eq!(Event::decode(&buf[..len]), Ok(ev));
        }

        /// Every strict prefix of a valid encoding is refused as truncated, and one extra byte
        /// is refused as trailing.
        #[test]
        fn command_prefixes_and_suffix_are_rejected(cmd in command()) {
            let mut buf = [0u8; COMMAND_ENCODED_LEN_MAX + 1];
            let len = cmd.encode(&mut buf);
            for cut in 0..len {
                let is_truncated = matches!(Command::decode(&buf[..cut]), Err(CodecError::Truncated { .. }));
                prop_assert!(is_truncated, "prefix of {} bytes", cut);
            }
            prop_assert_eq!(
                Command::decode(&buf[..len + 1]),
                Err(CodecError::TrailingBytes { extra: 1 })
            );
        }

        #[test]
        fn event_prefixes_and_suffix_are_rejected(ev in event()) {
            let mut buf = [0u8; EVENT_ENCODED_LEN_MAX + 1];
            let len = ev.encode(&mut buf);
            for cut in 0..len {
                let is_truncated = matches!(Event::decode(&buf[..cut]), Err(CodecError::Truncated { .. }));
                prop_assert!(is_truncated, "prefix of {} bytes", cut);
            }
            prop_assert_eq!(
                Event::decode(&buf[..len + 1]),
                Err(CodecError::TrailingBytes { extra: 1 })
            );
        }

        /// Arbitrary bytes never panic; what decodes re-encodes to the same bytes (the layout
        /// has one encoding per value, so garbage cannot alias a value non-canonically).
        #[test]
        fn garbage_never_panics_and_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(cmd) = Command::decode(&bytes) {
                let (buf, len) = encode_like(&cmd, bytes[0]);
                prop_assert_eq!(&buf[..len], &bytes[..]);
            }
            if let Ok(ev) = Event::decode(&bytes) {
                let mut buf = [0u8; EVENT_ENCODED_LEN_MAX];
                let len = ev.encode(&mut buf);
                prop_assert_eq!(&buf[..len], &bytes[..]);
            }
        }

        /// Flipping any one byte of a valid encoding either errors or decodes to something
        /// that re-encodes to exactly the flipped bytes: never a panic, never a silent change
        /// of length.
        #[test]
        fn mutated_command_never_panics(cmd in command(), at in any::<usize>(), x in 1u8..=255) {
            let mut buf = [0u8; COMMAND_ENCODED_LEN_MAX];
            let len = cmd.encode(&mut buf);
            buf[at % len] ^= x;
            if let Ok(decoded) = Command::decode(&buf[..len]) {
                let (again, len2) = encode_like(&decoded, buf[0]);
                prop_assert_eq!(&again[..len2], &buf[..len]);
            }
        }

        #[test]
        fn fixed_command_roundtrip_leaves_zeros_past_its_length(cmd in command()) {
            let mut buf = [0u8; COMMAND_FIXED_LEN_MAX];
            let len = cmd.encode_fixed(&mut buf);
            prop_assert_eq!(len, cmd.encoded_len_fixed());
            prop_assert_eq!(len % 8, 0);
            prop_assert!(buf[len..].iter().all(|&b| b == 0), "bytes past the command are not zero");
            prop_assert_eq!(Command::decode(&buf[..len]), Ok(cmd));
            // Over a dirty buffer the command's own bytes are the same.
            let mut dirty = [0xA5u8; COMMAND_FIXED_LEN_MAX];
            prop_assert_eq!(cmd.encode_fixed(&mut dirty), len);
            prop_assert_eq!(&dirty[..len], &buf[..len]);
        }

        #[test]
        fn fixed_command_prefixes_suffix_and_flipped_bytes(cmd in command(), at in any::<usize>(), x in 1u8..=255) {
            let mut buf = [0u8; COMMAND_FIXED_LEN_MAX + 8];
            let len = cmd.encode_fixed(&mut buf);
            for cut in 0..len {
                let is_truncated = matches!(Command::decode(&buf[..cut]), Err(CodecError::Truncated { .. }));
                prop_assert!(is_truncated || cut == 0, "prefix of {} bytes: {:?}", cut, Command::decode(&buf[..cut]));
            }
            prop_assert_eq!(Command::decode(&buf[..len + 8]), Err(CodecError::TrailingBytes { extra: 8 }));
            let mut bad = buf;
            bad[at % len] ^= x;
            if let Ok(decoded) = Command::decode(&bad[..len]) {
                let (again, len2) = encode_like(&decoded, bad[0]);
                prop_assert_eq!(&again[..len2], &bad[..len]);
            }
        }

        #[test]
        fn fixed_short_path_accepts_what_the_checking_decoder_accepts(
            cmd in command(),
            flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..4),
            cut in 0usize..16,
            extend in any::<bool>(),
        ) {
            let mut buf = [0u8; COMMAND_FIXED_LEN_MAX + 16];
            let mut len = cmd.encode_fixed(&mut buf);
            for (at, x) in flips {
                buf[at % len] ^= x;
            }
            if extend {
                len += cut;
            } else {
                len = len.saturating_sub(cut).max(1);
            }
            assert_fast_agrees(&buf[..len])?;
        }

        #[test]
        fn mutated_event_never_panics(ev in event(), at in any::<usize>(), x in 1u8..=255) {
            let mut buf = [0u8; EVENT_ENCODED_LEN_MAX];
            let len = ev.encode(&mut buf);
            buf[at % len] ^= x;
            if let Ok(decoded) = Event::decode(&buf[..len]) {
                let mut again = [0u8; EVENT_ENCODED_LEN_MAX];
                let len2 = decoded.encode(&mut again);
                prop_assert_eq!(&again[..len2], &buf[..len]);
            }
        }
    }

    /// The short path either refuses `bytes` (and so does the checking decoder) or gives the
    /// checking decoder's command.
    fn assert_fast_agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
        if bytes.first().is_none_or(|&tag| tag & FIXED_TAG == 0) {
            return Ok(());
        }
        let checked = Command::decode_fixed(bytes);
        match Command::decode_fixed_fast(bytes) {
            Some(fast) => prop_assert_eq!(checked, Ok(fast)),
            None => prop_assert!(checked.is_err(), "short path refused {:?}: {:?}", bytes, checked),
        }
        prop_assert_eq!(Command::decode(bytes), checked);
        Ok(())
    }

    /// Every single-byte value at every offset of a fixed-layout command of each kind (with
    /// and without its optional parts, ids of lengths 1, 8, 9 and 32): the short path decodes
    /// exactly what the checking decoder does.
    #[test]
    fn fixed_short_path_agrees_on_every_single_byte_corruption() {
        let ids = ["a", "abcdefgh", "abcdefghi", "abcdefghijklmnopqrstuvwxyz012345"]
            .map(|s| ClOrdId::from_str(s).unwrap());
        let header = CommandHeader { seq: 7, ts: 9 };
        let mut kinds = vec![
            CommandKind::CancelAll { account: AccountId(1), symbol: None },
            CommandKind::CancelAll { account: AccountId(1), symbol: Some(SymbolId(2)) },
            CommandKind::Halt { symbol: SymbolId(2) },
            CommandKind::Resume { symbol: SymbolId(2) },
        ];
        for (i, &id) in ids.iter().enumerate() {
            let other = ids[(i + 1) % ids.len()];
            let mut stop = NewOrder::limit(AccountId(1), SymbolId(2), id, Side::Sell, 100, 10);
            stop.stop_price = Some(PriceUnits(90));
            stop.expire_ts = Some(5);
            stop.tif = Tif::Gtd;
            stop.stp = StpMode::CancelBoth;
            stop.post_only = true;
            kinds.extend([
                CommandKind::New(NewOrder::limit(AccountId(1), SymbolId(2), id, Side::Buy, 100, 10)),
                CommandKind::New(stop),
                CommandKind::Cancel(CancelOrder {
                    account: AccountId(1),
                    symbol: SymbolId(2),
                    id,
                    request_id: None,
                }),
                CommandKind::Cancel(CancelOrder {
                    account: AccountId(1),
                    symbol: SymbolId(2),
                    id,
                    request_id: Some(other),
                }),
                CommandKind::Replace(ReplaceOrder {
                    account: AccountId(1),
                    symbol: SymbolId(2),
                    orig_id: id,
                    id: other,
                    price: None,
                    qty: 3,
                }),
                CommandKind::Replace(ReplaceOrder {
                    account: AccountId(1),
                    symbol: SymbolId(2),
                    orig_id: id,
                    id: other,
                    price: Some(PriceUnits(4)),
                    qty: 3,
                }),
            ]);
        }
        let mut decoded = 0;
        for kind in kinds {
            let cmd = Command { header, kind };
            let mut buf = [0u8; COMMAND_FIXED_LEN_MAX];
            let len = cmd.encode_fixed(&mut buf);
            assert_eq!(Command::decode_fixed_fast(&buf[..len]), Some(cmd));
            for at in 0..len {
                for v in 0..=255u8 {
                    let mut bad = buf;
                    bad[at] = v;
                    assert_fast_agrees(&bad[..len]).unwrap();
                    decoded += 1;
                }
            }
        }
        assert!(decoded > 100_000);
    }

    /// `cmd` encoded in the layout `tag` says (the fixed one when its high bit is set).
    fn encode_like(cmd: &Command, tag: u8) -> ([u8; COMMAND_FIXED_LEN_MAX], usize) {
        let mut buf = [0u8; COMMAND_FIXED_LEN_MAX];
        let len = if tag & FIXED_TAG != 0 { cmd.encode_fixed(&mut buf) } else { cmd.encode(&mut buf) };
        (buf, len)
    }

    #[test]
    fn fixed_layout_bytes_of_a_new_order_are_pinned() {
        let mut buf = [0u8; COMMAND_FIXED_LEN_MAX];
        let len = sample_new().encode_fixed(&mut buf);
        let mut want = vec![0x81, 0, 1, 0, 0, 0, 2, 0];
        want.extend_from_slice(&7u64.to_le_bytes());
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&2u32.to_le_bytes());
        want.extend_from_slice(&100i64.to_le_bytes());
        want.extend_from_slice(&10u64.to_le_bytes());
        want.extend_from_slice(b"a1\0\0\0\0\0\0");
        assert_eq!(&buf[..len], &want[..]);
        // A non-zero pad byte of the id, an undefined tag and a short head are refused.
        let mut bad = buf;
        bad[len - 1] = 1;
        assert_eq!(
            Command::decode(&bad[..len]),
            Err(CodecError::InvalidValue { field: "command.id", offset: len - 1, value: 1 })
        );
        bad = buf;
        bad[0] = 0x87;
        assert_eq!(
            Command::decode(&bad[..len]),
            Err(CodecError::InvalidValue { field: "command.tag", offset: 0, value: 0x87 })
        );
        assert_eq!(
            Command::decode(&buf[..47]),
            Err(CodecError::Truncated { field: "command.head", offset: 0 })
        );
    }

    fn sample_new() -> Command {
        let id = ClOrdId::from_str("a1").unwrap();
        Command {
            header: CommandHeader { seq: 7, ts: 9 },
            kind: CommandKind::New(NewOrder::limit(AccountId(1), SymbolId(2), id, Side::Buy, 100, 10)),
        }
    }

    #[test]
    fn empty_input_is_truncated_at_the_tag() {
        assert_eq!(Command::decode(&[]), Err(CodecError::Truncated { field: "command.tag", offset: 0 }));
        assert_eq!(Event::decode(&[]), Err(CodecError::Truncated { field: "event.tag", offset: 0 }));
    }

    #[test]
    fn unknown_tags_are_rejected() {
        for tag in [0u8, 8, 255] {
            let mut buf = [0u8; COMMAND_ENCODED_LEN_MAX];
            let len = sample_new().encode(&mut buf);
            buf[0] = tag;
            assert_eq!(
                Command::decode(&buf[..len]),
                Err(CodecError::InvalidValue { field: "command.tag", offset: 0, value: tag })
            );
        }
        let mut ev = [0u8; 64];
        ev[0] = 9;
        assert!(matches!(
            Event::decode(&ev),
            Err(CodecError::InvalidValue { field: "event.tag", value: 9, .. })
        ));
    }

    #[test]
    fn bad_enum_flag_and_id_bytes_are_rejected_with_their_offset() {
        let mut buf = [0u8; COMMAND_ENCODED_LEN_MAX];
        let len = sample_new().encode(&mut buf);
        // tag(1) seq(8) ts(8) account(4) symbol(4) = 25: the id's length byte.
        let id_at = 25;
        assert_eq!(buf[id_at], 2);
        let side_at = id_at + 3;

        let mut b = buf;
        b[id_at] = 0;
        assert_eq!(
            Command::decode(&b[..len]),
            Err(CodecError::ClOrdIdLen { field: "new.id", offset: id_at, len: 0 })
        );
        b[id_at] = CL_ORD_ID_LEN_MAX as u8 + 1;
        assert_eq!(
            Command::decode(&b[..len]),
            Err(CodecError::ClOrdIdLen { field: "new.id", offset: id_at, len: 33 })
        );
        // A long but legal length runs past the end of the input.
        b[id_at] = CL_ORD_ID_LEN_MAX as u8;
        assert!(matches!(Command::decode(&b[..len]), Err(CodecError::Truncated { .. })));

        let mut b = buf;
        b[side_at] = 2;
        assert_eq!(
            Command::decode(&b[..len]),
            Err(CodecError::InvalidValue { field: "new.side", offset: side_at, value: 2 })
        );
        let mut b = buf;
        b[side_at + 4] = 0x10; // flags: an undefined bit
        assert_eq!(
            Command::decode(&b[..len]),
            Err(CodecError::InvalidValue { field: "new.flags", offset: side_at + 4, value: 0x10 })
        );
    }

    #[test]
    fn halted_flag_must_be_a_bool() {
        let ev = Event {
            seq: 1,
            command_seq: 1,
            ts: 0,
            kind: EventKind::TradingStatus { symbol: SymbolId(3), halted: true },
        };
        let mut buf = [0u8; EVENT_ENCODED_LEN_MAX];
        let len = ev.encode(&mut buf);
        buf[len - 1] = 2;
        assert!(matches!(
            Event::decode(&buf[..len]),
            Err(CodecError::InvalidValue { field: "trading_status.halted", value: 2, .. })
        ));
    }

    #[test]
    #[should_panic(expected = "buffer has")]
    fn encode_into_a_short_buffer_panics_with_a_message() {
        let mut buf = [0u8; 8];
        sample_new().encode(&mut buf);
    }
}
