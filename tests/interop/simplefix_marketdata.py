#!/usr/bin/env python3
"""Interop test of FIX market data: simplefix (a FIX library nobody here wrote) subscribes over
FIX/TCP to the real `exchange serve` with a MarketDataRequest (35=V) it builds itself, parses
every 35=W, 35=X and 35=Y the venue sends (BodyLength and CheckSum checked on the raw bytes),
reads their repeating groups entry by entry, rebuilds the book from them with every RptSeq (83)
checked, and compares it with the orders it sent; then reads the SecurityStatus (35=f) of an
admin's halt and resume of the symbol.

Usage: simplefix_marketdata.py PATH/TO/exchange
"""
import sys

from simplefix_session import Session, fail
from venue import NETWORK, Serve

CONFIG = NETWORK + """[[accounts]]
name = "alice"
password = "alice"
[[accounts]]
name = "bob"
password = "bob"
[[accounts]]
name = "watcher"
password = "watcher"
market_data_only = true
[[accounts]]
name = "admin"
password = "admin"
admin = true
"""


def entries(msg, fields):
    """The entries of NoMDEntries (268): simplefix keeps repeated tags in order, so the nth
    occurrence of each member belongs to the nth entry."""
    count = int(msg.get(268))
    out = []
    for n in range(1, count + 1):
        entry = {}
        for tag in fields:
            value = msg.get(tag, n)
            if value is not None:
                entry[tag] = value.decode()
        out.append(entry)
    return out


class Book:
    """One symbol's levels rebuilt from 35=W and 35=X, RptSeq checked."""

    def __init__(self):
        self.levels = {}  # (side "0"/"1", price text) -> size
        self.rpt_seq = None
        self.trades = []

    def snapshot(self, msg):
        self.levels = {}
        self.rpt_seq = int(msg.get(83))
        for e in entries(msg, (269, 270, 271)):
            if e[269] in ("0", "1"):
                self.levels[(e[269], e[270])] = int(e[271])

    def incremental(self, symbol, msg):
        for e in entries(msg, (279, 269, 55, 270, 271, 83)):
            if e[55] != symbol:
                continue
            if int(e[83]) != self.rpt_seq + 1:
                fail(f"RptSeq gap: {e[83]} after {self.rpt_seq} in {msg}")
            self.rpt_seq = int(e[83])
            if e[269] == "2":
                self.trades.append((e[270], int(e[271])))
                continue
            key = (e[269], e[270])
            if e[279] == "0":
                if key in self.levels:
                    fail(f"a new level the book already holds: {e}")
                self.levels[key] = int(e[271])
            elif e[279] == "1":
                if key not in self.levels:
                    fail(f"a change of a level the book does not hold: {e}")
                self.levels[key] = int(e[271])
            elif e[279] == "2":
                if self.levels.pop(key, None) is None:
                    fail(f"a delete of a level the book does not hold: {e}")
            else:
                fail(f"MDUpdateAction {e[279]}")


def request(s, req_id, kind, depth, types, symbols):
    fields = [(262, req_id), (263, kind), (264, depth), (265, "1"), (267, len(types))]
    fields += [(269, t) for t in types]
    fields += [(146, len(symbols))] + [(55, sym) for sym in symbols]
    s.send("V", fields)


def order(s, cl_ord_id, side, qty, price):
    s.send("D", [(11, cl_ord_id), (55, "BTC-USD"), (54, side), (60, "20260101-00:00:00.000"),
                 (38, qty), (40, "2"), (44, price), (59, "1")])


def main():
    exe = sys.argv[1]
    serve = Serve(exe, CONFIG, "exchange-interop-md-")
    try:
        port = serve.fix_tcp_port()
        if port is None:
            fail("server did not print its FIX/TCP port")
        alice, bob, watcher = Session(port, "alice"), Session(port, "bob"), Session(port, "watcher")
        for s in (alice, bob, watcher):
            s.logon()
        # Resting orders before the subscription: the snapshot carries them.
        order(alice, "a1", "1", 5, "100.00")
        alice.expect("8", t150="0")
        order(alice, "a2", "1", 3, "99.50")
        alice.expect("8", t150="0")
        order(bob, "b1", "2", 4, "101.00")
        bob.expect("8", t150="0")

        request(watcher, "all", "1", 0, ["0", "1", "2"], ["BTC-USD", "ETH-USD"])
        books = {"BTC-USD": Book(), "ETH-USD": Book()}
        for _ in range(2):
            w = watcher.expect("W", t262="all")
            books[w.get(55).decode()].snapshot(w)
        btc = books["BTC-USD"]
        want = {("0", "100.00"): 5, ("0", "99.50"): 3, ("1", "101.00"): 4}
        if btc.levels != want:
            fail(f"snapshot {btc.levels} != {want}")
        if books["ETH-USD"].levels:
            fail(f"ETH-USD should be empty: {books['ETH-USD'].levels}")

        # A cross: bob sells 7 at 99.50 — takes alice's 5 at 100.00 and 2 of her 3 at 99.50.
        order(bob, "b2", "2", 7, "99.50")
        bob.expect("8", t150="0")
        increments = 0
        while btc.levels != {("0", "99.50"): 1, ("1", "101.00"): 4}:
            x = watcher.expect("X", t262="all")
            btc.incremental("BTC-USD", x)
            increments += 1
            if increments > 10:
                fail(f"the book never reached the expected state: {btc.levels}")
        if sorted(btc.trades) != [("100.00", 5), ("99.50", 2)]:
            fail(f"trades {btc.trades}")

        # Rejects, parsed by simplefix, each naming its reason.
        request(watcher, "bad-type", "1", 0, ["9"], ["BTC-USD"])
        y = watcher.expect("Y", t262="bad-type", t281="8")
        if b"MDEntryType (269) 9" not in y.get(58):
            fail(f"35=Y text: {y}")
        request(watcher, "bad-sym", "1", 0, ["0"], ["NOPE"])
        watcher.expect("Y", t262="bad-sym", t281="0")
        request(watcher, "bad-depth", "1", "-1", ["0"], ["BTC-USD"])
        watcher.expect("Y", t262="bad-depth", t281="5")
        # An admin halts and resumes BTC-USD: the subscriber reads a SecurityStatus (35=f) for each.
        admin = Session(port, "admin")
        admin.logon()
        statuses = []
        for action, status in (("halt", "2"), ("resume", "17")):
            admin.send("U1", [(5100, f"r-{action}"), (5101, action), (55, "BTC-USD")])
            admin.expect("U2", t5100=f"r-{action}", t5103="0")
            while True:
                f = watcher.recv()
                if f.get(35) == b"f":
                    break
                if f.get(35) not in (b"W", b"X"):
                    fail(f"expected 35=f, got {f}")
            if f.get(55) != b"BTC-USD" or f.get(326) != status.encode() or f.get(60) is None:
                fail(f"35=f of the {action}: {f}")
            statuses.append(status)
        # The market-data-only account may not trade.
        order(watcher, "w1", "1", 1, "100.00")
        j = watcher.expect("j", t380="6")
        if b"market-data-only" not in j.get(58):
            fail(f"BusinessMessageReject text: {j}")
        for s in (alice, bob, watcher, admin):
            s.send("5", [])
            while s.recv().get(35) != b"5":
                pass
        print(f"interop: OK: simplefix subscribed (35=V), parsed 2 snapshots (35=W), {increments} "
              "incremental refreshes (35=X, RptSeq gapless), 3 rejects (35=Y) and the halt and resume "
              f"(35=f 326={'/'.join(statuses)}); the rebuilt book matched the orders sent; the "
              "market-data-only account was refused an order")
    finally:
        serve.stop()


if __name__ == "__main__":
    main()
