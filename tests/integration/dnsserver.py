"""dnsserver.py - a real authoritative DNS server (NSD) on loopback for the tests.

    from dnsserver import DNSServer

    srv = DNSServer({
        "example.test": ["host2 A 127.0.0.2", 'host2 TXT "hello"'],
        "0.0.127.in-addr.arpa": ["2 PTR host2.example.test."],
        "bl.test": ["2.0.0.127 A 127.0.0.2", '2.0.0.127 TXT "listed"'],
        "slow.bl.test": [],
    }, silent_zones=["slow.bl.test"]).start()
    ...  # point mxgate at srv.address ("127.0.0.1:<resolver_port>")
    srv.stop()

`zones` maps a zone name to its records in zone-file syntax (a list of lines,
or the zone text as one string). Names are relative to the zone unless they
end in a dot; $ORIGIN and $TTL 60 are set, and an SOA and an NS record are
added when the zone has none. Every zone file is checked with nsd-checkzone
before the server starts, so a typo fails at once with NSD's message.

What is running, all on 127.0.0.1 and nowhere else:

  .port            NSD itself, UDP and TCP: the real server.
  .blackhole_port  a UDP socket (and a TCP listener) that is never read: a
                   server that never answers. Give it to a resolver whose
                   every query must time out.
  .filter_port     only with silent_zones: a small UDP/TCP forwarder to NSD
                   that drops, without any answer, every query for a name in
                   or under a silent zone. This is how one zone "never
                   answers" while the others answer normally through ONE
                   server address (c-ares has a single server list, and an
                   authoritative server cannot delegate to a blackhole: a
                   referral is not an answer for a stub resolver).
  .resolver_port   .filter_port when there are silent zones, else .port.
  .address         "127.0.0.1:<resolver_port>", for mxgate's dns { servers }.

NSD runs in the foreground (-d) as the current user (username "" disables its
privilege drop, so it works as root or not), with no chroot, no database, no
remote control and every file in a private temporary directory: nothing under
/etc or /var is read or written and no system service is involved. NSD comes
from Debian's `nsd` package (scripts/deps.sh installs it); queries are checked
with dnspython (python3-dnspython).
"""

import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from typing import Dict, Iterable, List, Optional, Union

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode

NSD = shutil.which("nsd", path="/usr/sbin:/usr/bin:" + os.environ.get("PATH", "")) or "nsd"
NSD_CHECKZONE = shutil.which("nsd-checkzone", path="/usr/sbin:/usr/bin") or "nsd-checkzone"
HOST = "127.0.0.1"
START_TIMEOUT = 10.0


def free_port() -> int:
    """A port on 127.0.0.1 free for both UDP and TCP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((HOST, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free UDP+TCP port on %s" % HOST)


def zone_text(zone: str, records: Union[str, Iterable[str]]) -> str:
    """The zone file: $ORIGIN, $TTL, SOA and NS unless given, then the records."""
    lines = records.splitlines() if isinstance(records, str) else list(records)
    origin = zone.rstrip(".") + "."
    words = [line.split()[:4] for line in lines]
    has_soa = any("SOA" in (t.upper() for t in w) for w in words)
    apex_ns = any(w and w[0] in ("@", origin) and "NS" in (t.upper() for t in w)
                  for w in words)
    out = ["$ORIGIN %s" % origin, "$TTL 60"]
    if not has_soa:
        out.append("@ IN SOA ns.%s hostmaster.%s 1 3600 600 86400 60" % (origin, origin))
    if not apex_ns:
        out.append("@ IN NS ns.%s" % origin)
    out.extend(lines)
    return "\n".join(out) + "\n"


def _in_zones(wire: bytes, zones: List[dns.name.Name]) -> Optional[bool]:
    """Is the question of a DNS message under one of zones; None if unparsable."""
    try:
        msg = dns.message.from_wire(wire)
    except Exception:  # garbage: let the caller drop it
        return None
    if len(msg.question) != 1:
        return None
    qname = msg.question[0].name
    return any(qname.is_subdomain(z) for z in zones)


class _Filter:
    """UDP/TCP forwarder to NSD that never answers queries for silent zones."""

    def __init__(self, upstream: int, zones: Iterable[str]):
        self.upstream = upstream
        self.zones = [dns.name.from_text(z) for z in zones]
        self.dropped = 0
        self.forwarded = 0
        self.udp, self.tcp = self._bind_pair()
        self.port = self.udp.getsockname()[1]
        self.tcp.listen(64)
        self.stopping = threading.Event()
        self.conns: List[socket.socket] = []
        self.thread = threading.Thread(target=self._loop, name="dns-filter", daemon=True)
        self.thread.start()

    @staticmethod
    def _bind_pair():
        """A UDP and a TCP socket on the same port: retry while the kernel's pick
        for UDP is taken for TCP."""
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((HOST, 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((HOST, udp.getsockname()[1]))
                return udp, tcp
            except OSError:
                udp.close()
                tcp.close()
        raise RuntimeError("no port free for both UDP and TCP on %s" % HOST)

    def _loop(self):
        sel = selectors.DefaultSelector()
        sel.register(self.udp, selectors.EVENT_READ, ("front", None))
        sel.register(self.tcp, selectors.EVENT_READ, ("accept", None))
        pending = {}  # upstream UDP socket -> (client address, deadline)
        while not self.stopping.is_set():
            for key, _ in sel.select(timeout=0.1):
                kind, client = key.data
                if kind == "front":
                    self._udp_query(sel, pending)
                elif kind == "accept":
                    self._accept()
                else:
                    self._udp_answer(sel, pending, key.fileobj, client)
            now = time.monotonic()
            for s, (_, deadline) in list(pending.items()):
                if deadline < now:  # NSD never drops, but stay bounded anyway
                    sel.unregister(s)
                    s.close()
                    del pending[s]
        for s in pending:
            s.close()
        sel.close()

    def _udp_query(self, sel, pending):
        try:
            wire, client = self.udp.recvfrom(65535)
        except OSError:
            return
        silent = _in_zones(wire, self.zones)
        if silent is None or silent:
            self.dropped += 1
            return
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.connect((HOST, self.upstream))
        up.send(wire)
        self.forwarded += 1
        pending[up] = (client, time.monotonic() + 5.0)
        sel.register(up, selectors.EVENT_READ, ("answer", client))

    def _udp_answer(self, sel, pending, up, client):
        try:
            self.udp.sendto(up.recv(65535), client)
        except OSError:
            pass
        sel.unregister(up)
        pending.pop(up, None)
        up.close()

    def _accept(self):
        try:
            conn, _ = self.tcp.accept()
        except OSError:
            return
        self.conns.append(conn)
        threading.Thread(target=self._tcp_session, args=(conn,), daemon=True).start()

    @staticmethod
    def _recv_msg(s: socket.socket) -> Optional[bytes]:
        """One length-prefixed DNS message from a TCP stream, None at EOF."""
        hdr = s.recv(2, socket.MSG_WAITALL)
        if len(hdr) < 2:
            return None
        n = int.from_bytes(hdr, "big")
        body = s.recv(n, socket.MSG_WAITALL) if n else b""
        return body if len(body) == n else None

    def _tcp_session(self, conn: socket.socket):
        up = None
        try:
            while not self.stopping.is_set():
                wire = self._recv_msg(conn)
                if wire is None:
                    return
                silent = _in_zones(wire, self.zones)
                if silent is None or silent:
                    self.dropped += 1
                    continue  # keep the connection open, never answer
                if up is None:
                    up = socket.create_connection((HOST, self.upstream), timeout=5)
                up.sendall(len(wire).to_bytes(2, "big") + wire)
                answer = self._recv_msg(up)
                if answer is None:
                    return
                self.forwarded += 1
                conn.sendall(len(answer).to_bytes(2, "big") + answer)
        except OSError:
            return
        finally:
            if up is not None:
                up.close()
            conn.close()

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=2)
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.udp.close()
        self.tcp.close()


class DNSServer:
    """NSD serving `zones` on 127.0.0.1, plus a blackhole and an optional filter."""

    def __init__(self, zones: Dict[str, Union[str, List[str]]],
                 silent_zones: Iterable[str] = (), port: Optional[int] = None,
                 round_robin: bool = False):
        self.round_robin = round_robin  # NSD turns each RRset's order at every answer
        self.zones = {z.rstrip(".").lower(): recs for z, recs in zones.items()}
        if not self.zones or "" in self.zones:
            raise ValueError("DNSServer needs one or more named zones")
        self.silent_zones = [z.rstrip(".").lower() for z in silent_zones]
        self.fixed_port = port
        self.port = port or 0
        self.blackhole_port = 0
        self.filter_port = 0
        self.dir: Optional[str] = None
        self.proc: Optional[subprocess.Popen] = None
        self._blackhole: List[socket.socket] = []
        self._filter: Optional[_Filter] = None

    # -- where to point a resolver --------------------------------------------
    @property
    def resolver_port(self) -> int:
        return self.filter_port or self.port

    @property
    def address(self) -> str:
        return "%s:%d" % (HOST, self.resolver_port)

    @property
    def blackhole_address(self) -> str:
        return "%s:%d" % (HOST, self.blackhole_port)

    # -- life cycle -----------------------------------------------------------
    def start(self) -> "DNSServer":
        self.dir = tempfile.mkdtemp(prefix="mxgate-nsd-")
        try:
            self._write_zones()
            self._open_blackhole()
            for attempt in range(3):  # a free port can be taken before NSD binds it
                self.port = self.fixed_port or free_port()
                self._write_conf()
                self._spawn()
                if self._wait_ready(last=attempt == 2 or bool(self.fixed_port)):
                    break
            if self.silent_zones:
                self._filter = _Filter(self.port, self.silent_zones)
                self.filter_port = self._filter.port
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._filter is not None:
            self._filter.close()
            self._filter = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)  # our own session only
                    self.proc.wait(timeout=5)
            self.proc = None
        for s in self._blackhole:
            s.close()
        self._blackhole = []
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "DNSServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        """NSD's own log and output so far (for assertion messages)."""
        text = ""
        for name in ("nsd.log", "nsd.out"):
            try:
                with open(os.path.join(self.dir or "", name), errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text

    # -- helpers --------------------------------------------------------------
    @property
    def conf(self) -> str:
        return os.path.join(self.dir, "nsd.conf")

    def _zone_file(self, zone: str) -> str:
        return os.path.join(self.dir, zone + ".zone")

    def _spawn(self) -> None:
        """Start NSD in the foreground, in its own session, output to nsd.out."""
        with open(os.path.join(self.dir, "nsd.out"), "ab") as log:
            self.proc = subprocess.Popen([NSD, "-d", "-c", self.conf],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def _write_zones(self) -> None:
        for zone, recs in self.zones.items():
            path = self._zone_file(zone)
            with open(path, "w") as f:
                f.write(zone_text(zone, recs))
            res = subprocess.run([NSD_CHECKZONE, zone + ".", path], capture_output=True,
                                 text=True, timeout=10)
            if res.returncode != 0:
                raise ValueError("zone %s is invalid:\n%s%s" % (zone, res.stdout, res.stderr))

    def _write_conf(self) -> None:
        d = self.dir
        lines = [
            "server:",
            "    ip-address: %s" % HOST,
            "    port: %d" % self.port,
            "    do-ip6: no",
            '    username: ""',
            '    chroot: ""',
            '    database: ""',
            '    zonesdir: "%s"' % d,
            '    zonelistfile: "%s/zone.list"' % d,
            '    xfrdfile: "%s/xfrd.state"' % d,
            '    xfrdir: "%s"' % d,
            '    pidfile: "%s/nsd.pid"' % d,
            '    logfile: "%s/nsd.log"' % d,
            "    server-count: 1",
            "    verbosity: 1",
            "    hide-version: yes",
            "    refuse-any: no",
            # Every query comes from 127.0.0.1: response rate limiting (on by
            # default in Debian's NSD, 200 qps) would drop answers under load.
            "    rrl-ratelimit: 0",
            "    rrl-whitelist-ratelimit: 0",
            "    round-robin: %s" % ("yes" if self.round_robin else "no"),
            "remote-control:",
            "    control-enable: no",
        ]
        for zone in self.zones:
            lines += ["zone:", '    name: "%s."' % zone,
                      '    zonefile: "%s"' % self._zone_file(zone)]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _open_blackhole(self) -> None:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((HOST, 0))
        self.blackhole_port = u.getsockname()[1]
        self._blackhole.append(u)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind((HOST, self.blackhole_port))
            t.listen(16)  # connections complete in the kernel, nobody reads
            self._blackhole.append(t)
        except OSError:
            t.close()  # UDP is what resolvers use; TCP is a courtesy

    def query(self, name: str, rdtype: str = "A", port: Optional[int] = None,
              timeout: float = 1.0, tcp: bool = False) -> dns.message.Message:
        """Ask the server (or another of its ports) one question with dnspython."""
        q = dns.message.make_query(name, rdtype)
        ask = dns.query.tcp if tcp else dns.query.udp
        return ask(q, HOST, port=port or self.port, timeout=timeout)

    def _wait_ready(self, last: bool) -> bool:
        """Until every zone answers its SOA; False if NSD died and may retry."""
        deadline = time.monotonic() + START_TIMEOUT
        todo = list(self.zones)
        while todo:
            if self.proc.poll() is not None:
                if not last and "already in use" in self.log():
                    self.proc = None
                    return False
                raise RuntimeError("nsd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                r = self.query(todo[0] + ".", "SOA", timeout=0.2)
                if r.rcode() == dns.rcode.NOERROR and r.answer:
                    todo.pop(0)
                    continue
            except (dns.exception.Timeout, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("nsd did not serve zone %s within %.0f s:\n%s"
                                   % (todo[0], START_TIMEOUT, self.log()))
            time.sleep(0.05)
        return True
