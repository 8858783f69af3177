"""The seams between layers: what the delivery engine needs, as Protocols, and the values that
cross them. Adapters implement them structurally (no inheritance):

* :class:`ProviderTransport` — ``delivery/http.py`` (one shared aiohttp session);
* :class:`CredentialSource` — ``services/credentials.py`` (decrypts, compiles and caches the
  stored credentials), so the worker needs nothing from the services layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from smsbridge.domain.credentials import Credential
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


@dataclass(frozen=True)
class LoadedCredentials:
    """What a claimed batch needs: the credentials ready to send with, and, for each one that
    cannot be used (a stored row today's rules refuse, secrets the keys cannot open), why."""

    usable: dict[str, Credential]
    unusable: dict[str, str]
    """Credential id → the reason: rules and field names only, never a value or a secret."""


class CredentialSource(Protocol):
    """Ready-to-send credentials by id."""

    async def load_many(
        self, credential_ids: Iterable[str], versions: Mapping[str, datetime] | None = None
    ) -> LoadedCredentials:
        """Usable credentials and why each unusable one cannot be used (missing ids are in
        neither). ``versions`` (id → ``updated_at``, as a claim read them) lets a cache answer
        without the database when every cached form is current."""
        ...
