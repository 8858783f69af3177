"""Hardening seen from outside: a real ``smsbridge serve`` process on loopback.

* Webhook tokens authenticate providers: they never appear whole in the access log.
* One sender posting the worst templates and CSV files it can build does not freeze the
  server: health checks and webhooks keep answering, memory stays bounded.
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import sys
import time
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


# --- the freeze test ---------------------------------------------------------------------------

WORST_TEMPLATES = [
    "{{ ((((10**64)**64)**64)**64) > 1 }}",  # the review's 37 characters: 25 s before
    "{{ 'x'.ljust(10**9) }}",
    "{{ '%*d' % (10**9, 1) }}",
    "{{ ('x' * 2000)|center(10**9) }}",
    "{{ (('ab' * 2000) ~ '') | replace('a', 'a' * 2000) }}",
    "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
    "x" * 1_300_000,  # compiled and cached whole before (+1 GB)
    # As much sorting and case-mapping as fits the length limit: bounded by the deadline.
    "{{ (('ba' * 2400)|list|sort|join|upper|lower|reverse|length) }}" * 150,
]
FREEZE_SECONDS = 8.0
MEMORY_BOUND_MB = 300


def _worst_csv() -> bytes:
    """4 MB whose second record opens a quote that never closes (13 s of CPU before)."""
    line = b"p,+33612345678," + b"y" * 80 + b"\n"
    return b'external_id,phone,note\nq,+33612345679,"never closed\n' + line * 40_000


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def test_one_sender_cannot_freeze_the_server(sqlite_url: str, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet
    from pydantic import SecretStr

    settings = Settings(
        database_url=sqlite_url,
        admin_key=SecretStr(ADMIN_KEY),
        secret_keys=SecretStr(Fernet.generate_key().decode()),
        public_url="https://sms.example.test",
        state_dir=tmp_path / "state",
    )
    group = WorkerProcesses(worker_env(settings, tmp_path), tmp_path)
    try:
        base = await group.start_server(with_worker=True)
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            sender_key = await _sender_key(group)
            credential = await http.post(
                "/api/v1/credentials",
                headers=admin,
                json={"name": "sbx", "preset": "sandbox", "auth": {"type": "none"}},
            )
            surface = (
                await http.post(
                    "/api/v1/surfaces",
                    headers=admin,
                    json={
                        "name": "s",
                        "credential_id": credential.json()["id"],
                        "sender": "+15550001111",
                    },
                )
            ).json()
            hook = surface["inbound_webhook_url"][surface["inbound_webhook_url"].index("/hooks/") :]
            sender = {"Authorization": f"Bearer {sender_key}"}
            stop = asyncio.Event()
            answers: collections.Counter[int] = collections.Counter()

            async def post_templates() -> None:
                while not stop.is_set():
                    for body in WORST_TEMPLATES:
                        response = await http.post(
                            "/api/v1/messages/preview",
                            headers=sender,
                            json={"surface_id": surface["id"], "to": "+33612345678", "body": body},
                        )
                        answers[response.status_code] += 1

            async def post_csv() -> None:
                data = _worst_csv()
                while not stop.is_set():
                    response = await http.post(
                        "/api/v1/profiles/import",
                        headers=sender | {"Content-Type": "text/csv"},
                        content=data,
                    )
                    answers[response.status_code] += 1

            healthz: list[float] = []
            webhook: list[float] = []

            async def probe() -> None:
                async with httpx.AsyncClient(base_url=base, timeout=30) as prober:
                    n = 0
                    while not stop.is_set():
                        started = time.perf_counter()
                        assert (await prober.get("/healthz")).status_code == 200
                        healthz.append(time.perf_counter() - started)
                        if n % 4 == 0:
                            started = time.perf_counter()
                            mo = {"from": "+33612345678", "text": "HELP", "id": f"mo-{n}"}
                            assert (await prober.post(hook, json=mo)).status_code == 200
                            webhook.append(time.perf_counter() - started)
                        n += 1
                        await asyncio.sleep(0.05)

            attackers = [asyncio.create_task(post_templates()) for _ in range(3)]
            attackers += [asyncio.create_task(post_csv()) for _ in range(2)]
            prober = asyncio.create_task(probe())
            await asyncio.sleep(FREEZE_SECONDS)
            stop.set()
            await asyncio.gather(prober, *attackers)
        peak = _peak_rss_mb(group.procs[0].pid)
    finally:
        await group.stop_all()

    def worst(samples: list[float]) -> str:
        ordered = sorted(samples)
        median, p95 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.95)]
        return (
            f"{len(samples)} probes, median {median * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
        )

    print(
        f"\nfreeze test: answers {dict(answers)}; healthz {worst(healthz)}; "
        f"webhook {worst(webhook)}; server peak RSS {peak:.0f} MB"
    )
    assert 500 not in answers
    assert answers[422] > 0 and answers[200] > 0  # refused templates, imports with line errors
    # Before: /healthz answered after 24.6 s, and the CSV alone held the loop for seconds.
    # The typical answer stays within 200 ms; single probes get a loose bound so that a loaded
    # CI machine cannot fail the test (the figures are printed; docs/configuration.md, Limits).
    assert statistics.median(healthz) < 0.2 and statistics.median(webhook) < 0.2
    assert max(healthz) < 2.0 and max(webhook) < 2.0
    assert peak < MEMORY_BOUND_MB


async def _sender_key(group: WorkerProcesses) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smsbridge",
        "keys",
        "create",
        "--role",
        "sender",
        "--name",
        "attacker",
        env=group._env,
        cwd=group._cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode().strip().splitlines()[-1]
