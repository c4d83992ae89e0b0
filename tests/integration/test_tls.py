"""STARTTLS: advertised, working, state reset, and the CVE-2011-0411 injection."""

import ssl

from conftest import (RawClient, check_received, make_message, queue_id, send_data,
                      smtp_queue)


def ehlo_keywords(r):
    return [t.split(" ")[0].upper() for t in r.texts[1:]]


def test_starttls_advertised_and_works(gateway, sink):
    gw = gateway(tls=True)
    with RawClient(gw.port) as c:
        assert "STARTTLS" in ehlo_keywords(c.ehlo())
        c.cmd("STARTTLS").check(220, "2.0.0", "Ready to start TLS")
        tls = c.starttls()
        assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()
        r = c.ehlo()
        assert "STARTTLS" not in ehlo_keywords(r), "STARTTLS still advertised under TLS: %r" % r
        c.cmd("STARTTLS").check(503, "5.5.1", "TLS already active")
        msg = b"Subject: over tls\r\n\r\nsecret\r\n"
        r = send_data(c, "a@client.test", ["b@example.test"], msg + b".\r\n", helo=False)
        r.check(250, "2.0.0")
        c.cmd("QUIT").check(221)
    m = sink.wait_for(1)[0]
    unfolded = check_received(m.content, msg, queue_id(r.text), rcpt="b@example.test",
                              proto="ESMTPS", tls=True)
    assert "(using TLSv1" in unfolded
    gw.wait_log(r"event=tls sid=\S+ protocol=TLSv1\.[23] cipher=\S+")


def test_starttls_with_smtplib(gateway, sink):
    gw = gateway(tls=True)
    msg = make_message("smtplib tls")
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg, tls=True)
    check_received(sink.wait_for(1)[0].content, msg, qid, rcpt="b@example.test",
                   proto="ESMTPS", tls=True)


def test_cve_2011_0411_mail_injection(gateway, sink):
    """Plaintext pipelined after STARTTLS is discarded, not run under TLS."""
    gw = gateway(tls=True)
    with RawClient(gw.port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
        c.read_reply().check(220, "2.0.0")
        c.starttls()  # asserts no plaintext followed the 220
        # Had the injected MAIL been kept, its 250 would arrive now, or RCPT would work.
        c.send(b"RCPT TO:<x@example.test>\r\n")
        c.read_reply().check(503, "5.5.1")
        # The session was reset: EHLO is required again.
        c.cmd("MAIL FROM:<a@client.test>").check(503, "5.5.1", "send HELO/EHLO first")
        c.ehlo()
        c.cmd("RCPT TO:<x@example.test>").check(503, "5.5.1", "need MAIL")
        c.cmd("MAIL FROM:<a@client.test>").check(250, "2.1.0")
    sink.wait_quiet(0, 0.3)


def test_cve_2011_0411_rset_and_ehlo_injection(gateway):
    gw = gateway(tls=True)
    with RawClient(gw.port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nRSET\r\nEHLO injected.test\r\nNOOP\r\n")
        c.read_reply().check(220, "2.0.0")
        c.starttls()
        # The first reply under TLS must answer our own command, nothing injected.
        c.send(b"HELP\r\n")
        c.read_reply().check(214, "2.0.0")
        c.expect_silence(0.3)


def test_cve_2011_0411_transaction_state_reset(gateway, sink):
    """A transaction begun in plaintext does not survive STARTTLS."""
    gw = gateway(tls=True)
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<plain@client.test>").check(250)
        c.cmd("RCPT TO:<b@example.test>").check(250)
        c.cmd("STARTTLS").check(220, "2.0.0")
        c.starttls()
        c.ehlo()
        c.cmd("DATA").check(503, "5.5.1")
    sink.wait_quiet(0, 0.2)


def test_no_tls_section(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        assert "STARTTLS" not in ehlo_keywords(c.ehlo())
        c.cmd("STARTTLS").check(502, "5.5.1", "not implemented")
        c.cmd("NOOP").check(250)


def test_tls_handshake_garbage_does_not_kill_daemon(gateway, sink):
    gw = gateway(tls=True)
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        c.send(b"this is not a TLS ClientHello\r\n" * 10)
        # The server may answer with a TLS alert; then it must close.
        c.sock.settimeout(5)
        try:
            while c.sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
    # The daemon still serves TLS and plaintext clients.
    msg = make_message("after garbage")
    smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg, tls=True)
    sink.wait_for(1)
    assert gw.running


def test_tls_client_without_verification_gets_our_cert(gateway, tls_files):
    gw = gateway(tls=True)
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        tls = c.starttls()
        der = tls.getpeercert(binary_form=True)
        with open(tls_files[0]) as f:
            assert ssl.PEM_cert_to_DER_cert(f.read()) == der


def test_implicit_tls_listener(gateway, sink):
    gw = gateway(tls=True, listen_tls="implicit")
    with RawClient(gw.port, implicit_tls=True) as c:
        c.greeting.check(220)
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        r = c.ehlo()
        assert "STARTTLS" not in ehlo_keywords(r), r
        msg = b"Subject: implicit\r\n\r\nx\r\n"
        r = send_data(c, "a@client.test", ["b@example.test"], msg + b".\r\n", helo=False)
        r.check(250, "2.0.0")
    check_received(sink.wait_for(1)[0].content, msg, queue_id(r.text), rcpt="b@example.test",
                   proto="ESMTPS", tls=True)


def test_starttls_listener_none(gateway):
    """tls = "none" on a listener: no STARTTLS there even with a tls section."""
    gw = gateway(tls=True, listen_tls="none")
    with RawClient(gw.port) as c:
        assert "STARTTLS" not in ehlo_keywords(c.ehlo())
        c.cmd("STARTTLS").check(502, "5.5.1")
