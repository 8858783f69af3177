"""Cells of the CSV files we export, made safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a line break is read as a formula
by Excel, LibreOffice and Google Sheets ("CSV injection", OWASP). Exports carry text from
outside — provider errors and ids, webhook fields, profile values — so such a cell is written
with a leading ``'``, which spreadsheets show as text. E.164 numbers (``+33612345678``) are the
one exception: they are ours, normalized, and harmless.
"""

from __future__ import annotations

import re

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def inert_cell(text: str) -> str:
    """``text`` as a spreadsheet will show it, never run it."""
    if text.startswith(_FORMULA_START) and _E164.fullmatch(text) is None:
        return "'" + text
    return text
