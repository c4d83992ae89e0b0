"""pymilter.py - a tiny milter in Python for the tests: scriptable, and hostile on demand.

It speaks the milter protocol (version 6) on a loopback TCP port, one thread
per connection. What it answers is the test's: `on(cmd, fn)` sets a function
that gets (cmd, payload, conn) for a command octet ('C', 'H', 'M', 'R', 'T',
'L', 'N', 'B', 'E', ...) and returns the reply packets as a list of
(reply octet, payload bytes), or the string "close" (hang up), or a number
(seconds to sleep before the default answer), or raw bytes (written as
they are: garbage). The default answers continue, and accept at the end of
message. Every command it gets is recorded in `seen` (per connection) for
the test to assert what mxgate sent.
"""

import socket
import struct
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

Reply = Tuple[bytes, bytes]


def pkt(cmd: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload) + 1) + cmd + payload


def replycode(text: str) -> Reply:
    return (b"y", text.encode() + b"\0")


def header(name: str, value: str) -> bytes:
    return name.encode() + b"\0" + value.encode() + b"\0"


class PyMilter:
    def __init__(self, actions: int = 0x3F, protocol: int = 0):
        self.actions = actions
        self.protocol = protocol
        self.handlers: Dict[bytes, Callable] = {}
        self.seen: List[List[Tuple[bytes, bytes]]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def socket_spec(self) -> str:
        return "inet:127.0.0.1:%d" % self.port

    def on(self, cmd: str, fn: Optional[Callable]) -> None:
        """fn(cmd, payload, conn_index) -> replies | "close" | seconds | bytes; None: default."""
        if fn is None:
            self.handlers.pop(cmd.encode(), None)
        else:
            self.handlers[cmd.encode()] = fn

    def reset(self) -> None:
        self.handlers.clear()
        self.seen.clear()
        self.actions, self.protocol = 0x3F, 0

    def stop(self) -> None:
        self.stopped = True
        self.sock.close()

    def commands(self, idx: int = -1) -> List[bytes]:
        return [c for c, _ in self.seen[idx]] if self.seen else []

    # -- server -------------------------------------------------------------
    def _accept(self) -> None:
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            log: List[Tuple[bytes, bytes]] = []
            self.seen.append(log)
            threading.Thread(target=self._serve, args=(c, log, len(self.seen) - 1),
                             daemon=True).start()

    @staticmethod
    def _read(c: socket.socket, n: int) -> bytes:
        out = b""
        while len(out) < n:
            b = c.recv(n - len(out))
            if not b:
                raise EOFError
            out += b
        return out

    def _default(self, cmd: bytes) -> List[Reply]:
        if cmd == b"O":
            return [(b"O", struct.pack(">III", 6, self.actions, self.protocol))]
        if cmd in (b"D", b"A", b"Q"):
            return []
        if cmd == b"E":
            return [(b"a", b"")]
        if cmd == b"L" and self.protocol & 0x80:
            return []
        if cmd == b"B" and self.protocol & 0x80000:
            return []
        return [(b"c", b"")]

    def _serve(self, c: socket.socket, log, idx: int) -> None:
        try:
            while True:
                n = struct.unpack(">I", self._read(c, 4))[0]
                data = self._read(c, n)
                cmd, payload = data[:1], data[1:]
                log.append((cmd, payload))
                if cmd == b"Q":
                    break
                fn = self.handlers.get(cmd)
                out = fn(cmd, payload, idx) if fn else None
                if out == "close":
                    break
                if isinstance(out, (int, float)) and not isinstance(out, bool):
                    time.sleep(out)
                    out = None
                if isinstance(out, bytes):
                    c.sendall(out)
                    continue
                for rc, rp in (out if out is not None else self._default(cmd)):
                    c.sendall(pkt(rc, rp))
        except (EOFError, OSError):
            pass
        finally:
            c.close()
