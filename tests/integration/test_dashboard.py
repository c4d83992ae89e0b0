"""test_dashboard.py - the dashboard mxgated serves, in headless Chromium: it loads
with no console error (no CSP violation, no failed fetch, no exception) and shows
the numbers the API returns: the statistics table of today and of a period, the
refusals chart's mechanisms, the queue by destination, blocks and flood state. The
screenshot stays in the test's tmp dir (its path is printed).

Run:  /usr/bin/python3 -m pytest -s tests/integration/test_dashboard.py
"""

import json

import pytest

from admin_env import admin_gateway
from checks_env import connect, refused, say_quit
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)
from conftest import make_message, smtp_queue, wait_until

cdp = pytest.importorskip("cdp")

ROWS = """JSON.stringify(Array.from(document.querySelectorAll('%s tbody tr')).map(
    tr => [tr.dataset.key || tr.dataset.domain || '',
           Array.from(tr.cells).map(td => td.textContent)]))"""


def rows(browser, table):
    return json.loads(browser.evaluate(ROWS % table))


def test_dashboard_shows_what_the_api_says(gateway, sink, dns_server, tmp_path):
    gw = admin_gateway(gateway, tmp_path, ["ratelimit", "greylist"],
                       "ratelimit {\n    interval = 600\n    connections = 1\n}\n"
                       "greylist {\n    delay = 600\n}\n", dns=dns_server.address,
                       queue={"retry_min": 3600, "retry_max": 3600},
                       routes={"example.test": "smtp:[127.0.0.1]:%d" % sink.port,
                               "*": "smtp:[127.0.0.1]:%d" % sink.port},
                       domains=("example.test", "other.test"))
    refused(gw, "127.0.0.31", 451, "4.7.1", "Greylisted")
    refused(gw, "127.0.0.32", 451, "4.7.1", "Greylisted")
    c = connect(gw, "127.0.0.31")
    c.greeting.check(421, "4.7.0")  # rate-limited: a refusal by ratelimit, and a block
    c.close()
    sink.stop()  # two messages wait in the queue, from clients the operator let through
    gw.admin.post("/api/greylist/allow", {"network": "127.0.0.0/24"})
    for n, (ip, rcpts) in enumerate((("127.0.0.41", ["a@other.test", "b@other.test"]),
                                     ("127.0.0.42", ["c@example.test"]))):
        smtp_queue(gw.port, "s@client.test", rcpts, make_message("waits"), source=ip)
        # deferred, or parked behind the unreachable next hop (no attempt of its own)
        wait_until(lambda: sum(d["deferred"] + d["parked"]
                               for d in gw.admin.json("/api/destinations")) == n + 1,
                   what="message %d waits" % (n + 1))
    wait_until(lambda: gw.admin.json("/api/stats?from=today&to=today")["refused"] == 3,
               what="three refusals in the statistics")

    browser = cdp.Browser(tmp_path)
    try:
        browser.navigate(gw.admin.base + "/")
        browser.wait_for("document.body?.dataset.loaded === '1' && "
                         "!!document.getElementById('table-period')?.dataset.period")
        today = gw.admin.json("/api/stats?from=today&to=today")
        shown = dict((k, cells) for k, cells in rows(browser, "#table-today"))
        assert shown["connections"][1] == str(today["connections"]), shown
        assert shown["accepted"][1] == str(today["accepted"])
        assert shown["refused"][1:] == [str(today["refused"]), "%.1f%%" %
                                        today["refused_percent"]], shown
        for m in today["mechanisms"]:
            assert shown["stopped." + m["name"]] == [m["name"], str(m["stopped"]),
                                                     "%.1f%%" % m["percent"]], shown
        assert {"stopped.greylist", "stopped.ratelimit"} <= set(shown), shown
        period = dict((k, cells) for k, cells in rows(browser, "#table-period"))
        assert period["connections"][1] == str(today["connections"]), period

        series = json.loads(browser.evaluate(
            "JSON.stringify(document.getElementById('chart').dataset.mechanisms.split(','))"))
        assert series == ["greylist", "ratelimit"], series
        legend = browser.evaluate("document.getElementById('legend').textContent")
        assert "greylist" in legend and "ratelimit" in legend

        q = gw.admin.json("/api/queue")
        shown_q = sorted(cells for _, cells in rows(browser, "#queue"))
        assert shown_q == sorted([d["domain"], str(d["recipients"]), str(d["messages"])]
                                 for d in q["domains"]), shown_q
        assert shown_q == [["example.test", "1", "1"], ["other.test", "2", "1"]]

        blocks = [cells for _, cells in rows(browser, "#blocks")]
        assert ["127.0.0.31/32", "rate limit (connections)", "2/1"] in blocks, blocks
        assert browser.evaluate("document.getElementById('flood').dataset.state") == "normal"
        status = browser.evaluate("document.getElementById('status').textContent")
        assert status.startswith("up since ") and "queue 2" in status, status
        shot = browser.screenshot(tmp_path / "dashboard.png")
        print("dashboard screenshot: %s" % shot)
        assert shot.stat().st_size > 10000
        assert browser.errors == [], browser.errors
    finally:
        browser.close()
