"""test_checks_access.py - the operator's access lists against real DNS: client
deny/allow (allow skips the DNSBL), rDNS, HELO, sender and recipient denies, and
a changed list file reloaded on SIGHUP.

Run:  /usr/bin/python3 -m pytest tests/integration/test_checks_access.py
"""

import os
import signal

from checks_env import (BL_TXT, LISTED, LISTED_ALLOWED, accepted, checks_gateway, connect,
                        finish_data, received_from, refused, reject_line, say_quit, to_rcpt,
                        wait_stats)
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)


def access_section(**files) -> str:
    return "access {\n%s}\n" % "".join('    %s = "%s"\n' % kv for kv in files.items())


def test_access_client_and_rdns_lists(gateway, sink, tmp_path, dns_server):
    """deny by address (default and own text) and by confirmed name; an allowed
    client that bl.test lists gets through because allow skips the DNSBL; a listed
    client that is not allowed is refused by the DNSBL."""
    clients = tmp_path / "clients"
    clients.write_text("# address list\n127.0.0.15 deny\n127.0.0.22 deny Go away, spammer\n"
                       "\n%s allow\n" % LISTED_ALLOWED)
    rdns = tmp_path / "rdns"
    rdns.write_text("/^mx21\\.good\\.test$/ deny\n")
    gw = checks_gateway(gateway, ["access", "dnsbl"],
                        access_section(client=clients, rdns=rdns)
                        + 'dnsbl {\n    zone "bl.test" { weight = 1 }\n}\n',
                        dns=dns_server.address)

    r = refused(gw, "127.0.0.15", 554, "5.7.1")
    assert r.text == "5.7.1 Access denied", r
    line = reject_line(gw, "127.0.0.15", 554, "5.7.1", "access")
    assert "client 127.0.0.15" in line, line
    assert "from=<alice@client.test> rcpt=<bob@example.test>" in line, line

    r = refused(gw, "127.0.0.22", 554, "5.7.1")
    assert r.text == "5.7.1 Go away, spammer", r

    refused(gw, "127.0.0.21", 554, "5.7.1", "Access denied")
    line = reject_line(gw, "127.0.0.21", 554, "5.7.1", "access")
    # quoted log value: the backslashes of the regex are escaped
    assert r'reason="rdns /^mx21\\.good\\.test$/"' in line, line

    accepted(gw, LISTED_ALLOWED)
    msg = sink.wait_for(1)[0]
    assert received_from(msg.content) == "client.example.org (mx14.good.test [%s])" % (
        LISTED_ALLOWED)
    assert not gw.log_lines(r"event=reject .*client=%s " % LISTED_ALLOWED.replace(".", r"\."))

    refused(gw, LISTED, 554, "5.7.1", "blocked using bl.test", BL_TXT)
    reject_line(gw, LISTED, 554, "5.7.1", "dnsbl")

    wait_stats(gw, connections=6, accepted=1, stopped={"access": 3, "dnsbl": 1},
               verdicts={"access.reject": 3, "access.ok": 1, "dnsbl.reject": 1})


def test_access_helo_sender_rcpt_lists(gateway, sink, tmp_path, dns_server):
    """HELO deny is held until RCPT; sender deny answers MAIL; recipient deny
    answers that RCPT only, the other recipient gets the message."""
    helo = tmp_path / "helo"
    helo.write_text("/^bad\\.helo\\.test$/ deny Bad HELO\n")
    sender = tmp_path / "sender"
    sender.write_text("@spam.test deny\n")
    rcpt = tmp_path / "rcpt"
    rcpt.write_text("blocked@example.test deny No such user here\n")
    gw = checks_gateway(gateway, ["access"], access_section(helo=helo, sender=sender, rcpt=rcpt),
                        dns=dns_server.address)
    ip = "127.0.0.20"

    r = refused(gw, ip, 554, "5.7.1", helo="bad.helo.test")
    assert r.text == "5.7.1 Bad HELO", r
    line = reject_line(gw, ip, 554, "5.7.1", "access")
    assert r'reason="helo /^bad\\.helo\\.test$/"' in line, line

    c = connect(gw, ip)
    try:
        c.greeting.check(220)
        c.ehlo()
        r = c.cmd("MAIL FROM:<x@spam.test>").check(554, "5.7.1")
        assert r.text == "5.7.1 Access denied", r
        say_quit(c)
    finally:
        c.close()
    line = reject_line(gw, ip, 554, "5.7.1", "access", stage="mail")
    assert "sender @spam.test" in line, line

    c, (r1, r2) = to_rcpt(gw, ip, rcpts=("blocked@example.test", "bob@example.test"))
    try:
        r1.check(554, "5.7.1")
        assert r1.text == "5.7.1 No such user here", r1
        r2.check(250, "2.1.5")
        finish_data(c)
    finally:
        c.close()
    assert sink.wait_for(1)[0].rcpt_tos == ["bob@example.test"]
    lines = gw.log_lines(r"event=reject .*stage=rcpt .*check=access .*rcpt=<blocked@example")
    assert len(lines) == 1 and "rcpt blocked@example.test" in lines[0], lines

    # the third session accepted a message: refused once, but not stopped
    wait_stats(gw, connections=4, accepted=1, stopped={"access": 2},
               verdicts={"access.reject": 3})


def test_access_list_reloaded_on_sighup(gateway, tmp_path, dns_server):
    """A changed client list takes effect on SIGHUP; a broken one is refused at
    reload and the lists in force stay."""
    clients = tmp_path / "clients"
    clients.write_text("# nobody yet\n")
    gw = checks_gateway(gateway, ["access"], access_section(client=clients),
                        dns=dns_server.address)
    ip = "127.0.0.16"
    accepted(gw, ip)

    clients.write_text("%s deny Reloaded deny\n" % ip)
    mark = gw.log_mark()
    os.kill(gw.proc.pid, signal.SIGHUP)
    gw.wait_log(r"event=reload status=done generation=2 ", since=mark)
    r = refused(gw, ip, 554, "5.7.1")
    assert r.text == "5.7.1 Reloaded deny", r

    clients.write_text("%s perhaps\n" % ip)
    mark = gw.log_mark()
    os.kill(gw.proc.pid, signal.SIGHUP)
    line = gw.wait_log(r"^.*event=reload status=refused error=.*$", since=mark).group(0)
    assert "clients:1" in line, "the refusal does not name file and line: %s" % line
    gw.wait_log(r"event=reload status=refused error=.*action=\"the running configuration stays\"",
                since=mark)
    r = refused(gw, ip, 554, "5.7.1")
    assert r.text == "5.7.1 Reloaded deny", r
    assert gw.running

    wait_stats(gw, connections=4, accepted=1, stopped={"access": 2},
               verdicts={"access.reject": 2})


def test_access_deny_not_dodged_by_address_variants(gateway, sink, tmp_path, dns_server):
    """A deny of ceo@example.test also refuses "ceo"@example.test, "c\\eo"@ and CEO@
    (one canonical form); a deny of a U-label domain refuses its A-label spelling
    (SMTPUTF8 not needed). Another address still gets through."""
    sender = tmp_path / "sender"
    sender.write_text("ceo@example.test deny No CEO fraud\n"
                      "@b\u00fccher.example deny Books\n")
    gw = checks_gateway(gateway, ["access"], access_section(sender=sender),
                        dns=dns_server.address)
    ip = "127.0.0.23"
    variants = ['ceo@example.test', '"ceo"@example.test', '"c\\eo"@EXAMPLE.test',
                'CEO@example.test', 'x@xn--bcher-kva.example', 'x@XN--BCHER-KVA.example']
    c = connect(gw, ip)
    try:
        c.greeting.check(220)
        c.ehlo()
        for v in variants:
            r = c.cmd("MAIL FROM:<%s>" % v).check(554, "5.7.1")
            want = "Books" if "bcher" in v.lower() else "No CEO fraud"
            assert r.text == "5.7.1 " + want, (v, r)
        c.cmd("MAIL FROM:<cfo@example.test>").check(250)
        say_quit(c)
    finally:
        c.close()
    lines = gw.log_lines(r"event=reject .*stage=mail .*check=access ")
    assert len(lines) == len(variants), lines
    assert 'reason="sender ceo@example.test"' in lines[1] and r'from="<\"ceo\"@example.test>"' in \
        lines[1], lines[1]
    wait_stats(gw, verdicts={"access.reject": len(variants)})
