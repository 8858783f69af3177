"""The built-in sandbox provider (``provider_url: sandbox://default``).

No network: it accepts every message and answers like a typical JSON provider
(``{"id": "sbx_…", "status": "accepted"}``), except for numbers ending in ``0000``, which it
rejects with HTTP 400, so failure paths can be tried without a real provider.
"""

from __future__ import annotations

import secrets

import orjson

from smsbridge.domain.ports import ProviderResponse
from smsbridge.domain.request import MessageValues

REJECTED_SUFFIX = "0000"


class SandboxProvider:
    async def send(self, values: MessageValues) -> ProviderResponse:
        digits = "".join(ch for ch in values.to_number if ch.isdigit())
        if digits.endswith(REJECTED_SUFFIX):
            error = {"error": {"code": "invalid_destination", "message": "sandbox rejects *0000"}}
            return ProviderResponse(400, orjson.dumps(error), {"content-type": "application/json"})
        body = {"id": "sbx_" + secrets.token_hex(8), "status": "accepted", "to": values.to_number}
        return ProviderResponse(200, orjson.dumps(body), {"content-type": "application/json"})
