"""test_checks_ratelimit.py - connections per interval per client address: the
connection over the limit gets 421 4.7.0 at once and is closed.

Run:  /usr/bin/python3 -m pytest tests/integration/test_checks_ratelimit.py
"""

import time

import pytest

from checks_env import GOOD, accepted, checks_gateway, connect, say_quit, wait_stats
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)
from conftest import RawClient

# every test on each state store: the gateway's own LMDB, and a shared Redis
pytestmark = pytest.mark.usefixtures("store_backend")

LIMIT = 3


def test_ratelimit_connections_per_interval(gateway, sink, dns_server):
    """connections = 3 per 60 s: three sessions are served, the fourth gets
    "421 4.7.0 Too many connections from your network, try later" instead of the
    greeting and is closed; another client is not affected."""
    ip = "127.0.0.17"
    gw = checks_gateway(gateway, ["ratelimit"],
                        "ratelimit {\n    interval = 60\n    connections = %d\n}\n" % LIMIT,
                        dns=dns_server.address)
    accepted(gw, ip)
    for _ in range(LIMIT - 1):
        c = connect(gw, ip)
        c.greeting.check(220)
        say_quit(c)

    t0 = time.monotonic()
    c = RawClient(gw.port, source=ip, greeting=False, timeout=5)
    try:
        r = c.read_reply()
        assert r.lines == ["421 4.7.0 Too many connections from your network, try later"], r
        c.expect_closed(2.0)
    finally:
        c.close()
    assert time.monotonic() - t0 < 1.5, "the 421 was not given at once"
    line = gw.wait_log(r"^.*event=reject sid=\S+ client=127\.0\.0\.17 stage=connect code=421 "
                       r"status=4\.7\.0 check=ratelimit .*$").group(0)
    assert "Too many connections" in line, line

    accepted(gw, GOOD)  # a different address has its own window
    sink.wait_for(2)
    # probe + 4 from .17 + 1 from GOOD
    wait_stats(gw, connections=6, accepted=2, stopped={"ratelimit": 1},
               verdicts={"ratelimit.tempfail": 1})
