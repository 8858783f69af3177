"""The outbound HTTP transport: one shared aiohttp session per process, SSRF-guarded.

The guard sits in the connector (:class:`GuardedConnector`), so it judges the addresses that
are actually connected to (after DNS, for every redirect-free request, IP literals included):
a check before the call could be bypassed by DNS rebinding. aiohttp errors are translated
into our :mod:`smsbridge.errors` tree here and nowhere else.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp.abc import ResolveResult

from smsbridge.domain.addresses import blocked_reason, metadata_reason
from smsbridge.domain.ports import ProviderResponse
from smsbridge.domain.request import ProviderRequest
from smsbridge.errors import DestinationBlocked, ProviderTimeout, ProviderUnreachable

MAX_RESPONSE_BYTES = 256 * 1024


class BlockedAddressError(OSError):
    """Raised inside the connector when every resolved address is refused."""


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector that refuses private, loopback, link-local and metadata addresses;
    with ``allow_private``, metadata addresses only."""

    def __init__(self, *, allow_private: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._allow_private = allow_private

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        results = await super()._resolve_host(host, port, traces)
        refused = metadata_reason if self._allow_private else blocked_reason
        allowed = [r for r in results if refused(r["host"]) is None]
        if not allowed:
            reason = refused(results[0]["host"]) if results else "no address"
            raise BlockedAddressError(f"{host} resolves to a {reason}")
        return allowed


class HttpTransport:
    """:class:`smsbridge.domain.ports.ProviderTransport` over a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    @classmethod
    def create(
        cls, *, allow_private: bool, connections: int = 0, connect_timeout: float = 5.0
    ) -> HttpTransport:
        """``connections``: at most so many open at once (0: no limit). The worker's send
        slots bound its sends (``SMSBRIDGE_WORKER_MAX_CONCURRENCY``); a lower limit here
        would queue them inside aiohttp, and the adaptive limits would read that queueing
        as the provider slowing down."""
        connector = GuardedConnector(
            allow_private=allow_private, limit=connections, ttl_dns_cache=60
        )
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=30, sock_connect=connect_timeout),
            auto_decompress=True,
            trust_env=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )
        return cls(session)

    async def close(self) -> None:
        await self._session.close()

    async def send(self, request: ProviderRequest, *, timeout: float) -> ProviderResponse:
        started = time.perf_counter()
        client_timeout = self._timeouts.get(timeout)
        if client_timeout is None:
            client_timeout = self._timeouts[timeout] = aiohttp.ClientTimeout(
                total=timeout, sock_connect=min(timeout, 5.0)
            )
        try:
            async with self._session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body if request.method != "GET" else None,
                allow_redirects=False,
                timeout=client_timeout,
            ) as response:
                body = await response.content.read(MAX_RESPONSE_BYTES)
                return ProviderResponse(
                    status=response.status,
                    body=body,
                    headers=response.headers,  # case-insensitive, read-only
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                )
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedAddressError):
                advice = (
                    "cloud metadata addresses are always refused"
                    if "metadata" in str(exc.os_error)
                    else "set SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS=true to allow it"
                )
                raise DestinationBlocked(f"provider URL refused: {exc.os_error}; {advice}") from exc
            raise ProviderUnreachable(
                f"could not connect to the provider ({_reason(exc)})"
            ) from exc
        except BlockedAddressError as exc:
            raise DestinationBlocked(f"provider URL refused: {exc}") from exc
        except TimeoutError as exc:
            raise ProviderTimeout(f"no response from the provider within {timeout:g}s") from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise ProviderTimeout("the provider closed the connection before answering") from exc
        except aiohttp.ClientPayloadError as exc:
            raise ProviderTimeout("the provider's response was cut off") from exc
        except aiohttp.InvalidURL as exc:
            raise ProviderUnreachable("the provider URL is not valid") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderUnreachable(f"provider request failed ({type(exc).__name__})") from exc


def connection_budget(wanted: int) -> int:
    """How many sends a worker may have in flight at once when it wants ``wanted``: each
    holds a socket, so at most half the process's open-file limit (``ulimit -n``), leaving
    the rest to the database and everything else. Past it, connections would fail with
    "too many open files", which the worker would take for the provider pushing back."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft // 2))


def _reason(exc: aiohttp.ClientConnectorError) -> str:
    os_error = exc.os_error
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "DNS lookup failed"
    if os_error.strerror:
        return os_error.strerror.lower()
    return type(os_error).__name__


class CallbackPoster:
    """Posts JSON to this server's own public URLs (the sandbox's delivery reports).

    A session of its own, without the SSRF guard: the target is smsbridge itself, typically on
    loopback, never a provider URL a user typed."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __call__(self, url: str, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        async with self._session.post(
            url, data=body, headers={"Content-Type": "application/json"}
        ) as response:
            await response.read()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
