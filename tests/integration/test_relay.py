"""Relay control: our domains from anyone, anything else only from relay_networks,
and the classic open-relay address forms never relay."""

import pytest

from conftest import RawClient, check_received, make_message, smtp_queue


def rcpt_reply(port, rcpt, source=None):
    with RawClient(port, source=source) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@client.test>").check(250, "2.1.0")
        return c.cmd("RCPT TO:<%s>" % rcpt)


def test_relay_denied(gateway, sink):
    gw = gateway()
    r = rcpt_reply(gw.port, "user@other.test")
    r.check(554, "5.7.1", "Relay access denied", "<user@other.test>")
    gw.wait_log(r"event=reject .*stage=rcpt code=554 status=5\.7\.1 .*rcpt=<user@other\.test>")


def test_relay_denied_subdomain_and_case(gateway):
    gw = gateway()
    rcpt_reply(gw.port, "user@sub.example.test").check(554, "5.7.1", "Relay access denied")
    rcpt_reply(gw.port, "user@example.test.evil.test").check(554, "5.7.1")
    rcpt_reply(gw.port, "user@EXAMPLE.Test").check(250, "2.1.5")


@pytest.mark.parametrize("rcpt", [
    "user%other.test@example.test",
    "other.test!user@example.test",
    "@example.test:user@other.test",
    "@other.test:user@example.test",
    "@a.test,@b.test:user@other.test",
    '"user@other.test"@example.test',
    '"user%other.test"@example.test',
    "user%other.test@other.test",
])
def test_relay_tricks_never_relay(gateway, sink, rcpt):
    gw = gateway()
    r = rcpt_reply(gw.port, rcpt)
    r.check(554, "5.7.1", "Relay access denied")
    sink.wait_quiet(0, 0.2)


@pytest.mark.parametrize("rcpt", ["user@other.test@example.test", "user@@example.test"])
def test_double_at_is_syntax_error(gateway, rcpt):
    gw = gateway()
    rcpt_reply(gw.port, rcpt).check(501, "5.1.3", "Bad recipient address")


def test_denied_rcpt_does_not_spoil_transaction(gateway, sink):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@client.test>").check(250)
        c.cmd("RCPT TO:<x@other.test>").check(554, "5.7.1")
        c.cmd("RCPT TO:<user%other.test@example.test>").check(554, "5.7.1")
        c.cmd("RCPT TO:<good@example.test>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(b"Subject: partial\r\n\r\nx\r\n.\r\n")
        c.read_reply().check(250, "2.0.0")
    m = sink.wait_for(1)[0]
    assert m.rcpt_tos == ["good@example.test"]
    sink.wait_quiet(1, 0.5)


def test_relay_from_relay_network(gateway, sink):
    gw = gateway(relay_networks=["127.0.0.0/8"],
                 routes={"example.test": "smtp:[127.0.0.1]:%d" % sink.port,
                         "*": "smtp:[127.0.0.1]:%d" % sink.port})
    msg = make_message("outbound", to="user@other.test")
    qid = smtp_queue(gw.port, "a@example.test", ["user@other.test"], msg)
    m = sink.wait_for(1)[0]
    assert m.rcpt_tos == ["user@other.test"]
    check_received(m.content, msg, qid, rcpt="user@other.test")
    gw.wait_log(r"event=delivered id=%s rcpt=<user@other\.test>" % qid)


def test_relay_network_by_client_address(gateway, sink):
    gw = gateway(relay_networks=["127.0.0.3/32"],
                 routes={"example.test": "smtp:[127.0.0.1]:%d" % sink.port,
                         "*": "smtp:[127.0.0.1]:%d" % sink.port})
    rcpt_reply(gw.port, "user@other.test", source="127.0.0.2").check(554, "5.7.1")
    rcpt_reply(gw.port, "user@other.test", source="127.0.0.1").check(554, "5.7.1")
    rcpt_reply(gw.port, "user@other.test", source="127.0.0.3").check(250, "2.1.5")
    msg = make_message("from .3", to="user@other.test")
    qid = smtp_queue(gw.port, "a@example.test", ["user@other.test"], msg, source="127.0.0.3")
    m = sink.wait_for(1)[0]
    check_received(m.content, msg, qid, ip="127.0.0.3", rcpt="user@other.test")
    # Inbound mail for our domain is still accepted from anyone.
    rcpt_reply(gw.port, "user@example.test", source="127.0.0.2").check(250, "2.1.5")


def test_relay_network_without_route(gateway, sink):
    """Relaying is allowed but there is no route for the domain: the message is
    accepted from a relay client only if the daemon can route it; either way it
    must not be silently lost (either refused now or kept in the queue)."""
    gw = gateway(relay_networks=["127.0.0.0/8"])
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.test>").check(250)
        r = c.cmd("RCPT TO:<user@unrouted.test>")
        if r.code == 250:
            c.cmd("DATA").check(354)
            c.send(b"Subject: unrouted\r\n\r\nx\r\n.\r\n")
            r = c.read_reply().check(250, "2.0.0")
            gw.wait_log(r"event=(deferred|bounced) id=\S+ rcpt=<user@unrouted\.test>")
        else:
            assert r.code in (450, 451, 550, 554), r
    assert gw.running
