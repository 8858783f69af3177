"""URL detection vectors, shortening, codes, and the bot check."""

from __future__ import annotations

import itertools

import pytest

from smsbridge.domain.links import CODE_LENGTH, find_urls, is_bot, is_code, new_code, shorten


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("no link at all", []),
        ("www.example.com has no scheme", []),
        ("http:// alone", []),
        ("https://acme.example", ["https://acme.example"]),
        (
            "Sale: https://acme.example/s?utm=sms&x=1#top. Enjoy",
            ["https://acme.example/s?utm=sms&x=1#top"],
        ),
        ("query only https://a.example?x=1", ["https://a.example?x=1"]),
        ("fragment https://a.example/#/route/1", ["https://a.example/#/route/1"]),
        ("end of sentence https://a.example/x.", ["https://a.example/x"]),
        ("ellipsis https://a.example/x...", ["https://a.example/x"]),
        ("comma https://a.example/x, then", ["https://a.example/x"]),
        ("commas inside https://a.example/a,b/c", ["https://a.example/a,b/c"]),
        ("question https://a.example/x?", ["https://a.example/x"]),
        ("bang https://a.example/x!", ["https://a.example/x"]),
        ("(see https://a.example/path)", ["https://a.example/path"]),
        ("https://en.wikipedia.org/wiki/Foo_(bar) ok", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("(https://en.wikipedia.org/wiki/Foo_(bar))", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("[https://a.example/x]", ["https://a.example/x"]),
        (
            "'https://a.example/q' \"https://b.example\"",
            ["https://a.example/q", "https://b.example"],
        ),
        ("«https://a.example/fr»", ["https://a.example/fr"]),
        ("「https://a.example/jp」。", ["https://a.example/jp"]),
        ("IDN https://bücher.example/straße?q=ü ok", ["https://bücher.example/straße?q=ü"]),
        ("punycode https://xn--bcher-kva.example/", ["https://xn--bcher-kva.example/"]),
        ("port https://a.example:8443/p;x=1", ["https://a.example:8443/p;x=1"]),
        ("ipv6 http://[2001:db8::1]/x", ["http://[2001:db8::1]/x"]),
        ("CAPS HTTPS://A.EXAMPLE/X", ["HTTPS://A.EXAMPLE/X"]),
        (
            "two http://a.example and https://b.example/y, done",
            ["http://a.example", "https://b.example/y"],
        ),
        ("glued text:https://a.example/x", ["https://a.example/x"]),
        ("newline https://a.example/x\nnext", ["https://a.example/x"]),
        ("ftp://a.example/file is not http", []),
    ],
)
def test_url_detection(text: str, urls: list[str]) -> None:
    assert [u.url for u in find_urls(text)] == urls


def test_shorten_replaces_each_url_with_its_own_code() -> None:
    codes = (f"CODE{n:04d}" for n in itertools.count())
    result = shorten(
        "A https://a.example/1. B https://a.example/1 C", "https://go.example/", lambda: next(codes)
    )
    assert result.text == "A https://go.example/l/CODE0000. B https://go.example/l/CODE0001 C"
    assert result.links == (
        ("CODE0000", "https://a.example/1"),
        ("CODE0001", "https://a.example/1"),
    )
    untouched = shorten("nothing to see", "https://go.example")
    assert untouched.text == "nothing to see" and untouched.links == ()


def test_codes_are_random_base62() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == CODE_LENGTH and is_code(c) for c in codes)
    assert not is_code("abc") and not is_code("abc$defgh") and not is_code("x" * 40)


@pytest.mark.parametrize(
    ("agent", "bot"),
    [
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1",
            False,
        ),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120.0 Mobile Safari/537.36", False),
        ("Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36", False),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", True),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        ("WhatsApp/2.23.20.0 A", True),
        ("TelegramBot (like TwitterBot)", True),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", True),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", True),
        ("LinkedInBot/1.0 (compatible; Mozilla/5.0)", True),
        ("curl/8.4.0", True),
        ("python-requests/2.31", True),
        ("", True),
        (None, True),
    ],
)
def test_bots(agent: str | None, bot: bool) -> None:
    assert is_bot(agent) is bot


def test_codes_are_long_and_legacy_codes_still_read() -> None:
    from smsbridge.domain.links import LEGACY_CODE_LENGTH

    assert CODE_LENGTH >= 12
    assert is_code("a" * LEGACY_CODE_LENGTH)
    assert not is_code("a" * (LEGACY_CODE_LENGTH - 1))
    assert not is_code("a" * 17)  # longer than any stored code


def test_the_miss_limiter_counts_per_client_per_minute() -> None:
    from smsbridge.domain.links import MissLimiter

    limiter = MissLimiter(per_minute=3)
    for _ in range(3):
        assert limiter.blocked("a", 100.0) is None
        limiter.missed("a", 100.0)
    assert limiter.blocked("a", 110.0) == 50.0
    assert limiter.blocked("b", 110.0) is None  # another client is not affected
    assert limiter.blocked("a", 160.0) is None  # the window is over
    limiter.missed("a", 160.0)
    assert limiter.blocked("a", 161.0) is None


def test_the_miss_limiter_remembers_a_bounded_number_of_clients() -> None:
    from smsbridge.domain.links import MissLimiter

    limiter = MissLimiter(per_minute=1, max_clients=100)
    for n in range(10_000):
        limiter.missed(f"10.0.{n // 256}.{n % 256}", 1000.0 + n / 1000)
        assert len(limiter._windows) <= 100
