"""The scheduler per destination: mail waits by destination, a slow or refusing
destination holds no delivery slot, per_connection limits the messages sent over
one reused connection, and a next hop that does not answer is marked unreachable
once, probed by one delivery at a time and released when it answers.

Destinations are MX domains served by NSD (their own A record: implicit MX) and
aiosmtpd sinks on 127.0.0.31-33, or a relay route whose port accepts and closes.
"""

import json
import re
import socket
import threading
import time

import pytest

from admin_env import admin_gateway
from checks_env import dns_section
from conftest import free_port, make_message, smtp_queue, wait_until
from dnsserver import DNSServer
from sink import Sink

ZONES = {"dest.test": ["stall A 127.0.0.31", "fast A 127.0.0.32", "reuse A 127.0.0.33",
                       "busy A 127.0.0.34"]}


@pytest.fixture(scope="module")
def dns():
    srv = DNSServer(ZONES).start()
    yield srv
    srv.stop()


class StallSink(Sink):
    """Every RCPT waits `stall` seconds (the sink's loop with it: a server that hangs)."""

    def __init__(self, *a, stall=3.0, **kw):
        super().__init__(*a, **kw)
        self.stall = stall

    def rule_for(self, address):
        time.sleep(self.stall)
        return super().rule_for(address)


class ThrottleSink(Sink):
    """Answers every RCPT with 421 "too many connections" while `throttle` is set."""

    throttle = True

    def rule_for(self, address):
        if self.throttle:
            return "421 4.7.0 Too many connections, try later"
        return super().rule_for(address)


class Refuser:
    """A port that accepts each connection and closes it at once (no greeting),
    counting the connections."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.count = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            c.close()

    def stop(self):
        self.running = False
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(2)


def dest_gateway(gateway, dns, port, sink, queue=None, extra=""):
    return gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % sink.port,
                           "*": "mx:%d" % port},
                   relay_networks=["127.0.0.0/8"], queue=queue or {},
                   extra=dns_section(dns.address) + extra)


def test_stalled_destination_does_not_delay_others(gateway, sink, dns):
    """Two delivery slots; stall.dest.test (concurrency 1) hangs 3 s per message and
    has six waiting: mail to fast.dest.test arrives while the first stalled delivery
    is still hanging, because a destination at its limit holds no slot."""
    port = free_port()
    stall = StallSink(port, host="127.0.0.31", stall=3.0).start()
    fast = Sink(port, host="127.0.0.32").start()
    try:
        gw = dest_gateway(gateway, dns, port, sink, queue={"max_deliveries": 2},
                          extra='destination "stall.dest.test" { concurrency = 1 }\n')
        for i in range(6):
            smtp_queue(gw.port, "alice@example.test", ["s%d@stall.dest.test" % i],
                       make_message("stall%d" % i))
        time.sleep(0.3)  # the stalled destination's mail is due and waiting first
        t0 = time.monotonic()
        smtp_queue(gw.port, "alice@example.test", ["f@fast.dest.test"], make_message("fast"))
        fast.wait_for(1, timeout=2.5)
        assert time.monotonic() - t0 < 2.5
        assert stall.messages == []  # the first stalled delivery still hangs
        r = gw.ctl("--json", "queue", "destinations")
        st = {d["destination"]: d for d in json.loads(r.stdout)["destinations"]}
        assert st["stall.dest.test"]["active"] == 1, st
        assert st["stall.dest.test"]["messages"] == 6, st
    finally:
        stall.stop()
        fast.stop()


def test_per_connection_limits_reuse(gateway, sink, dns):
    """per_connection = 2: six messages to one destination go over three connections
    (each reused once); without it they share one."""
    port = free_port()
    reuse = Sink(port, host="127.0.0.33").start()
    other = Sink(port, host="127.0.0.32").start()
    try:
        gw = dest_gateway(gateway, dns, port, sink, extra=(
            'destination "reuse.dest.test" { concurrency = 1  per_connection = 2 }\n'
            'destination "fast.dest.test" { concurrency = 1 }\n'))
        for i in range(6):
            smtp_queue(gw.port, "alice@example.test", ["r%d@reuse.dest.test" % i],
                       make_message("r%d" % i))
            smtp_queue(gw.port, "alice@example.test", ["o%d@fast.dest.test" % i],
                       make_message("o%d" % i))
        got = reuse.wait_for(6, timeout=15)
        peers = [m.peer for m in got]
        assert len(set(peers)) == 3, peers
        for p in set(peers):
            assert peers.count(p) == 2, peers
        assert len({m.peer for m in other.wait_for(6, timeout=15)}) == 1
    finally:
        reuse.stop()
        other.stop()


def test_listing_shows_backoff(gateway, sink, dns, tmp_path):
    """A destination that answered 421 backs off: mxgatectl queue list shows its mail
    under it with the state, the concurrency and when the back-off ends; the API the
    same."""
    port = free_port()
    busy = ThrottleSink(port, host="127.0.0.34").start()
    try:
        gw = admin_gateway(gateway, tmp_path, routes={
            "example.test": "smtp:[127.0.0.1]:%d" % sink.port, "*": "mx:%d" % port},
            relay_networks=["127.0.0.0/8"], queue={"retry_min": 1},
            extra=dns_section(dns.address)
            + 'destination "busy.dest.test" { concurrency = 3  rate = "5/60" }\n')
        ids = [smtp_queue(gw.port, "alice@example.test", ["b%d@busy.dest.test" % i],
                          make_message("b%d" % i)) for i in range(2)]
        gw.wait_log(r"event=deferred id=%s .*Too many connections" % ids[0], timeout=10)
        r = gw.ctl("queue", "list")
        assert r.returncode == 0, r
        m = re.search(r"^destination busy\.dest\.test  backoff  active=0/1 \(limit 3\)  "
                      r"rate=5/60s  waiting=2 \(.*\)  backoff_until=\d{4}-\S+Z$",
                      r.stdout, re.M)
        assert m, r.stdout
        after = r.stdout[m.end():]
        assert re.findall(r"^([0-9A-F]{16})  ", after, re.M) == sorted(ids), r.stdout
        j = json.loads(gw.ctl("--json", "queue", "list").stdout)
        d = [x for x in j["destinations"] if x["destination"] == "busy.dest.test"][0]
        assert (d["state"], d["kind"], d["window"], d["concurrency"], d["rate"],
                d["messages"]) == ("backoff", "domain", 1, 3, "5/60", 2), d
        assert d["backoff_until"] and d["unreachable_since"] is None
        def fixed(x):  # without what moves while the test looks (ready/deferred/delivering)
            return {k: v for k, v in x.items() if k not in ("ready", "deferred", "delivering")}
        assert [fixed(x) for x in gw.admin.json("/api/destinations")] == [fixed(d)]
        assert [fixed(x) for x in gw.admin.json("/api/queue")["destinations"]] == [fixed(d)]
        # a reload applies new limits; the back-off (the destination's state) stays
        gw.config.write_text(gw.config.read_text().replace("concurrency = 3", "concurrency = 4"))
        assert gw.ctl("reload").returncode == 0
        gw.wait_log(r"event=reload status=done", timeout=5)
        d2 = json.loads(gw.ctl("--json", "queue", "destinations").stdout)["destinations"][0]
        assert (d2["concurrency"], d2["state"], d2["backoff_until"]) == (4, "backoff",
                                                                         d["backoff_until"]), d2
    finally:
        busy.stop()


def test_dead_next_hop(gateway, sink):
    """The internal server accepts and closes (no greeting): one state-change line,
    mail waits without a connection each (connections counted at the port), listed
    as unreachable; when it answers, every message arrives exactly once."""
    port = free_port()
    dead = Refuser(port)
    n = 20
    try:
        gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % port},
                     queue={"retry_min": 1, "retry_max": 2})
        ids = [smtp_queue(gw.port, "alice@example.test", ["u%d@example.test" % i],
                          make_message("m%d" % i)) for i in range(n)]
        gw.wait_log(r"event=destination dest=\S+ state=unreachable", timeout=10)
        time.sleep(3)  # probes at 1 s, then every 2 s: at most three more connections
        count = dead.count
        assert 1 <= count <= 5, count  # not one per message
        assert len(gw.log_lines(r"event=destination .*state=unreachable")) == 1
        # a deferred line per connection (the first attempt and the probes), none else;
        # a line follows its connection once the retry time is written, so wait for
        # the lines of the connections counted (a loaded machine writes late)
        def deferred():
            return len(gw.log_lines(r"event=deferred "))
        wait_until(lambda: deferred() >= count, timeout=10, what="a deferred line each")
        assert deferred() <= dead.count, (count, deferred(), dead.count)
        r = gw.ctl("queue", "list")
        assert re.search(r"^destination smtp:\[127\.0\.0\.1\]:%d  unreachable  active=\d  "
                         r"waiting=%d \(.*parked \d+.*\)  unreachable_since=\S+Z  "
                         r"next_probe=\S+Z$" % (port, n), r.stdout, re.M), r.stdout
    finally:
        dead.stop()
    back = Sink(port).start()
    try:
        got = back.wait_for(n, timeout=10)
        gw.wait_log(r"event=destination dest=\S+ state=reachable released=\d+", timeout=5)
        time.sleep(0.5)
        subjects = sorted(re.search(rb"Subject: (\S+)", m.content).group(1) for m in back.messages)
        assert subjects == sorted(b"m%d" % i for i in range(n))
        assert sorted(ids) == sorted(set(ids))
    finally:
        back.stop()
