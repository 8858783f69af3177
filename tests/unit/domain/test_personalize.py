"""Personalization vectors: rendering, undefined names, data-not-template, sandbox limits."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsbridge.domain.personalize import Personalizer, ProfileRenderer
from smsbridge.errors import InvalidInput

PROFILE = {"firstName": "ana", "phone": "+33612345678", "vip": True, "points": 1200, "none": None}


@pytest.fixture(scope="module")
def personalizer() -> Personalizer:
    return Personalizer()


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ("Plain text, no tags", {}, "Plain text, no tags"),
        ("Hi {{ profile.firstName }}", {}, "Hi ana"),
        ("{{ profile.firstName | upper }}", {}, "ANA"),
        ("{{ profile.firstName | title }}", {}, "Ana"),
        ("{{ 'ABC' | lower }}", {}, "abc"),
        ("{{ profile.nickname | default('friend') }}", {}, "friend"),
        ("{{ 'a long sentence here' | truncate(9, True, '…') }}", {}, "a long s…"),
        ("{% if profile.vip %}VIP{% else %}std{% endif %}", {}, "VIP"),
        (
            "{% if profile.points > 1000 %}gold{% elif profile.points %}silver{% endif %}",
            {},
            "gold",
        ),
        ("{{ code }}/{{ variables.code }}", {"code": "X1"}, "X1/X1"),
        ("[{{ profile.unknown }}][{{ nothing.at.all }}]", {}, "[][]"),
        ("[{{ profile.none }}]", {}, "[]"),
        ("{{ profile.phone }}", {}, "+33612345678"),
        ("{{ 3 * 4 }} {{ 2 ** 10 }}", {}, "12 1024"),
        ("line1\nline2\n", {}, "line1\nline2\n"),
    ],
)
def test_renders(
    personalizer: Personalizer, source: str, variables: dict[str, Any], expected: str
) -> None:
    assert personalizer.render(source, profile=PROFILE, variables=variables).text == expected


def test_reports_undefined_names_in_order(personalizer: Personalizer) -> None:
    rendered = personalizer.render(
        "{{ profile.a }}{{ b }}{{ profile.a }}{% if c %}{% endif %}", profile={}
    )
    assert rendered.undefined == ("profile.a", "b", "c")


def test_values_are_never_evaluated_as_templates(personalizer: Personalizer) -> None:
    evil = {"firstName": "{{ 7*7 }} {% if 1 %}x{% endif %} {{ ''.__class__ }}"}
    assert personalizer.render("{{ profile.firstName }}", profile=evil).text == evil["firstName"]


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "not allowed"),
        ("{{ profile.__class__ }}", "not allowed"),
        ("{{ lipsum.__globals__ }}", "not allowed"),
        ("{{ cycler.__init__.__globals__.os }}", "not allowed"),
        ("{{ 'x' * 30000 }}", "the limit is 10,000"),
        ("{{ [1] * 50000 }}", "the limit is 10,000"),
        ("{{ 9 ** 999999 }}", "bits; the limit is 4,096"),
        ("{% for i in range(9) %}{% endfor %}", "'for' blocks are not supported"),
        ("{% set x = 1 %}", "not supported"),
        ("{% macro m() %}{% endmacro %}", "not supported"),
        ("{% include 'x' %}", "not supported"),
        ("{% if 1 %}{% for i in [1] %}{% endfor %}{% endif %}", "not supported"),
        ("{{ 1 / 0 }}", "cannot be rendered"),
    ],
)
def test_refuses(personalizer: Personalizer, source: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        personalizer.render(source, profile=PROFILE)
    assert caught.value.errors[0].field == "body"
    assert fragment in caught.value.errors[0].message


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("Hi {{ profile.firstName", "line 1, column 4"),
        ("a\nb {{ x }} {{ y | }}", "line 2, column 11"),
        ("{% if x %}open", "line 1, column 1"),
        ("{{ x }}\n\n{% endif %}", "line 3, column 1"),
    ],
)
def test_syntax_errors_name_line_and_column(
    personalizer: Personalizer, source: str, where: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        personalizer.check(source, field="body")
    assert where in caught.value.errors[0].message


def test_compiled_templates_are_cached(personalizer: Personalizer) -> None:
    source = "cache {{ profile.firstName }}"
    personalizer.render(source, profile=PROFILE)
    before = personalizer._cached.cache_info().hits
    personalizer.render(source, profile={"firstName": "bo"})
    assert personalizer._cached.cache_info().hits == before + 1


values = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)


@given(
    profile=st.dictionaries(st.sampled_from(["a", "b", "firstName"]), values, max_size=3),
    variables=st.dictionaries(st.sampled_from(["code", "b"]), values, max_size=2),
)
def test_substitution_fast_path_renders_like_jinja(
    profile: dict[str, Any], variables: dict[str, Any]
) -> None:
    """Plain substitutions skip Jinja; the output and undefined names must not change."""
    source = "x{{ profile.a }}-{{ profile.firstName }}-{{ code }}-{{ variables.b }}{{ b }}y"
    fast = Personalizer().render(source, profile=profile, variables=variables)
    # The same template made ineligible for the fast path by a no-op filter.
    slow = Personalizer().render(
        source.replace("}}", "| default(none, false) }}"), profile=profile, variables=variables
    )
    assert fast.text == slow.text
    assert set(fast.undefined) <= set(slow.undefined) | {
        "profile.a",
        "profile.firstName",
        "code",
        "b",
    }


@given(
    attributes=st.dictionaries(
        st.sampled_from(["firstName", "phone", "city"]),
        values | st.lists(st.integers()),
        max_size=3,
    ),
    timezone=st.none() | st.just("Europe/Paris"),
)
def test_profile_renderer_renders_like_render(
    attributes: dict[str, Any], timezone: str | None
) -> None:
    """The fan-out's memoized renderer gives, profile after profile, what render() gives —
    including for values that compare equal but render differently (True and 1)."""
    personalizer = Personalizer()
    sources = [
        "Hi {{ profile.firstName }} ({{ profile.city }}) {{ code }} {{ profile.phone }}",
        "{{ profile.firstName | upper }} {{ profile.timezone }}",  # Jinja, not memoized
        "Static text",
    ]
    variables = {"code": "X1"}
    profiles = [attributes, {**attributes, "firstName": True}, {**attributes, "firstName": 1}]
    for source in sources:
        renderer = ProfileRenderer(personalizer, source, variables, memo_size=2)
        for n, profile in enumerate(profiles * 2):
            view = {
                **profile,
                "phone": "+33612345678",
                "external_id": f"p{n}",
                "timezone": timezone,
            }
            expected = personalizer.render(source, profile=view, variables=variables).text
            got = renderer.render(profile, "+33612345678", f"p{n}", timezone)
            assert got == expected, (source, profile)


def test_profile_renderer_renders_each_distinct_value_once() -> None:
    personalizer = Personalizer()
    renderer = ProfileRenderer(personalizer, "Hi {{ profile.firstName }}!", {})
    texts = [renderer.render({"firstName": name}, "+33612345678", "p", None) for name in "abab"]
    assert texts == ["Hi a!", "Hi b!", "Hi a!", "Hi b!"]
    assert texts[0] is texts[2]  # the same text object: rendered once, remembered
    # A template that does not compile fails each render (each recipient is excluded), not
    # the construction (the campaign runner would stop).
    broken = ProfileRenderer(personalizer, "Hi {{ profile.firstName ", {})
    raised = []
    for _ in range(2):
        with pytest.raises(InvalidInput) as error:
            broken.render({"firstName": "a"}, "+33612345678", "p", None)
        assert error.value.errors[0].field == "body"
        assert "syntax error" in error.value.message
        raised.append(error.value)
    assert raised[0] is not raised[1]
