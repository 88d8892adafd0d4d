"""A real SMTP server on loopback (aiosmtpd) that records what it receives and injects faults.

Faults are set by the test while the server runs:

- ``server.fail_first(address, times, code=451)``: reply ``code`` to RCPT for the first ``times`` attempts
- ``server.refuse(address, code=550)``: always refuse this recipient
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


class RecordingHandler:
    def __init__(self):
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.connections = 0
        self.rcpt_attempts: dict[str, list[float]] = {}
        self._fail_first: dict[str, tuple[int, int]] = {}
        self._refuse: dict[str, int] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        key = address.lower()
        with self.lock:
            self.rcpt_attempts.setdefault(key, []).append(time.monotonic())
            if key in self._refuse:
                return f"{self._refuse[key]} 5.1.1 Mailbox unavailable"
            if key in self._fail_first:
                remaining, code = self._fail_first[key]
                if remaining > 0:
                    self._fail_first[key] = (remaining - 1, code)
                    return f"{code} 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


class CountingSMTP(SMTP):
    def connection_made(self, transport):
        with self.event_handler.lock:
            self.event_handler.connections += 1
        super().connection_made(transport)


class CountingController(Controller):
    def factory(self):
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


class RecordingSMTPServer:
    def __init__(self, host="127.0.0.1", port=None):
        self.host = host
        self.port = port or free_port()
        self.handler = RecordingHandler()
        self.controller = CountingController(self.handler, hostname=host, port=self.port)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def reset(self):
        with self.handler.lock:
            self.handler.received.clear()
            self.handler.connections = 0
            self.handler.rcpt_attempts.clear()
            self.handler._fail_first.clear()
            self.handler._refuse.clear()

    # faults
    def fail_first(self, address: str, times: int, code: int = 451):
        self.handler._fail_first[address.lower()] = (times, code)

    def refuse(self, address: str, code: int = 550):
        self.handler._refuse[address.lower()] = code

    # what arrived
    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def messages_to(self, address: str) -> list[email.message.EmailMessage]:
        return [r.message for r in self.received if address.lower() in (a.lower() for a in r.rcpt_tos)]

    def attempts_for(self, address: str) -> list[float]:
        with self.handler.lock:
            return list(self.handler.rcpt_attempts.get(address.lower(), []))

    @property
    def connections(self) -> int:
        return self.handler.connections
