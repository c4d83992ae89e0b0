"""test_quota.py - the quota check's operator side against the real daemon: a
listener running "quota", mxgatectl user suspend/resume/list (text and --json),
the admin API's /api/users and its token-protected POSTs, the log lines and the
submission block of `mxgatectl stats`.

What this cannot do yet: authenticate. The quota check counts only sessions
with an SMTP AUTH identity (cl->login); until the submission listener's AUTH
is merged, the windows, the new-account tier, the 450/550 replies and the hook
are tested through the pipeline in tests/unit/policy/test_quota.c (injected
clock). Here an unauthenticated client shows that the check leaves it alone.

Run:  /usr/bin/python3 -m pytest tests/integration/test_quota.py
"""

import json
import re
import smtplib
import subprocess

import pytest

from admin_env import admin_gateway
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)
from conftest import MXGATED, free_port, make_message, smtp_send, wait_until

QUOTA = 'quota {\n  default = {"1/3600", "5/86400"}\n  recipients = {"3/3600"}\n' \
        '  new_account = {"1/86400"}\n  new_days = 14\n}\n'


def users(gw):
    r = gw.ctl("--json", "user", "list")
    assert r.returncode == 0, r
    return {u["login"]: u for u in json.loads(r.stdout)["users"]}


@pytest.mark.usefixtures("store_backend")  # on LMDB, and on a shared Redis
def test_suspend_resume_list(gateway, sink, tmp_path, dns_server):  # noqa: F811
    gw = admin_gateway(gateway, tmp_path, ["quota"], QUOTA, dns=dns_server.address)

    # without a login (port 25 traffic) the quota does not apply: 3 messages, 4 recipients
    for i in range(3):
        smtp_send(gw.port, "a@client.test", ["u%d@example.test" % i, "v@example.test"],
                  make_message("m%d" % i))
    wait_until(lambda: len(sink.messages) >= 3, what="3 messages at the sink")

    # an empty listing at first
    r = gw.ctl("user", "list")
    assert r.returncode == 0, r
    assert r.stdout == "-- 0 login(s), 0 suspended\n", r.stdout

    # suspend: the daemon writes it, the listing (read-only store) shows it
    login = "alice smith@example.test"  # a blank: sent percent-encoded on the control socket
    r = gw.ctl("user", "suspend", login)
    assert r.returncode == 0, r
    assert r.stdout == "suspended alice smith@example.test\n", r.stdout
    gw.wait_log(r'event=quota login="alice smith@example.test" action=suspend')
    u = wait_until(lambda: users(gw).get(login), what="the suspension listed")
    assert u["suspended"] is True and u["suspended_since"] > 0, u
    assert [(w["kind"], w["seconds"], w["limit"], w["count"]) for w in u["windows"]] == [
        ("messages", 3600, 1, 0), ("messages", 86400, 1, 0), ("recipients", 3600, 3, 0)], u
    assert u["new"] is True  # never seen sending: its age starts now
    r = gw.ctl("user", "list")
    assert re.match(r"^alice smith@example\.test  suspended since \d{4}-\d\d-\d\dT"
                    r".*  messages/3600s 0/1  messages/86400s 0/1  recipients/3600s 0/3\n"
                    r"-- 1 login\(s\), 1 suspended\n$", r.stdout), r.stdout
    assert gw.admin.json("/api/users") == json.loads(gw.ctl("--json", "user", "list").stdout)

    # the API: the token is required, then resume works
    gw.admin.post("/api/users/resume", {"login": login}, token=None, expect=401)
    gw.admin.post("/api/users/resume", {"login": login}, token="wrong", expect=403)
    assert users(gw)[login]["suspended"] is True
    assert gw.admin.post("/api/users/resume", {"login": login}) == {"ok": True, "count": 1}
    # resumed, and never seen sending: no record of it is left
    wait_until(lambda: login not in users(gw), what="resumed")
    gw.admin.post("/api/users/suspend", {"login": "bad\x01login"}, expect=400)
    gw.admin.post("/api/users/suspend", {}, expect=400)
    assert gw.admin.post("/api/users/suspend", {"login": "bob"}) == {"ok": True, "count": 1}
    r = gw.ctl("user", "resume", "bob")
    assert r.returncode == 0 and r.stdout == "resumed bob\n", r

    # refused by mxgatectl itself: a control character; usage errors
    r = gw.ctl("user", "suspend", "evil\x1b[2Jlogin")
    assert r.returncode == 1 and "not a login" in r.stderr, r
    assert gw.ctl("user", "suspend").returncode == 2
    assert gw.ctl("user", "pause", "bob").returncode == 2

    # statistics: the submission block beside the inbound table
    st = wait_until(lambda: (lambda t: t if re.search(r"logins resumed\s+2\n", t) else None)(
        gw.ctl("stats").stdout), what="2 resumes in stats")
    assert re.search(r"^quota refused messages\s+0\nquota refused recipients\s+0\n"
                     r"suspended login refused\s+0\nlogins suspended\s+2\n"
                     r"logins resumed\s+2\n", st, re.M), st


def test_quota_config_errors(gateway):
    gw = gateway(start=False, extra='quota {\n  default = {"10", "5/0", "1/60", "2/60"}\n}\n')
    r = subprocess.run([MXGATED, "-n", "-c", str(gw.config)], capture_output=True, text=True)
    assert r.returncode != 0
    assert '"10" is not "COUNT/SECONDS"' in r.stderr, r.stderr
    assert '"5/0" is not "COUNT/SECONDS"' in r.stderr, r.stderr
    assert "two windows of 60 seconds" in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# with SMTP AUTH (the submission listener): real clients hitting their quotas
# ---------------------------------------------------------------------------
SUB_QUOTA = ('quota {\n  default = {"5/3600"}\n  recipients = {"3/3600"}\n'
             '  new_account = {"2/86400"}\n  new_days = 14\n  hook = "%s"\n  hook_after = 2\n}\n')


def submission_gateway(gateway, sink, tmp_path):
    """A STARTTLS submission listener running quota; alice is new (no created=, never
    seen), bob was created in 2020; a hook that writes its arguments."""
    from test_submission import PASSWORDS, crypt_hash
    users = tmp_path / "users"
    users.write_text("alice@example.test:%s\nbob:%s:created=2020-01-01\n" % (
        crypt_hash(PASSWORDS["alice@example.test"], "yescrypt"),
        crypt_hash(PASSWORDS["bob"], "sha512crypt")))
    hook, out = tmp_path / "hook.sh", tmp_path / "hook.out"
    hook.write_text('#!/bin/sh\necho "$# $1 $2 $MXGATE_EVENT" >> "%s"\n' % out)
    hook.chmod(0o755)
    sub = free_port()
    extra = ('listen submission { address = "127.0.0.1:%d" role = "submission" '
             'checks = {"quota"} }\nauth {\n  users = "%s"\n}\n' % (sub, users))
    gw = admin_gateway(gateway, tmp_path, tls=True, routes={"*": "smtp:[127.0.0.1]:%d"
                                                              % sink.port},
                       sections=extra + SUB_QUOTA % hook)
    gw.sub_port, gw.hook_out = sub, out
    return gw


def send_as(gw, login, sender, rcpts, subject):
    """One message through the submission port as login; smtplib raises on a refusal."""
    from test_submission import PASSWORDS, tls_ctx
    with smtplib.SMTP("127.0.0.1", gw.sub_port, timeout=10) as s:
        s.starttls(context=tls_ctx())
        s.login(login, PASSWORDS[login.lower()] if login.lower() in PASSWORDS
                else PASSWORDS[login])
        s.sendmail(sender, rcpts, make_message(subject, sender=sender))


@pytest.mark.usefixtures("store_backend")  # on LMDB, and on a shared Redis
def test_authenticated_quota(gateway, sink, tmp_path):
    gw = submission_gateway(gateway, sink, tmp_path)

    # alice is new: 2 messages a day; the 3rd refused at MAIL, naming the limit
    for i in range(2):
        send_as(gw, "alice@example.test", "alice@example.test", ["x%d@elsewhere.test" % i],
                "a%d" % i)
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        send_as(gw, "alice@example.test", "alice@example.test", ["y@elsewhere.test"], "a2")
    assert e.value.smtp_code == 450, e.value
    assert e.value.smtp_error.decode() == (
        "4.7.1 Sending quota exceeded: at most 2 messages per 24 hours, try again later")
    gw.wait_log(r"event=quota login=alice@example\.test kind=messages limit=2 window=86400 "
                r"count=3 action=tempfail")
    # the same account in other letters shares the counter; the 2nd refusal runs the hook
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        send_as(gw, "Alice@Example.TEST", "alice@example.test", ["y@elsewhere.test"], "a3")
    assert e.value.smtp_code == 450
    wait_until(lambda: gw.hook_out.exists() and gw.hook_out.read_text(), what="the hook ran")
    assert gw.hook_out.read_text() == "2 alice@example.test 2 quota\n"

    # bob's account is old: more than alice's 2 messages, until his recipients run out
    for i in range(3):
        send_as(gw, "bob", "bob@example.test", ["b%d@elsewhere.test" % i], "b%d" % i)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        send_as(gw, "bob", "bob@example.test", ["b3@elsewhere.test"], "b3")
    code, text = e.value.recipients["b3@elsewhere.test"]
    assert code == 450 and text.decode() == (
        "4.7.1 Sending quota exceeded: at most 3 recipients per 1 hour, try again later")
    sink.wait_for(5)

    # suspended: 550 5.7.13 at MAIL; resumed: back to the quota's answer
    assert gw.ctl("user", "suspend", "alice@example.test").returncode == 0
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        send_as(gw, "alice@example.test", "alice@example.test", ["y@elsewhere.test"], "s")
    assert e.value.smtp_code == 550
    assert e.value.smtp_error.decode() == (
        "5.7.13 Account suspended: sending is disabled, contact your provider")
    assert gw.admin.post("/api/users/resume", {"login": "alice@example.test"})["ok"] is True
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        send_as(gw, "alice@example.test", "alice@example.test", ["y@elsewhere.test"], "r")
    assert e.value.smtp_code == 450

    # the listing: usage against each window, the tier
    u = users(gw)
    assert u["alice@example.test"]["new"] is True and u["bob"]["new"] is False, u
    assert [(w["kind"], w["limit"], w["count"], w["exhausted"])
            for w in u["alice@example.test"]["windows"]] == [
        ("messages", 5, 2, False), ("messages", 2, 2, True), ("recipients", 3, 2, False)], u
    assert [(w["kind"], w["limit"], w["count"]) for w in u["bob"]["windows"]] == [
        ("messages", 5, 4), ("recipients", 3, 3)], u
    want = (r"quota refused messages\s+3\nquota refused recipients\s+1\n"
            r"suspended login refused\s+1\nlogins suspended\s+1\nlogins resumed\s+1\n")
    wait_until(lambda: re.search(want, gw.ctl("stats").stdout), what="the counts in stats")
