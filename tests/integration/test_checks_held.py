"""test_checks_held.py - connection-level refusals (DNSBL, access by client/name/
HELO) are held until RCPT and answered there for every recipient but two:
postmaster@ of our domains (RFC 5321 4.5.1) and recipients the access list
allows (abuse@). Those are judged as for a client nothing refused: the hard
refusals (a harvest block) still apply to them.

Run:  /usr/bin/python3 -m pytest tests/integration/test_checks_held.py
"""

from checks_env import LISTED, checks_gateway, connect, reject_line, say_quit, wait_stats
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)
from conftest import make_message, queue_id

BLOCKED = "421 4.7.0 Too many unknown recipients from your address, try later"


def test_listed_client_reaches_postmaster_and_allowed_abuse(gateway, sink, tmp_path, dns_server):
    """bl.test lists the client: user@ gets 554 (the held DNSBL refusal), while
    postmaster@example.test, the bare postmaster and the allow-listed abuse@ are
    accepted, and the message reaches the internal server for those three."""
    rcpt = tmp_path / "rcpt"
    rcpt.write_text("abuse@example.test allow\n")
    gw = checks_gateway(gateway, ["access", "dnsbl"],
                        'access {\n    rcpt = "%s"\n}\n' % rcpt
                        + 'dnsbl {\n    zone "bl.test" { weight = 1 }\n}\n',
                        dns=dns_server.address)
    c = connect(gw, LISTED)
    try:
        c.greeting.check(220)
        c.ehlo()
        c.cmd("MAIL FROM:<reporter@client.test>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@example.test>").check(554, "5.7.1", "blocked using bl.test")
        c.cmd("RCPT TO:<Postmaster@example.test>").check(250, "2.1.5")
        c.cmd("RCPT TO:<abuse@example.test>").check(250, "2.1.5")
        c.cmd("RCPT TO:<postmaster>").check(250, "2.1.5")
        # another domain's postmaster is no exception: relay control comes first
        c.cmd("RCPT TO:<postmaster@elsewhere.test>").check(554, "5.7.1", "Relay access denied")
        # and the held refusal still answers everyone else
        c.cmd("RCPT TO:<other@example.test>").check(554, "5.7.1", "blocked using bl.test")
        c.cmd("DATA").check(354)
        c.send(make_message("abuse report") + b".\r\n")
        qid = queue_id(c.read_reply().check(250, "2.0.0").text)
        say_quit(c)
    finally:
        c.close()
    msg = sink.wait_for(1)[0]
    assert sorted(a.lower() for a in msg.rcpt_tos) == [
        "abuse@example.test", "postmaster@example.test"], msg.rcpt_tos
    assert b"Subject: abuse report" in msg.content
    line = reject_line(gw, LISTED, 554, "5.7.1", "dnsbl")
    assert "rcpt=<user@example.test>" in line, line
    assert len(gw.log_lines(r"event=reject .*check=dnsbl")) == 2
    gw.wait_log(r"event=delivered id=%s " % qid)
    # the session delivered a message: refused twice, but not stopped; the
    # abuse@ allow is counted as access.ok, the DNSBL hit once per session
    wait_stats(gw, connections=2, accepted=1, stopped={},
               verdicts={"dnsbl.reject": 1, "access.ok": 1})


def test_held_refusal_without_rcpt_checks(gateway, sink, dns_server):
    """A listener whose checks have no RCPT stage at all still answers the held
    refusal at RCPT, and still lets postmaster@ through."""
    gw = checks_gateway(gateway, ["dnsbl"], 'dnsbl {\n    zone "bl.test" { weight = 1 }\n}\n',
                        dns=dns_server.address)
    c = connect(gw, LISTED)
    try:
        c.greeting.check(220)
        c.ehlo()
        c.cmd("MAIL FROM:<>").check(250, "2.1.0")
        c.cmd("RCPT TO:<abuse@example.test>").check(554, "5.7.1", "blocked using bl.test")
        c.cmd("RCPT TO:<postmaster@example.test>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("bounce") + b".\r\n")
        c.read_reply().check(250, "2.0.0")
        say_quit(c)
    finally:
        c.close()
    assert sink.wait_for(1)[0].rcpt_tos == ["postmaster@example.test"]


def test_harvest_block_still_applies_to_postmaster(gateway, sink, tmp_path, dns_server):
    """A client tries unknown recipients up to twice the harvest threshold; in its
    next session its HELO is refused (held): postmaster@ passes the HELO refusal
    but not the harvest check, which blocks it with 421; the session after that
    is refused at once."""
    helo = tmp_path / "helo"
    helo.write_text("/^bad\\.helo\\.test$/ deny Bad HELO\n")
    rcpts = tmp_path / "recipients"
    rcpts.write_text("alice@example.test\n")
    gw = checks_gateway(
        gateway, ["access", "dnsbl", "harvest", "recipients"],
        'access {\n    helo = "%s"\n}\n' % helo
        + 'dnsbl {\n    zone "bl.test" { weight = 1 }\n}\n'
        + 'recipients "example.test" { file = "%s" }\n' % rcpts
        + "harvest { threshold = 2  window = 600  tarpit = 0  block = 600 }\n",
        dns=dns_server.address, limits={"max_errors": 100})
    ip = "127.0.0.17"

    c = connect(gw, ip)
    try:
        c.greeting.check(220)
        c.ehlo()
        c.cmd("MAIL FROM:<x@client.test>").check(250)
        for n in range(4):
            c.cmd("RCPT TO:<nobody%d@example.test>" % n).check(550, "5.1.1")
        say_quit(c)
    finally:
        c.close()

    c = connect(gw, ip)
    try:
        c.greeting.check(220)
        c.ehlo("bad.helo.test")
        c.cmd("MAIL FROM:<x@client.test>").check(250)
        c.cmd("RCPT TO:<alice@example.test>").check(554, "5.7.1", "Bad HELO")
        r = c.cmd("RCPT TO:<postmaster@example.test>")
        assert r.lines == [BLOCKED], r
        c.expect_closed()
    finally:
        c.close()
    reject_line(gw, ip, 421, "4.7.0", "harvest")

    c = connect(gw, ip)
    try:
        assert c.greeting.lines == [BLOCKED], c.greeting
        c.expect_closed()
    finally:
        c.close()
    assert not sink.messages
