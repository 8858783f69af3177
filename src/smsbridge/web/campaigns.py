"""Admin pages: Campaigns — the form (audience size, a sample recipient's message, scheduling),
create (draft), launch after a confirmation naming the recipients, live progress, cancel.

The form works without JavaScript: *Count the audience* posts it back and the page comes back
with the count and the sample. With htmx, the same fragments are refreshed as you type
(``POST /admin/campaigns/new/check``, answered with out-of-band swaps). The audience is
counted by :class:`smsbridge.services.audience.AudienceService`, which selects profiles as the
fan-out does, and the sample is rendered by the same preview as *Compose*
(:meth:`smsbridge.services.messages.MessageService.preview`), which personalizes and shortens
links as a send does.

Problems are reported in the form's own words, all at once, next to their field: the
attribute filter box takes ``name=value`` lines, so its errors name lines, not JSON paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from smsbridge.domain.campaigns import (
    MAX_FILTER_VALUES,
    MAX_PROFILE_IDS,
    Audience,
    check_send_at,
    check_throttle,
    parse_audience,
    parse_campaign,
)
from smsbridge.errors import Conflict, InvalidInput, NotFound
from smsbridge.services.api_keys import Role
from smsbridge.services.audience import AudienceService, AudienceSize
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.services.message_rows import SendRequest
from smsbridge.web.shell import Visitor, found, pages, posted_form, require, visitor
from smsbridge.web.surfaces import surface_choices

router = APIRouter(prefix="/admin", include_in_schema=False)


WRITERS = (Role.ADMIN, Role.SENDER)
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
    "name": "Name",
    "surface_id": "Surface",
    "body": "Message",
    "audience": "Audience",
    "filter": "Attribute filters",
    "profile_ids": "Profile ids",
    "send_at": "Send at",
    "send_at_zone": "Time zone",
    "throttle_per_second": "Throttle",
    "": "Campaign",
}
AUDIENCE_FIELDS = ("audience", "filter", "profile_ids")
SHOWN_PER_FIELD = 10
"""Problems listed per field (a pasted list of ids may have thousands of bad lines)."""


def _can_write(seen: Visitor) -> bool:
    return seen.who.role in WRITERS


def _refused(request: Request, seen: Visitor) -> None:
    require(request, seen, WRITERS, "Campaigns are run by sender or admin keys.")


@lru_cache(maxsize=1)
def time_zones() -> list[str]:
    """The zones offered for *Send at*: UTC first, then the IANA names with a region."""
    return ["UTC", *sorted(z for z in available_timezones() if "/" in z and z != "Etc/UTC")]


def _quoted(line: str) -> str:
    line = line.strip()
    return f"“{line[:40]}…”" if len(line) > 40 else f"“{line}”"


@dataclass
class CampaignForm:
    """The form as posted: its fields, its problems by field (in the form's words), and what
    was understood of it."""

    fields: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)
    audience: Audience | None = None
    send_at: datetime | None = None
    throttle: float | None = None

    def problem(self, name: str, text: str) -> None:
        shown = self.errors.setdefault(name, [])
        if len(shown) < SHOWN_PER_FIELD:
            shown.append(text)
        elif len(shown) == SHOWN_PER_FIELD:
            shown.append("… and more: fix these first.")

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


def read_form(form: Mapping[str, Any], now: datetime) -> CampaignForm:
    """The campaign form checked, every problem found at once."""
    fields = {k: str(form.get(k) or "").strip() for k in KEYS}
    fields["body"] = str(form.get("body") or "")  # spaces and new lines are the message's
    fields["send_at_zone"] = fields["send_at_zone"] or "UTC"
    if fields["audience"] not in ("all", "filter", "ids"):
        # typing filters or ids is choosing them; "every profile" is only ever chosen
        filled = [k for k in ("filter", "ids") if fields["profile_ids" if k == "ids" else k]]
        fields["audience"] = filled[0] if len(filled) == 1 else ""
    checked = CampaignForm(fields)
    _read_audience(checked)
    _read_send_at(checked, now)
    _read_throttle(checked)
    try:
        parse_campaign(checked.document() | {"audience": {"all": True}})
    except InvalidInput as exc:
        for error in exc.errors:
            if error.field == "name":
                checked.problem("name", "Give the campaign a name (at most 200 characters).")
            elif error.field == "surface_id":
                checked.problem("surface_id", "Choose the surface that sends it.")
            elif error.field == "body":
                checked.problem("body", "Write the message.")
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
        form.problem(
            "audience",
            "Choose who receives the campaign: profiles whose attributes match, "
            "a list of profile ids, or every profile.",
        )


def _filter_audience(form: CampaignForm) -> Audience | None:
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
                    f"Line {number} ({_quoted(line)}) has no “=”: write name=value, "
                    "e.g. country=FR.",
                )
            )
        elif not name:
            problems.append((number, f"Line {number} has no attribute name before “=”."))
        elif not value:
            problems.append((number, f"Line {number}: write the value after “{name}=”."))
        else:
            wanted.setdefault(name, []).append(value)
            first_line.setdefault(name, number)
    if not wanted and not problems:
        problems.append((0, "Write at least one line name=value, e.g. country=FR."))
    audience = None
    if wanted:
        document = {f"attributes.{k}": v[0] if len(v) == 1 else v for k, v in wanted.items()}
        try:
            audience = parse_audience({"filter": document})
        except InvalidInput as exc:  # the API's rules on names and values, said about lines
            problems.extend(
                _filter_problem(e.field, e.message, wanted, first_line) for e in exc.errors
            )
    for _, text in sorted(problems, key=lambda p: p[0]):
        form.problem("filter", text)
    return None if problems else audience


def _filter_problem(
    field: str, message: str, wanted: dict[str, list[str]], first_line: dict[str, int]
) -> tuple[int, str]:
    """A refusal of :func:`parse_audience` about one attribute, said about the line giving it."""
    name = field.removeprefix("audience.filter.attributes.")
    at = first_line.get(name)
    if at is None:
        return 0, message[:1].upper() + message[1:] + "."
    if "attributes.<name>" in message:
        return at, (
            f"Line {at}: “{name}” is not an attribute name — use letters, digits and _, "
            "not starting with a digit (e.g. first_name)."
        )
    if len(wanted.get(name, ())) > MAX_FILTER_VALUES:
        return at, (
            f"“{name}” is given {len(wanted[name]):,} values (from line {at}); "
            f"at most {MAX_FILTER_VALUES:,}."
        )
    return at, f"Line {at}: {message}."


def _ids_audience(form: CampaignForm) -> Audience | None:
    listed = [
        (number, line.strip())
        for number, line in enumerate(form.fields["profile_ids"].splitlines(), 1)
        if line.strip()
    ]
    if not listed:
        form.problem("profile_ids", "List at least one profile id, one per line.")
        return None
    if len(listed) > MAX_PROFILE_IDS:
        form.problem(
            "profile_ids",
            f"{len(listed):,} ids: at most {MAX_PROFILE_IDS:,}. For a bigger audience, use "
            "attribute filters.",
        )
        return None
    try:
        return parse_audience({"profile_ids": [i for _, i in listed]})
    except InvalidInput as exc:
        for error in exc.errors:
            index = error.field.rpartition("[")[2].rstrip("]")
            line = listed[int(index)][0] if index.isdigit() else None
            where = f"Line {line}: this id" if line else "An id"
            form.problem("profile_ids", f"{where} {error.message}.")
        return None


def _read_send_at(form: CampaignForm, now: datetime) -> None:
    raw, zone_name = form.fields["send_at"], form.fields["send_at_zone"]
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        form.problem(
            "send_at_zone",
            f"Unknown time zone {_quoted(zone_name)}: choose one such as Europe/Paris or UTC.",
        )
        return
    if not raw:
        return
    try:
        typed = datetime.fromisoformat(raw)
    except ValueError:
        form.problem(
            "send_at",
            f"{_quoted(raw)} is not a date and time: write it as 2026-05-01 09:00, or leave "
            "it empty to send at launch.",
        )
        return
    if typed.tzinfo is None:
        form.fields["send_at"] = typed.isoformat(timespec="minutes")  # as datetime-local has it
        when = typed.replace(tzinfo=zone)
        if when.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != typed:
            form.problem(
                "send_at",
                f"{typed:%Y-%m-%d %H:%M} does not exist in {zone_name} (the clocks skip it "
                "for daylight saving time): choose another time.",
            )
            return
    else:
        when = typed
    if when <= now:
        form.problem(
            "send_at",
            f"This time has passed (it is now {now.astimezone(zone):%Y-%m-%d %H:%M} in "
            f"{zone_name}). Choose a later time, or leave it empty to send at launch.",
        )
        return
    try:
        form.send_at = check_send_at(when)
    except InvalidInput:
        form.problem("send_at", "Choose a date before the year 3000.")


def _read_throttle(form: CampaignForm) -> None:
    raw = form.fields["throttle_per_second"].replace(",", ".")
    if not raw:
        return
    try:
        form.throttle = check_throttle(float(raw))
    except (ValueError, InvalidInput):
        form.problem(
            "throttle_per_second",
            "Give a number of messages per second from 0.01 to 10,000 (e.g. 50), or leave it "
            "empty to send as fast as the provider allows.",
        )


def _created_problems(form: CampaignForm, exc: InvalidInput) -> None:
    """What the campaign service refused, put next to the fields (rare: the form checks all
    that the service does, but a surface may be deleted meanwhile)."""
    for error in exc.errors or []:
        name = error.field.split(".", 1)[0].split("[", 1)[0]
        if name == "surface_id":
            form.problem("surface_id", "This surface no longer exists: choose another.")
        elif name == "audience":
            kind = form.fields["audience"]
            target = {"ids": "profile_ids", "filter": "filter"}.get(kind, "audience")
            form.problem(target, error.message)
        elif name in form.fields:
            form.problem(name, error.message[:1].upper() + error.message[1:])
        else:
            form.problem("", error.message)
    if not exc.errors:
        form.problem("", exc.message)
    form.errors = {k: form.errors[k] for k in (*KEYS, "") if k in form.errors}


def _sender_of(surfaces: list[dict[str, str]], surface_id: str) -> str | None:
    return next((s["sender"] for s in surfaces if s["id"] == surface_id), None)


def _marked(text: str, forcing: set[str]) -> Markup:
    """The text with the characters that force UCS-2 highlighted."""
    return Markup("").join(
        Markup("<mark>{}</mark>").format(ch) if ch in forcing else escape(ch) for ch in text
    )


async def sample_preview(
    svc: ServiceCatalog, fields: Mapping[str, str], audience: Audience | None
) -> dict[str, Any] | None:
    """The message as the audience's first profile will get it (personalized, links
    shortened as the surface does), with its segments and encoding."""
    if not fields["body"].strip() or not fields["surface_id"]:
        return None
    sample = await AudienceService(svc.db).sample(audience) if audience is not None else None
    request = SendRequest(fields["surface_id"], to=None, body=fields["body"], profile_id=sample)
    try:
        preview = await svc.messages.preview(request)
    except InvalidInput as exc:
        preview = {"text": "", "characters": 0, "segments": 0, "encoding": ""}
        preview |= {"ucs2_characters": [], "undefined": [], "phone": None}
        preview["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    else:
        preview["phone"] = preview["to"]
    preview["sample"] = sample
    preview["marked"] = _marked(preview["text"], set(preview["ucs2_characters"]))
    return preview


async def _audience_size(
    svc: ServiceCatalog, audience: Audience | None, sender: str | None
) -> AudienceSize | None:
    return None if audience is None else await AudienceService(svc.db).size(audience, sender)


def _when(send_at: datetime | None, zone_name: str) -> dict[str, str] | None:
    if send_at is None:
        return None
    zone = ZoneInfo(zone_name)
    return {
        "local": f"{send_at.astimezone(zone):%A %d %B %Y, %H:%M} {zone_name}",
        "utc": f"{send_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    }


async def _render_form(
    request: Request,
    seen: Visitor,
    svc: ServiceCatalog,
    form: CampaignForm,
    *,
    errors: dict[str, list[str]],
    counted: bool,
    status: int = 200,
) -> Response:
    surfaces = await surface_choices(svc)
    sender = _sender_of(surfaces, form.fields["surface_id"])
    return pages(request).render(
        "campaign_form.html",
        status=status,
        title="Campaigns",
        form=form.fields,
        errors=errors,
        labels=LABELS,
        surfaces=surfaces,
        zones=time_zones(),
        fresh=False,
        size=await _audience_size(svc, form.audience, sender) if counted else None,
        preview=await sample_preview(svc, form.fields, form.audience),
        when=_when(form.send_at, form.fields["send_at_zone"]),
        **seen.context(),
    )


@router.get("/campaigns")
async def campaigns_list(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    items = (await svc.campaigns.list(limit=200)).items
    return pages(request).render(
        "campaigns.html",
        title="Campaigns",
        items=items,
        can_write=_can_write(seen),
        **seen.context(),
    )


@router.get("/campaigns/new")
async def campaign_new(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _refused(request, seen)
    surfaces = await surface_choices(svc)
    fields = dict.fromkeys(KEYS, "") | {
        "surface_id": surfaces[0]["id"] if surfaces else "",
        "send_at_zone": "UTC",
    }
    return pages(request).render(
        "campaign_form.html",
        title="Campaigns",
        form=fields,
        errors={},
        labels=LABELS,
        surfaces=surfaces,
        zones=time_zones(),
        fresh=True,
        size=None,
        preview=None,
        when=None,
        **seen.context(),
    )


@router.post("/campaigns/new/check")
async def campaign_check(
    request: Request,
    part: str = "all",
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    """The form's live parts as htmx out-of-band fragments: the audience's size (``audience``),
    the sample message (``preview``), when it is sent (``when``), or all of them."""
    _refused(request, seen)
    form = read_form(await posted_form(request, seen), svc.clock())
    surfaces = await surface_choices(svc)
    html: list[str] = []
    if part in ("all", "audience"):
        sender = _sender_of(surfaces, form.fields["surface_id"])
        html.append(
            pages(request).fragment(
                "campaign_audience.html",
                oob=True,
                form=form.fields,
                size=await _audience_size(svc, form.audience, sender),
                problems=[t for texts in form.audience_errors().values() for t in texts],
            )
        )
    if part in ("all", "audience", "preview"):
        html.append(
            pages(request).fragment(
                "campaign_preview.html",
                oob=True,
                preview=await sample_preview(svc, form.fields, form.audience),
            )
        )
    if part in ("all", "when"):
        html.append(
            pages(request).fragment(
                "campaign_when.html",
                oob=True,
                when=_when(form.send_at, form.fields["send_at_zone"]),
                problems=form.errors.get("send_at", []) + form.errors.get("send_at_zone", []),
            )
        )
    return HTMLResponse("".join(html))


@router.post("/campaigns/new")
async def campaign_create(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _refused(request, seen)
    posted = await posted_form(request, seen)
    form = read_form(posted, svc.clock())
    if str(posted.get("do") or "") == "count":  # "Count the audience", without JavaScript
        errors = form.audience_errors()
        return await _render_form(request, seen, svc, form, errors=errors, counted=True)
    if not form.errors:
        try:
            created = await svc.campaigns.create(form.document())
        except InvalidInput as exc:
            _created_problems(form, exc)
        else:
            return RedirectResponse(f"/admin/campaigns/{created['id']}", status_code=303)
    return await _render_form(
        request, seen, svc, form, errors=form.errors, counted=True, status=422
    )


def _audience_text(document: Mapping[str, Any]) -> str:
    """A stored audience, said in the form's words."""
    if "profile_ids" in document:
        return f"{len(document['profile_ids']):,} listed profile id(s)"
    if "filter" in document:
        parts = []
        for key, value in document["filter"].items():
            values = value if isinstance(value, list) else [value]
            name = key.removeprefix("attributes.")
            parts.append(" or ".join(f"{name}={v}" for v in values))
        return "profiles with " + " and ".join(parts)
    return "every profile"


async def _campaign_size(svc: ServiceCatalog, campaign: Mapping[str, Any]) -> AudienceSize:
    sender = _sender_of(await surface_choices(svc), campaign["surface_id"])
    return await AudienceService(svc.db).size(parse_audience(campaign["audience"]), sender)


@router.get("/campaigns/{campaign_id}")
async def campaign_detail(
    campaign_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    campaign = await found(svc.campaigns.get(campaign_id), "/admin/campaigns")
    draft = campaign["status"] == "draft"
    return pages(request).render(
        "campaign_detail.html",
        title="Campaign",
        c=campaign,
        audience=_audience_text(campaign["audience"]),
        size=await _campaign_size(svc, campaign) if draft else None,
        can_write=_can_write(seen),
        **seen.context(),
    )


@router.get("/campaigns/{campaign_id}/progress")
async def campaign_progress(
    campaign_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    campaign = await svc.campaigns.get(campaign_id)
    html = pages(request).fragment(
        "campaign_progress.html", c=campaign, can_write=_can_write(seen), csrf=seen.session.csrf
    )
    # 286 tells htmx to stop polling: nothing moves any more once the campaign has ended.
    return HTMLResponse(html, status_code=200 if campaign["status"] == "running" else 286)


async def _confirmed_launch(
    request: Request, seen: Visitor, svc: ServiceCatalog, campaign_id: str, confirmed: str
) -> Response | None:
    """A draft launches only once the visitor confirmed the number of recipients it has now:
    the confirmation page instead (again, if the audience changed since it was shown)."""
    campaign = await svc.campaigns.get(campaign_id)
    if campaign["status"] != "draft":
        return None  # launching again changes nothing (or is refused): no question to ask
    size = await _campaign_size(svc, campaign)
    if confirmed == str(size.recipients):
        return None
    return pages(request).render(
        "campaign_confirm.html",
        title="Launch the campaign?",
        c=campaign,
        size=size,
        audience=_audience_text(campaign["audience"]),
        changed=bool(confirmed),
        **seen.context(),
    )


@router.post("/campaigns/{campaign_id}/{action}")
async def campaign_action(
    campaign_id: str,
    action: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _refused(request, seen)
    form = await posted_form(request, seen)
    try:
        if action == "launch":
            asked = await _confirmed_launch(
                request, seen, svc, campaign_id, str(form.get("confirmed") or "")
            )
            if asked is not None:
                return asked
            await svc.campaigns.launch(campaign_id)
        elif action == "cancel":
            await svc.campaigns.cancel(campaign_id)
        else:
            return RedirectResponse(f"/admin/campaigns/{campaign_id}", status_code=303)
    except (Conflict, NotFound) as exc:
        return pages(request).render(
            "message.html",
            status=409,
            title="Not possible",
            text=exc.message,
            back=f"/admin/campaigns/{campaign_id}",
            **seen.context(),
        )
    return RedirectResponse(f"/admin/campaigns/{campaign_id}", status_code=303)
