"""Flow control per MX host (mx_host sections): many recipient domains whose MX
records name one server share that server's limits.

NSD serves mxh.test: a.mxh.test, b.mxh.test and c.mxh.test all have the MX
shared.mxh.test (an aiosmtpd sink on 127.0.0.81 that counts its sessions); other
domains have their own servers on 127.0.0.82-88. Every sink listens on one port,
given to the route as "mx:PORT".
"""

import asyncio
import json
import re
import subprocess
import threading
import time

import dns.resolver as dns_resolver
import pytest

from admin_env import admin_gateway
from checks_env import dns_section
from conftest import MXGATED, free_port, make_message, smtp_queue, wait_until
from dnsserver import DNSServer
from sink import Sink

ZONES = {
    "mxh.test": [
        # three domains, one server
        "a MX 10 shared.mxh.test.",
        "b MX 10 shared.mxh.test.",
        "c MX 10 shared.mxh.test.",
        "shared A 127.0.0.81",
        # eight more domains on it
        *["d%d MX 10 shared.mxh.test." % i for i in range(1, 9)],
        # a domain with its own server (no limit)
        "fastd MX 10 fast.mxh.test.",
        "fast A 127.0.0.82",
        # two domains on a rate-limited server
        "ra MX 10 rated.mxh.test.",
        "rb MX 10 rated.mxh.test.",
        "rated A 127.0.0.83",
        # two MX of equal preference, the first one limited
        "pair MX 10 p1.mxh.test.",
        "pair MX 10 p2.mxh.test.",
        "p1 A 127.0.0.84",
        "p2 A 127.0.0.85",
        # a limited primary and a backup of lower preference
        "prim MX 10 main.mxh.test.",
        "prim MX 20 backup.mxh.test.",
        "main A 127.0.0.86",
        "backup A 127.0.0.87",
        # a server that answers 421
        "t MX 10 throttle.mxh.test.",
        "throttle A 127.0.0.88",
        # one server with two addresses
        "twin MX 10 twin.mxh.test.",
        "twin A 127.0.0.89",
        "twin A 127.0.0.90",
    ],
}


@pytest.fixture(scope="module")
def dns():
    # round-robin: twin.mxh.test's two addresses come in turn, as a server's often do
    srv = DNSServer(ZONES, round_robin=True).start()
    yield srv
    srv.stop()


class CountingSink(Sink):
    """A sink that counts its SMTP sessions: open now, the most at once, when each
    began; and when each DATA began, which takes `delay` seconds (without blocking the
    sink's other sessions)."""

    def __init__(self, *a, delay=0.0, **kw):
        super().__init__(*a, **kw)
        self.delay = delay
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.open = 0
            self.max_open = 0
            self.starts = []
            self.datas = []

    def _opened(self):
        with self.lock:
            self.open += 1
            self.max_open = max(self.max_open, self.open)
            self.starts.append(time.monotonic())

    def _closed(self):
        with self.lock:
            self.open -= 1

    def _controller_new(self):
        ctl = super()._controller_new()
        sink, make, handler = self, ctl.factory, ctl.handler
        data = handler.handle_DATA

        async def slow_data(server, session, envelope):
            with sink.lock:
                sink.datas.append(time.monotonic())
            if sink.delay:
                await asyncio.sleep(sink.delay)
            return await data(server, session, envelope)

        handler.handle_DATA = slow_data

        def factory():
            srv = make()
            made, lost = srv.connection_made, srv.connection_lost

            def on_made(transport):
                sink._opened()
                made(transport)

            def on_lost(exc):
                sink._closed()
                lost(exc)

            srv.connection_made, srv.connection_lost = on_made, on_lost
            return srv

        ctl.factory = factory
        return ctl

    def start(self):
        super().start()
        time.sleep(0.1)
        self.reset()  # the controller's own readiness connection is no session of ours
        return self


@pytest.fixture
def mxnet():
    """Counting sinks on 127.0.0.81-90, all on one port."""
    port = free_port()
    sinks = {ip: CountingSink(port, host="127.0.0.%d" % ip, delay=0.05).start()
             for ip in range(81, 91)}
    yield port, sinks
    for s in sinks.values():
        s.stop()


def host_gateway(gateway, dns, port, sink_port, extra="", queue=None):
    return gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % sink_port,
                           "*": "mx:%d" % port}, queue=queue or {},
                   relay_networks=["127.0.0.0/8"], extra=dns_section(dns.address) + extra)


def no_waiting_traces(gw, sink):
    """Waiting at a host's limit is no failed attempt: no deferral, no bounce."""
    assert gw.log_lines(r"event=deferred ") == []
    assert gw.log_lines(r"event=bounced ") == []
    assert sink.messages == []  # the internal server got no DSN for alice


def test_shared_host_concurrency(gateway, sink, dns, mxnet):
    """concurrency = 1 on shared.mxh.test: 36 messages to its three domains (each
    domain alone would take 20 at once, and per_connection = 3 makes new sessions)
    arrive one session at a time, every one of them, with no deferral and no bounce;
    mail to another server is not held up."""
    port, sinks = mxnet
    shared = sinks[81]
    # slower than the test queues (up to 0.15 s a message under ASan on a loaded
    # machine): the shared host still has mail when fastd's message comes
    shared.delay = 0.3
    gw = host_gateway(gateway, dns, port, sink.port, extra=(
        'mx_host "Shared.MXH.test." { concurrency = 1 }\n'
        'destination "*" { per_connection = 3 }\n'))
    want = set()
    for i in range(12):
        for d in ("a", "b", "c"):
            rcpt = "u%d@%s.mxh.test" % (i, d)
            smtp_queue(gw.port, "alice@example.test", [rcpt], make_message(rcpt))
            want.add(rcpt)
    smtp_queue(gw.port, "alice@example.test", ["x@fastd.mxh.test"], make_message("fast"))
    sinks[82].wait_for(1, timeout=10)
    assert len(shared.messages) < 36  # the other server did not wait for the shared one
    got = shared.wait_for(36, timeout=60)
    assert {r for m in got for r in m.rcpt_tos} == want
    assert len(got) == 36
    assert shared.max_open == 1, shared.max_open
    assert len(shared.starts) >= 12  # per_connection = 3: sessions one after another
    gw.wait_log(r"event=delivered .*rcpt=<u11@c\.mxh\.test>", timeout=5)
    no_waiting_traces(gw, sink)


def test_busy_host_holds_no_delivery_slots(gateway, sink, dns, mxnet):
    """max_deliveries = 3, and eight domains whose one MX host takes one message at a
    time, 2 s each: their mail waits in the queue without holding its delivery slots,
    so a message to another server arrives while the host is still on its first one;
    then all eight arrive, one session at a time, with no deferral and no bounce."""
    port, sinks = mxnet
    shared, fast = sinks[81], sinks[82]
    shared.delay = 2.0
    gw = host_gateway(gateway, dns, port, sink.port, queue={"max_deliveries": 3},
                      extra='mx_host "shared.mxh.test" { concurrency = 1 }\n')
    for i in range(1, 9):
        smtp_queue(gw.port, "alice@example.test", ["u@d%d.mxh.test" % i],
                   make_message("d%d" % i))
    wait_until(lambda: shared.datas, timeout=10, what="the host's first message")
    smtp_queue(gw.port, "alice@example.test", ["x@fastd.mxh.test"], make_message("fast"))
    fast.wait_for(1, timeout=10)
    # before the fix, two legs waiting for the host held two of the three slots, and
    # the third was the host's own delivery: the message to fastd waited for it
    assert shared.messages == [], "fastd waited for the busy host's delivery"
    got = shared.wait_for(8, timeout=60)
    assert sorted(r for m in got for r in m.rcpt_tos) == sorted(
        "u@d%d.mxh.test" % i for i in range(1, 9))
    assert shared.max_open == 1, shared.max_open
    no_waiting_traces(gw, sink)


def test_host_with_two_addresses_keeps_one_connection(gateway, sink, dns, mxnet):
    """twin.mxh.test has two addresses and concurrency = 1: one message after another,
    each goes over the connection kept open after the first, whichever address the
    next delivery would have tried first; the server never sees a second session."""
    port, sinks = mxnet
    a, b = sinks[89], sinks[90]
    gw = host_gateway(gateway, dns, port, sink.port,
                      extra='mx_host "twin.mxh.test" { concurrency = 1 }\n')
    res = dns_resolver.Resolver(configure=False)
    res.nameservers, res.port = ["127.0.0.1"], dns.resolver_port
    firsts = set()
    for i in range(8):
        smtp_queue(gw.port, "alice@example.test", ["t%d@twin.mxh.test" % i],
                   make_message("t%d" % i))
        wait_until(lambda: len(a.messages) + len(b.messages) == i + 1, timeout=10)
        gw.wait_log(r"event=delivered .*rcpt=<t%d@twin\.mxh\.test>" % i, timeout=5)
        # NSD turns the order at every answer, and a delivery asks it a fixed number of
        # times: one more question makes the next delivery get the other order
        firsts.add(res.resolve("twin.mxh.test", "A")[0].address)
    assert firsts == {"127.0.0.89", "127.0.0.90"}  # both orders were served
    assert len(a.starts) + len(b.starts) == 1, (a.starts, b.starts)
    assert a.max_open + b.max_open == 1
    no_waiting_traces(gw, sink)


def test_shared_host_rate(gateway, sink, dns, mxnet):
    """rate = "3/2" on rated.mxh.test counts messages, over new and reused connections
    alike: no 2-second window sees more than 3 messages arrive at the server, and all 9
    to its two domains arrive; fast.mxh.test meanwhile takes its 9 at full speed."""
    port, sinks = mxnet
    rated, fast = sinks[83], sinks[82]
    gw = host_gateway(gateway, dns, port, sink.port,
                      extra='mx_host "rated.mxh.test" { concurrency = 5  rate = "3/2" }\n')
    for i in range(9):
        d = "ra" if i % 2 else "rb"
        smtp_queue(gw.port, "alice@example.test", ["r%d@%s.mxh.test" % (i, d)],
                   make_message("r%d" % i))
        smtp_queue(gw.port, "alice@example.test", ["f%d@fastd.mxh.test" % i],
                   make_message("f%d" % i))
    fast.wait_for(9, timeout=15)
    assert len(rated.messages) < 9  # 9 messages at 3 per 2 s take at least 4 s
    rated.wait_for(9, timeout=30)
    datas = sorted(rated.datas)
    assert len(datas) == 9, datas
    for i in range(len(datas) - 3):
        # 4 messages within one window would break the rate (0.5 s for the sink's own
        # delays on a loaded machine; without the limit they come as they are queued)
        assert datas[i + 3] - datas[i] >= 1.5, datas
    assert len(rated.starts) < 9  # connections were reused, and still counted
    no_waiting_traces(gw, sink)


def test_host_per_connection(gateway, sink, dns, mxnet):
    """per_connection = 2 on shared.mxh.test, stricter than the domains' 5: six
    messages to its three domains go over three sessions of two messages each."""
    port, sinks = mxnet
    shared = sinks[81]
    gw = host_gateway(gateway, dns, port, sink.port, extra=(
        'mx_host "shared.mxh.test" { concurrency = 1  per_connection = 2 }\n'
        'destination "*" { per_connection = 5 }\n'))
    for i in range(6):
        rcpt = "p%d@%s.mxh.test" % (i, "abc"[i % 3])
        smtp_queue(gw.port, "alice@example.test", [rcpt], make_message(rcpt))
    got = shared.wait_for(6, timeout=20)
    peers = [m.peer for m in got]
    assert len(set(peers)) == 3, peers
    assert all(peers.count(p) == 2 for p in set(peers)), peers
    assert len(shared.starts) == 3 and shared.max_open == 1, shared.starts
    no_waiting_traces(gw, sink)


def test_busy_host_yields_to_equal_preference(gateway, sink, dns, mxnet):
    """p1 and p2 are pair.mxh.test's MX of equal preference; p1 is limited to one
    session and slow: the messages it cannot take at once go to p2, none waits."""
    port, sinks = mxnet
    p1, p2 = sinks[84], sinks[85]
    gw = host_gateway(gateway, dns, port, sink.port,
                      extra='mx_host "p1.mxh.test" { concurrency = 1 }\n')
    # a first message: until one of its servers answered, a domain gets one at a time
    smtp_queue(gw.port, "alice@example.test", ["first@pair.mxh.test"], make_message("first"))
    wait_until(lambda: len(p1.messages) + len(p2.messages) == 1, timeout=10)
    gw.wait_log(r"event=delivered .*rcpt=<first@pair\.mxh\.test>", timeout=5)
    p1.delay = 3.0
    base = len(p2.messages)
    for i in range(6):
        smtp_queue(gw.port, "alice@example.test", ["u%d@pair.mxh.test" % i],
                   make_message("p%d" % i))
    # p1 has one of them for 3 s at most; p2 all the others at once
    wait_until(lambda: len(p2.messages) >= base + 5, timeout=2.5, what="p2 takes what p1 cannot")
    assert p1.max_open <= 1, p1.max_open
    wait_until(lambda: len(p1.messages) + len(p2.messages) == 7, timeout=15)
    assert p1.max_open <= 1
    no_waiting_traces(gw, sink)


def test_busy_host_no_backup(gateway, sink, dns, mxnet):
    """main.mxh.test (MX 10, one session, slow) is busy: the mail waits for it rather
    than going to the backup MX (preference 20), which gets nothing."""
    port, sinks = mxnet
    main, backup = sinks[86], sinks[87]
    main.delay = 0.5
    gw = host_gateway(gateway, dns, port, sink.port,
                      extra='mx_host "*.mxh.test" { concurrency = 1 }\n')
    for i in range(4):
        smtp_queue(gw.port, "alice@example.test", ["u%d@prim.mxh.test" % i],
                   make_message("m%d" % i))
    main.wait_for(4, timeout=20)
    assert backup.messages == []
    assert main.max_open == 1
    no_waiting_traces(gw, sink)


def test_listing_and_reload(gateway, sink, dns, mxnet, tmp_path):
    """mxgatectl queue destinations and /api/destinations list the MX host with its
    limits and state beside the domains; a reload applies a new limit to it while its
    state stays."""
    port, sinks = mxnet
    gw = admin_gateway(gateway, tmp_path, routes={
        "example.test": "smtp:[127.0.0.1]:%d" % sink.port, "*": "mx:%d" % port},
        relay_networks=["127.0.0.0/8"],
        extra=dns_section(dns.address)
        + 'mx_host "*.mxh.test" { concurrency = 2  rate = "50/60"  per_connection = 7 }\n')
    for d in ("a", "b"):
        smtp_queue(gw.port, "alice@example.test", ["u@%s.mxh.test" % d], make_message(d))
    sinks[81].wait_for(2, timeout=10)
    r = gw.ctl("queue", "destinations")
    assert r.returncode == 0, r
    assert re.search(r"^mx_host shared\.mxh\.test  ready  active=0/2 \(limit 2\)  rate=50/60s  "
                     r"per_connection=7$", r.stdout, re.M), r.stdout
    assert re.search(r"^a\.mxh\.test  ready  active=0/\d+ ", r.stdout, re.M), r.stdout
    j = json.loads(gw.ctl("--json", "queue", "destinations").stdout)["destinations"]
    host = [x for x in j if x["kind"] == "mx_host"]
    assert [(x["destination"], x["state"], x["active"], x["window"], x["concurrency"],
             x["rate"], x["per_connection"], x["backoff_until"]) for x in host] == [
        ("shared.mxh.test", "ready", 0, 2, 2, "50/60", 7, None)], j
    assert {x["destination"] for x in j if x["kind"] == "domain"} == {"a.mxh.test", "b.mxh.test"}
    assert gw.admin.json("/api/destinations") == j
    gw.config.write_text(gw.config.read_text().replace("concurrency = 2", "concurrency = 3"))
    assert gw.ctl("reload").returncode == 0
    gw.wait_log(r"event=reload status=done", timeout=5)
    j = json.loads(gw.ctl("--json", "queue", "destinations").stdout)["destinations"]
    host = [x for x in j if x["kind"] == "mx_host"][0]
    assert (host["destination"], host["concurrency"], host["window"]) == (
        "shared.mxh.test", 3, 2), host  # the window grows back by feedback, not by reload


def test_host_throttle_feedback(gateway, sink, dns, mxnet):
    """A 421 "too many connections" from the host halves its window and backs it off
    (the same feedback as a destination's): the listing shows it."""
    port, sinks = mxnet
    sinks[88].set_rule("u@t.mxh.test", "421 4.7.0 Too many connections, try later")
    gw = host_gateway(gateway, dns, port, sink.port,
                      extra='mx_host "throttle.mxh.test" { concurrency = 4 }\n')
    qid = smtp_queue(gw.port, "alice@example.test", ["u@t.mxh.test"], make_message("t"))
    gw.wait_log(r"event=deferred id=%s .*Too many connections" % qid, timeout=10)
    r = gw.ctl("queue", "destinations")
    assert re.search(r"^mx_host throttle\.mxh\.test  backoff  active=0/2 \(limit 4\)  "
                     r"backoff_until=\d{4}-\S+Z$", r.stdout, re.M), r.stdout
    j = json.loads(gw.ctl("--json", "queue", "destinations").stdout)["destinations"]
    host = [x for x in j if x["kind"] == "mx_host"][0]
    assert (host["state"], host["window"], host["concurrency"]) == ("backoff", 2, 4), host
    assert host["backoff_until"]


def test_config_check(gateway, sink, tmp_path):
    """mxgated -n refuses an mx_host title that is no host name, and a host twice."""
    gw = gateway(start=False, extra='mx_host "mx*.bad.test" { concurrency = 1 }\n'
                                    'mx_host "ok.test" { concurrency = 1 }\n'
                                    'mx_host "OK.test." { concurrency = 2 }\n')
    r = subprocess.run([MXGATED, "-n", "-c", str(gw.config)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0
    assert re.search(r':\d+: mx_host "mx\*\.bad\.test": not a host name', r.stderr), r.stderr
    assert re.search(r':\d+: mx_host "OK\.test\.": the same host as an earlier section',
                     r.stderr), r.stderr
