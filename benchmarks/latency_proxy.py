"""A TCP proxy in its own process that puts a fixed latency between the senders and the sink.

Every chunk of data read from one side is held for ``delay_ms`` and then written to the
other side, in the order it was read, in each direction: a 10 ms delay is a 20 ms round
trip. Commands a client sends together (pipelined, RFC 2920) arrive in one chunk, or in
several before the server answers, and so share one round trip, as on a real network.
TCP's own handshake is not delayed: a connection costs the greeting's half round trip,
and the proxy connects to the sink as soon as a client connects.

The proxy counts, per connection, the client's **turns**: a burst of client data that
arrives after the server last spoke (after the proxy last delivered server data to that
client) is one turn, so one round trip the client waited for. The counters live in
shared memory the driver reads and resets between scenarios, like the sink's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from typing import ClassVar


def _serve(listen_host, listen_port, target_host, target_port, delay, counters, ready, stop):
    async def pump(reader, writer, on_chunk, on_delivered):
        """Read chunks from ``reader``; write each to ``writer`` ``delay`` s after it was read, in order."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                on_delivered()
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        delivering = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(65536)
                now = loop.time()
                if not data:
                    break
                on_chunk(len(data))
                queue.put_nowait((now + delay, data))
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait((loop.time() + delay, None))
            try:
                await delivering
            except (ConnectionError, OSError):
                pass

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        counters["connections"].value += 1
        counters["open"].value += 1
        counters["peak_open"].value = max(counters["peak_open"].value, counters["open"].value)
        state = {"server_spoke": False}

        def client_chunk(size):
            counters["client_chunks"].value += 1
            counters["client_bytes"].value += size
            if state["server_spoke"]:
                state["server_spoke"] = False
                counters["turns"].value += 1

        def server_chunk(size):
            counters["server_chunks"].value += 1
            counters["server_bytes"].value += size

        def server_delivered():
            state["server_spoke"] = True

        try:
            await asyncio.gather(
                pump(client_reader, server_writer, client_chunk, lambda: None),
                pump(server_reader, client_writer, server_chunk, server_delivered),
            )
        finally:
            counters["open"].value -= 1
            for writer in (client_writer, server_writer):
                writer.close()

    async def main():
        server = await asyncio.start_server(handle, listen_host, listen_port)
        ready.set()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, stop.wait)
        server.close()

    asyncio.run(main())


class LatencyProxy:
    """The proxy process (``listen_port`` → ``target_port``) and its shared counters."""

    COUNTERS: ClassVar[tuple[str, ...]] = (
        "connections", "open", "peak_open", "turns", "client_chunks", "server_chunks", "client_bytes",
        "server_bytes",
    )

    def __init__(self, listen_port: int, target_port: int, delay_ms: float, host: str = "127.0.0.1"):
        self.listen_port, self.target_port, self.delay_ms = listen_port, target_port, delay_ms
        ctx = multiprocessing.get_context("spawn")
        self.counters = {name: ctx.RawValue("q", 0) for name in self.COUNTERS}
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self.process = ctx.Process(
            target=_serve,
            args=(host, listen_port, host, target_port, delay_ms / 1000, self.counters, self._ready, self._stop),
            name="bench-latency-proxy", daemon=True,
        )

    def start(self) -> LatencyProxy:
        self.process.start()
        if not self._ready.wait(30):
            raise RuntimeError("The latency proxy did not start")
        return self

    def stop(self) -> None:
        self._stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()

    @property
    def pid(self) -> int:
        return self.process.pid

    def reset(self) -> None:
        """Zero the counters between scenarios (``open`` is left: it is a level, not a count)."""
        for name in self.COUNTERS:
            if name != "open":
                self.counters[name].value = 0
        self.counters["peak_open"].value = self.counters["open"].value

    def snapshot(self) -> dict:
        return {name: self.counters[name].value for name in self.COUNTERS}
