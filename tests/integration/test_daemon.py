"""Started as a daemon (without -f), mxgated says every start-up failure on
stderr with a non-zero exit before it detaches, returns only once it serves,
holds a pidfile while it runs; -V prints the version; under a service manager
it says READY=1, RELOADING=1 and STOPPING=1 (sd_notify)."""
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import MXGATED, REPO, Gateway, RawClient, make_message, smtp_queue, wait_until


def cmake_version() -> str:
    m = re.search(r"^project\(mxgate VERSION (\d+\.\d+\.\d+)",
                  (REPO / "CMakeLists.txt").read_text(), re.M)
    assert m, "no project(mxgate VERSION x.y.z) in CMakeLists.txt"
    return m.group(1)


def daemon_start(gw: Gateway, timeout: float = 30) -> subprocess.CompletedProcess:
    """mxgated -c CONFIG without -f: returns once the parent exits."""
    return subprocess.run([MXGATED, "-c", str(gw.config)], cwd=str(gw.dir), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    return Path("/proc/%d/stat" % pid).read_text().split(")")[-1].split()[0] != "Z"


def stop_pid(pid: int) -> None:
    """SIGTERM a daemon we started, and wait until it is gone."""
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: not alive(pid), timeout=10, what="mxgated %d to exit" % pid)
        except AssertionError:
            os.kill(pid, signal.SIGKILL)
            raise


@pytest.fixture
def daemons():
    """pids of the daemons a test detached; each is stopped at the end."""
    pids = []
    yield pids
    for pid in pids:
        stop_pid(pid)


def make_gw(tmp_path, sink, **kw) -> Gateway:
    gw = Gateway(tmp_path / "gw", sink.port, **kw)
    with open(gw.config, "a") as f:
        f.write('pidfile = "%s"\n' % (gw.dir / "run" / "mxgated.pid"))
    return gw


def test_version_is_the_cmake_project_version():
    r = subprocess.run([MXGATED, "-V"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r
    assert r.stderr == ""
    m = re.match(r"^mxgated (\S+) \(libevent \S+, OpenSSL [^,]+, c-ares [\d.]+, sd_notify (yes|no)\)\n$",
                 r.stdout)
    assert m, r.stdout
    assert m.group(1) == cmake_version()


def test_port_in_use_fails_before_detaching(tmp_path, sink):
    gw = make_gw(tmp_path, sink)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", gw.port))
        taken.listen()
        r = daemon_start(gw)
    assert r.returncode == 1, r
    assert re.search(r"error: event=fatal what=listen error=\"listen mx: bind 127\.0\.0\.1:%d: "
                     r"Address already in use\"" % gw.port, r.stderr), r.stderr
    # the daemon that failed left no pidfile and no process behind
    assert not (gw.dir / "run" / "mxgated.pid").exists()


def test_unreadable_certificate_fails_before_detaching(tmp_path, sink, tls_files):
    missing = tmp_path / "nothere" / "cert.pem"
    gw = make_gw(tmp_path, sink, tls=True, tls_files=(str(missing), tls_files[1]))
    r = daemon_start(gw)
    assert r.returncode == 1, r
    assert str(missing) in r.stderr, r.stderr


@pytest.mark.parametrize("what", ["spool", "store"])
def test_bad_spool_or_store_fails_before_detaching(tmp_path, sink, what):
    """Failures found only by the start itself (after the fork): the child says why
    on the terminal, and the parent exits with the child's status."""
    bad = tmp_path / "a-file"
    bad.write_text("not a directory\n")
    extra = ('store { uri = "lmdb:%s/db" }\n' % bad) if what == "store" else ""
    gw = make_gw(tmp_path, sink, extra=extra)
    if what == "spool":
        text = gw.config.read_text().replace('spool_dir = "%s"' % (gw.dir / "spool"),
                                             'spool_dir = "%s/spool"' % bad)
        gw.config.write_text(text)
    r = daemon_start(gw)
    assert r.returncode == 1, r
    assert "event=fatal what=%s" % ("spool_dir" if what == "spool" else "store") in r.stderr, \
        r.stderr
    assert str(bad) in r.stderr, r.stderr
    assert not (gw.dir / "run" / "mxgated.pid").exists()


def test_pidfile_written_held_and_removed(tmp_path, sink, daemons):
    gw = make_gw(tmp_path, sink)
    pidfile = gw.dir / "run" / "mxgated.pid"
    r = daemon_start(gw)
    assert r.returncode == 0, r
    assert r.stderr == "", r.stderr
    pid = int(pidfile.read_text())
    daemons.append(pid)
    assert pidfile.read_text() == "%d\n" % pid
    assert alive(pid)
    assert os.readlink("/proc/%d/exe" % pid) == os.path.realpath(MXGATED)
    # The parent returned only once the daemon serves: no waiting, no retry.
    with RawClient(gw.port) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo()
    smtp_queue(gw.port, "a@client.test", ["bob@example.test"], make_message("detached"))
    assert b"Subject: detached" in sink.wait_for(1)[0].content

    # A second start with the same pidfile is refused, naming the holder.
    other = Gateway(tmp_path / "gw2", sink.port)
    with open(other.config, "a") as f:
        f.write('pidfile = "%s"\n' % pidfile)
    r2 = daemon_start(other)
    assert r2.returncode == 1, r2
    assert "pidfile %s is held by a running mxgated (pid %d)" % (pidfile, pid) in r2.stderr, \
        r2.stderr
    assert pidfile.read_text() == "%d\n" % pid

    stop_pid(pid)
    assert not pidfile.exists()


def test_stale_pidfile_is_replaced(tmp_path, sink, daemons):
    gw = make_gw(tmp_path, sink)
    pidfile = gw.dir / "run" / "mxgated.pid"
    pidfile.parent.mkdir(parents=True)
    pidfile.write_text("999999\n")  # a crash left it; nobody holds it
    r = daemon_start(gw)
    assert r.returncode == 0, r
    pid = int(pidfile.read_text())
    daemons.append(pid)
    assert pid != 999999 and alive(pid)


def test_foreground_writes_no_pidfile_unless_configured(gateway, tmp_path):
    gw = gateway()
    assert not list(gw.dir.rglob("*.pid"))
    assert not list((gw.dir / "state").glob("*.pid"))


def _notify_socket(tmp_path):
    if "sd_notify yes" not in subprocess.run([MXGATED, "-V"], capture_output=True,
                                             text=True).stdout:
        pytest.skip("mxgated built without libsystemd (MXGATE_SYSTEMD=OFF)")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    s.bind(path)
    s.settimeout(10)
    return s, path


def _notice(sock) -> dict:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.split("\n") if line)


def test_sd_notify_ready_reloading_stopping(tmp_path, sink):
    sock, path = _notify_socket(tmp_path)
    gw = Gateway(tmp_path / "gw", sink.port, env={"NOTIFY_SOCKET": path})
    log = open(gw.logfile, "ab")
    proc = subprocess.Popen([MXGATED, "-f", "-c", str(gw.config)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, cwd=str(gw.dir),
                            env=dict(os.environ, NOTIFY_SOCKET=path))
    log.close()
    gw.proc = proc
    try:
        ready = _notice(sock)
        assert ready.get("READY") == "1", ready
        assert ready.get("MAINPID") == str(proc.pid), ready
        # READY=1 means every listener is bound: the first connection is answered.
        with RawClient(gw.port) as c:
            assert c.greeting.code == 220
        proc.send_signal(signal.SIGHUP)
        reloading = _notice(sock)
        assert reloading.get("RELOADING") == "1", reloading
        assert int(reloading["MONOTONIC_USEC"]) > 0
        assert _notice(sock).get("READY") == "1"
        proc.send_signal(signal.SIGTERM)
        assert _notice(sock).get("STOPPING") == "1"
        assert proc.wait(10) == 0
        gw.proc = None  # stopped here, cleanly
    finally:
        sock.close()
        problems = gw.teardown()
    assert not problems, problems
