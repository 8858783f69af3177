"""The campaign form of the admin: reading a posted form into a campaign document, with every
problem in the form's own words (the attribute filter box takes ``name=value`` lines, so its
errors name lines, not JSON paths), and the texts that describe a campaign's audience and
send time in the visitor's language. The pages are :mod:`smsbridge.web.campaigns`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.dates import format_datetime

from smsbridge.domain.campaigns import (
    MAX_FILTER_VALUES,
    MAX_PROFILE_IDS,
    Audience,
    check_send_at,
    check_throttle,
    parse_audience,
    parse_campaign,
)
from smsbridge.domain.profiles import MAX_EXTERNAL_ID
from smsbridge.errors import InvalidInput
from smsbridge.web.i18n import N_, Translator, formatters, translator_for

KEYS = (
    "name",
    "surface_id",
    "body",
    "audience",
    "filter",
    "profile_ids",
    "send_at",
    "send_at_zone",
    "throttle_per_second",
)
LABELS = {
    "name": N_("Name"),
    "surface_id": N_("Surface"),
    "body": N_("Message"),
    "audience": N_("Audience"),
    "filter": N_("Attribute filters"),
    "profile_ids": N_("Profile ids"),
    "send_at": N_("Send at"),
    "send_at_zone": N_("Time zone"),
    "throttle_per_second": N_("Throttle"),
    "": N_("Campaign"),
}
AUDIENCE_FIELDS = ("audience", "filter", "profile_ids")
SHOWN_PER_FIELD = 10
"""Problems listed per field (a pasted list of ids may have thousands of bad lines)."""


ENGLISH = translator_for("en")


def field_labels(_: Translator) -> dict[str, str]:
    return {name: _(label) for name, label in LABELS.items()}


def number_text(_: Translator, value: int) -> str:
    """``value`` as the translator's language writes numbers (1,234 or 1 234)."""
    shown: str = formatters(_.lang)["number"](value)
    return shown


@lru_cache(maxsize=1)
def time_zones() -> list[str]:
    """The zones offered for *Send at*: UTC first, then the IANA names with a region."""
    return ["UTC", *sorted(z for z in available_timezones() if "/" in z and z != "Etc/UTC")]


def _quoted(_: Translator, line: str) -> str:
    line = line.strip()
    shown = f"{line[:40]}…" if len(line) > 40 else line
    return _("“%(text)s”", text=shown)


@dataclass
class CampaignForm:
    """The form as posted: its fields, its problems by field (in the form's words), and what
    was understood of it."""

    fields: dict[str, str]
    say: Translator = ENGLISH
    """The translator of the visitor's language: the problems are said in it."""
    errors: dict[str, list[str]] = field(default_factory=dict)
    audience: Audience | None = None
    send_at: datetime | None = None
    throttle: float | None = None

    def problem(self, name: str, text: str) -> None:
        shown = self.errors.setdefault(name, [])
        if len(shown) < SHOWN_PER_FIELD:
            shown.append(text)
        elif len(shown) == SHOWN_PER_FIELD:
            _ = self.say
            shown.append(_("… and more: fix these first."))

    def audience_errors(self) -> dict[str, list[str]]:
        return {k: v for k, v in self.errors.items() if k in AUDIENCE_FIELDS}

    def document(self) -> dict[str, Any]:
        """What the campaign API takes."""
        document: dict[str, Any] = {
            "name": self.fields["name"],
            "surface_id": self.fields["surface_id"],
            "body": self.fields["body"],
            "audience": self.audience.document() if self.audience else None,
        }
        if self.send_at is not None:
            document["send_at"] = self.send_at
        if self.throttle is not None:
            document["throttle_per_second"] = self.throttle
        return document


def read_form(form: Mapping[str, Any], now: datetime, say: Translator = ENGLISH) -> CampaignForm:
    """The campaign form checked, every problem found at once (said in ``say``'s language)."""
    fields = {k: str(form.get(k) or "").strip() for k in KEYS}
    fields["body"] = str(form.get("body") or "")  # spaces and new lines are the message's
    fields["send_at_zone"] = fields["send_at_zone"] or "UTC"
    if fields["audience"] not in ("all", "filter", "ids"):
        # typing filters or ids is choosing them; "every profile" is only ever chosen
        filled = [k for k in ("filter", "ids") if fields["profile_ids" if k == "ids" else k]]
        fields["audience"] = filled[0] if len(filled) == 1 else ""
    checked = CampaignForm(fields, say)
    _ = say
    _read_audience(checked)
    _read_send_at(checked, now)
    _read_throttle(checked)
    try:
        parse_campaign(checked.document() | {"audience": {"all": True}})
    except InvalidInput as exc:
        for error in exc.errors:
            if error.field == "name":
                checked.problem("name", _("Give the campaign a name (at most 200 characters)."))
            elif error.field == "surface_id":
                checked.problem("surface_id", _("Choose the surface that sends it."))
            elif error.field == "body":
                checked.problem("body", _("Write the message."))
    checked.errors = {k: checked.errors[k] for k in (*KEYS, "") if k in checked.errors}
    return checked


def _read_audience(form: CampaignForm) -> None:
    kind = form.fields["audience"]
    if kind == "all":
        form.audience = Audience(everyone=True)
    elif kind == "filter":
        form.audience = _filter_audience(form)
    elif kind == "ids":
        form.audience = _ids_audience(form)
    else:
        _ = form.say
        form.problem(
            "audience",
            _(
                "Choose who receives the campaign: profiles whose attributes match, "
                "a list of profile ids, or every profile."
            ),
        )


def _filter_audience(form: CampaignForm) -> Audience | None:
    _ = form.say
    wanted: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    problems: list[tuple[int, str]] = []  # (line, what is wrong with it), told in line order
    for number, line in enumerate(form.fields["filter"].splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = (part.strip() for part in line.partition("="))
        if not sep:
            problems.append(
                (
                    number,
                    _(
                        "Line %(line)s (%(text)s) has no “=”: write name=value, e.g. country=FR.",
                        line=number,
                        text=_quoted(_, line),
                    ),
                )
            )
        elif not name:
            problems.append(
                (number, _("Line %(line)s has no attribute name before “=”.", line=number))
            )
        elif not value:
            problems.append(
                (
                    number,
                    _("Line %(line)s: write the value after “%(name)s=”.", line=number, name=name),
                )
            )
        else:
            wanted.setdefault(name, []).append(value)
            first_line.setdefault(name, number)
    if not wanted and not problems:
        problems.append((0, _("Write at least one line name=value, e.g. country=FR.")))
    audience = None
    if wanted:
        document = {f"attributes.{k}": v[0] if len(v) == 1 else v for k, v in wanted.items()}
        try:
            audience = parse_audience({"filter": document})
        except InvalidInput as exc:  # the API's rules on names and values, said about lines
            problems.extend(
                _filter_problem(_, e.field, e.message, wanted, first_line) for e in exc.errors
            )
    for _line, text in sorted(problems, key=lambda p: p[0]):
        form.problem("filter", text)
    return None if problems else audience


def _filter_problem(
    _: Translator,
    field: str,
    message: str,
    wanted: dict[str, list[str]],
    first_line: dict[str, int],
) -> tuple[int, str]:
    """A refusal of :func:`parse_audience` about one attribute, said about the line giving it."""
    name = field.removeprefix("audience.filter.attributes.")
    at = first_line.get(name)
    if at is None:
        said = _.said(message)
        return 0, said[:1].upper() + said[1:] + "."
    if "attributes.<name>" in message:
        return at, _(
            "Line %(line)s: “%(name)s” is not an attribute name — use letters, digits and _, "
            "not starting with a digit (e.g. first_name).",
            line=at,
            name=name,
        )
    if len(wanted.get(name, ())) > MAX_FILTER_VALUES:
        return at, _(
            "“%(name)s” is given %(count)s values (from line %(line)s); at most %(max)s.",
            name=name,
            count=number_text(_, len(wanted[name])),
            line=at,
            max=number_text(_, MAX_FILTER_VALUES),
        )
    return at, _("Line %(line)s: %(problem)s.", line=at, problem=message)


def _id_problem(_: Translator, line: int | None, message: str) -> str:
    """A refusal of one listed id, in the form's words (the domain's are English)."""
    if message.startswith("is longer than"):
        if line:
            return _(
                "Line %(line)s: this id is longer than %(max)s characters.",
                line=line,
                max=MAX_EXTERNAL_ID,
            )
        return _("An id is longer than %(max)s characters.", max=MAX_EXTERNAL_ID)
    if message.startswith("must not contain control characters"):
        if line:
            return _("Line %(line)s: this id must not contain control characters.", line=line)
        return _("An id must not contain control characters.")
    if line:
        return _("Line %(line)s: this id %(problem)s.", line=line, problem=_.said(message))
    return _("An id %(problem)s.", problem=_.said(message))


def _ids_audience(form: CampaignForm) -> Audience | None:
    _ = form.say
    listed = [
        (number, line.strip())
        for number, line in enumerate(form.fields["profile_ids"].splitlines(), 1)
        if line.strip()
    ]
    if not listed:
        form.problem("profile_ids", _("List at least one profile id, one per line."))
        return None
    if len(listed) > MAX_PROFILE_IDS:
        form.problem(
            "profile_ids",
            _(
                "%(count)s ids: at most %(max)s. For a bigger audience, use attribute filters.",
                count=number_text(_, len(listed)),
                max=number_text(_, MAX_PROFILE_IDS),
            ),
        )
        return None
    try:
        return parse_audience({"profile_ids": [i for _, i in listed]})
    except InvalidInput as exc:
        for error in exc.errors:
            index = error.field.rpartition("[")[2].rstrip("]")
            line = listed[int(index)][0] if index.isdigit() else None
            form.problem("profile_ids", _id_problem(_, line, error.message))
        return None


def _read_send_at(form: CampaignForm, now: datetime) -> None:
    _ = form.say
    raw, zone_name = form.fields["send_at"], form.fields["send_at_zone"]
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        form.problem(
            "send_at_zone",
            _(
                "Unknown time zone %(zone)s: choose one such as Europe/Paris or UTC.",
                zone=_quoted(_, zone_name),
            ),
        )
        return
    if not raw:
        return
    try:
        typed = datetime.fromisoformat(raw)
    except ValueError:
        form.problem(
            "send_at",
            _(
                "%(text)s is not a date and time: write it as 2026-05-01 09:00, or leave it "
                "empty to send at launch.",
                text=_quoted(_, raw),
            ),
        )
        return
    if typed.tzinfo is None:
        form.fields["send_at"] = typed.isoformat(timespec="minutes")  # as datetime-local has it
        when = typed.replace(tzinfo=zone)
        if when.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != typed:
            form.problem(
                "send_at",
                _(
                    "%(time)s does not exist in %(zone)s (the clocks skip it for daylight "
                    "saving time): choose another time.",
                    time=typed.strftime("%Y-%m-%d %H:%M"),
                    zone=zone_name,
                ),
            )
            return
    else:
        when = typed
    if when <= now:
        form.problem(
            "send_at",
            _(
                "This time has passed (it is now %(now)s in %(zone)s). Choose a later time, "
                "or leave it empty to send at launch.",
                now=now.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                zone=zone_name,
            ),
        )
        return
    try:
        form.send_at = check_send_at(when)
    except InvalidInput:
        form.problem("send_at", _("Choose a date before the year 3000."))


def _read_throttle(form: CampaignForm) -> None:
    _ = form.say
    raw = form.fields["throttle_per_second"].replace(",", ".")
    if not raw:
        return
    try:
        form.throttle = check_throttle(float(raw))
    except (ValueError, InvalidInput):
        form.problem(
            "throttle_per_second",
            _(
                "Give a number of messages per second from %(low)s to %(high)s (e.g. 50), or "
                "leave it empty to send as fast as the provider allows.",
                low=formatters(_.lang)["number"](0.01),
                high=number_text(_, 10_000),
            ),
        )


def add_created_problems(form: CampaignForm, exc: InvalidInput) -> None:
    """What the campaign service refused, put next to the fields (rare: the form checks all
    that the service does, but a surface may be deleted meanwhile)."""
    _ = form.say
    for error in exc.errors or []:
        name = error.field.split(".", 1)[0].split("[", 1)[0]
        said = _.said(error.message)
        if name == "surface_id":
            form.problem("surface_id", _("This surface no longer exists: choose another."))
        elif name == "audience":
            kind = form.fields["audience"]
            target = {"ids": "profile_ids", "filter": "filter"}.get(kind, "audience")
            form.problem(target, said)
        elif name in form.fields:
            form.problem(name, said[:1].upper() + said[1:])
        else:
            form.problem("", said)
    if not exc.errors:
        form.problem("", _.said(exc.message))
    form.errors = {k: form.errors[k] for k in (*KEYS, "") if k in form.errors}


def joined(_: Translator, parts: list[str], conjunction: str) -> str:
    """``parts`` joined with "and" (``conjunction`` "and") or "or", in the visitor's words."""
    joined = parts[0]
    for part in parts[1:]:
        if conjunction == "or":
            joined = _("%(first)s or %(second)s", first=joined, second=part)
        else:
            joined = _("%(first)s and %(second)s", first=joined, second=part)
    return joined


def audience_text(_: Translator, document: Mapping[str, Any]) -> str:
    """A stored audience, said in the form's words."""
    if "profile_ids" in document:
        count = len(document["profile_ids"])
        shown = number_text(_, count)
        # babel extracts ngettext(…), not _.ngettext(…); and no _ among its arguments
        ngettext = _.ngettext
        return ngettext(
            "%(count)s listed profile id", "%(count)s listed profile ids", count, count=shown
        )
    if document.get("filter"):
        parts = []
        for key, value in document["filter"].items():
            values = value if isinstance(value, list) else [value]
            name = key.removeprefix("attributes.")
            parts.append(joined(_, [f"{name}={v}" for v in values], "or"))
        return _("profiles with %(conditions)s", conditions=joined(_, parts, "and"))
    return _("every profile")


def when_summary(_: Translator, send_at: datetime | None, zone_name: str) -> dict[str, str] | None:
    """When a campaign is sent: in the chosen zone (in words, in the visitor's language) and
    in UTC."""
    if send_at is None:
        return None
    zone = ZoneInfo(zone_name)
    local = format_datetime(send_at, "EEEE d MMMM y, HH:mm", tzinfo=zone, locale=_.lang)
    return {
        "local": f"{local} {zone_name}",
        "utc": f"{send_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    }
