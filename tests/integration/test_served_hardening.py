"""Hardening seen from outside: a real ``smsbridge serve`` process on loopback.

* Webhook tokens authenticate providers: they never appear whole in the access log.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from smsbridge.config import Settings
from tests.conftest import ADMIN_KEY
from tests.workers import WorkerProcesses, worker_env


async def test_the_access_log_never_shows_a_whole_webhook_token(
    settings: Settings, tmp_path: Path
) -> None:
    env = worker_env(settings, tmp_path) | {"SMSBRIDGE_LOG_LEVEL": "INFO"}
    group = WorkerProcesses(env, tmp_path)
    try:
        base = await group.start_server(keep_stdout=True)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        ) as http:
            credential = await http.post(
                "/api/v1/credentials",
                json={"name": "sbx", "preset": "sandbox", "auth": {"type": "none"}},
            )
            assert credential.status_code == 201, credential.text
            surface = await http.post(
                "/api/v1/surfaces",
                json={
                    "name": "s",
                    "credential_id": credential.json()["id"],
                    "sender": "+15550001111",
                },
            )
            urls = surface.json()
            tokens = [
                urls["inbound_webhook_url"].rsplit("/", 1)[1],
                urls["status_webhook_url"].rsplit("/", 1)[1],
            ]
            inbound = await http.post(
                "/hooks/inbound/" + tokens[0],
                json={"from": "+33612345678", "to": "+15550001111", "text": "HELP", "id": "a"},
            )
            assert inbound.status_code == 200, inbound.text
            status = await http.post(
                "/hooks/status/" + tokens[1] + "?x=1", json={"id": "nope", "status": "delivered"}
            )
            assert status.status_code == 200, status.text
    finally:
        await group.stop_all()
    proc = group.procs[0]
    assert proc.stdout is not None and proc.stderr is not None
    log = (await proc.stdout.read()).decode() + (await proc.stderr.read()).decode()
    assert "POST /api/v1/surfaces" in log  # the access log is on
    for token in tokens:
        assert len(token) >= 20
        assert token not in log
        assert f"/{token[:4]}…" in log
