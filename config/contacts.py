"""How a contact (email address, phone number) is written down, for every app.

One shopper is one contact everywhere: a customer (orders), a back-in-stock subscription and the
number an SMS goes to all hold the form these functions return, so the same person typed two ways
is one contact, and the SMS provider always gets an E.164 number.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import email_validator
import phonenumbers
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.errors import InvalidInput

# What people put between digits: spaces, hyphens, brackets, dots.
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_PHONE_CHARACTERS = re.compile(r"\+?[0-9]+")


def phone_region() -> str:
    """The region a phone number without a country code is read in: settings.OMS["PHONE_REGION"]
    (ISO 3166 two letters, e.g. "JP"; environment variable OMS_PHONE_REGION)."""
    region = str(settings.OMS["PHONE_REGION"]).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ImproperlyConfigured(f'OMS["PHONE_REGION"] = {region!r} is not a region phonenumbers knows.')
    return region


def normalise_phone(value: str | None, *, field: str = "phone") -> str | None:
    """The phone number in E.164 ("+819012345678"); None for None or blank.

    Accepted: "+81 90-1234-5678", "0081 (90) 1234.5678" ("00" read as "+"), and a national number
    such as "090 1234 5678", read in `phone_region()`. Full-width digits, "+" and "-" (a Japanese
    input method types them) count as their ASCII forms (Unicode NFKC). Letters, extensions and
    anything else raise InvalidInput with details {"field": field}.

    How strict: a number that names its country ("+", "00") must have a possible length for that
    country (phonenumbers' allocation tables lag behind new ranges, and an order must not be refused
    for that). A national number must be a valid number of the region: digits meant for another
    country but written without their "+" are refused rather than stored as a wrong number.
    """
    if value is None:
        return None
    text = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", str(value)))
    if not text:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    invalid = InvalidInput(f"{field} is not a valid phone number.", details={"field": field})
    if not _PHONE_CHARACTERS.fullmatch(text):
        raise invalid
    try:
        number = phonenumbers.parse(text, phone_region())
    except phonenumbers.NumberParseException:
        raise invalid from None
    if text.startswith("+"):
        acceptable = (
            phonenumbers.is_possible_number_with_reason(number) == phonenumbers.ValidationResult.IS_POSSIBLE
        )
    else:
        acceptable = phonenumbers.is_valid_number(number)
    if not acceptable:
        raise invalid
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(e164: str | None) -> str:
    """A stored (E.164) number as people in `phone_region()` write it ("090-1234-5678"); numbers of
    other countries in international form ("+1 415-555-0100"). Blank for None or blank."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if phonenumbers.region_code_for_number(number) == phone_region()
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)


def normalise_email(value: str | None, *, field: str = "email") -> str | None:
    """The address in its ASCII form, lower-cased; None for None or blank.

    Checked by the `email-validator` library (syntax only: no DNS or deliverability lookup):
    an ASCII local part of at most 64 characters (no quoting, no SMTPUTF8), a domain with a dot that may be
    internationalised, at most 254 characters in the ASCII form. An internationalised domain is
    kept in its ASCII (IDNA, "punycode") form: "Aiko@Bücher.example" -> "aiko@xn--bcher-kva.example".
    So the same address typed either way is one contact, every stored address is what the
    schema's `format: email` promises (RFC 5321, ASCII), and mail goes out without SMTPUTF8
    (docs/architecture.md, "Contacts"). Surrounding whitespace is trimmed; anything else (spaces
    inside, a trailing dot, emoji, a special-use domain such as `.test` or `localhost`) raises
    InvalidInput with details {"field": field, "reason": ...}.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        checked = email_validator.validate_email(
            text,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            strict=True,  # also RFC 5321's 64-character local part
            check_deliverability=False,
        )
    except email_validator.EmailNotValidError as exc:
        raise InvalidInput(
            f"{field} is not a valid email address.", details={"field": field, "reason": str(exc)}
        ) from None
    email = checked.ascii_email.lower()
    if len(email) > 254:  # the ASCII form can be longer than the address as typed
        raise InvalidInput(
            f"{field} is not a valid email address.",
            details={"field": field, "reason": "The address is too long (more than 254 characters)."},
        )
    return email


class QueryKind:
    EMPTY = "empty"  # nothing typed
    EMAIL = "email"  # has an "@": an address (`value` normalised; None when it is not a valid one)
    PHONE = "phone"  # a valid phone number (`value` in E.164)
    OTHER = "other"  # anything else: an order number, a code, a name (`value` is the text)


@dataclass(frozen=True)
class ContactQuery:
    """What was typed into a search box, read once: `kind` (QueryKind) and `value`, the form to
    compare with what is stored."""

    kind: str
    value: str | None
    text: str  # as typed, whitespace collapsed

    @property
    def is_contact(self) -> bool:
        return self.kind in (QueryKind.EMAIL, QueryKind.PHONE)


def contact_query(text: str | None) -> ContactQuery:
    """Read a search text as one kind of thing where it can only be that: an address when it has an
    "@" (normalise_email; an invalid one matches nothing), a phone number when normalise_phone takes
    it ("090-1234-5678", "+81 90 1234 5678", full-width digits), otherwise an identifier or a name.

    One rule for every search by what a customer says or shows (the Pickups page, the returns desk),
    so that each is one exact comparison on an indexed column rather than a scan of every name."""
    text = " ".join((text or "").split())
    if not text:
        return ContactQuery(QueryKind.EMPTY, None, "")
    if "@" in text:
        try:
            return ContactQuery(QueryKind.EMAIL, normalise_email(text), text)
        except InvalidInput:
            return ContactQuery(QueryKind.EMAIL, None, text)
    try:
        phone = normalise_phone(text)
    except InvalidInput:
        phone = None
    if phone:
        return ContactQuery(QueryKind.PHONE, phone, text)
    return ContactQuery(QueryKind.OTHER, text, text)
