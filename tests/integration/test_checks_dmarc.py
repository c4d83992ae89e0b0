"""test_checks_dmarc.py - the dmarc check (RFC 7489 at the end of DATA) against a real NSD.

The test domains publish SPF and DMARC records; the client is 127.0.0.22.
SPF runs at MAIL with `fail = "dunno"` so that a forged sender gets as far
as the end of DATA, where dmarc judges the header From: domain. What a user
sees: the reply to the final dot (550 5.7.1 naming the domain, 451 4.7.1 on
a DNS failure when asked), the X-Mxgate-DMARC field and the
Authentication-Results field on top of the message at the internal server,
the event=dmarc and event=reject log lines and the dmarc.* counters.

Signed messages are signed here with dkimpy (python3-dkim); they need the
dkim check, and are skipped while this tree has none.
"""

import re
import subprocess

import pytest

from conftest import MXGATED
from checks_env import checks_gateway, connect, reject_line, say_quit, wait_stats
from dnsserver import DNSServer

CLIENT = "127.0.0.22"

ZONES = {
    # SPF fails for every test client; DMARC asks for rejection
    "dmarc-reject.test": [
        '@ TXT "v=spf1 ip4:192.0.2.1 -all"',
        '_dmarc TXT "v=DMARC1; p=reject; rua=mailto:agg@dmarc-reject.test"',
    ],
    "dmarc-quar.test": [
        '@ TXT "v=spf1 ip4:192.0.2.1 -all"',
        '_dmarc TXT "v=DMARC1; p=quarantine"',
    ],
    # SPF passes for 127.0.0.0/8, for the domain and its bounce subdomain
    "dmarc-pass.test": [
        '@ TXT "v=spf1 ip4:127.0.0.0/8 -all"',
        'bounces TXT "v=spf1 ip4:127.0.0.0/8 -all"',
        '_dmarc TXT "v=DMARC1; p=reject; aspf=r"',
    ],
    "dmarc-strict.test": [
        'bounces TXT "v=spf1 ip4:127.0.0.0/8 -all"',
        '_dmarc TXT "v=DMARC1; p=reject; aspf=s"',
    ],
    # an ESP: SPF passes, but it is another organisational domain
    "esp.test": ['@ TXT "v=spf1 ip4:127.0.0.0/8 -all"'],
    "slow.test": [],
}


@pytest.fixture(scope="module")
def dmarc_dns():
    srv = DNSServer(ZONES, silent_zones=["slow.test"]).start()
    yield srv
    srv.stop()


def dmarc_gateway(gateway, dns, dmarc="", checks=("spf", "dmarc")):
    sections = 'spf { fail = "dunno"  helo = false }\ndmarc {%s}\n' % dmarc
    return checks_gateway(gateway, list(checks), sections=sections, dns=dns.address)


def message(author: str, subject: str = "dmarc") -> bytes:
    return ("From: The Author <%s>\r\nTo: <bob@example.test>\r\nSubject: %s\r\n"
            "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <%s@test>\r\n\r\n"
            "Hello.\r\n" % (author, subject, subject.replace(" ", "-"))).encode()


def send(gw, sender: str, data: bytes):
    """A whole session up to the reply to the final dot, which is returned."""
    c = connect(gw, CLIENT)
    try:
        c.greeting.check(220)
        c.ehlo("client.example.org")
        c.cmd("MAIL FROM:<%s>" % sender).check(250, "2.1.0")
        c.cmd("RCPT TO:<bob@example.test>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(data + b".\r\n")
        r = c.read_reply()
        say_quit(c)
    finally:
        c.close()
    return r


def unfolded_field(content: bytes, name: str) -> str:
    """The value of the first field called name, unfolded; "" if none."""
    m = re.search(rb"(?im)^%s:[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)" % re.escape(name.encode()),
                  content)
    return re.sub(r"\r\n[ \t]", " ", m.group(1).decode()) if m else ""


def header_of(content: bytes) -> bytes:
    return content.split(b"\r\n\r\n", 1)[0]


def test_p_reject_with_spf_fail_and_no_dkim_is_refused_at_the_end_of_data(gateway, sink,
                                                                           dmarc_dns):
    gw = dmarc_gateway(gateway, dmarc_dns)
    r = send(gw, "alice@dmarc-reject.test", message("alice@dmarc-reject.test"))
    r.check(550, "5.7.1", "DMARC policy of dmarc-reject.test is reject",
            "not authenticated by aligned SPF or DKIM")
    line = reject_line(gw, CLIENT, 550, "5.7.1", "dmarc", stage="data")
    assert "result=fail domain=dmarc-reject.test policy=reject applied=reject" in line, line
    gw.wait_log(r"event=dmarc client=127\.0\.0\.22 from=dmarc-reject\.test result=fail "
                r"policy=reject applied=reject pct=100 action=reject spf=unaligned "
                r"dkim=unaligned domains=1$")
    # SPF passing for another organisation's domain is no excuse
    r = send(gw, "bounce@esp.test", message("ceo@dmarc-reject.test", "esp"))
    r.check(550, "5.7.1", "DMARC policy of dmarc-reject.test is reject")
    wait_stats(gw, accepted=0, verdicts={"dmarc.reject": 2})
    sink.wait_quiet(0, quiet=0.5)


def test_p_quarantine_is_accepted_and_tagged(gateway, sink, dmarc_dns):
    gw = dmarc_gateway(gateway, dmarc_dns)
    r = send(gw, "alice@dmarc-quar.test", message("alice@dmarc-quar.test"))
    r.check(250, "2.0.0")
    content = sink.wait_for(1)[0].content
    assert content.startswith(b"X-Mxgate-DMARC: quarantine\r\n") or \
        b"\r\nX-Mxgate-DMARC: quarantine\r\n" in header_of(content), content[:400]
    assert header_of(content).count(b"X-Mxgate-DMARC:") == 1
    gw.wait_log(r"event=dmarc client=127\.0\.0\.22 from=dmarc-quar\.test result=fail "
                r"policy=quarantine applied=quarantine pct=100 action=tag ")
    wait_stats(gw, accepted=1, verdicts={"dmarc.tag": 1})


def test_quarantine_can_refuse_and_reject_can_tag(gateway, sink, dmarc_dns):
    gw = dmarc_gateway(gateway, dmarc_dns, dmarc='quarantine = "reject"  reject = "tag"')
    send(gw, "a@dmarc-quar.test", message("a@dmarc-quar.test")).check(
        550, "5.7.1", "DMARC policy of dmarc-quar.test is quarantine")
    send(gw, "a@dmarc-reject.test", message("a@dmarc-reject.test")).check(250)
    assert b"X-Mxgate-DMARC: reject\r\n" in header_of(sink.wait_for(1)[0].content)


def test_an_aligned_spf_pass_is_accepted_with_dmarc_pass(gateway, sink, dmarc_dns):
    gw = dmarc_gateway(gateway, dmarc_dns)
    # relaxed: the bounce subdomain shares the organisational domain of From:
    send(gw, "b@bounces.dmarc-pass.test", message("ceo@dmarc-pass.test")).check(250, "2.0.0")
    content = sink.wait_for(1)[0].content
    assert b"X-Mxgate-DMARC" not in header_of(content), content[:400]
    gw.wait_log(r"event=dmarc client=127\.0\.0\.22 from=dmarc-pass\.test result=pass "
                r"policy=reject applied=- pct=100 action=dunno spf=aligned dkim=unaligned")
    # strict: the same bounce subdomain is not the From: domain
    send(gw, "b@bounces.dmarc-strict.test", message("ceo@dmarc-strict.test")).check(
        550, "5.7.1", "DMARC policy of dmarc-strict.test is reject")


def test_authentication_results_show_the_dmarc_pass(gateway, sink, dmarc_dns):
    gw = dmarc_gateway(gateway, dmarc_dns)
    send(gw, "b@bounces.dmarc-pass.test", message("ceo@dmarc-pass.test")).check(250, "2.0.0")
    content = sink.wait_for(1)[0].content
    ar = unfolded_field(content, "Authentication-Results")
    assert ar.startswith("mx.example.test; "), content[:600]
    assert "spf=pass smtp.mailfrom=b@bounces.dmarc-pass.test" in ar, ar
    assert "dmarc=pass header.from=dmarc-pass.test" in ar, ar


def test_a_forged_authentication_results_is_removed(gateway, sink, dmarc_dns):
    gw = dmarc_gateway(gateway, dmarc_dns)
    forged = b"Authentication-Results: mx.example.test; dmarc=pass header.from=dmarc-quar.test\r\n"
    kept = b"Authentication-Results: other.example; spf=pass smtp.mailfrom=x@esp.test\r\n"
    send(gw, "a@dmarc-quar.test", forged + kept + message("a@dmarc-quar.test")).check(250)
    hdr = header_of(sink.wait_for(1)[0].content)
    assert forged not in hdr, hdr
    assert kept in hdr, hdr
    assert "dmarc=fail (p=quarantine) header.from=dmarc-quar.test" in \
        unfolded_field(hdr, "Authentication-Results"), hdr


def test_a_dns_failure_passes_by_default_and_is_451_when_asked(gateway, sink, dmarc_dns):
    gw = dmarc_gateway(gateway, dmarc_dns)
    send(gw, "a@esp.test", message("a@x.slow.test")).check(250, "2.0.0")
    gw.wait_log(r"event=dmarc client=127\.0\.0\.22 from=x\.slow\.test result=temperror "
                r".* action=dunno .*problem=timeout")
    gw2 = dmarc_gateway(gateway, dmarc_dns, dmarc='temperror = "tempfail"')
    send(gw2, "a@esp.test", message("a@x.slow.test")).check(
        451, "4.7.1", "DMARC policy of x.slow.test could not be looked up: try again later")
    wait_stats(gw2, verdicts={"dmarc.tempfail": 1})


def test_several_from_domains_cannot_hide_a_reject_policy(gateway, sink, dmarc_dns):
    gw = dmarc_gateway(gateway, dmarc_dns)
    data = message("b@dmarc-pass.test").replace(
        b"From: The Author <b@dmarc-pass.test>",
        b"From: b@dmarc-pass.test, \"Bank\" <ceo@dmarc-reject.test>")
    send(gw, "b@dmarc-pass.test", data).check(550, "5.7.1", "dmarc-reject.test")
    gw2 = dmarc_gateway(gateway, dmarc_dns, dmarc='multiple_from = "reject"')
    send(gw2, "b@dmarc-pass.test", data).check(
        550, "5.7.1", "Several author domains in From: are not accepted")


def test_dkim_aligned_passes_and_a_broken_signature_is_refused(gateway, sink, dmarc_dns,
                                                               tmp_path):
    import base64
    import dkim  # python3-dkim (dkimpy)

    keyfile = tmp_path / "dkim.key"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(keyfile), "2048"],
                   check=True, capture_output=True)
    pem = keyfile.read_bytes()
    der = subprocess.run(["openssl", "rsa", "-in", str(keyfile), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    b64 = base64.b64encode(der).decode()
    zones = dict(ZONES)
    zones["dmarc-reject.test"] = ZONES["dmarc-reject.test"] + [
        'sel._domainkey TXT ( "v=DKIM1; k=rsa; p=%s" "%s" )' % (b64[:200], b64[200:])]
    srv = DNSServer(zones).start()
    try:
        gw = dmarc_gateway(gateway, srv, checks=("spf", "dkim", "dmarc"))
        msg = message("alice@dmarc-reject.test", "signed")
        sig = dkim.sign(msg, b"sel", b"dmarc-reject.test", pem,
                        include_headers=[b"from", b"to", b"subject", b"date"])
        # SPF fails (a forwarder), the aligned signature passes
        send(gw, "fwd@esp.test", sig + msg).check(250, "2.0.0")
        gw.wait_log(r"event=dmarc client=127\.0\.0\.22 from=dmarc-reject\.test result=pass "
                    r".*spf=unaligned dkim=aligned")
        # the same signature over a changed body: broken, and refused
        send(gw, "fwd@esp.test", sig + msg.replace(b"Hello.", b"Hello!")).check(
            550, "5.7.1", "DMARC policy of dmarc-reject.test is reject")
    finally:
        srv.stop()


def test_bad_settings_are_config_errors(gateway, dmarc_dns):
    gw = gateway(start=False, extra='dmarc { quarantine = "bounce"  bad_from = "maybe" }\n'
                                   'dns { servers = {"%s"} }\n' % dmarc_dns.address,
                 checks=["dmarc"])
    r = subprocess.run([MXGATED, "-n", "-c", str(gw.config)], cwd=str(gw.dir),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stderr
    assert 'dmarc: quarantine must be "dunno", "tag", "score" or "reject", not "bounce"' in r.stderr
    assert 'dmarc: bad_from must be "dunno" or "reject", not "maybe"' in r.stderr
    # dmarc reads what spf and dkim found: a listener without them before it is warned about
    assert ("warning: listen mx: dmarc runs without spf before it: no message passes DMARC by "
            "spf alignment") in r.stderr, r.stderr
    gw = gateway(start=False, extra='dmarc { psl = "/nonexistent/psl.dat" }\n'
                                   'dns { servers = {"%s"} }\n' % dmarc_dns.address,
                 checks=["dmarc"])
    r = subprocess.run([MXGATED, "-n", "-c", str(gw.config)], cwd=str(gw.dir),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stderr
    assert 'dmarc: psl: cannot load the Public Suffix List "/nonexistent/psl.dat"' in r.stderr
