"""test_sender_auth.py - issue 13's scenarios through the whole inbound chain.

One listener runs every check in the order the README gives,

    access, dnsbl, s25r, sender, spf, greylist, recipients, ratelimit, dkim, dmarc, score

against NSD serving SPF, DKIM and DMARC records, and real clients (smtplib,
raw sockets) and a real signer (dkimpy). What a user sees: a good sender
with SPF pass and a DKIM signature accepted at once with the right
Authentication-Results; a forged company domain, a sender domain that does
not exist and our own domain from outside refused; a softfail scored and
tagged; a DMARC p=reject domain with a broken signature refused at the end
of DATA; an SPF-authorised pool retrying from another address let through
the greylist at its second attempt; a DNS failure answered 451.
"""

import time
from pathlib import Path

import dkim
import pytest

from checks_env import checks_gateway, connect, reject_line, say_quit, wait_stats
from conftest import make_message
from dnsserver import DNSServer

DATA = Path(__file__).resolve().parent.parent / "data" / "dkim"
GOOD, OTHER, POOL1, POOL2 = "127.0.0.50", "127.0.0.51", "127.0.0.52", "127.0.0.53"
CHAIN = ["access", "dnsbl", "s25r", "sender", "spf", "greylist", "recipients", "ratelimit",
         "dkim", "dmarc", "score"]


def rsa_record() -> str:
    for line in (DATA / "keys.txt").read_text().splitlines():
        name, value = line.split(" ", 1)
        if name.startswith("rsa2048."):
            return " ".join('"%s"' % value[i:i + 250] for i in range(0, len(value), 250))
    raise AssertionError("no rsa2048 key in keys.txt")


ZONES = {
    # the client names: two servers with tidy DNS, two pool machines that look
    # like end-user lines to S25R (5 digits in the first label)
    "0.0.127.in-addr.arpa": ["50 PTR mail.company.test.", "51 PTR mail.other.test.",
                             "52 PTR x12352.pool.test.", "53 PTR x12353.pool.test."],
    "company.test": [
        "company.test. MX 10 mail.company.test.",
        "mail.company.test. A 127.0.0.50",
        'company.test. TXT "v=spf1 ip4:127.0.0.50 -all"',
        "sel._domainkey.company.test. TXT %s" % rsa_record(),
        '_dmarc.company.test. TXT "v=DMARC1; p=reject"',
    ],
    "other.test": [
        "other.test. MX 10 mail.other.test.",
        "mail.other.test. A 127.0.0.51",
        'other.test. TXT "v=spf1 ip4:127.0.0.51 -all"',
        "soft.other.test. MX 10 mail.other.test.",
        'soft.other.test. TXT "v=spf1 ~all"',
        "broken.other.test. MX 10 mail.other.test.",
        'broken.other.test. TXT "v=spf1 include:spf.slow.test -all"',
    ],
    "pool.test": [
        "pool.test. MX 10 x12352.pool.test.",
        "x12352.pool.test. A 127.0.0.52",
        "x12353.pool.test. A 127.0.0.53",
        'pool.test. TXT "v=spf1 ip4:127.0.0.52/31 -all"',
    ],
    # our own domain: its SPF only softfails outsiders
    "example.test": ["example.test. MX 10 mx.example.test.",
                     'example.test. TXT "v=spf1 ip4:192.0.2.1 ~all"'],
    "bl.test": [],  # a blocklist that lists nobody here
    "slow.test": [],
}

SECTIONS = """
dnsbl    { zone "bl.test" { weight = 1 } }
s25r     { action = "greylist" }
greylist { only_suspicious = true  delay = 2  spf_pass = "pool" }
sender   { domain_exists = "reject"  helo_exists = "score"  own_domains = "spf" }
spf      { fail = "reject"  softfail = "score"  score = 5  helo = true }
dkim     { }
dmarc    { reject = "reject"  quarantine = "tag" }
score    { tag = 5  tempfail = 10  reject = 15 }
"""


@pytest.fixture(scope="module")
def auth_dns():
    srv = DNSServer(ZONES, silent_zones=["slow.test"]).start()
    yield srv
    srv.stop()


@pytest.fixture
def gw(gateway, auth_dns):
    return checks_gateway(gateway, CHAIN, sections=SECTIONS, dns=auth_dns.address)


def signed(author: str, subject: str) -> bytes:
    """A message from author signed for company.test (rsa-sha256, relaxed) by dkimpy."""
    msg = make_message(subject, sender=author)
    key = (DATA / "rsa2048.key").read_bytes()
    sig = dkim.sign(msg, b"sel", b"company.test", key, canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date"])
    return sig + msg


def session(gw, ip, sender, helo):
    c = connect(gw, ip)
    c.greeting.check(220)
    c.ehlo(helo)
    return c, c.cmd("MAIL FROM:<%s>" % sender)


def deliver(c, msg: bytes, rcpt="bob@example.test"):
    c.cmd("RCPT TO:<%s>" % rcpt).check(250)
    c.cmd("DATA").check(354)
    c.send(msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    return c.read_reply()


def field(content: bytes, name: str) -> str:
    """The first field called name, unfolded."""
    head = content.split(b"\r\n\r\n", 1)[0].decode()
    lines = head.split("\r\n")
    for i, line in enumerate(lines):
        if line.lower().startswith(name.lower() + ":"):
            value = line.split(":", 1)[1]
            for cont in lines[i + 1:]:
                if not cont[:1] in (" ", "\t"):
                    break
                value += " " + cont.strip()
            return " ".join(value.split())
    raise AssertionError("no %s in %r" % (name, head))


def test_good_sender_is_accepted_at_once_with_authentication_results(gw, sink):
    c, r = session(gw, GOOD, "news@company.test", "mail.company.test")
    r.check(250, "2.1.0")
    deliver(c, signed("news@company.test", "good")).check(250, "2.0.0")
    say_quit(c)
    content = sink.wait_for(1)[0].content
    ar = field(content, "Authentication-Results")
    assert ar.startswith("mx.example.test; spf=pass smtp.mailfrom=news@company.test;"), ar
    assert "dkim=pass header.d=company.test header.s=sel header.b=" in ar, ar
    assert "dmarc=pass" in ar and "header.from=company.test" in ar, ar
    assert field(content, "X-Spam-Status").startswith("No, score=0"), content[:600]


def test_forged_company_domain_is_refused_at_mail(gw):
    c, r = session(gw, OTHER, "ceo@company.test", "mail.other.test")
    r.check(550, "5.7.23", "SPF fail for company.test")
    say_quit(c)
    assert "check=spf" in reject_line(gw, OTHER, 550, "5.7.23", "spf", stage="mail")


def test_sender_domain_that_does_not_exist_is_refused(gw):
    c, r = session(gw, OTHER, "a@ghost.company.test", "mail.other.test")
    r.check(550, "5.1.8", "ghost.company.test")
    say_quit(c)


def test_our_own_domain_from_outside_is_refused(gw):
    c, r = session(gw, OTHER, "ceo@example.test", "mail.other.test")
    r.check(250)  # softfail: scored at MAIL; the forgery is decided at RCPT
    c.cmd("RCPT TO:<bob@example.test>").check(550, "5.7.1", "example.test")
    say_quit(c)
    line = reject_line(gw, OTHER, 550, "5.7.1", "sender")
    assert "from=<ceo@example.test>" in line and "spf=softfail" in line, line


def test_softfail_is_scored_and_tagged(gw, sink):
    c, r = session(gw, OTHER, "a@soft.other.test", "mail.other.test")
    r.check(250)
    deliver(c, make_message("soft", sender="a@soft.other.test")).check(250, "2.0.0")
    say_quit(c)
    content = sink.wait_for(1)[0].content
    assert field(content, "X-Spam-Score") == "5", content[:800]
    status = field(content, "X-Spam-Status")
    assert status.startswith("Yes, score=5 required=5") and "spf=5" in status, status
    assert "spf=softfail" in field(content, "Authentication-Results")


def test_dmarc_reject_domain_with_a_broken_signature_is_refused(gw, sink):
    good = signed("ceo@company.test", "invoice")
    msg = good.replace(b"\r\n\r\nHello.\r\n", b"\r\n\r\nPay now.\r\n")
    assert msg != good
    c, r = session(gw, OTHER, "bounce@other.test", "mail.other.test")
    r.check(250)  # SPF passes for other.test, which is not aligned with company.test
    deliver(c, msg).check(550, "5.7.1", "company.test")
    say_quit(c)
    line = reject_line(gw, OTHER, 550, "5.7.1", "dmarc", stage="data")
    assert "check=dmarc" in line, line
    assert not sink.messages
    st = wait_stats(gw, verdicts={"dmarc.reject": 1})
    assert st.auth["dmarc"]["reject"] == 1, st.text


def test_spf_pool_retrying_from_another_address_passes_the_greylist(gw, sink):
    c, r = session(gw, POOL1, "list@pool.test", "x12352.pool.test")
    r.check(250)
    c.cmd("RCPT TO:<bob@example.test>").check(451, "4.7.1")
    say_quit(c)
    time.sleep(3)  # the greylist delay is 2 s
    c, r = session(gw, POOL2, "list@pool.test", "x12353.pool.test")
    r.check(250)
    deliver(c, make_message("pool", sender="list@pool.test")).check(250, "2.0.0")
    say_quit(c)
    assert len(sink.wait_for(1)) == 1


def test_dns_trouble_is_a_temporary_refusal(gw):
    c, r = session(gw, OTHER, "a@broken.other.test", "mail.other.test")
    r.check(451, "4.7.24")
    say_quit(c)


def test_aligned_dkim_lets_a_first_attempt_through_deferred_greylisting(gateway, sink, auth_dns):
    """dkim_pass = "defer": what greylisting would delay at RCPT is decided at the
    final dot — an aligned DKIM pass goes in at once, anything else gets 451 there."""
    gw = checks_gateway(gateway, ["dkim", "greylist"], dns=auth_dns.address,
                        sections='greylist { dkim_pass = "defer"  delay = 300 }\n')
    c, r = session(gw, OTHER, "news@company.test", "mail.other.test")
    r.check(250)
    deliver(c, signed("news@company.test", "signed")).check(250, "2.0.0")
    c.cmd("MAIL FROM:<news@company.test>").check(250)
    deliver(c, make_message("unsigned", sender="news@company.test")).check(451, "4.7.1")
    say_quit(c)
    got = sink.wait_for(1)
    assert b"Subject: signed" in got[0].content
    time.sleep(0.5)
    assert len(sink.messages) == 1
    assert "check=greylist" in reject_line(gw, OTHER, 451, "4.7.1", "greylist", stage="data")
