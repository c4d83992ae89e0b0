"""test_checks_dnsbl.py - DNS blocklists against real DNS: a listed client is refused
with the zone's TXT reason; a list answering 127.255.255.254 is unusable and
ignored; a zone that never answers costs its time budget and blocks nobody.

Run:  /usr/bin/python3 -m pytest tests/integration/test_checks_dnsbl.py
"""

import re

from checks_env import (BL_TXT, DNSBL_ALL_ZONES, GOOD, GOOD_NAME, LISTED, accepted, checks_gateway,
                        connect, received_from, refused, reject_line, say_quit, to_rcpt,
                        wait_stats)
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)

ZONE_TIMEOUT = 1  # slow.bl.test's budget in DNSBL_ALL_ZONES
SLACK = 0.9       # scheduling, FCrDNS and the sanitizers


def test_dnsbl_listed_client_refused_with_txt(gateway, dns_server):
    """bl.test lists 127.0.0.11: 554 5.7.1 at RCPT with the zone and its TXT, after
    a greeting no later than the silent zone's budget."""
    gw = checks_gateway(gateway, ["dnsbl"], DNSBL_ALL_ZONES, dns=dns_server.address)
    c, replies = to_rcpt(gw, LISTED, rcpts=("bob@example.test", "carol@example.test"))
    try:
        assert c.greeting_time < ZONE_TIMEOUT + SLACK, (
            "greeting after %.2f s: the silent zone cost more than its %d s budget"
            % (c.greeting_time, ZONE_TIMEOUT))
        for r in replies:
            r.check(554, "5.7.1")
            assert r.text == ("5.7.1 Service unavailable; client [%s] blocked using bl.test; %s"
                              % (LISTED, BL_TXT)), r
        say_quit(c)
    finally:
        c.close()
    line = reject_line(gw, LISTED, 554, "5.7.1", "dnsbl")
    assert "zone=bl.test" in line and "answer=127.0.0.2" in line, line
    assert "from=<alice@client.test> rcpt=<bob@example.test>" in line, line
    # probe + the listed client
    # a connect-stage verdict is counted once per session, not per refused RCPT
    wait_stats(gw, connections=2, accepted=0, stopped={"dnsbl": 1},
               verdicts={"dnsbl.reject": 1})


def test_dnsbl_unusable_and_silent_zones_block_nobody(gateway, sink, dns_server):
    """unusable.test answers 127.255.255.254 for everyone: warned, counted as
    dnsbl.unusable, no refusal; slow.bl.test never answers: the session goes on
    after its 1 s budget and the mail is accepted."""
    gw = checks_gateway(gateway, ["dnsbl"], DNSBL_ALL_ZONES, dns=dns_server.address)
    mark = gw.log_mark()
    c = connect(gw, GOOD)
    try:
        c.greeting.check(220)
        assert c.greeting_time < ZONE_TIMEOUT + SLACK, (
            "greeting after %.2f s: the silent zone cost more than its %d s budget"
            % (c.greeting_time, ZONE_TIMEOUT))
        say_quit(c)
    finally:
        c.close()
    accepted(gw, GOOD, helo=GOOD_NAME)
    msg = sink.wait_for(1)[0]
    assert received_from(msg.content) == "%s (%s [%s])" % (GOOD_NAME, GOOD_NAME, GOOD)
    gw.wait_log(r"event=dnsbl_unusable zone=unusable\.test answer=127\.255\.255\.254 "
                r"client=127\.0\.0\.10$", since=mark)
    gw.wait_log(r"event=dnsbl_(timeout|error) zone=slow\.bl\.test client=127\.0\.0\.10\b",
                since=mark)
    assert not gw.log_lines(r"event=reject "), "nobody should have been refused"
    # probe + two sessions, each asks unusable.test once
    wait_stats(gw, connections=3, accepted=1, stopped={},
               verdicts={"dnsbl.unusable": 3, "dnsbl.reject": 0})


def test_dnsbl_every_zone_silent_tempfails(gateway, dns_server):
    """The only zone never answers and dns on_timeout = tempfail: 451 4.4.3 at RCPT."""
    gw = checks_gateway(gateway, ["dnsbl"],
                        'dnsbl {\n    zone "slow.bl.test" { weight = 1 timeout = 1 }\n}\n',
                        dns=dns_server.address)
    refused(gw, GOOD, 451, "4.4.3", "try again later")
    line = reject_line(gw, GOOD, 451, "4.4.3", "dnsbl")
    assert re.search(r"reason=\"?dns-timeout", line), line
    # the probe got the same verdict but never reached RCPT: not refused, not stopped
    wait_stats(gw, connections=2, stopped={"dnsbl": 1}, verdicts={"dnsbl.tempfail": 2})
