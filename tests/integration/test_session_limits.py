"""What one client may hold: memory for replies it does not read, the time of a
whole session, and (IPv4 unchanged by limits.ipv6_prefix) connection slots."""
import os
import selectors
import socket
import ssl
import subprocess
import time
from pathlib import Path

from conftest import MXGATED, RawClient, make_message, smtp_queue, wait_until

HOGS = 8
HOG_SECONDS = 8
RSS_BOUND_MIB = 48  # growth allowed over the idle figure, sanitizer build included


def rss_mib(pid: int) -> float:
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS for %d" % pid)


def pipeline_without_reading(port: int, n: int, seconds: float, line: bytes):
    """n clients that pipeline `line` as fast as their sockets take it and never
    read; returns (sockets, octets sent by all)."""
    socks, sel, sent = [], selectors.DefaultSelector(), 0
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_WRITE)
    chunk = line * (65536 // len(line))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            try:
                sent += key.fileobj.send(chunk)
            except BlockingIOError:
                pass
    return socks, sent


def test_client_that_never_reads_is_held_back(gateway, sink):
    """Clients pipeline megabytes of HELP (56-octet replies for 6 octets) and
    never read: their replies do not pile up in the daemon, and a normal client
    is served meanwhile. Without backpressure each of them costs megabytes."""
    # ASan's quarantine would count freed reply buffers as resident: keep it small.
    env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4"}
    gw = gateway(limits={"max_commands": 100000000}, env=env)
    time.sleep(0.5)
    idle = rss_mib(gw.proc.pid)
    socks, sent = pipeline_without_reading(gw.port, HOGS, HOG_SECONDS, b"HELP\r\n")
    try:
        assert sent > HOGS * 1024 * 1024, "the clients could not even pipeline 1 MiB each"
        grown = rss_mib(gw.proc.pid) - idle
        assert grown < RSS_BOUND_MIB, ("%.1f MiB more resident after %.0f MiB of unread "
                                       "pipelining" % (grown, sent / 1048576))
        msg = make_message("served")
        qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg)
        assert sink.wait_for(1)[0].content.endswith(msg)
        print("pipelined %.1f MiB unread, resident grew %.1f MiB" % (sent / 1048576, grown))
        gw.wait_log(r"event=queued sid=\S+ id=%s" % qid)
    finally:
        for s in socks:
            s.close()


def test_tls_client_that_never_reads_is_held_back(gateway):
    """The same under STARTTLS, where the bufferevent writes the replies."""
    env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4"}
    gw = gateway(tls=True, limits={"max_commands": 100000000}, env=env)
    clients = []
    for _ in range(2):
        c = RawClient(gw.port)
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        c.starttls()
        c.ehlo()
        c.sock.setblocking(False)
        clients.append(c)
    time.sleep(0.5)
    idle = rss_mib(gw.proc.pid)
    chunk, sent = b"HELP\r\n" * 2000, 0
    end = time.monotonic() + HOG_SECONDS
    try:
        while time.monotonic() < end:
            for c in clients:
                try:
                    sent += c.sock.send(chunk)
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    time.sleep(0.01)
        grown = rss_mib(gw.proc.pid) - idle
        print("pipelined %.1f MiB unread over TLS, resident grew %.1f MiB"
              % (sent / 1048576, grown))
        assert sent > 1024 * 1024, "the clients could not even pipeline 1 MiB"
        assert grown < RSS_BOUND_MIB, ("%.1f MiB more resident after %.0f MiB of unread "
                                       "pipelining over TLS" % (grown, sent / 1048576))
        with RawClient(gw.port) as other:
            other.ehlo()
            other.cmd("QUIT").check(221)
    finally:
        for c in clients:
            c.close()


def test_hog_resumes_when_it_reads(gateway):
    """Backpressure only waits: once the client reads, every pipelined command is answered."""
    gw = gateway()
    n = 3000  # replies of about 170 KiB: more than the socket buffers of a client that waits
    with RawClient(gw.port) as c:
        c.send(b"EHLO pipe.test\r\n" + b"NOOP\r\n" * n + b"QUIT\r\n")
        time.sleep(1)
        c.read_reply().check(250)
        for _ in range(n):
            c.read_reply().check(250, "2.0.0")
        c.read_reply().check(221)
        c.expect_closed()


def test_session_lifetime(gateway):
    """One command per timeout keeps no slot forever: timeouts.session ends it with 421 4.4.2."""
    gw = gateway(timeouts={"session": 3, "command": 60})
    with RawClient(gw.port) as c:
        c.ehlo()
        t0 = time.monotonic()
        while True:
            r = c.cmd("NOOP", timeout=5)
            if r.code != 250:
                break
            assert time.monotonic() - t0 < 6, "session still open after its lifetime"
            time.sleep(0.5)
        r.check(421, "4.4.2", "session lifetime exceeded")
        assert 2 <= time.monotonic() - t0 < 6
        c.expect_closed()
    gw.wait_log(r"event=timeout sid=\S+ client=127\.0\.0\.1 state=session")
    gw.wait_log(r"event=disconnect sid=\S+ client=127\.0\.0\.1 .*reason=lifetime")


def test_ipv6_prefix_leaves_ipv4_clients_alone(gateway):
    """limits.ipv6_prefix groups IPv6 clients only: IPv4 ones still count one address each."""
    gw = gateway(limits={"max_connections_per_ip": 1, "ipv6_prefix": 16})
    with RawClient(gw.port, source="127.0.0.1") as a, RawClient(gw.port, source="127.0.0.2") as b:
        a.greeting.check(220)
        b.greeting.check(220)
        with RawClient(gw.port, source="127.0.0.1", greeting=False) as again:
            again.read_reply().check(421, "4.7.0", "too many connections from your address")


def test_ipv6_prefix_range_checked(gateway):
    gw = gateway(limits={"ipv6_prefix": 8}, start=False)
    r = subprocess.run([MXGATED, "-n", "-c", str(gw.config)], cwd=str(gw.dir), capture_output=True,
                       text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert "ipv6_prefix must be between 16 and 128" in r.stderr + r.stdout


def test_state_changes_logged_at_debug(gateway, sink):
    """Every state change goes through one function, which logs it at debug level."""
    gw = gateway(log_level="debug")
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@client.test>").check(250)
        c.cmd("RCPT TO:<b@example.test>").check(250)
        c.cmd("DATA").check(354)
        c.send(make_message("states") + b".\r\n")
        c.read_reply().check(250)
        c.cmd("QUIT").check(221)
    for step in ("from=greeting to=command", "from=command to=data", "from=data to=commit",
                 "from=commit to=command", "from=command to=closing"):
        gw.wait_log(r"debug: event=state sid=\S+ %s$" % step)
    quiet = gateway()
    with RawClient(quiet.port) as c:
        c.ehlo()
        c.cmd("QUIT").check(221)
    quiet.wait_log(r"event=disconnect .*reason=quit")
    assert "event=state" not in quiet.log_text()


def test_pipelining_during_checks_is_read_only_a_little_ahead(gateway, sink, tmp_path):
    """While a check holds a command (here the harvest tarpit), a client's
    pipelined input is read only a few KiB ahead; the rest waits in the kernel."""
    from test_recipients import start_gateway
    gw = start_gateway(gateway, sink, tmp_path, "threshold = 1  window = 600  tarpit = 5  "
                       "block = 600")
    sources = ["127.0.0.%d" % i for i in range(10, 20)]  # 15 clients each, under the per-IP 20
    for ip in sources:  # one unknown recipient each: from now on their RCPTs are tarpitted
        with RawClient(gw.port, source=ip) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<a@client.test>").check(250)
            c.cmd("RCPT TO:<nobody@example.test>").check(550)
    clients = []
    try:
        for ip in sources * 15:
            c = RawClient(gw.port, source=ip)
            c.ehlo()
            c.cmd("MAIL FROM:<a@client.test>").check(250)
            clients.append(c)
        time.sleep(0.5)
        idle = rss_mib(gw.proc.pid)
        for c in clients:
            c.sock.setblocking(False)
            try:
                c.sock.send(b"RCPT TO:<alice@example.test>\r\n" + b"NOOP\r\n" * 50000)
            except BlockingIOError:
                pass
        time.sleep(3)
        grown = rss_mib(gw.proc.pid) - idle
        print("150 clients pipelining behind a tarpit: resident grew %.1f MiB" % grown)
        assert grown < 16, "%.1f MiB more resident for 150 clients' pipelined input" % grown
    finally:
        for c in clients:
            c.close()
    # Each session answers the rest once its tarpit is over, to a client that
    # left: they all end before the daemon does.
    wait_until(lambda: gw.log_text().count("event=disconnect") >= 161, timeout=60,
               what="every session over")
