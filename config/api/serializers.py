"""Serializer plumbing shared by the apps."""

from __future__ import annotations

from rest_framework import serializers


class InputSerializer(serializers.Serializer):
    """An input serializer whose field objects are built once per class, not once per request.

    DRF deep-copies every declared field (and every nested serializer's fields) for each new
    serializer instance; on a hot write endpoint that copy costs more than the validation itself.
    Input serializers only validate: their fields hold no per-request state (errors and validated
    data live on the serializer instance), so one set of field objects, bound to an empty
    instance, serves every request. Do not use it for serializers whose fields read
    `self.context` or `self.parent` (output serializers, partial updates).
    """

    @property
    def fields(self):
        cls = type(self)
        fields = cls.__dict__.get("_shared_fields")
        if fields is None:
            # Built and bound once, on an instance that holds no request data (binding them to
            # this instance would keep its request body alive for the life of the process).
            fields = super(InputSerializer, cls()).fields
            cls._shared_fields = fields
        return fields
