"""A real SMTP server on loopback (aiosmtpd) that records what it receives and injects faults.

Faults are set by the test while the server runs:

- ``server.fail_first(address, times, code=451)``: reply ``code`` to RCPT for the first ``times`` attempts
- ``server.refuse(address, code=550)``: always refuse this recipient
- ``server.hang(address, seconds)``: accept the connection, then never answer RCPT for this address
- ``server.drop_after_data(address, times)``: drop the connection after DATA, without a reply
- ``server.slow_data(seconds)``: wait this long before answering each DATA (to kill a worker mid-batch)
- ``server.without_8bitmime()``: leave 8BITMIME out of the EHLO reply (aiosmtpd offers it by default)

``SilentServer`` accepts connections and never says anything at all.
"""

from __future__ import annotations

import asyncio
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
    #: the MAIL FROM parameters, upper-cased by aiosmtpd (``BODY=8BITMIME``, ``SIZE=...``)
    mail_options: list[str] = field(default_factory=list)

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
        self._hang: dict[str, float] = {}
        self._drop_after_data: dict[str, int] = {}
        self.data_delay = 0.0
        self.dropped = 0
        self.offer_8bitmime = True
        #: aiosmtpd reads commands as a stream, so it takes pipelined ones; it just does not say so
        self.offer_pipelining = False
        self._refuse_sender: dict[str, int] = {}

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # aiosmtpd leaves it to a handler that has this hook
        if not self.offer_8bitmime:
            responses = [line for line in responses if line != "250-8BITMIME"]
        if self.offer_pipelining:
            responses = [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            code = self._refuse_sender.get(address.lower())
        if code == 421:
            # A provider's per-connection limit: "421", then it hangs up.
            await server.push("421 4.7.0 Too many messages on this connection")
            server.transport.close()
            return "421 4.7.0 closing"
        if code:
            return f"{code} 5.7.1 Sender refused"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        key = address.lower()
        if key in self._hang:
            await asyncio.sleep(self._hang[key])
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
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                remaining = self._drop_after_data.get(rcpt.lower(), 0)
                if remaining > 0:
                    self._drop_after_data[rcpt.lower()] = remaining - 1
                    self.dropped += 1
                    server.transport.close()
                    return "421 dropped"  # never reaches the client: the connection is gone
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                                          mail_options=list(envelope.mail_options)))
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
            self.handler._hang.clear()
            self.handler._drop_after_data.clear()
            self.handler.data_delay = 0.0
            self.handler.dropped = 0
            self.handler.offer_8bitmime = True
            self.handler.offer_pipelining = False
            self.handler._refuse_sender.clear()

    def refuse_sender(self, address: str, code: int = 550):
        with self.handler.lock:
            self.handler._refuse_sender[address.lower()] = code

    def with_pipelining(self):
        """Advertise PIPELINING (RFC 2920) in the EHLO reply."""
        self.handler.offer_pipelining = True

    # faults
    def fail_first(self, address: str, times: int, code: int = 451):
        self.handler._fail_first[address.lower()] = (times, code)

    def refuse(self, address: str, code: int = 550):
        self.handler._refuse[address.lower()] = code

    def hang(self, address: str, seconds: float = 3600):
        self.handler._hang[address.lower()] = seconds

    def drop_after_data(self, address: str, times: int = 1):
        self.handler._drop_after_data[address.lower()] = times

    def slow_data(self, seconds: float):
        self.handler.data_delay = seconds

    def without_8bitmime(self):
        self.handler.offer_8bitmime = False

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


class SilentServer:
    """Accepts TCP connections on loopback and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=2)
        for conn in self.held:
            conn.close()
        self.sock.close()
