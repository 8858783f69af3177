"""count_segments: GSM-7 / UCS-2 detection and segment counts (3GPP TS 23.038 practice).

The character tables and the packer below are written out independently of the module, so a
wrong table entry or packing rule in ``segments.py`` shows up as a disagreement.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsbridge.domain.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Encoding,
    SegmentCount,
    count_segments,
)

# The GSM 03.38 default alphabet, one row per 16 code points (0x1B, the escape, is left out:
# it is not a character a user can send on its own).
REFERENCE_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
REFERENCE_EXTENSION = frozenset(["\f", "^", "{", "}", "\\", "[", "~", "]", "|", "€"])

NON_GSM_BMP = "çáíóúâêôãõ中ж\u200b\x1b\tÀÈ`"
ASTRAL = "😀🎉𝄞🇫"


def reference_count(text: str) -> tuple[Encoding, int, int]:
    """(encoding, segments, units) by filling segments greedily with indivisible atoms."""
    if all(ch in REFERENCE_BASIC or ch in REFERENCE_EXTENSION for ch in text):
        atoms = [2 if ch in REFERENCE_EXTENSION else 1 for ch in text]
        encoding, single, multi = Encoding.GSM7, 160, 153
    else:
        atoms = [len(ch.encode("utf-16-le")) // 2 for ch in text]
        encoding, single, multi = Encoding.UCS2, 70, 67
    units = sum(atoms)
    if units <= single:
        return encoding, 1, units
    filled: list[list[int]] = [[]]
    for atom in atoms:
        if sum(filled[-1]) + atom > multi:
            filled.append([])
        filled[-1].append(atom)
    return encoding, len(filled), units


def test_module_tables_match_the_3gpp_default_alphabet() -> None:
    assert len(REFERENCE_BASIC) == 127
    assert GSM7_BASIC == REFERENCE_BASIC
    assert GSM7_EXTENSION == REFERENCE_EXTENSION


@pytest.mark.parametrize(
    ("text", "segments", "units"),
    [
        ("", 1, 0),
        ("a", 1, 1),
        ("a" * 160, 1, 160),
        ("a" * 161, 2, 161),
        ("a" * 306, 2, 306),
        ("a" * 307, 3, 307),
        ("a" * 459, 3, 459),
        ("a" * 460, 4, 460),
        ("€" * 80, 1, 160),
        ("€" * 81, 2, 162),
        ("a" * 159 + "€", 2, 161),
        ("a" * 158 + "€", 1, 160),
        ("{}[]~|^\\\f€", 1, 20),
        ("line one\nline two\r\n", 1, 19),
    ],
)
def test_gsm7_counts(text: str, segments: int, units: int) -> None:
    assert count_segments(text) == SegmentCount(Encoding.GSM7, segments, units, ())


def test_escape_pair_is_not_split_across_segments() -> None:
    # 306 septets would fill exactly two 153-septet parts if the pair could straddle them.
    text = "a" * 152 + "€" + "a" * 152
    result = count_segments(text)
    assert result.units == 306
    assert result.segments == 3


def test_escape_pair_moves_to_next_segment() -> None:
    # 152 + 2 + 10 = 164 septets: the € starts part two, which still has room.
    assert count_segments("a" * 152 + "€" + "a" * 10).segments == 2
    # 152 + 2 + 151 = 305 septets, but part two must hold 2 + 151 = 153: still two parts.
    assert count_segments("a" * 152 + "€" + "a" * 151).segments == 2
    assert count_segments("a" * 152 + "€" + "a" * 152).segments == 3


@pytest.mark.parametrize(
    ("text", "segments", "units"),
    [
        ("ç", 1, 1),
        ("ж" * 70, 1, 70),
        ("ж" * 71, 2, 71),
        ("ж" * 134, 2, 134),
        ("ж" * 135, 3, 135),
        ("😀" * 35, 1, 70),
        ("😀" * 36, 2, 72),
        ("a" * 69 + "😀", 2, 71),
        ("a" * 68 + "😀", 1, 70),
    ],
)
def test_ucs2_counts(text: str, segments: int, units: int) -> None:
    result = count_segments(text)
    assert result.encoding is Encoding.UCS2
    assert (result.segments, result.units) == (segments, units)


def test_surrogate_pair_is_not_split_across_segments() -> None:
    # 66 + 2 + 66 = 134 units would be two 67-unit parts if the emoji could straddle them.
    text = "ж" * 66 + "😀" + "ж" * 66
    result = count_segments(text)
    assert result.units == 134
    assert result.segments == 3


def test_surrogate_pair_moving_on_keeps_count_when_room_remains() -> None:
    assert count_segments("ж" * 66 + "😀" + "ж" * 65).segments == 2


@pytest.mark.parametrize("char", sorted(REFERENCE_BASIC))
def test_every_basic_character_stays_gsm7(char: str) -> None:
    assert count_segments(char * 3) == SegmentCount(Encoding.GSM7, 1, 3, ())


@pytest.mark.parametrize("char", sorted(REFERENCE_EXTENSION))
def test_every_extension_character_costs_two_septets(char: str) -> None:
    assert count_segments(char) == SegmentCount(Encoding.GSM7, 1, 2, ())


@pytest.mark.parametrize("char", list(NON_GSM_BMP + ASTRAL))
def test_non_gsm_character_forces_ucs2(char: str) -> None:
    result = count_segments("Hello " + char)
    assert result.encoding is Encoding.UCS2
    assert result.ucs2_characters == (char,)


def test_lowercase_c_cedilla_forces_ucs2_but_uppercase_does_not() -> None:
    assert count_segments("Ça va").encoding is Encoding.GSM7
    assert count_segments("ça va").encoding is Encoding.UCS2


def test_ucs2_characters_in_order_of_first_appearance_without_duplicates() -> None:
    result = count_segments("ça, 中文 ça 😀 € ж中😀")
    assert result.ucs2_characters == ("ç", "中", "文", "😀", "ж")


def test_ucs2_units_count_extension_characters_once() -> None:
    # In UCS-2 a € is one code unit, not an escape pair.
    result = count_segments("ж" + "€" * 69)
    assert (result.encoding, result.segments, result.units) == (Encoding.UCS2, 1, 70)


_GSM_ALPHABET = "".join(sorted(REFERENCE_BASIC)) + "".join(sorted(REFERENCE_EXTENSION)) * 6
_ANY_ALPHABET = _GSM_ALPHABET + NON_GSM_BMP * 2 + ASTRAL * 4

# Lengths drawn uniformly up to three segments' worth, so texts regularly cross the
# single-segment limits; the GSM-only alphabet keeps half the examples GSM-7.
_texts = st.tuples(st.sampled_from([_GSM_ALPHABET, _ANY_ALPHABET]), st.integers(0, 480)).flatmap(
    lambda drawn: st.text(alphabet=drawn[0], min_size=drawn[1], max_size=drawn[1])
)


@st.composite
def _texts_near_part_boundaries(draw: st.DrawFn) -> str:
    """Texts whose total units sit within two of a whole number of concatenated parts.

    There, one escape or surrogate pair straddling a part boundary changes the count, which
    random lengths alone almost never exercise.
    """
    if draw(st.booleans()):
        alphabet, filler, unit_cost, multi = _GSM_ALPHABET, "a", _reference_gsm_cost, 153
    else:
        alphabet, filler, unit_cost, multi = "ж" + ASTRAL * 3, "ж", _reference_ucs2_cost, 67
    target = draw(st.integers(2, 3)) * multi + draw(st.integers(-2, 2))
    chars = draw(st.text(alphabet=alphabet, min_size=target // 2, max_size=target))
    kept, units = [filler], 1
    for ch in chars:
        if units + unit_cost(ch) > target:
            break
        kept.append(ch)
        units += unit_cost(ch)
    return "".join(kept) + filler * (target - units)


def _reference_gsm_cost(ch: str) -> int:
    return 2 if ch in REFERENCE_EXTENSION else 1


def _reference_ucs2_cost(ch: str) -> int:
    return len(ch.encode("utf-16-le")) // 2


@settings(max_examples=300)
@given(_texts)
def test_counts_agree_with_reference_packer(text: str) -> None:
    result = count_segments(text)
    assert (result.encoding, result.segments, result.units) == reference_count(text)


@settings(max_examples=300)
@given(_texts_near_part_boundaries())
def test_counts_near_part_boundaries_agree_with_reference_packer(text: str) -> None:
    result = count_segments(text)
    assert (result.encoding, result.segments, result.units) == reference_count(text)


@settings(max_examples=200)
@given(_texts)
def test_ucs2_characters_are_the_distinct_non_gsm_characters(text: str) -> None:
    expected = tuple(
        dict.fromkeys(
            ch for ch in text if ch not in REFERENCE_BASIC and ch not in REFERENCE_EXTENSION
        )
    )
    assert count_segments(text).ucs2_characters == expected
