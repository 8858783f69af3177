"""Admin pages: Reports — a campaign's report, a surface's report over a window, CSV downloads.

Both pages show the same KPI tiles and SVG bar charts (no chart library: a few ``<rect>``s
drawn by the template), fed by :class:`smsbridge.services.reports.ReportService`, in the
request's language (:mod:`smsbridge.web.i18n`): the template formats the numbers and dates, this
module the rates and the words.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from babel.numbers import format_percent
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from smsbridge.errors import InvalidInput, NotFound
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.web.i18n import N_, Translator, translator
from smsbridge.web.shell import Visitor, found, pages, visitor

router = APIRouter(prefix="/admin", include_in_schema=False)

SERIES = (("sent", "#2151c7"), ("delivered", "#1b7a3d"), ("clicks", "#b36b00"))
SERIES_NAMES = {"sent": N_("Sent"), "delivered": N_("Delivered"), "clicks": N_("Clicks")}
PER_BUCKET = {"minute": N_("per minute"), "hour": N_("per hour"), "day": N_("per day")}
TILES = (
    ("targeted", N_("Targeted"), None),
    ("sent", N_("Sent"), None),
    ("delivered", N_("Delivered"), "delivery"),
    ("bounced", N_("Bounced"), None),
    ("errors", N_("Errors"), None),
    ("excluded", N_("Excluded"), None),
    ("clicks", N_("Clicks"), None),
    ("unique_clicks", N_("Unique clicks"), "click"),
    ("opt_outs", N_("Opt-outs"), None),
    ("segments", N_("Segments"), None),
)
"""The key figures: the report's field, its label, and the rate shown next to it (if any)."""
WIDTH = 1000
"""The charts' drawing width (``viewBox`` units): the SVG is stretched to the page's width."""
MIN_SLOTS = 12
"""A bar is never wider than it would be among this many, so two buckets are two narrow bars
(centred in their halves of the chart), not two slabs."""


def _tiles(report: dict[str, Any], _: Translator) -> list[dict[str, Any]]:
    """Each tile's label (in lower case, under its figure), figure (the template formats it)
    and rate (formatted here: the filters have no percentages)."""
    rates = report["rates"]
    return [
        {
            "label": _(label).lower(),
            "value": report[field],
            "rate": format_percent(rates[rate], locale=_.lang) if rate else None,
        }
        for field, label, rate in TILES
    ]


def _charts(report: dict[str, Any]) -> dict[str, Any]:
    """What the template draws: per bucket, a bar centred in its share of the whole width."""
    timeline = report["timeline"]
    slot = WIDTH / max(len(timeline), 1)
    bar = min(slot, WIDTH / MIN_SLOTS) * 0.8
    return {
        "series": SERIES,
        "peaks": {name: max((point[name] for point in timeline), default=0) for name, _ in SERIES},
        "width": WIDTH,
        "bars": [
            (round(i * slot + (slot - bar) / 2, 2), round(bar, 2)) for i in range(len(timeline))
        ],
        "first": timeline[0]["at"] if timeline else None,
        "last": timeline[-1]["at"] if timeline else None,
    }


async def _render(
    request: Request,
    seen: Visitor,
    svc: ServiceCatalog,
    *,
    heading: str,
    report: dict[str, Any],
    **context: Any,
) -> Response:
    _ = translator(request)
    names = {
        view.id: str(view.document.get("name") or view.id)
        for view in (await svc.credentials.list(limit=500)).items
    }
    by_credential = [
        (names.get(credential_id, credential_id), counts["sent"], counts["failed"])
        for credential_id, counts in sorted((report.get("by_credential") or {}).items())
    ]
    return pages(request).render(
        "report.html",
        title=_("Report"),
        heading=heading,
        r=report,
        tiles=_tiles(report, _),
        chart=_charts(report),
        series_names={name: _(label) for name, label in SERIES_NAMES.items()},
        per_bucket=_(PER_BUCKET[report["bucket"]]) if report["bucket"] in PER_BUCKET else "",
        by_credential=by_credential,
        **context,
        **seen.context(),
    )


@router.get("/reports")
async def reports_index(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    """Every surface and campaign, each with a link to its report."""
    _ = translator(request)
    surfaces = (await svc.surfaces.list(limit=500)).items
    campaigns = (await svc.campaigns.list(limit=200)).items
    return pages(request).render(
        "reports.html",
        title=_("Reports"),
        surfaces=[
            {"id": v.id, "name": v.surface.name, "sender": v.surface.sender} for v in surfaces
        ],
        campaigns=campaigns,
        **seen.context(),
    )


@router.get("/campaigns/{campaign_id}/report")
async def campaign_report(
    campaign_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _ = translator(request)
    campaign = await found(svc.campaigns.get(campaign_id), "/admin/campaigns")
    report = await found(svc.reports.campaign(campaign_id), "/admin/campaigns")
    return await _render(
        request,
        seen,
        svc,
        heading=_("Report: Campaign %(name)s", name=campaign["name"]),
        report=report,
        csv_url=f"/admin/campaigns/{campaign_id}/report.csv",
        back=(f"/admin/campaigns/{campaign_id}", _("Back to the campaign")),
    )


@router.get("/campaigns/{campaign_id}/report.csv")
async def campaign_report_csv(
    campaign_id: str, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    scope = await found(svc.reports.campaign_scope(campaign_id), "/admin/campaigns")
    return StreamingResponse(
        svc.reports.csv_rows(scope),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}.csv"'},
    )


def _window(start: str, end: str, today: date) -> tuple[date, date, list[str]]:
    """The report's days from the form's ``from``/``to`` (inclusive dates, UTC), never past
    ``today``; the last 7 days when absent or wrong (the problems are listed, in English, so
    the page can say so: it translates them)."""
    problems = []
    try:
        last = date.fromisoformat(end) if end else today
    except ValueError:
        problems.append(N_("to: not a date (YYYY-MM-DD)"))
        last = today
    if last > today:
        problems.append(N_("to: after today; the report stops today"))
        last = today
    try:
        first = date.fromisoformat(start) if start else last - timedelta(days=6)
    except ValueError:
        problems.append(N_("from: not a date (YYYY-MM-DD)"))
        first = last - timedelta(days=6)
    if first > last:
        problems.append(N_("from: must not be after `to`"))
        first, last = last - timedelta(days=6), last
    if (last - first).days > 365:
        problems.append(N_("from: the window is limited to 366 days"))
        first = last - timedelta(days=365)
    return first, last, problems


def _within(timeline: list[dict[str, Any]], ends: datetime) -> list[dict[str, Any]]:
    """``timeline`` less its empty buckets from ``ends`` on (the window's end is excluded, so
    its bucket is the day after the window: tomorrow, for a window ending today). A later
    bucket with something in it (a late delivery report, a click) stays."""
    kept = list(timeline)
    while kept and kept[-1]["at"] >= ends and not any(kept[-1][name] for name, _ in SERIES):
        kept.pop()
    return kept


@router.get("/surfaces/{surface_id}/report")
async def surface_report(
    surface_id: str,
    request: Request,
    start: str = Query("", alias="from"),
    end: str = Query("", alias="to"),
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    """The surface's messages created between two dates (default: the last 7 days)."""
    _ = translator(request)
    surface = await found(svc.surfaces.get(surface_id), "/admin/reports")
    first, last, problems = _window(start.strip(), end.strip(), svc.clock().astimezone(UTC).date())
    begins = datetime.combine(first, time.min, UTC)
    ends = datetime.combine(last + timedelta(days=1), time.min, UTC)
    report = await svc.reports.surface(surface_id, start=begins, end=ends)
    report["timeline"] = _within(report["timeline"], ends)
    query = urlencode({"from": begins.isoformat(), "to": ends.isoformat()})
    return await _render(
        request,
        seen,
        svc,
        heading=_(
            "Report: Surface %(name)s (%(sender)s)",
            name=surface.surface.name,
            sender=surface.surface.sender,
        ),
        report=report,
        csv_url=f"/admin/surfaces/{surface_id}/report.csv?{query}",
        window={
            "first": first,  # shown in the page's language
            "last": last,
            "from": first.isoformat(),  # the date fields' values
            "to": last.isoformat(),
            "problems": [_(problem) for problem in problems],
        },
        back=("/admin/reports", _("Back to reports")),
    )


@router.get("/surfaces/{surface_id}/report.csv")
async def surface_report_csv(
    surface_id: str,
    start: datetime = Query(alias="from"),
    end: datetime = Query(alias="to"),
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    try:
        scope = await svc.reports.surface_scope(surface_id, start=start, end=end)
    except (NotFound, InvalidInput):
        return RedirectResponse("/admin/reports", status_code=303)
    return StreamingResponse(
        svc.reports.csv_rows(scope),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{surface_id}.csv"'},
    )
