"""The Debian package, as an operator meets it: `make deb` builds it, dpkg
installs it on this machine, the installed mxgated checks the installed
configuration and carries a message from the installed paths (as the systemd
unit runs it: as the mxgate user, in the foreground), the unit passes
`systemd-analyze verify`, and dpkg takes it all away again: remove keeps the
conffile, purge leaves nothing (files, directories, user, group).

Needs root and a machine without an mxgate of its own (skipped otherwise): the
test must leave the machine as it found it. MXGATE_DEB=FILE tests a package
built beforehand instead of running `make deb` (about a minute on 2 cores the
first time, seconds when only a few files changed: build-deb/ is kept).
"""
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO, free_port, make_message, smtp_queue

# What the package owns or makes; none may exist before the test, none after.
PATHS = ["/etc/mxgate", "/var/spool/mxgate", "/var/lib/mxgate",
         "/usr/sbin/mxgated", "/usr/bin/mxgatectl", "/lib/systemd/system/mxgate.service",
         "/usr/share/man/man8/mxgated.8.gz", "/usr/share/doc/mxgate"]


def installed_status() -> str:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "mxgate"], capture_output=True,
                       text=True)
    return r.stdout if r.returncode == 0 else ""


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def dpkg(*args: str) -> subprocess.CompletedProcess:
    """dpkg, waiting while someone else's apt-get or dpkg holds the lock."""
    deadline = time.monotonic() + 120
    while True:
        r = subprocess.run(["dpkg", *args], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if r.returncode == 0 or "lock" not in r.stderr or time.monotonic() > deadline:
            return r
        time.sleep(2)


@pytest.fixture(scope="module")
def deb():
    if os.geteuid() != 0:
        pytest.skip("installing a package needs root")
    if installed_status() or user_exists("mxgate") or group_exists("mxgate") or \
            any(os.path.lexists(p) for p in PATHS):
        pytest.skip("this machine has an mxgate of its own; the test would replace it")
    if os.environ.get("MXGATE_DEB"):
        return Path(os.environ["MXGATE_DEB"])
    if not shutil.which("dpkg-buildpackage") or not shutil.which("dh"):
        pytest.skip("dpkg-dev and debhelper are not installed (scripts/deps.sh package)")
    t = time.monotonic()
    r = subprocess.run(["make", "--no-print-directory", "deb"], cwd=str(REPO),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "make deb failed:\n%s\n%s" % (r.stdout[-3000:], r.stderr[-3000:])
    print("make deb: %.1f s" % (time.monotonic() - t))
    debs = re.findall(r"^(\S+/mxgate_[^/\s]+_amd64\.deb)$", r.stdout, re.M)
    assert debs, r.stdout
    return REPO / debs[-1]


@pytest.fixture
def package(deb):
    """The package installed; purged at the end whatever happened."""
    r = dpkg("-i", str(deb))
    try:
        assert r.returncode == 0, r
        yield deb
    finally:
        if installed_status():
            dpkg("--purge", "mxgate")


def deb_version(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                          text=True, check=True).stdout.strip()


def check_installed(deb: Path) -> None:
    for path in ("/usr/sbin/mxgated", "/usr/bin/mxgatectl"):
        assert os.access(path, os.X_OK), path
    for page in ("man5/mxgate.conf.5.gz", "man8/mxgated.8.gz", "man8/mxgatectl.8.gz",
                 "man7/mxgate-migration.7.gz"):
        assert Path("/usr/share/man", page).is_file(), page
    r = subprocess.run(["/usr/sbin/mxgated", "-V"], capture_output=True, text=True, timeout=10)
    assert r.stdout.startswith("mxgated %s (" % deb_version(deb)), r.stdout
    conffiles = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}", "mxgate"],
                               capture_output=True, text=True).stdout
    assert re.search(r"^ /etc/mxgate/mxgate\.conf [0-9a-f]{32}$", conffiles, re.M), conffiles
    user = pwd.getpwnam("mxgate")
    assert user.pw_uid < 1000 and user.pw_shell == "/usr/sbin/nologin", user
    assert grp.getgrgid(user.pw_gid).gr_name == "mxgate"
    for d in ("/var/spool/mxgate", "/var/lib/mxgate"):
        st = os.stat(d)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == \
            (user.pw_uid, user.pw_gid, 0o700), (d, st)


def check_unit() -> None:
    unit = "/lib/systemd/system/mxgate.service"
    r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
    text = Path(unit).read_text()
    for line in ("Type=notify", "User=mxgate", "ProtectSystem=strict",
                 "ReadWritePaths=/var/spool/mxgate /var/lib/mxgate", "NoNewPrivileges=yes",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "ExecReload=/bin/kill -HUP $MAINPID",
                 "ExecStart=/usr/sbin/mxgated -f -c /etc/mxgate/mxgate.conf"):
        assert re.search("^%s$" % re.escape(line), text, re.M), line


def run_installed(work: Path, sink) -> None:
    """The installed daemon as the unit runs it (the mxgate user, -f, sd_notify)
    on a loopback test port, relaying one message to the sink."""
    port = free_port()
    conf = work / "mxgate.conf"
    conf.write_text(
        'hostname = "mx.example.test"\nuser = "mxgate"\n'
        'spool_dir = "/var/spool/mxgate"\nstate_dir = "/var/lib/mxgate"\n'
        'domains = {"example.test"}\nlisten mx { address = "127.0.0.1:%d" }\n'
        'route "example.test" { to = "smtp:[127.0.0.1]:%d" }\n' % (port, sink.port))
    conf.chmod(0o644)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(work / "notify"))
    os.chmod(work / "notify", 0o666)
    notify.settimeout(20)
    log = open(work / "mxgated.log", "wb")
    proc = subprocess.Popen(
        ["setpriv", "--reuid=mxgate", "--regid=mxgate", "--init-groups",
         "/usr/sbin/mxgated", "-f", "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=log,
        stderr=subprocess.STDOUT, cwd="/", env=dict(os.environ, NOTIFY_SOCKET=str(work / "notify")))
    log.close()
    try:
        assert b"READY=1" in notify.recv(4096), (work / "mxgated.log").read_text()
        smtp_queue(port, "alice@client.test", ["bob@example.test"], make_message("installed"))
        got = sink.wait_for(1)
        assert b"Subject: installed" in got[0].content
        r = subprocess.run(["/usr/bin/mxgatectl", "-c", str(conf), "stats"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, (work / "mxgated.log").read_text()
    finally:
        notify.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log_text = (work / "mxgated.log").read_text()
    assert "event=ready" in log_text and "event=stopped" in log_text, log_text
    assert "event=fatal" not in log_text and "warning:" not in log_text, log_text


def test_package_install_run_purge(package, sink):
    deb = package
    check_installed(deb)
    # the installed configuration, at the path mxgated looks at by default
    r = subprocess.run(["/usr/sbin/mxgated", "-n"], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, "/etc/mxgate/mxgate.conf: ok\n", ""), r
    check_unit()
    work = Path(tempfile.mkdtemp(prefix="mxgate-pkg-"))
    try:
        work.chmod(0o755)  # the mxgate user reads the test configuration
        run_installed(work, sink)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # remove: the programs go, the configuration and the user stay
    r = dpkg("--remove", "mxgate")
    assert r.returncode == 0, r
    assert not os.path.exists("/usr/sbin/mxgated")
    assert os.path.isfile("/etc/mxgate/mxgate.conf")
    assert installed_status().endswith("config-files"), installed_status()
    # purge: nothing is left
    r = dpkg("--purge", "mxgate")
    assert r.returncode == 0, r
    assert installed_status() == ""
    left = [p for p in PATHS if os.path.lexists(p)]
    assert not left, left
    assert not user_exists("mxgate") and not group_exists("mxgate")


def test_make_install_destdir(tmp_path):
    """cmake --install (what `make install` runs) into a DESTDIR: the programs, the
    manual pages, the examples and the configuration, which a second install keeps."""
    from conftest import MXGATED
    build = Path(MXGATED).resolve().parent
    cache = (build / "CMakeCache.txt").read_text()
    prefix = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", cache, re.M).group(1)
    sysconf = "/etc" if prefix == "/usr" else prefix + "/etc"

    def install():
        r = subprocess.run(["cmake", "--install", str(build)], capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, DESTDIR=str(tmp_path)))
        assert r.returncode == 0, r
        return r.stdout

    install()
    root = Path(str(tmp_path) + prefix)
    for f in ("sbin/mxgated", "bin/mxgatectl"):
        assert os.access(root / f, os.X_OK), f
    for f in ("share/man/man5/mxgate.conf.5", "share/man/man8/mxgated.8",
              "share/man/man8/mxgatectl.8", "share/man/man7/mxgate-migration.7",
              "share/doc/mxgate/examples/mxgate.conf"):
        assert (root / f).is_file(), f
    conf = Path(str(tmp_path) + sysconf) / "mxgate" / "mxgate.conf"
    assert conf.read_text() == (REPO / "conf" / "system.conf").read_text()
    # where mxgated looks without -c
    usage = subprocess.run([str(root / "sbin/mxgated"), "-h"], capture_output=True, text=True)
    assert "(default %s/mxgate/mxgate.conf)" % sysconf in usage.stderr, usage.stderr
    conf.write_text(conf.read_text() + "# the operator's change\n")
    assert "Kept: %s" % conf in install()
    assert conf.read_text().endswith("# the operator's change\n")
