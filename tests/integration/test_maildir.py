"""Maildir routes: the delivery agent's own acceptance test runs at RCPT.

A local part no mailbox can have, an unknown mailbox (unless the route says
create = true) and a symlinked mailbox are refused during the session, never
accepted and bounced; mailbox names are canonical (case and quoting), and
delivery never follows a symbolic link.
"""

import os
import subprocess
from pathlib import Path

from conftest import MXGATED, RawClient, make_message, smtp_queue, wait_until


def files_in(d: Path):
    return sorted(d.glob("*")) if d.is_dir() else []


def tree(root: Path):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_bad_local_part_refused_at_rcpt(gateway, tmp_path):
    root = tmp_path / "mail"
    root.mkdir()
    gw = gateway(routes={"example.test": {"to": "maildir:%s" % root, "create": True}})
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@client.test>").check(250)
        c.cmd("RCPT TO:<a/b@example.test>").check(550, "5.1.3", "not a valid mailbox name")
        c.cmd('RCPT TO:<"../x"@example.test>').check(550, "5.1.3")
        c.cmd('RCPT TO:<".hidden"@example.test>').check(550, "5.1.3")
        c.cmd("RCPT TO:<ok@example.test>").check(250, "2.1.5")
    gw.wait_log(r"event=reject sid=\S+ client=127\.0\.0\.1 stage=rcpt code=550 status=5\.1\.3 "
                r"check=maildir reason=\"?maildir bad-local-part.* rcpt=\"?<a/b@example\.test>")
    assert tree(root) == [], tree(root)
    assert not gw.log_lines(r"event=bounced")


def test_case_and_quoting_are_one_mailbox(gateway, tmp_path):
    root = tmp_path / "mail"
    (root / "bob").mkdir(parents=True)
    gw = gateway(routes={"example.test": "maildir:%s" % root})
    for rcpt in ("bob@example.test", "BOB@example.test", '"Bob"@example.test'):
        smtp_queue(gw.port, "alice@client.test", [rcpt], make_message("to %s" % rcpt))
    new = root / "bob" / "new"
    wait_until(lambda: len(files_in(new)) == 3, what="three messages in %s" % new)
    assert sorted(p.name for p in root.iterdir()) == ["bob"], tree(root)
    heads = sorted(f.read_bytes().split(b"\n")[1] for f in files_in(new))
    assert heads == sorted([b"Delivered-To: bob@example.test", b"Delivered-To: BOB@example.test",
                            b'Delivered-To: "Bob"@example.test']), heads


def test_unknown_mailbox_without_create(gateway, tmp_path):
    root = tmp_path / "mail"
    (root / "bob").mkdir(parents=True)
    gw = gateway(routes={"example.test": "maildir:%s" % root})
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@client.test>").check(250)
        c.cmd("RCPT TO:<nobody@example.test>").check(550, "5.1.1", "User unknown")
        c.cmd("RCPT TO:<Bob@example.test>").check(250, "2.1.5")
    gw.wait_log(r"event=reject .* stage=rcpt code=550 status=5\.1\.1 check=maildir "
                r"reason=\"?maildir unknown-mailbox")
    assert not (root / "nobody").exists()


def test_unknown_mailbox_with_create(gateway, tmp_path):
    root = tmp_path / "mail"  # not even the root exists
    gw = gateway(routes={"example.test": {"to": "maildir:%s" % root, "create": True}})
    smtp_queue(gw.port, "alice@client.test", ["NewUser@example.test"], make_message("create"))
    new = root / "newuser" / "new"
    wait_until(lambda: len(files_in(new)) == 1, what="a message in %s" % new)


def test_symlinked_mailbox_never_followed(gateway, tmp_path):
    root = tmp_path / "mail"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "eve")
    gw = gateway(routes={"example.test": {"to": "maildir:%s" % root, "create": True}})
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@client.test>").check(250)
        c.cmd("RCPT TO:<eve@example.test>").check(550, "5.2.1", "mailbox unavailable")
    # a real mailbox whose new/ points elsewhere: the walk refuses it too
    (root / "amy").mkdir()
    os.symlink(outside, root / "amy" / "new")
    qid = smtp_queue(gw.port, "alice@client.test", ["amy@example.test"], make_message("link"))
    gw.wait_log(r"event=bounced id=%s rcpt=<amy@example\.test> relay=maildir:\S+ "
                r"reason=\"5\.2\.0 maildir: not a directory \(symlinks are not followed\)"
                % qid, timeout=10)
    assert list(outside.iterdir()) == [], list(outside.iterdir())


def test_example_configuration_checks(tmp_path, tls_files):
    """conf/mxgate.conf (make run) still loads: the Quick start's route (the
    certificate make run generates is stood in for by the test one)."""
    repo = Path(__file__).resolve().parents[2]
    cert, key = tls_files
    text = (repo / "conf" / "mxgate.conf").read_text()
    text = text.replace("var/tls/cert.pem", cert).replace("var/tls/key.pem", key)
    conf = tmp_path / "mxgate.conf"
    conf.write_text(text)
    r = subprocess.run([MXGATED, "-n", "-c", str(conf)], cwd=str(repo),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    run_sh = (repo / "scripts" / "run.sh").read_text()
    assert "var/mail/user" in run_sh, "make run must create the Quick start's mailbox"
