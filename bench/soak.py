#!/usr/bin/python3
"""soak.py - mxgated under mixed traffic for a long time: does anything grow?

A fresh mxgated with the connection checks (access, dnsbl, greylist,
ratelimit) against a real DNS server (NSD, tests/integration/dnsserver.py)
and three next hops: an aiosmtpd sink that accepts (example.test and the
senders' domain, which gets the bounces), one that answers 451 to every
RCPT (fail.test) and a port where nothing listens (dead.test). Client
threads run, in proportion:

  good     a new message from 127.1.x.y: greylisted (451), retried after the
           delay, then accepted; 1 in 10 to fail.test, 1 in 20 to dead.test
  known    a message on a triplet that already passed: accepted at once
  refused  a client from 127.2.x.y, listed in the DNSBL: 554 at RCPT
  drop     a client that connects, says EHLO and hangs up

The greylist forgets first attempts after 60 s and passes after 180 s, the
expiry sweep runs every 30 s and undeliverable messages bounce after 5
minutes, so every store and queue has reached its steady state after the
warm-up. Every 10 s: mxgated's RSS, open descriptors (/proc/PID/fd), the
LMDB file, the spool, the queue, the longest event-loop turn (/metrics).
At the end, the verdict: after the warm-up (first quarter, at least 3 min)
the last quarter's peaks against the second quarter's (RSS within 10% or
4 MiB, descriptors within 20% or 30, store and spool within 10% or 1 MiB),
and the longest loop turn under 50 ms. Exit status 1 when a check fails.

    /usr/bin/python3 bench/soak.py                  # 30 minutes, build/mxgated
    /usr/bin/python3 bench/soak.py --minutes 5 --csv /tmp/soak.csv

Run as root or not; everything is on 127.0.0.0/8 in a temporary directory,
removed at exit with the daemon, NSD and the sinks.
"""
import argparse
import os
import random
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from dnsserver import DNSServer, free_port  # noqa: E402

ZONES = {
    # every 127.2.x.y is listed; 127.1.x.y are not (NXDOMAIN, a real answer)
    "bl.test": ["*.2.127 A 127.0.0.2", '*.2.127 TXT "listed by the soak"'],
    "127.in-addr.arpa": ["*.1 PTR client.good.test.", "*.2 PTR bad.good.test."],
    "good.test": ["client A 127.1.0.1", "bad A 127.2.0.1"],
}

GREY_DELAY = 3
LOOP_TURN_LIMIT = 0.050


class Sink:
    """An aiosmtpd server; fail=True answers 451 to every RCPT."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.count = 0
        self.port = free_port()
        self.ctl = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.fail:
            return "451 4.3.0 soak: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def config(d: Path, port: int, admin: int, dns: str, ok: Sink, fail: Sink, dead: int) -> Path:
    (d / "admin.token").write_text("soak-token-0123456789abcdef0123456789\n")
    text = """hostname = "mx.soak.test"
spool_dir = "%(d)s/spool"
state_dir = "%(d)s/state"
log_level = "info"
domains = {"example.test", "fail.test", "dead.test"}
listen mx { address = "127.0.0.1:%(port)d"
            checks = {"access", "dnsbl", "greylist", "ratelimit"} }
route "example.test" { to = "smtp:[127.0.0.1]:%(ok)d" }
route "sender.test" { to = "smtp:[127.0.0.1]:%(ok)d" }
route "fail.test" { to = "smtp:[127.0.0.1]:%(fail)d" }
route "dead.test" { to = "smtp:[127.0.0.1]:%(dead)d" }
limits { max_connections = 5000  max_connections_per_ip = 100 }
queue { retry_min = 10  retry_max = 60  lifetime = 300 }
delivery { starttls = false  connect_timeout = 5 }
dns { servers = {"%(dns)s"}  timeout = 2  tries = 1 }
dnsbl { threshold = 1  zone "bl.test" { weight = 1 } }
greylist { delay = %(grey)d  retry_window = 60  pass_ttl = 180  ipv4_prefix = 32 }
ratelimit { interval = 60  connections = 100000  messages = 100000  recipients = 100000 }
store { cleanup = 30 }
admin { address = "127.0.0.1:%(admin)d"  token_file = "%(d)s/admin.token" }
""" % {"d": d, "port": port, "admin": admin, "dns": dns, "ok": ok.port, "fail": fail.port,
       "dead": dead, "grey": GREY_DELAY}
    conf = d / "mxgate.conf"
    conf.write_text(text)
    return conf


def start_daemon(binary: str, conf: Path, port: int, log: Path) -> subprocess.Popen:
    with open(log, "ab") as f:
        p = subprocess.Popen([binary, "-f", "-c", str(conf)], stdin=subprocess.DEVNULL,
                             stdout=f, stderr=f, cwd=str(conf.parent))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if p.poll() is not None:
            sys.exit("mxgated exited at start:\n" + log.read_text()[-3000:])
        if "event=ready" in log.read_text(errors="replace"):
            return p
        time.sleep(0.1)
    p.kill()
    sys.exit("mxgated not ready on port %d" % port)


class Traffic:
    """The client threads and what they saw."""

    def __init__(self, port: int):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.retries = []  # (due, ip, sender, rcpt)
        self.known = []  # (ip, sender, rcpt) that passed
        self.seen = {}  # outcome -> count
        self.seq = 0

    def count(self, what: str) -> None:
        with self.lock:
            self.seen[what] = self.seen.get(what, 0) + 1

    def session(self, ip: str, sender: str, rcpt: str, helo: str = "client.good.test"):
        """One message: the code of the first refusal, or 250 when accepted."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30,
                          source_address=(ip, 0), local_hostname=helo) as s:
            s.ehlo()
            code, _ = s.mail(sender)
            if code != 250:
                return code
            code, _ = s.rcpt(rcpt)
            if code != 250:
                s.rset()
                return code
            code, _ = s.data(b"Subject: soak\r\n\r\n" + b"soak line\r\n" * 40)
            return code

    def new_message(self) -> None:
        with self.lock:
            self.seq += 1
            n = self.seq
        ip = "127.1.%d.%d" % (random.randint(0, 7), random.randint(1, 254))
        r = random.random()
        dom = "fail.test" if r < 0.1 else "dead.test" if r < 0.15 else "example.test"
        rcpt, sender = "u%d@%s" % (n % 5000, dom), "s%d@sender.test" % n
        code = self.session(ip, sender, rcpt)
        self.count("good.first.%d" % code)
        if code == 451:
            with self.lock:
                self.retries.append((time.monotonic() + GREY_DELAY + random.random() * 5,
                                     ip, sender, rcpt))

    def retry(self) -> bool:
        now = time.monotonic()
        with self.lock:
            due = [i for i, r in enumerate(self.retries) if r[0] <= now]
            if not due:
                return False
            _, ip, sender, rcpt = self.retries.pop(due[0])
        code = self.session(ip, sender, rcpt)
        self.count("good.retry.%d" % code)
        if code == 250:
            with self.lock:
                self.known.append((ip, sender, rcpt))
                del self.known[:-500]
        return True

    def known_message(self) -> None:
        with self.lock:
            if not self.known:
                return
            ip, sender, rcpt = random.choice(self.known)
        self.count("known.%d" % self.session(ip, sender, rcpt))

    def refused(self) -> None:
        ip = "127.2.%d.%d" % (random.randint(0, 7), random.randint(1, 254))
        self.count("refused.%d" % self.session(ip, "spam@spam.test", "u1@example.test",
                                                "bad.good.test"))

    def drop(self) -> None:
        ip = "127.1.%d.%d" % (random.randint(0, 7), random.randint(1, 254))
        with socket.create_connection(("127.0.0.1", self.port), timeout=30,
                                      source_address=(ip, 0)) as s:
            s.recv(512)
            s.sendall(b"EHLO drop.test\r\n")
            s.recv(4096)
        self.count("drop")

    def worker(self, pause: float) -> None:
        while not self.stop.is_set():
            try:
                if not self.retry():
                    r = random.random()
                    if r < 0.45:
                        self.new_message()
                    elif r < 0.7:
                        self.known_message()
                    elif r < 0.9:
                        self.refused()
                    else:
                        self.drop()
            except (OSError, smtplib.SMTPException) as e:
                self.count("error.%s" % type(e).__name__)
            self.stop.wait(pause)


def metric(admin: int, name: str) -> float:
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return -1.0


def du(path: Path) -> int:
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
            except OSError:
                pass
    return total


def sample(pid: int, d: Path, admin: int, t0: float) -> dict:
    rss = 0
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    mdb = d / "state" / "db" / "data.mdb"
    return {"t": time.monotonic() - t0, "rss_kib": rss, "fds": len(os.listdir("/proc/%d/fd" % pid)),
            "store_bytes": mdb.stat().st_size if mdb.exists() else 0,
            "spool_bytes": du(d / "spool"),
            "queue": int(metric(admin, "mxgate_queue_messages")),
            "sessions": int(metric(admin, "mxgate_sessions")),
            "turn_max_ms": metric(admin, "mxgate_loop_turn_max_seconds") * 1000,
            "turn_cpu_ms": metric(admin, "mxgate_loop_turn_max_cpu_seconds") * 1000}


def verdict(samples: list, minutes: float) -> list:
    """(name, ok, text) per check."""
    warm = max(len(samples) // 4, int(180 / 10))
    rest = samples[warm:]
    if len(rest) < 4:
        return [("duration", False, "too short to judge: %d samples after warm-up" % len(rest))]
    half = len(rest) // 2
    early, late = rest[:half], rest[half + half // 2:] or rest[-1:]
    out = []
    for key, rel, slack, unit, scale in (("rss_kib", 0.10, 4096, "MiB", 1024),
                                         ("fds", 0.20, 30, "", 1),
                                         ("store_bytes", 0.10, 1 << 20, "MiB", 1 << 20),
                                         ("spool_bytes", 0.10, 1 << 20, "MiB", 1 << 20)):
        a = max(s[key] for s in early)
        b = max(s[key] for s in late)
        ok = b <= max(a * (1 + rel), a + slack)
        out.append((key, ok, "peak %.1f%s after warm-up, %.1f%s in the last quarter"
                    % (a / scale, unit, b / scale, unit)))
    tm = max(s["turn_max_ms"] for s in samples)
    tc = max(s["turn_cpu_ms"] for s in samples)
    out.append(("loop turn", tm < LOOP_TURN_LIMIT * 1000,
                "longest %.1f ms (limit %.0f ms); the most CPU one turn used: %.1f ms; "
                "load average now %.1f" % (tm, LOOP_TURN_LIMIT * 1000, tc, os.getloadavg()[0])))
    return out


def run(a) -> int:
    d = Path(tempfile.mkdtemp(prefix="mxgate-soak-"))
    dns = DNSServer(ZONES).start()
    ok, fail = Sink(), Sink(fail=True)
    ok.ctl.start()
    fail.ctl.start()
    port, admin, dead = free_port(), free_port(), free_port()
    p = None
    traffic = Traffic(port)
    threads = []
    samples = []
    try:
        p = start_daemon(a.mxgated, config(d, port, admin, dns.address, ok, fail, dead), port,
                         d / "mxgated.log")
        for _ in range(a.clients):
            t = threading.Thread(target=traffic.worker, args=(a.pause,), daemon=True)
            t.start()
            threads.append(t)
        t0 = time.monotonic()
        end = t0 + a.minutes * 60
        csv = open(a.csv, "w") if a.csv else None
        cols = ["t", "rss_kib", "fds", "store_bytes", "spool_bytes", "queue", "sessions",
                "turn_max_ms", "turn_cpu_ms"]
        if csv:
            csv.write(",".join(cols + ["delivered"]) + "\n")
        print("%6s %9s %5s %10s %10s %6s %5s %8s %8s %9s" % (
            "t/s", "RSS/MiB", "fds", "store/KiB", "spool/KiB", "queue", "sess", "turn/ms",
            "cpu/ms", "delivered"), flush=True)
        while time.monotonic() < end:
            time.sleep(max(0.0, t0 + 10 * (len(samples) + 1) - time.monotonic()))
            if p.poll() is not None:
                print("mxgated exited with %s" % p.returncode)
                return 1
            s = sample(p.pid, d, admin, t0)
            samples.append(s)
            print("%6.0f %9.1f %5d %10.0f %10.0f %6d %5d %8.2f %8.2f %9d" % (
                s["t"], s["rss_kib"] / 1024, s["fds"], s["store_bytes"] / 1024,
                s["spool_bytes"] / 1024, s["queue"], s["sessions"], s["turn_max_ms"],
                s["turn_cpu_ms"], ok.count), flush=True)
            if csv:
                csv.write(",".join(str(s[c]) for c in cols) + ",%d\n" % ok.count)
                csv.flush()
        traffic.stop.set()
        for t in threads:
            t.join(60)
        print("\nclient outcomes (kind.code: sessions)")
        for k in sorted(traffic.seen):
            print("  %-24s %d" % (k, traffic.seen[k]))
        print("messages at the accepting sink: %d" % ok.count)
        failed = 0
        print("\nverdict (%.0f minutes, %d samples)" % (a.minutes, len(samples)))
        for name, good, text in verdict(samples, a.minutes):
            failed += not good
            print("  %-12s %s  %s" % (name, "PASS" if good else "FAIL", text))
        return 1 if failed else 0
    finally:
        traffic.stop.set()
        if p is not None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if a.keep:
                print("kept %s" % d)
        ok.ctl.stop()
        fail.ctl.stop()
        dns.stop()
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mxgated", default=os.environ.get("MXGATED", str(ROOT / "build/mxgated")))
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    ap.add_argument("--pause", type=float, default=0.2,
                    help="seconds each client waits between sessions (default 0.2)")
    ap.add_argument("--csv", help="write every sample to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    sys.exit(run(ap.parse_args()))


if __name__ == "__main__":
    main()
