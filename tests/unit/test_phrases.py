"""What the services say (``smsbridge.errors.phrase``): English where it is used as text (the
API, logs), and in the visitor's language in the admin (``Translator.said``)."""

from __future__ import annotations

import orjson
import pytest

from smsbridge.domain.payload import load_payload
from smsbridge.domain.phones import normalize_phone
from smsbridge.errors import Conflict, FieldError, InvalidInput, Phrase, phrase
from smsbridge.web.i18n import translator_for


def test_a_phrase_is_its_english_text() -> None:
    said = phrase("is %(length)s characters long; the limit is %(most)s", length=12, most=10)
    assert said == "is 12 characters long; the limit is 10"
    assert (
        orjson.dumps({"message": said}) == b'{"message":"is 12 characters long; the limit is 10"}'
    )
    assert type(said[:2]) is str and type(said + "!") is str  # new text is plain English
    assert phrase("100% sure") == "100% sure"  # no values: the template is the text
    assert FieldError("to", said) == FieldError("to", "is 12 characters long; the limit is 10")


def test_refusals_keep_their_phrase() -> None:
    refused = Conflict(phrase("the campaign is already completed"))
    assert isinstance(refused.message, Phrase)
    assert str(refused) == "the campaign is already completed"
    with pytest.raises(InvalidInput) as caught:
        normalize_phone("nope", "to")
    assert isinstance(caught.value.errors[0].message, Phrase)
    assert caught.value.message == "to: 'nope' is not a phone number (use the +<country code> form)"


def test_the_admin_says_it_in_the_visitors_language() -> None:
    said = phrase("is %(length)s characters long; the limit is %(most)s", length=12, most=10)
    french, english = translator_for("fr"), translator_for("en")
    assert french.said(said) == "fait 12 caractères\u202f; la limite est 10"
    assert english.said(said) == said
    assert french.said(phrase("must not be empty")) == "ne doit pas être vide"
    assert french.said("plain text") == "plain text"  # not a phrase: as it is
    assert french.said(None) is None
    unknown = phrase("not in the catalog: %(x)s", x=1)  # not extracted: shown in English
    assert french.said(unknown) == "not in the catalog: 1"


def test_a_phrase_quoted_by_another_is_translated_with_it() -> None:
    """A JSON error quoted by the hint about placeholders: both parts in French."""
    with pytest.raises(InvalidInput) as caught:
        load_payload('{"to": {{toNumber}}}')
    said = caught.value.errors[0].message
    assert said.startswith("not valid JSON at line 1, column 9: Expecting property name")
    french = translator_for("fr").said(said)
    assert french.startswith("JSON non valide à la ligne 1, colonne 9\u00a0: Expecting property")
    assert "les variables doivent être entre guillemets" in french
