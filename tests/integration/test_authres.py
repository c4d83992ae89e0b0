"""test_authres.py - Authentication-Results (RFC 8601) on inbound mail.

What a user sees at the internal server: mxgate's own field on top of every
message it accepts through a listener with checks (here spf, against NSD),
and no incoming field that claims mxgate's authserv-id — folded, commented
or quoted — while fields of other hosts stay as they were.
"""

import pytest

from checks_env import checks_gateway, connect, wait_stats
from conftest import HOSTNAME
from dnsserver import DNSServer

CLIENT = "127.0.0.22"

ZONES = {
    "ar.test": [
        'pass.ar.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"',
        'helo.ar.test. A 127.0.0.22',
    ],
}


@pytest.fixture(scope="module")
def ar_dns():
    srv = DNSServer(ZONES).start()
    yield srv
    srv.stop()


def send(gw, header: bytes, body: bytes = b"hello\r\n..dotted line\r\n"):
    c = connect(gw, CLIENT)
    c.greeting.check(220)
    c.ehlo("helo.ar.test")
    c.cmd("MAIL FROM:<alice@pass.ar.test>").check(250)
    c.cmd("RCPT TO:<bob@example.test>").check(250)
    c.cmd("DATA").check(354)
    c.send(header + b"\r\n" + body + b".\r\n")
    c.read_reply().check(250, "2.0.0")
    c.cmd("QUIT").check(221)
    c.close()


def fields(content: bytes, name: bytes):
    """The unfolded values of every field called name, in order."""
    head = content.split(b"\r\n\r\n", 1)[0]
    out, cur = [], None
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and cur is not None:
            cur += b" " + line.strip()
            continue
        if cur is not None:
            out.append(cur)
            cur = None
        k, _, v = line.partition(b":")
        if k.lower() == name.lower():
            cur = v.strip()
    if cur is not None:
        out.append(cur)
    return [v.decode() for v in out]


def test_ours_on_top_and_forgeries_removed(gateway, sink, ar_dns):
    gw = checks_gateway(gateway, ["spf"], dns=ar_dns.address)
    host = HOSTNAME.encode()
    header = (b"Authentication-Results: " + host + b"; spf=pass smtp.mailfrom=x@y.test\r\n"
              b"Authentication-Results:\r\n  (forged) " + host.upper() + b";\r\n"
              b"  dkim=pass header.d=bank.test\r\n"
              b"Authentication-Results: other.example.net; spf=fail\r\n"
              b"Authentication-Results: \"" + host + b"\"; dmarc=pass\r\n"
              b"Subject: authres\r\n"
              b"From: alice@pass.ar.test\r\n")
    send(gw, header)
    content = sink.wait_for(1)[0].content
    first = content.split(b"\r\n", 1)[0].decode()
    assert first.startswith("Authentication-Results: %s;" % HOSTNAME), content[:300]
    ars = fields(content, b"Authentication-Results")
    assert len(ars) == 2, ars
    assert "spf=pass smtp.mailfrom=alice@pass.ar.test" in ars[0], ars[0]
    assert ars[1] == "other.example.net; spf=fail", ars
    assert b"bank.test" not in content
    # the rest of the message is as sent
    assert b"\r\nSubject: authres\r\nFrom: alice@pass.ar.test\r\n\r\nhello\r\n.dotted line\r\n" \
        in content, content
    assert gw.log_text().count("event=field_removed") == 3, gw.log_text()
    assert 'field=Authentication-Results why="claims our authserv-id"' in gw.log_text()


def test_authserv_id_option_and_long_forgery(gateway, sink, ar_dns):
    gw = checks_gateway(gateway, ["spf"], dns=ar_dns.address,
                        extra='authserv_id = "ar.example.test"\n')
    pad = b"\r\n  " + b"x" * 900
    header = (b"Authentication-Results: ar.example.test; spf=pass" + pad * 12 + b"\r\n"
              b"Authentication-Results: " + HOSTNAME.encode() + b"; spf=pass\r\n"
              b"Subject: long\r\n")
    send(gw, header, body=b"body\r\n")
    content = sink.wait_for(1)[0].content
    ars = fields(content, b"Authentication-Results")
    assert ars[0].startswith("ar.example.test; spf=pass smtp.mailfrom="), ars
    assert len(ars) == 2 and ars[1].startswith(HOSTNAME + "; spf=pass"), ars
    assert b"x" * 900 not in content
    wait_stats(gw, accepted=1)
