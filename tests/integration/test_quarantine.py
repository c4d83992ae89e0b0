"""test_quarantine.py - messages a check keeps back: accepted (250, durable),
kept in spool/quarantine/, never delivered until released; listed, shown,
released (delivered exactly once) and deleted with mxgatectl quarantine.

The check that asks is clamd with action = "quarantine" against a real clamd
(clamd_env.py); what a user sees: the 250 reply with the queue id, nothing at
the internal server, the event=quarantined line with the reason, the listing,
the message at the internal server once after the release, and nothing left
after a delete.
"""

import json

import pytest

from checks_env import checks_gateway, wait_stats
from clamd_env import EICAR, SIGNATURE, Clamd, clamd_section
from conftest import make_message, queue_id, smtp_send


@pytest.fixture(scope="module")
def clamd(tmp_path_factory):
    c = Clamd(tmp_path_factory.mktemp("clamd")).start()
    yield c
    c.stop()


def keep(gw, subject: str = "invoice") -> str:
    msg = make_message(subject, b"See below.\r\n" + EICAR + b"\r\n")
    code, text = smtp_send(gw.port, "alice@client.test", ["bob@example.test"], msg)
    assert code == 250, (code, text)
    qid = queue_id(text)
    gw.wait_log(r"event=quarantined sid=\S+ id=%s reason=\"clamd: virus %s\"$"
                % (qid, SIGNATURE.replace(".", r"\.")))
    return qid


def q_gateway(gateway, clamd):
    return checks_gateway(gateway, ["clamd"],
                          sections=clamd_section(clamd.socket, action="quarantine"))


def test_kept_listed_shown_released_once(gateway, sink, clamd):
    gw = q_gateway(gateway, clamd)
    qid = keep(gw)
    assert (gw.dir / "spool" / "quarantine" / qid).is_file()
    assert not (gw.dir / "spool" / "queue" / qid).exists()
    sink.wait_quiet(0, quiet=0.5)

    r = gw.ctl("quarantine", "list")
    assert r.returncode == 0, r.stderr
    assert qid in r.stdout and "reason=clamd: virus %s" % SIGNATURE in r.stdout
    assert "<alice@client.test>" in r.stdout and "  <bob@example.test>" in r.stdout
    assert "-- 1 message(s) in quarantine" in r.stdout
    r = gw.ctl("--json", "quarantine", "list")
    listing = json.loads(r.stdout)
    assert listing["total"] == 1
    assert listing["messages"][0]["id"] == qid
    assert listing["messages"][0]["reason"] == "clamd: virus %s" % SIGNATURE
    assert listing["messages"][0]["recipients"] == ["bob@example.test"]

    r = gw.ctl("quarantine", "show", qid)
    assert r.returncode == 0, r.stderr
    assert "reason: clamd: virus %s" % SIGNATURE in r.stdout
    assert "Subject: invoice" in r.stdout
    assert "EICAR-STANDARD" not in r.stdout  # the header only without --body
    r = gw.ctl("quarantine", "show", qid, "--body")
    assert EICAR.decode().replace("\\", "\\\\") in r.stdout  # ctl_put shows \\ for a backslash

    r = gw.ctl("quarantine", "release", qid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "released %s" % qid
    got = sink.wait_for(1)
    assert EICAR in got[0].content and got[0].rcpt_tos == ["bob@example.test"]
    gw.wait_log(r"event=quarantine action=release id=%s via=control" % qid)
    # a second release finds nothing: delivered exactly once
    r = gw.ctl("quarantine", "release", qid)
    assert r.returncode == 1
    assert "no such message in quarantine" in r.stderr
    sink.wait_quiet(1, quiet=1.0)
    assert gw.ctl("quarantine", "list").stdout.strip() == "quarantine is empty"
    wait_stats(gw, verdicts={"quarantine.kept": 1, "clamd.virus": 1})


def test_deleted(gateway, sink, clamd):
    gw = q_gateway(gateway, clamd)
    qid = keep(gw)
    r = gw.ctl("quarantine", "delete", qid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "deleted %s" % qid
    assert not (gw.dir / "spool" / "quarantine" / qid).exists()
    assert not (gw.dir / "spool" / "quarantine" / (qid + ".why")).exists()
    r = gw.ctl("quarantine", "show", qid)
    assert r.returncode == 1 and "no such message in quarantine" in r.stderr
    sink.wait_quiet(0, quiet=0.5)


def test_kept_over_restart_and_released_without_daemon(gateway, sink, clamd):
    """A restart delivers nothing kept; a release while mxgated is down is
    delivered when it starts."""
    gw = q_gateway(gateway, clamd)
    qid = keep(gw)
    gw.restart()
    sink.wait_quiet(0, quiet=1.0)
    gw.stop()
    r = gw.ctl("quarantine", "release", qid)
    assert r.returncode == 0, r.stderr
    assert (gw.dir / "spool" / "queue" / qid).is_file()
    gw.start()
    sink.wait_for(1)
    sink.wait_quiet(1, quiet=0.5)


def test_bad_id_refused(gateway, clamd):
    gw = q_gateway(gateway, clamd)
    r = gw.ctl("quarantine", "release", "../../etc/passwd")
    assert r.returncode == 1 and "not a queue id" in r.stderr


def test_expired_after_max_age(gateway, sink, clamd):
    import os
    import time
    gw = checks_gateway(gateway, ["clamd"],
                        sections=clamd_section(clamd.socket, action="quarantine")
                        + "quarantine { max_age = 3600 }\n")
    old, new = keep(gw, "old"), keep(gw, "new")
    path = gw.dir / "spool" / "quarantine" / old
    t = time.time() - 7200
    os.utime(path, (t, t))
    gw.restart()  # the sweep runs at start, then hourly
    gw.wait_log(r"event=quarantine action=expire count=1 max_age=3600")
    assert not path.exists() and not (gw.dir / "spool" / "quarantine" / (old + ".why")).exists()
    assert (gw.dir / "spool" / "quarantine" / new).is_file()
    sink.wait_quiet(0, quiet=0.3)


def test_admin_api(gateway, sink, clamd, tmp_path):
    from admin_env import admin_gateway
    gw = admin_gateway(gateway, tmp_path, checks=["clamd"],
                       sections=clamd_section(clamd.socket, action="quarantine"))
    a, b = keep(gw, "first"), keep(gw, "second")
    listing = gw.admin.json("/api/quarantine")
    assert sorted(m["id"] for m in listing["messages"]) == sorted([a, b])
    one = gw.admin.json("/api/quarantine?id=%s" % a)
    assert one["reason"] == "clamd: virus %s" % SIGNATURE and one["sender"] == "alice@client.test"
    assert gw.admin.get("/api/quarantine?id=0000000000000000")[0] == 404
    gw.admin.post("/api/quarantine/release", {"id": a}, token=None, expect=401)
    assert gw.admin.post("/api/quarantine/release", {"id": a}) == {"ok": True, "count": 1}
    gw.admin.post("/api/quarantine/release", {"id": a}, expect=404)
    assert gw.admin.post("/api/quarantine/delete", {"id": b}) == {"ok": True, "count": 1}
    got = sink.wait_for(1)
    assert b"Subject: first" in got[0].content
    sink.wait_quiet(1, quiet=0.5)
    assert gw.admin.json("/api/quarantine") == {"messages": [], "total": 0}
    gw.wait_log(r"event=quarantine action=delete id=%s via=http" % b)
