"""The API's one request parser: DRF's JSON parser, refusing what would break later steps."""

from __future__ import annotations

import io
import json
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# A \uD800-\uDFFF escape: the only way a JSON text can carry a UTF-16 surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class InvalidJson(ParseError):
    default_code = "invalid_json"


class StrictJSONParser(JSONParser):
    """JSON bodies, with two refusals (400 `invalid_json`) Python's json module lets through:

    - nesting too deep to decode (json raises RecursionError at about 1,000 levels);
    - a lone UTF-16 surrogate (`"\\ud800"`): it decodes into a str that cannot be encoded as
      UTF-8, so hashing the body for the Idempotency-Key, or storing it, would fail. Only a body
      with a surrogate escape is checked (a regex over the bytes; most bodies have none).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read()
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise InvalidJson("JSON parse error - nested too deeply.") from None
        if _SURROGATE_ESCAPE.search(raw):
            try:
                json.dumps(data, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidJson(
                    "JSON parse error - a string holds an unpaired surrogate (\\ud800-\\udfff)."
                ) from None
        return data
