"""A minimal, fast HTTP/1.1 provider for benchmarks: answers every request with ``{"id": …}``.

Run as ``python benchmarks/fast_provider.py PORT [LATENCY_SECONDS [LIMIT_PER_SECOND]]``; it
prints ``ready`` once listening. A raw asyncio protocol (no framework) so that the provider is
never the bottleneck being measured. With a latency, every answer is sent that long after its
request arrived, as a real provider's API answers after tens to hundreds of milliseconds.
With a limit, a request arriving when the provider has already accepted that many in the last
second is answered ``429`` (after the same latency), as a provider enforcing its rate does.

``/stats`` (any method) answers at once with what it answered so far, itself not counted:
``{"accepted": …, "throttled": …}``; accepted answers are numbered ``bench-1``, ``bench-2``…
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import sys
import time

import orjson

_ids = itertools.count(1)
LATENCY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
LIMIT = int(sys.argv[3]) if len(sys.argv) > 3 else 0
_accepted_at: collections.deque[float] = collections.deque()
_counts = {"accepted": 0, "throttled": 0}
THROTTLED = b'{"error":"rate limit exceeded"}'


def _answer_for(stats: bool) -> bytes:
    if stats:
        return _response(b"200 OK", orjson.dumps(_counts))
    if LIMIT:
        now = time.monotonic()
        while _accepted_at and _accepted_at[0] <= now - 1.0:
            _accepted_at.popleft()
        if len(_accepted_at) >= LIMIT:
            _counts["throttled"] += 1
            return _response(b"429 Too Many Requests", THROTTLED)
        _accepted_at.append(now)
    _counts["accepted"] += 1
    return _response(b"200 OK", b'{"id":"bench-%d","status":"accepted"}' % next(_ids))


def _response(status: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % (status, len(body)) + body


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
            stats = b" /stats " in head.split(b"\r\n", 1)[0]
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            answer = _answer_for(stats)
            self.buffer = self.buffer[total:]
            assert self.transport is not None
            if LATENCY > 0 and not stats:  # one request at a time per connection: in order
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
