"""Credential documents: splitting secrets out, showing hints, merging partial updates.

The *full* document holds every field including secret values; the *public* document is the
same without secret values (what is stored in clear); the *view* replaces each secret with
``{"set": true, "last4": "…"}`` (what the API returns).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from smsbridge.domain.credentials import (
    AUTH_FIELDS,
    SECRET_AUTH_FIELDS,
    AuthType,
    Credential,
    HeaderType,
)
from smsbridge.domain.secret_hints import secret_hint
from smsbridge.errors import FieldError, InvalidInput

OPTIONAL_KEYS = frozenset(
    {
        "provider_app_id",
        "provider_name",
        "response",
        "inbound",
        "delivery_reports",
        "rate_limit_per_second",
        "timeout_seconds",
        "retry_ambiguous",
        "headers",
        "opt_out_error_codes",
        "webhook_signing",
        "webhook_secret",
    }
)


def full_document(cred: Credential) -> dict[str, Any]:
    """The normalized document of a validated credential, secrets included."""
    auth: dict[str, Any] = {"type": cred.auth.type.value}
    auth.update((name, getattr(cred.auth, name)) for name in AUTH_FIELDS[cred.auth.type])
    document: dict[str, Any] = {
        "vendor": cred.vendor,
        "name": cred.name,
        "provider_app_id": cred.provider_app_id,
        "provider_name": cred.provider_name,
        "provider_url": cred.provider_url,
        "method": cred.method,
        "auth": auth,
        "headers": [
            {"label": h.label, "type": h.type.value, "value": h.value} for h in cred.headers
        ],
        "content_type": cred.content_type.value,
        "payload": copy.deepcopy(cred.payload),
        "response": {"message_id_path": cred.message_id_path},
        "rate_limit_per_second": cred.rate_limit_per_second,
        "retry_ambiguous": cred.retry_ambiguous,
        "timeout_seconds": cred.timeout_seconds,
        "opt_out_error_codes": list(cred.opt_out_error_codes),
        "preset": cred.preset,
    }
    if cred.success_path is not None:
        document["response"]["success_path"] = cred.success_path
        document["response"]["success_values"] = list(cred.success_values)
    if cred.inbound is not None:
        document["inbound"] = {k: v for k, v in vars(cred.inbound).items() if v is not None}
    if cred.delivery_reports is not None:
        reports = {k: v for k, v in vars(cred.delivery_reports).items() if v is not None}
        reports["status_map"] = dict(cred.delivery_reports.status_map)
        document["delivery_reports"] = reports
    if cred.webhook_signing is not None:
        document["webhook_signing"] = {
            "scheme": cred.webhook_signing.scheme,
            "secret": cred.webhook_signing.secret,
        }
    if cred.webhook_secret:
        document["webhook_secret"] = cred.webhook_secret
    return document


def split_secrets(document: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(public document, secrets by path) of a full document."""
    public = copy.deepcopy(dict(document))
    secrets: dict[str, str] = {}
    auth = public.get("auth") or {}
    for name in SECRET_AUTH_FIELDS[AuthType(auth.get("type", "none"))]:
        if name in auth:
            secrets[f"auth.{name}"] = auth.pop(name)
    for header in public.get("headers") or []:
        if header.get("type") == HeaderType.SECRET.value and "value" in header:
            secrets[f"headers.{header['label']}"] = header.pop("value")
    signing = public.get("webhook_signing")
    if isinstance(signing, dict) and "secret" in signing:
        secrets["webhook_signing.secret"] = signing.pop("secret")
    if isinstance(public.get("webhook_secret"), str):
        secrets["webhook_secret"] = public.pop("webhook_secret")
    return public, secrets


def join_secrets(public: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
    """The full document again: the inverse of :func:`split_secrets`."""
    document = copy.deepcopy(dict(public))
    for path, value in secrets.items():
        section, _, name = path.partition(".")
        if section == "auth":
            document["auth"][name] = value
        elif path == "webhook_secret":
            document["webhook_secret"] = value
        elif section == "webhook_signing":
            document.setdefault("webhook_signing", {})[name] = value
        else:
            for header in document.get("headers") or []:
                if header["label"] == name and header.get("type") == HeaderType.SECRET.value:
                    header["value"] = value
    return document


def view_document(public: Mapping[str, Any], hints: Mapping[str, str]) -> dict[str, Any]:
    """The public document with ``{"set": true, "last4": …}`` where each secret sits."""
    document = copy.deepcopy(dict(public))
    for path, last4 in hints.items():
        section, _, name = path.partition(".")
        hint = {"set": True, "last4": last4}
        if section == "auth":
            document["auth"][name] = hint
        elif path == "webhook_secret":
            document["webhook_secret"] = hint
        elif section == "webhook_signing":
            document.setdefault("webhook_signing", {})[name] = hint
        else:
            for header in document.get("headers") or []:
                if header["label"] == name and header.get("type") == HeaderType.SECRET.value:
                    header["value"] = hint
    return document


def last4(secrets: Mapping[str, str]) -> dict[str, str]:
    return {path: secret_hint(value) for path, value in secrets.items()}


def _is_hint(value: object) -> bool:
    return value is None or (isinstance(value, Mapping) and "set" in value)


def merge_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a partial update to a full document. Omitted secrets keep their value.

    A secret given as ``null`` or as the ``{"set": true, …}`` hint a GET returned counts as
    omitted, so a client can send back what it read. ``auth`` merges field by field while its
    type is unchanged; a new type starts from the patch alone. Other keys are replaced;
    ``null`` removes an optional key.
    """
    merged = copy.deepcopy(dict(current))
    for key, value in patch.items():
        if key == "auth" and isinstance(value, Mapping):
            old = merged.get("auth") or {}
            if value.get("type", old.get("type")) == old.get("type"):
                auth = dict(old)
                auth.update({k: v for k, v in value.items() if not _is_hint(v)})
                merged["auth"] = auth
            else:
                merged["auth"] = {k: v for k, v in value.items() if not _is_hint(v)}
        elif key == "headers" and isinstance(value, list):
            merged["headers"] = _merge_headers(merged.get("headers") or [], value)
        elif key == "webhook_signing" and isinstance(value, Mapping):
            signing = dict(merged.get("webhook_signing") or {})
            signing.update({k: v for k, v in value.items() if not _is_hint(v)})
            merged["webhook_signing"] = signing
        elif key == "webhook_secret" and value is not None and _is_hint(value):
            continue  # the hint a GET returned: the stored secret stays
        elif value is None and key in OPTIONAL_KEYS:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _merge_headers(old: list[Any], new: list[Any]) -> list[Any]:
    secrets = {
        str(h.get("label", "")).lower(): h.get("value")
        for h in old
        if isinstance(h, Mapping) and h.get("type") == HeaderType.SECRET.value
    }
    result = []
    for header in new:
        if not isinstance(header, Mapping):
            result.append(header)
            continue
        item = dict(header)
        label = str(item.get("label", "")).lower()
        if item.get("type") == HeaderType.SECRET.value and _is_hint(item.get("value")):
            if label in secrets:
                item["value"] = secrets[label]
            else:
                item.pop("value", None)
        result.append(item)
    return result


_DEFAULT_PORTS = {"https": 443, "http": 80}


def _origin(url: object, app_id: object) -> tuple[str, str, int | None] | None:
    """Where requests to ``url`` go: (scheme, host, port), with ``{{appId}}`` filled in."""
    if not isinstance(url, str) or not url:
        return None
    try:
        parts = urlsplit(url.replace("{{appId}}", str(app_id or "")))
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return ("invalid", url, None)
    return (parts.scheme, (parts.hostname or "").rstrip(".").lower(), port)


def _describe(origin: tuple[str, str, int | None] | None) -> str:
    if origin is None:
        return "nowhere"
    scheme, host, port = origin
    if not host:
        return scheme
    return f"{scheme}://{host}" + ("" if port == _DEFAULT_PORTS.get(scheme) else f":{port}")


def require_reentered_secrets(
    current: Mapping[str, Any], merged: Mapping[str, Any], patch: Mapping[str, Any]
) -> None:
    """Refuse an update that sends stored secrets to a new host without retyping them.

    A secret is only ever sent where it was typed for: the provider's host for the auth
    token, password, API key, HMAC secret and secret headers (and, for OAuth 2, the access
    token the client secret buys), the token endpoint's host for the client secret. An admin
    who points ``provider_url`` (or ``token_url``, or the ``{{appId}}`` in a URL's host)
    elsewhere must type those secrets again in the same update; otherwise anyone able to edit
    a credential could send its secrets to a server of their own and read them there.
    ``current`` and ``merged`` are full documents, ``patch`` the update as received.
    """
    public_current, _ = split_secrets(current)
    _, supplied = split_secrets(merge_patch(public_current, patch))
    _, kept = split_secrets(merged)
    old_url = _origin(current.get("provider_url"), current.get("provider_app_id"))
    new_url = _origin(merged.get("provider_url"), merged.get("provider_app_id"))
    old_auth = current.get("auth") or {}
    new_auth = merged.get("auth") or {}
    old_token = _origin(old_auth.get("token_url"), current.get("provider_app_id"))
    new_token = _origin(new_auth.get("token_url"), merged.get("provider_app_id"))
    moved: dict[str, str] = {}
    if old_url != new_url:
        for path in kept:
            if path not in ("webhook_signing.secret", "webhook_secret"):  # never sent anywhere
                moved[path] = f"{_describe(old_url)} to {_describe(new_url)}"
    if old_token != new_token and "auth.client_secret" in kept:
        moved["auth.client_secret"] = f"{_describe(old_token)} to {_describe(new_token)}"
    errors = [
        FieldError(
            _field_of(path, merged),
            f"must be typed again: the credential now sends it to another host "
            f"(from {where}); stored secrets only go where they were entered for",
        )
        for path, where in moved.items()
        if path not in supplied
    ]
    if errors:
        raise InvalidInput(errors)


def _field_of(path: str, document: Mapping[str, Any]) -> str:
    """The request field of a secret path (``headers.X-Key`` → ``headers[2].value``)."""
    section, _, name = path.partition(".")
    if section != "headers":
        return path
    for index, header in enumerate(document.get("headers") or []):
        if isinstance(header, Mapping) and str(header.get("label", "")).lower() == name.lower():
            return f"headers[{index}].value"
    return "headers"
