//! The binary order-by-order encoding (ITCH-like): a fixed 40-byte little-endian header, then
//! a fixed body per message type. Several messages may be packed back to back in a datagram;
//! [`decode`] returns how many bytes the first one took.
//!
//! ```text
//! header  0 length:u16 (header + body)   2 type:u8   3 channel:u8 (1 orders, 2 levels)
//!         4 epoch:u64  12 channel_seq:u64  20 symbol_seq:u64
//!        28 symbol:u32 (0xFFFF_FFFF only on a heartbeat)  32 ts_ns:u64
//! body   'A' add order      order_id:u64 side:u8 price:i64 qty:u64
//!        'E' execute        order_id:u64 qty:u64
//!        'X' reduce         order_id:u64 qty:u64
//!        'D' delete         order_id:u64
//!        'U' replace        order_id:u64 side:u8 price:i64 qty:u64
//!        'L' level          side:u8 price:i64 qty:u64 count:u32
//!        'P' trade          price:i64 qty:u64 aggressor:u8 maker_order_id:u64 taker_order_id:u64
//!        'H' trading status halted:u8
//!        'K' checksum       depth:u16 crc32:u32
//!        'Z' heartbeat      (empty)
//!        'G' snapshot begin items:u32 halted:u8
//!        'O' snapshot order order_id:u64 side:u8 price:i64 qty:u64
//!        'V' snapshot level side:u8 price:i64 qty:u64 count:u32
//!        'N' snapshot end   items:u32
//! side: 1 buy, 2 sell; bools: 0 or 1; prices in ticks, quantities in lots of the symbol.
//! ```
//!
//! Decoding trusts nothing: an unknown type, a length that is not the type's, an out-of-range
//! byte, or a symbol field that contradicts the type is a [`DecodeError`], never a panic.

use crate::book::{BookOrder, Level};
use crate::message::{Body, Channel, Header, Message};
use crate::{Price, Side};
use engine::{OrderId, SymbolId};

/// Bytes of the header.
pub const HEADER_LEN: usize = 40;
/// Bytes of the largest message (a trade).
pub const MESSAGE_LEN_MAX: usize = HEADER_LEN + 33;

const NO_SYMBOL: u32 = u32::MAX;

const T_ADD: u8 = b'A';
const T_EXECUTE: u8 = b'E';
const T_REDUCE: u8 = b'X';
const T_DELETE: u8 = b'D';
const T_REPLACE: u8 = b'U';
const T_LEVEL: u8 = b'L';
const T_TRADE: u8 = b'P';
const T_STATUS: u8 = b'H';
const T_CHECKSUM: u8 = b'K';
const T_HEARTBEAT: u8 = b'Z';
const T_SNAPSHOT_BEGIN: u8 = b'G';
const T_SNAPSHOT_ORDER: u8 = b'O';
const T_SNAPSHOT_LEVEL: u8 = b'V';
const T_SNAPSHOT_END: u8 = b'N';

/// Why bytes are not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header, or than the length the header states.
    #[error("need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The type byte names no message.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// The length field is not the size of that type.
    #[error("message type {msg_type:#04x} is {expected} bytes, length field says {length}")]
    BadLength {
        /// Type.
        msg_type: u8,
        /// Length field.
        length: u16,
        /// Size of the type.
        expected: u16,
    },
    /// A channel, side or bool byte holds a value no encoder writes.
    #[error("field `{field}` holds invalid value {value}")]
    InvalidValue {
        /// Field.
        field: &'static str,
        /// Byte found.
        value: u8,
    },
    /// A heartbeat names a symbol, or another message names none.
    #[error("message type {0:#04x} has a symbol field that contradicts its type")]
    BadSymbol(u8),
}

/// The buffer given to [`encode`] is too short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("message needs {needed} bytes, buffer has {available}")]
pub struct BufferTooSmall {
    /// Bytes needed.
    pub needed: usize,
    /// Bytes available.
    pub available: usize,
}

fn body_len(msg_type: u8) -> Option<usize> {
    Some(match msg_type {
        T_ADD | T_REPLACE | T_SNAPSHOT_ORDER => 25,
        T_EXECUTE | T_REDUCE => 16,
        T_DELETE => 8,
        T_LEVEL | T_SNAPSHOT_LEVEL => 21,
        T_TRADE => 33,
        T_STATUS => 1,
        T_CHECKSUM => 6,
        T_HEARTBEAT => 0,
        T_SNAPSHOT_BEGIN => 5,
        T_SNAPSHOT_END => 4,
        _ => return None,
    })
}

fn msg_type(body: &Body) -> u8 {
    match body {
        Body::AddOrder(_) => T_ADD,
        Body::Execute { .. } => T_EXECUTE,
        Body::Reduce { .. } => T_REDUCE,
        Body::Delete { .. } => T_DELETE,
        Body::Replace(_) => T_REPLACE,
        Body::Level(_) => T_LEVEL,
        Body::Trade { .. } => T_TRADE,
        Body::TradingStatus { .. } => T_STATUS,
        Body::Checksum { .. } => T_CHECKSUM,
        Body::Heartbeat => T_HEARTBEAT,
        Body::SnapshotBegin { .. } => T_SNAPSHOT_BEGIN,
        Body::SnapshotOrder(_) => T_SNAPSHOT_ORDER,
        Body::SnapshotLevel(_) => T_SNAPSHOT_LEVEL,
        Body::SnapshotEnd { .. } => T_SNAPSHOT_END,
    }
}

/// Bytes [`encode`] writes for `message`.
pub fn encoded_len(message: &Message) -> usize {
    HEADER_LEN + body_len(msg_type(&message.body)).expect("every body has a type")
}

fn side_u8(side: Side) -> u8 {
    match side {
        Side::Buy => 1,
        Side::Sell => 2,
    }
}

struct Put<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Put<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn order(&mut self, o: &BookOrder) {
        self.bytes(&o.order_id.to_le_bytes());
        self.u8(side_u8(o.side));
        self.bytes(&o.price.0.to_le_bytes());
        self.bytes(&o.qty.to_le_bytes());
    }
    fn level(&mut self, l: &Level) {
        self.u8(side_u8(l.side));
        self.bytes(&l.price.0.to_le_bytes());
        self.bytes(&l.qty.to_le_bytes());
        self.bytes(&l.count.to_le_bytes());
    }
}

/// Writes `message` at the start of `buf`; returns the bytes written. Never allocates.
pub fn encode(message: &Message, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let len = encoded_len(message);
    if buf.len() < len {
        return Err(BufferTooSmall { needed: len, available: buf.len() });
    }
    let h = &message.header;
    let mut p = Put { buf, pos: 0 };
    // At most MESSAGE_LEN_MAX (73) bytes: fits the u16.
    p.bytes(&(len as u16).to_le_bytes());
    p.u8(msg_type(&message.body));
    p.u8(match h.channel {
        Channel::Orders => 1,
        Channel::Levels => 2,
    });
    p.bytes(&h.epoch.to_le_bytes());
    p.bytes(&h.channel_seq.to_le_bytes());
    p.bytes(&h.symbol_seq.to_le_bytes());
    p.bytes(&h.symbol.unwrap_or(SymbolId(NO_SYMBOL)).to_le_bytes());
    p.bytes(&h.ts_ns.to_le_bytes());
    match &message.body {
        Body::AddOrder(o) | Body::Replace(o) | Body::SnapshotOrder(o) => p.order(o),
        Body::Execute { order_id, qty } | Body::Reduce { order_id, qty } => {
            p.bytes(&order_id.to_le_bytes());
            p.bytes(&qty.to_le_bytes());
        }
        Body::Delete { order_id } => p.bytes(&order_id.to_le_bytes()),
        Body::Level(l) | Body::SnapshotLevel(l) => p.level(l),
        Body::Trade { price, qty, aggressor, maker_order_id, taker_order_id } => {
            p.bytes(&price.0.to_le_bytes());
            p.bytes(&qty.to_le_bytes());
            p.u8(side_u8(*aggressor));
            p.bytes(&maker_order_id.to_le_bytes());
            p.bytes(&taker_order_id.to_le_bytes());
        }
        Body::TradingStatus { halted } => p.u8(u8::from(*halted)),
        Body::Checksum { depth, crc32 } => {
            p.bytes(&depth.to_le_bytes());
            p.bytes(&crc32.to_le_bytes());
        }
        Body::Heartbeat => {}
        Body::SnapshotBegin { items, halted } => {
            p.bytes(&items.to_le_bytes());
            p.u8(u8::from(*halted));
        }
        Body::SnapshotEnd { items } => p.bytes(&items.to_le_bytes()),
    }
    debug_assert_eq!(p.pos, len, "encoded_len disagrees with encode");
    Ok(len)
}

/// Reads fields from a slice whose length the caller has checked.
struct Get<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Get<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        out
    }
    fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }
    fn price(&mut self) -> Price {
        Price(i64::from_le_bytes(self.array()))
    }
    fn side(&mut self, field: &'static str) -> Result<Side, DecodeError> {
        match self.u8() {
            1 => Ok(Side::Buy),
            2 => Ok(Side::Sell),
            value => Err(DecodeError::InvalidValue { field, value }),
        }
    }
    fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8() {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::InvalidValue { field, value }),
        }
    }
    fn order(&mut self) -> Result<BookOrder, DecodeError> {
        let order_id = self.u64();
        let side = self.side("side")?;
        Ok(BookOrder { order_id: OrderId(order_id), side, price: self.price(), qty: self.u64() })
    }
    fn level(&mut self) -> Result<Level, DecodeError> {
        let side = self.side("side")?;
        Ok(Level { side, price: self.price(), qty: self.u64(), count: self.u32() })
    }
}

/// Reads the first message of `buf`; returns it and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<(Message, usize), DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated { needed: HEADER_LEN, available: buf.len() });
    }
    let mut g = Get { buf, pos: 0 };
    let length = g.u16();
    let t = g.u8();
    let body = body_len(t).ok_or(DecodeError::UnknownType(t))?;
    let expected = HEADER_LEN + body;
    if usize::from(length) != expected {
        return Err(DecodeError::BadLength { msg_type: t, length, expected: expected as u16 });
    }
    if buf.len() < expected {
        return Err(DecodeError::Truncated { needed: expected, available: buf.len() });
    }
    let channel = match g.u8() {
        1 => Channel::Orders,
        2 => Channel::Levels,
        value => return Err(DecodeError::InvalidValue { field: "channel", value }),
    };
    let epoch = g.u64();
    let channel_seq = g.u64();
    let symbol_seq = g.u64();
    let symbol = g.u32();
    let ts_ns = g.u64();
    let symbol = match (t == T_HEARTBEAT, symbol == NO_SYMBOL) {
        (true, true) => None,
        (false, false) => Some(SymbolId(symbol)),
        _ => return Err(DecodeError::BadSymbol(t)),
    };
    let body = match t {
        T_ADD => Body::AddOrder(g.order()?),
        T_REPLACE => Body::Replace(g.order()?),
        T_SNAPSHOT_ORDER => Body::SnapshotOrder(g.order()?),
        T_EXECUTE => Body::Execute { order_id: OrderId(g.u64()), qty: g.u64() },
        T_REDUCE => Body::Reduce { order_id: OrderId(g.u64()), qty: g.u64() },
        T_DELETE => Body::Delete { order_id: OrderId(g.u64()) },
        T_LEVEL => Body::Level(g.level()?),
        T_SNAPSHOT_LEVEL => Body::SnapshotLevel(g.level()?),
        T_TRADE => {
            let price = g.price();
            let qty = g.u64();
            let aggressor = g.side("aggressor")?;
            Body::Trade {
                price,
                qty,
                aggressor,
                maker_order_id: OrderId(g.u64()),
                taker_order_id: OrderId(g.u64()),
            }
        }
        T_STATUS => Body::TradingStatus { halted: g.bool("halted")? },
        T_CHECKSUM => Body::Checksum { depth: g.u16(), crc32: g.u32() },
        T_HEARTBEAT => Body::Heartbeat,
        T_SNAPSHOT_BEGIN => Body::SnapshotBegin { items: g.u32(), halted: g.bool("halted")? },
        T_SNAPSHOT_END => Body::SnapshotEnd { items: g.u32() },
        _ => unreachable!("body_len accepted only the types above"),
    };
    debug_assert_eq!(g.pos, expected);
    let header = Header { epoch, channel, channel_seq, symbol_seq, symbol, ts_ns };
    Ok((Message { header, body }, expected))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Buy), Just(Side::Sell)]
    }
    fn order() -> impl Strategy<Value = BookOrder> {
        (any::<u64>(), side(), any::<i64>(), any::<u64>()).prop_map(|(order_id, side, p, qty)| BookOrder {
            order_id: OrderId(order_id),
            side,
            price: Price(p),
            qty,
        })
    }
    fn level() -> impl Strategy<Value = Level> {
        (side(), any::<i64>(), any::<u64>(), any::<u32>()).prop_map(|(side, p, qty, count)| Level {
            side,
            price: Price(p),
            qty,
            count,
        })
    }
    fn body() -> impl Strategy<Value = Body> {
        prop_oneof![
            order().prop_map(Body::AddOrder),
            (any::<u64>(), any::<u64>())
                .prop_map(|(order_id, qty)| Body::Execute { order_id: OrderId(order_id), qty }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(order_id, qty)| Body::Reduce { order_id: OrderId(order_id), qty }),
            any::<u64>().prop_map(|order_id| Body::Delete { order_id: OrderId(order_id) }),
            order().prop_map(Body::Replace),
            level().prop_map(Body::Level),
            (any::<i64>(), any::<u64>(), side(), any::<u64>(), any::<u64>()).prop_map(
                |(p, qty, aggressor, m, t)| {
                    Body::Trade {
                        price: Price(p),
                        qty,
                        aggressor,
                        maker_order_id: OrderId(m),
                        taker_order_id: OrderId(t),
                    }
                }
            ),
            any::<bool>().prop_map(|halted| Body::TradingStatus { halted }),
            (any::<u16>(), any::<u32>()).prop_map(|(depth, crc32)| Body::Checksum { depth, crc32 }),
            Just(Body::Heartbeat),
            (any::<u32>(), any::<bool>()).prop_map(|(items, halted)| Body::SnapshotBegin { items, halted }),
            order().prop_map(Body::SnapshotOrder),
            level().prop_map(Body::SnapshotLevel),
            any::<u32>().prop_map(|items| Body::SnapshotEnd { items }),
        ]
    }
    fn message() -> impl Strategy<Value = Message> {
        (body(), any::<bool>(), any::<u64>(), any::<u64>(), any::<u64>(), 0..NO_SYMBOL, any::<u64>())
            .prop_map(|(body, orders, epoch, channel_seq, symbol_seq, symbol, ts_ns)| {
                let channel = if orders { Channel::Orders } else { Channel::Levels };
                let symbol = (body != Body::Heartbeat).then_some(SymbolId(symbol));
                Message { header: Header { epoch, channel, channel_seq, symbol_seq, symbol, ts_ns }, body }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn round_trip(m in message()) {
            let mut buf = [0u8; MESSAGE_LEN_MAX];
            let n = encode(&m, &mut buf).unwrap();
            prop_assert_eq!(n, encoded_len(&m));
            prop_assert_eq!(decode(&buf[..n]), Ok((m, n)));
            // Every strict prefix is truncated, never misread.
            for cut in 0..n {
                let truncated = matches!(decode(&buf[..cut]), Err(DecodeError::Truncated { .. }));
                prop_assert!(truncated, "prefix {}", cut);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_decode_canonically(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok((m, n)) = decode(&bytes) {
                let mut buf = [0u8; MESSAGE_LEN_MAX];
                let written = encode(&m, &mut buf).unwrap();
                prop_assert_eq!(&buf[..written], &bytes[..n]);
            }
        }

        #[test]
        fn mutated_messages_never_panic(m in message(), at in any::<prop::sample::Index>(), x in 1u8..=255) {
            let mut buf = [0u8; MESSAGE_LEN_MAX];
            let n = encode(&m, &mut buf).unwrap();
            buf[at.index(n)] ^= x;
            let _ = decode(&buf[..n]);
        }
    }

    #[test]
    fn malformed_inputs_get_typed_errors() {
        let m = Message {
            header: Header {
                epoch: 1,
                channel: Channel::Orders,
                channel_seq: 2,
                symbol_seq: 3,
                symbol: Some(SymbolId(4)),
                ts_ns: 5,
            },
            body: Body::Delete { order_id: OrderId(9) },
        };
        let mut buf = [0u8; MESSAGE_LEN_MAX];
        let n = encode(&m, &mut buf).unwrap();
        assert_eq!(n, HEADER_LEN + 8);
        let mut bad = buf;
        bad[2] = 0xEE;
        assert_eq!(decode(&bad[..n]), Err(DecodeError::UnknownType(0xEE)));
        let mut bad = buf;
        bad[0] = 41;
        assert_eq!(
            decode(&bad[..n]),
            Err(DecodeError::BadLength { msg_type: b'D', length: 41, expected: 48 })
        );
        let mut bad = buf;
        bad[3] = 9;
        assert_eq!(decode(&bad[..n]), Err(DecodeError::InvalidValue { field: "channel", value: 9 }));
        let mut bad = buf;
        bad[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&bad[..n]), Err(DecodeError::BadSymbol(b'D')));
        assert_eq!(encode(&m, &mut [0u8; 10]), Err(BufferTooSmall { needed: 48, available: 10 }));
        // Two messages back to back: the first decode says where the second starts.
        let mut two = [0u8; 2 * MESSAGE_LEN_MAX];
        let a = encode(&m, &mut two).unwrap();
        let b = encode(&m, &mut two[a..]).unwrap();
        assert_eq!(decode(&two[..a + b]).unwrap().1, a);
        assert_eq!(decode(&two[a..a + b]).unwrap().0, m);
    }
}
