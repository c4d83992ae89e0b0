"""test_batv.py - BATV (Exim-compatible prvs tags) end to end: mxgated signs the
envelope sender of mail its relay clients send out, accepts bounces only to
valid tags of its own, and strips the tag before the internal server sees it.

Tags are recomputed here with Python's hmac module following Exim's
algorithm (expand.c, prvs_hmac_sha1), independently of the C code:
    prvs=K DDD SSSSSS=local@domain,  SSSSSS = HMAC-SHA1(secret, K DDD local@domain)[:3]
so a tag made here is what Exim's ${prvs} makes, and must validate in mxgated.

Clients: 127.0.0.2 is in relay_networks (our own server sending out);
127.0.0.3 is a stranger on the Internet.

Run with Debian's interpreter:  /usr/bin/python3 -m pytest tests/integration/test_batv.py
"""

import hashlib
import hmac
import re
import time

import pytest

from conftest import RawClient, make_message

RELAY = "127.0.0.2"
OUTSIDE = "127.0.0.3"
SECRETS = {1: "s3cret", 2: "older"}
BATV = ('batv {\n    domains = {"example.test"}\n    key = 1\n'
        '    secrets = {"1:s3cret", "2:older"}\n    days = 7\n}\n')
TAG_RE = re.compile(r"^prvs=([0-9])([0-9]{3})([0-9a-f]{6})=(.+@.+)$")
BAD_TEXT = "Invalid or missing bounce address tag (BATV)"
OLD_TEXT = "Bounce address tag expired (BATV)"


def today() -> int:
    return int(time.time()) // 86400


def prvs(addr: str, keynum: int, expiry_day: int) -> str:
    """Exim's ${prvs{addr}{secret}{keynum}} for the given expiry day."""
    ddd = "%03d" % (expiry_day % 1000)
    data = ("%d%s%s" % (keynum, ddd, addr)).encode()
    sig = hmac.new(SECRETS[keynum].encode(), data, hashlib.sha1).hexdigest()[:6]
    return "prvs=%d%s%s=%s" % (keynum, ddd, sig, addr)


@pytest.fixture
def batv_gw(gateway, sink):
    """A gateway whose listener runs the batv check; example.test and every other
    domain ("*") are routed to the sink, so outbound mail can be inspected too."""
    route = "smtp:[127.0.0.1]:%d" % sink.port
    gw = gateway(start=False, relay_networks=[RELAY + "/32"],
                 routes={"example.test": route, "*": route}, extra=BATV)
    text = gw.config.read_text()
    old = 'listen mx { address = "127.0.0.1:%d"' % gw.port
    assert text.count(old) == 1, "unexpected listen line in %s" % text
    gw.config.write_text(text.replace(old, old + ' checks = {"batv"}'))
    return gw.start()


def client(gw, ip: str) -> RawClient:
    c = RawClient(gw.port, source=ip)
    c.greeting.check(220)
    c.ehlo()
    return c


def send(gw, ip: str, sender: str, rcpt: str, subject: str) -> bytes:
    """One message, every reply 2xx; returns the message octets."""
    msg = make_message(subject=subject, sender=sender or "mailer-daemon@client.test", to=rcpt)
    with client(gw, ip) as c:
        c.cmd("MAIL FROM:<%s>" % sender).check(250, "2.1.0")
        c.cmd("RCPT TO:<%s>" % rcpt).check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(msg + b".\r\n")
        c.read_reply().check(250, "2.0.0")
        c.cmd("QUIT")
    return msg


def refused(gw, ip: str, rcpt: str):
    """A bounce (MAIL FROM:<>) to rcpt; returns the RCPT reply."""
    with client(gw, ip) as c:
        c.cmd("MAIL FROM:<>").check(250, "2.1.0")
        return c.cmd("RCPT TO:<%s>" % rcpt)


def signed_sender(gw, sink) -> str:
    """(a) outbound from the relay client: the sink gets a valid tag as sender."""
    before = today()
    send(gw, RELAY, "user@example.test", "friend@remote.test", "outbound")
    after = today()
    got = sink.wait_for(1)[0]
    assert got.rcpt_tos == ["friend@remote.test"]
    m = TAG_RE.match(got.mail_from)
    assert m, "envelope sender not tagged: %r" % got.mail_from
    assert m.group(4) == "user@example.test"
    assert m.group(1) == "1", "signed with key 1 as configured"
    # the same tag Exim (and the Python recomputation) makes for today + 7
    assert got.mail_from in (prvs("user@example.test", 1, before + 7),
                             prvs("user@example.test", 1, after + 7))
    return got.mail_from


def test_signed_and_bounce_returns(batv_gw, sink):
    """(a) a relay client's sender is signed; (b) a bounce to exactly that tag is
    accepted and reaches the internal server addressed to the plain address."""
    tag = signed_sender(batv_gw, sink)
    msg = send(batv_gw, OUTSIDE, "", tag, "bounce")
    got = sink.wait_for(2)[1]
    assert got.mail_from == ""
    assert got.rcpt_tos == ["user@example.test"], "tag not stripped: %r" % got.rcpt_tos
    assert got.content.endswith(msg)


def test_refused_bounces(batv_gw, sink):
    """(c) altered, untagged, expired and unknown-key bounces: 550 5.7.1 at RCPT,
    logged under check=batv with the reason; nothing reaches the sink."""
    tag = signed_sender(batv_gw, sink)
    m = TAG_RE.match(tag)
    sig = m.group(3)
    altered_sig = tag.replace(sig, sig[:5] + ("0" if sig[5] != "0" else "1"))
    altered_local = tag.replace("=user@", "=usex@")
    expired = prvs("user@example.test", 1, today() - 1)
    unknown = prvs("user@example.test", 1, today() + 7).replace("prvs=1", "prvs=3", 1)
    cases = [
        (altered_sig, BAD_TEXT, "bad signature key=1"),
        (altered_local, BAD_TEXT, "bad signature key=1"),
        ("user@example.test", BAD_TEXT, "missing tag"),
        (expired, OLD_TEXT, r"expired day=%03d" % ((today() - 1) % 1000)),
        (unknown, BAD_TEXT, "unknown key 3"),
    ]
    for rcpt, text, reason in cases:
        mark = batv_gw.log_mark()
        r = refused(batv_gw, OUTSIDE, rcpt)
        r.check(550, "5.7.1")
        assert r.text == "5.7.1 <%s>: %s" % (rcpt, text), r
        # a tag holds '=': then the address is one quoted value
        logged = ('"<%s>"' if "=" in rcpt else "<%s>") % rcpt
        batv_gw.wait_log(r"event=reject .*stage=rcpt code=550 status=5\.7\.1 check=batv "
                         r"reason=\"?%s\"? .*rcpt=%s$" % (re.escape(reason), re.escape(logged)),
                         since=mark)
    time.sleep(0.3)
    assert len(sink.messages) == 1, "only the outbound message arrived"


def test_python_made_tags_validate(batv_gw, sink):
    """Tags made outside mxgated with Exim's algorithm validate: today's key-1 tag
    with the hex in capitals and PRVS= upper-case, and a key-2 tag (rotation)."""
    k1 = prvs("user@example.test", 1, today() + 7)
    upper = "PRVS=" + k1[5:15].upper() + k1[15:]
    k2 = prvs("other@example.test", 2, today() + 3)
    send(batv_gw, OUTSIDE, "", upper, "upper")
    send(batv_gw, OUTSIDE, "", k2, "rotated")
    got = sink.wait_for(2)
    assert got[0].rcpt_tos == ["user@example.test"]
    assert got[1].rcpt_tos == ["other@example.test"]


def test_normal_mail_untouched(batv_gw, sink):
    """(d) mail with a sender from the Internet to a plain address: delivered as is,
    and its sender (not ours, not from a relay client) is not signed."""
    send(batv_gw, OUTSIDE, "alice@client.test", "user@example.test", "normal")
    got = sink.wait_for(1)[0]
    assert got.mail_from == "alice@client.test"
    assert got.rcpt_tos == ["user@example.test"]
    # the stranger using our domain as sender is not signed either
    send(batv_gw, OUTSIDE, "user@example.test", "user@example.test", "forged")
    got = sink.wait_for(2)[1]
    assert got.mail_from == "user@example.test"
