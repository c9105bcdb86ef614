"""The response envelope of the API reference (§1.3)."""

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
