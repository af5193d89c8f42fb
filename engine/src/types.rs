//! Domain value types shared by commands, events and the book.
//!
//! Prices cross the engine boundary as fixed-point integers with [`PRICE_SCALE`] decimals
//! ("price units"); inside a book they are integer ticks of that symbol. Quantities are
//! integer units that must be a multiple of the symbol's lot.

use core::fmt;

/// Decimal places of a price unit: a price of `100.50` is `10_050_000_000` units.
///
/// Eight places cover every tick size a venue lists (crypto down to 1e-8) while keeping
/// `i64` headroom for prices up to about 92 billion.
pub const PRICE_SCALE: u32 = 8;

/// Price units per 1.0 of price.
pub const PRICE_UNITS_PER_ONE: i64 = 10i64.pow(PRICE_SCALE);

/// Defines an id newtype over an unsigned integer.
///
/// The ids were `u32`/`u64` aliases, so an account id passed where a symbol id was meant
/// compiled and failed only at run time. As `#[repr(transparent)]` newtypes they cost nothing
/// (same layout, same hash, same codec bytes) and the compiler tells the two apart. `Debug` and
/// `Display` print the bare number, as the aliases did, so event dumps and logs read the same.
macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident($int:ty)) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $int);

        impl $name {
            /// The largest id.
            pub const MAX: $name = $name(<$int>::MAX);

            /// The id with this number.
            #[inline]
            pub const fn new(n: $int) -> $name {
                $name(n)
            }

            /// The number of this id (what the codec writes).
            #[inline]
            pub const fn get(self) -> $int {
                self.0
            }

            /// The number's little-endian bytes (what the codecs write).
            #[inline]
            pub const fn to_le_bytes(self) -> [u8; core::mem::size_of::<$int>()] {
                self.0.to_le_bytes()
            }

            /// The number as an index into a dense table.
            #[inline]
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl From<$int> for $name {
            #[inline]
            fn from(n: $int) -> $name {
                $name(n)
            }
        }

        impl From<$name> for $int {
            #[inline]
            fn from(id: $name) -> $int {
                id.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl core::str::FromStr for $name {
            type Err = core::num::ParseIntError;
            fn from_str(s: &str) -> Result<$name, Self::Err> {
                s.parse::<$int>().map($name)
            }
        }
    };
}

id_newtype! {
    /// Dense account number, assigned by the edge (config or command-file reader).
    AccountId(u32)
}

id_newtype! {
    /// Dense symbol number: the index of the symbol in the engine's symbol table.
    SymbolId(u32)
}

id_newtype! {
    /// Engine-assigned order number, unique for the life of an engine (never reused).
    OrderId(u64)
}

const _: () = assert!(core::mem::size_of::<AccountId>() == 4);
const _: () = assert!(core::mem::size_of::<SymbolId>() == 4);
const _: () = assert!(core::mem::size_of::<OrderId>() == 8);

/// Quantity in units (shares, contracts, coins); always a multiple of the symbol's lot.
pub type Qty = u64;

/// A symbol id that names no symbol; commands carrying it are rejected `unknown_symbol`.
pub const SYMBOL_UNKNOWN: SymbolId = SymbolId::MAX;

/// A price in integer ticks of its symbol. Inside the engine every price is a `Price`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Price(pub i64);

/// A price in price units: [`PRICE_SCALE`] decimals, the integer value of the price text
/// (`100.50` is `10_050_000_000`), the same for every symbol. What crosses the engine boundary.
///
/// Kept apart from [`Price`] (ticks of one symbol): both were `i64`, and a tick count passed
/// where units were meant (or the other way) compiled and was off by the tick size. Going
/// from one to the other takes the symbol ([`SymbolSpec::units_to_ticks`],
/// [`SymbolSpec::ticks_to_units`]). `#[repr(transparent)]`: same layout and codec bytes as the
/// `i64` it wraps, so the newtype costs nothing.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PriceUnits(pub i64);

impl PriceUnits {
    /// Zero units (the price field of a market order).
    pub const ZERO: PriceUnits = PriceUnits(0);

    /// The price with this many units.
    #[inline]
    pub const fn new(units: i64) -> PriceUnits {
        PriceUnits(units)
    }

    /// The number of units (what the codecs write).
    #[inline]
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The units widened for notional and money arithmetic (price × quantity).
    #[inline]
    pub const fn wide(self) -> i128 {
        self.0 as i128
    }

    /// The number's little-endian bytes (what the codecs write).
    #[inline]
    pub const fn to_le_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }
}

impl From<i64> for PriceUnits {
    #[inline]
    fn from(units: i64) -> PriceUnits {
        PriceUnits(units)
    }
}

impl From<PriceUnits> for i64 {
    #[inline]
    fn from(units: PriceUnits) -> i64 {
        units.0
    }
}

impl From<PriceUnits> for i128 {
    #[inline]
    fn from(units: PriceUnits) -> i128 {
        i128::from(units.0)
    }
}

impl fmt::Debug for PriceUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for PriceUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

const _: () = assert!(core::mem::size_of::<PriceUnits>() == core::mem::size_of::<i64>());

/// Buy or sell.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Side {
    /// Bid side.
    Buy,
    /// Ask side.
    Sell,
}

impl Side {
    /// The other side.
    #[inline]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// Lower-case name as used in command and event files.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// The one order type enum: how the order prices itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OrdType {
    /// Takes any price; never rests.
    Market,
    /// Trades at its limit or better; may rest.
    Limit,
}

/// Time in force.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Tif {
    /// Good till cancel: the rest rests.
    Gtc,
    /// Immediate or cancel: the rest is canceled.
    Ioc,
    /// Fill or kill: all at entry or nothing.
    Fok,
    /// Good till date: rests until a command with `ts >= expire_ts` arrives.
    Gtd,
}

/// Self-trade prevention mode of the aggressor.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum StpMode {
    /// Cancel the aggressor's rest and stop matching.
    #[default]
    CancelNewest,
    /// Cancel the resting order and keep matching.
    CancelOldest,
    /// Cancel both.
    CancelBoth,
}

/// Longest client order id the engine stores, in bytes.
///
/// 32 bytes hold a UUID without dashes, QuickFIX's timestamp ids and every id format we have
/// seen from FIX engines; a longer id is refused at the edge with a reason.
pub const CL_ORD_ID_LEN_MAX: usize = 32;

/// A client order id stored inline (no allocation), up to [`CL_ORD_ID_LEN_MAX`] bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClOrdId {
    len: u8,
    bytes: [u8; CL_ORD_ID_LEN_MAX],
}

/// Why a client order id could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClOrdIdError {
    /// The id is empty.
    #[error("client order id is empty")]
    Empty,
    /// The id is longer than the engine stores.
    #[error("client order id is {0} bytes, longer than the {max} allowed", max = CL_ORD_ID_LEN_MAX)]
    TooLong(usize),
}

impl ClOrdId {
    /// The id as bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The id as text (ids are stored from `&str` or checked FIX bytes; lossy otherwise).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("<non-utf8>")
    }

    /// The id as four little-endian words, zero past its length (for hashing).
    #[inline]
    pub(crate) fn words(&self) -> [u64; 4] {
        let w = |i: usize| u64::from_le_bytes(self.bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        [w(0), w(1), w(2), w(3)]
    }

    /// The stored length and bytes (zero past the length), for a slot that keeps them apart.
    #[inline]
    pub(crate) fn raw_parts(&self) -> (u8, [u8; CL_ORD_ID_LEN_MAX]) {
        (self.len, self.bytes)
    }

    /// An id from [`ClOrdId::raw_parts`]' output.
    #[inline]
    pub(crate) fn from_raw_parts(len: u8, bytes: [u8; CL_ORD_ID_LEN_MAX]) -> ClOrdId {
        debug_assert!(len as usize <= CL_ORD_ID_LEN_MAX && bytes[len as usize..].iter().all(|&b| b == 0));
        ClOrdId { len, bytes }
    }

    /// Copies `bytes` into an id.
    pub fn from_bytes(bytes: &[u8]) -> Result<ClOrdId, ClOrdIdError> {
        if bytes.is_empty() {
            return Err(ClOrdIdError::Empty);
        }
        if bytes.len() > CL_ORD_ID_LEN_MAX {
            return Err(ClOrdIdError::TooLong(bytes.len()));
        }
        let mut id = ClOrdId { len: bytes.len() as u8, bytes: [0; CL_ORD_ID_LEN_MAX] };
        id.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(id)
    }

    /// Copies `s` into an id.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(s: &str) -> Result<ClOrdId, ClOrdIdError> {
        ClOrdId::from_bytes(s.as_bytes())
    }
}

impl core::hash::Hash for ClOrdId {
    // Hash only the used bytes: the tail is always zero and would only cost time.
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
    }
}

impl fmt::Debug for ClOrdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for ClOrdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Static description of one tradable symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolSpec {
    /// Name, e.g. `BTC-USD`.
    pub name: String,
    /// Tick size in price units ([`PRICE_SCALE`] decimals); `1_000_000` is a tick of 0.01.
    pub tick_units: PriceUnits,
    /// Lot size in quantity units; every quantity is a multiple of it.
    pub lot: Qty,
}

impl SymbolSpec {
    /// A symbol with a tick given in price units and a lot in quantity units.
    pub fn new(name: &str, tick_units: impl Into<PriceUnits>, lot: Qty) -> SymbolSpec {
        let tick_units = tick_units.into();
        assert!(tick_units.0 > 0, "tick size must be positive");
        assert!(lot > 0, "lot size must be positive");
        SymbolSpec { name: name.to_string(), tick_units, lot }
    }

    /// Converts a price in units to ticks, or `None` when it is not a positive multiple of
    /// the tick.
    #[inline]
    pub fn units_to_ticks(&self, units: PriceUnits) -> Option<Price> {
        let (units, tick) = (units.0, self.tick_units.0);
        if units <= 0 || units % tick != 0 {
            None
        } else {
            Some(Price(units / tick))
        }
    }

    /// Converts ticks back to price units.
    #[inline]
    pub fn ticks_to_units(&self, price: Price) -> PriceUnits {
        PriceUnits(price.0 * self.tick_units.0)
    }

    /// Decimal places needed to print any price of this symbol exactly.
    pub fn price_decimals(&self) -> u32 {
        let mut tick = self.tick_units.0;
        let mut decimals = PRICE_SCALE;
        while decimals > 0 && tick % 10 == 0 {
            tick /= 10;
            decimals -= 1;
        }
        decimals
    }
}

/// The embedded default symbols: `BTC-USD`, `ETH-USD`, `AAPL`, tick 0.01, lot 1.
pub fn default_symbols() -> Vec<SymbolSpec> {
    let cent = PRICE_UNITS_PER_ONE / 100;
    vec![
        SymbolSpec::new("BTC-USD", cent, 1),
        SymbolSpec::new("ETH-USD", cent, 1),
        SymbolSpec::new("AAPL", cent, 1),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cl_ord_id_bounds() {
        assert_eq!(ClOrdId::from_str(""), Err(ClOrdIdError::Empty));
        let long = "x".repeat(CL_ORD_ID_LEN_MAX + 1);
        assert_eq!(ClOrdId::from_str(&long), Err(ClOrdIdError::TooLong(33)));
        let max = "y".repeat(CL_ORD_ID_LEN_MAX);
        assert_eq!(ClOrdId::from_str(&max).unwrap().as_str(), max);
    }

    #[test]
    fn tick_conversion_rejects_off_tick_and_non_positive() {
        let s = SymbolSpec::new("X", 1_000_000, 1);
        assert_eq!(s.units_to_ticks(PriceUnits(10_050_000_000)), Some(Price(10_050)));
        assert_eq!(s.units_to_ticks(PriceUnits(10_050_500_000)), None);
        assert_eq!(s.units_to_ticks(PriceUnits::ZERO), None);
        assert_eq!(s.units_to_ticks(PriceUnits(-1_000_000)), None);
        assert_eq!(s.ticks_to_units(Price(10_050)), PriceUnits(10_050_000_000));
        assert_eq!(s.price_decimals(), 2);
        assert_eq!(SymbolSpec::new("Y", 100_000_000, 1).price_decimals(), 0);
        assert_eq!(SymbolSpec::new("Z", 5, 1).price_decimals(), 8);
    }
}
