"""The ``smsbridge`` command line, run as a real process against a real SQLite file."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.mock_provider import MockProvider

SMSBRIDGE = [sys.executable, "-m", "smsbridge"]


def _env(workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSBRIDGE_")}
    env.update(
        SMSBRIDGE_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'cli.db'}",
        SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS="true",
        COLUMNS="200",
        **extra,
    )
    return env


def run(
    workdir: Path, *args: str, ok: bool = True, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*SMSBRIDGE, *args],
        cwd=workdir,
        env={**_env(workdir), "COLUMNS": str(columns)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    created = run(tmp_path, "keys", "create", "--role", "sender", "--name", "crm")
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("sbk_sender_")
    key_id = re.search(r"(key_\w+)", created.stdout)
    assert key_id is not None
    listed = run(tmp_path, "keys", "list").stdout
    assert "crm" in listed and "sender" in listed
    assert key not in listed
    run(tmp_path, "keys", "revoke", key_id.group(1))
    again = run(tmp_path, "keys", "revoke", key_id.group(1), ok=False)
    assert again.returncode == 1
    assert "no active API key" in again.stderr
    bad_role = run(tmp_path, "keys", "create", "--role", "root", "--name", "x", ok=False)
    assert bad_role.returncode == 1
    assert "role" in bad_role.stderr


async def test_credentials_commands(tmp_path: Path, mock_provider: MockProvider) -> None:
    document = {
        "name": "from-file",
        "provider_url": f"{mock_provider.url}/send",
        "auth": {"type": "bearer", "token": "cli-token-778899"},
        "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        "response": {"message_id_path": "$.id"},
    }
    path = tmp_path / "cred.json"
    path.write_text(json.dumps(document))
    created = run(tmp_path, "credentials", "create", "--from-file", str(path)).stdout
    match = re.search(r"(cred_\w+)", created)
    assert match is not None
    cred_id = match.group(1)

    listed = run(tmp_path, "credentials", "list").stdout
    assert cred_id in listed and "from-file" in listed
    narrow = run(tmp_path, "credentials", "list", columns=80).stdout
    assert cred_id in narrow, narrow  # an 80-column terminal: the id stays whole, to be copied
    shown = json.loads(run(tmp_path, "credentials", "show", cred_id).stdout)
    assert shown["auth"]["token"] == {"set": True, "last4": "8899"}

    # the CLI runs the blocking subprocess; the mock provider answers from this event loop
    import asyncio

    tested = await asyncio.to_thread(
        run, tmp_path, "credentials", "test", cred_id, "--to", "+33612345678"
    )
    assert "ok HTTP 200" in tested.stdout
    assert mock_provider.requests[-1].header("Authorization") == "Bearer cli-token-778899"

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**document, "name": "", "payload": {"to": "{{toNumber}}"}}))
    refused = run(tmp_path, "credentials", "create", "--from-file", str(bad), ok=False)
    assert refused.returncode == 1
    assert "name" in refused.stderr and "payload" in refused.stderr

    run(tmp_path, "credentials", "delete", cred_id)
    assert cred_id not in run(tmp_path, "credentials", "list").stdout
    for output in (created, listed, json.dumps(shown), tested.stdout):
        assert "cli-token-778899" not in output


def test_rotate_secrets_command(tmp_path: Path) -> None:
    path = tmp_path / "cred.json"
    path.write_text(json.dumps({"name": "sbx", "preset": "sandbox"}))
    run(tmp_path, "credentials", "create", "--from-file", str(path))
    assert "1 credential" in run(tmp_path, "keys", "rotate-secrets").stdout


def test_help_texts_describe_commands(tmp_path: Path) -> None:
    top = run(tmp_path, "--help").stdout
    for command in ("serve", "migrate", "keys", "credentials"):
        assert command in top
    assert "--from-file" in run(tmp_path, "credentials", "create", "--help").stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answered(process: subprocess.Popen[str], url: str) -> httpx.Response:
    """The first answer ``url`` gives while ``process`` starts (30 s at most; it must not
    exit meanwhile). A 503 while starting is an answer too: the caller checks the status."""
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = httpx.get(url, timeout=1)
            if answer.status_code != 503:
                return answer
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            pytest.fail(f"no answer at {url}: {process.stdout and process.stdout.read()}")
        time.sleep(0.2)


def _serve_once(
    workdir: Path, port: int | None = None, check: Callable[[str, str], None] | None = None
) -> tuple[str, str]:
    """Start ``serve``, wait for /healthz, run ``check(base URL, admin key)``, return (printed
    output, admin key printed)."""
    port = port or _free_port()
    process = subprocess.Popen(
        [*SMSBRIDGE, "serve", "--port", str(port)],
        cwd=workdir,
        env={k: v for k, v in _env(workdir).items() if k != "SMSBRIDGE_DATABASE_URL"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        healthy = _answered(process, f"http://127.0.0.1:{port}/healthz")
        assert healthy.status_code == 200, "serve did not become healthy"
        key = (workdir / ".smsbridge" / "admin_key").read_text().strip()
        listed = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/credentials",
            headers={"Authorization": f"Bearer {key}"},
            timeout=5,
        )
        assert listed.status_code == 200
        if check is not None:
            check(f"http://127.0.0.1:{port}", key)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    return output, key


def test_serve_generates_keys_once_and_reuses_them(tmp_path: Path) -> None:
    first_output, first_key = _serve_once(tmp_path)
    state = tmp_path / ".smsbridge"
    for name in ("admin_key", "secret_keys"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600
    assert f"admin key: {first_key}" in first_output
    assert "/admin" in first_output
    assert (tmp_path / "smsbridge.db").exists()

    second_output, second_key = _serve_once(tmp_path)
    assert second_key == first_key
    assert f"admin key: {first_key}" in second_output


def test_serve_points_webhooks_at_its_own_port_unless_told_otherwise(tmp_path: Path) -> None:
    """Without SMSBRIDGE_PUBLIC_URL, webhook URLs (and short links, and the sandbox's reports)
    used http://127.0.0.1:8000 whatever port serve listened on."""
    port = _free_port()
    made: dict[str, str] = {}

    def surface_urls(base: str, key: str) -> None:
        auth = {"Authorization": f"Bearer {key}"}
        credential = httpx.post(
            f"{base}/api/v1/credentials",
            headers=auth,
            json={
                "name": "sandbox",
                "provider_url": "sandbox://default",
                "auth": {"type": "none"},
                "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            },
            timeout=5,
        )
        assert credential.status_code == 201, credential.text
        surface = httpx.post(
            f"{base}/api/v1/surfaces",
            headers=auth,
            json={"name": "s", "credential_id": credential.json()["id"], "sender": "Acme"},
            timeout=5,
        )
        assert surface.status_code == 201, surface.text
        made.update(surface.json())

    output, _ = _serve_once(tmp_path, port, surface_urls)
    assert made["status_webhook_url"].startswith(f"http://127.0.0.1:{port}/hooks/status/")
    assert made["inbound_webhook_url"].startswith(f"http://127.0.0.1:{port}/hooks/inbound/")
    assert f"public URL: http://127.0.0.1:{port}" in output


def test_serve_on_a_taken_port_says_so_first_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*SMSBRIDGE, "serve", "--port", str(port)],
            cwd=tmp_path,
            env={k: v for k, v in _env(tmp_path).items() if k != "SMSBRIDGE_DATABASE_URL"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stdout == ""  # no banner, no worker started
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {port}" in lines[0] and "--port" in lines[0]
    assert not (tmp_path / ".smsbridge").exists()  # nothing set up either
    assert not (tmp_path / "smsbridge.db").exists()


def test_demo_runs_a_first_campaign_end_to_end(tmp_path: Path) -> None:
    done = run(tmp_path, "demo", "--profiles", "120")
    assert "120 profiles imported" in done.stdout
    assert re.search(r"completed", done.stdout)
    # every 250th number is refused by the sandbox: profile 0 only, among 120
    assert re.search(r"sent\s+│\s+119", done.stdout), done.stdout
    assert re.search(r"failed\s+│\s+1\b", done.stdout), done.stdout
    assert "https://shop.example.com/spring" in done.stdout
    assert "sms - Acme" in done.stdout  # GSM-7 throughout: one segment each, not UCS-2's two


def test_profiles_import_and_campaign_commands(tmp_path: Path) -> None:
    run(tmp_path, "demo", "--profiles", "1")  # a sandbox surface to use
    surface = re.search(r"(srf_\w+)", run(tmp_path, "demo", "--profiles", "1").stdout)
    assert surface is not None
    csv = tmp_path / "people.csv"
    csv.write_text(
        "external_id,phone,firstName,city\n"
        "c1,+33611111111,Ana,Paris\n"
        "c2,+33611111112,Bob,Lyon\n"
        "c3,oops,Cyd,Paris\n"
        "c4,+33611111114,Dee,Paris\n"
    )
    imported = run(tmp_path, "profiles", "import", str(csv), ok=False)
    assert imported.returncode == 1  # some lines failed: a non-zero exit for scripts
    assert "3 profiles imported from 5 lines; 1 error(s)" in imported.stdout
    assert re.search(r"4\s+│\s+phone", imported.stdout), imported.stdout
    shown = run(tmp_path, "profiles", "show", "c2").stdout
    assert '"firstName": "Bob"' in shown

    created = run(
        tmp_path,
        "campaigns",
        "create",
        "--name",
        "paris",
        "--surface",
        surface.group(1),
        "--body",
        "Bonjour {{ profile.firstName }} {{ code }}",
        "--where",
        "city=Paris",
        "--var",
        "code=P1",
    ).stdout
    campaign = re.search(r"(cmp_\w+)", created)
    assert campaign is not None
    launched = run(tmp_path, "campaigns", "launch", campaign.group(1), "--wait", "--run-worker")
    assert re.search(r"targeted\s+│\s+2\b", launched.stdout), launched.stdout
    assert re.search(r"sent\s+│\s+2\b", launched.stdout)
    shown = run(tmp_path, "campaigns", "show", campaign.group(1)).stdout
    assert "completed" in shown
    bad = run(
        tmp_path,
        "campaigns",
        "create",
        "--name",
        "x",
        "--surface",
        "srf_x",
        "--body",
        "hi",
        ok=False,
    )
    assert bad.returncode == 2
    assert "exactly one audience" in bad.stderr

    draft = run(
        tmp_path,
        *("campaigns", "create", "--name", "oops", "--surface", surface.group(1)),
        *("--body", "hi", "--where", "city=Paris"),
    ).stdout
    draft_id = re.search(r"(cmp_\w+)", draft)
    assert draft_id is not None
    kept = run(tmp_path, "campaigns", "delete", campaign.group(1), ok=False)
    assert kept.returncode != 0 and "only a draft" in kept.stdout + kept.stderr
    assert draft_id.group(1) in run(tmp_path, "campaigns", "delete", draft_id.group(1)).stdout
    assert draft_id.group(1) not in run(tmp_path, "campaigns", "list").stdout


def test_report_command_prints_the_campaign_numbers(tmp_path: Path) -> None:
    demo = run(tmp_path, "demo", "--profiles", "30").stdout
    campaign = re.search(r"(cmp_\w+)", demo)
    assert campaign is not None
    printed = run(tmp_path, "report", campaign.group(1)).stdout
    assert re.search(r"targeted\s+│\s+30\b", printed), printed
    assert re.search(r"sent\s+│\s+29\b", printed)
    assert re.search(r"errors\s+│\s+1 \(3\.3%\)", printed)
    assert "provider refused the request (400)" in printed
    missing = run(tmp_path, "report", "cmp_nope", ok=False)
    assert missing.returncode == 1
    assert "no campaign cmp_nope" in missing.stderr


def test_send_batch_reads_a_file_and_names_each_refused_line(tmp_path: Path) -> None:
    surface = re.search(r"(srf_\w+)", run(tmp_path, "demo", "--profiles", "1").stdout)
    assert surface is not None
    lines = [
        {"to": "+33612340001", "body": "one"},
        {"to": "not a number", "body": "two"},
        {"to": "+33612340003", "body": "three", "send_at": "2999-01-01T09:00:00+00:00"},
        {"to": "+33612340004", "body": "four", "colour": "red"},
    ]
    jsonl = tmp_path / "messages.jsonl"
    jsonl.write_text("\n".join(json.dumps(line) for line in lines) + "\n{not json\n")
    done = run(tmp_path, "send-batch", str(jsonl), "--surface", surface.group(1), ok=False)
    assert done.returncode == 1
    assert "5 read: 2 accepted, 3 refused" in done.stdout
    assert "line 2: to:" in done.stderr
    assert "line 4: colour: is not a known field" in done.stderr
    assert "line 5: line: not JSON" in done.stderr

    table = tmp_path / "messages.csv"
    table.write_text("to,body\n+33612340005,five\n+33612340006,six\n")
    done = run(tmp_path, "send-batch", str(table), "--surface", surface.group(1))
    assert "2 read: 2 accepted, 0 refused" in done.stdout
    assert "send-batch" in run(tmp_path, "--help").stdout


def test_input_errors_are_printed_once_each(tmp_path: Path) -> None:
    """A refused document names each problem once (the summary line used to repeat the one
    problem it summed up), and square brackets in field names survive the terminal."""
    several = tmp_path / "several.json"
    several.write_text(
        json.dumps(
            {
                "name": "x",
                "provider_url": "ftp://sms.example.com",
                "payload": {"to": "{{toNumber}}"},
                "auth": {"type": "bearer"},
                "headers": [{"label": "X-Key", "type": "secret"}],
            }
        )
    )
    done = run(tmp_path, "credentials", "create", "--from-file", str(several), ok=False)
    assert done.returncode == 1
    assert "problems with the input:" in done.stderr
    assert done.stderr.count("auth.token: is required") == 1
    assert "headers[0].value: is required" in done.stderr
    one = tmp_path / "one.json"
    one.write_text(
        json.dumps(
            {
                "name": "y",
                "provider_url": "https://sms.example.com",
                "payload": {"a": "{{toNumber}}", "b": "{{fromNumber}}", "c": "{{message}}"},
                "auth": {"type": "bearer"},
            }
        )
    )
    done = run(tmp_path, "credentials", "create", "--from-file", str(one), ok=False)
    assert done.stderr.strip().splitlines() == ["error: auth.token: is required"]


def test_worker_serves_its_own_metrics_on_metrics_port(tmp_path: Path) -> None:
    """``smsbridge worker --metrics-port`` answers /metrics (Prometheus text, the worker's own
    registry, no key: a loopback listener) and stops with the worker."""
    from prometheus_client.parser import text_string_to_metric_families

    run(tmp_path, "migrate")
    port = _free_port()
    worker = subprocess.Popen(
        [*SMSBRIDGE, "worker", "--metrics-port", str(port)],
        cwd=tmp_path,
        env=_env(tmp_path, SMSBRIDGE_ADMIN_KEY="sbk_admin_" + "k" * 32),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        answer = _answered(worker, f"http://127.0.0.1:{port}/metrics")
        assert answer.status_code == 200
        names = {family.name for family in text_string_to_metric_families(answer.text)}
        assert {"smsbridge_send_attempts", "smsbridge_outbox_messages"} <= names, names
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
