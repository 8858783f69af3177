"""A webhook URL's surface and credential are read once per token at a time: when the
remembered value expires, the webhooks in flight wait for one read (no stampede)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smsbridge.errors import NotFound
from smsbridge.services import webhooks
from smsbridge.services.webhooks import WebhookTargets


async def test_concurrent_webhooks_share_one_read_and_an_unknown_token_fails_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[str] = []

    async def counted(_db: Any, _credentials: Any, token: str, *, kind: str) -> Any:
        reads.append(token)
        await asyncio.sleep(0.01)
        if token == "unknown":
            raise NotFound("no such webhook")
        return (f"surface-{token}", f"credential-{kind}")

    monkeypatch.setattr(webhooks, "webhook_target", counted)
    targets = WebhookTargets(db=None, credentials=None)  # type: ignore[arg-type]
    found = await asyncio.gather(*(targets.get("tok", kind="status") for _ in range(32)))
    assert set(found) == {("surface-tok", "credential-status")}
    assert reads == ["tok"]
    assert await targets.get("tok", kind="status") == ("surface-tok", "credential-status")
    assert reads == ["tok"]  # remembered

    failed = await asyncio.gather(
        *(targets.get("unknown", kind="status") for _ in range(8)), return_exceptions=True
    )
    assert all(isinstance(f, NotFound) for f in failed)
    assert reads == ["tok", "unknown"]
    with pytest.raises(NotFound):  # not remembered: read again
        await targets.get("unknown", kind="status")
    assert reads == ["tok", "unknown", "unknown"]
