"""The admin in English and French: the visitor's language, the translations, and the locale's
dates and numbers.

English is the source language: every ``msgid`` is the English text, and the French catalog is
``locale/fr/LC_MESSAGES/messages.po``, read when the admin starts (no compile step; a missing,
empty or fuzzy translation shows the English). ``make messages`` extracts the strings of the
templates and of the page modules (``babel.cfg``) and merges them into the catalog;
``tests/unit/test_admin_i18n.py`` fails on any shown string left without French.

The language of a request (:func:`language_of`): the visitor's remembered choice (the
:data:`LANG_COOKIE` cookie, set by the switcher in the page header), else the browser's
``Accept-Language`` (``fr``, ``fr-FR``, ``fr-CA``… give French), else English.

In a template, write ``{% trans %}Sign in{% endtrans %}`` or ``{{ _("Sign in") }}``; named
placeholders are ``%(name)s`` and their values are escaped (``newstyle`` gettext), so a
literal ``%`` is written ``%%``. Filters: ``number`` (``{{ n|number }}``), ``datetime``
(``{{ at|datetime }}``), ``status`` (a message or campaign status in words).

In a page module, take the request's translator and call it::

    from smsbridge.web.i18n import translator

    _ = translator(request)
    title = _("Not found")
    text = _("No message %(id)s.", id=message_id)
    ngettext = _.ngettext  # bound to a plain name: babel extracts ``ngettext(…)`` calls as
    summary = ngettext("%(num)s message", "%(num)s messages", count)  # plurals, not ``_.ngettext``

Strings defined at import time (labels in a table) are marked with :func:`N_` and translated
where they are shown (``_(LABELS[key])``). What the services say to people (refusals,
problems) is made with :func:`smsbridge.errors.phrase`: English text that remembers its
template, shown in the page's language by :meth:`Translator.said` — by itself in ``{{ … }}``
(the environment's ``finalize``), with the ``said`` filter as a ``{% trans %}`` value. The
extraction keywords are babel's defaults (``_``, ``gettext``, ``ngettext``, ``N_``…) plus
``phrase``, so nothing else is needed for a new module.
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from starlette.requests import HTTPConnection

from smsbridge.errors import Phrase

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
DEFAULT = "en"
# Each language named in itself: the switcher shows them untranslated, with their own lang.
LANGUAGES = {"en": "English", "fr": "Français"}
LANG_COOKIE = "smsbridge_lang"
LANG_COOKIE_AGE = 365 * 24 * 3600
NONE = "\u2013"  # what a missing number or date shows: an en dash


def N_(message: str) -> str:
    """Marks ``message`` for extraction only: it is translated where it is shown."""
    return message


# Statuses shown in words (the value itself stays in URLs and forms).
STATUS_LABELS = {
    "scheduled": N_("scheduled"),
    "queued": N_("queued"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "delivered": N_("delivered"),
    "undelivered": N_("undelivered"),
    "failed": N_("failed"),
    "suppressed": N_("suppressed"),
    "cancelled": N_("cancelled"),
    "draft": N_("draft"),
    "running": N_("running"),
    "completed": N_("completed"),
}


def supported(lang: str | None) -> str | None:
    """``lang`` when it is one of :data:`LANGUAGES` (its primary subtag: ``fr-CA`` is ``fr``)."""
    if not lang:
        return None
    primary = lang.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


def from_accept_language(header: str | None) -> str:
    """The first supported language of an ``Accept-Language`` header, by quality (ties keep
    the header's order); English when none is supported or the header is malformed."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "")[:1000].split(",")):
        tag, *params = part.strip().split(";")
        quality = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = supported(tag)
        if lang and 0 < quality <= 1:
            ranked.append((-quality, index, lang))
    return min(ranked)[2] if ranked else DEFAULT


def language_of(request: HTTPConnection) -> str:
    """The language of ``request``: the remembered choice, else ``Accept-Language``."""
    return supported(request.cookies.get(LANG_COOKIE)) or from_accept_language(
        request.headers.get("accept-language")
    )


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """``lang``'s catalog, read once from its ``.po`` (English: the msgids themselves).
    Read-only once built, so every request of any language shares it safely."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang == DEFAULT or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=lang, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)  # empty and fuzzy entries are left out
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@dataclass(frozen=True)
class Translator:
    """gettext for one language, with named placeholders filled in (``%(name)s``), as in the
    templates. Call it for a message; :meth:`ngettext` for one with a count (``%(num)s``)."""

    lang: str
    catalog: gettext.NullTranslations

    def __call__(self, message: str, /, **variables: Any) -> str:
        text = self.catalog.gettext(message)
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, num: int, /, **variables: Any) -> str:
        return self.catalog.ngettext(singular, plural, num) % {"num": num, **variables}

    def said(self, text: Any) -> Any:
        """``text`` in this language when it is a :class:`~smsbridge.errors.Phrase` (what the
        services say: problems, refusals), anything else as it is."""
        if not isinstance(text, Phrase):
            return text
        if text.values:  # a value may be a phrase itself (a problem quoted by another)
            return self(text.template, **{k: self.said(v) for k, v in text.values.items()})
        return self.catalog.gettext(text.template)


def translator_for(lang: str) -> Translator:
    lang = supported(lang) or DEFAULT
    return Translator(lang, translations(lang))


def translator(request: HTTPConnection) -> Translator:
    """The translator of ``request``'s language (see :func:`language_of`)."""
    return translator_for(language_of(request))


def formatters(lang: str) -> dict[str, Any]:
    """The Jinja filters formatting for ``lang``: ``number``, ``datetime``, ``date``,
    ``status``. A value that is not a number or a date is shown as it is; none as a dash."""
    translate = translator_for(lang)

    def number(value: Any) -> str:
        if value is None:
            return NONE
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        return format_decimal(value, locale=lang)

    def when(value: Any, style: str = "medium") -> str:
        if value is None:
            return NONE
        if isinstance(value, str):
            text: str = value
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                return text
        if isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=UTC)
            return format_datetime(aware, style, tzinfo=UTC, locale=lang)
        if isinstance(value, date):
            return format_date(value, style, locale=lang)
        return str(value)

    def day(value: Any, style: str = "medium") -> str:
        if isinstance(value, datetime):
            value = value.date()
        return when(value, style)

    def status(value: Any) -> str:
        label = STATUS_LABELS.get(str(value))
        return translate(label) if label else str(value)

    return {"number": number, "datetime": when, "date": day, "status": status}
