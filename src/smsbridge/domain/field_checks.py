"""Checks shared by the documents users write (credentials, event endpoints): a collector of
field errors, so that one response names every problem, and the provider URL policy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import jsonpath_rfc9535

from smsbridge.errors import FieldError, Phrase, phrase


def one_of(allowed: Iterable[str]) -> Phrase:
    """``must be one of: a, b, c``."""
    return phrase("must be one of: %(allowed)s", allowed=", ".join(allowed))


class Collector:
    """Gathers field errors so that one response lists every problem."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def text(
        self, doc: Mapping[str, Any], key: str, path: str, *, required: bool, default: str = ""
    ) -> str:
        value = doc.get(key)
        if value is None:
            if required:
                self.add(path, phrase("is required"))
            return default
        if not isinstance(value, str):
            self.add(path, phrase("must be a string"))
            return default
        if required and not value.strip():
            self.add(path, phrase("must not be empty"))
        return value

    def jsonpath(self, doc: Mapping[str, Any], key: str, path: str) -> str | None:
        value = doc.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(path, phrase("must be a JSONPath string such as $.id"))
            return None
        try:
            jsonpath_rfc9535.compile(value)
        except jsonpath_rfc9535.JSONPathError as exc:
            self.add(path, phrase("not a valid JSONPath expression: %(why)s", why=str(exc)))
            return None
        return value

    def mapping(self, doc: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
        value = doc.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.add(key, phrase("must be an object"))
            return None
        return value


def check_provider_url(url: str, allow_private: bool) -> str | None:
    """The reason ``url`` is refused as a provider URL, or None when it is acceptable."""
    if url.startswith("sandbox://"):
        return (
            None if url == "sandbox://default" else phrase("the only sandbox is sandbox://default")
        )
    try:
        parts = urlsplit(url.replace("{{appId}}", "app"))
    except ValueError:
        return phrase("not a valid URL")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return phrase("must be an absolute https:// URL (or sandbox://default)")
    if parts.scheme == "http" and not allow_private:
        return phrase(
            "must use https; plain http is only accepted when "
            "SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS is true"
        )
    if parts.username or parts.password:
        return phrase("must not embed credentials; use the auth settings instead")
    return None
