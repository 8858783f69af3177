"""Checking a credential document: every field, every problem reported by its path.

:func:`parse_credential` returns a :class:`~smsbridge.domain.credentials.Credential` or raises
:class:`InvalidInput` listing every problem by field (one response names them all).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from smsbridge.domain.credentials import (
    DEFAULT_STRING_TO_SIGN,
    DELIVERY_STATUSES,
    HMAC_ALGORITHMS,
    HMAC_ENCODINGS,
    HMAC_PLACEHOLDERS,
    HMAC_TIMESTAMPS,
    MAX_NAME,
    METHODS,
    OAUTH2_CLIENT_AUTH,
    RESERVED_HEADERS,
    VENDORS,
    WEBHOOK_SCHEMES,
    Auth,
    AuthType,
    Credential,
    DeliveryReportMapping,
    HeaderParam,
    HeaderType,
    InboundMapping,
    WebhookSigning,
)
from smsbridge.domain.field_checks import Collector, check_provider_url, one_of
from smsbridge.domain.payload import ContentType, PayloadTemplate, UrlTemplate
from smsbridge.errors import FieldError, InvalidInput, phrase

_HTTP_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")


def parse_credential(doc: Mapping[str, Any], *, allow_private_urls: bool) -> Credential:
    """Validate a credential document; raise :class:`InvalidInput` naming every bad field."""
    c = Collector()
    vendor = c.text(doc, "vendor", "vendor", required=False, default="custom")
    if vendor not in VENDORS:
        c.add("vendor", one_of(VENDORS))
    name = c.text(doc, "name", "name", required=True).strip()
    if len(name) > MAX_NAME:
        c.add("name", phrase("must be at most %(most)s characters", most=MAX_NAME))
    provider_url = c.text(doc, "provider_url", "provider_url", required=True).strip()
    url_template: UrlTemplate | None = None
    if provider_url:
        problem = check_provider_url(provider_url, allow_private_urls)
        if problem:
            c.add("provider_url", problem)
        else:
            try:
                url_template = UrlTemplate.compile(provider_url)
            except InvalidInput as exc:
                c.errors.extend(exc.errors)
    method = c.text(doc, "method", "method", required=False, default="POST").upper()
    if method not in METHODS:
        c.add("method", one_of(METHODS))
    content_type_raw = c.text(
        doc, "content_type", "content_type", required=False, default=ContentType.JSON.value
    )
    try:
        content_type = ContentType(content_type_raw)
    except ValueError:
        c.add(
            "content_type",
            one_of(t.value for t in ContentType),
        )
        content_type = ContentType.JSON

    template: PayloadTemplate | None = None
    if doc.get("payload") is None:
        c.add("payload", phrase("is required"))
    else:
        try:
            template = PayloadTemplate.compile(doc["payload"], content_type)
        except InvalidInput as exc:
            c.errors.extend(exc.errors)

    auth = _parse_auth(c, doc.get("auth"), allow_private_urls)
    headers = _parse_headers(c, doc.get("headers"))
    if auth.type is AuthType.API_KEY and auth.header:
        for index, header in enumerate(headers):
            if header.label.lower() == auth.header.lower():
                c.add(
                    f"headers[{index}].label",
                    phrase("%(label)s already carries the API key", label=header.label),
                )
    response = c.mapping(doc, "response") or {}
    message_id_path = c.jsonpath(response, "message_id_path", "response.message_id_path")
    success_path = c.jsonpath(response, "success_path", "response.success_path")
    success_values = response.get("success_values") or []
    if not isinstance(success_values, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in success_values
    ):
        c.add("response.success_values", phrase("must be a list of strings"))
        success_values = []
    elif success_path and not success_values:
        c.add("response.success_values", phrase("give the values of success_path meaning accepted"))
    inbound = _parse_inbound(c, c.mapping(doc, "inbound"))
    reports = _parse_reports(c, c.mapping(doc, "delivery_reports"))

    rate = doc.get("rate_limit_per_second")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 100_000
    ):
        c.add("rate_limit_per_second", phrase("must be a number greater than 0 and at most 100000"))
        rate = None
    timeout = doc.get("timeout_seconds", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 120:
        c.add(
            "timeout_seconds", phrase("must be a number of seconds greater than 0 and at most 120")
        )
        timeout = 10.0
    retry_ambiguous = doc.get("retry_ambiguous", True)
    if not isinstance(retry_ambiguous, bool):
        c.add("retry_ambiguous", phrase("must be true or false"))
        retry_ambiguous = True

    codes = doc.get("opt_out_error_codes") or []
    if not isinstance(codes, list) or not all(isinstance(x, str | int) for x in codes):
        c.add("opt_out_error_codes", phrase("must be a list of provider error codes"))
        codes = []

    signing = _parse_signing(c, doc.get("webhook_signing"))
    webhook_secret = c.text(doc, "webhook_secret", "webhook_secret", required=False)

    if c.errors or template is None or url_template is None:
        raise InvalidInput(c.errors or [FieldError("payload", phrase("is invalid"))])
    return Credential(
        vendor=vendor,
        name=name,
        provider_app_id=c.text(doc, "provider_app_id", "provider_app_id", required=False),
        provider_name=c.text(doc, "provider_name", "provider_name", required=False),
        provider_url=provider_url,
        method=method,
        auth=auth,
        headers=headers,
        content_type=content_type,
        payload=doc["payload"],
        template=template,
        url_template=url_template,
        message_id_path=message_id_path,
        success_path=success_path,
        success_values=tuple(str(v) for v in success_values),
        inbound=inbound,
        delivery_reports=reports,
        rate_limit_per_second=float(rate) if rate is not None else None,
        retry_ambiguous=retry_ambiguous,
        timeout_seconds=float(timeout),
        preset=doc.get("preset") if isinstance(doc.get("preset"), str) else None,
        opt_out_error_codes=tuple(str(x) for x in codes),
        webhook_signing=signing,
        webhook_secret=webhook_secret,
    )


def parse_webhook_mappings(
    doc: Mapping[str, Any],
) -> tuple[InboundMapping | None, DeliveryReportMapping | None]:
    """A document's ``inbound`` and ``delivery_reports`` mappings alone, checked as
    :func:`parse_credential` checks them (a sample webhook is tried on them before the
    credential is saved); :class:`InvalidInput` names every bad field."""
    c = Collector()
    inbound = _parse_inbound(c, c.mapping(doc, "inbound"))
    reports = _parse_reports(c, c.mapping(doc, "delivery_reports"))
    if c.errors:
        raise InvalidInput(c.errors)
    return inbound, reports


def _parse_signing(c: Collector, raw: object) -> WebhookSigning | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        c.add("webhook_signing", 'must be an object: {"scheme": "standard_webhooks", "secret": …}')
        return None
    scheme = raw.get("scheme", "standard_webhooks")
    if scheme not in WEBHOOK_SCHEMES:
        c.add(
            "webhook_signing.scheme",
            one_of(WEBHOOK_SCHEMES),
        )
        return None
    secret = raw.get("secret")
    if not isinstance(secret, str) or not _standard_webhooks_key(secret):
        c.add(
            "webhook_signing.secret",
            phrase(
                "must be the provider's signing secret: whsec_ followed by base64 (16 bytes or "
                "more)"
            ),
        )
        return None
    return WebhookSigning(str(scheme), secret)


def _standard_webhooks_key(secret: str) -> bytes | None:
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError:
        return None
    return key if len(key) >= 16 else None


def _choice(c: Collector, raw: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = c.text(raw, name, f"auth.{name}", required=False, default=allowed[0]) or allowed[0]
    if value not in allowed:
        c.add(f"auth.{name}", one_of(allowed))
        return allowed[0]
    return value


def _header_name(c: Collector, raw: Mapping[str, Any], name: str, default: str) -> str:
    header = (c.text(raw, name, f"auth.{name}", required=False, default=default) or default).strip()
    if not _HTTP_TOKEN.match(header):
        c.add(f"auth.{name}", phrase("must be a valid HTTP header name"))
    elif header.lower() in RESERVED_HEADERS:
        c.add(
            f"auth.{name}",
            phrase("%(header)s is set by smsbridge; choose another header", header=header),
        )
    return header


def _parse_oauth2(c: Collector, raw: Mapping[str, Any], allow_private_urls: bool) -> Auth:
    token_url = c.text(raw, "token_url", "auth.token_url", required=True).strip()
    if token_url:
        problem = check_provider_url(token_url, allow_private_urls)
        if problem or token_url.startswith("sandbox://") or "{{" in token_url:
            c.add("auth.token_url", problem or phrase("must be an absolute https:// URL"))
    client_id = c.text(raw, "client_id", "auth.client_id", required=True)
    client_secret = c.text(raw, "client_secret", "auth.client_secret", required=True)
    scope = c.text(raw, "scope", "auth.scope", required=False, default="")
    for path, value in (("auth.client_id", client_id), ("auth.scope", scope)):
        if value:
            _check_header_value(c, path, value)
    return Auth(
        AuthType.OAUTH2,
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret,
        scope=scope,
        client_auth=_choice(c, raw, "client_auth", OAUTH2_CLIENT_AUTH),
    )


def _parse_hmac(c: Collector, raw: Mapping[str, Any]) -> Auth:
    secret = c.text(raw, "secret", "auth.secret", required=True)
    template = c.text(
        raw, "string_to_sign", "auth.string_to_sign", required=False, default=DEFAULT_STRING_TO_SIGN
    )
    if not any(p in template for p in HMAC_PLACEHOLDERS):
        c.add(
            "auth.string_to_sign",
            phrase(
                "must use at least one of %(placeholders)s (usually {body})",
                placeholders=", ".join(HMAC_PLACEHOLDERS),
            ),
        )
    prefix = c.text(raw, "signature_prefix", "auth.signature_prefix", required=False, default="")
    if prefix:
        _check_header_value(c, "auth.signature_prefix", prefix)
    signature_header = _header_name(c, raw, "signature_header", "X-Signature")
    timestamp_header = _header_name(c, raw, "timestamp_header", "X-Timestamp")
    if signature_header.lower() == timestamp_header.lower():
        c.add("auth.timestamp_header", phrase("must differ from signature_header"))
    return Auth(
        AuthType.HMAC,
        secret=secret,
        algorithm=_choice(c, raw, "algorithm", HMAC_ALGORITHMS),
        signature_header=signature_header,
        timestamp_header=timestamp_header,
        string_to_sign=template or DEFAULT_STRING_TO_SIGN,
        encoding=_choice(c, raw, "encoding", HMAC_ENCODINGS),
        signature_prefix=prefix or "",
        timestamp_format=_choice(c, raw, "timestamp_format", HMAC_TIMESTAMPS),
    )


def _parse_auth(c: Collector, raw: object, allow_private_urls: bool = False) -> Auth:
    if raw is None:
        raw = {"type": "none"}
    if not isinstance(raw, Mapping):
        c.add("auth", phrase("must be an object with a type"))
        return Auth(AuthType.NONE)
    try:
        auth_type = AuthType(str(raw.get("type")))
    except ValueError:
        c.add(
            "auth.type",
            one_of(t.value for t in AuthType),
        )
        return Auth(AuthType.NONE)
    if auth_type is AuthType.BEARER:
        scheme = c.text(raw, "scheme", "auth.scheme", required=False, default="Bearer") or "Bearer"
        if not _HTTP_TOKEN.match(scheme):
            c.add("auth.scheme", phrase("must be a single word such as Bearer or App"))
        token = c.text(raw, "token", "auth.token", required=True)
        _check_header_value(c, "auth.token", token)
        return Auth(auth_type, scheme=scheme, token=token)
    if auth_type is AuthType.BASIC:
        username = c.text(raw, "username", "auth.username", required=True)
        if ":" in username:
            c.add("auth.username", phrase("must not contain ':'"))
        password = c.text(raw, "password", "auth.password", required=True)
        return Auth(auth_type, username=username, password=password)
    if auth_type is AuthType.API_KEY:
        header = c.text(raw, "header", "auth.header", required=True).strip()
        if header and not _HTTP_TOKEN.match(header):
            c.add("auth.header", phrase("must be a valid HTTP header name"))
        elif header.lower() in RESERVED_HEADERS - {"authorization"}:
            c.add("auth.header", phrase("%(header)s cannot carry the API key", header=header))
        key = c.text(raw, "key", "auth.key", required=True)
        _check_header_value(c, "auth.key", key)
        return Auth(auth_type, header=header, key=key)
    if auth_type is AuthType.OAUTH2:
        return _parse_oauth2(c, raw, allow_private_urls)
    if auth_type is AuthType.HMAC:
        return _parse_hmac(c, raw)
    return Auth(AuthType.NONE)


def _check_header_value(c: Collector, path: str, value: str) -> None:
    if not _HEADER_VALUE.match(value) or value != value.strip():
        c.add(
            path, phrase("must not contain line breaks, control characters or surrounding spaces")
        )


def _parse_headers(c: Collector, raw: object) -> tuple[HeaderParam, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.add("headers", phrase("must be a list of {label, type, value}"))
        return ()
    headers: list[HeaderParam] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"headers[{index}]"
        if not isinstance(item, Mapping):
            c.add(path, phrase("must be an object with label, type and value"))
            continue
        label = c.text(item, "label", f"{path}.label", required=True).strip()
        if label and not _HTTP_TOKEN.match(label):
            c.add(f"{path}.label", phrase("%(label)r is not a valid HTTP header name", label=label))
        elif label.lower() in RESERVED_HEADERS:
            c.add(
                f"{path}.label",
                phrase("%(label)s is set by smsbridge and cannot be set here", label=label),
            )
        elif label.lower() in seen:
            c.add(f"{path}.label", phrase("duplicate header %(label)s", label=label))
        seen.add(label.lower())
        try:
            header_type = HeaderType(item.get("type", "static"))
        except ValueError:
            c.add(f"{path}.type", phrase("must be static or secret"))
            header_type = HeaderType.STATIC
        value = c.text(item, "value", f"{path}.value", required=True)
        _check_header_value(c, f"{path}.value", value)
        headers.append(HeaderParam(label, header_type, value))
    return tuple(headers)


def _parse_inbound(c: Collector, raw: Mapping[str, Any] | None) -> InboundMapping | None:
    if raw is None:
        return None
    return InboundMapping(
        **{
            key: c.jsonpath(raw, key, f"inbound.{key}")
            for key in ("items_path", "from_path", "to_path", "text_path", "id_path")
        }
    )


def _parse_reports(c: Collector, raw: Mapping[str, Any] | None) -> DeliveryReportMapping | None:
    if raw is None:
        return None
    paths = {
        key: c.jsonpath(raw, key, f"delivery_reports.{key}")
        for key in ("items_path", "message_id_path", "status_path", "error_path")
    }
    status_map_raw = raw.get("status_map") or {}
    status_map: dict[str, str] = {}
    if not isinstance(status_map_raw, Mapping):
        c.add("delivery_reports.status_map", phrase("must map provider statuses to ours"))
    else:
        for key, value in status_map_raw.items():
            if not isinstance(value, str) or value not in DELIVERY_STATUSES:
                c.add(
                    f"delivery_reports.status_map.{key}",
                    one_of(sorted(DELIVERY_STATUSES)),
                )
            else:
                status_map[str(key)] = value
    return DeliveryReportMapping(status_map=status_map, **paths)
