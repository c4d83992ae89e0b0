"""test_checks_greylist.py - greylisting with a 2 s delay, alone and combined with
S25R (only S25R-flagged clients are greylisted), against real DNS.

Each test runs on both state stores (LMDB, and a shared Redis: conftest.store_backend).

Run:  /usr/bin/python3 -m pytest tests/integration/test_checks_greylist.py
"""

import re
import time

import pytest

from checks_env import (GOOD, GOOD_NAME, S25R_RULE_CLIENTS, accepted, checks_gateway,
                        received_from, refused, reject_line, to_rcpt, wait_stats, say_quit)
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)

# every test on each state store: the gateway's own LMDB, and a shared Redis
pytestmark = pytest.mark.usefixtures("store_backend")

DELAY = 2
GREYLISTED = r"Greylisted, please try again in (\d+) seconds?"


def greylisted(gw, ip, **kw):
    """A session refused 451 4.7.1 at RCPT by greylisting; returns the announced wait."""
    r = refused(gw, ip, 451, "4.7.1", "Greylisted", **kw)
    m = re.search(GREYLISTED, r.text)
    assert m, "greylist text %r does not match %r" % (r.text, GREYLISTED)
    return int(m.group(1))


def test_greylist_delay_then_pass(gateway, sink, dns_server):
    """First attempt 451, a retry before the delay 451, after the delay 250 and the
    message reaches the sink; the passed triplet then passes at once."""
    ip = "127.0.0.19"
    gw = checks_gateway(gateway, ["greylist"],
                        "greylist {\n    delay = %d\n    retry_window = 3600\n"
                        "    pass_ttl = 86400\n    only_suspicious = false\n}\n" % DELAY,
                        dns=dns_server.address)
    t0 = time.monotonic()
    wait = greylisted(gw, ip)
    assert 1 <= wait <= DELAY, "announced wait %d s with delay %d s" % (wait, DELAY)
    line = reject_line(gw, ip, 451, "4.7.1", "greylist")
    assert "from=<alice@client.test> rcpt=<bob@example.test>" in line, line

    greylisted(gw, ip)  # still inside the delay
    assert time.monotonic() - t0 < DELAY - 0.3, "too slow to test a retry inside the delay"
    assert len(gw.log_lines(r"event=reject .*client=127\.0\.0\.19 .*check=greylist")) == 4
    assert sink.messages == []

    time.sleep(max(0.0, DELAY + 0.3 - (time.monotonic() - t0)))
    accepted(gw, ip)
    msg = sink.wait_for(1)[0]
    assert msg.rcpt_tos == ["bob@example.test"]
    assert received_from(msg.content) == "client.example.org (mx19.good.test [%s])" % ip
    accepted(gw, ip)  # remembered: no new delay
    sink.wait_for(2)

    # probe + 2 greylisted sessions + 2 accepted; two refused RCPTs per greylisted session
    wait_stats(gw, connections=5, accepted=2, stopped={"greylist": 2},
               verdicts={"greylist.tempfail": 4})


def test_s25r_greylist_combined(gateway, sink, dns_server):
    """The issue's configuration as written (plus test servers and timeouts): a
    good server (confirmed name, not dynamic) passes at once; a dynamic one is
    greylisted, counted as s25r+greylist, and passes when it retries after the delay."""
    dyn_ip, dyn_name = S25R_RULE_CLIENTS["rule1"]
    gw = checks_gateway(
        gateway, ["access", "dnsbl", "s25r", "greylist", "ratelimit"],
        's25r {\n    action = "greylist"\n}\n'
        'dnsbl {\n    threshold = 1\n    zone "bl.test" { weight = 1 }\n}\n'
        "greylist {\n    delay = %d\n    retry_window = 3600\n    pass_ttl = 86400\n"
        "    only_suspicious = true\n}\n" % DELAY,
        dns=dns_server.address)

    c, (r,) = to_rcpt(gw, GOOD, helo=GOOD_NAME)
    assert c.greeting_time < 1.0, "good host waited %.2f s for the greeting" % c.greeting_time
    r.check(250, "2.1.5")
    say_quit(c)
    t0 = time.monotonic()
    greylisted(gw, dyn_ip)
    line = reject_line(gw, dyn_ip, 451, "4.7.1", "greylist")
    assert "rule1" in line, "the greylist refusal does not name the S25R rule: %s" % line

    accepted(gw, GOOD, helo=GOOD_NAME)
    msg = sink.wait_for(1)[0]
    assert received_from(msg.content) == "%s (%s [%s])" % (GOOD_NAME, GOOD_NAME, GOOD)
    assert not gw.log_lines(r"event=reject .*client=%s " % re.escape(GOOD))

    time.sleep(max(0.0, DELAY + 0.3 - (time.monotonic() - t0)))
    accepted(gw, dyn_ip)
    msgs = sink.wait_for(2)
    assert received_from(msgs[1].content) == "client.example.org (%s [%s])" % (dyn_name,
                                                                               dyn_ip)
    # probe, good host twice, dynamic host twice
    wait_stats(gw, connections=5, accepted=2, stopped={"s25r+greylist": 1},
               verdicts={"greylist.tempfail": 2, "s25r.score": 2})


def test_greylist_network_trusted_after_awl_count_passes(gateway, sink, dns_server):
    """One retry of one host does not trust its network: another sender from it is
    still greylisted. Passes count once per interval (here pass_ttl/2 = 3 s); at
    awl_count = 2 the network is trusted and a new sender passes at once. The
    triplet's sender is compared in canonical form: "alice"@ retries alice@."""
    ip = "127.0.0.24"
    gw = checks_gateway(gateway, ["greylist"],
                        "greylist {\n    delay = 1\n    retry_window = 3600\n"
                        "    pass_ttl = 6\n    awl_count = 2\n}\n",
                        dns=dns_server.address)
    t0 = time.monotonic()
    greylisted(gw, ip)
    time.sleep(max(0.0, 1.3 - (time.monotonic() - t0)))
    accepted(gw, ip, sender='"alice"@client.test')  # pass 1 of the network
    t1 = time.monotonic()
    greylisted(gw, ip, sender="carol@client.test")  # not trusted yet
    assert not gw.log_lines(r"event=greylist_awl ")

    time.sleep(max(0.0, 3.3 - (time.monotonic() - t1)))
    accepted(gw, ip)  # the known triplet passes: pass 2 -> trusted
    gw.wait_log(r"event=greylist_awl key=gl:c:127\.0\.0\.0/24 passes=2")
    accepted(gw, ip, sender="dave@client.test", rcpt="bob@example.test")
    sink.wait_for(3)
    wait_stats(gw, connections=6, accepted=3, stopped={"greylist": 2},
               verdicts={"greylist.tempfail": 4})  # two refused RCPTs per session
