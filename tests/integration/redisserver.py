"""redisserver.py - a private Debian redis-server for the tests: on a UNIX socket
(and a loopback port when asked) under a tmp dir, nothing saved to disk, and a
tiny RESP client to look at what mxgated wrote.

    srv = RedisServer(tmp_dir, password="s3cret", tcp=True).start()
    srv.uri        -> "redis+unix://:s3cret@/tmp/.../redis.sock"
    srv.tcp_uri    -> "redis://:s3cret@127.0.0.1:PORT/0"
    srv.cmd("GET", "mxgate:gl:c:127.0.0.1/32")
    srv.stop(); srv.start()   # an outage, then the same server back (empty)
"""

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

REDIS_SERVER = "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _encode(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("bad RESP line %r" % line)


class RedisServer:
    def __init__(self, workdir: Path, password: Optional[str] = None, tcp: bool = False):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock = str(self.dir / "redis.sock")
        self.password = password
        self.port = _free_port() if tcp else 0
        self.proc: Optional[subprocess.Popen] = None
        self.log = self.dir / "redis.log"

    @property
    def uri(self) -> str:
        auth = ":%s@" % self.password if self.password else ""
        return "redis+unix://%s%s" % (auth, self.sock)

    @property
    def tcp_uri(self) -> str:
        assert self.port, "started without tcp"
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%s127.0.0.1:%d/0" % (auth, self.port)

    def start(self, timeout: float = 10.0) -> "RedisServer":
        assert self.proc is None
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--unixsocket", self.sock, "--unixsocketperm", "700",
                "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                "--daemonize", "no", "--logfile", str(self.log)]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.cmd("PING") == "PONG":
                    return self
            except (OSError, ConnectionError, RuntimeError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("redis-server did not start: %s" %
                                     (self.log.read_text() if self.log.exists() else "no log"))
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def cmd(self, *args):
        """One command over the UNIX socket (AUTH first when there is a password)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.sock)
            r = _Reader(s)
            if self.password:
                s.sendall(_encode("AUTH", self.password))
                r.reply()
            s.sendall(_encode(*args))
            return r.reply()

    def keys(self, pattern: str = "*"):
        return sorted(k.decode() for k in self.cmd("KEYS", pattern))
