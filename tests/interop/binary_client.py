#!/usr/bin/env python3
"""Interop test: the binary order-by-order feed (`[network] md`) read with aioquic (a QUIC stack
nobody here wrote), decoding the messages from the layout docs/marketdata.md gives and sharing
no code with the server. The venue drops every 3rd datagram (`[marketdata] drop_datagram_every`);
this client must see the holes in each symbol's sequence, ask for the missing channel range on
the recovery stream, rebuild the order book, and verify every checksum with zlib's CRC-32.

Usage: binary_client.py PATH/TO/exchange [SYMBOL] [CHECKSUMS_MIN]
    starts `exchange serve` on free ports in a temporary directory and sends orders to it over
    FIX/TCP (two simplefix sessions) while it reads the binary feed.
"""
import asyncio
import struct
import sys
import threading
import zlib

from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import DatagramFrameReceived, StreamDataReceived
from venue import NETWORK, Serve, order_flow

HEADER = struct.Struct("<HBBQQQIQ")  # length, type, channel, epoch, channel_seq, symbol_seq, symbol, ts_ns
BODIES = {
    b"A": struct.Struct("<QBqQ"),  # add: order_id side price qty
    b"E": struct.Struct("<QQ"),  # execute: order_id qty
    b"X": struct.Struct("<QQ"),  # reduce: order_id qty
    b"D": struct.Struct("<Q"),  # delete: order_id
    b"U": struct.Struct("<QBqQ"),  # replace: order_id side price qty
    b"P": struct.Struct("<qQBQQ"),  # trade: price qty aggressor maker taker
    b"H": struct.Struct("<B"),  # trading status
    b"K": struct.Struct("<HI"),  # checksum: depth crc32
    b"Z": struct.Struct("<"),  # heartbeat
    b"G": struct.Struct("<IB"),  # snapshot begin: items halted
    b"O": struct.Struct("<QBqQ"),  # snapshot order
    b"N": struct.Struct("<I"),  # snapshot end: items
}
SNAPSHOT_PARTS = (b"G", b"O", b"N")


def fail(text):
    print(f"binary interop: FAIL: {text}")
    sys.exit(1)


def messages(data):
    """Every message of a datagram (or of one `M` frame), decoded from the documented layout."""
    at = 0
    while at < len(data):
        length, kind, channel, epoch, channel_seq, symbol_seq, symbol, ts = HEADER.unpack_from(data, at)
        kind = bytes([kind])
        if kind not in BODIES or length != HEADER.size + BODIES[kind].size:
            fail(f"message type {kind!r} of length {length}")
        body = BODIES[kind].unpack_from(data, at + HEADER.size)
        yield kind, channel_seq, symbol_seq, symbol, body
        at += length


class Book:
    """One symbol's order book from snapshot + updates, in symbol_seq order."""

    def __init__(self):
        self.orders = {}  # order_id -> [side, price, qty]
        self.seq = None  # last symbol_seq applied; None until the first snapshot
        self.channel_seq = 0  # channel_seq of that message
        self.held = {}  # symbol_seq -> (kind, channel_seq, body), after a hole
        self.in_snapshot = False
        self.checksums = 0
        self.gaps = 0
        self.healed = 0
        self.gap_open = False

    def checksum(self, depth):
        levels = {1: {}, 2: {}}
        for side, price, qty in self.orders.values():
            levels[side][price] = levels[side].get(price, 0) + qty
        asks = sorted(levels[2].items())[:depth]
        bids = sorted(levels[1].items(), reverse=True)[:depth]
        text = "A" + "".join(f"{p}:{q};" for p, q in asks) + "B" + "".join(f"{p}:{q};" for p, q in bids)
        return zlib.crc32(text.encode())

    def apply(self, kind, body):
        if kind in (b"A", b"U"):
            order_id, side, price, qty = body
            self.orders[order_id] = [side, price, qty]
        elif kind in (b"E", b"X"):
            order_id, qty = body
            order = self.orders.get(order_id) or fail(f"execute/reduce of unknown order {order_id}")
            order[2] -= qty
            if order[2] < 0:
                fail(f"order {order_id} below 0")
            if order[2] == 0:
                del self.orders[order_id]
        elif kind == b"D":
            self.orders.pop(body[0], None) or fail(f"delete of unknown order {body[0]}")
        elif kind == b"K":
            depth, crc = body
            ours = self.checksum(depth)
            if ours != crc:
                fail(f"checksum {ours:#010x} != feed's {crc:#010x} at symbol_seq {self.seq}")
            self.checksums += 1

    def on(self, kind, channel_seq, symbol_seq, body):
        if kind == b"G":
            self.orders, self.in_snapshot = {}, True
            self.seq, self.channel_seq = symbol_seq, channel_seq
            self.held = {s: m for s, m in self.held.items() if s > symbol_seq}
            self.gap_open = False
        elif kind == b"O":
            if self.in_snapshot:
                order_id, side, price, qty = body
                self.orders[order_id] = [side, price, qty]
        elif kind == b"N":
            self.in_snapshot = False
            if body[0] != len(self.orders):
                fail(f"snapshot announced {body[0]} orders, {len(self.orders)} came")
            self.release()
        elif kind != b"Z":
            if self.seq is not None and symbol_seq <= self.seq:
                return  # duplicate, or in the snapshot
            self.held[symbol_seq] = (kind, channel_seq, body)
            if not self.in_snapshot:
                self.release()

    def release(self):
        if self.seq is None:
            return
        while self.seq + 1 in self.held:
            kind, channel_seq, body = self.held.pop(self.seq + 1)
            self.seq, self.channel_seq = self.seq + 1, channel_seq
            self.apply(kind, body)
        if self.held and not self.gap_open:
            self.gap_open = True
            self.gaps += 1
        elif not self.held and self.gap_open:
            self.gap_open = False
            self.healed += 1

    def request(self):
        """The request that heals the first hole: (channel_seq from, count), or None."""
        if self.seq is None or not self.held or self.in_snapshot:
            return None
        next_channel = self.held[min(self.held)][1]
        return self.channel_seq + 1, next_channel - self.channel_seq - 1


class Feed(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stream = None
        self.buffer = b""
        self.symbols = {}  # id -> name
        self.books = {}
        self.outstanding = False
        self.ready = asyncio.Event()
        self.retransmissions = 0

    def send(self, kind, payload):
        self._quic.send_stream_data(self.stream, struct.pack("<HB", len(payload) + 1, kind[0]) + payload)
        self.transmit()

    def subscribe(self, names):
        self.stream = self._quic.get_next_available_stream_id()
        payload = bytes([len(names)]) + b"".join(bytes([len(n)]) + n.encode() for n in names)
        self.send(b"S", payload)

    def on_message(self, kind, channel_seq, symbol_seq, symbol, body):
        if symbol in self.books:
            self.books[symbol].on(kind, channel_seq, symbol_seq, body)

    def ask(self):
        if self.outstanding:
            return
        for symbol, book in self.books.items():
            r = book.request()
            if r is not None:
                self.outstanding = ("R", symbol, r)
                self.send(b"R", struct.pack("<QI", *r))
                return

    def quic_event_received(self, event):
        if isinstance(event, DatagramFrameReceived):
            for kind, channel_seq, symbol_seq, symbol, body in messages(event.data):
                self.on_message(kind, channel_seq, symbol_seq, symbol, body)
            self.ask()
        elif isinstance(event, StreamDataReceived):
            self.buffer += event.data
            while len(self.buffer) >= 2:
                (length,) = struct.unpack_from("<H", self.buffer)
                if len(self.buffer) < 2 + length:
                    break
                kind, payload = self.buffer[2:3], self.buffer[3:2 + length]
                self.buffer = self.buffer[2 + length:]
                self.on_frame(kind, payload)
            self.ask()

    def on_frame(self, kind, payload):
        if kind == b"A":
            count, at = payload[0], 1
            for _ in range(count):
                symbol, _tick = struct.unpack_from("<Iq", payload, at)
                at += 12
                name = payload[at + 1:at + 1 + payload[at]].decode()
                at += 1 + payload[at]
                self.symbols[symbol] = name
                self.books[symbol] = Book()
            self.ready.set()
        elif kind == b"M":
            for m in messages(payload):
                self.on_message(*m)
                if m[0] == b"N" and self.outstanding and self.outstanding[:2] == ("Q", m[3]):
                    self.outstanding = False  # the snapshot asked for is complete
        elif kind == b"C":
            _from, _count, _sent, _source = struct.unpack("<QIIB", payload)
            self.retransmissions += 1
            _, symbol, _r = self.outstanding
            self.outstanding = False
            if self.books[symbol].request() is not None:
                # Still a hole inside the range: a snapshot heals it.
                self.outstanding = ("Q", symbol, None)
                self.send(b"Q", struct.pack("<I", symbol))
        elif kind == b"E":
            fail(f"refused: {payload[1:].decode()}")


async def main(md, cert, symbol, checksums_min):
    host, port = md.rsplit(":", 1)
    config = QuicConfiguration(is_client=True, alpn_protocols=["itch-md"], max_datagram_frame_size=65536,
                               server_name="localhost")
    config.load_verify_locations(cert)
    async with connect(host, int(port), configuration=config, create_protocol=Feed) as feed:
        feed.subscribe([symbol])
        await asyncio.wait_for(feed.ready.wait(), 10)
        (book,) = feed.books.values()
        for _ in range(600):
            if book.checksums >= checksums_min and book.healed > 0 and not book.held:
                break
            await asyncio.sleep(0.05)
        if book.checksums < checksums_min:
            fail(f"only {book.checksums} checksums verified in 30 s")
        if book.gaps == 0 or book.healed == 0 or feed.retransmissions == 0:
            fail(f"every 3rd datagram was dropped, yet {book.gaps} gaps, {book.healed} healed, "
                 f"{feed.retransmissions} retransmissions")
        print(f"binary interop: ok: {book.checksums} checksums verified, {book.gaps} gaps, "
              f"{book.healed} healed by {feed.retransmissions} retransmissions, {len(book.orders)} orders resting")


if __name__ == "__main__":
    exe = sys.argv[1] if len(sys.argv) > 1 else "target/debug/exchange"
    symbol = sys.argv[2] if len(sys.argv) > 2 else "BTC-USD"
    checksums_min = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    stop = threading.Event()
    # Every third datagram dropped: the client must notice the gaps and heal them.
    serve = Serve(exe, NETWORK.replace('http = "127.0.0.1:0"', 'http = ""')
                  + '[marketdata]\ndrop_datagram_every = 3\n', "exchange-binary-interop-")
    port, md, cert = serve.fix_tcp_port(), serve.printed.get("md/quic"), serve.printed.get("certificate")
    if port is None or md is None or cert is None:
        serve.stop()
        fail("exchange serve did not print its FIX/TCP and md addresses and its certificate")
    md, cert = md.split()[0], cert.split()[0]
    flow = threading.Thread(target=order_flow, args=(port, symbol, stop, "bin"), daemon=True)
    flow.start()
    try:
        asyncio.run(main(md, cert, symbol, checksums_min))
    finally:
        stop.set()
        flow.join(timeout=10)
        serve.stop()
