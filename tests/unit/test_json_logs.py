"""Structured logs: one JSON object per line with the ids a record carries, and never a
credential secret or a webhook token, in either format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from smsbridge.observability.logs import (
    JsonFormatter,
    TextFormatter,
    configure_logging,
    mask_secrets,
)

SECRET = "tok-live-abcdef123456"
HOOK_TOKEN = "whtok9f8e7d6c5b4a3210"


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("smsbridge.worker")
    return logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, message, args, None, extra=extra or None
    )


def test_a_line_is_one_json_object_with_the_ids() -> None:
    line = JsonFormatter().format(
        _record(
            "sent %s",
            "msg_01",
            message_id="msg_01",
            campaign_id="cmp_02",
            credential_id="cred_03",
            surface_id="srf_04",
        )
    )
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "smsbridge.worker"
    assert entry["message"] == "sent msg_01"
    assert entry["time"].endswith("+00:00")
    assert (entry["message_id"], entry["campaign_id"]) == ("msg_01", "cmp_02")
    assert (entry["credential_id"], entry["surface_id"]) == ("cred_03", "srf_04")


def test_secrets_carried_by_a_record_are_never_written() -> None:
    record = _record(
        "posting to https://sms.example/hooks/status/%s with Authorization: Bearer %s (%s)",
        HOOK_TOKEN,
        SECRET,
        SecretStr(SECRET),
        credential_id="cred_03",
        token=SECRET,  # extras other than the ids are never written
        credential={"auth": {"token": SECRET}},
    )
    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(record)
        assert SECRET not in line
        assert HOOK_TOKEN not in line
        assert "/hooks/status/whto…" in line  # enough to tell surfaces apart


def test_exceptions_are_masked_too() -> None:
    try:
        raise RuntimeError(f"POST https://user:{SECRET}@api.example/send?api_key={SECRET}")
    except RuntimeError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info()
        )
    entry = json.loads(JsonFormatter().format(record))
    assert "RuntimeError" in entry["exception"]
    assert SECRET not in entry["exception"]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"/hooks/inbound/{HOOK_TOKEN}?x=1", "/hooks/inbound/whto…?x=1"),
        ("/hooks/status/abc", "/hooks/status/…"),
        (f"Basic {SECRET}", "Basic ****"),
        (f"https://a:{SECRET}@host/p", "https://****@host/p"),
        (f"?client_secret={SECRET}&b=2", "?client_secret=****&b=2"),
        ("cred_01J status 200 in 84 ms", "cred_01J status 200 in 84 ms"),
    ],
)
def test_mask_secrets(text: str, kept: str) -> None:
    assert mask_secrets(text) == kept


@pytest.fixture
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_logging_once_whatever_the_calls(root_handlers: None) -> None:
    configure_logging("warning", "json")
    configure_logging("INFO", "json")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "smsbridge_configured", False)]
    assert len(ours) == 1
    assert isinstance(ours[0].formatter, JsonFormatter)
    assert logging.getLogger().level == logging.INFO
    stream = io.StringIO()
    assert isinstance(ours[0], logging.StreamHandler)
    ours[0].setStream(stream)
    logging.getLogger("smsbridge.test").info(
        "hello %s", "/hooks/status/" + HOOK_TOKEN, extra={"campaign_id": "cmp_1"}
    )
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["campaign_id"] == "cmp_1"
    assert HOOK_TOKEN not in entry["message"]
