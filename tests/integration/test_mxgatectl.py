"""test_mxgatectl.py - every mxgatectl command against the real daemon with real
SMTP traffic: queue list (sort, totals, --json), show --body, hold/release/delete
by id, sender, domain and all (the hold survives a restart, and works without the
daemon), greylist and blocks, status, reload, stats and flood as JSON.

Run:  /usr/bin/python3 -m pytest tests/integration/test_mxgatectl.py
"""

import json
import re

from admin_env import admin_gateway
from checks_env import connect, refused, say_quit
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)
from conftest import make_message, smtp_queue, wait_until

SLOW = {"retry_min": 3600, "retry_max": 3600}


def routes_to(sink):
    t = "smtp:[127.0.0.1]:%d" % sink.port
    return {"example.test": t, "other.test": t, "*": t}


def waiting(gw):
    """Messages the daemon holds for a later try: deferred, or parked behind their
    unreachable destination (after its first failure, without an attempt each)."""
    r = gw.ctl("--json", "queue", "destinations")
    return sum(d["deferred"] + d["parked"] for d in json.loads(r.stdout)["destinations"])


def queued(gw, sink, specs):
    """Queue one message per (sender, rcpts, body) with the sink down; their ids."""
    ids = []
    for sender, rcpts, body in specs:
        qid = smtp_queue(gw.port, sender, rcpts, make_message("q", body=body))
        ids.append(qid)
        wait_until(lambda: waiting(gw) == len(ids), what="%s waits" % qid)
    return ids


def listed(gw, *args):
    r = gw.ctl("--json", "queue", "list", *args)
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def test_queue_list_show_and_actions(gateway, sink, tmp_path):
    gw = admin_gateway(gateway, tmp_path, queue=SLOW, routes=routes_to(sink),
                       domains=("example.test", "other.test"))
    sink.stop()
    big = (b"x" * 70 + b"\r\n") * 80
    a, b, c = queued(gw, sink, [
        ("alice@client.test", ["u1@example.test"], b"Hello.\r\n"),
        ("bob@client.test", ["u2@other.test", "u3@other.test"], big),
        ("alice@client.test", ["u4@example.test"], b".dot line\r\nbody \x01 end\r\n")])

    # list: oldest first, totals, and the other orders
    r = gw.ctl("queue", "list")
    assert r.returncode == 0, r
    ids = re.findall(r"^([0-9A-F]{16})  ", r.stdout, re.M)
    assert ids == [a, b, c], r.stdout
    assert re.search(r"^-- 3 message\(s\), 4 recipient\(s\) pending, \d+ octets, 0 held, "
                     r"oldest \d{4}-", r.stdout, re.M), r.stdout
    assert [m["id"] for m in listed(gw, "--sort", "size")["messages"]][0] == b
    assert [m["id"] for m in listed(gw, "--sort=recipients")["messages"]][0] == b
    assert [m["id"] for m in listed(gw, "--sort", "sender")["messages"]] == [a, c, b]
    assert gw.ctl("queue", "list", "--sort", "colour").returncode == 2
    j = listed(gw)
    assert j["total"] == {"messages": 3, "recipients": 4, "size": j["total"]["size"],
                          "held": 0, "corrupt": 0, "oldest": j["total"]["oldest"]}
    assert sorted((d["domain"], d["recipients"], d["messages"]) for d in j["domains"]) == [
        ("example.test", 2, 2), ("other.test", 2, 1)]
    assert j == gw.admin.json("/api/queue")

    # show --body: the whole message, dot-stuffing undone, controls escaped
    r = gw.ctl("queue", "show", c, "--body")
    assert r.returncode == 0, r
    assert "\n.dot line\n" in r.stdout and "body \\x01 end" in r.stdout, r.stdout
    assert "\x01" not in r.stdout
    r = gw.ctl("queue", "show", c)
    assert "dot line" not in r.stdout and "Subject: q" in r.stdout
    r = gw.ctl("queue", "show", c, "--json")
    assert json.loads(r.stdout)["recipients"][0]["address"] == "u4@example.test"

    # hold by sender: alice's two; a flush delivers only bob's
    r = gw.ctl("queue", "hold", "sender", "ALICE@client.test")
    assert r.returncode == 0 and r.stdout == "held 2 message(s)\n", r
    assert [m["held"] for m in listed(gw)["messages"]] == [True, False, True]
    sink.start()
    assert gw.ctl("queue", "flush").returncode == 0
    sink.wait_for(1)
    assert sorted(sink.messages[0].rcpt_tos) == ["u2@other.test", "u3@other.test"]
    wait_until(lambda: [m["id"] for m in listed(gw)["messages"]] == [a, c], what="b gone")

    # held across a restart (and a flush after it)
    gw.restart()
    assert gw.ctl("queue", "flush").returncode == 0
    sink.wait_quiet(1, 1.0)
    assert gw.admin.json("/api/status")["queue"]["held"] == 2
    # release by domain: a's recipient is at example.test, so is c's
    r = gw.ctl("queue", "release", "domain", "example.test")
    assert r.stdout == "released 2 message(s)\n", r
    sink.wait_for(3)
    wait_until(lambda: listed(gw)["messages"] == [], what="queue empty")
    r = gw.ctl("queue", "hold", "sender")
    assert r.returncode == 1 and "not a queue id" in r.stderr, r
    r = gw.ctl("queue", "release", a)
    assert r.returncode == 1 and "no such message" in r.stderr, r


def test_hold_without_daemon_and_delete(gateway, sink, tmp_path):
    """Held while mxgated is stopped: it starts with the message held. Delete by
    domain and by all."""
    gw = admin_gateway(gateway, tmp_path, queue=SLOW, routes=routes_to(sink),
                       domains=("example.test", "other.test"))
    sink.stop()
    a, b, c = queued(gw, sink, [("s@client.test", ["x@example.test"], b"1\r\n"),
                                ("s@client.test", ["y@other.test"], b"2\r\n"),
                                ("t@client.test", ["z@other.test"], b"3\r\n")])
    assert gw.stop() == 0
    r = gw.ctl("queue", "hold", a)
    assert r.returncode == 0 and r.stdout == "held %s\n" % a, r
    r = gw.ctl("status")
    assert r.returncode == 3 and r.stdout == "mxgated is not running\n", r
    sink.start()
    gw.start()
    gw.wait_log(r"event=delivered id=%s " % b)
    gw.wait_log(r"event=delivered id=%s " % c)
    sink.wait_quiet(2, 1.0)
    assert [(m["id"], m["held"]) for m in listed(gw)["messages"]] == [(a, True)]
    r = gw.ctl("queue", "delete", "all")
    assert r.returncode == 0 and r.stdout == "deleted 1 message(s)\n", r
    wait_until(lambda: listed(gw)["messages"] == [], what="deleted")
    assert not list((gw.dir / "spool" / "hold").iterdir()), "hold marker left behind"
    sink.wait_quiet(2, 0.5)


def test_greylist_blocks_status_reload(gateway, sink, dns_server, tmp_path):
    ip = "127.0.0.21"
    gw = admin_gateway(gateway, tmp_path, ["ratelimit", "greylist"],
                       "ratelimit {\n    interval = 600\n    connections = 1\n}\n"
                       "greylist {\n    delay = 600\n    ipv4_prefix = 32\n}\n",
                       dns=dns_server.address)
    refused(gw, ip, 451, "4.7.1", "Greylisted")
    r = gw.ctl("greylist", "list")
    assert r.returncode == 0, r
    assert re.search(r"^127\.0\.0\.21/32  <alice@client\.test> -> <bob@example\.test>  waiting  "
                     r"since=\d{4}-", r.stdout, re.M), r.stdout
    assert r.stdout.endswith("-- 2 triplet(s), 0 trusted network(s)\n"), r.stdout
    r = gw.ctl("greylist", "allow", ip, "alice@client.test", "bob@example.test")
    assert r.returncode == 0 and r.stdout == "allowed %s\n" % ip, r
    wait_until(lambda: "bob@example.test>  passed" in gw.ctl("greylist", "list").stdout,
               what="triplet passed")
    r = gw.ctl("greylist", "remove", ip)
    assert r.returncode == 0 and r.stdout == "removed 2 record(s) of %s\n" % ip, r
    wait_until(lambda: json.loads(gw.ctl("--json", "greylist", "list").stdout) ==
               {"triplets": [], "networks": [], "truncated": False}, what="greylist empty")
    r = gw.ctl("greylist", "allow", "no-such-thing")
    assert r.returncode == 1 and "not an address or network" in r.stderr, r

    c = connect(gw, ip)  # the second connection from ip in this window
    c.greeting.check(421, "4.7.0")
    c.close()
    r = gw.ctl("blocks", "list")
    assert re.search(r"^127\.0\.0\.21/32  ratelimit connections  2/1  blocked$", r.stdout,
                     re.M), r.stdout
    blocks = json.loads(gw.ctl("blocks", "list", "--json").stdout)
    assert blocks == gw.admin.json("/api/blocks")
    r = gw.ctl("blocks", "clear", ip)
    assert r.returncode == 0 and r.stdout == "cleared 1 record(s)\n", r
    c = connect(gw, ip)
    c.greeting.check(220)
    say_quit(c)

    r = gw.ctl("status")
    assert r.returncode == 0, r
    assert re.search(r"^listener:  mx 127\.0\.0\.1:%d$" % gw.port, r.stdout, re.M), r.stdout
    assert re.search(r"^admin:     http://127\.0\.0\.1:%d/$" % gw.admin.port, r.stdout, re.M)
    assert re.search(r"^queue:     0 messages", r.stdout, re.M), r.stdout
    assert re.search(r"^store:     lmdb:\S+ ok$", r.stdout, re.M), r.stdout
    st = json.loads(gw.ctl("status", "--json").stdout)
    assert st["listeners"] == [{"name": "mx", "address": "127.0.0.1:%d" % gw.port}]
    assert st["sessions"] == 0 and st["store"]["ok"] is True
    mark = gw.log_mark()
    r = gw.ctl("reload")
    assert r.returncode == 0 and r.stdout == "reload requested\n", r
    gw.wait_log(r"event=reload via=control", since=mark)
    gw.wait_log(r"event=reload status=done ", since=mark)  # what SIGHUP does
    assert gw.running

    flood = json.loads(gw.ctl("flood", "--json").stdout)
    assert flood == gw.admin.json("/api/flood") and flood["state"] == "normal"
    # statistics are written in batches: poll
    stats = wait_until(lambda: (lambda st: st if st["connections"] == 4 else None)(
        json.loads(gw.ctl("--json", "stats").stdout)), what="4 connections in stats")
    assert sorted((m["name"], m["stopped"]) for m in stats["mechanisms"]) == [
        ("greylist", 1), ("ratelimit", 1)], stats
