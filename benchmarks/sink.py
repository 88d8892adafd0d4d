"""An SMTP sink in its own process (aiosmtpd) that counts messages, connections and recipients.

It accepts everything and keeps nothing but counters, so its own cost per message is as
small as aiosmtpd allows; it runs in a separate process so that cost shows up as the sink's
CPU, not the measuring process's. The counters live in shared memory the driver reads.

It also counts the client's **turns** (a burst of client data received after the sink
last replied: one round trip the client waited for) and the most connections open at
once. With ``pipelining=True`` its EHLO reply advertises ``PIPELINING`` (RFC 2920);
aiosmtpd reads pipelined commands one line at a time already, it only does not say so.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import ClassVar


def _serve(host, port, counters, ready, stop, sample_path, pipelining=False):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    class CountingHandler:
        def __init__(self):
            self.seen: set[str] = set()
            self.generation = counters["generation"].value

        async def handle_DATA(self, server, session, envelope):
            now = time.monotonic()
            if counters["generation"].value != self.generation:
                self.generation = counters["generation"].value
                self.seen.clear()
            for address in envelope.rcpt_tos:
                key = address.lower()
                if key in self.seen:
                    counters["duplicates"].value += 1
                else:
                    self.seen.add(key)
            if counters["messages"].value == 0:
                counters["first_at"].value = now
            counters["messages"].value += 1
            counters["bytes"].value += len(envelope.original_content or b"")
            counters["last_at"].value = now
            if counters["want_sample"].value:
                counters["want_sample"].value = 0
                Path(sample_path).write_bytes(envelope.original_content or b"")
            return "250 Message accepted for delivery"

    class PipeliningHandler(CountingHandler):
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            # aiosmtpd's documented 5-argument hook: it must set host_name and return the
            # whole reply, which ends with "250 HELP".
            session.host_name = hostname
            return [*responses[:-1], "250-PIPELINING", responses[-1]]

    class CountingSMTP(SMTP):
        def connection_made(self, transport):
            counters["connections"].value += 1
            counters["open"].value += 1
            counters["peak_open"].value = max(counters["peak_open"].value, counters["open"].value)
            self._bench_replied = True  # the greeting
            super().connection_made(transport)

        def connection_lost(self, error):
            counters["open"].value -= 1
            super().connection_lost(error)

        def data_received(self, data):
            if self._bench_replied:
                self._bench_replied = False
                counters["turns"].value += 1
            super().data_received(data)

        async def push(self, status):
            self._bench_replied = True
            await super().push(status)

    class CountingController(Controller):
        def factory(self):
            return CountingSMTP(self.handler, **self.SMTP_kwargs)

    handler = PipeliningHandler() if pipelining else CountingHandler()
    controller = CountingController(handler, hostname=host, port=port)
    controller.start()
    ready.set()
    try:
        stop.wait()
    finally:
        controller.stop()


class Sink:
    """The sink process and its shared counters."""

    COUNTERS: ClassVar[dict[str, str]] = {
        "messages": "q", "connections": "q", "bytes": "q", "duplicates": "q", "generation": "q",
        "want_sample": "q", "first_at": "d", "last_at": "d", "turns": "q", "open": "q", "peak_open": "q",
    }

    def __init__(self, port: int, sample_path: Path, host: str = "127.0.0.1", *, pipelining: bool = False):
        self.host, self.port, self.sample_path, self.pipelining = host, port, sample_path, pipelining
        ctx = multiprocessing.get_context("spawn")
        self.counters = {name: ctx.RawValue(kind, 0) for name, kind in self.COUNTERS.items()}
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self.process = ctx.Process(
            target=_serve, args=(host, port, self.counters, self._ready, self._stop, str(sample_path), pipelining),
            name="bench-smtp-sink", daemon=True,
        )

    def start(self) -> Sink:
        self.process.start()
        if not self._ready.wait(30):
            raise RuntimeError("The SMTP sink did not start")
        return self

    def stop(self) -> None:
        self._stop.set()
        self.process.join(10)

    @property
    def pid(self) -> int:
        return self.process.pid

    def reset(self, *, sample: bool = True) -> None:
        """Zero the counters and forget the recipients seen (between scenarios, with no sender running)."""
        for name in ("messages", "connections", "bytes", "duplicates", "first_at", "last_at", "turns"):
            self.counters[name].value = 0
        self.counters["peak_open"].value = self.counters["open"].value
        self.counters["generation"].value += 1
        self.counters["want_sample"].value = 1 if sample else 0
        if self.sample_path.exists():
            self.sample_path.unlink()

    def __getattr__(self, name):
        counters = self.__dict__.get("counters", {})
        if name in counters:
            return counters[name].value
        raise AttributeError(name)

    def wait_for(self, count: int, timeout: float, *, poll: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.counters["messages"].value >= count:
                return True
            time.sleep(poll)
        return self.counters["messages"].value >= count
