"""milters_env.py - real milters from Debian, each in a private directory on loopback.

    Rspamd(tmp).start()        rspamd's proxy worker in milter mode (self_scan),
                               no normal worker, DNS pointed at a dead port
    OpenDKIM(tmp, domain, selector).start()
                               signing mode for `domain`; .txt_record is the
                               key's DNS TXT value for the test DNS
    ClamMilter(tmp).start()    clamd with a database the test writes (the EICAR
                               test signature as an .ndb body signature: no
                               download) and clamav-milter in front of it

Each object has .socket ("inet:127.0.0.1:PORT", for a milter section) and
stop(). Nothing under /etc or /var is used; every daemon runs in the
foreground as a child of the test and is killed at stop().
"""

import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import List, Optional

from conftest import free_port

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")


def _wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s:\n%s" % (what, proc.returncode,
                                                             _tail(log)))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("%s not listening on %d after %.0f s:\n%s" % (what, port, timeout,
                                                                      _tail(log)))


def _wait_milter(port: int, timeout: float) -> None:
    """Until the milter answers a negotiation (its workers are up, not just its socket)."""
    deadline = time.monotonic() + timeout
    offer = struct.pack(">III", 6, 0xFF, 0xFF7FF)  # what mxgate offers (libmilter needs enough)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(struct.pack(">I", len(offer) + 1) + b"O" + offer)
                if s.recv(5)[4:5] == b"O":
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("milter on port %d does not negotiate" % port)
        time.sleep(0.3)


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


class _Daemon:
    def __init__(self, tmp: Path):
        self.dir = Path(tmp)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs: List[subprocess.Popen] = []
        self.port = 0

    @property
    def socket(self) -> str:
        return "inet:127.0.0.1:%d" % self.port

    def _spawn(self, argv, log: Path) -> subprocess.Popen:
        out = open(log, "ab")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 cwd=str(self.dir), start_new_session=True)
        finally:
            out.close()
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.procs.clear()


class Rspamd(_Daemon):
    """rspamd 3.x: the Debian configuration, workers overridden to private ports."""

    def start(self, timeout: float = 90.0) -> "Rspamd":
        d = self.dir
        for sub in ("override.d", "local.d", "db", "run", "log"):
            (d / sub).mkdir(exist_ok=True)
        self.port = free_port()
        (d / "override.d/worker-proxy.inc").write_text(
            'bind_socket = "127.0.0.1:%d";\nmilter = yes;\ntimeout = 120s;\n'
            'upstream "local" { default = yes; self_scan = yes; }\ncount = 1;\n'
            'spam_header = "X-Spam";\nreject_message = "Spam message rejected";\n' % self.port)
        (d / "override.d/worker-normal.inc").write_text("enabled = false;\n")
        (d / "override.d/worker-controller.inc").write_text(
            'bind_socket = "127.0.0.1:%d";\n' % free_port())
        (d / "override.d/logging.inc").write_text(
            'type = "file";\nfilename = "%s";\nlevel = "info";\n' % (d / "log/rspamd.log"))
        # no network: every DNS query fails at once instead of timing out
        (d / "local.d/options.inc").write_text(
            'dns { nameserver = ["127.0.0.1:9"]; timeout = 0.3s; retransmits = 1; }\n')
        (d / "local.d/milter_headers.conf").write_text(
            'use = ["x-spamd-result", "x-rspamd-queue-id"];\n'
            "skip_local = false;\nskip_authenticated = false;\n")
        user = pwd.getpwnam("_rspamd")
        for root, dirs, files in os.walk(d):
            for n in dirs + files:
                os.chown(os.path.join(root, n), user.pw_uid, user.pw_gid)
        os.chown(d, user.pw_uid, user.pw_gid)
        log = d / "stdout.log"
        p = self._spawn(["rspamd", "-f", "-u", "_rspamd", "-g", "_rspamd",
                         "-c", "/etc/rspamd/rspamd.conf",
                         "--var", "LOCAL_CONFDIR=%s" % d, "--var", "DBDIR=%s" % (d / "db"),
                         "--var", "RUNDIR=%s" % (d / "run"),
                         "--var", "LOGDIR=%s" % (d / "log")], log)
        _wait_port(self.port, p, "rspamd", d / "log/rspamd.log", timeout)
        _wait_milter(self.port, timeout)
        return self


class OpenDKIM(_Daemon):
    """OpenDKIM in signing mode for one domain, key made with openssl."""

    def __init__(self, tmp: Path, domain: str, selector: str = "mx"):
        super().__init__(tmp)
        self.domain = domain
        self.selector = selector
        self.txt_record = ""

    def start(self, timeout: float = 20.0) -> "OpenDKIM":
        d = self.dir
        key = d / "key.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                       capture_output=True)
        os.chmod(key, 0o600)
        der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        import base64
        self.txt_record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        self.port = free_port()
        conf = d / "opendkim.conf"
        conf.write_text("\n".join([
            "Syslog no", "Background no", "Mode s",
            "Socket inet:%d@127.0.0.1" % self.port,
            "Domain %s" % self.domain, "Selector %s" % self.selector, "KeyFile %s" % key,
            "Canonicalization relaxed/simple", "InternalHosts 127.0.0.0/8",
            "PidFile %s" % (d / "opendkim.pid"), "UserID root", "RequireSafeKeys no", ""]))
        log = d / "opendkim.log"
        p = self._spawn(["opendkim", "-f", "-x", str(conf)], log)
        _wait_port(self.port, p, "opendkim", log, timeout)
        _wait_milter(self.port, timeout)
        return self


class ClamMilter(_Daemon):
    """clamd with the EICAR signature only, and clamav-milter rejecting infected mail.
    Both run as the test's user: the test's temporary directory is private."""

    def start(self, timeout: float = 60.0) -> "ClamMilter":
        d = self.dir
        db = d / "db"
        db.mkdir(exist_ok=True)
        # an .ndb body signature: name:target type (0 = any file):offset (*):hex
        (db / "eicar.ndb").write_text("Mxgate-Test-EICAR:0:*:%s\n" % EICAR.hex())
        sock = d / "clamd.sock"
        clamd_conf = d / "clamd.conf"
        clamd_conf.write_text("\n".join([
            "LocalSocket %s" % sock, "DatabaseDirectory %s" % db, "Foreground yes",
            "LogFile %s" % (d / "clamd.log"), "LogTime yes",
            "PidFile %s" % (d / "clamd.pid"), "ScanMail yes", "TemporaryDirectory %s" % d, ""]))
        log = d / "clamd.out"
        self._spawn(["clamd", "-c", str(clamd_conf)], log)
        deadline = time.monotonic() + timeout
        while not sock.exists():
            if time.monotonic() > deadline:
                raise AssertionError("clamd did not start:\n%s%s" % (
                    _tail(log), _tail(d / "clamd.log")))
            time.sleep(0.2)
        self.port = free_port()
        mconf = d / "clamav-milter.conf"
        mconf.write_text("\n".join([
            "MilterSocket inet:%d@127.0.0.1" % self.port, "Foreground yes",
            "ClamdSocket unix:%s" % sock, "OnInfected Reject", "OnFail Defer",
            "AddHeader Replace", "LogFile %s" % (d / "milter.log"), "LogInfected Basic",
            "PidFile %s" % (d / "milter.pid"), "RejectMsg Virus %v found", ""]))
        mlog = d / "milter.out"
        p = self._spawn(["clamav-milter", "-c", str(mconf)], mlog)
        _wait_port(self.port, p, "clamav-milter", mlog, timeout)
        _wait_milter(self.port, timeout)
        return self
