//! Sans-IO market data: the engine's event stream projected into public books (L3 order by
//! order, L2 levels, L1 best bid and offer), a trade tape and OHLCV bars; sequenced feeds with
//! snapshots, gap detection and a book checksum; a subscriber-side book builder; a binary
//! order-by-order codec; and a fan-out publisher with bounded per-subscriber queues.
//!
//! Nothing here does I/O or reads a clock: events carry the time. The shell (journal tailer,
//! sockets) drives [`Projection::apply`], [`MarketData::on_event`] or [`Publisher::on_event`]
//! with events in sequence order from event 1. The one exception is the WebSocket shell
//! (`ws_router`, feature `ws`, on by default), which links axum and tokio; build with
//! `default-features = false` for the sans-IO core alone.
#![warn(missing_docs, unreachable_pub)]

mod book;
mod builder;
pub mod codec;
pub mod datagram;
mod depth;
mod feed;
mod message;
mod projection;
mod publisher;
pub mod recovery;
mod tape;
#[cfg(feature = "ws")]
mod ws;

pub use book::{Bbo, BookError, BookOrder, Level, LevelBook, OrderBook};
pub use builder::{BookBuilder, BuildError, ChannelGap, ChannelTracker, Progress, PENDING_MAX};
pub use depth::DepthWindow;
pub use feed::{FeedConfig, MarketData};
pub use message::{Body, Channel, Header, Message, Sink};
pub use projection::{BookOp, Projection, ProjectionConfig, ProjectionError, ProjectionSink, SYMBOLS_MAX};
pub use publisher::{
    DisconnectReason, DrainError, Publisher, PublisherConfig, PublisherStats, RetransmitError, SlowPolicy,
    SubscribeError, SubscriberId, Subscription,
};
pub use tape::{Bar, BarPeriod, TradeTick};
#[cfg(feature = "ws")]
pub use ws::{
    ws_router, WsChannel, WsEntry, WsFeed, WsMessage, WsPeriod, WsRequest, WsSeq, WS_SUBSCRIPTIONS_MAX,
};

// The engine's vocabulary, imported in one place so a change of its id types touches one line.
pub use engine::{OrderId, Price, Qty, Side, SymbolId};
