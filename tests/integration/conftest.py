"""conftest.py - harness for the mxgated integration tests.

Everything runs on loopback against the real daemon:
  * `sink`      an aiosmtpd server standing for the internal mail server
  * `gateway`   a factory starting build/mxgated with a generated config
  * RawClient   a byte-exact SMTP client for the strictness tests
  * smtp_send   an smtplib client for the ordinary ones

Binaries: $MXGATED and $MXGATECTL, default <repo>/build/mxgated and
<repo>/build/mxgatectl. Run with Debian's interpreter:
    /usr/bin/python3 -m pytest tests/integration
"""

import email.utils
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import pytest

from logfmt import parse_line
from sink import Sink

REPO = Path(__file__).resolve().parents[2]
MXGATED = os.environ.get("MXGATED", str(REPO / "build" / "mxgated"))
MXGATECTL = os.environ.get("MXGATECTL", str(REPO / "build" / "mxgatectl"))

HOSTNAME = "mx.example.test"
QUEUE_ID_RE = re.compile(r"queued as ([0-9A-F]{16})\b")
DIAG_LINE = re.compile(rb"^/\S*:\d+: ")  # mxgated -n style, before logging starts
# a hook's own stderr (contrib/hooks/mx-withdraw: "mx-withdraw: ..."), which the
# foreground daemon's children share: not mxgated's lines
CHILD_LINE = re.compile(rb"^(?!mxgated\[)[a-z][a-z0-9_-]*: ")
SANITIZER_PATTERNS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
)


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float = 5.0, interval: float = 0.05, what: str = "condition"):
    """Poll pred() until it returns a true value; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        val = pred()
        if val:
            return val
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def queue_id(reply_text: str) -> str:
    """The queue id out of "2.0.0 Ok: queued as <ID>"."""
    m = QUEUE_ID_RE.search(reply_text)
    assert m, "no 'queued as <16 hex digits>' in reply %r" % reply_text
    return m.group(1)


def make_message(subject: str = "test", body: bytes = b"Hello.\r\n",
                 sender: str = "alice@client.test", to: str = "bob@example.test",
                 extra_headers: bytes = b"") -> bytes:
    """A small RFC 5322 message with CRLF line ends."""
    hdr = (
        "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
        "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
        "Message-ID: <%s.%d@client.test>\r\n" % (sender, to, subject, subject.replace(" ", "-"),
                                                  int(time.time() * 1000))
    ).encode()
    return hdr + extra_headers + b"\r\n" + body


def client_tls_context() -> ssl.SSLContext:
    """A client context that does not verify the (self-signed) certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------------------
# the raw client
# ---------------------------------------------------------------------------
class Reply:
    """One SMTP reply, possibly multi-line."""

    def __init__(self, lines: List[str]):
        self.lines = lines
        self.code = int(lines[-1][:3])
        self.texts = [ln[4:] for ln in lines]
        self.text = self.texts[-1]
        m = re.match(r"^([245]\.\d{1,3}\.\d{1,3})(?: |$)", self.texts[0])
        self.status = m.group(1) if m else None

    def __repr__(self) -> str:
        return "Reply(%r)" % ("\\r\\n".join(self.lines),)

    def check(self, code: int, status: Optional[str] = None, *keywords: str) -> "Reply":
        """Assert code, enhanced status and that each keyword is in the text."""
        assert self.code == code, "expected %d, got %r" % (code, self)
        if status is not None:
            assert self.status == status, "expected status %s, got %r" % (status, self)
        whole = " ".join(self.texts).lower()
        for kw in keywords:
            assert kw.lower() in whole, "expected %r in %r" % (kw, self)
        return self


class Closed(Exception):
    """The server closed the connection."""


class RawClient:
    """Byte-exact SMTP client: sends exactly what it is given, reads CRLF lines."""

    def __init__(self, port: int, host: str = "127.0.0.1", source: Optional[str] = None,
                 greeting: bool = True, timeout: float = 5.0, implicit_tls: bool = False):
        self.timeout = timeout
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        if implicit_tls:
            self.sock = client_tls_context().wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.buf = b""
        self.greeting: Optional[Reply] = None
        if greeting:
            self.greeting = self.read_reply()

    # -- low level ------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no complete reply line; have %r" % self.buf)
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Closed("connection reset: %s (buffer %r)" % (e, self.buf))
        if not data:
            raise Closed("connection closed by server (buffer %r)" % self.buf)
        self.buf += data

    def read_line(self, timeout: Optional[float] = None) -> str:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        assert line.endswith(b"\r"), "server sent a line not ending in CRLF: %r" % line
        return line[:-1].decode("utf-8", "replace")

    def read_reply(self, timeout: Optional[float] = None) -> Reply:
        lines = []
        while True:
            line = self.read_line(timeout)
            assert re.match(r"^[2-5]\d\d([ -]|$)", line), "malformed reply line %r" % line
            if lines:
                assert line[:3] == lines[0][:3], "reply code changed inside %r" % (lines + [line])
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                return Reply(lines)

    def cmd(self, line, timeout: Optional[float] = None) -> Reply:
        """Send one command (str or bytes) followed by CRLF and read its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.read_reply(timeout)

    def ehlo(self, name: str = "client.example.org") -> Reply:
        return self.cmd("EHLO " + name).check(250)

    def expect_closed(self, timeout: float = 5.0) -> None:
        """Assert the server closes the connection (nothing else arrives first)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
                raise AssertionError("expected the connection to close, got %r" % self.buf)
        except Closed:
            return
        except socket.timeout:
            raise AssertionError("connection still open after %.1f s" % timeout)

    def expect_silence(self, seconds: float = 0.5) -> None:
        """Assert nothing arrives for `seconds` (and the connection stays open)."""
        assert not self.buf, "unexpected data %r" % self.buf
        deadline = time.monotonic() + seconds
        try:
            self._fill(deadline)
        except socket.timeout:
            return
        raise AssertionError("unexpected data from server: %r" % self.buf)

    def starttls(self) -> ssl.SSLSocket:
        """TLS handshake on the current socket (no certificate verification)."""
        assert self.buf == b"", "plaintext after the 220 to STARTTLS: %r" % self.buf
        self.sock.settimeout(self.timeout)
        self.sock = client_tls_context().wrap_socket(self.sock, server_hostname=HOSTNAME)
        return self.sock

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def send_data(client: RawClient, sender: str, rcpts: Sequence[str], data: bytes,
              helo: bool = True) -> Reply:
    """MAIL/RCPT/DATA over a raw client; `data` is sent as-is (must end in CRLF.CRLF)."""
    if helo:
        client.ehlo()
    client.cmd("MAIL FROM:<%s>" % sender).check(250, "2.1.0")
    for r in rcpts:
        client.cmd("RCPT TO:<%s>" % r).check(250, "2.1.5")
    client.cmd("DATA").check(354)
    client.send(data)
    return client.read_reply()


# ---------------------------------------------------------------------------
# smtplib client
# ---------------------------------------------------------------------------
def smtp_send(port: int, sender: str, rcpts: Sequence[str], msg: bytes,
              helo: str = "client.example.org", mail_options: Iterable[str] = (),
              source: Optional[str] = None, tls: bool = False):
    """Send one message with smtplib; returns (code, text) of the DATA reply.
    msg must use CRLF line ends (smtplib sends bytes as they are, dot-stuffed)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=10,
                      source_address=(source, 0) if source else None) as s:
        s.ehlo()
        if tls:
            code, text = s.starttls(context=client_tls_context())
            assert code == 220, (code, text)
            s.ehlo()
        code, text = s.mail(sender, list(mail_options))
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, ("RCPT", r, code, text)
        code, text = s.data(msg)
        return code, text.decode("utf-8", "replace")


def smtp_queue(port: int, sender: str, rcpts: Sequence[str], msg: bytes, **kw) -> str:
    """smtp_send that must get "250 2.0.0 Ok: queued as ID"; returns ID."""
    code, text = smtp_send(port, sender, rcpts, msg, **kw)
    assert code == 250, (code, text)
    assert text.startswith("2.0.0 "), text
    return queue_id(text)


# ---------------------------------------------------------------------------
# the Received header
# ---------------------------------------------------------------------------
def split_received(content: bytes):
    """(raw Received field incl. its final CRLF, rest) of a delivered message."""
    assert content.startswith(b"Received: "), "no Received header first: %r" % content[:200]
    pos = content.index(b"\r\n") + 2
    while content[pos:pos + 1] in (b"\t", b" "):
        pos = content.index(b"\r\n", pos) + 2
    return content[:pos], content[pos:]


def check_received(content: bytes, original: bytes, qid: str, helo: str = "client.example.org",
                   ip: str = "127.0.0.1", rcpt: Optional[str] = None,
                   proto: str = "ESMTP", tls: bool = False) -> str:
    """Assert content == one Received header (behaviour.md format) + original, byte
    for byte. Returns the unfolded header."""
    raw, rest = split_received(content)
    assert rest == original, "message altered in transit:\n%r\n!=\n%r" % (rest, original)
    lines = raw[:-2].split(b"\r\n")
    for cont in lines[1:]:
        assert cont.startswith(b"\t"), "Received continuation not folded with a TAB: %r" % raw
    for ln in lines:
        assert b"\r" not in ln and b"\n" not in ln
        assert len(ln) <= 998
    unfolded = re.sub(r"\s+", " ", raw[:-2].replace(b"\r\n", b"").decode())
    tls_part = r"\(using TLSv1\.[0-3] with cipher [^()]+\) " if tls else ""
    for_part = r" for <%s>" % re.escape(rcpt) if rcpt else ""
    pat = (r"^Received: from %s \(unknown \[%s\]\) by %s \(mxgate\) with %s %sid %s%s; (.+)$"
           % (re.escape(helo), re.escape(ip), re.escape(HOSTNAME), proto, tls_part,
              re.escape(qid), for_part))
    m = re.match(pat, unfolded)
    assert m, "Received header %r does not match %r" % (unfolded, pat)
    date = email.utils.parsedate_to_datetime(m.group(1))
    if date.tzinfo is None:  # "-0000": UTC, local zone not disclosed (RFC 5322 3.3)
        date = date.replace(tzinfo=timezone.utc)
    skew = abs((datetime.now(timezone.utc) - date).total_seconds())
    assert skew < 300, "Received date %r is off by %d s" % (m.group(1), skew)
    return unfolded


# ---------------------------------------------------------------------------
# the daemon
# ---------------------------------------------------------------------------
def _section(name: str, values: Dict[str, object]) -> str:
    if not values:
        return ""
    body = "".join("    %s = %s\n" % (k, _value(v)) for k, v in values.items())
    return "%s {\n%s}\n" % (name, body)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return '"%s"' % v


def _strlist(items: Iterable[str]) -> str:
    return "{" + ", ".join('"%s"' % i for i in items) + "}"


class Gateway:
    """One mxgated instance with its own config, spool, state and log."""

    def __init__(self, workdir: Path, sink_port: Optional[int], tls_files=None,
                 routes: Optional[Dict[str, str]] = None,
                 domains: Sequence[str] = ("example.test",),
                 relay_networks: Sequence[str] = (), limits=None, timeouts=None, queue=None,
                 delivery=None, tls: bool = False, listen_tls: Optional[str] = None,
                 extra: str = "", log_level: Optional[str] = None,
                 checks: Optional[Sequence[str]] = None, env: Optional[Dict[str, str]] = None,
                 hostname: str = HOSTNAME):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = self.dir / "mxgate.conf"
        self.logfile = self.dir / "mxgated.log"
        self.proc: Optional[subprocess.Popen] = None
        self.problems: List[str] = []
        self.listen_tls = listen_tls
        self.env = env  # extra environment variables for the daemon (and the hooks it runs)
        if routes is None:
            routes = {"example.test": "smtp:[127.0.0.1]:%d" % sink_port}
        dl = {"connect_timeout": 5, "command_timeout": 10, "data_timeout": 10}
        dl.update(delivery or {})
        listen = 'address = "127.0.0.1:%d"' % self.port
        if listen_tls:
            listen += ' tls = "%s"' % listen_tls
        if checks is not None:
            listen += " checks = %s" % _strlist(checks)
        text = [
            'hostname = "%s"' % hostname,
            'spool_dir = "%s"' % (self.dir / "spool"),
            'state_dir = "%s"' % (self.dir / "state"),
            "domains = %s" % _strlist(domains),
            "relay_networks = %s" % _strlist(relay_networks),
        ]
        if log_level:
            text.append('log_level = "%s"' % log_level)
        text.append("listen mx { %s }" % listen)
        for dom, target in routes.items():
            # a target, or a dict of the route's options ({"to": ..., "create": True})
            opts = target if isinstance(target, dict) else {"to": target}
            text.append('route "%s" { %s }' % (dom, " ".join("%s = %s" % (k, _value(v))
                                                              for k, v in opts.items())))
        if tls:
            cert, key = tls_files
            text.append('tls {\n    certificate = "%s"\n    key = "%s"\n}' % (cert, key))
        body = "\n".join(text) + "\n"
        body += _section("limits", limits or {})
        # SIGTERM lets messages under way finish for timeouts.shutdown (30 s by
        # default); stop() waits 5 s, so a test's half-sent message waits 3 at most
        body += _section("timeouts", dict({"shutdown": 3}, **(timeouts or {})))
        body += _section("queue", queue or {})
        body += _section("delivery", dl)
        body += extra
        self.config.write_text(body)

    # -- process --------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "Gateway":
        assert self.proc is None, "already running"
        assert Path(MXGATED).exists(), "daemon binary %s does not exist (build first)" % MXGATED
        log = open(self.logfile, "ab")
        try:
            self.proc = subprocess.Popen([MXGATED, "-f", "-c", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=str(self.dir),
                                         env=dict(os.environ, **self.env) if self.env else None)
        finally:
            log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Wait until the listener answers; then a full probe session (greeting,
        QUIT, close) so that the probe is gone before the test starts."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("mxgated exited with %s at start-up; log:\n%s"
                                     % (self.proc.returncode, self.log_text()))
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("mxgated not accepting on port %d after %.0f s; log:\n%s"
                                         % (self.port, timeout, self.log_text()))
                time.sleep(0.05)
        try:
            s.settimeout(max(1.0, deadline - time.monotonic()))
            if self.listen_tls == "implicit":
                s = client_tls_context().wrap_socket(s, server_hostname=HOSTNAME)
            f = s.makefile("rb")
            line = f.readline()
            while line[3:4] == b"-":
                line = f.readline()
            s.sendall(b"QUIT\r\n")
            while f.readline():
                pass
        except OSError:
            pass
        finally:
            s.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> Optional[int]:
        """SIGTERM, then SIGKILL after 5 s. Records crashes and unclean exits."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.problems.append("mxgated did not exit within 5 s of SIGTERM")
                return p.returncode
            if p.returncode != 0:
                self.problems.append("mxgated exited with status %s after SIGTERM" % p.returncode)
        else:
            self.problems.append("mxgated died on its own with status %s" % p.returncode)
        return p.returncode

    def kill9(self) -> None:
        assert self.running, "mxgated is not running"
        p, self.proc = self.proc, None
        p.kill()
        p.wait()

    def restart(self) -> "Gateway":
        if self.proc is not None:
            self.stop()
        return self.start()

    def teardown(self) -> List[str]:
        self.stop()
        text = self.log_text()
        for pat in SANITIZER_PATTERNS:
            if pat in text:
                i = text.index(pat)
                self.problems.append("sanitizer report in the log:\n"
                                     + text[max(0, i - 200):i + 3000])
                break
        self.problems += self.logfmt_problems()
        return self.problems

    def logfmt_problems(self) -> List[str]:
        """Every line the daemon logged must parse as strict logfmt (logfmt.py), as
        Loki's parser would read it; the configuration errors printed before the
        log starts (FILE:LINE: message) and what hooks print are not its lines."""
        try:
            raw = self.logfile.read_bytes()
        except FileNotFoundError:
            return []
        for n, line in enumerate(raw.split(b"\n"), 1):
            if not line or DIAG_LINE.match(line) or CHILD_LINE.match(line):
                continue
            try:
                parse_line(line)
            except ValueError as e:
                return ["%s:%d: not a logfmt line (%s): %r" % (self.logfile, n, e, line)]
        return []

    # -- observation ----------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.logfile.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        return len(self.log_text())

    def wait_log(self, regex: str, timeout: float = 5.0, since: int = 0):
        """Wait for a log line matching regex (re.M); returns the match."""
        rx = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text(), since)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("no log line matching %r within %.1f s; log:\n%s"
                                     % (regex, timeout, self.log_text()[-6000:]))
            time.sleep(0.05)

    def log_lines(self, regex: str) -> List[str]:
        rx = re.compile(regex)
        return [ln for ln in self.log_text().splitlines() if rx.search(ln)]

    def ctl(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
        """Run mxgatectl -c CONFIG args...; returns the CompletedProcess (text)."""
        return subprocess.run([MXGATECTL, "-c", str(self.config), *args], cwd=str(self.dir),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def client(self, **kw) -> RawClient:
        return RawClient(self.port, **kw)


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """(cert, key) of a self-signed certificate for mx.example.test."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=%s" % HOSTNAME, "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


@pytest.fixture
def server_tls_context(tls_files):
    """An ssl server context with the test certificate (for a STARTTLS sink)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*tls_files)
    return ctx


@pytest.fixture
def make_sink():
    """Factory for extra sinks: make_sink(lmtp=False, start=True, tls_context=None,
    unix_path=None, smtputf8=True, size=None)."""
    sinks: List[Sink] = []

    def make(lmtp: bool = False, start: bool = True, tls_context=None,
             unix_path: Optional[str] = None, **kw) -> Sink:
        s = Sink(free_port(), lmtp=lmtp, tls_context=tls_context, unix_path=unix_path, **kw)
        sinks.append(s)
        if start:
            s.start()
        return s

    yield make
    for s in sinks:
        s.stop()


@pytest.fixture
def sink(make_sink) -> Sink:
    """The internal SMTP server that route "example.test" points at by default."""
    return make_sink()


@pytest.fixture
def gateway(request, tmp_path, sink):
    """Factory: gateway(**config) -> a started Gateway. Keywords: routes, domains,
    relay_networks, limits, timeouts, queue, delivery (dicts), tls (bool),
    listen_tls, extra (raw config text), log_level, checks (the listener's policy
    checks), env (extra environment of the daemon), hostname, store (raw store
    section; by default the test's `store_backend` one, if it uses that fixture),
    start (bool)."""
    made: List[Gateway] = []

    def make(start: bool = True, **kw) -> Gateway:
        tls_files_ = request.getfixturevalue("tls_files") if kw.get("tls") else None
        store = kw.pop("store", None)  # raw store section; default: the store_backend's
        if store is None and "store_backend" in request.fixturenames:
            store = store_section(request.getfixturevalue("store_backend"))
        if store:
            kw["extra"] = kw.get("extra", "") + store
        gw = Gateway(tmp_path / ("gw%d" % len(made)), sink.port, tls_files=tls_files_, **kw)
        made.append(gw)
        if start:
            gw.start()
        return gw

    yield make
    problems: List[str] = []
    for gw in made:
        problems += gw.teardown()
        # Captured output: pytest shows it only when the test failed.
        print("---- %s (port %d), log tail ----\n%s" % (gw.logfile, gw.port, gw.log_text()[-5000:]))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# ---------------------------------------------------------------------------
# the state store: LMDB (each gateway's own) or one shared Redis
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """One private redis-server for the test module (UNIX socket and a loopback port)."""
    from redisserver import RedisServer
    srv = RedisServer(tmp_path_factory.mktemp("redis"), tcp=True).start()
    yield srv
    srv.stop()


@pytest.fixture(params=["lmdb", "redis"])
def store_backend(request):
    """Parametrises a test over both backends: the `gateway` factory then gives every
    gateway `store { uri = ... }` of the shared Redis (emptied for each test), or
    leaves the default LMDB in its state_dir. .name, .redis (the server or None)."""
    class Backend:
        name = request.param
        redis = None

    b = Backend()
    if b.name == "redis":
        b.redis = request.getfixturevalue("redis_server")
        if b.redis.proc is None:  # a test stopped it and failed before restarting it
            b.redis.start()
        b.redis.cmd("FLUSHALL")
    yield b
    if b.redis is not None and b.redis.proc is not None:
        # the redis variant really ran on Redis: its gateways wrote their state there
        assert b.redis.keys("mxgate:*"), "no gateway of this test wrote to Redis"


def store_section(backend, on_error: str = "pass", uri: Optional[str] = None) -> str:
    """The store section of a gateway for backend ("" for LMDB's default)."""
    if backend is None or backend.name == "lmdb":
        return ""
    return 'store {\n    uri = "%s"\n    on_error = "%s"\n    timeout = 1000\n}\n' % (
        uri or backend.redis.uri, on_error)
