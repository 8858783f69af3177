"""Factories for credential documents, shared by the domain unit tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from smsbridge.domain.credential_parser import parse_credential
from smsbridge.domain.credentials import Credential

DocumentFactory = Callable[..., dict[str, Any]]
CredentialFactory = Callable[..., Credential]

VALID_DOCUMENT: dict[str, Any] = {
    "vendor": "custom",
    "name": "acme-infobip",
    "provider_app_id": "app-123",
    "provider_name": "Infobip",
    "provider_url": "https://api.example.com/sms/2/text/advanced",
    "method": "POST",
    "auth": {"type": "bearer", "scheme": "App", "token": "s3cret-token"},
    "headers": [
        {"label": "X-Api-Version", "type": "static", "value": "2"},
        {"label": "X-Signature-Key", "type": "secret", "value": "sig-k3y-value"},
    ],
    "content_type": "application/json",
    "payload": {
        "messages": [
            {
                "from": "{{fromNumber}}",
                "destinations": [{"to": "{{toNumber}}"}],
                "text": "{{message}}",
            }
        ]
    },
    "response": {"message_id_path": "$.messages[0].messageId"},
    "rate_limit_per_second": 50,
}


@pytest.fixture
def make_document() -> DocumentFactory:
    """A valid credential document (the API example), with top-level keys overridden."""

    def make(**overrides: Any) -> dict[str, Any]:
        document = copy.deepcopy(VALID_DOCUMENT)
        document.update(overrides)
        return document

    return make


@pytest.fixture
def make_credential(make_document: DocumentFactory) -> CredentialFactory:
    """A parsed :class:`Credential` built from :func:`make_document` with overrides."""

    def make(**overrides: Any) -> Credential:
        return parse_credential(make_document(**overrides), allow_private_urls=False)

    return make
