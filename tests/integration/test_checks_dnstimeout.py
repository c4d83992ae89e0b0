"""test_checks_dnstimeout.py - a DNS server that never answers: FCrDNS times out
(logged), and dns { on_timeout } decides: tempfail -> 451 4.4.3 at RCPT, pass ->
the mail is accepted with the client name "unknown".

Run:  /usr/bin/python3 -m pytest tests/integration/test_checks_dnstimeout.py
"""

from checks_env import (GOOD, accepted, checks_gateway, connect, rdns_line, received_from, refused,
                        reject_line, say_quit, wait_stats)
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)

SLACK = 0.9


def test_dns_timeout_tempfail(gateway, dns_server):
    gw = checks_gateway(gateway, ["s25r"], 's25r {\n    action = "reject"\n}\n',
                        dns=dns_server.blackhole_address, on_timeout="tempfail")
    r = refused(gw, GOOD, 451, "4.4.3", "try again later")
    assert r.text == "4.4.3 Client host name lookup failed; try again later", r
    rdns_line(gw, GOOD, "timeout", "unknown", "-")
    line = reject_line(gw, GOOD, 451, "4.4.3", "s25r")
    assert "dns-tempfail" in line, line
    # the probe got the same verdict but never reached RCPT
    wait_stats(gw, connections=2, accepted=0, stopped={"s25r": 1},
               verdicts={"s25r.tempfail": 2})


def test_dns_timeout_pass(gateway, sink, dns_server):
    gw = checks_gateway(gateway, ["s25r"], 's25r {\n    action = "reject"\n}\n',
                        dns=dns_server.blackhole_address, on_timeout="pass")
    c = connect(gw, GOOD)
    c.greeting.check(220)
    assert c.greeting_time < 1 + SLACK, "greeting after %.2f s with a 1 s DNS timeout" % (
        c.greeting_time)
    say_quit(c)
    accepted(gw, GOOD)
    rdns_line(gw, GOOD, "timeout", "unknown", "-")
    msg = sink.wait_for(1)[0]
    assert received_from(msg.content) == "client.example.org (unknown [%s])" % GOOD
    assert not gw.log_lines(r"event=reject ")
    wait_stats(gw, connections=3, accepted=1, stopped={})
