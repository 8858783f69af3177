"""What may be shown of a secret: a hint of its last characters, or a masked stand-in."""

from __future__ import annotations

MIN_HINTED_LENGTH = 16
"""Secrets shorter than this get no hint: four characters would be over a quarter of them."""


def secret_hint(value: str) -> str:
    """What may be shown of a secret: its last four characters, none for short secrets."""
    return value[-4:] if len(value) >= MIN_HINTED_LENGTH else ""


def mask_secret(value: str) -> str:
    return "****" + secret_hint(value)
