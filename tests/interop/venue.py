"""What the interop scripts share: a real `exchange serve` on free loopback ports, in a fresh
temporary directory, and a two-session FIX order flow that keeps its book and tape moving."""

import os
import shutil
import subprocess
import tempfile

NETWORK = ('[network]\nquic = "127.0.0.1:0"\ntcp = "127.0.0.1:0"\nhttp = "127.0.0.1:0"\n'
           'md = "127.0.0.1:0"\n[journal]\nsegment_mib = 1\n')
"""Every endpoint on a port the OS picks, small journal segments."""


class Serve:
    """`exchange serve --config CONFIG --data DIR` started with `config` (TOML text); `printed`
    holds what it printed before `ready`, by the text before each line's first colon
    (`fix/tcp`, `http`, `md/quic`, `certificate`, ...)."""

    def __init__(self, exe, config, prefix="exchange-interop-"):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        path = os.path.join(self.tmp, "serve.toml")
        with open(path, "w") as f:
            f.write(config)
        self.process = subprocess.Popen(
            [exe, "serve", "--config", path, "--data", os.path.join(self.tmp, "data")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.printed = {}
        for line in self.process.stdout:
            if line.startswith("ready"):
                break
            key, sep, value = line.partition(":")
            if sep:
                self.printed[key.strip()] = value.strip()

    def fix_tcp_port(self):
        """The FIX/TCP port, or None when serve did not print it."""
        addr = self.printed.get("fix/tcp")
        return int(addr.rsplit(":", 1)[1]) if addr else None

    def http_addr(self):
        """`HOST:PORT` of the HTTP endpoint (printed as a URL), or None."""
        url = self.printed.get("http")
        return url.split("http://", 1)[1].split("/", 1)[0] if url and "http://" in url else None

    def stop(self):
        """SIGTERM (SIGKILL if it has not stopped within 10 s), reap, and remove the temporary
        directory."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def order_flow(port, symbol, stop, tag):
    """Two FIX sessions (simplefix) entering limit orders on both sides around 100.00 until
    `stop` is set: they rest, cross and trade, so a feed has levels, orders and trades. Order
    ids are `{tag}{i}`."""
    from simplefix_session import Session  # the FIX interop's client, in this directory

    sessions = [Session(port, "alice"), Session(port, "bob")]
    for s in sessions:
        s.logon()
        s.sock.setblocking(False)
    i = 0
    while not stop.is_set():
        s = sessions[i % 2]
        side = "1" if (i // 2) % 2 == 0 else "2"
        off = (i * 7) % 13
        price = f"{99.94 + off / 100:.2f}" if side == "1" else f"{100.00 + off / 100:.2f}"
        s.send("D", [(11, f"{tag}{i}"), (55, symbol), (54, side), (60, "20260101-00:00:00.000"),
                     (38, 1 + i % 5), (40, "2"), (44, price), (59, "1")])
        for other in sessions:  # the reports are not the subject: keep the sockets drained
            try:
                while other.sock.recv(65536):
                    pass
            except BlockingIOError:
                pass
        i += 1
        stop.wait(0.002)
