"""Hostile clients: slowloris and random binary garbage.

* slowloris: thousands of connections from 127.0.0.2..9: a third silent
  after the greeting, a third sending one byte of a command line every 0.5 s
  and never its end, a third doing the same inside DATA. Meanwhile a
  well-behaved client is served within its normal time, the daemon's RSS
  stays bounded and does not grow from one wave to the next, and every
  attacker is dropped with "421 4.4.2" at its timeout (command or data): the
  time a line may take is bounded in total, not per byte, or one byte every
  few seconds holds a session forever.
* out of descriptors: more connections than the daemon may open files;
  accept() fails with EMFILE and the daemon must back off instead of
  spinning on its listener and flooding its log, then accept again.
* garbage: seeded random bytes (NUL, CR, LF, high bytes, SMTP-looking noise)
  at every state of a session, in plaintext, raw after STARTTLS's 220 and
  inside TLS; afterwards the daemon is alive, serves a normal client, its
  replies were always well-formed and its RSS is bounded.

Seeds are printed and can be set with MXGATE_HOSTILE_SEED.
"""

import os
import random
import re
import resource
import selectors
import socket
import ssl
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional

from conftest import make_message, smtp_queue, wait_until

SOURCES = ["127.0.0.%d" % i for i in range(2, 10)]
MIB = 1024 * 1024
REPLY_LINE_RE = re.compile(rb"^[2-5]\d\d(?:[ -].*)?$")


def seed_of(name: str) -> int:
    seed = int(os.environ.get("MXGATE_HOSTILE_SEED", str(int(time.time()))))
    print("%s seed: MXGATE_HOSTILE_SEED=%d" % (name, seed))
    return seed


def raise_nofile(need: int) -> int:
    """Raise this process's RLIMIT_NOFILE (inherited by the daemon) to need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        new_hard = hard if hard == resource.RLIM_INFINITY or hard >= need else need
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, new_hard))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_bytes(pid: int) -> int:
    """VmRSS of pid from /proc/<pid>/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def daemon_nofile(pid: int) -> int:
    """The daemon's soft open-files limit."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no open files limit for pid %d" % pid)


# ---------------------------------------------------------------------------
# slowloris
# ---------------------------------------------------------------------------
SLOW_CONNS = 2000
COMMAND_TIMEOUT = 3
DROP_SLACK = 3.0  # seconds past the timeout by which every attacker must be gone
SLOW_INTERVAL = 0.5
SLOW_LINE = b"EHLO slowloris.attacker.example" + b"x" * 200  # never a CRLF
SLOW_DATA_START = (b"EHLO slowloris.attacker.example\r\nMAIL FROM:<slow@attacker.example>\r\n"
                   b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
SLOW_BODY = b"Subject: slowloris" + b"y" * 200  # never a CRLF
KINDS_SLOW = ("idle", "slowcmd", "slowdata")
RSS_LIMIT = 200 * MIB


class Attacker:
    """One slowloris connection."""

    def __init__(self, sock: socket.socket, kind: str, opened: float, src: str):
        self.sock = sock
        self.kind = kind  # one of KINDS_SLOW
        self.slow = kind != "idle"
        self.src = src
        self.opened = opened
        self.buf = b""
        # When the reply that starts the timed wait arrived: the greeting
        # (idle, slowcmd) or the 354 to DATA (slowdata).
        self.since: Optional[float] = None
        self.started = False  # slowdata: the commands up to DATA were sent
        self.sent = 0  # slow bytes sent
        self.closed_at: Optional[float] = None
        self.how = ""  # "eof" or "reset" once closed by the server

    def got(self, data: bytes, now: float) -> None:
        if len(self.buf) < 4096:
            self.buf += data
        if self.since is None:
            if self.kind != "slowdata" and b"\r\n" in self.buf:
                self.since = now
            elif self.kind == "slowdata" and b"\r\n354 " in self.buf:
                self.since = now

    def waited(self) -> float:
        """Seconds from the start of the timed wait to the server's close."""
        return self.closed_at - (self.since if self.since is not None else self.opened)


class Slowloris:
    """Opens n connections and pumps them from a thread: reads whatever the
    server says, sends one byte every SLOW_INTERVAL on the slow ones, notes
    when the server closes each."""

    def __init__(self, port: int, n: int):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.conns: List[Attacker] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._pump, name="slowloris", daemon=True)
        for i in range(n):
            src = SOURCES[i % len(SOURCES)]
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((src, 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            c = Attacker(s, KINDS_SLOW[i % len(KINDS_SLOW)], opened=time.monotonic(), src=src)
            self.conns.append(c)
            self.sel.register(s, selectors.EVENT_READ, c)
        self.thread.start()

    def _closed(self, c: Attacker, how: str, now: float) -> None:
        if c.closed_at is None:
            c.closed_at = now
            c.how = how
            self.sel.unregister(c.sock)
            c.sock.close()

    def _read(self, c: Attacker, now: float) -> None:
        try:
            data = c.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._closed(c, "reset", now)
            return
        if data:
            c.got(data, now)
        else:
            self._closed(c, "eof", now)

    def _send(self, c: Attacker, data: bytes, now: float) -> bool:
        try:
            c.sock.sendall(data)
            return True
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self._closed(c, "reset", now)
            return False

    def _dribble(self, now: float) -> None:
        for c in self.conns:
            if c.closed_at is not None or not c.slow:
                continue
            if c.kind == "slowdata" and not c.started:
                # Pipelined up to DATA once greeted; then the body byte by byte.
                if b"\r\n" in c.buf and self._send(c, SLOW_DATA_START, now):
                    c.started = True
                continue
            line = SLOW_LINE if c.kind == "slowcmd" else SLOW_BODY
            if c.since is not None and c.sent < len(line):
                if self._send(c, line[c.sent:c.sent + 1], now):
                    c.sent += 1

    def _pump(self) -> None:
        next_tick = time.monotonic()
        while not self.stop.is_set():
            for key, _ in self.sel.select(timeout=0.05):
                self._read(key.data, time.monotonic())
            now = time.monotonic()
            if now >= next_tick:
                self._dribble(now)
                next_tick = now + SLOW_INTERVAL

    def unstarted(self) -> List[Attacker]:
        """Slow attackers still open that have not sent their first slow byte."""
        return [c for c in self.conns if c.slow and not c.sent and c.closed_at is None]

    def open_count(self) -> int:
        return sum(1 for c in self.conns if c.closed_at is None)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for c in self.conns:
            if c.closed_at is None:
                c.sock.close()
        self.sel.close()


def timed_send(gw, sink, tag: str) -> float:
    """One well-behaved smtplib transaction; returns its duration and checks
    that the message reaches the sink."""
    msg = make_message(subject="wellbehaved-%s" % tag)
    t = time.monotonic()
    smtp_queue(gw.port, "alice@client.test", ["bob@example.test"], msg)
    took = time.monotonic() - t
    needle = ("Subject: wellbehaved-%s\r\n" % tag).encode()
    wait_until(lambda: any(needle in m.content for m in sink.messages), timeout=5,
               what="the well-behaved client's message %s at the sink" % tag)
    return took


def run_wave(gw, sink, wave: int) -> dict:
    """One slowloris wave; returns its observations (asserted by the caller)."""
    pid = gw.proc.pid
    rss = [rss_bytes(pid)]
    t0 = time.monotonic()
    attack = Slowloris(gw.port, SLOW_CONNS)
    opened_in = time.monotonic() - t0
    held = attack.open_count()
    try:
        # The attack is in place once every slow attacker is dribbling (the
        # DATA ones need their pipelined commands answered first).
        try:
            wait_until(lambda: not attack.unstarted(), timeout=10,
                       what="every slow attacker to start")
        except AssertionError:
            left = attack.unstarted()
            raise AssertionError("wave %d: %d slow attackers got no answer to their commands "
                                 "within 10 s, e.g. %s got %r"
                                 % (wave, len(left), left[0].kind, left[0].buf[:300]))
        settled_in = time.monotonic() - t0
        rss.append(rss_bytes(pid))
        served = []
        for i in range(2):
            served.append(timed_send(gw, sink, "w%d-%d" % (wave, i)))
            rss.append(rss_bytes(pid))
        last = max(c.since or c.opened for c in attack.conns)
        while time.monotonic() < last + COMMAND_TIMEOUT + DROP_SLACK and attack.open_count():
            rss.append(rss_bytes(pid))
            time.sleep(0.25)
        rss.append(rss_bytes(pid))
    finally:
        attack.finish()
    return {"attack": attack, "rss": rss, "held": held, "served": served,
            "opened_in": opened_in, "settled_in": settled_in}


def describe_drops(attack: Slowloris, kind: str) -> str:
    cs = [c for c in attack.conns if c.kind == kind]
    open_ = [c for c in cs if c.closed_at is None]
    closed = [c for c in cs if c.closed_at is not None]
    with421 = [c for c in closed if b"421 4.4.2 " in c.buf]
    after = sorted(c.waited() for c in closed)
    span = ("closed %.1f..%.1f s after the last reply" % (after[0], after[-1])) if after else ""
    return ("%s: %d of %d still open, %d closed (%d with 421 4.4.2) %s; e.g. one got %r"
            % (kind, len(open_), len(cs), len(closed), len(with421), span,
               (open_ or cs)[0].buf[:200]))


def asan_small_quarantine() -> dict:
    """Environment for the daemon: if it is built with ASan, keep its quarantine
    of freed memory small so that RSS shows what the daemon itself retains."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=8"}


def test_slowloris_is_dropped_and_others_served(gateway, sink):
    got = raise_nofile(3 * SLOW_CONNS + 1000)
    assert got >= 2 * SLOW_CONNS + 500, "cannot raise RLIMIT_NOFILE (have %d)" % got
    gw = gateway(limits={"max_connections": 5000, "max_connections_per_ip": 5000},
                 timeouts={"command": COMMAND_TIMEOUT, "data": COMMAND_TIMEOUT},
                 env=asan_small_quarantine())
    assert daemon_nofile(gw.proc.pid) >= SLOW_CONNS + 500
    waves = [run_wave(gw, sink, w) for w in range(2)]
    assert gw.running, "mxgated died under the slowloris attack"

    for w, r in enumerate(waves):
        print("wave %d: opened %d in %.2f s (%d open), all dribbling after %.2f s; "
              "well-behaved %s s; RSS MiB %s"
              % (w, SLOW_CONNS, r["opened_in"], r["held"], r["settled_in"],
                 ["%.3f" % t for t in r["served"]], ["%.1f" % (x / MIB) for x in r["rss"]]))
        for kind in KINDS_SLOW:
            print("  " + describe_drops(r["attack"], kind))
    for w, r in enumerate(waves):
        # The daemon held the attack: it greeted every connection (no 421
        # "too many connections", nothing dropped at once).
        assert r["held"] == SLOW_CONNS, "wave %d: %d of %d open after connecting" % (
            w, r["held"], SLOW_CONNS)
        refused = [c.buf[:100] for c in r["attack"].conns if not c.buf.startswith(b"220 ")]
        assert not refused, "wave %d: %d attackers not greeted, e.g. %r" % (
            w, len(refused), refused[:3])
        for t in r["served"]:
            assert t < 2.0, ("wave %d: the well-behaved client needed %.2f s during the attack"
                             % (w, t))
        assert max(r["rss"]) < RSS_LIMIT, ("wave %d: RSS %.1f MiB over %d MiB with %d connections"
                                           % (w, max(r["rss"]) / MIB, RSS_LIMIT // MIB,
                                              SLOW_CONNS))
    # No growth from one wave to the next: the memory of dropped sessions is reused.
    peak0, peak1 = max(waves[0]["rss"]), max(waves[1]["rss"])
    assert peak1 <= peak0 * 1.15 + 8 * MIB, (
        "RSS keeps growing: peak %.1f MiB in wave 0, %.1f MiB in wave 1"
        % (peak0 / MIB, peak1 / MIB))

    # Every attacker is dropped at its timeout (command, or data after the 354),
    # with the timeout reply; the idle ones not before it. Sending a byte now
    # and then must not extend the time a line may take.
    for w, r in enumerate(waves):
        attack = r["attack"]
        for kind in KINDS_SLOW:
            cs = [c for c in attack.conns if c.kind == kind]
            late = [c for c in cs if c.closed_at is None
                    or c.waited() > COMMAND_TIMEOUT + DROP_SLACK]
            nlate = len(late)
            assert nlate == 0, (
                "wave %d: %d of %d %s attackers were not dropped within %.0f s (timeouts: "
                "command %d s, data %d s). %s"
                % (w, nlate, len(cs), kind if kind == "idle" else
                   "%s (one byte every %.1f s, never a CRLF)" % (kind, SLOW_INTERVAL),
                   COMMAND_TIMEOUT + DROP_SLACK, COMMAND_TIMEOUT, COMMAND_TIMEOUT,
                   describe_drops(attack, kind)))
            no421 = [c.buf[-200:] for c in cs if c.how == "eof" and b"421 4.4.2 " not in c.buf]
            assert not no421, "wave %d: %s attackers closed without 421 4.4.2, e.g. %r" % (
                w, kind, no421[:3])
        early = [round(c.closed_at - c.opened, 2) for c in attack.conns
                 if c.kind == "idle" and c.closed_at - c.opened < COMMAND_TIMEOUT - 0.5]
        assert not early, "wave %d: idle clients dropped before the timeout: %r" % (w, early[:5])
    timeouts = gw.log_lines(r"event=timeout sid=\S+ client=127\.0\.0\.[2-9] state=(command|data)")
    assert len(timeouts) == 2 * SLOW_CONNS, "%d event=timeout log lines for %d attackers" % (
        len(timeouts), 2 * SLOW_CONNS)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_no_spin_and_recovers(gateway, sink):
    """More connections than the daemon has file descriptors: accept() fails
    with EMFILE. The daemon must back off (not spin on the listener, not
    flood its log), keep serving the sessions it has, and accept again once
    descriptors are free."""
    gw = gateway(limits={"max_connections": 5000, "max_connections_per_ip": 5000},
                 timeouts={"command": 30})
    pid = gw.proc.pid
    nfd = len(os.listdir("/proc/%d/fd" % pid))
    hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (nfd + 40, hard))
    held = [socket.create_connection(("127.0.0.1", gw.port), source_address=(SOURCES[0], 0),
                                     timeout=5) for _ in range(150)]
    try:
        time.sleep(0.5)
        mark, c0 = gw.log_mark(), cpu_seconds(pid)
        time.sleep(2.0)
        spent, text = cpu_seconds(pid) - c0, gw.log_text()[mark:]
        errors = text.count("event=accept_error")
        print("out of descriptors: %.2f s CPU in 2 s, %d accept_error log lines, %d bytes of log"
              % (spent, errors, len(text)))
        assert gw.running, "mxgated died when out of file descriptors"
        assert spent < 0.5, "mxgated spins when accept() fails: %.2f s CPU in 2 s" % spent
        assert errors <= 40, ("log flood when accept() fails: %d accept_error lines in 2 s"
                              % errors)
    finally:
        for s in held:
            s.close()
    # Descriptors are free again: a normal client is accepted and served.
    t = time.monotonic()
    smtp_queue(gw.port, "alice@client.test", ["bob@example.test"],
               make_message(subject="after-emfile"))
    took = time.monotonic() - t
    assert took < 3.0, "served %.2f s after descriptors were freed" % took
    wait_until(lambda: any(b"Subject: after-emfile\r\n" in m.content for m in sink.messages),
               timeout=5, what="the message sent after the descriptor exhaustion")


# ---------------------------------------------------------------------------
# garbage
# ---------------------------------------------------------------------------
STATES = ("connect", "greeting", "ehlo", "mail", "rcpt", "data", "starttls", "tls")
SIZES = (1, 7, 100, 511, 512, 513, 1000, 4096, 65536, 100_000)
KINDS = ("uniform", "linenoise", "smtpish")
MAX_ERRORS = 10
SMTP_WORDS = [b"EHLO ", b"HELO ", b"MAIL FROM:<", b"RCPT TO:<", b"DATA", b"BDAT 100",
              b"STARTTLS", b"RSET", b"NOOP", b"QUIT", b"VRFY ", b"AUTH PLAIN ", b"\r\n.\r\n",
              b"<>", b"@", b"SIZE=99999999999999999999", b"BODY=8BITMIME", b" SMTPUTF8",
              b"\xc3\xa9", b"\xff\xfe", b"%", b"!", b"\"", b"\x00", b"\r", b"\n", b"\r\n",
              b".", b"..", b"x" * 600]


def garbage(rng: random.Random, kind: str, size: int) -> bytes:
    """size bytes of seeded noise of the given kind."""
    if kind == "uniform":
        return rng.randbytes(size)
    if kind == "linenoise":
        alphabet = b"\r\n\x00..\r\n\x80\xff\xfe \tA:<>@" + bytes(range(0x80, 0x90))
        return bytes(rng.choice(alphabet) for _ in range(size))
    out = bytearray()
    while len(out) < size:
        if rng.random() < 0.7:
            out += rng.choice(SMTP_WORDS)
        else:
            out += rng.randbytes(rng.randint(1, 20))
    return bytes(out[:size])


def setup_state(gw, state: str):
    """A RawClient brought to state (inside TLS for "tls"); returns (client,
    plaintext) where plaintext says whether the server's output is SMTP text
    (not after STARTTLS's 220, where the garbage replaces the handshake)."""
    if state == "connect":
        return gw.client(greeting=False, timeout=5), True
    c = gw.client(timeout=5)
    if state == "greeting":
        return c, True
    if state in ("starttls", "tls"):
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        if state == "starttls":
            return c, False
        c.starttls()
    c.ehlo()
    if state in ("ehlo", "tls"):
        return c, True
    c.cmd("MAIL FROM:<garbage@client.test>").check(250)
    if state == "mail":
        return c, True
    c.cmd("RCPT TO:<bob@example.test>").check(250)
    if state == "rcpt":
        return c, True
    c.cmd("DATA").check(354)
    return c, True


def drain(c, quiet: float = 0.4, total: float = 5.0) -> str:
    """Read until the server closes ("eof"), resets ("reset": a close with
    unread input; the last replies may be lost) or is quiet for `quiet` s
    ("open")."""
    deadline = time.monotonic() + total
    while time.monotonic() < deadline:
        c.sock.settimeout(quiet)
        try:
            data = c.sock.recv(65536)
        except socket.timeout:
            return "open"
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            return "reset"
        if not data:
            return "eof"
        if len(c.buf) < 1_000_000:
            c.buf += data
    return "open"


def check_replies(out: bytes, end: str, what: str) -> None:
    """Everything the server said is well-formed SMTP reply lines, and a client
    that collects max_errors error replies is disconnected."""
    lines = out.split(b"\r\n")
    tail = lines.pop()
    assert tail == b"" or end != "eof", "%s: server sent a partial line %r" % (what, tail[:200])
    errors = 0
    for i, ln in enumerate(lines):
        assert b"\n" not in ln and b"\r" not in ln, "%s: bare CR/LF in reply %r" % (what, ln)
        assert REPLY_LINE_RE.match(ln), "%s: malformed reply line %r" % (what, ln[:200])
        if ln[:1] in (b"4", b"5") and ln[3:4] == b" ":
            errors += 1
        if ln.startswith(b"421 "):
            assert i == len(lines) - 1, "%s: replies after a 421: %r" % (what, lines[i:][:5])
    assert errors <= MAX_ERRORS + 1, (
        "%s: %d error replies, the session should have been closed after %d"
        % (what, errors, MAX_ERRORS))
    if errors >= MAX_ERRORS + 1 or (errors == MAX_ERRORS and end == "eof"):
        assert lines[-1].startswith(b"421 4.7.0 "), "%s: no 421 after %d errors" % (what, errors)


def one_garbage(gw, state: str, kind: str, size: int, seed: int) -> str:
    """Run one garbage connection; returns a short outcome for the summary."""
    rng = random.Random(seed)
    data = garbage(rng, kind, size)
    what = "state=%s kind=%s size=%d seed=%d" % (state, kind, size, seed)
    c, plaintext = setup_state(gw, state)
    try:
        c.buf = b""
        try:
            c.sock.settimeout(5)
            c.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
            pass  # the server already closed: fine, as long as it stays up
        end = drain(c)
        if plaintext:
            check_replies(c.buf, end, what)
        if end == "open" and rng.random() < 0.5:  # half of them leave with a reset
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        last = c.buf.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1][:3] if plaintext else b"tls"
        return "%s:%s" % (end, last.decode("ascii", "replace") or "-")
    finally:
        c.close()


def garbage_round(gw, base_seed: int) -> dict:
    jobs = []
    for si, state in enumerate(STATES):
        for ki, kind in enumerate(KINDS):
            for zi, size in enumerate(SIZES):
                jobs.append((state, kind, size, base_seed * 1000 + si * 100 + ki * 10 + zi))
    outcomes = {}
    with ThreadPoolExecutor(max_workers=16) as ex:
        for (state, kind, size, seed), res in zip(jobs, ex.map(lambda j: one_garbage(gw, *j),
                                                              jobs)):
            outcomes[res] = outcomes.get(res, 0) + 1
    return outcomes


def test_random_garbage_at_every_state(gateway, sink):
    seed = seed_of("garbage")
    gw = gateway(tls=True, limits={"max_errors": MAX_ERRORS, "max_connections_per_ip": 100},
                 timeouts={"command": 10, "data": 10}, env=asan_small_quarantine())
    pid = gw.proc.pid
    rss0 = rss_bytes(pid)
    rounds = []
    for r in range(2):
        outcomes = garbage_round(gw, seed + r)
        assert gw.running, "mxgated died in garbage round %d (seed %d)" % (r, seed + r)
        rounds.append(rss_bytes(pid))
        print("round %d: %r, RSS %.1f MiB" % (r, outcomes, rounds[-1] / MIB))
    # Still serves a normal client, with and without TLS.
    msg = make_message(subject="after-garbage")
    smtp_queue(gw.port, "alice@client.test", ["bob@example.test"], msg)
    smtp_queue(gw.port, "alice@client.test", ["bob@example.test"],
               make_message(subject="after-garbage-tls"), tls=True)
    for subj in (b"after-garbage", b"after-garbage-tls"):
        wait_until(lambda: any(b"Subject: " + subj + b"\r\n" in m.content
                               for m in sink.messages), timeout=10,
                   what="the normal client's message %s" % subj.decode())
    print("RSS MiB: start %.1f, rounds %s" % (rss0 / MIB, ["%.1f" % (x / MIB) for x in rounds]))
    assert max(rounds) < RSS_LIMIT, "RSS %.1f MiB after the garbage" % (max(rounds) / MIB)
    assert rounds[1] <= rounds[0] * 1.15 + 8 * MIB, (
        "RSS grows from round to round: %.1f -> %.1f MiB" % (rounds[0] / MIB, rounds[1] / MIB))
    # The sanitizer check of the log happens at teardown (the gateway fixture).
