"""An SMTP sink in its own process (aiosmtpd) that counts messages, connections and recipients.

It accepts everything and keeps nothing but counters, so its own cost per message is as
small as aiosmtpd allows; it runs in a separate process so that cost shows up as the sink's
CPU, not the measuring process's. The counters live in shared memory the driver reads.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import ClassVar


def _serve(host, port, counters, ready, stop, sample_path):
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

    class CountingSMTP(SMTP):
        def connection_made(self, transport):
            counters["connections"].value += 1
            super().connection_made(transport)

    class CountingController(Controller):
        def factory(self):
            return CountingSMTP(self.handler, **self.SMTP_kwargs)

    controller = CountingController(CountingHandler(), hostname=host, port=port)
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
        "want_sample": "q", "first_at": "d", "last_at": "d",
    }

    def __init__(self, port: int, sample_path: Path, host: str = "127.0.0.1"):
        self.host, self.port, self.sample_path = host, port, sample_path
        ctx = multiprocessing.get_context("spawn")
        self.counters = {name: ctx.RawValue(kind, 0) for name, kind in self.COUNTERS.items()}
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self.process = ctx.Process(
            target=_serve, args=(host, port, self.counters, self._ready, self._stop, str(sample_path)),
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
        for name in ("messages", "connections", "bytes", "duplicates", "first_at", "last_at"):
            self.counters[name].value = 0
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
