"""TEMPORARY (replaced by the phonenumbers-based module from the notifications branch)."""

from __future__ import annotations

import re

from django.conf import settings

from config.errors import InvalidInput

_PHONE_JUNK = re.compile(r"[\s\-().]")


def normalise_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = str(email).strip().lower()
    if not email:
        return None
    if len(email) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise InvalidInput(
            "customer.email is not a valid email address.", details={"field": "customer.email"}
        )
    return email


def normalise_phone(phone: str | None, *, field: str = "phone") -> str | None:
    if phone is None:
        return None
    raw = _PHONE_JUNK.sub("", str(phone).strip())
    if not raw:
        return None
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if raw.startswith("+"):
        digits = raw[1:]
    elif raw.startswith("0"):
        digits = str(settings.OMS.get("DEFAULT_PHONE_COUNTRY_CODE", "81")) + raw[1:]
    else:
        digits = raw
    if not digits.isdigit() or not (8 <= len(digits) <= 15) or digits.startswith("0"):
        raise InvalidInput(f"{field} is not a valid phone number.", details={"field": field})
    return "+" + digits
