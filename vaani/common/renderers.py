"""The response envelope of the API reference (§1.3), and the JSON request parser."""

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

from vaani.common.timeutils import now_iso


class EnvelopeJSONRenderer(JSONRenderer):
    """Wraps successful bodies as ``{"success", "data", "message", "timestamp"}``.

    Error bodies are already shaped by the exception handler. A view that answers
    a documented non-enveloped body (the health check) sets ``response.envelope``
    to False; a view that has a message for the user sets ``response.message``.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        wrap = response is not None and getattr(response, "envelope", True)
        if wrap and response.status_code < 400:
            body = {"success": True}
            if data is not None:
                body["data"] = data
            message = getattr(response, "message", None)
            if message:
                body["message"] = message
            body["timestamp"] = now_iso()
            data = body
        return super().render(data, accepted_media_type, renderer_context)


class RequestJSONParser(JSONParser):
    """DRF's parser, refusing (400) two kinds of JSON that DRF lets through as a 500:

    nesting deeper than Python's recursion limit (``json`` raises RecursionError, not
    ValueError), and lone surrogates (``"\\ud800"``: valid JSON, not valid Unicode),
    which crash the renderer as soon as an error message echoes them back.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
            json.dumps(data, ensure_ascii=False).encode()
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
        except UnicodeEncodeError:
            raise ParseError("JSON parse error - a string is not valid Unicode") from None
        return data
