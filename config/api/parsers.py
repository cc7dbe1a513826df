"""The API's one request parser: DRF's JSON parser, refusing what would break later steps."""

from __future__ import annotations

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class InvalidJson(ParseError):
    default_code = "invalid_json"


class StrictJSONParser(JSONParser):
    """JSON bodies, with two refusals (400 `invalid_json`) Python's json module lets through:

    - nesting too deep to decode (json raises RecursionError at about 1,000 levels);
    - a lone UTF-16 surrogate (`"\\ud800"`): it decodes into a str that cannot be encoded as
      UTF-8, so hashing the body for the Idempotency-Key, or storing it, would fail.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise InvalidJson("JSON parse error - nested too deeply.") from None
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidJson(
                "JSON parse error - a string holds an unpaired surrogate (\\ud800-\\udfff)."
            ) from None
        return data
