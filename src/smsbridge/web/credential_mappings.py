"""The credential form's webhook mappings: where inbound messages and delivery reports keep
their fields (JSONPaths), how provider statuses map to ours, and the sample check — paste a
webhook body, see what smsbridge would read from it, before saving.

The check runs on the server, on the unsaved form, with the readers the webhook URLs use
(:mod:`smsbridge.domain.webhooks`), on a body of at most :data:`MAX_SAMPLE_BYTES`.

What the form says of its own (problems found here, the sample's columns, a webhook URL's gap)
is in the language of the translator given, English when none is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonpath_rfc9535 import JSONPathError

from smsbridge.domain.credential_parser import parse_webhook_mappings
from smsbridge.domain.credentials import DELIVERY_STATUSES
from smsbridge.domain.webhooks import read_body, read_inbound, read_reports
from smsbridge.errors import FieldError, InvalidInput, MalformedWebhook
from smsbridge.services.credentials import with_sandbox_webhooks
from smsbridge.web.i18n import Translator, translator_for

INBOUND_PATHS = ("items_path", "from_path", "to_path", "text_path", "id_path")
REPORT_PATHS = ("items_path", "message_id_path", "status_path", "error_path")
REQUIRED = {
    "inbound": ("from_path", "text_path"),
    "delivery_reports": ("message_id_path", "status_path"),
}
STATUS_MAP = "delivery_reports.status_map"
SAMPLE = "sample_body"
MAX_SAMPLE_BYTES = 64 * 1024
SAMPLE_TYPES = ("application/json", "application/x-www-form-urlencoded")
KINDS = {"check_reports": "delivery_reports", "check_inbound": "inbound"}
"""The form's check buttons (``do`` values) and the mapping each one tries."""

_OURS = ", ".join(sorted(DELIVERY_STATUSES))
ENGLISH = translator_for("en")


@dataclass
class MappingForm:
    """The mapping fields as typed (or as stored), and the sample to check."""

    inbound: dict[str, str] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    status_map: str = ""
    """One ``provider status = ours`` per line."""
    sample: str = ""
    sample_type: str = SAMPLE_TYPES[0]

    @classmethod
    def of_document(cls, document: Mapping[str, Any]) -> MappingForm:
        inbound = document.get("inbound") or {}
        reports = document.get("delivery_reports") or {}
        status_map = reports.get("status_map") or {}
        return cls(
            inbound={k: str(inbound.get(k) or "") for k in INBOUND_PATHS},
            reports={k: str(reports.get(k) or "") for k in REPORT_PATHS},
            status_map="\n".join(f"{k} = {v}" for k, v in status_map.items()),
        )

    @classmethod
    def of_form(cls, text: Mapping[str, str]) -> MappingForm:
        return cls(
            inbound={k: text.get(f"inbound_{k}", "") for k in INBOUND_PATHS},
            reports={k: text.get(f"reports_{k}", "") for k in REPORT_PATHS},
            status_map=text.get("reports_status_map", "").replace("\r\n", "\n"),
            sample=text.get(SAMPLE, ""),
            sample_type=text.get("sample_type", SAMPLE_TYPES[0]),
        )

    def document_part(self, _: Translator = ENGLISH) -> tuple[dict[str, Any], dict[str, str]]:
        """(``inbound`` and ``delivery_reports``, None where all their fields are empty;
        problems the domain cannot see: unreadable status-map lines, a path a given mapping
        cannot work without)."""
        errors: dict[str, str] = {}
        status_map, problem = parse_status_map(self.status_map, _)
        if problem:
            errors[STATUS_MAP] = problem
        reports: dict[str, Any] = {k: v for k, v in self.reports.items() if v}
        if status_map:
            reports["status_map"] = status_map
        part = {
            "inbound": {k: v for k, v in self.inbound.items() if v} or None,
            "delivery_reports": reports or None,
        }
        for key, required in REQUIRED.items():
            mapping = part[key]
            for name in required:
                if mapping is not None and not mapping.get(name):
                    errors[f"{key}.{name}"] = _(
                        "is required once any field of this mapping is given"
                    )
        return part, errors


def parse_status_map(text: str, _: Translator = ENGLISH) -> tuple[dict[str, str], str | None]:
    """The ``provider status = ours`` lines as a mapping, and the first line that cannot be
    read (the values are checked by the domain, like any credential's)."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        provider, sep, ours = line.rpartition("=")
        if not sep or not provider.strip() or not ours.strip():
            return found, _(
                "line %(number)s: write it as provider status = one of %(statuses)s",
                number=number,
                statuses=_OURS,
            )
        if provider.strip() in found:
            return found, _(
                "line %(number)s: %(status)s is given twice",
                number=number,
                status=repr(provider.strip()),
            )
        found[provider.strip()] = ours.strip()
    return found, None


def fold_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """Field errors as the form shows them: one status-map field for all of its entries."""
    folded: dict[str, str] = {}
    for name, message in errors.items():
        if name.startswith(STATUS_MAP + "."):
            folded.setdefault(STATUS_MAP, f"{name.removeprefix(STATUS_MAP + '.')}: {message}")
        else:
            folded.setdefault(name, message)
    return folded


@dataclass(frozen=True)
class SampleResult:
    """What the sample check read: one row per item, and a note per item it could not read."""

    kind: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    notes: list[str]


def check_sample(
    form: MappingForm, kind: str, document: Mapping[str, Any], _: Translator = ENGLISH
) -> SampleResult:
    """Read ``form``'s sample with the mappings of ``document`` (the unsaved form's, the
    sandbox's when the credential sends through the sandbox without any); ``kind``:
    ``delivery_reports`` or ``inbound``. :class:`InvalidInput` names the field to fix."""
    raw = form.sample.encode("utf-8")
    if not raw.strip():
        raise InvalidInput.one(SAMPLE, _("paste the body of a webhook from your provider"))
    if len(raw) > MAX_SAMPLE_BYTES:
        raise InvalidInput.one(
            SAMPLE, _("must be at most %(size)s KiB", size=MAX_SAMPLE_BYTES // 1024)
        )
    if form.sample_type not in SAMPLE_TYPES:
        raise InvalidInput.one(
            "sample_type", _("must be one of: %(types)s", types=", ".join(SAMPLE_TYPES))
        )
    inbound, reports = parse_webhook_mappings(with_sandbox_webhooks(document))
    mapping = reports if kind == "delivery_reports" else inbound
    missing = [f"{kind}.{name}" for name in REQUIRED[kind] if getattr(mapping, name, None) is None]
    if missing:
        problem = _("is required to read the sample")
        raise InvalidInput([FieldError(name, problem) for name in missing])
    try:
        body = read_body(raw, form.sample_type)
        if reports is not None and kind == "delivery_reports":
            found, notes = read_reports(body, reports)
            return SampleResult(
                kind,
                (_("provider message id"), _("provider status"), _("our status"), _("error")),
                [
                    (
                        r.provider_message_id,
                        r.provider_status,
                        r.status or _("not in the status map: recorded, changes nothing"),
                        r.error or "",
                    )
                    for r in found
                ],
                notes,
            )
        assert inbound is not None
        messages, notes = read_inbound(body, inbound)
    except MalformedWebhook as exc:
        raise InvalidInput.one(SAMPLE, exc.message) from None
    except JSONPathError as exc:  # e.g. a recursive path on a deeply nested sample
        raise InvalidInput.one(
            SAMPLE, _("cannot be read with these paths: %(problem)s", problem=str(exc))
        ) from None
    return SampleResult(
        kind,
        (_("from"), _("to"), _("text"), _("provider message id")),
        [(m.from_number, m.to_number or "", m.text, m.provider_message_id or "") for m in messages],
        notes,
    )


def webhook_gap(document: Mapping[str, Any], kind: str, _: Translator = ENGLISH) -> str | None:
    """What a credential (its view document) lacks for posts to its surface's ``kind``
    (``inbound`` or ``delivery_reports``) webhook URL to work, or None."""
    mapping = document.get(kind)
    reports = kind == "delivery_reports"
    if not isinstance(mapping, Mapping):
        if reports:
            return _(
                "has no delivery-report mapping, so every post to this URL is refused (HTTP 400)"
            )
        return _("has no inbound mapping, so every post to this URL is refused (HTTP 400)")
    missing = [name for name in REQUIRED[kind] if not mapping.get(name)]
    if missing:
        fields = missing[0]
        if len(missing) > 1:
            fields = _(
                "%(first)s and %(second)s", first=", ".join(missing[:-1]), second=missing[-1]
            )
        if reports:
            return _(
                "has a delivery-report mapping without %(fields)s: posts are refused", fields=fields
            )
        return _("has an inbound mapping without %(fields)s: posts are refused", fields=fields)
    if reports and not mapping.get("status_map"):
        return _("has no status map, so delivery reports are recorded but change no status")
    return None
