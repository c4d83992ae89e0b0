"""test_admin_http.py - the admin listener against real SMTP traffic: /metrics
(checked with promtool), the JSON API (the same numbers as mxgatectl), the actions
that need the token, and what the listener refuses.

Run:  /usr/bin/python3 -m pytest tests/integration/test_admin_http.py
"""

import json
import re
import shutil
import subprocess
import time

import pytest

from admin_env import admin_gateway
from checks_env import accepted, connect, refused, say_quit, wait_stats
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)
from conftest import make_message, smtp_queue, wait_until

GREYLIST = ("greylist {\n    delay = 1\n    retry_window = 3600\n    pass_ttl = 86400\n"
            "    only_suspicious = false\n}\n")
SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


def samples(text: str):
    """{"name{labels}": value} of every sample line of a Prometheus exposition."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing (apt-get install prometheus; scripts/deps.sh)"
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, "promtool check metrics: %s%s\n%s" % (r.stdout, r.stderr, text)


def test_metrics_and_stats_after_smtp_traffic(gateway, sink, dns_server, tmp_path):
    """A greylisted session then an accepted, delivered message: /metrics passes
    promtool and counts them; /api/stats is `mxgatectl --json stats` and the table."""
    ip = "127.0.0.19"
    gw = admin_gateway(gateway, tmp_path, ["greylist"], GREYLIST, dns=dns_server.address)
    refused(gw, ip, 451, "4.7.1", "Greylisted")
    time.sleep(1.2)
    qid = accepted(gw, ip)
    sink.wait_for(1)
    gw.wait_log(r"event=delivered id=%s " % qid)
    # probe + 2 sessions; the refused one sent two RCPTs
    wait_stats(gw, connections=3, accepted=1, stopped={"greylist": 1},
               verdicts={"greylist.tempfail": 2})

    code, headers, body = gw.admin.get("/metrics")
    assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    promtool_check(text)
    m = samples(text)
    assert m["mxgate_connections_total"] == 3, text
    assert m["mxgate_messages_accepted_total"] == 1
    assert m["mxgate_connections_refused_total"] == 1
    assert m['mxgate_refusals_total{mechanism="greylist"}'] == 1
    assert m['mxgate_verdicts_total{mechanism="greylist",verdict="tempfail"}'] == 2
    assert m["mxgate_recipients_delivered_total"] == 1
    assert m["mxgate_recipients_deferred_total"] == 0
    assert m["mxgate_recipients_bounced_total"] == 0
    assert m["mxgate_delivery_latency_seconds_count"] == 1
    assert m['mxgate_delivery_latency_seconds_bucket{le="+Inf"}'] == 1
    assert m["mxgate_smtp_session_duration_seconds_count"] == 3
    assert m["mxgate_smtp_session_duration_seconds_sum"] > 0
    assert m["mxgate_queue_messages"] == 0 and m["mxgate_queue_oldest_age_seconds"] == 0
    assert m["mxgate_dns_lookups_total"] >= 2  # FCrDNS of each session's client
    assert m["mxgate_dns_timeouts_total"] == 0 and m["mxgate_store_errors_total"] == 0

    api = gw.admin.json("/api/stats?from=today&to=today")
    r = gw.ctl("--json", "stats", "today", "today")
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == api
    assert api["connections"] == 3 and api["accepted"] == 1 and api["refused"] == 1
    assert api["mechanisms"] == [{"name": "greylist", "stopped": 1, "percent": 33.3}], api
    assert {"name": "greylist.tempfail", "count": 2} in api["verdicts"], api
    series = gw.admin.json("/api/stats/series?from=today&to=today")
    hour = int(time.time()) // 3600 * 3600
    assert [h for h in series["hours"] if h["t"] == hour] == [
        {"t": hour, "connections": 3, "stopped": {"greylist": 1}}], series

    grey = gw.admin.json("/api/greylist")
    assert {"network": "127.0.0.0/24", "sender": "alice@client.test",
            "recipient": "bob@example.test", "state": "passed"}.items() <= \
        [t for t in grey["triplets"] if t["recipient"] == "bob@example.test"][0].items(), grey
    r = gw.ctl("--json", "greylist", "list")
    assert json.loads(r.stdout) == grey


def test_actions_need_the_token(gateway, sink, tmp_path):
    """POST without a token: 401 with WWW-Authenticate; a wrong one: 403; nothing
    changes; the right one: done. GET never changes anything."""
    gw = admin_gateway(gateway, tmp_path, queue={"retry_min": 3600, "retry_max": 3600})
    sink.stop()
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], make_message("held"))
    gw.wait_log(r"event=deferred id=%s " % qid)

    code, headers, body = gw.admin.request("POST", "/api/queue/hold", {"id": qid})
    assert code == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer"), body
    assert json.loads(body) == {"error": "authorization required"}
    gw.admin.post("/api/queue/hold", {"id": qid}, token="x" * 40, expect=403)
    gw.admin.post("/api/queue/hold", {"id": qid}, token=gw.admin.token + "x", expect=403)
    gw.admin.post("/api/queue/hold", {"id": qid}, token=gw.admin.token[:-1], expect=403)
    assert gw.admin.json("/api/status")["queue"]["held"] == 0
    assert gw.admin.get("/api/queue/hold?id=" + qid)[0] == 404  # GET is no action
    assert gw.admin.json("/api/status")["queue"]["held"] == 0

    assert gw.admin.post("/api/queue/hold", {"id": qid}) == {"ok": True, "count": 1}
    assert gw.admin.json("/api/status")["queue"]["held"] == 1
    q = gw.admin.json("/api/queue")
    assert [(m["id"], m["held"]) for m in q["messages"]] == [(qid, True)]
    assert re.search(r"^%s .* HELD$" % qid, gw.ctl("queue", "list").stdout, re.M)

    # held: a flush does not deliver it; a release does
    sink.start()
    assert gw.admin.post("/api/queue/flush")["ok"]
    sink.wait_quiet(0, 1.0)
    assert gw.admin.post("/api/queue/release", {"all": "1"}) == {"ok": True, "count": 1}
    sink.wait_for(1)
    wait_until(lambda: gw.admin.json("/api/queue")["total"]["messages"] == 0,
               what="queue empty")
    assert gw.admin.post("/api/queue/delete", {"id": qid}, expect=404) == {
        "error": "no such message"}
    assert len(gw.log_lines(r"event=admin action=hold via=http count=1")) == 1


def test_listener_refuses_what_it_should(gateway, sink, tmp_path):
    """Fixed routes only (no traversal, no files), bounded headers and bodies,
    idle connections closed after the timeout, Host names other than addresses,
    localhost and the configured ones refused."""
    gw = admin_gateway(gateway, tmp_path, timeout=1, hosts=["MX1.example.org"])
    a = gw.admin
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/index.html/..",
                 "/api/../metrics", "/dashboard.js/x", "/api/nothing", "/etc/passwd"):
        out = a.raw(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 404 "), (path, out[:200])
        assert b"root:" not in out
    out = a.raw(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert re.match(rb"HTTP/1\.1 4\d\d ", out) or out == b"", out[:200]
    out = a.raw(b"POST /api/queue/flush HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
                b"Authorization: Bearer " + a.token.encode() + b"\r\n\r\n" + b"a=" * 5000)
    assert re.match(rb"HTTP/1\.1 413 ", out), out[:200]
    out = a.raw(b"PUT /api/queue/flush HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert re.match(rb"HTTP/1\.1 (405|501) ", out), out[:200]
    t0 = time.monotonic()
    out = a.raw(b"GET /metr", timeout=10)  # and then nothing
    assert time.monotonic() - t0 < 5, "an idle request was kept open"
    code, headers, _ = a.get("/")
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    # DNS rebinding: a page whose name points at the listener is refused
    for host, code in ((b"evil.example", 403), (b"evil.example:%d" % a.port, 403),
                       (b"localhost:%d" % a.port, 200), (b"[::1]:%d" % a.port, 200),
                       (b"127.0.0.1", 200), (b"mx1.example.org:%d" % a.port, 200)):
        out = a.raw(b"GET /api/status HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 %d " % code), (host, out[:300])
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    # still serving
    assert a.json("/api/status")["listeners"] == [{"name": "mx",
                                                    "address": "127.0.0.1:%d" % gw.port}]


def test_json_escapes_outside_data(gateway, sink, tmp_path):
    """A next hop's reply with quotes, markup and control characters: the relay client
    already turned the control characters into '?'; the API escapes the quotes and
    the markup (tests/unit/core/test_json.c covers the control characters)."""
    gw = admin_gateway(gateway, tmp_path, queue={"retry_min": 3600, "retry_max": 3600})
    sink.set_rule("b@example.test", '451 4.3.0 "quoted" \x1b[31mred\x07 </script>')
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], make_message("escape"))
    gw.wait_log(r"event=deferred id=%s " % qid)
    code, _, body = gw.admin.get("/api/queue?id=" + qid)
    assert code == 200
    assert b"\x1b" not in body and b"\x07" not in body and b"</script>" not in body, body
    assert b'\\"quoted\\" ?[31mred? \\u003c/script\\u003e' in body, body
    last = json.loads(body)["messages"][0]["recipients"][0]["last"]
    assert last == '4.3.0 "quoted" ?[31mred? </script>', last
    r = gw.ctl("queue", "list")
    assert "\x1b" not in r.stdout and '(4.3.0 "quoted" ?[31mred? </script>)' in r.stdout, r.stdout
    r = gw.ctl("--json", "queue", "list")
    assert json.loads(r.stdout)["messages"][0]["recipients"][0]["last"] == last


def test_blocks_and_greylist_actions(gateway, sink, dns_server, tmp_path):
    """A rate-limited client shows in /api/blocks until POST /api/blocks/clear;
    POST /api/greylist/allow lets a new network through at once."""
    ip = "127.0.0.23"
    gw = admin_gateway(gateway, tmp_path, ["ratelimit", "greylist"],
                       "ratelimit {\n    interval = 600\n    connections = 1\n}\n" + GREYLIST,
                       dns=dns_server.address)
    c = connect(gw, ip)
    c.greeting.check(220)
    say_quit(c)
    c = connect(gw, ip)
    c.greeting.check(421, "4.7.0")
    c.close()
    blocks = gw.admin.json("/api/blocks")
    assert {"kind": "connections", "network": ip + "/32", "count": 2, "limit": 1,
            "over": True} in blocks["ratelimit"], blocks
    assert gw.admin.post("/api/blocks/clear", {"client": ip}) == {"ok": True, "count": 1}
    wait_until(lambda: [b for b in gw.admin.json("/api/blocks")["ratelimit"]
                        if b["network"] == ip + "/32"] == [], what="cleared")
    c = connect(gw, ip)
    c.greeting.check(220)  # the limit counts again from zero
    say_quit(c)
    # greylisted at first; allowed by the operator, the network passes at once
    assert gw.admin.post("/api/greylist/allow", {"network": ip})["ok"]  # its /24
    wait_until(lambda: {"network": "127.0.0.0/24"}.items() <=
               (gw.admin.json("/api/greylist")["networks"] or [{}])[0].items(),
               what="allowed network listed")
    accepted(gw, "127.0.0.24")  # same /24, never seen: not greylisted
    sink.wait_for(1)
    # a listing returns at most ?limit= records of each kind (default 1000) and says
    # when there were more: the scan runs on the daemon's loop
    for net in ("192.0.2.1", "198.51.100.1"):
        assert gw.admin.post("/api/greylist/allow", {"network": net})["ok"]
    wait_until(lambda: len(gw.admin.json("/api/greylist")["networks"]) == 3,
               what="three networks listed")
    assert gw.admin.json("/api/greylist")["truncated"] is False
    one = gw.admin.json("/api/greylist?limit=1")
    assert (len(one["networks"]), one["truncated"]) == (1, True), one
    assert one["networks"][0] == gw.admin.json("/api/greylist")["networks"][0]
    assert len(gw.admin.json("/api/greylist?limit=3")["networks"]) == 3
    assert gw.admin.json("/api/greylist?limit=3")["truncated"] is False
    full, few = gw.admin.json("/api/blocks"), gw.admin.json("/api/blocks?limit=1")
    assert full["truncated"] is False and full["ratelimit"], full
    assert few["ratelimit"] == full["ratelimit"][:1], (few, full)
    assert few["truncated"] is (len(full["ratelimit"]) > 1 or len(full["harvest"]) > 1), few
    for bad in ("0", "x", "100001", "-1", ""):
        code, _, body = gw.admin.get("/api/greylist?limit=" + bad)
        assert code == 400 and b"limit is a number from 1 to 100000" in body, (bad, code, body)
    for net in (ip, "192.0.2.1", "198.51.100.1"):
        assert gw.admin.post("/api/greylist/remove", {"network": net})["count"] >= 1
    wait_until(lambda: gw.admin.json("/api/greylist") ==
               {"triplets": [], "networks": [], "truncated": False},
               what="greylist records removed")
    gw.admin.post("/api/greylist/allow", {"network": "not-an-address"}, expect=400)


def test_check_reports_admin_errors(gateway, tmp_path):
    """mxgated -n says what the start would refuse in the admin section, as FILE:LINE."""
    from conftest import MXGATED
    short = tmp_path / "short.token"
    short.write_text("too-short\n")
    gw = gateway(start=False, extra='admin {\n    address = "127.0.0.1:99999"\n}\n'
                 'admin {\n    address = "127.0.0.1:8025"\n    token_file = "%s"\n}\n' % short)
    r = subprocess.run([MXGATED, "-n", "-c", str(gw.config)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "admin: bad address \"127.0.0.1:99999\"" in r.stderr, r.stderr
    gw.config.write_text(gw.config.read_text().replace('admin {\n    address = "127.0.0.1:99999"\n}\n', ""))
    r = subprocess.run([MXGATED, "-n", "-c", str(gw.config)], capture_output=True, text=True)
    assert r.returncode == 1
    assert re.search(r"mxgate\.conf:\d+: admin token_file \S+short\.token: the token must be 16 "
                     r"to 1024 characters", r.stderr), r.stderr
