"""The built-in sandbox provider (``provider_url: sandbox://default``).

It sends nothing anywhere: it accepts every message and answers like a typical JSON provider
(``{"id": "sbx_…", "status": "accepted"}``), except for numbers ending in ``0000``, which it
rejects with HTTP 400, so failure paths can be tried without a real provider.

Like a real provider it then reports delivery: a moment later it posts
``{"id", "status", "error"}`` to the message's status callback URL (the surface's
``/hooks/status/{token}``) — ``delivered``, or ``undelivered`` for numbers ending in ``9999``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable

import orjson

from smsbridge.domain.ports import ProviderResponse
from smsbridge.domain.request import MessageValues

REJECTED_SUFFIX = "0000"
UNDELIVERED_SUFFIX = "9999"
Poster = Callable[[str, bytes], Awaitable[None]]
"""Posts a JSON body to a URL (a delivery report to the status webhook)."""

log = logging.getLogger("smsbridge.sandbox")


class SandboxProvider:
    def __init__(self, *, report: Poster | None = None, report_delay: float = 1.0) -> None:
        self._report = report
        self._delay = report_delay
        self._pending: set[asyncio.Task[None]] = set()

    async def send(self, values: MessageValues) -> ProviderResponse:
        digits = "".join(ch for ch in values.to_number if ch.isdigit())
        if digits.endswith(REJECTED_SUFFIX):
            error = {"error": {"code": "invalid_destination", "message": "sandbox rejects *0000"}}
            return ProviderResponse(400, orjson.dumps(error), {"content-type": "application/json"})
        message_id = "sbx_" + secrets.token_hex(8)
        if self._report is not None and values.status_callback_url:
            undelivered = digits.endswith(UNDELIVERED_SUFFIX)
            report: dict[str, object] = {
                "id": message_id,
                "status": "undelivered" if undelivered else "delivered",
                "error": "sandbox: *9999 numbers are never reached" if undelivered else None,
            }
            task = asyncio.create_task(self._post_later(values.status_callback_url, report))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        body = {"id": message_id, "status": "accepted", "to": values.to_number}
        return ProviderResponse(200, orjson.dumps(body), {"content-type": "application/json"})

    async def _post_later(self, url: str, report: dict[str, object]) -> None:
        assert self._report is not None
        await asyncio.sleep(self._delay)
        try:
            await self._report(url, orjson.dumps(report))
        except Exception as exc:  # the server may be unreachable at that URL: only a demo
            log.info("sandbox delivery report to %s not delivered: %s", url, type(exc).__name__)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        for task in list(self._pending):
            with contextlib.suppress(asyncio.CancelledError):
                await task
