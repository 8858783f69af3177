"""Link tracking: finding the URLs of a message, shortening them, telling bots from people.

Every ``http``/``https`` URL of a rendered message is replaced by ``{base}/l/{code}``, one
random code per (message, URL), so that a click is attributed to its recipient. Detection is
deliberately conservative about the end of a URL: trailing sentence punctuation is not part of
it (``see https://a.example/x.``), nor is a closing bracket that opens outside it
(``(https://a.example/x)``), while balanced ones stay (``https://en.wikipedia.org/wiki/A_(b)``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

CODE_LENGTH = 12
"""Characters of a new code: 62^12 ≈ 3.2e21, so that with ten million live links a guess hits
one with probability 3e-15 (and guessers are slowed down per client, see MissLimiter)."""
LEGACY_CODE_LENGTH = 8
"""Codes made before 0.2 are 8 characters long; they keep working."""
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CODE = re.compile(rf"[0-9A-Za-z]{{{LEGACY_CODE_LENGTH},16}}")

# A scheme, then a host (letters in any script, digits, dots, hyphens, or a bracketed IPv6
# literal), then anything up to whitespace or a character that never appears unescaped in a
# URL someone typed into a message.
_URL = re.compile(
    r"https?://(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#<>\"'`\[\](){}|\\^,;!]+)(?::[0-9]{1,5})?"
    r"(?:[/?#][^\s<>\"`{}|\\^]*)?",
    re.IGNORECASE,
)
# Sentence punctuation, quotes and CJK closing brackets (escaped: some look like ASCII).
_TRAILING = ".,;:!?'\"\u2026\u3002\u3001\u00bb\u201d\u2019\u300d\u300f\uff09\u3011\u300b\u3009"
_PAIRS = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True)
class FoundUrl:
    start: int
    end: int
    url: str


def find_urls(text: str) -> list[FoundUrl]:
    """The http(s) URLs of ``text``, in order, without trailing punctuation."""
    found: list[FoundUrl] = []
    for match in _URL.finditer(text):
        url = match.group(0)
        while url:
            last = url[-1]
            if last in _TRAILING or (last in _PAIRS and url.count(_PAIRS[last]) < url.count(last)):
                url = url[:-1]
                continue
            break
        host = url.split("://", 1)[1]
        if not host or host[0] in "/?#:":
            continue
        found.append(FoundUrl(match.start(), match.start() + len(url), url))
    return found


def new_code() -> str:
    """A random base62 link code (:data:`CODE_LENGTH` characters)."""
    return "".join(secrets.choice(BASE62) for _ in range(CODE_LENGTH))


def is_code(text: str) -> bool:
    return _CODE.fullmatch(text) is not None


@dataclass(frozen=True)
class Shortened:
    text: str
    links: tuple[tuple[str, str], ...]
    """(code, original URL) for every URL replaced, in order."""


def shorten(text: str, base_url: str, make_code: Callable[[], str] = new_code) -> Shortened:
    """``text`` with every URL replaced by ``{base_url}/l/{code}``."""
    urls = find_urls(text)
    if not urls:
        return Shortened(text, ())
    base = base_url.rstrip("/")
    parts: list[str] = []
    links: list[tuple[str, str]] = []
    position = 0
    for found in urls:
        code = make_code()
        parts.append(text[position : found.start])
        parts.append(f"{base}/l/{code}")
        links.append((code, found.url))
        position = found.end
    parts.append(text[position:])
    return Shortened("".join(parts), tuple(links))


# Link-preview fetchers and crawlers: their requests are recorded, flagged, and left out of
# the human click counts. Names ending in "bot/" cover most (Googlebot/2.1, Twitterbot/1.0);
# a bare word "bot" must stand alone (the CUBOT phone brand is not a bot).
_BOTS = re.compile(
    r"[a-z]bot/|\bbot\b|crawler|spider|facebookexternalhit|facebot|slack-imgproxy|whatsapp|"
    r"telegrambot|twitterbot|slackbot|discordbot|linkedinbot|applebot|googlebot|bingbot|"
    r"yandexbot|duckduckbot|redditbot|petalbot|semrushbot|ahrefsbot|"
    r"skypeuripreview|google-pagerenderer|embedly|iframely|vkshare|pinterest|bitlybot|"
    r"headlesschrome|python-requests|python-urllib|aiohttp|httpx|curl/|wget/|go-http-client|"
    r"okhttp|java/|libwww|linkpreview|preview",
    re.IGNORECASE,
)


def is_bot(user_agent: str | None) -> bool:
    """True for link-preview fetchers, crawlers and scripts; also for a missing user agent."""
    if not user_agent or not user_agent.strip():
        return True
    return _BOTS.search(user_agent) is not None


@dataclass
class MissLimiter:
    """How many unknown or expired codes one client may ask for: ``per_minute`` in a fixed
    one-minute window per client address. Someone guessing codes is slowed to that rate;
    a person mistyping a link is not affected.

    Memory is bounded: at most ``max_clients`` addresses are remembered; when full, windows
    that have ended are forgotten, and if none has, all are (a flood from that many addresses
    would exceed the budget anyway).
    """

    per_minute: int
    max_clients: int = 65_536
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    def blocked(self, client: str, now: float) -> float | None:
        """Seconds until ``client`` may miss again, or None when it may now."""
        window = self._windows.get(client)
        if window is None or now - window[0] >= 60 or window[1] < self.per_minute:
            return None
        return max(1.0, 60 - (now - window[0]))

    def missed(self, client: str, now: float) -> None:
        window = self._windows.get(client)
        if window is None or now - window[0] >= 60:
            if window is None and len(self._windows) >= self.max_clients:
                self._forget_ended(now)
            self._windows[client] = (now, 1)
        else:
            self._windows[client] = (window[0], window[1] + 1)

    def _forget_ended(self, now: float) -> None:
        for key in [k for k, (start, _) in self._windows.items() if now - start >= 60]:
            del self._windows[key]
        if len(self._windows) >= self.max_clients:
            self._windows.clear()
