"""Submission (issue 11): listeners with role = "submission", SMTP AUTH PLAIN and
LOGIN against a users file of crypt(3) hashes, AUTH id = MAIL FROM, and what a
submitted message looks like at the next hop."""

import base64
import hashlib
import hmac
import os
import shutil
import time
import re
import signal
import smtplib
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import RawClient, free_port, make_message, send_data, wait_until

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

    def make(auth_extra="", senders=None, sub_checks=(), **kw):
        users = tmp_path / "users"
        users.write_text("# test users\n" + "".join(
            "%s:%s%s\n" % (login, h, ":created=2026-01-01" if login == "bob" else "")
            for login, h in hashes.items()))
        sub, subs = free_port(), free_port()
        checks = "{%s}" % ", ".join('"%s"' % c for c in sub_checks)
        extra = ('listen submission { address = "127.0.0.1:%d" role = "submission" '
                 'checks = %s }\n'
                 'listen submissions { address = "127.0.0.1:%d" role = "submission" '
                 'tls = "implicit" checks = %s }\n' % (sub, checks, subs, checks))
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


def stat_is(gw, row, n):
    """Wait until `mxgatectl stats` shows row with value n."""
    rx = re.compile(r"^%s +%d$" % (re.escape(row), n), re.M)
    wait_until(lambda: rx.search(gw.ctl("stats").stdout), what="stats %s = %d" % (row, n))


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
    stat_is(gw, "submissions accepted", 1)
    stat_is(gw, "messages accepted", 0)
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
    stat_is(gw, "submission sender mismatch", 3)


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


def test_header_from_must_match(submission, sink):
    gw = submission(routes=routed(sink), auth_extra="header_from = true",
                    senders="bob bob.alias@example.test\n")
    with tls_client(gw.sub_port) as c:
        c.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"])).check(235)
        bad = b"From: Alice <alice@example.test>\r\nSubject: x\r\n\r\nhi\r\n.\r\n"
        send_data(c, "bob@example.test", ["x@far.test"], bad, helo=False).check(
            550, "5.7.1", "<alice@example.test>: From: address not owned by user bob")
        none = b"Subject: no from\r\n\r\nhi\r\n.\r\n"
        send_data(c, "bob@example.test", ["x@far.test"], none, helo=False).check(550, "5.7.1")
        good = (b"From: \"Bob (work)\" <Bob.Alias@example.test>, bob@example.test\r\n"
                b"Subject: ok\r\n\r\nhi\r\n.\r\n")
        send_data(c, "bob@example.test", ["x@far.test"], good, helo=False).check(250)
    assert len(sink.wait_for(1)) == 1
    sink.wait_quiet(1, 0.3)
    gw.wait_log(r"event=sender_mismatch sid=\S+ client=127\.0\.0\.1 login=bob "
                r"from=<alice@example\.test>")


def test_submitted_mail_is_batv_signed(submission, sink):
    batv = ('batv {\n    domains = {"example.test"}\n    key = 1\n'
            '    secrets = {"1:s3cret"}\n    days = 7\n}\n')
    gw = submission(routes=routed(sink), sub_checks=["batv"], extra=batv)
    msg = make_message("signed")
    with smtplib.SMTP("127.0.0.1", gw.sub_port, timeout=10) as s:
        s.starttls(context=tls_ctx())
        s.login("alice@example.test", PASSWORDS["alice@example.test"])
        s.sendmail("alice@example.test", ["far@elsewhere.test"], msg)
    m = sink.wait_for(1)[0]
    day = "%03d" % ((int(time.time()) // 86400 + 7) % 1000)
    sig = hmac.new(b"s3cret", ("1%salice@example.test" % day).encode(),
                   hashlib.sha1).hexdigest()[:6]
    assert m.mail_from == "prvs=1%s%s=alice@example.test" % (day, sig), m.mail_from
    head = m.content.split(b"\r\n\r\n", 1)[0].decode()
    assert re.search(r"\r\n\tby mx\.example\.test \(mxgate\) with ESMTPSA \(using TLSv1\.[23] ",
                     head), head


@pytest.mark.usefixtures("store_backend")  # on LMDB, and on a shared Redis
def test_guesser_slowed_then_locked_out(submission, sink):
    gw = submission(routes=routed(sink), auth_extra="max_failures = 3\ntarpit_after = 1\n"
                    "tarpit_delay = 1\nfailure_window = 600\nlockout = 600")
    with tls_client(gw.sub_port) as c:
        start = time.monotonic()
        c.cmd("AUTH PLAIN " + plain("bob", "guess1")).check(535, "5.7.8")
        assert time.monotonic() - start < 0.9, "first failure delayed"
        start = time.monotonic()
        c.cmd("AUTH PLAIN " + plain("bob", "guess2")).check(535, "5.7.8")
        assert time.monotonic() - start >= 0.9, "second failure not delayed"
        c.cmd("AUTH PLAIN " + plain("bob", "guess3")).check(535, "5.7.8")
        # locked now: even the right password is refused, and the session ends
        c.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"])).check(421, "4.7.0")
    gw.wait_log(r"event=auth_lockout sid=\S+ client=127\.0\.0\.1 login=bob failures=3 "
                r"lockout=600")
    with RawClient(gw.sub_port, source="127.0.0.2") as c:  # another user, another address
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        c.starttls()
        c.ehlo()
        c.cmd("AUTH PLAIN " + plain("carol@example.test", PASSWORDS["carol@example.test"])
              ).check(235, "2.7.0")
    with RawClient(gw.sub_port, source="127.0.0.2") as c:  # the locked login, elsewhere
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        c.starttls()
        c.ehlo()
        c.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"])).check(421, "4.7.0")
    gw.wait_log(r"event=auth sid=\S+ client=127\.0\.0\.2 status=locked mech=PLAIN login=bob")
    stat_is(gw, "submission auth failures", 3)
    stat_is(gw, "submission lock-outs", 1)


def test_users_file_reloaded_on_sighup(submission, sink, tmp_path):
    gw = submission(routes=routed(sink), auth_extra="cache_ttl = 300")
    with tls_client(gw.sub_port) as c:
        c.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"])).check(235)
    users = tmp_path / "users"
    good = users.read_text()
    users.write_text("bob:%s\n" % crypt_hash("new pass", "sha512crypt"))
    mark = len(gw.log_text())
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_log(r"event=reload status=done", since=mark)
    with tls_client(gw.sub_port) as c:  # the cached old password is gone with the old file
        c.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"])).check(535, "5.7.8")
        c.cmd("AUTH PLAIN " + plain("bob", "new pass")).check(235)
    with tls_client(gw.sub_port) as c:
        c.cmd("AUTH PLAIN " + plain("alice@example.test", PASSWORDS["alice@example.test"])
              ).check(535)
    users.write_text(good + "broken line without a hash\n")
    mark = len(gw.log_text())
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_log(r'event=reload status=refused error=".*auth: \S*/users:6: expected login:hash"',
                since=mark)
    with tls_client(gw.sub_port) as c:  # the running users stay
        c.cmd("AUTH PLAIN " + plain("bob", "new pass")).check(235)


@pytest.fixture
def dovecot(tmp_path):
    """A private Dovecot (Debian's dovecot-core) whose auth-client socket checks a
    passwd-file in the test's tmp dir; its path."""
    exe = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.path.exists(exe):
        pytest.skip("dovecot-core is not installed")
    # Dovecot's auth process runs as user dovecot: pytest's tmp dirs (0700) are closed
    # to it, so its files go to a directory of their own
    d = Path(tempfile.mkdtemp(prefix="mxgate-dovecot."))
    os.chmod(d, 0o755)
    (d / "run").mkdir()
    (d / "state").mkdir()
    (d / "passwd").write_text("dave@example.test:%s\n" % crypt_hash("dave pw", "sha512crypt"))
    conf = d / "dovecot.conf"
    conf.write_text(
        "base_dir = %s/run\nstate_dir = %s/state\nlog_path = %s/dovecot.log\n"
        "protocols =\nssl = no\nauth_mechanisms = plain login\n"
        "disable_plaintext_auth = no\nauth_failure_delay = 0\n"
        "passdb {\n  driver = passwd-file\n  args = scheme=CRYPT %s/passwd\n}\n"
        "userdb {\n  driver = static\n  args = uid=65534 gid=65534 home=%s\n}\n"
        "service auth {\n  unix_listener auth-client {\n    mode = 0666\n  }\n}\n"
        % (d, d, d, d, d))
    subprocess.run([exe, "-c", str(conf)], check=True)
    sock = d / "run" / "auth-client"
    wait_until(sock.exists, what="dovecot's auth-client socket")
    yield str(sock)
    subprocess.run([exe, "-c", str(conf), "stop"], check=False)
    wait_until(lambda: not (d / "run" / "master.pid").exists(), what="dovecot stopped")
    shutil.rmtree(d, ignore_errors=True)


def test_dovecot_authentication(gateway, sink, dovecot, tls_files):
    sub = free_port()
    gw = gateway(tls=True, routes=routed(sink), extra=(
        'listen submission { address = "127.0.0.1:%d" role = "submission" }\n'
        'auth { dovecot = "%s" }\n' % (sub, dovecot)))
    with tls_client(sub) as c:
        c.cmd("AUTH PLAIN " + plain("dave@example.test", "wrong")).check(535, "5.7.8")
        c.cmd("AUTH LOGIN").check(334)
        c.cmd(b64("dave@example.test")).check(334)
        c.cmd(b64("dave pw")).check(235, "2.7.0")
        c.cmd("MAIL FROM:<eve@example.test>").check(553, "5.7.1")
        send_data(c, "dave@example.test", ["x@far.test"],
                  b"Subject: via dovecot\r\n\r\nhi\r\n.\r\n", helo=False).check(250)
    assert sink.wait_for(1)[0].mail_from == "dave@example.test"
    gw.wait_log(r"event=auth sid=\S+ client=127\.0\.0\.1 status=ok mech=LOGIN "
                r"login=dave@example\.test cached=no")


def test_login_with_controls_refused(submission, sink):
    gw = submission(routes=routed(sink))
    with tls_client(gw.sub_port) as c:
        c.cmd("AUTH PLAIN " + plain("bob\r\n250 fake", PASSWORDS["bob"])).check(535, "5.7.8")
        c.cmd("AUTH LOGIN " + b64("bo b")).check(334)
        c.cmd(b64(PASSWORDS["bob"])).check(535, "5.7.8")
        c.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"])).check(235)
