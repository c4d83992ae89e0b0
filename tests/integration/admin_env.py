"""admin_env.py - a gateway with the admin listener, and a small HTTP client for it."""

import json
import secrets
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

from checks_env import checks_gateway
from conftest import Gateway, free_port


def admin_section(port: int, token_file: Path, timeout: int = 2,
                  hosts: Sequence[str] = ()) -> str:
    return ('admin {\n    address = "127.0.0.1:%d"\n    token_file = "%s"\n'
            '    timeout = %d\n    hosts = {%s}\n}\n'
            % (port, token_file, timeout, ", ".join('"%s"' % h for h in hosts)))


def admin_gateway(gateway, tmp_path: Path, checks: Optional[Sequence[str]] = None,
                  sections: str = "", dns: Optional[str] = None, timeout: int = 2,
                  hosts: Sequence[str] = (), **kw) -> Gateway:
    """A started gateway with `admin { ... }`; gw.admin is its Admin client."""
    token = secrets.token_hex(20)
    tf = tmp_path / "admin.token"
    tf.write_text(token + "\n")
    tf.chmod(0o600)
    port = free_port()
    extra = sections + admin_section(port, tf, timeout, hosts)
    if checks is not None:
        gw = checks_gateway(gateway, checks, extra, dns=dns, **kw)
    else:
        gw = gateway(extra=kw.pop("extra", "") + extra, **kw)
    gw.admin = Admin(port, token)
    return gw


class Admin:
    """HTTP to the admin listener: get/post return (status, headers, body bytes)."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.token = token
        self.base = "http://127.0.0.1:%d" % port

    def request(self, method: str, path: str, data: Optional[Dict[str, str]] = None,
                token: Optional[str] = None) -> Tuple[int, Dict[str, str], bytes]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, method=method)
        if token is not None:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def get(self, path: str) -> Tuple[int, Dict[str, str], bytes]:
        return self.request("GET", path)

    def json(self, path: str):
        code, headers, body = self.get(path)
        assert code == 200, (path, code, body)
        assert headers["Content-Type"] == "application/json", headers
        return json.loads(body)

    def post(self, path: str, data: Optional[Dict[str, str]] = None, token: Optional[str] = "",
             expect: int = 200):
        """POST with the right token (token="" ), another one, or none (None)."""
        code, headers, body = self.request("POST", path, data or {},
                                           self.token if token == "" else token)
        assert code == expect, (path, data, code, body)
        return json.loads(body) if body else None

    def raw(self, data: bytes, timeout: float = 5.0) -> bytes:
        """Send bytes on a fresh connection; everything the server answers until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
            return out
