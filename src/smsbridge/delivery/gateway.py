"""One entry point to send a message through a credential: sandbox or real HTTP."""

from __future__ import annotations

import time
from dataclasses import dataclass

from smsbridge.delivery.sandbox import SandboxProvider
from smsbridge.domain.credentials import Credential
from smsbridge.domain.ports import ProviderResponse, ProviderTransport
from smsbridge.domain.request import MessageValues, build_request


@dataclass(frozen=True)
class Attempt:
    """What one send attempt produced."""

    response: ProviderResponse
    latency_ms: float


class ProviderGateway:
    def __init__(self, transport: ProviderTransport, sandbox: SandboxProvider) -> None:
        self._transport = transport
        self._sandbox = sandbox

    async def send(self, credential: Credential, values: MessageValues) -> Attempt:
        """Send once. Raises :class:`smsbridge.errors.DeliveryError` when no response came."""
        if credential.is_sandbox:
            started = time.perf_counter()
            response = await self._sandbox.send(values)
            return Attempt(response, (time.perf_counter() - started) * 1000)
        request = build_request(credential, values)
        response = await self._transport.send(request, timeout=credential.timeout_seconds)
        return Attempt(response, response.elapsed_ms)
