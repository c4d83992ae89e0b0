"""Submission (issue 11): listeners with role = "submission", SMTP AUTH PLAIN and
LOGIN against a users file of crypt(3) hashes, AUTH id = MAIL FROM, and what a
submitted message looks like at the next hop."""

import base64
import re
import smtplib
import ssl
import subprocess

import pytest

from conftest import RawClient, free_port, make_message, queue_id, send_data

PASSWORDS = {"alice@example.test": "alice secret", "bob": "b0b-pass",
             "carol@example.test": "carol pw", "admin@example.test": "admin pw"}
METHODS = {"alice@example.test": "yescrypt", "bob": "bcrypt",
           "carol@example.test": "sha512crypt", "admin@example.test": "yescrypt"}


def crypt_hash(password, method):
    """A crypt(3) hash from mkpasswd (whois package), password on stdin."""
    out = subprocess.run(["mkpasswd", "-m", method, "-s"], input=password.encode(),
                         capture_output=True, check=True)
    return out.stdout.decode().strip()


@pytest.fixture(scope="module")
def hashes():
    return {login: crypt_hash(pw, METHODS[login]) for login, pw in PASSWORDS.items()}


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def plain(login, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, login, password)).encode()).decode()


def b64(s):
    return base64.b64encode(s.encode()).decode()


def keywords(r):
    return [t.split(" ")[0].upper() for t in r.texts[1:]]


@pytest.fixture
def submission(gateway, hashes, tmp_path):
    """gateway with a STARTTLS submission listener (.sub_port) and an implicit-TLS one
    (.subs_port); every domain routed to the sink."""

    def make(auth_extra="", senders=None, **kw):
        users = tmp_path / "users"
        users.write_text("# test users\n" + "".join(
            "%s:%s%s\n" % (login, h, ":created=2026-01-01" if login == "bob" else "")
            for login, h in hashes.items()))
        sub, subs = free_port(), free_port()
        extra = ('listen submission { address = "127.0.0.1:%d" role = "submission" }\n'
                 'listen submissions { address = "127.0.0.1:%d" role = "submission" '
                 'tls = "implicit" }\n' % (sub, subs))
        auth = 'users = "%s"\n' % users
        if senders is not None:
            (tmp_path / "senders").write_text(senders)
            auth += 'senders = "%s"\n' % (tmp_path / "senders")
        extra += "auth {\n%s%s\n}\n" % (auth, auth_extra)
        gw = gateway(tls=True, extra=kw.pop("extra", "") + extra, **kw)
        gw.sub_port, gw.subs_port = sub, subs
        return gw

    return make


def routed(sink):
    return {"example.test": "smtp:[127.0.0.1]:%d" % sink.port,
            "*": "smtp:[127.0.0.1]:%d" % sink.port}


def tls_client(port):
    c = RawClient(port)
    c.ehlo()
    c.cmd("STARTTLS").check(220)
    c.starttls()
    c.ehlo()
    return c


def test_auth_needs_tls_and_is_not_on_mx(submission, sink):
    gw = submission(routes=routed(sink))
    with RawClient(gw.port) as c:  # the MX listener
        assert "AUTH" not in keywords(c.ehlo())
        c.cmd("STARTTLS").check(220)
        c.starttls()
        assert "AUTH" not in keywords(c.ehlo())
        c.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"])).check(502, "5.5.1")
    with RawClient(gw.sub_port) as c:  # 587 before STARTTLS
        assert "AUTH" not in keywords(c.ehlo())
        c.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"])).check(538, "5.7.11")
        c.cmd("MAIL FROM:<bob@example.test>").check(530, "5.7.0", "Authentication required")
        c.cmd("STARTTLS").check(220)
        c.starttls()
        r = c.ehlo()
        assert "AUTH" in keywords(r)
        assert "AUTH PLAIN LOGIN" in r.texts
        c.cmd("MAIL FROM:<bob@example.test>").check(530, "5.7.0")


@pytest.mark.parametrize("login", sorted(PASSWORDS))
def test_plain_and_login_each_hash(submission, sink, login):
    gw = submission(routes=routed(sink))
    with tls_client(gw.sub_port) as c:
        c.cmd("AUTH PLAIN " + plain(login, PASSWORDS[login])).check(235, "2.7.0")
        c.cmd("AUTH PLAIN " + plain(login, PASSWORDS[login])).check(503, "5.5.1")
    with tls_client(gw.sub_port) as c:
        assert c.cmd("AUTH LOGIN").check(334).text == "VXNlcm5hbWU6"
        c.cmd(b64(login)).check(334)
        c.cmd(b64(PASSWORDS[login])).check(235, "2.7.0")
    with tls_client(gw.sub_port) as c:  # PLAIN without initial response
        r = c.cmd("AUTH PLAIN")
        assert r.lines == ["334 "], r
        c.cmd(plain(login, PASSWORDS[login])).check(235, "2.7.0")
    gw.wait_log(r"event=auth sid=\S+ client=127\.0\.0\.1 status=ok mech=LOGIN login=%s "
                r"cached=yes" % re.escape(login))


def test_wrong_password_and_bad_responses(submission, sink):
    gw = submission(routes=routed(sink))
    with tls_client(gw.sub_port) as c:
        c.cmd("AUTH PLAIN " + plain("bob", "wrong")).check(535, "5.7.8")
        c.cmd("AUTH PLAIN " + plain("nobody", "x")).check(535, "5.7.8")
        c.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"], authzid="alice@example.test")
              ).check(535, "5.7.8")
        c.cmd("AUTH LOGIN").check(334)
        c.cmd("*").check(501, "5.7.0")
        c.cmd("AUTH PLAIN not-base64!").check(501, "5.5.2")
        c.cmd("AUTH PLAIN QUJD=A==").check(501, "5.5.2")
        c.cmd("AUTH CRAM-MD5").check(504, "5.5.4")
        c.cmd("MAIL FROM:<bob@example.test>").check(530, "5.7.0")
        c.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"])).check(235, "2.7.0")
        c.cmd("MAIL FROM:<bob@example.test>").check(250)
    gw.wait_log(r"event=auth sid=\S+ client=127\.0\.0\.1 status=fail mech=PLAIN login=bob")


def test_smtplib_submits_and_next_hop_sees_esmtpsa(submission, sink):
    gw = submission(routes=routed(sink))
    msg = make_message("submitted")
    with smtplib.SMTP_SSL("127.0.0.1", gw.subs_port, context=tls_ctx(), timeout=10) as s:
        s.login("alice@example.test", PASSWORDS["alice@example.test"])
        s.sendmail("alice@example.test", ["someone@elsewhere.test"], msg)
    m = sink.wait_for(1)[0]
    assert m.rcpt_tos == ["someone@elsewhere.test"]
    head = m.content.split(b"\r\n\r\n", 1)[0].decode()
    received = re.sub(r"\r\n\s+", " ", head.split("\r\n")[0] + "\r\n" +
                      "\r\n".join(head.split("\r\n")[1:3]))
    assert re.search(r"with ESMTPSA \(using TLSv1\.[23] with cipher", received), received
    assert "alice" not in received, "login shown without show_login: %r" % received
    gw.wait_log(r"event=auth sid=\S+ client=127\.0\.0\.1 status=ok mech=\S+ "
                r"login=alice@example\.test")


def test_show_login(submission, sink):
    gw = submission(routes=routed(sink), auth_extra="show_login = true")
    with smtplib.SMTP("127.0.0.1", gw.sub_port, timeout=10) as s:
        s.starttls(context=tls_ctx())
        s.login("bob", PASSWORDS["bob"])
        s.sendmail("bob@example.test", ["x@elsewhere.test"], make_message("shown"))
    head = sink.wait_for(1)[0].content.split(b"\r\n\r\n", 1)[0].decode()
    assert "\r\n\t(Authenticated sender: bob)\r\n\tby " in head, head


def test_sender_must_match_login(submission, sink):
    gw = submission(routes=routed(sink),
                    senders="bob  bob.alias@example.test\nadmin@example.test @example.test\n")
    with tls_client(gw.sub_port) as c:
        c.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"])).check(235)
        c.cmd("MAIL FROM:<alice@example.test>").check(
            553, "5.7.1", "<alice@example.test>: Sender address not owned by user bob")
        c.cmd("MAIL FROM:<BOB@Example.Test>").check(250)  # own: login@default domain
        c.cmd("RSET").check(250)
        c.cmd("MAIL FROM:<bob.alias@example.test>").check(250)  # from the senders map
        c.cmd("RSET").check(250)
        c.cmd("MAIL FROM:<bob@other.test>").check(553, "5.7.1")
    with tls_client(gw.sub_port) as c:
        c.cmd("AUTH PLAIN " + plain("admin@example.test", PASSWORDS["admin@example.test"])
              ).check(235)
        c.cmd("MAIL FROM:<anyone@example.test>").check(250)  # @domain
        c.cmd("RSET").check(250)
        c.cmd("MAIL FROM:<anyone@other.test>").check(553, "5.7.1")
    gw.wait_log(r"event=sender_mismatch sid=\S+ client=127\.0\.0\.1 login=bob "
                r"sender=<alice@example\.test>")


def test_swaks_auth(submission, sink):
    gw = submission(routes=routed(sink))
    for auth in ("PLAIN", "LOGIN"):
        out = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(gw.sub_port), "--tls",
             "--auth", auth, "--auth-user", "carol@example.test",
             "--auth-password", PASSWORDS["carol@example.test"],
             "--from", "carol@example.test", "--to", "dest@far.test",
             "--helo", "client.example.org"],
            capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "235 2.7.0 Authentication successful" in out.stdout
    assert len(sink.wait_for(2)) == 2
