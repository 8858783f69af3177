"""Protocols the services depend on; adapters live in ``delivery/`` and ``storage/``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from smsbridge.domain.request import ProviderRequest


@dataclass(frozen=True)
class ProviderResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    elapsed_ms: float = 0.0


class ProviderTransport(Protocol):
    """Sends one request to a provider.

    Returns the response whatever its status; raises a :class:`smsbridge.errors.DeliveryError`
    subclass when no complete response arrived (blocked, unreachable, timeout).
    """

    async def send(self, request: ProviderRequest, *, timeout: float) -> ProviderResponse: ...
