"""One entry point to send a message through a credential: sandbox or real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from smsbridge.delivery.oauth2 import TokenCache, TokenRefused
from smsbridge.delivery.sandbox import SandboxProvider
from smsbridge.domain.credentials import AuthType, Credential
from smsbridge.domain.ports import ProviderResponse, ProviderTransport
from smsbridge.domain.request import (
    MessageValues,
    ProviderRequest,
    build_request,
    sent_secrets,
    sign_request,
    with_bearer,
)


@dataclass(frozen=True)
class Attempt:
    """What one send attempt produced."""

    response: ProviderResponse
    latency_ms: float
    secrets: tuple[str, ...] = ()
    """What the request carried that must never come back out of the answer: the
    credential's secrets and the ``Authorization`` value sent (Basic's base64, OAuth's token)."""


class ProviderGateway:
    def __init__(
        self,
        transport: ProviderTransport,
        sandbox: SandboxProvider,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._transport = transport
        self._sandbox = sandbox
        self._clock = clock
        self.tokens = TokenCache(transport, seconds=lambda: self._clock().timestamp())

    async def send(self, credential: Credential, values: MessageValues) -> Attempt:
        """Send once. Raises :class:`smsbridge.errors.DeliveryError` when no response came."""
        if credential.is_sandbox:
            started = time.perf_counter()
            response = await self._sandbox.send(values)
            return Attempt(response, (time.perf_counter() - started) * 1000)
        request = build_request(credential, values)
        auth = credential.auth
        if auth.type is AuthType.HMAC:
            request = sign_request(request, auth, self._clock())
        elif auth.type is AuthType.OAUTH2:
            return await self._send_oauth2(credential, request)
        response = await self._transport.send(request, timeout=credential.timeout_seconds)
        return Attempt(response, response.elapsed_ms, sent_secrets(credential, request))

    async def _send_oauth2(self, credential: Credential, request: ProviderRequest) -> Attempt:
        auth, timeout = credential.auth, credential.timeout_seconds
        started = time.perf_counter()
        for last_try in (False, True):
            try:
                token = await self.tokens.get(auth, timeout=timeout)
            except TokenRefused as refused:  # judged like a provider answer (4xx fail, 5xx retry)
                return Attempt(refused.response, (time.perf_counter() - started) * 1000)
            sent = with_bearer(request, token)
            response = await self._transport.send(sent, timeout=timeout)
            if response.status != 401 or last_try:
                return Attempt(
                    response,
                    (time.perf_counter() - started) * 1000,
                    sent_secrets(credential, sent),
                )
            self.tokens.forget(auth, token)  # revoked or expired early: one fresh token, once
        raise AssertionError("unreachable")
