"""Serializer fields shared by the apps."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.contacts import normalise_email
from config.errors import InvalidInput

EMAIL_HELP = (
    "An email address: ASCII before the @, the domain may be internationalised (`user@bücher.example`). "
    "Stored and returned in its ASCII form, lower-cased (`user@xn--bcher-kva.example`)."
)


@extend_schema_field(OpenApiTypes.EMAIL)
class EmailAddressField(serializers.CharField):
    """An email address as config.contacts.normalise_email writes it (None for blank, where allowed).
    A bad address is a validation error on this field, with the library's reason."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        kwargs.setdefault("help_text", EMAIL_HELP)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        try:
            return normalise_email(text, field=self.field_name or "email")
        except InvalidInput as exc:
            raise serializers.ValidationError(f"Not a valid email address: {exc.details['reason']}") from None


@extend_schema_field(OpenApiTypes.EMAIL)
class EmailTextField(serializers.CharField):
    """A CharField documented as an email address: for inputs whose service normalises the address
    itself (order placement: config.contacts.normalise_email, once, in the service)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        kwargs.setdefault("help_text", EMAIL_HELP)
        super().__init__(**kwargs)
