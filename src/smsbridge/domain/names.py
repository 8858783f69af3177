"""Names admins pick things by (credentials, surfaces): when two names are one name.

Names are shown in every list and picker, where ``Acme``, ``acme`` and ``Acme `` (or the
full-width letters of ``Acme``) cannot be told apart; so they clash. Each name is kept as typed
(trimmed), only compared in this folded form.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def name_key(name: str) -> str:
    """``name`` as names are compared: NFKC-normalized, case-folded, each run of whitespace
    counted as one space and the ends trimmed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def listed_names(names: Sequence[str], total: int, shown: int = 5) -> str:
    """``'a', 'b' and 3 more``: the first ``shown`` of ``names`` (``total`` in all), quoted,
    for a refusal that names what stands in the way."""
    more = total - min(len(names), shown)
    return ", ".join(repr(n) for n in names[:shown]) + (f" and {more} more" if more > 0 else "")
