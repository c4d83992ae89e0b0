"""HELO/EHLO must name a domain or an address literal; the Received header
shows only such a name, so a client cannot fake its "(name [address])" part."""
import pytest

from conftest import RawClient, make_message, send_data, split_received

BAD = [
    b"x (trusted.example [10.0.0.1])",
    b"a(b)",
    b"a)b",
    b"[10.0.0.1",
    b"10.0.0.1]",
    b"a[b]",
    b"two words",
    b"caf\xc3\xa9.example",
    b"\xff\xfe.example",
    b"-lead.example",
    b"trail-.example",
    b"dots..example",
    b"trailing.dot.",
    b"[x:general-literal]",
    b"[IPv6:not-an-address]",
    b"[300.1.2.3]",
    b"a;b",
    b"\"quoted\"",
    b"l" * 64 + b".example",
]


@pytest.mark.parametrize("verb", [b"HELO", b"EHLO"])
@pytest.mark.parametrize("name", BAD)
def test_invalid_helo_refused(gateway, verb, name):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.send(verb + b" " + name + b"\r\n")
        c.read_reply().check(501, "5.5.2", "invalid %s hostname" % verb.decode())
        # not greeted: the session still wants a HELO/EHLO
        c.cmd("MAIL FROM:<a@client.test>").check(503, "5.5.1", "send HELO/EHLO first")
        c.cmd("QUIT").check(221)


@pytest.mark.parametrize("bad", [b"a\rb", b"a\x00b", b"a\x01b"])
def test_control_octets_in_helo(gateway, bad):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.send(b"EHLO " + bad + b"\r\n")
        c.read_reply().check(500, "5.5.2")
        c.cmd("MAIL FROM:<a@client.test>").check(503, "5.5.1", "send HELO/EHLO first")


@pytest.mark.parametrize("name", ["mail.client.test", "localhost", "[127.0.0.1]",
                                  "[IPv6:2001:db8::1]", "[ipv6:::1]", "x", "a-b.c9",
                                  "exch_01.corp.example"])
def test_valid_helo_in_received(gateway, sink, name):
    gw = gateway()
    msg = make_message("helo")
    with RawClient(gw.port) as c:
        c.ehlo(name)
        send_data(c, "a@client.test", ["b@example.test"], msg + b".\r\n", helo=False).check(250)
    raw, rest = split_received(sink.wait_for(1)[0].content)
    assert rest == msg
    assert raw.startswith(b"Received: from %s (unknown [127.0.0.1])\r\n" % name.encode()), raw


def test_refused_helo_keeps_the_first(gateway, sink):
    """A refused HELO changes nothing: the transaction goes on and Received shows
    the name the client gave in the HELO that was accepted."""
    gw = gateway()
    msg = make_message("kept")
    with RawClient(gw.port) as c:
        c.ehlo("good.client.test")
        c.cmd("MAIL FROM:<a@client.test>").check(250)
        c.cmd(b"HELO evil (trusted.example [10.0.0.1])").check(501, "5.5.2")
        c.cmd("RCPT TO:<b@example.test>").check(250)
        c.cmd("DATA").check(354)
        c.send(msg + b".\r\n")
        c.read_reply().check(250, "2.0.0")
    raw, _ = split_received(sink.wait_for(1)[0].content)
    assert raw.startswith(b"Received: from good.client.test (unknown [127.0.0.1])\r\n"), raw
    assert b"trusted" not in raw and b"10.0.0.1" not in raw
    gw.wait_log(r"event=reject sid=\S+ client=127\.0\.0\.1 stage=helo code=501 status=5\.5\.2")
