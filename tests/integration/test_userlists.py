"""test_userlists.py - per-user allow and deny lists (the userlists check) with
the real greylist and store.

What a user sees: a recipient's allow lets the sender past the greylist for
that recipient only (another recipient in the same transaction is still
greylisted), logged as event=allowed_by_user ... overrode=greylist; a deny
answers 550 5.7.1 at RCPT; entries in the store added, shown and removed with
mxgatectl list, files per recipient domain under userlists { dir }.
"""

import json
import subprocess

import pytest

from checks_env import checks_gateway, reject_line, wait_stats
from conftest import MXGATED, RawClient

LIST = (
    "# per-user lists of example.test\n"
    "bob@example.test allow alice@client.test\n"
    "Carol@Example.TEST deny @Client.Test   # canonical: case does not matter\n"
    "@example.test deny spammer@bad.test\n"
)
GREYLIST = "greylist { delay = 3600 only_suspicious = false }\n"


def ul_gateway(gateway, text: str = LIST, extra: str = ""):
    gw = gateway(start=False)
    d = gw.dir / "userlists"
    d.mkdir()
    (d / "example.test").write_text(text)
    return checks_gateway(gateway, ["userlists", "greylist"],
                          sections='userlists { dir = "%s" }\n' % d + GREYLIST + extra)


def session(gw, sender, rcpts):
    c = RawClient(gw.port)
    c.greeting.check(220)
    c.ehlo()
    c.cmd("MAIL FROM:<%s>" % sender).check(250)
    return c, [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]


def test_allow_skips_greylist_for_that_recipient_only(gateway, sink):
    gw = ul_gateway(gateway)
    c, (bob, dave) = session(gw, "alice@client.test", ["bob@example.test", "dave@example.test"])
    bob.check(250, "2.1.5")
    dave.check(451, "4.7.1", "Greylisted")
    c.cmd("DATA").check(354)
    c.send(b"Subject: hi\r\n\r\nHello.\r\n.\r\n")
    c.read_reply().check(250, "2.0.0")
    c.cmd("QUIT")
    c.close()
    got = sink.wait_for(1)[0]
    assert got.rcpt_tos == ["bob@example.test"]
    line = gw.wait_log(r"event=allowed_by_user client=127\.0\.0\.1 stage=rcpt "
                       r"from=<alice@client\.test> rcpt=<bob@example\.test> overrode=greylist "
                       r"decision=\"451 4\.7\.1\" reason=.*$").group(0)
    assert "dave" not in line
    reject_line(gw, "127.0.0.1", 451, "4.7.1", "greylist")
    wait_stats(gw, verdicts={"userlists.allow": 1, "userlists.override": 1,
                             "greylist.tempfail": 1})


def test_deny_refuses_at_rcpt(gateway, sink):
    gw = ul_gateway(gateway)
    c, (carol, bob) = session(gw, "Someone@CLIENT.test", ["carol@example.test",
                                                          "bob@example.test"])
    carol.check(550, "5.7.1", "<carol@example.test>: Sender address rejected by the recipient")
    bob.check(451, "4.7.1")  # not allowed: this sender is not alice
    c.close()
    line = reject_line(gw, "127.0.0.1", 550, "5.7.1", "userlists")
    assert 'reason="deny carol@example.test|@client.test (file)"' in line, line
    # the domain-wide entry: every user of example.test refuses spammer@bad.test
    c, (r,) = session(gw, "spammer@bad.test", ["anyone@example.test"])
    r.check(550, "5.7.1")
    c.close()


def test_store_entries_with_mxgatectl(gateway, sink):
    gw = ul_gateway(gateway)
    r = gw.ctl("list", "add", "Dave@example.test", "allow", "@CLIENT.test")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "added: Dave@example.test allow @CLIENT.test"
    r = gw.ctl("list", "show", "dave@example.test")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "dave@example.test  allow  @client.test\n"
    r = gw.ctl("--json", "list", "show", "dave@example.test")
    assert json.loads(r.stdout) == {"entries": [{"recipient": "dave@example.test",
                                                 "list": "allow", "sender": "@client.test"}]}
    r = gw.ctl("list", "show", "bob@example.test")
    assert r.stdout == "bob@example.test  allow  alice@client.test  (file)\n"

    c, (dave, eve) = session(gw, "x@client.test", ["dave@example.test", "eve@example.test"])
    dave.check(250)
    eve.check(451, "4.7.1")
    c.close()
    gw.wait_log(r"event=allowed_by_user .*rcpt=<dave@example\.test> overrode=greylist")

    r = gw.ctl("list", "add", "dave@example.test", "deny", "x@client.test")
    assert r.returncode == 0, r.stderr
    c, (dave,) = session(gw, "x@client.test", ["dave@example.test"])
    dave.check(550, "5.7.1")  # the address is more specific than the domain
    c.close()

    r = gw.ctl("list", "remove", "dave@example.test", "x@client.test")
    assert r.stdout.strip() == "removed: dave@example.test x@client.test"
    r = gw.ctl("list", "remove", "dave@example.test", "allow", "@client.test")
    assert r.returncode == 0, r.stderr
    r = gw.ctl("list", "remove", "dave@example.test", "@client.test")
    assert r.stdout.strip() == "not listed: dave@example.test @client.test"
    assert gw.ctl("list", "show", "dave@example.test").stdout == ""
    c, (dave,) = session(gw, "x@client.test", ["dave@example.test"])
    dave.check(451, "4.7.1")
    c.close()
    r = gw.ctl("list", "add", "dave@example.test", "maybe", "x@client.test")
    assert r.returncode == 2
    r = gw.ctl("list", "add", "not-an-address", "allow", "x@client.test")
    assert r.returncode == 1 and "not a recipient address or @domain" in r.stderr


def test_bad_list_file_refused_by_config_check(gateway):
    gw = gateway(start=False)
    d = gw.dir / "userlists"
    d.mkdir()
    (d / "example.test").write_text("bob@example.test allow alice@client.test\n"
                                    "bob@other.test allow alice@client.test\n")
    text = gw.config.read_text() + 'userlists { dir = "%s" }\n' % d
    text = text.replace('listen mx { address = "127.0.0.1:%d"' % gw.port,
                        'listen mx { address = "127.0.0.1:%d" checks = {"userlists"}' % gw.port)
    gw.config.write_text(text)
    r = subprocess.run([MXGATED, "-n", "-c", str(gw.config)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "example.test:2: recipient of another domain than the file's" in r.stdout + r.stderr


@pytest.mark.usefixtures("store_backend")  # on Redis the listing runs on the admin's thread
def test_admin_api(gateway, sink, tmp_path):
    from admin_env import admin_gateway
    gw = admin_gateway(gateway, tmp_path, checks=["userlists", "greylist"], sections=GREYLIST)
    gw.admin.post("/api/lists/add", {"user": "eve@example.test", "list": "deny",
                                     "sender": "x@client.test"}, token=None, expect=401)
    assert gw.admin.post("/api/lists/add", {"user": "eve@example.test", "list": "deny",
                                            "sender": "X@Client.test"}) == {"ok": True, "count": 1}
    gw.admin.post("/api/lists/add", {"user": "eve@example.test", "list": "never",
                                     "sender": "x@client.test"}, expect=400)
    assert gw.admin.json("/api/lists?user=eve@example.test") == {"entries": [
        {"recipient": "eve@example.test", "list": "deny", "sender": "x@client.test"}]}
    assert gw.admin.json("/api/lists") == gw.admin.json("/api/lists?user=eve@example.test")
    assert gw.admin.json("/api/lists?user=bob@example.test") == {"entries": []}
    for bad in ("", "x" * 400, "not%20an%20address"):
        code, _, body = gw.admin.get("/api/lists?user=" + bad)
        assert code == 400 and b"user is user@domain or @domain" in body, (bad, code, body)
    c, (eve,) = session(gw, "x@client.test", ["eve@example.test"])
    eve.check(550, "5.7.1")
    c.close()
    assert gw.admin.post("/api/lists/remove", {"user": "eve@example.test",
                                               "sender": "x@client.test"}) == {"ok": True,
                                                                               "count": 1}
    assert gw.admin.json("/api/lists?user=eve@example.test") == {"entries": []}
