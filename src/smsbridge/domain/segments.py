"""SMS segments and encoding (3GPP TS 23.038).

A message that fits the GSM 03.38 default alphabet (plus its extension table, whose
characters cost two septets: escape + char) is sent as GSM-7: 160 septets in one segment,
153 per segment when concatenated (the user data header takes 7). Anything else is UCS-2:
70 UTF-16 code units, 67 per concatenated segment. An escape pair is never split across
segments, nor is a UTF-16 surrogate pair.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
) - {"\x1b"}
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class SegmentCount:
    encoding: Encoding
    segments: int
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text."""
    ucs2_characters: tuple[str, ...]
    """The characters that forced UCS-2, in order of first appearance (empty for GSM-7)."""


def _gsm_cost(char: str) -> int:
    if char in GSM7_BASIC:
        return 1
    if char in GSM7_EXTENSION:
        return 2
    return 0


GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


# ASCII characters outside the GSM-7 basic table: with none of them, an ASCII text is plain
# GSM-7 (one septet each). Checked with one regex scan instead of building a set: counting is
# done for every message of a campaign.
_ASCII_NOT_BASIC = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\[\\\]^`{|}~\x7f]")


def count_segments(text: str) -> SegmentCount:
    if text.isascii() and _ASCII_NOT_BASIC.search(text) is None:
        units = len(text)
        segments = 1 if units <= GSM7_SINGLE else -(-units // GSM7_MULTI)
        return SegmentCount(Encoding.GSM7, segments, units, ())
    characters = set(text)
    if characters <= GSM7_BASIC:  # fast path: one septet each, nothing to keep together
        units = len(text)
        segments = 1 if units <= GSM7_SINGLE else -(-units // GSM7_MULTI)
        return SegmentCount(Encoding.GSM7, segments, units, ())
    if not characters <= GSM7_ALL and (not text or max(text) <= "\uffff"):
        # UCS-2 without surrogate pairs: one unit each
        units = len(text)
        segments = 1 if units <= UCS2_SINGLE else -(-units // UCS2_MULTI)
        forcing = tuple(dict.fromkeys(ch for ch in text if ch not in GSM7_ALL))
        return SegmentCount(Encoding.UCS2, segments, units, forcing)
    forcing = tuple(dict.fromkeys(ch for ch in text if _gsm_cost(ch) == 0))
    if not forcing:
        costs = [_gsm_cost(ch) for ch in text]
        return SegmentCount(Encoding.GSM7, _pack(costs, GSM7_SINGLE, GSM7_MULTI), sum(costs), ())
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SegmentCount(Encoding.UCS2, _pack(costs, UCS2_SINGLE, UCS2_MULTI), sum(costs), forcing)


def _pack(costs: list[int], single: int, multi: int) -> int:
    """Segments needed when units of each cost must stay within one segment."""
    total = sum(costs)
    if total == 0:
        return 1
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return segments
