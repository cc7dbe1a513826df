"""config/contacts.py: the one way a phone number and an email address are written down."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.contacts import normalise_email, normalise_phone
from config.errors import InvalidInput

# ASCII digits, "+" and "-" to their full-width forms (U+FF0B, U+FF0D, U+FF10..U+FF19).
FULL_WIDTH = {ord(c): ord(c) + 0xFEE0 for c in "0123456789+-"}


@pytest.mark.parametrize(
    "written",
    [
        "+819012345678",
        "+81 90-1234-5678",
        "+81 90 1234 5678",
        "090 1234 5678",
        "090-1234-5678",
        "09012345678",
        "(090) 1234.5678",
        "0081 (90) 1234.5678",
        "00819012345678",
        "819012345678",  # the region's own country code without its "+"
        "+81 (0)90-1234-5678",  # the trunk 0 kept after the country code
        "090-1234-5678".translate(FULL_WIDTH),  # as a Japanese input method types it
        "+81 90 1234 5678".translate(FULL_WIDTH),
        " 090 1234 5678 ",
    ],
)
def test_every_way_of_writing_one_number_gives_one_e164(written):
    assert normalise_phone(written) == "+819012345678"


def test_what_orders_accepted_gives_the_same_e164():
    """orders' former normalise_phone (before config/contacts.py) gave these outputs."""
    assert normalise_phone("+81 90-1234-5678") == "+819012345678"
    assert normalise_phone("090 1234 5678") == "+819012345678"
    assert normalise_phone("0081 (90) 1234.5678") == "+819012345678"
    assert normalise_phone("090-1111-2222") == "+819011112222"
    assert normalise_phone("080-1111-2222") == "+818011112222"
    assert normalise_phone("090-5555-0000") == "+819055550000"
    # A number that names its country needs only a possible length: unallocated ranges still pass.
    assert normalise_phone("+819000000001") == "+819000000001"


def test_a_fixed_line_number():
    assert normalise_phone("03-1234-5678") == "+81312345678"
    assert normalise_phone("+81-3-5555-0001") == "+81355550001"


def test_another_regions_number_with_its_country_code():
    assert normalise_phone("+44 20 7183 8750") == "+442071838750"
    assert normalise_phone("+1 (415) 555-2671") == "+14155552671"
    assert normalise_phone("001 415 555 2671") == "+14155552671"


@pytest.mark.parametrize("blank", [None, "", "   ", " - "])
def test_no_number_is_none(blank):
    assert normalise_phone(blank) is None


@pytest.mark.parametrize(
    "bad",
    [
        "12",
        "+81abc",
        "not a phone",
        "090-1234",  # too short
        "+81 222",
        "+",
        "+81 90 1234 5678 ext. 12",
        "090 1234 5678 / 090 1111 2222",
        "14155552671",  # another country's number without its "+": not a Japanese number
        "+999 1234 5678",  # no such country code
    ],
)
def test_invalid_numbers_raise_invalid_input_naming_the_field(bad):
    with pytest.raises(InvalidInput) as exc:
        normalise_phone(bad, field="customer.phone")
    assert exc.value.details == {"field": "customer.phone"}
    assert exc.value.message == "customer.phone is not a valid phone number."


def test_the_field_defaults_to_phone():
    with pytest.raises(InvalidInput) as exc:
        normalise_phone("12")
    assert exc.value.details == {"field": "phone"}


def test_national_numbers_are_read_in_the_region_of_the_setting(settings):
    settings.OMS = {**settings.OMS, "PHONE_REGION": "US"}
    assert normalise_phone("(415) 555-2671") == "+14155552671"
    assert normalise_phone("1 415 555 2671") == "+14155552671"
    assert normalise_phone("+81 90-1234-5678") == "+819012345678"  # a country code wins over the region
    with pytest.raises(InvalidInput):
        normalise_phone("090 1234 5678")  # a Japanese national number means nothing in the US
    settings.OMS = {**settings.OMS, "PHONE_REGION": "gb"}
    assert normalise_phone("020 7183 8750") == "+442071838750"


def test_the_default_region_is_japan(settings):
    from config.settings import base

    assert base.OMS["PHONE_REGION"] == "JP"
    assert settings.OMS["PHONE_REGION"] == "JP"


def test_an_unknown_region_is_a_configuration_error(settings):
    settings.OMS = {**settings.OMS, "PHONE_REGION": "XX"}
    with pytest.raises(ImproperlyConfigured):
        normalise_phone("090 1234 5678")


def test_normalise_email():
    assert normalise_email("  Aiko@Example.COM ") == "aiko@example.com"
    assert normalise_email(None) is None
    assert normalise_email("  ") is None
    for bad in ("nope", "a@b", "a b@example.com", "x" * 250 + "@example.com"):
        with pytest.raises(InvalidInput) as exc:
            normalise_email(bad, field="customer.email")
        assert exc.value.details["field"] == "customer.email"
        assert exc.value.details["reason"]
        assert exc.value.message == "customer.email is not a valid email address."


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        # An internationalised domain is kept in its ASCII (IDNA) form, lower-cased.
        ("user@bücher.example", "user@xn--bcher-kva.example"),
        ("User@BÜCHER.Example", "user@xn--bcher-kva.example"),
        ("user@xn--bcher-kva.example", "user@xn--bcher-kva.example"),
        ("花子@例え.jp".replace("花子", "hanako"), "hanako@xn--r8jz45g.jp"),
        ("first.last+tag@example.co.jp", "first.last+tag@example.co.jp"),
        ("\tAiko@Example.com\n", "aiko@example.com"),
    ],
)
def test_normalise_email_accepts_idn_domains_in_their_ascii_form(typed, stored):
    assert normalise_email(typed) == stored
    assert normalise_email(stored) == stored  # a stored address normalises to itself


@pytest.mark.parametrize(
    "bad",
    [
        "x\N{GRINNING FACE}@example.com",  # emoji in the local part (the schema's format: email refuses it)
        "hanako\N{HIRAGANA LETTER A}@example.jp",  # any non-ASCII local part (would need SMTPUTF8)
        "user@example.com.",  # trailing dot
        "user.@example.com",
        "a b@example.com",  # a space inside
        "user@exa mple.com",
        '"a b"@example.com',  # quoted local part
        "user@[192.0.2.1]",  # domain literal
        "Aiko <aiko@example.com>",  # display name
        "user@localhost",
        "user@example.test",  # special-use domain
        "user@example..com",
        "user@-example.com",
        "user@ex\x00ample.com",
        "x" * 65 + "@example.com",  # local part over 64
        "x@" + ".".join(["a" * 63] * 4) + ".com",  # over 254
        "x@" + ".".join(["\N{LATIN SMALL LETTER U WITH DIAERESIS}" * 40] * 4) + ".jp",  # ASCII form over 254
        "user@",
        "@example.com",
        "a@b@example.com",
    ],
)
def test_normalise_email_refuses(bad):
    with pytest.raises(InvalidInput) as exc:
        normalise_email(bad, field="email")
    assert exc.value.details["field"] == "email"
