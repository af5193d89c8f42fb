#!/usr/bin/env python3
"""Interop test: a FIX session driven by simplefix (a FIX library nobody here wrote) against
the real `exchange serve` over FIX/TCP. It builds every message it sends with simplefix, parses
every message it receives with simplefix, and checks BodyLength and CheckSum itself.

Usage: simplefix_session.py PATH/TO/exchange
"""
import re
import socket
import sys
import time

import simplefix

from venue import NETWORK, Serve

SOH = b"\x01"


def fail(text):
    print(f"interop: FAIL: {text}")
    sys.exit(1)


def check_framing(raw):
    """BodyLength and CheckSum of one raw message, per the FIX spec."""
    m = re.match(rb"8=FIX\.4\.4\x019=(\d+)\x01", raw)
    if not m:
        fail(f"bad header: {raw!r}")
    body_start = m.end()
    body_len = int(m.group(1))
    if raw[body_start + body_len:body_start + body_len + 3] != b"10=":
        fail(f"BodyLength {body_len} does not end at 10=: {raw!r}")
    checksum = sum(raw[:body_start + body_len]) % 256
    if raw[body_start + body_len + 3:body_start + body_len + 6] != b"%03d" % checksum:
        fail(f"CheckSum mismatch (computed {checksum:03d}): {raw!r}")


class Session:
    def __init__(self, port, account):
        self.account = account
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.parser = simplefix.FixParser()
        self.buf = b""
        self.seq = 1
        self.in_next = 1  # next MsgSeqNum expected from the venue

    def send(self, msg_type, fields):
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4")
        m.append_pair(35, msg_type)
        m.append_pair(49, self.account)
        m.append_pair(56, "EXCHANGE")
        m.append_pair(34, self.seq)
        m.append_utc_timestamp(52, precision=3)
        for tag, value in fields:
            m.append_pair(tag, value)
        self.sock.sendall(m.encode())
        self.seq += 1

    def recv(self):
        """Next message, parsed by simplefix; framing checked on the raw bytes."""
        deadline = time.time() + 10
        while True:
            m = re.search(rb"\x0110=\d{3}\x01", self.buf)
            if m:
                raw, self.buf = self.buf[:m.end()], self.buf[m.end():]
                check_framing(raw)
                self.parser.append_buffer(raw)
                msg = self.parser.get_message()
                if msg is None:
                    fail(f"simplefix could not parse {raw!r}")
                if msg.get(35) == b"4" and msg.get(123) == b"Y":
                    self.in_next = int(msg.get(36))
                else:
                    self.in_next = int(msg.get(34)) + 1
                return msg
            if time.time() > deadline:
                fail(f"{self.account}: no message within 10 s")
            chunk = self.sock.recv(65536)
            if not chunk:
                fail(f"{self.account}: connection closed")
            self.buf += chunk

    def expect(self, msg_type, **tags):
        msg = self.recv()
        got = msg.get(35).decode()
        if got != msg_type:
            fail(f"{self.account}: expected 35={msg_type}, got {msg}")
        for tag, want in tags.items():
            value = msg.get(int(tag[1:]))
            if value is None or value.decode() != want:
                fail(f"{self.account}: expected {tag[1:]}={want} in {msg}")
        return msg

    def logon(self):
        self.send("A", [(98, 0), (108, 30), (141, "Y"), (553, self.account), (554, self.account)])
        self.expect("A", t108="30")

    def reconnect(self, port):
        """A new connection continuing this session's numbers (no ResetSeqNumFlag). Returns the
        MsgSeqNum of the venue's Logon reply."""
        self.sock.close()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        expected = self.in_next
        self.send("A", [(98, 0), (108, 30), (553, self.account), (554, self.account)])
        logon = self.expect("A", t108="30")
        if logon.get(141) is not None:
            fail(f"{self.account}: the venue reset the numbers of a continued session: {logon}")
        self.in_next = expected  # what was missed is still to come
        return int(logon.get(34))


def main():
    exe = sys.argv[1]
    serve = Serve(exe, NETWORK)
    try:
        port = serve.fix_tcp_port()
        if port is None:
            fail("server did not print its FIX/TCP port")

        alice, bob = Session(port, "alice"), Session(port, "bob")
        alice.logon()
        bob.logon()
        alice.send("D", [(11, "py-a1"), (55, "BTC-USD"), (54, "1"), (60, "20260101-00:00:00.000"),
                         (38, 10), (40, "2"), (44, "100.50"), (59, "1")])
        alice.expect("8", t150="0", t39="0", t11="py-a1", t151="10")
        bob.send("D", [(11, "py-b1"), (55, "BTC-USD"), (54, "2"), (60, "20260101-00:00:00.000"),
                       (38, 4), (40, "1")])
        bob.expect("8", t150="0", t11="py-b1")
        bob.expect("8", t150="F", t39="2", t14="4", t31="100.50", t32="4")
        alice.expect("8", t150="F", t39="1", t14="4", t151="6", t6="100.50")
        # A session-level exchange: TestRequest is answered with its id.
        alice.send("1", [(112, "ping")])
        alice.expect("0", t112="ping")
        # A malformed order gets a session Reject naming the missing tag.
        bob.send("D", [(11, "py-b2"), (55, "BTC-USD"), (38, 1), (40, "1")])
        bob.expect("3", t373="1", t371="54")
        # alice logs out; her order fills while she is away; she reconnects with continued
        # numbers, sees the gap in the venue's Logon and gets the fill through ResendRequest.
        alice.send("5", [])
        alice.expect("5")
        bob.send("D", [(11, "py-b3"), (55, "BTC-USD"), (54, "2"), (60, "20260101-00:00:00.000"),
                       (38, 2), (40, "1")])
        bob.expect("8", t150="0", t11="py-b3")
        bob.expect("8", t150="F", t39="2", t14="2")
        missed_from = alice.in_next
        logon_seq = alice.reconnect(port)
        if logon_seq <= missed_from:
            fail(f"alice: the venue's Logon {logon_seq} shows no gap after {missed_from - 1}")
        alice.send("2", [(7, missed_from), (16, 0)])
        fill = alice.expect("8", t150="F", t11="py-a1", t14="6", t151="4", t43="Y")
        if fill.get(122) is None:
            fail(f"alice: a resent report without OrigSendingTime (122): {fill}")
        alice.expect("4", t123="Y", t43="Y")
        if alice.in_next != logon_seq + 1:
            fail(f"alice: after the resend the next MsgSeqNum is {alice.in_next}, not {logon_seq + 1}")
        alice.send("D", [(11, "py-a2"), (55, "BTC-USD"), (54, "1"), (60, "20260101-00:00:00.000"),
                         (38, 1), (40, "2"), (44, "99.00"), (59, "1")])
        alice.expect("8", t150="0", t11="py-a2")
        for s in (alice, bob):
            s.send("5", [])
            s.expect("5")
        print("interop: OK: simplefix drove two sessions (logon, orders, fills, test request, reject, "
              "reconnect with continued numbers and a resend of a fill made while away, logout)")
    finally:
        serve.stop()


if __name__ == "__main__":
    main()
