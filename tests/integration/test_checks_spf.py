"""test_checks_spf.py - the spf check (RFC 7208 at MAIL) against a real NSD.

The test domains publish SPF records in TXT; clients connect from
127.0.0.20..29. What a user sees: the MAIL reply (550 5.7.23 with the
domain's explanation, 451 4.7.24 when DNS fails), the Received-SPF field on
top of the message at the internal server, the reject log line and the
spf.* counters.
"""

import subprocess

import pytest

from conftest import MXGATED
from checks_env import (checks_gateway, connect, finish_data, reject_line, say_quit,
                        wait_stats)
from dnsserver import DNSServer

CLIENT = "127.0.0.21"

ZONES = {
    "spf.test": [
        'pass.spf.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"',
        'fail.spf.test. TXT "v=spf1 ip4:192.0.2.1 -all"',
        'soft.spf.test. TXT "v=spf1 ~all"',
        'exp.spf.test. TXT "v=spf1 -all exp=why.exp.spf.test"',
        'why.exp.spf.test. TXT "%{i} may not send mail for %{d}"',
        'mx.spf.test. TXT "v=spf1 -all"',
        'mx.spf.test. A 127.0.0.21',
        'good-helo.spf.test. TXT "v=spf1 a -all"',
        'good-helo.spf.test. A 127.0.0.21',
        'two.spf.test. TXT "v=spf1 -all"',
        'two.spf.test. TXT "v=spf1 +all"',
        'nospf.spf.test. A 127.0.0.21',
    ],
    "slow.test": [],
}


@pytest.fixture(scope="module")
def spf_dns():
    srv = DNSServer(ZONES, silent_zones=["slow.test"]).start()
    yield srv
    srv.stop()


def spf_gateway(gateway, dns, spf=""):
    return checks_gateway(gateway, ["spf"], sections="spf {%s}\n" % spf, dns=dns.address)


def mail(gw, sender, helo="good-helo.spf.test"):
    c = connect(gw, CLIENT)
    c.greeting.check(220)
    c.ehlo(helo)
    return c, c.cmd("MAIL FROM:<%s>" % sender)


def test_fail_is_refused_at_mail_with_the_explanation(gateway, spf_dns):
    gw = spf_gateway(gateway, spf_dns)
    c, r = mail(gw, "alice@fail.spf.test")
    r.check(550, "5.7.23", "SPF fail for fail.spf.test")
    say_quit(c)
    c, r = mail(gw, "alice@exp.spf.test")
    r.check(550, "5.7.23", "127.0.0.21 may not send mail for exp.spf.test")
    say_quit(c)
    line = reject_line(gw, CLIENT, 550, "5.7.23", "spf", stage="mail")
    assert "result=fail identity=mailfrom domain=fail.spf.test mechanism=-all" in line, line
    wait_stats(gw, verdicts={"spf.reject": 2})


def test_pass_is_accepted_with_received_spf_on_top(gateway, sink, spf_dns):
    gw = spf_gateway(gateway, spf_dns)
    c, r = mail(gw, "alice@pass.spf.test")
    r.check(250, "2.1.0")
    c.cmd("RCPT TO:<bob@example.test>").check(250)
    finish_data(c)
    content = sink.wait_for(1)[0].content
    # Authentication-Results on top, then Received-SPF right above Received
    assert content.startswith(b"Authentication-Results: mx.example.test;"), content
    lines = content.split(b"\r\n")
    at = [i for i, l in enumerate(lines) if l.startswith(b"Received-SPF:")]
    assert len(at) == 1, content
    first = lines[at[0]].decode()
    assert first.startswith("Received-SPF: pass "), first
    assert "client-ip=127.0.0.21;" in first and 'envelope-from="alice@pass.spf.test";' in first, first
    assert lines[at[0] + 1].startswith(b"Received: from good-helo.spf.test"), content


def test_softfail_and_none_pass_by_default_and_are_recorded(gateway, sink, spf_dns):
    gw = spf_gateway(gateway, spf_dns)
    for sender, result in (("a@soft.spf.test", "softfail"), ("a@nospf.spf.test", "none")):
        c, r = mail(gw, sender, helo="[127.0.0.21]")
        r.check(250, "2.1.0")
        c.cmd("RCPT TO:<bob@example.test>").check(250)
        finish_data(c)
    got = sink.wait_for(2)
    assert b"\r\nReceived-SPF: softfail " in got[0].content, got[0].content[:300]
    assert b"\r\nReceived-SPF: none " in got[1].content, got[1].content[:300]


def test_a_failing_helo_decides_before_mail_from(gateway, spf_dns):
    gw = spf_gateway(gateway, spf_dns)
    c, r = mail(gw, "alice@pass.spf.test", helo="mx.spf.test")
    r.check(550, "5.7.23", "SPF fail for mx.spf.test")
    say_quit(c)
    line = reject_line(gw, CLIENT, 550, "5.7.23", "spf", stage="mail")
    assert "identity=helo domain=mx.spf.test" in line, line


def test_helo_check_can_be_turned_off(gateway, spf_dns):
    gw = spf_gateway(gateway, spf_dns, spf="helo = false")
    c, r = mail(gw, "alice@pass.spf.test", helo="mx.spf.test")
    r.check(250, "2.1.0")
    say_quit(c)


def test_null_sender_is_judged_by_the_helo_identity(gateway, spf_dns):
    gw = spf_gateway(gateway, spf_dns, spf="helo = false")
    c, r = mail(gw, "", helo="mx.spf.test")
    r.check(550, "5.7.23", "SPF fail for mx.spf.test")
    say_quit(c)


def test_actions_are_configurable(gateway, spf_dns):
    gw = spf_gateway(gateway, spf_dns, spf='softfail = "reject"  fail = "tempfail"  '
                                            'permerror = "reject"')
    c, r = mail(gw, "a@soft.spf.test")
    r.check(550, "5.7.23", "SPF softfail for soft.spf.test")
    say_quit(c)
    c, r = mail(gw, "a@fail.spf.test")
    r.check(451, "4.7.23", "SPF fail for fail.spf.test: try again later")
    say_quit(c)
    c, r = mail(gw, "a@two.spf.test")  # two SPF records: permerror
    r.check(550, "5.7.24", "SPF permerror for two.spf.test")
    say_quit(c)


def test_dns_trouble_is_a_temporary_refusal(gateway, spf_dns):
    gw = spf_gateway(gateway, spf_dns)
    c, r = mail(gw, "a@never.slow.test", helo="[127.0.0.21]")
    r.check(451, "4.7.24", "SPF temperror for never.slow.test")
    say_quit(c)
    wait_stats(gw, verdicts={"spf.tempfail": 1})


def test_bad_action_is_a_config_error(gateway, spf_dns):
    gw = gateway(start=False, extra='spf { fail = "bounce" }\n')
    r = subprocess.run([MXGATED, "-n", "-c", str(gw.config)], cwd=str(gw.dir),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stderr
    assert 'spf: fail must be "dunno", "reject", "tempfail" or "score", not "bounce"' in r.stderr
