"""``/metrics`` on an address of its own, without an API key.

For ``SMSBRIDGE_METRICS_LISTEN=host:port`` (``smsbridge serve``) and ``smsbridge worker
--metrics-port``: Prometheus scrapes this listener instead of presenting a key to the API.
Anyone who reaches it reads the metrics (credential ids, volumes, error rates), so it belongs
on loopback or a private network, never on a public address (docs/operations.md).

It runs on the process's event loop (aiohttp), like everything else: a scrape costs one
rendering of the registry and, every few seconds, one bounded database read
(:class:`~smsbridge.observability.gauges.DatabaseGauges`).
"""

from __future__ import annotations

import socket

from aiohttp import web

from smsbridge.observability.metrics import Metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic Prometheus text format, which every Prometheus (and agent) reads."""


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6) → (host, port); ValueError when malformed."""
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected host:port, got {value!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


class MetricsServer:
    """``GET /metrics`` of ``metrics`` on ``host``:``port`` (0: any free port, see :attr:`port`)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self._metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _serve(self, _request: web.Request) -> web.Response:
        body = await self._metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def start(self) -> None:
        """Listen; raises OSError when the address cannot be used."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
