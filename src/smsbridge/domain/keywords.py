"""The keyword engine: what an inbound message asks for, given a surface's keyword sets.

A keyword matches the whole message, trimmed and case-insensitively ("stop", " Stop " and
"STOP!" are STOP; "please stop" is not: it is kept as an inbound message for a person to read).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

CONFIRM_WORD = "YES"
_TRIM = " \t\r\n.!¡?¿,;:\"'"


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def classify(text: str, keywords: Mapping[str, tuple[str, ...]]) -> Keyword | None:
    word = text.strip(_TRIM).upper()
    if not word:
        return None
    for category in Keyword:
        if word in keywords.get(category.value, ()):
            return category
    return None


def normalized(text: str) -> str:
    """The message as a keyword (trimmed, upper case)."""
    return text.strip(_TRIM).upper()
