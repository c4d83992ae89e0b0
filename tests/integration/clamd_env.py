"""clamd_env.py - a real clamd from Debian for the tests: foreground, a UNIX
socket and a TCP port on loopback under a tmp dir, and a signature database the
test writes itself (the EICAR test string as a body signature): no freshclam,
no download. Start it once per module: it loads in a second or two."""

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

from conftest import free_port

CLAMD = "/usr/sbin/clamd"
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
SIG_NAME = "Mxgate.Test.EICAR"
SIGNATURE = SIG_NAME + ".UNOFFICIAL"  # clamd marks signatures of unsigned databases


class Clamd:
    def __init__(self, workdir: Path, stream_max: str = "25M"):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "db").mkdir(exist_ok=True)
        # an .ndb body signature: the EICAR string anywhere in any part clamd extracts
        (self.dir / "db" / "mxgate-test.ndb").write_text(
            "%s:0:*:%s\n" % (SIG_NAME, EICAR.hex()))
        self.socket = str(self.dir / "clamd.sock")
        self.port = free_port()
        self.conf = self.dir / "clamd.conf"
        self.conf.write_text(
            "Foreground yes\nLocalSocket %s\nTCPSocket %d\nTCPAddr 127.0.0.1\n"
            "DatabaseDirectory %s\nLogFile %s\nStreamMaxLength %s\nMaxThreads 4\n"
            % (self.socket, self.port, self.dir / "db", self.dir / "clamd.log", stream_max))
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 60.0) -> "Clamd":
        out = open(self.dir / "clamd.out", "ab")
        self.proc = subprocess.Popen([CLAMD, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=out)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("clamd exited: %s" % (self.dir / "clamd.out").read_text())
            if self.ping():
                return self
            time.sleep(0.1)
        raise AssertionError("clamd did not answer PING")

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.socket)
                s.sendall(b"zPING\0")
                return s.recv(16).startswith(b"PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        try:
            os.unlink(self.socket)
        except FileNotFoundError:
            pass


def clamd_section(socket_: str, **opts) -> str:
    body = 'socket = "%s"' % socket_
    for k, v in opts.items():
        body += " %s = %s" % (k, ('"%s"' % v) if isinstance(v, str) else v)
    return "clamd { %s }\n" % body
