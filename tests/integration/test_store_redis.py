"""test_store_redis.py - several gateways sharing one Redis (a private Debian
redis-server on a UNIX socket and a loopback port): a greylist pass on one is
honoured by the other, rate limits and harvest blocks are global, the
statistics are the fleet's, the bounce-flood hook runs once for the fleet;
Redis stopped (or hanging: the timeout) in the middle: each check does what
store { on_error } says, the outage is logged once and counted, the gateways
recover by themselves; AUTH with a password, over TCP; mxgated -n on the URIs.

The checks' own tests run on both stores too (store_backend in
test_checks_greylist.py, test_checks_ratelimit.py, test_recipients.py,
test_bounce_flood.py, test_quota.py).

Run:  /usr/bin/python3 -m pytest tests/integration/test_store_redis.py
"""

import json
import re
import signal
import subprocess
import threading
import time

import pytest

from checks_env import accepted, checks_gateway, connect, refused, say_quit, wait_stats
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)
from admin_env import admin_gateway
from conftest import MXGATED, RawClient, make_message, store_section, wait_until
from redisserver import RedisServer

DELAY = 2
GREYLIST = ("greylist {\n    delay = %d\n    retry_window = 3600\n    pass_ttl = 86400\n"
            "    only_suspicious = false\n    ipv4_prefix = 32\n}\n" % DELAY)


class Shared:
    """The store_backend of a test that always wants Redis."""
    name = "redis"

    def __init__(self, srv):
        self.redis = srv


@pytest.fixture
def redis(redis_server):
    if redis_server.proc is None:  # an earlier test failed with it stopped
        redis_server.start()
    redis_server.cmd("FLUSHALL")
    yield redis_server
    if redis_server.proc is None:
        redis_server.start()


def fleet(gateway, redis, checks, sections, dns, n=2, on_error="pass", uri=None, **kw):
    """n gateways (gw1.mx.example.test, gw2...) sharing redis, each running checks."""
    store = store_section(Shared(redis), on_error=on_error, uri=uri)
    return [checks_gateway(gateway, checks, sections, dns=dns, store=store,
                           hostname="gw%d.mx.example.test" % (i + 1), **kw) for i in range(n)]


def test_greylist_pass_on_one_honoured_by_the_other(gateway, sink, dns_server, redis):
    """The first attempt at mx1 is greylisted; the retry after the delay reaches mx2
    and passes, as it would have at mx1; the record is in Redis under the prefix."""
    gw1, gw2 = fleet(gateway, redis, ["greylist"], GREYLIST, dns_server.address)
    ip = "127.0.0.19"
    t0 = time.monotonic()
    refused(gw1, ip, 451, "4.7.1", "Greylisted")
    refused(gw2, ip, 451, "4.7.1", "Greylisted")  # mx2 knows it too: still too early
    keys = redis.keys("mxgate:gl:t:*")
    assert keys == ["mxgate:gl:t:127.0.0.19/32:alice@client.test:bob@example.test",
                    "mxgate:gl:t:127.0.0.19/32:alice@client.test:carol@example.test"], keys
    assert redis.cmd("GET", keys[0]).startswith(b"vfirst ")
    assert 0 < redis.cmd("TTL", keys[0]) <= 3600
    time.sleep(max(0.0, DELAY + 0.3 - (time.monotonic() - t0)))
    accepted(gw2, ip)
    accepted(gw1, ip)  # and the pass mx2 recorded counts at mx1
    assert redis.cmd("GET", keys[0]).startswith(b"vpass ")
    assert len(sink.wait_for(2)) == 2


def test_rate_limit_is_global(gateway, sink, dns_server, redis):
    """connections = 3 per minute for the fleet: two at mx1 and one at mx2 use it up,
    the next at either is refused."""
    gw1, gw2 = fleet(gateway, redis, ["ratelimit"],
                     "ratelimit {\n    interval = 60\n    connections = 3\n}\n",
                     dns_server.address)
    ip = "127.0.0.23"
    for gw in (gw1, gw1, gw2):
        c = connect(gw, ip)
        c.greeting.check(220)
        say_quit(c)
    for gw in (gw2, gw1):
        c = connect(gw, ip)
        try:
            c.greeting.check(421, "4.7.0")
        except AssertionError:
            # a refused connect may also be held to RCPT: accept either, never 250
            c.ehlo()
            c.cmd("MAIL FROM:<alice@client.test>")
            c.cmd("RCPT TO:<bob@example.test>").check(421)
        finally:
            c.close()
    keys = redis.keys("mxgate:rl:connections:127.0.0.23/32:*")
    assert len(keys) == 1 and redis.cmd("GET", keys[0]) == b"5", keys


def test_harvest_block_is_global(gateway, sink, dns_server, redis):
    """A client blocked as a harvester at mx1 is refused at mx2's greeting."""
    gw1, gw2 = fleet(gateway, redis, ["harvest"],
                     "harvest {\n    threshold = 2\n    window = 600\n    tarpit = 0\n"
                     "    block = 600\n}\n", dns_server.address)
    ip = "127.0.0.29"
    # what the recipients check counts for an unknown recipient, 4 of them: blocked
    redis.cmd("INCRBY", "mxgate:hv:n:%s" % ip, 4)
    c = connect(gw1, ip)
    c.greeting.check(220)
    c.ehlo()
    c.cmd("MAIL FROM:<alice@client.test>").check(250)
    c.cmd("RCPT TO:<bob@example.test>").check(421, "4.7.0")
    c.close()
    gw1.wait_log(r"event=harvest_block client=127\.0\.0\.29 count=4 threshold=2 block=600")
    wait_until(lambda: redis.cmd("EXISTS", "mxgate:hv:b:%s" % ip) == 1, what="the block in Redis")
    c = connect(gw2, ip)
    try:
        c.greeting.check(421, "4.7.0", "Too many unknown recipients")
    finally:
        c.close()
    gw2.wait_log(r"event=reject .*client=127\.0\.0\.29 stage=connect code=421 .*check=harvest")


def test_statistics_are_the_fleets(gateway, sink, dns_server, redis):
    """mxgatectl stats at either gateway counts the sessions of both."""
    gw1, gw2 = fleet(gateway, redis, ["greylist"], GREYLIST, dns_server.address)
    refused(gw1, "127.0.0.31", 451, "4.7.1", "Greylisted")
    refused(gw2, "127.0.0.32", 451, "4.7.1", "Greylisted")
    # each start-up probe, and one session at each
    for gw in (gw1, gw2):
        wait_stats(gw, connections=4, stopped={"greylist": 2}, verdicts={"greylist.tempfail": 4})
    out = gw2.ctl("stats").stdout
    assert re.search(r"^gateways sharing the store: 2 \(gw1\.mx\.example\.test, "
                     r"gw2\.mx\.example\.test\)$", out, re.M), out
    # each one's share: its probe and one session, refused
    for name in ("gw1", "gw2"):
        assert re.search(r"^  %s\.mx\.example\.test +2 +0 +1$" % name, out, re.M), out


@pytest.mark.parametrize("on_error", ["pass", "tempfail"])
def test_redis_stopped_and_back(gateway, sink, dns_server, redis, on_error, tmp_path):
    """Redis stops: greylisting gives no opinion (pass) or 451 4.3.0 (tempfail) at
    once, no session waits; store_down is logged once for many sessions and
    counted; Redis back: store_up, and greylisting works again by itself."""
    store = store_section(Shared(redis), on_error=on_error)
    gw1 = admin_gateway(gateway, tmp_path, ["greylist"], GREYLIST, dns=dns_server.address,
                        store=store, hostname="gw1.mx.example.test")
    gw2, = fleet(gateway, redis, ["greylist"], GREYLIST, dns_server.address, n=1,
                 on_error=on_error)
    refused(gw1, "127.0.0.41", 451, "4.7.1", "Greylisted")
    redis.stop()
    for i in range(4):
        t0 = time.monotonic()
        ip = "127.0.0.%d" % (42 + i)
        if on_error == "pass":
            accepted(gw1 if i % 2 else gw2, ip)
        else:
            refused(gw1 if i % 2 else gw2, ip, 451, "4.3.0",
                    "Temporary local problem, please try again later")
        assert time.monotonic() - t0 < 3.0, "a session waited for the dead store"
    for gw in (gw1, gw2):
        gw.wait_log(r"event=store_down backend=redis server=unix:\S+ error=")
        assert len(gw.log_lines(r"event=store_down")) == 1, gw.log_lines(r"event=store_(down|up)")
        assert not gw.log_lines(r"greylist_store_error"), "an outage logged per message"
    if on_error == "pass":
        assert len(sink.wait_for(4)) == 4  # accepted while Redis was down: delivered
    redis.start()
    for gw in (gw1, gw2):
        gw.wait_log(r"event=store_up backend=redis server=unix:\S+ down_seconds=\d+", timeout=8)
    refused(gw2, "127.0.0.50", 451, "4.7.1", "Greylisted")  # the check works again
    assert redis.keys("mxgate:gl:t:127.0.0.50*")
    # counted: the outage, and each decision taken without the store (gw1 had two
    # sessions of the four, of two recipients each when refused)
    status, _, body = gw1.admin.get("/metrics")
    assert status == 200
    text = body.decode()
    assert 'mxgate_verdicts_total{mechanism="store",verdict="down"} 1\n' in text, text
    assert 'mxgate_verdicts_total{mechanism="store",verdict="up"} 1\n' in text, text
    n = 2 if on_error == "pass" else 4
    assert 'mxgate_verdicts_total{mechanism="store_down",verdict="%s"} %d\n' % (
        on_error, n) in text, text


def test_password_over_tcp(gateway, sink, dns_server, tmp_path):
    """A Redis with requirepass, reached over TCP: AUTH works; a wrong password is an
    outage (logged once, with Redis's answer), and greylisting follows on_error."""
    srv = RedisServer(tmp_path / "redis-auth", password="s3cr=t", tcp=True).start()
    try:
        gw, = fleet(gateway, srv, ["greylist"], GREYLIST, dns_server.address, n=1,
                    uri=srv.tcp_uri)
        refused(gw, "127.0.0.61", 451, "4.7.1", "Greylisted")
        assert srv.keys("mxgate:gl:t:127.0.0.61*")
        assert "s3cr" not in gw.log_text()
        st = gw.ctl("status")  # the store is named, its password not shown
        assert st.returncode == 0, st.stderr
        assert "store:     redis://:***@127.0.0.1:%d/0 ok\n" % srv.port in st.stdout, st.stdout
        # mxgatectl's own connection authenticates too (counters arrive within a second)
        wait_until(lambda: "gateways sharing the store: 1 (gw1.mx.example.test)\n"
                   in gw.ctl("stats").stdout, what="the gateway in mxgatectl stats")
        bad = srv.tcp_uri.replace("s3cr=t", "wrong")
        gw2, = fleet(gateway, srv, ["greylist"], GREYLIST, dns_server.address, n=1,
                     on_error="tempfail", uri=bad)
        refused(gw2, "127.0.0.62", 451, "4.3.0")
        refused(gw2, "127.0.0.63", 451, "4.3.0")
        gw2.wait_log(r"event=store_down backend=redis server=127\.0\.0\.1:%d/0 "
                     r"error=\"?WRONGPASS" % srv.port)
        assert len(gw2.log_lines(r"event=store_down")) == 1
        assert "wrong" not in gw2.log_text()
    finally:
        srv.stop()


def test_config_check_accepts_the_documented_forms(tmp_path):
    """mxgated -n: each URI form, on_error, prefix, timeout; bad ones are refused."""
    base = ('hostname = "mx.example.test"\nspool_dir = "%s"\nstate_dir = "%s"\n'
            'domains = {"example.test"}\nlisten mx { address = "127.0.0.1:2525" }\n'
            'route "example.test" { to = "smtp:[127.0.0.1]:2526" }\n'
            % (tmp_path / "spool", tmp_path / "state"))
    good = ['uri = "redis://127.0.0.1:6379/0"  on_error = "pass"',
            'uri = "redis://:pw@[::1]:6380/3"  on_error = "tempfail"  prefix = "mx-a:"',
            'uri = "redis+unix:///run/redis/redis-server.sock?db=2"  timeout = 500',
            'uri = "redis://localhost"']
    bad = [('uri = "redis://127.0.0.1:99999/0"', "bad port"),
           ('uri = "redis+unix://relative.sock"', "absolute path"),
           ('uri = "redis://127.0.0.1/16"', "database"),
           ('uri = "redis://127.0.0.1"  on_error = "drop"', "on_error"),
           ('uri = "redis://127.0.0.1"  prefix = "a b"', "prefix")]
    conf = tmp_path / "mxgate.conf"
    for opts in good:
        conf.write_text(base + "store { %s }\n" % opts)
        r = subprocess.run([MXGATED, "-n", "-c", str(conf)], capture_output=True, text=True)
        assert r.returncode == 0, (opts, r.stderr)
    for opts, why in bad:
        conf.write_text(base + "store { %s }\n" % opts)
        r = subprocess.run([MXGATED, "-n", "-c", str(conf)], capture_output=True, text=True)
        assert r.returncode != 0 and why in r.stderr, (opts, r.stderr)


def send_bounces(port: int, n: int, first: int = 0) -> None:
    """n bounces (null sender) to example.test in one session."""
    with RawClient(port) as c:
        c.ehlo("mta.bouncer.test")
        for i in range(first, first + n):
            c.cmd("MAIL FROM:<>").check(250, "2.1.0")
            c.cmd("RCPT TO:<forged%d@example.test>" % i).check(250, "2.1.5")
            c.cmd("DATA").check(354)
            c.send(make_message("bounce %d" % i, sender="MAILER-DAEMON@bouncer.test",
                                to="forged%d@example.test" % i) + b".\r\n")
            c.read_reply().check(250, "2.0.0")
        c.cmd("QUIT").check(221)


def test_bounce_flood_of_the_fleet_runs_the_hook_once(gateway, sink, redis, tmp_path):
    """3 bounces at each of two gateways in one window: neither alone reaches start = 5,
    the fleet does. The leader (the lease in Redis) declares the flood and runs the
    hook once for both; the flood ends once too; the other gateway only counts."""
    calls = tmp_path / "hook.calls"
    hook = tmp_path / "hook.sh"
    hook.write_text('#!/bin/sh\necho "$1 $MXGATE_COUNT" >> "%s"\n' % calls)
    hook.chmod(0o755)
    section = ('bounce_flood {\n    interval = 2\n    start = 5\n    stop = 1\n    hold = 2\n'
               '    hook = "%s"\n}\n' % hook)
    store = store_section(Shared(redis))
    gws = [gateway(checks=["bounce_flood"], extra=section, store=store,
                   hostname="gw%d.mx.example.test" % i) for i in (1, 2)]
    gws[0].wait_log(r"event=bounce_flood_leader state=taken owner=\"gw1\.mx\.example\.test \d+\"")
    assert redis.cmd("GET", "mxgate:bf:leader").startswith(b"vgw1.mx.example.test ")

    wait_until(lambda: time.time() % 2 < 0.3, timeout=3, interval=0.01, what="a fresh window")
    send_bounces(gws[1].port, 3)
    send_bounces(gws[0].port, 3, first=3)
    gws[0].wait_log(r"event=bounce_flood state=start count=[56] interval=2$", timeout=4)
    gws[0].wait_log(r"event=hook check=bounce_flood arg=start pid=\d+ status=exited code=0")
    gws[0].wait_log(r"event=bounce_flood state=stop count=0 interval=2 duration=\d+$", timeout=8)
    gws[0].wait_log(r"event=hook check=bounce_flood arg=stop pid=\d+ status=exited code=0")
    time.sleep(2.5)  # a window more: nothing else happens at either
    lines = calls.read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["start", "stop"], lines
    assert not gws[1].log_lines(r"event=(bounce_flood|hook) ")
    assert len(gws[0].log_lines(r"event=bounce_flood state=")) == 2
    assert redis.cmd("GET", "mxgate:bf:state").startswith(b"vnormal ")


def test_redis_that_hangs_times_out(gateway, sink, dns_server, redis):
    """Redis stopped with SIGSTOP (connected, never answering): a session waits the
    store's timeout (1 s here) at most, then greylisting gives no opinion; the
    outage is logged once as a timeout; SIGCONT and the gateway is back by itself."""
    gw, = fleet(gateway, redis, ["greylist"], GREYLIST, dns_server.address, n=1)
    refused(gw, "127.0.0.71", 451, "4.7.1", "Greylisted")
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        accepted(gw, "127.0.0.72")
        took = time.monotonic() - t0
        assert 0.8 < took < 3.0, "the session took %.2f s with a 1 s store timeout" % took
        gw.wait_log(r"event=store_down backend=redis server=unix:\S+ error=timeout")
        for ip in ("127.0.0.73", "127.0.0.74"):  # while it hangs: reconnections fail fast
            t0 = time.monotonic()
            accepted(gw, ip)
            assert time.monotonic() - t0 < 3.0
        assert len(gw.log_lines(r"event=store_down")) == 1
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    gw.wait_log(r"event=store_up backend=redis", timeout=8)
    refused(gw, "127.0.0.75", 451, "4.7.1", "Greylisted")
    assert len(sink.wait_for(3)) == 3


def test_listing_does_not_hold_the_loop(gateway, sink, dns_server, redis, tmp_path):
    """/api/greylist on a Redis of a million other keys: its SCANs (about 1.5 s under
    ASan) run on the admin listener's own thread, so a client is greeted while they
    run; then the listing has the gateway's triplets, at most ?limit= of them, and
    says it was cut."""
    store = store_section(Shared(redis), on_error="pass")
    gw = admin_gateway(gateway, tmp_path, ["greylist"], GREYLIST, dns=dns_server.address,
                       store=store, hostname="gw1.mx.example.test")
    refused(gw, "127.0.0.51", 451, "4.7.1", "Greylisted")  # two triplets
    for k in range(2):  # in parts: each within the helper's socket timeout
        redis.cmd("EVAL", "for i = ARGV[1], ARGV[1] + 499999 do "
                  "redis.call('SET', 'other:' .. i, 'x') end", "0", str(k * 500000))
    done = {}

    def listing():
        done["reply"] = gw.admin.json("/api/greylist?limit=1")
        done["at"] = time.monotonic()

    t = threading.Thread(target=listing)
    t.start()
    time.sleep(0.05)  # the request is in
    c = RawClient(gw.port, source="127.0.0.52")
    c.greeting.check(220)
    greeted = time.monotonic()
    c.close()
    t.join(30)
    assert "at" in done, "no listing"
    assert greeted < done["at"], "the greeting waited for the listing"
    grey = done["reply"]
    assert len(grey["triplets"]) == 1 and grey["truncated"] is True, grey
    assert grey["triplets"][0]["network"] == "127.0.0.51/32", grey
    full = gw.admin.json("/api/greylist")
    assert [t["recipient"] for t in full["triplets"]] == [
        "bob@example.test", "carol@example.test"], full
    assert full["truncated"] is False and full["triplets"][0] == grey["triplets"][0], full
    # the statistics come the same way (a SCAN of their prefix on the thread)
    stats = gw.admin.json("/api/stats?from=today&to=today")
    assert stats == json.loads(gw.ctl("--json", "stats", "today", "today").stdout)
    assert [m["stopped"] for m in stats["mechanisms"] if m["name"] == "greylist"] == [1], stats
    assert gw.admin.json("/api/stats/series?from=today&to=today")["hours"], "no hour"
