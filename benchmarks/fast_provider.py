"""A minimal, fast HTTP/1.1 provider for benchmarks: answers every request with ``{"id": …}``.

Run as ``python benchmarks/fast_provider.py PORT [LATENCY_SECONDS]``; it prints ``ready`` once
listening. A raw asyncio protocol (no framework) so that the provider is never the bottleneck
being measured. With a latency, every answer is sent that long after its request arrived, as
a real provider's API answers after tens to hundreds of milliseconds.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

_ids = itertools.count(1)
LATENCY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0


class ProviderProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            body = b'{"id":"bench-%d","status":"accepted"}' % next(_ids)
            assert self.transport is not None
            answer = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            if LATENCY > 0:  # one request at a time per connection: answers stay in order
                asyncio.get_running_loop().call_later(LATENCY, self._answer, answer)
            else:
                self.transport.write(answer)

    def _answer(self, answer: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(ProviderProtocol, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
