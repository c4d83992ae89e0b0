"""sink.py - the "internal mail server" of the integration tests.

An aiosmtpd server (SMTP or LMTP) running in a thread on 127.0.0.1. It
records every message it accepts: envelope sender, recipients, MAIL
parameters and the exact content octets after the SMTP transparency
procedure has been undone (aiosmtpd removes one leading dot per line and
keeps CRLF line ends; with decode_data=False the octets are untouched).

Recipients can be made to fail: sink.rules["bad@example.test"] = "550 5.1.1 ..."
makes RCPT TO:<bad@example.test> answer that reply. The server can be
stopped and started again on the same port (the "internal server is down"
tests).
"""

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from aiosmtpd.controller import Controller, UnixSocketController
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP


@dataclass
class Received:
    """One message as the internal server saw it."""

    mail_from: str  # "" for the null reverse-path <>
    rcpt_tos: List[str]
    mail_options: List[str]
    content: bytes
    peer: Optional[tuple] = None
    helo: Optional[str] = None
    tls: bool = False  # the message came over STARTTLS
    when: float = field(default_factory=time.monotonic)


class _Handler:
    """aiosmtpd handler: applies the recipient rules, records the message."""

    def __init__(self, sink: "Sink"):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.sink._saw_rcpt(address)
        reply = self.sink.rule_for(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        # aiosmtpd spells the null reverse-path "<>"; record it as "".
        sender = "" if envelope.mail_from == "<>" else envelope.mail_from
        self.sink._record(
            Received(
                mail_from=sender,
                rcpt_tos=list(envelope.rcpt_tos),
                mail_options=list(envelope.mail_options or []),
                content=bytes(envelope.original_content),
                peer=session.peer,
                helo=session.host_name,
                tls=server._tls_protocol is not None,
            )
        )
        if self.sink.lmtp:
            # LMTP: one reply per accepted recipient (RFC 2033 4.2).
            return "\r\n".join(
                "250 2.0.0 <%s> Ok" % r for r in envelope.rcpt_tos
            )
        return "250 2.0.0 Ok: stored by sink"


class _SinkController(Controller):
    """Controller whose factory builds an SMTP or LMTP server object."""

    def __init__(self, handler, lmtp: bool, **kw):
        self._lmtp = lmtp
        super().__init__(handler, **kw)

    def factory(self):
        cls = LMTP if self._lmtp else SMTP
        return cls(self.handler, **self.SMTP_kwargs)


class _UnixSinkController(UnixSocketController):
    """The same on a Unix-domain socket (for lmtp:unix:/path routes)."""

    def __init__(self, handler, lmtp: bool, **kw):
        self._lmtp = lmtp
        super().__init__(handler, **kw)

    def factory(self):
        cls = LMTP if self._lmtp else SMTP
        return cls(self.handler, **self.SMTP_kwargs)


class Sink:
    """A restartable recording SMTP/LMTP server on 127.0.0.1:port."""

    def __init__(self, port: int, lmtp: bool = False, tls_context=None,
                 unix_path: Optional[str] = None, smtputf8: bool = True,
                 size: Optional[int] = None, host: str = "127.0.0.1"):
        self.port = port
        self.host = host  # the loopback address to listen on (MX tests: 127.0.0.x)
        self.smtputf8 = smtputf8  # announce (and accept) SMTPUTF8
        self.size = size  # announce and enforce SIZE (None: aiosmtpd's default 32 MiB)
        self.unix_path = unix_path  # listen there instead of 127.0.0.1:port
        self.lmtp = lmtp
        self.tls_context = tls_context  # offer STARTTLS with this server context
        self.rules: Dict[str, str] = {}
        self._messages: List[Received] = []
        self._rcpts_seen: List[str] = []  # every RCPT TO address, in order (probes too)
        self._cond = threading.Condition()
        self._controller: Optional[_SinkController] = None

    # -- life cycle ---------------------------------------------------------
    def start(self) -> "Sink":
        """Listen on self.port (the same port every time)."""
        assert self._controller is None, "sink already running"
        ctl = self._controller_new()
        deadline = time.monotonic() + 5
        while True:
            try:
                ctl.start()
                break
            except OSError:
                # The port may still be held briefly by the previous
                # incarnation's sockets; aiosmtpd uses SO_REUSEADDR so this
                # is rare, but retry for a moment instead of failing.
                if time.monotonic() > deadline:
                    raise
                ctl = self._controller_new()
                time.sleep(0.1)
        self._controller = ctl
        return self

    def _controller_new(self):
        kw = {"enable_SMTPUTF8": self.smtputf8}
        if self.size is not None:
            kw["data_size_limit"] = self.size
        if self.tls_context is not None:
            kw["tls_context"] = self.tls_context
        if self.unix_path is not None:
            if os.path.exists(self.unix_path):
                os.unlink(self.unix_path)
            return _UnixSinkController(
                _Handler(self),
                lmtp=self.lmtp,
                unix_socket=self.unix_path,
                server_hostname="sink.internal.test",
                decode_data=False,
                ready_timeout=10.0,
                **kw,
            )
        return _SinkController(
            _Handler(self),
            lmtp=self.lmtp,
            hostname=self.host,
            port=self.port,
            server_hostname="sink.internal.test",
            decode_data=False,
            ready_timeout=10.0,
            **kw,
        )

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    # -- rules and records --------------------------------------------------
    def rule_for(self, address: str) -> Optional[str]:
        with self._cond:
            return self.rules.get(address.lower())

    def set_rule(self, address: str, reply: Optional[str]) -> None:
        """reply like "550 5.1.1 unknown user"; None removes the rule."""
        with self._cond:
            if reply is None:
                self.rules.pop(address.lower(), None)
            else:
                self.rules[address.lower()] = reply

    def _saw_rcpt(self, address: str) -> None:
        with self._cond:
            self._rcpts_seen.append(address)

    def rcpt_count(self, address: str) -> int:
        """How many RCPT TO:<address> the server has received (case-insensitive)."""
        with self._cond:
            return sum(1 for a in self._rcpts_seen if a.lower() == address.lower())

    def _record(self, msg: Received) -> None:
        with self._cond:
            self._messages.append(msg)
            self._cond.notify_all()

    @property
    def messages(self) -> List[Received]:
        with self._cond:
            return list(self._messages)

    def wait_for(self, n: int = 1, timeout: float = 5.0) -> List[Received]:
        """Wait until at least n messages arrived; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "sink %s: expected %d message(s) within %.1f s, got %d"
                        % (self.unix_path or self.port, n, timeout, len(self._messages))
                    )
                self._cond.wait(left)
            return list(self._messages)

    def wait_quiet(self, n: int, quiet: float = 1.0) -> List[Received]:
        """Assert that no more than n messages arrive during `quiet` seconds."""
        time.sleep(quiet)
        msgs = self.messages
        assert len(msgs) == n, "sink: expected exactly %d message(s), got %d: %r" % (
            n,
            len(msgs),
            [(m.mail_from, m.rcpt_tos) for m in msgs],
        )
        return msgs
