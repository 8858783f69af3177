"""What one template render may cost (issue 15, point 1): each vector that used to take
minutes, hours or gigabytes is refused before the work is done, naming the field and limit."""

from __future__ import annotations

import time
from typing import Any

import pytest

from smsbridge.domain.personalize import CACHEABLE_TEMPLATE_CHARS, Personalizer, ProfileRenderer
from smsbridge.domain.render_budget import OverLimit, RenderBudget, TemplateLimits
from smsbridge.errors import InvalidInput, LimitExceeded

LONG = "y" * 4_000  # a variable well within the limits, that templates try to multiply
VARIABLES = {"v": LONG, "big": 10**1_200, "tags": ["a", "b"]}
PROFILE: dict[str, Any] = {"firstName": "ana", "tags": ["vip"], "n": 3}


@pytest.fixture
def personalizer() -> Personalizer:
    return Personalizer()


def refusal(personalizer: Personalizer, source: str, field: str = "body") -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        personalizer.render(source, profile=PROFILE, variables=VARIABLES, field=field)
    assert caught.value.errors[0].field == field
    return caught.value


@pytest.mark.parametrize(
    "source",
    [
        "{{ ((((10**64)**64)**64)**64) > 1 }}",  # 37 characters: hours of CPU
        "{{ (10**64)**64 }}",
        "{{ 2 ** 5000 }}",
        "{{ big * big }}",
        "{{ -big * big }}",
        "{{ ('9' * 1300)|int * ('9' * 1300)|int }}",
    ],
)
def test_integers_are_bounded_in_every_operator(personalizer: Personalizer, source: str) -> None:
    error = refusal(personalizer, source)
    assert isinstance(error, LimitExceeded)
    assert "the limit is 4,096" in error.message


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x'.ljust(10**9) }}",
        "{{ 'x'.rjust(10**9) }}",
        "{{ 'x'.center(10**9) }}",
        "{{ 'x'.zfill(10**9) }}",
        "{{ 'x\t'.expandtabs(10**8) }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ '{x:>999999999}'.format_map({'x': 1}) }}",
        "{{ ','.join(['a', 'b']) }}",
        "{{ (10).to_bytes(10**9, 'big') }}",
        "{% if profile.tags.extend(profile.tags) %}{% endif %}",
        "{{ profile.tags.append(1) }}",
        "{{ profile.items() }}",
    ],
)
def test_methods_that_can_inflate_or_mutate_are_not_callable(
    personalizer: Personalizer, source: str
) -> None:
    assert "is not allowed" in refusal(personalizer, source).message


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x'|center(10**9) }}",
        "{{ '%999999999s'|format(1) }}",
        "{{ '%.999999999f'|format(1.5) }}",
        "{{ '%*s'|format(10**9, 'x') }}",
        "{{ '%(a)s%(a)s%(a)s'|format(a=v) }}",
        "{{ '%999999999s' % 1 }}",
        "{{ '%s%s%s' % (v, v, v) }}",
        "{{ '%(a)s%(a)s%(a)s' % {'a': v} }}",
        "{{ '%((a))999999999s' % {'(a)': 1} }}",
        "{{ [v, v, v]|join }}",
        "{{ ([v] * 3)|join }}",
        "{{ [v, v, v]|join(attribute='upper') }}",
        "{{ ['a', 'b']|join('x' * 9999) }}",
        "{{ ('ab' * 900)|replace('', 'x' * 900) }}",
        "{{ ('ab' * 900).replace('', 'x' * 900) }}",
        "{{ 'x' * 10**9 }}",
        "{{ [1] * 10**9 }}",
        "{{ v + v + v }}",
        "{{ v ~ v ~ v }}",
        "{{ [v, v, v]|string }}",
        "{{ [v, v, v]|upper }}",
        "{{ [v, v, v]|sort }}",
        "{{ [v, v, v] }}",
        "{{ ('%' * 3000)|urlencode|urlencode|urlencode }}",
    ],
)
def test_values_are_bounded_before_they_are_built(personalizer: Personalizer, source: str) -> None:
    error = refusal(personalizer, source)
    assert isinstance(error, LimitExceeded)
    assert "the limit is 10,000 (SMSBRIDGE_MAX_RENDERED_CHARS)" in error.message


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ lipsum(10**6) }}", "'lipsum' is undefined"),
        ("{{ range(10**6)|list }}", "'range' is undefined"),
        ("{{ cycler(1, 2).next() }}", "'cycler' is undefined"),
        ("{{ joiner(v)() }}", "'joiner' is undefined"),
        ("{{ dict(a=1) }}", "'dict' is undefined"),
        ("{{ namespace(a=1) }}", "'namespace' is undefined"),
        ("{{ v|indent(10**9) }}", "No filter named 'indent'"),
        ("{{ v|wordwrap(1, wrapstring=v) }}", "No filter named 'wordwrap'"),
        ("{{ [1]|batch(10**9, 'x') }}", "No filter named 'batch'"),
        ("{{ v|tojson }}", "No filter named 'tojson'"),
        ("{{ lipsum.__globals__ }}", "not allowed"),
        ("{{ cycler.__init__.__globals__.os }}", "not allowed"),
    ],
)
def test_only_what_a_message_needs_is_there(
    personalizer: Personalizer, source: str, fragment: str
) -> None:
    assert fragment in refusal(personalizer, source).message


@pytest.mark.parametrize(
    "source",
    [
        "{{ v }}{{ v }}{{ v }}",  # substitutions only: rendered without Jinja
        "{{ v|lower }}{{ v|lower }}{{ v|lower }}",
        "{{ variables.v }}{{ v|upper }}{{ profile.firstName }}" + "{{ v[:1000] }}" * 3,
        "{% if 1 %}" + "x" * 9_000 + "{% endif %}{{ v }}",  # literal text counts too
    ],
)
def test_output_is_bounded_while_rendering(personalizer: Personalizer, source: str) -> None:
    error = refusal(personalizer, source[:10_000])
    assert isinstance(error, LimitExceeded)
    assert "renders more than 10,000 characters (SMSBRIDGE_MAX_RENDERED_CHARS)" in error.message


def test_a_template_over_the_length_limit_is_refused_before_compiling(
    personalizer: Personalizer,
) -> None:
    source = "{{ profile.firstName|upper }}" * 45_000  # 1.3 MB
    for render in (
        lambda: personalizer.render(source, field="body"),
        lambda: personalizer.check(source, field="body"),
    ):
        with pytest.raises(LimitExceeded) as caught:
            render()
        assert caught.value.errors[0].field == "body"
        assert caught.value.errors[0].message == (
            "is 1,305,000 characters; the limit is 10,000 (SMSBRIDGE_MAX_TEMPLATE_CHARS)"
        )
    assert personalizer._cached.cache_info().currsize == 0


def test_long_templates_are_compiled_but_never_cached(personalizer: Personalizer) -> None:
    short = "Hi {{ profile.firstName|upper }}"
    long = short + " " * CACHEABLE_TEMPLATE_CHARS
    assert personalizer.render(long, profile=PROFILE).text.strip() == "Hi ANA"
    assert personalizer._cached.cache_info().currsize == 0
    personalizer.render(short, profile=PROFILE)
    assert personalizer._cached.cache_info().currsize == 1


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + "(" * 4_000 + "1" + ")" * 4_000 + " }}",
        "{{ " + "-" * 5_000 + "1 }}",
        "{{ " + "[" * 4_000 + "]" * 4_000 + " }}",
        "{{ x" + "|upper" * 1_000 + " }}",
        "{{ profile" + ".a" * 3_000 + " }}",
        "{% if 1 %}" * 200 + "{% endif %}" * 200,
        "{{ " + " + ".join(["1"] * 2_000) + " }}",
    ],
)
def test_deep_nesting_is_refused(personalizer: Personalizer, source: str) -> None:
    with pytest.raises(LimitExceeded) as caught:
        personalizer.check(source)
    assert "nested more than 48 levels deep" in caught.value.message


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ x|nosuchfilter }}", "No filter named 'nosuchfilter'"),
        ("{{ " + "9" * 5_000 + " }}", "cannot be compiled"),
    ],
)
def test_what_python_or_jinja_refuse_to_compile_is_invalid_input(
    personalizer: Personalizer, source: str, fragment: str
) -> None:
    assert fragment in refusal(personalizer, source).message


def test_rendering_stops_at_the_deadline() -> None:
    hurried = Personalizer(TemplateLimits(render_seconds=1e-9))
    with pytest.raises(LimitExceeded) as caught:
        hurried.render("{{ 1 + 1 }}" * 100)
    assert caught.value.errors[0].field == "body"
    assert "(SMSBRIDGE_TEMPLATE_RENDER_SECONDS)" in caught.value.message


def test_the_deadline_counts_the_threads_cpu_not_the_clock() -> None:
    """A render waiting for the interpreter lock or a busy machine is not refused for the wait
    (CI once refused a plain ``| upper`` when its machine stalled); the work it does is."""
    budget = RenderBudget(TemplateLimits(render_seconds=0.05))
    time.sleep(0.1)  # twice the allowance of clock time, next to no CPU
    budget.tick()
    budget.tick()  # the allowance left is carried over, not reset
    spin_until = time.thread_time() + 0.06
    while time.thread_time() < spin_until:
        pass
    with pytest.raises(OverLimit, match=r"more than 0\.05 s of CPU to render"):
        budget.tick()


def test_limits_are_settings() -> None:
    roomy = Personalizer(TemplateLimits(max_template_chars=50_000, max_rendered_chars=60_000))
    text = roomy.render("{{ v }}" * 3 + "{{ 'x' * 20000 }}" + " " * 20_000, variables=VARIABLES)
    assert len(text.text) == 52_000
    with pytest.raises(LimitExceeded, match="the limit is 60,000"):
        roomy.render("{{ 'x' * 60001 }}")
    with pytest.raises(LimitExceeded, match="the limit is 50,000"):
        roomy.check("x" * 50_001 + "{{ x }}")


def test_profile_renderer_is_bounded_too(personalizer: Personalizer) -> None:
    memoized = ProfileRenderer(personalizer, "{{ profile.bio }}" * 3, {})
    with pytest.raises(LimitExceeded, match="renders more than 10,000"):
        memoized.render({"bio": LONG}, "+33612345678", "p1", None)
    assert memoized.render({"bio": "ok"}, "+33612345678", "p2", None) == "okokok"
    too_long = ProfileRenderer(personalizer, "x" * 10_001, {})
    for _ in range(2):
        with pytest.raises(LimitExceeded, match="SMSBRIDGE_MAX_TEMPLATE_CHARS"):
            too_long.render({}, "+33612345678", "p1", None)
    assert not memoized.uses_engine
    assert ProfileRenderer(personalizer, "{{ profile.bio|upper }}", {}).uses_engine


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ '%.2f'|format(3.14159) }} {{ '%05d' % 42 }}", "3.14 00042"),
        ("{{ '%(n)s points'|format(n=profile.n) }}", "3 points"),
        ("{{ 'x'|center(5) }}|{{ 'a-b'|replace('-', ' & ') }}", "  x  |a & b"),
        ("{{ ['b', 'a']|sort|join(', ') }} {{ 'A b'.split()|join('+') }}", "a, b A+b"),
        ("{{ profile.firstName.title() }} {{ profile.get('nope', 'n/a') }}", "Ana n/a"),
        ("{{ 'ab' * 3 }} {{ [1, 2] + [3] }} {{ 2 ** 100 }}", f"ababab [1, 2, 3] {2**100}"),
        ("{{ v|truncate(8, True, '') }}{{ (v ~ v)|length }}", "yyyyyyyy8000"),
        ("{{ -profile.n }} {{ 7 // 2 }} {{ 7 % 4 }} {{ 1 / 4 }}", "-3 3 3 0.25"),
    ],
)
def test_what_messages_use_still_renders(
    personalizer: Personalizer, source: str, expected: str
) -> None:
    assert personalizer.render(source, profile=PROFILE, variables=VARIABLES).text == expected
