#!/usr/bin/env python3
"""Interop test: the market data WebSocket feed read by Python's `websockets` (a client nobody
here wrote), sharing no code with the server. It subscribes to level2 and level3, rebuilds both
books from the in-band snapshot and the updates, checks that every channel's symbol_seq is
gapless, and verifies every checksum with zlib's CRC-32 over the text docs/marketdata.md defines.

Usage: ws_client.py ws://HOST:PORT/ws [SYMBOL] [CHECKSUMS_MIN]
       ws_client.py PATH/TO/exchange [SYMBOL] [CHECKSUMS_MIN]
           starts `exchange serve` on free ports in a temporary directory and sends orders to it
           over FIX/TCP (two simplefix sessions, see simplefix_session.py) while it reads /ws
       ws_client.py PATH/TO/ws_demo [SYMBOL] [CHECKSUMS_MIN]   (starts it on a free port, stops it after)
"""
import asyncio
import json
import os
import subprocess
import sys
import threading
import zlib
from decimal import Decimal

import websockets
from venue import NETWORK, Serve, order_flow


def fail(text):
    print(f"ws interop: FAIL: {text}")
    sys.exit(1)


class Book:
    """One channel's book: levels (level2) or orders in priority (level3)."""

    def __init__(self, channel):
        self.channel = channel
        self.seq = None
        self.tick = None
        self.levels = {"buy": {}, "sell": {}}  # price_ticks -> qty (level2)
        self.orders = {}  # order_id -> [side, price_ticks, qty] (level3)
        self.checksums = 0

    def ticks(self, price):
        units = Decimal(price) / self.tick
        if units != units.to_integral_value():
            fail(f"price {price} is not a multiple of the tick {self.tick}")
        return int(units)

    def aggregate(self):
        if self.channel == "level2":
            return self.levels
        out = {"buy": {}, "sell": {}}
        for side, price, qty in self.orders.values():
            out[side][price] = out[side].get(price, 0) + qty
        return out

    def checksum(self, depth):
        levels = self.aggregate()
        asks = sorted(levels["sell"].items())[:depth]
        bids = sorted(levels["buy"].items(), reverse=True)[:depth]
        text = "A" + "".join(f"{p}:{q};" for p, q in asks) + "B" + "".join(f"{p}:{q};" for p, q in bids)
        return zlib.crc32(text.encode("ascii"))

    def on(self, m):
        kind = m["type"]
        if kind == "snapshot":
            self.tick = Decimal(m["tick_size"])
            self.seq = m["symbol_seq"]
            self.levels = {"buy": {}, "sell": {}}
            self.orders = {}
            for side, key in (("buy", "bids"), ("sell", "asks")):
                for e in m[key]:
                    if self.channel == "level2":
                        self.levels[side][self.ticks(e["price"])] = e["qty"]
                    else:
                        self.orders[e["order_id"]] = [side, self.ticks(e["price"]), e["qty"]]
            return
        if self.seq is None:
            fail(f"{self.channel}: {kind} before the snapshot")
        if m["symbol_seq"] != self.seq + 1:
            fail(f"{self.channel}: gap, expected symbol_seq {self.seq + 1}, got {m['symbol_seq']}")
        self.seq = m["symbol_seq"]
        if kind == "l2update":
            side, price = m["side"], self.ticks(m["price"])
            if m["qty"] == 0:
                self.levels[side].pop(price, None)
            else:
                self.levels[side][price] = m["qty"]
        elif kind == "l3update":
            op, oid = m["op"], m["order_id"]
            if op in ("add", "replace"):
                self.orders[oid] = [m["side"], self.ticks(m["price"]), m["qty"]]
            elif op in ("execute", "reduce"):
                self.orders[oid][2] -= m["qty"]
                if self.orders[oid][2] <= 0:
                    del self.orders[oid]
            elif op == "delete":
                del self.orders[oid]
            else:
                fail(f"unknown op {op}")
        elif kind == "checksum":
            ours = self.checksum(m["depth"])
            if ours != m["crc32"]:
                fail(f"{self.channel}: checksum {ours:#010x}, feed says {m['crc32']:#010x} at seq {self.seq}")
            self.checksums += 1


async def main(url, symbol, checksums_min):
    books = {"level2": Book("level2"), "level3": Book("level3")}
    errors = []
    async with websockets.connect(url) as ws:
        for channel in books:
            await ws.send(json.dumps({"type": "subscribe", "channel": channel, "symbol": symbol}))
        await ws.send(json.dumps({"type": "subscribe", "channel": "level2", "symbol": "NO-SUCH"}))
        while min(b.checksums for b in books.values()) < checksums_min:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=20)
            except asyncio.TimeoutError:
                fail(f"feed went quiet after {[b.checksums for b in books.values()]} checksums")
            m = json.loads(raw)
            if m["type"] == "error":
                errors.append(m["reason"])
            elif m.get("channel") in books and "symbol_seq" in m:
                books[m["channel"]].on(m)
    if not any("unknown symbol NO-SUCH" in e for e in errors):
        fail(f"no reject for an unknown symbol: {errors}")
    print(
        f"ws interop: OK, level2 seq {books['level2'].seq} ({books['level2'].checksums} checksums), "
        f"level3 seq {books['level3'].seq} ({books['level3'].checksums} checksums), "
        f"{len(books['level3'].orders)} orders resting"
    )


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9880/ws"
    symbol = sys.argv[2] if len(sys.argv) > 2 else "BTC-USD"
    checksums_min = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    server, serve, stop, flow = None, None, threading.Event(), None
    if os.path.basename(target).startswith("exchange"):
        serve = Serve(target, NETWORK, "exchange-ws-interop-")
        port, http = serve.fix_tcp_port(), serve.http_addr()
        if port is None or http is None:
            serve.stop()
            fail("exchange serve did not print its FIX/TCP and HTTP addresses")
        target = f"ws://{http}/ws"
        flow = threading.Thread(target=order_flow, args=(port, symbol, stop, "ws"), daemon=True)
        flow.start()
    elif not target.startswith("ws://"):
        server = subprocess.Popen([target, "127.0.0.1:0", "20000"], stdout=subprocess.PIPE, text=True)
        line = server.stdout.readline()
        if "listening on " not in line:
            server.kill()
            fail(f"demo server did not start: {line!r}")
        target = line.split("listening on ", 1)[1].strip()
    try:
        asyncio.run(main(target, symbol, checksums_min))
    finally:
        stop.set()
        if flow is not None:
            flow.join(timeout=10)
        if server is not None:
            server.kill()
            server.wait()
        if serve is not None:
            serve.stop()
