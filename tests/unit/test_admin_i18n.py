"""The web admin in English and French (issue 18): no string shown to a user without French.

Two checks, each with a test showing it catches what it is for:

* every template's text outside translation calls (the text between tags, and the attributes a
  user sees or hears: ``placeholder``, ``title``, ``aria-label``, ``alt``, ``data-label`` (the
  column name of a stacked table on a phone), the ``value`` of an ``<input>`` button) holds no
  letter;
* every string extracted from the templates and the page modules (``babel.cfg``, as
  ``make messages`` extracts them) has a French translation in the catalog: present, not empty,
  not fuzzy, with the same ``%(name)s`` placeholders.

Plus the language chosen from ``Accept-Language``, the locale's numbers and dates, and the
translations of one request not leaking into another's.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import Environment, nodes

from smsbridge.web.i18n import (
    LANGUAGES,
    LOCALE_DIR,
    formatters,
    from_accept_language,
    supported,
    translator_for,
)
from smsbridge.web.shell import HERE, LocalPages, Pages, environment

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = HERE / "templates"
CATALOG = LOCALE_DIR / "fr" / "LC_MESSAGES" / "messages.po"

# Templates other changes are editing at the moment: translated later, then removed from here
# (the set must end empty; a name here that has no untranslated text left fails the test).
NOT_YET_TRANSLATED: set[str] = set()
# Shown as they are in every language: the product's name.
UNTRANSLATED_WORDS = {"smsbridge"}
SHOWN_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt", "data-label"}
BUTTON_TYPES = {"submit", "button", "reset"}
HIDDEN_ELEMENTS = {"script", "style"}
PLACEHOLDER = "\x00"  # stands for whatever a template computes (an expression, a translation)
NAMED = re.compile(r"%\((\w+)\)[sdif]")


# --- text outside translation calls ------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    start: int  # offset in the flattened template
    line: int  # its line in the template


def _flatten(tree: nodes.Template) -> tuple[str, list[Piece]]:
    """The template's output in source order, every computed part replaced by
    :data:`PLACEHOLDER` (both branches of an ``if`` kept: each may be shown)."""
    text: list[str] = []
    pieces: list[Piece] = []
    size = 0

    def walk(node: nodes.Node) -> None:
        nonlocal size
        if isinstance(node, nodes.Output):
            for part in node.nodes:
                if isinstance(part, nodes.TemplateData):
                    pieces.append(Piece(size, part.lineno))
                    text.append(part.data)
                    size += len(part.data)
                else:
                    text.append(PLACEHOLDER)
                    size += 1
            return
        for child in node.iter_child_nodes():
            walk(child)

    walk(tree)
    return "".join(text), pieces


class _ShownText(HTMLParser):
    """Collects (offset, text) of what a user sees or hears in a flattened template."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []
        self._hidden = 0
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        shown = dict(attrs)
        for name, value in attrs:
            # a <button>'s value is only posted; an <input> button shows it
            button = name == "value" and tag == "input" and shown.get("type") in BUTTON_TYPES
            if value and (name in SHOWN_ATTRIBUTES or button):
                self.found.append((self._offset(), value))
        if tag in HIDDEN_ELEMENTS:
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_ELEMENTS and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.found.append((self._offset(), data))


def _has_words(text: str) -> bool:
    words = re.findall(r"[^\W\d_]+", text.replace(PLACEHOLDER, " "))
    return any(word not in UNTRANSLATED_WORDS for word in words)


def untranslated(env: Environment, source: str) -> list[tuple[int, str]]:
    """(line, text) of every shown text of ``source`` that holds letters outside a
    translation call."""
    flat, pieces = _flatten(env.parse(source))
    parser = _ShownText(flat)
    parser.feed(flat)
    parser.close()
    problems = []
    for offset, text in parser.found:
        if not _has_words(text):
            continue
        piece = max((p for p in pieces if p.start <= offset), key=lambda p: p.start)
        line = piece.line + flat.count("\n", piece.start, offset)
        problems.append((line, " ".join(text.replace(PLACEHOLDER, "…").split())))
    return problems


@pytest.fixture(scope="module")
def env() -> Environment:
    return environment("en")


def _templates() -> list[str]:
    return sorted(p.name for p in TEMPLATES.glob("*.html"))


def test_every_template_shows_only_translated_text(env: Environment) -> None:
    problems = [
        f"{name}:{line}: {text!r}"
        for name in _templates()
        if name not in NOT_YET_TRANSLATED
        for line, text in untranslated(env, (TEMPLATES / name).read_text())
    ]
    assert problems == [], "text without translation:\n" + "\n".join(problems)


def test_the_templates_not_yet_translated_are_real_and_still_untranslated(
    env: Environment,
) -> None:
    """The set only shrinks: each name is a template that still has English to translate."""
    for name in NOT_YET_TRANSLATED:
        assert (TEMPLATES / name).exists(), name
        assert untranslated(env, (TEMPLATES / name).read_text()), (
            f"{name} is translated: remove it from NOT_YET_TRANSLATED"
        )


def test_the_template_check_finds_text_left_in_english(env: Environment) -> None:
    source = """{% extends "base.html" %}
{% block main %}
<h1>{% trans %}Messages{% endtrans %}</h1>
<p>{{ _("Hello %(name)s", name=who) }} · {{ count }} / 3 \u2013 smsbridge</p>
<p class="hint">Left in English</p>
<input placeholder="Search here" value="{{ q }}" aria-label="{{ _('Search') }}">
<button type="submit" value="go">{{ _("Go") }}</button>
<input type="submit" value="Send it">
<td data-label="Created">{{ when }}</td>
{% if x %}<a title="Opens {{ x }}">{{ x }}</a>{% else %}Nothing{% endif %}
<script>var words = "not shown";</script><style>p { color: red }</style>
{# a comment is not shown #}
{% endblock %}
"""
    assert untranslated(env, source) == [
        (5, "Left in English"),
        (6, "Search here"),
        (8, "Send it"),
        (9, "Created"),
        (10, "Opens …"),
        (10, "Nothing"),
    ]


# --- every extracted string has French ---------------------------------------------------------


def _extracted() -> dict[str | tuple[str, ...], str]:
    """msgid → where it was found, extracted as ``make messages`` extracts them."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[str | tuple[str, ...], str] = {}
    keywords = {**DEFAULT_KEYWORDS, "phrase": None}  # `make messages`: -k phrase
    for filename, line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        msgid = message if isinstance(message, str) else tuple(m for m in message if m)
        found.setdefault(msgid, f"{filename}:{line}")
    return found


def _placeholders(text: str) -> set[str]:
    return set(NAMED.findall(text))


def missing_french(extracted: dict[str | tuple[str, ...], str], catalog: Catalog) -> list[str]:
    """Every extracted string without a usable French translation in ``catalog``."""
    problems = []
    for msgid, where in extracted.items():
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        entry = catalog.get(key)
        singular = key
        plural = msgid[-1] if isinstance(msgid, tuple) else key
        if entry is None:
            problems.append(f"{where}: {key!r} is not in the catalog (run make messages)")
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if entry.fuzzy or not all(strings):
            problems.append(f"{where}: {key!r} has no French (empty or fuzzy)")
            continue
        wanted = _placeholders(singular) | _placeholders(plural)
        for text in strings:
            if _placeholders(text) != wanted:
                problems.append(f"{where}: {key!r}: {text!r} has other placeholders")
    return problems


def _catalog(text: str = "") -> Catalog:
    source = CATALOG.read_bytes() if not text else text.encode()
    return read_po(BytesIO(source), locale="fr")


def test_every_extracted_string_has_french() -> None:
    extracted = _extracted()
    assert "Sign in" in extracted and "Not found" in extracted  # templates and Python both
    problems = missing_french(extracted, _catalog())
    assert problems == [], "\n".join(problems)


def test_the_catalog_check_finds_missing_fuzzy_and_wrong_translations() -> None:
    catalog = _catalog(
        """
msgid ""
msgstr ""
"Language: fr\\n"
"Content-Type: text/plain; charset=utf-8\\n"

msgid "Empty"
msgstr ""

#, fuzzy
msgid "Guessed"
msgstr "Deviné"

msgid "Hello %(name)s"
msgstr "Bonjour %(nom)s"

msgid "Fine %(n)s"
msgstr "Bien %(n)s"
"""
    )
    extracted: dict[str | tuple[str, ...], str] = {
        "Absent": "a.html:1",
        "Empty": "a.html:2",
        "Guessed": "a.html:3",
        "Hello %(name)s": "a.html:4",
        "Fine %(n)s": "a.html:5",
    }
    problems = missing_french(extracted, catalog)
    assert [p.split(":", 2)[1] for p in problems] == ["1", "2", "3", "4"], problems


def test_the_catalog_is_valid_and_loads_without_a_build_step() -> None:
    catalog = _catalog()
    assert catalog.locale is not None and str(catalog.locale) == "fr"
    _ = translator_for("fr")
    assert _("Sign in") == "Se connecter"
    assert _("This screen is for admin keys (channels and credentials hold provider secrets); "
             "this key's role is %(role)s.", role="viewer").endswith("est viewer.")  # fmt: skip
    assert translator_for("en")("Sign in") == "Sign in"
    assert translator_for("fr")("A string nobody translated") == "A string nobody translated"


# --- the language, the locale's formats, and no leak between requests --------------------------


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("fr", "fr"),
        ("fr-FR", "fr"),
        ("fr-CA,fr;q=0.9", "fr"),
        ("FR-be", "fr"),
        ("en-US,en;q=0.9", "en"),
        ("de-DE", "en"),
        ("de-DE, fr;q=0.5", "fr"),
        ("en;q=0.4, fr;q=0.8", "fr"),
        ("fr;q=0, en", "en"),
        ("fr;q=abc", "en"),
        ("*", "en"),
        ("", "en"),
        (None, "en"),
        (";;,,q=1", "en"),
    ],
)
def test_the_language_comes_from_accept_language(header: str | None, lang: str) -> None:
    assert from_accept_language(header) == lang


def test_only_known_languages_are_remembered() -> None:
    assert supported("fr") == "fr" and supported("en_GB") == "en"
    assert supported("de") is None and supported("") is None and supported("x" * 50) is None


def test_numbers_and_dates_follow_the_locale() -> None:
    en, fr = formatters("en"), formatters("fr")
    assert en["number"](1234567) == "1,234,567"
    assert fr["number"](1234567) == "1\u202f234\u202f567"
    assert fr["number"](None) == "\u2013" and fr["number"]("n/a") == "n/a"
    at = datetime(2025, 1, 5, 15, 4, 5, tzinfo=UTC)
    assert en["datetime"](at) == "Jan 5, 2025, 3:04:05\u202fPM"
    assert fr["datetime"](at) == "5 janv. 2025, 15:04:05"
    assert fr["datetime"]("2025-01-05T15:04:05+00:00") == "5 janv. 2025, 15:04:05"
    assert fr["date"](at) == "5 janv. 2025"
    assert fr["status"]("delivered") == "remis" and en["status"]("delivered") == "delivered"
    assert fr["status"]("something-new") == "something-new"


def test_a_placeholders_value_is_escaped_but_the_translation_is_markup() -> None:
    page = LocalPages(environment("fr"), "/admin").render(
        "confirm_delete.html", name="<script>x</script>", credential_id="c1", csrf="t"
    )
    html = page.body.decode()
    assert "Supprimer &lt;script&gt;x&lt;/script&gt;\u202f?" in html
    assert '<html lang="fr">' in html


def _render(pages: Pages, lang: str) -> str:
    html = (
        LocalPages(pages.env(lang), "/admin/messages")
        .render("message.html", title="t", text="x", who=None)
        .body.decode()
    )
    return html


def test_concurrent_requests_keep_their_own_language() -> None:
    pages = Pages()
    langs = [lang for _ in range(100) for lang in LANGUAGES]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda lang: (lang, _render(pages, lang)), langs))
    for lang, html in results:
        assert f'<html lang="{lang}">' in html
        assert (">Retour<" in html) is (lang == "fr")
