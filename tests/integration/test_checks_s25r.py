"""test_checks_s25r.py - S25R against real DNS: each of the six rules, no PTR,
PTR not forward-confirmed, exceptions; the confirmed name in the Received header.

Run:  /usr/bin/python3 -m pytest tests/integration/test_checks_s25r.py
"""

import re

from checks_env import (GOOD, GOOD_NAME, NO_PTR, S25R_RULE_CLIENTS, S25R_RULE_REGEX, UNCONFIRMED,
                        UNCONFIRMED_PTR, accepted, checks_gateway, good_name, rdns_line,
                        read_stats, received_from, refused, reject_line, wait_stats)
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)

DYNAMIC = "looks like a dynamic/end-user address"


def test_fixture_names_trip_exactly_their_rule():
    """The DNS data is right: each dynamic name trips its S25R rule and no other,
    the good names trip none (otherwise the daemon tests below prove nothing)."""
    for rule, (ip, name) in S25R_RULE_CLIENTS.items():
        hits = [r for r, rx in S25R_RULE_REGEX.items() if re.search(rx, name, re.I)]
        assert hits == [rule], (name, hits)
    for ip in ("127.0.0.1", GOOD, "127.0.0.11", "127.0.0.14", "127.0.0.30"):
        name = good_name(ip)
        assert not [r for r, rx in S25R_RULE_REGEX.items() if re.search(rx, name, re.I)], name


def test_s25r_reject_names_each_rule(gateway, sink, dns_server):
    """action = reject: every rule refuses at RCPT with 550 5.7.1 naming the rule,
    after 220/EHLO/MAIL went through; the log names rule and host; a good host
    passes with its confirmed name in the Received header; stats count it all."""
    gw = checks_gateway(gateway, ["s25r"], 's25r {\n    action = "reject"\n}\n',
                        dns=dns_server.address)
    for rule, (ip, name) in S25R_RULE_CLIENTS.items():
        refused(gw, ip, 550, "5.7.1", "Client host rejected: " + DYNAMIC,
                "(S25R rule=%s)" % rule)
        rdns_line(gw, ip, "ok", name, name)
        line = reject_line(gw, ip, 550, "5.7.1", "s25r")
        assert "rule=%s name=%s" % (rule, name) in line, line
        assert "from=<alice@client.test> rcpt=<bob@example.test>" in line, line

    refused(gw, NO_PTR, 550, "5.7.1", "Client host rejected: cannot find your hostname",
            "(S25R rule=no-ptr)")
    rdns_line(gw, NO_PTR, "nxdomain", "unknown", "-")
    assert "rule=no-ptr name=unknown" in reject_line(gw, NO_PTR, 550, "5.7.1", "s25r")

    refused(gw, UNCONFIRMED, 550, "5.7.1", "Client host rejected: cannot confirm your hostname",
            "(S25R rule=unconfirmed)")
    rdns_line(gw, UNCONFIRMED, "nodata", "unknown", UNCONFIRMED_PTR)
    line = reject_line(gw, UNCONFIRMED, 550, "5.7.1", "s25r")
    assert "rule=unconfirmed name=%s" % UNCONFIRMED_PTR in line, line

    accepted(gw, GOOD, helo="mail.good.test")
    rdns_line(gw, GOOD, "ok", GOOD_NAME, GOOD_NAME)
    msg = sink.wait_for(1)[0]
    assert received_from(msg.content) == "mail.good.test (mail.good.test [%s])" % GOOD
    assert not gw.log_lines(r"event=reject .*client=%s " % re.escape(GOOD))

    # probe + 6 rules + no PTR + unconfirmed + good host; a connect-stage verdict
    # is counted once per session however many RCPTs it refused
    st = wait_stats(gw, connections=10, accepted=1, stopped={"s25r": 8},
                    verdicts={"s25r.reject": 8})
    assert st.totals["connections refused"] == 8 and st.pct["s25r"] == "80.0", st.text
    # periods: today holds it all; a day long past holds nothing
    assert read_stats(gw, "today").text == st.text
    past = read_stats(gw, "2001-02-03", "2001-02-04")
    assert past.totals == {"connections": 0, "messages accepted": 0,
                           "queue files corrupt": 0, "submissions accepted": 0,
                           "submission auth failures": 0, "submission lock-outs": 0,
                           "submission sender mismatch": 0, "quota refused messages": 0,
                           "quota refused recipients": 0, "suspended login refused": 0,
                           "logins suspended": 0, "logins resumed": 0,
                           "connections refused": 0}, past.text
    assert past.stopped == {} and past.verdicts == {}, past.text


def test_s25r_tempfail_and_exceptions(gateway, tmp_path, dns_server):
    """action = tempfail gives 450 4.7.1 with the rule; an exception by address and
    one by confirmed name exempt dynamic hosts from every rule."""
    exc = tmp_path / "s25r-exceptions"
    exc.write_text("# exempted on purpose\n%s\n/^dhcp7\\.example\\.net$/\n"
                   % S25R_RULE_CLIENTS["rule2"][0])
    gw = checks_gateway(gateway, ["s25r"],
                        's25r {\n    action = "tempfail"\n    exceptions = "%s"\n}\n' % exc,
                        dns=dns_server.address)
    ip, name = S25R_RULE_CLIENTS["rule4"]
    refused(gw, ip, 450, "4.7.1", "Client host rejected: " + DYNAMIC, "try again later",
            "(S25R rule=rule4)")
    assert "rule=rule4 name=%s" % name in reject_line(gw, ip, 450, "4.7.1", "s25r")

    accepted(gw, S25R_RULE_CLIENTS["rule2"][0])  # exempt by address
    accepted(gw, S25R_RULE_CLIENTS["rule6"][0])  # exempt by name
    for rule in ("rule2", "rule6"):
        assert not gw.log_lines(r"event=reject .*client=%s " % re.escape(
            S25R_RULE_CLIENTS[rule][0]))
    wait_stats(gw, connections=4, accepted=2, stopped={"s25r": 1},
               verdicts={"s25r.tempfail": 1})
