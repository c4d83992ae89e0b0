"""test_reload.py - SIGHUP re-reads the whole configuration under load.

Each test keeps a client thread sending mail through the gateway while the
configuration file is rewritten and SIGHUP sent, then checks that
  * no session was dropped: every command the load client sent got its
    reply, every message got 250;
  * no message was lost: every message that got 250 reached a sink;
  * the new setting applies to new sessions (a new domain is accepted, a
    removed check no longer refuses, a changed route delivers to the new
    sink, a new listener answers and a removed one refuses connections, a
    new certificate is presented), while a session opened before the reload
    finishes on the configuration it started with;
  * a broken configuration is refused as a whole, with the reason logged,
    and the old one keeps running.

Run:  /usr/bin/python3 -m pytest tests/integration/test_reload.py
"""

import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import List

import pytest

from checks_env import dns_server, dns_section  # noqa: F401 (fixture)
from conftest import (HOSTNAME, RawClient, client_tls_context, free_port, make_message,
                      queue_id, wait_until)

RELOAD_DONE = r"event=reload status=done generation=%d "


# ---------------------------------------------------------------------------
# the load
# ---------------------------------------------------------------------------
class Load(threading.Thread):
    """Sessions of two messages each, one after the other, until stopped. Every
    message carries a token in its Subject; `accepted` holds the tokens that
    got 250, `errors` everything that went wrong (a dropped session, a reply
    other than the expected one)."""

    def __init__(self, port: int, rcpt: str = "bob@example.test", source: str = "127.0.0.1"):
        super().__init__(daemon=True)
        self.port, self.rcpt, self.source = port, rcpt, source
        self.accepted: List[str] = []
        self.errors: List[str] = []
        self.sessions = 0
        self._stop_ev = threading.Event()

    def _session(self, n: int) -> None:
        with RawClient(self.port, source=self.source, timeout=10) as c:
            c.greeting.check(220)
            c.ehlo()
            for i in range(2):
                token = "load-%d-%d" % (n, i)
                c.cmd("MAIL FROM:<load@client.test>").check(250, "2.1.0")
                c.cmd("RCPT TO:<%s>" % self.rcpt).check(250, "2.1.5")
                c.cmd("DATA").check(354)
                time.sleep(0.02)  # the reload may come while the text is on its way
                c.send(make_message(token, to=self.rcpt) + b".\r\n")
                r = c.read_reply().check(250, "2.0.0")
                queue_id(r.text)
                self.accepted.append(token)
            c.cmd("QUIT").check(221)
        self.sessions += 1

    def run(self) -> None:
        n = 0
        while not self._stop_ev.is_set():
            try:
                self._session(n)
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                self.errors.append("session %d: %r" % (n, e))
            n += 1

    def finish(self, min_sessions: int = 3) -> List[str]:
        """Stop after at least min_sessions more sessions; assert none failed."""
        start = self.sessions
        wait_until(lambda: self.sessions >= start + min_sessions or self.errors, timeout=20,
                   what="%d more load sessions" % min_sessions)
        self._stop_ev.set()
        self.join(30)
        assert not self.is_alive(), "the load client hangs"
        assert not self.errors, "sessions failed under reload: %s" % self.errors
        assert self.accepted, "the load client got nothing through"
        return self.accepted


def tokens_at(*sinks) -> List[str]:
    out = []
    for s in sinks:
        for m in s.messages:
            found = re.search(rb"Subject: (load-\d+-\d+)\r\n", m.content)
            if found:
                out.append(found.group(1).decode())
    return out


def assert_all_delivered(accepted: List[str], *sinks) -> None:
    """Every message that got 250 reached a sink (once)."""
    def arrived():
        return set(accepted) <= set(tokens_at(*sinks))
    wait_until(arrived, timeout=20, what="every accepted message at the sinks")
    got = tokens_at(*sinks)
    dupes = sorted(t for t in set(got) if got.count(t) > 1)
    assert not dupes, "delivered twice: %s" % dupes


def reload(gw, generation: int, text: str = None) -> None:
    """Write text (if given) as the configuration, SIGHUP, wait for the generation."""
    if text is not None:
        gw.config.write_text(text)
    mark = gw.log_mark()
    os.kill(gw.proc.pid, signal.SIGHUP)
    gw.wait_log(RELOAD_DONE % generation, since=mark)


def rcpt_reply(port: int, rcpt: str, source: str = "127.0.0.1"):
    with RawClient(port, source=source) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@client.test>").check(250)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        c.cmd("QUIT")
        return r


def send_one(port: int, rcpt: str, subject: str, source: str = "127.0.0.1", **kw):
    with RawClient(port, source=source, **kw) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@client.test>").check(250)
        c.cmd("RCPT TO:<%s>" % rcpt).check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message(subject, to=rcpt) + b".\r\n")
        r = c.read_reply().check(250, "2.0.0")
        c.cmd("QUIT")
        return queue_id(r.text)


def refused_connection(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


# ---------------------------------------------------------------------------
# the settings, one kind at a time
# ---------------------------------------------------------------------------
def test_new_domain_under_load(gateway, sink):
    """A domain added with its route is accepted by new sessions; a session opened
    before the reload still has the old list (it finishes on its generation), and
    that generation is freed when the session, the last to hold it, ends."""
    gw = gateway(log_level="debug")
    r = rcpt_reply(gw.port, "carol@new.test")
    r.check(554, "5.7.1", "relay access denied")
    old = RawClient(gw.port)
    old.ehlo()
    load = Load(gw.port)
    load.start()
    wait_until(lambda: load.accepted, what="load running")
    text = gw.config.read_text()
    text = text.replace('domains = {"example.test"}', 'domains = {"example.test", "new.test"}')
    text += 'route "new.test" { to = "smtp:[127.0.0.1]:%d" }\n' % sink.port
    reload(gw, 2, text)
    send_one(gw.port, "carol@new.test", "to the new domain")
    old.cmd("MAIL FROM:<a@client.test>").check(250)
    old.cmd("RCPT TO:<carol@new.test>").check(554, "5.7.1")
    assert "event=generation_freed generation=1" not in gw.log_text()
    old.cmd("QUIT").check(221)
    old.close()
    gw.wait_log(r"event=generation_freed generation=1$")
    accepted = load.finish()
    assert_all_delivered(accepted, sink)
    wait_until(lambda: any(m.rcpt_tos == ["carol@new.test"] for m in sink.messages),
               what="the new domain's message at the sink")


def test_changed_route_under_load(gateway, sink, make_sink):
    """A route pointed at another server: new deliveries go there; nothing queued
    before or during the reload is lost or delivered twice."""
    other = make_sink()
    gw = gateway()
    load = Load(gw.port)
    load.start()
    wait_until(lambda: len(load.accepted) >= 4, what="load running")
    text = gw.config.read_text().replace("smtp:[127.0.0.1]:%d" % sink.port,
                                         "smtp:[127.0.0.1]:%d" % other.port)
    reload(gw, 2, text)
    mark = len(other.messages)
    send_one(gw.port, "bob@example.test", "after the route change")
    wait_until(lambda: any(b"Subject: after the route change" in m.content
                           for m in other.messages[mark:]), what="delivery to the new sink")
    accepted = load.finish()
    assert_all_delivered(accepted, sink, other)
    assert tokens_at(other), "no load message went to the new route"


def test_removed_check_under_load(gateway, sink, tmp_path, dns_server):  # noqa: F811
    """A listener's check taken out: the client it refused is accepted by the next
    session. Meanwhile a check's options changed (a new deny entry) apply too."""
    clients = tmp_path / "clients"
    clients.write_text("127.0.0.5 deny Denied by list\n")
    extra = 'access {\n    client = "%s"\n}\n' % clients + dns_section(dns_server.address)
    gw = gateway(checks=["access"], extra=extra)
    rcpt_reply(gw.port, "bob@example.test", source="127.0.0.5").check(554, "5.7.1",
                                                                      "denied by list")
    load = Load(gw.port)
    load.start()
    wait_until(lambda: load.accepted, what="load running")
    # an option of the check changes: a second address denied
    clients.write_text("127.0.0.5 deny Denied by list\n127.0.0.6 deny Also denied\n")
    reload(gw, 2)
    rcpt_reply(gw.port, "bob@example.test", source="127.0.0.6").check(554, "5.7.1",
                                                                      "also denied")
    # the check goes
    text = gw.config.read_text().replace(' checks = {"access"}', ' checks = {}')
    reload(gw, 3, text)
    rcpt_reply(gw.port, "bob@example.test", source="127.0.0.5").check(250, "2.1.5")
    accepted = load.finish()
    assert_all_delivered(accepted, sink)


def test_listeners_added_removed_moved(gateway, sink):
    """A new listener answers (with its own options: implicit TLS), a removed one
    refuses connections, a moved one answers on its new address only; the
    listener the load uses keeps its socket throughout."""
    gw = gateway(tls=True)
    extra_port, moved_from, moved_to = free_port(), free_port(), free_port()
    base = gw.config.read_text()
    load = Load(gw.port)
    load.start()
    wait_until(lambda: load.accepted, what="load running")

    reload(gw, 2, base + 'listen extra { address = "127.0.0.1:%d" tls = "implicit" }\n'
           'listen moving { address = "127.0.0.1:%d" }\n' % (extra_port, moved_from))
    gw.wait_log(r"event=listen listener=extra address=127\.0\.0\.1:%d" % extra_port)
    with RawClient(extra_port, implicit_tls=True) as c:
        c.greeting.check(220)
        assert isinstance(c.sock, ssl.SSLSocket)
        c.ehlo()
    RawClient(moved_from).greeting.check(220)

    reload(gw, 3, base + 'listen moving { address = "127.0.0.1:%d" }\n' % moved_to)
    assert refused_connection(extra_port), "the removed listener still accepts"
    assert refused_connection(moved_from), "the moved listener's old address still accepts"
    with RawClient(moved_to) as c:
        c.greeting.check(220)
        c.ehlo()
    gw.wait_log(r"event=listen_closed listener=extra address=127\.0\.0\.1:%d" % extra_port)
    send_one(moved_to, "bob@example.test", "through the moved listener")
    accepted = load.finish()
    assert_all_delivered(accepted, sink)


def _cert(tmp: Path, cn: str):
    cert, key = tmp / (cn + ".crt"), tmp / (cn + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)
    return cert, key


def _presented(port: int) -> str:  # noqa: D401
    """The subject CN of the certificate STARTTLS presents."""
    with RawClient(port) as c:
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        der = c.starttls().getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                         input=der, capture_output=True, check=True).stdout.decode()
    return out.strip()


def test_new_certificate(gateway, sink, tmp_path):
    """New certificate and key files named in the tls section: the next STARTTLS
    presents the new certificate; one unreadable key refuses the reload."""
    old_cert, old_key = _cert(tmp_path, "old.example.test")
    new_cert, new_key = _cert(tmp_path, "new.example.test")
    gw = gateway(start=False, tls=True)
    text = re.sub(r'certificate = "[^"]*"', 'certificate = "%s"' % old_cert,
                  gw.config.read_text())
    text = re.sub(r'key = "[^"]*"', 'key = "%s"' % old_key, text)
    gw.config.write_text(text)
    gw.start()
    assert "old.example.test" in _presented(gw.port)
    before = RawClient(gw.port)  # started on the old generation: keeps its certificate
    before.ehlo()
    load = Load(gw.port)
    load.start()
    wait_until(lambda: load.accepted, what="load running")
    reload(gw, 2, text.replace(str(old_cert), str(new_cert)).replace(str(old_key), str(new_key)))
    assert "new.example.test" in _presented(gw.port)
    before.cmd("STARTTLS").check(220)
    der = before.starttls().getpeercert(binary_form=True)
    before.close()
    assert der == ssl.PEM_cert_to_DER_cert(old_cert.read_text())
    # a key that does not match the certificate: refused, the new one stays
    mark = gw.log_mark()
    gw.config.write_text(text.replace(str(old_cert), str(new_cert)))
    os.kill(gw.proc.pid, signal.SIGHUP)
    gw.wait_log(r"event=reload status=refused error=.*tls", since=mark)
    assert "new.example.test" in _presented(gw.port)
    accepted = load.finish()
    assert_all_delivered(accepted, sink)


# ---------------------------------------------------------------------------
# refused as a whole
# ---------------------------------------------------------------------------
def test_broken_configuration_refused(gateway, sink):
    """Errors anywhere refuse the whole file: each is logged with its line, the
    old configuration keeps running (its domain, its listener), and nothing the
    broken file also changed applies. A later good file is taken."""
    gw = gateway()
    good = gw.config.read_text()
    load = Load(gw.port)
    load.start()
    wait_until(lambda: load.accepted, what="load running")
    broken = good.replace('domains = {"example.test"}', 'domains = {"example.test", "new.test"}')
    broken += 'route "new.test" { to = "smtp:[127.0.0.1]:%d" }\n' % sink.port
    broken += "limits { max_recipients = 0 }\nno_such_key = 1\n"
    mark = gw.log_mark()
    gw.config.write_text(broken)
    os.kill(gw.proc.pid, signal.SIGHUP)
    m = gw.wait_log(r"^.*event=reload status=refused error=.*action=.*$", since=mark)
    log = gw.log_text()[mark:]
    assert re.search(r'event=reload status=refused error=".*mxgate\.conf:\d+: .*no_such_key', log) \
        or re.search(r'event=reload status=refused error=".*mxgate\.conf:\d+: .*max_recipients',
                     log), log
    assert "event=reload status=done" not in log, m.group(0)
    rcpt_reply(gw.port, "carol@new.test").check(554, "5.7.1")  # the old domain list
    # a listener on a port in use: the bind fails, and the domain added with it waits
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        mark = gw.log_mark()
        gw.config.write_text(broken.replace("limits { max_recipients = 0 }\nno_such_key = 1\n",
                                            'listen busy { address = "127.0.0.1:%d" }\n'
                                            % busy.getsockname()[1]))
        os.kill(gw.proc.pid, signal.SIGHUP)
        gw.wait_log(r'event=reload status=refused error="listen busy: bind 127\.0\.0\.1:\d+: '
                    r'Address already in use" action=', since=mark)
        rcpt_reply(gw.port, "carol@new.test").check(554, "5.7.1")
    finally:
        busy.close()
    # the next good file is taken whole
    reload(gw, 2, broken.replace("limits { max_recipients = 0 }\nno_such_key = 1\n", ""))
    rcpt_reply(gw.port, "carol@new.test").check(250, "2.1.5")
    accepted = load.finish()
    assert_all_delivered(accepted, sink)
    assert gw.running


def test_restart_only_settings_kept_with_warning(gateway, sink, tmp_path):
    """spool_dir cannot move under a running daemon: the running one stays, the
    warning says so, everything else in the file applies and mail still flows
    through the old spool."""
    gw = gateway()
    old_spool = gw.dir / "spool"
    text = gw.config.read_text().replace(str(old_spool), str(tmp_path / "elsewhere"))
    text = text.replace('domains = {"example.test"}', 'domains = {"example.test", "new.test"}')
    text += 'route "new.test" { to = "smtp:[127.0.0.1]:%d" }\n' % sink.port
    text += 'admin { address = "127.0.0.1:1" }\n'  # the admin listener binds only at start
    mark = gw.log_mark()
    reload(gw, 2, text)
    gw.wait_log(r'event=reload status=warning setting=spool_dir error="changing it needs a '
                r'restart: the running value stays" running=%s' % re.escape(str(old_spool)),
                since=mark)
    gw.wait_log(r'event=reload status=warning setting=admin.address error="changing it needs a '
                r'restart: the running value stays" running=""', since=mark)
    send_one(gw.port, "carol@new.test", "new domain, old spool")
    sink.wait_for(1)
    assert not (tmp_path / "elsewhere").exists()


def test_log_level_reloads(gateway, sink):
    """log_level takes effect at once: debug lines (session states) after the reload."""
    gw = gateway()
    send_one(gw.port, "bob@example.test", "quiet")
    assert "debug: " not in gw.log_text()
    reload(gw, 2, 'log_level = "debug"\n' + gw.config.read_text())
    mark = gw.log_mark()
    send_one(gw.port, "bob@example.test", "verbose")
    gw.wait_log(r"debug: event=state sid=\S+ from=command to=data", since=mark)


def test_privileged_port_after_drop_refused(sink):
    """Started as root with a user, mxgated has no right to bind a port below
    1024 any more: a reload that adds one is refused, saying why."""
    import pwd
    import shutil
    import tempfile
    from conftest import Gateway
    if os.geteuid() != 0:
        pytest.skip("needs root to start as root")
    pwd.getpwnam("nobody")
    work = Path(tempfile.mkdtemp(prefix="mxgate-reload-"))
    os.chmod(work, 0o755)
    gw = Gateway(work / "gw", sink.port, extra='user = "nobody"\n')
    try:
        gw.start()
        low = next(p for p in range(990, 1000) if _free_low(p))
        mark = gw.log_mark()
        gw.config.write_text(gw.config.read_text()
                             + 'listen low { address = "127.0.0.1:%d" }\n' % low)
        os.kill(gw.proc.pid, signal.SIGHUP)
        gw.wait_log(r'event=reload status=refused error="listen low: bind 127\.0\.0\.1:%d: '
                    r'Permission denied \(a port below 1024 needs root, and mxgated dropped its '
                    r'privileges at start: restart mxgated to bind it\)"' % low, since=mark)
        send_one(gw.port, "bob@example.test", "still running")
        sink.wait_for(1)
        assert not gw.teardown()
    finally:
        if gw.proc is not None:
            gw.teardown()
        shutil.rmtree(work, ignore_errors=True)


def _free_low(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# ---------------------------------------------------------------------------
# checks that run on their own
# ---------------------------------------------------------------------------
def _bounces(port: int, n: int) -> None:
    with RawClient(port) as c:
        c.ehlo("mta.bouncer.test")
        for i in range(n):
            c.cmd("MAIL FROM:<>").check(250)
            c.cmd("RCPT TO:<forged%d@example.test>" % i).check(250)
            c.cmd("DATA").check(354)
            c.send(make_message("bounce %d" % i, to="forged%d@example.test" % i) + b".\r\n")
            c.read_reply().check(250)
        c.cmd("QUIT").check(221)


def test_bounce_flood_survives_reload(gateway, sink, tmp_path):
    """A flood declared before a reload goes on under the new configuration (resumed
    from the store) while bounces keep coming; the old instance, kept alive by a
    session that started before the reload, must not end it (its own windows go
    quiet): the stop hook runs once, when the bounces really stop."""
    calls = tmp_path / "hook.calls"
    hook = tmp_path / "hook"
    hook.write_text("#!/bin/sh\necho \"$1\" >> %s\n" % calls)
    hook.chmod(0o755)
    section = ('bounce_flood {\n    interval = 1\n    start = 3\n    stop = 1\n    hold = 3\n'
               '    hook = "%s"\n}\n' % hook)
    gw = gateway(checks=["bounce_flood"], extra=section)
    _bounces(gw.port, 4)
    gw.wait_log(r"event=bounce_flood state=start count=3 interval=1$")
    old = RawClient(gw.port)  # holds generation 1, and its bounce_flood instance
    old.ehlo()
    mark = gw.log_mark()
    reload(gw, 2)
    end = time.monotonic() + 5  # past the old instance's hold of quiet windows
    while time.monotonic() < end:
        _bounces(gw.port, 3)
    gw.wait_log(r"event=bounce_flood state=resume since=\d+ interval=1$", since=mark)
    assert "state=stop" not in gw.log_text()[mark:], gw.log_text()[mark:]
    old.cmd("QUIT").check(221)
    old.close()
    gw.wait_log(r"event=bounce_flood state=stop count=0 interval=1 duration=\d+$", since=mark,
                timeout=6)
    wait_until(lambda: calls.exists() and calls.read_text() == "start\nstop\n",
               what="the hook run for start and stop, once each")
    events = re.findall(r"event=bounce_flood state=(\w+)", gw.log_text())
    assert events == ["start", "resume", "stop"], events
