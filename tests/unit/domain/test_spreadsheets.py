"""Exported CSV cells never start a formula (OWASP CSV injection)."""

from __future__ import annotations

import pytest

from smsbridge.domain.spreadsheets import inert_cell


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "+33 6 12"],
)
def test_formula_starts_are_quoted(text: str) -> None:
    assert inert_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["+33612345678", "+15550001111", "hello", "", "30005 error", "'x"])
def test_other_text_is_kept(text: str) -> None:
    assert inert_cell(text) == text
