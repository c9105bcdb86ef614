"""Signatures on every delivery: the API reference's, and Standard Webhooks'.

``X-VAANI-Signature: sha256=<hex>`` (§12.3) is the HMAC-SHA256 of the exact body bytes
keyed with the endpoint secret's UTF-8 bytes, so the reference's
``verify_webhook_signature(payload, signature, secret)`` accepts it as written.

The Standard Webhooks headers (https://www.standardwebhooks.com) let receivers use its
libraries: ``webhook-id`` (the event id, the same on every retry), ``webhook-timestamp``
(Unix seconds of this attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``. The key:

- a secret written ``whsec_<base64>`` (the standard's form) is keyed with the decoded bytes,
  so ``standardwebhooks.Webhook(secret)`` verifies as is;
- any other secret (``"your-webhook-secret"`` of §12.1) is keyed with its UTF-8 bytes, so
  ``standardwebhooks.Webhook(secret.encode())`` (bytes are taken raw) verifies, as does
  ``Webhook("whsec_" + base64.b64encode(secret.encode()).decode())`` in every language.
"""

import base64
import binascii
import hashlib
import hmac

SIGNATURE_HEADER = "X-VAANI-Signature"
WHSEC_PREFIX = "whsec_"


def vaani_signature(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def standard_webhooks_key(secret: str) -> bytes:
    if secret.startswith(WHSEC_PREFIX):
        try:
            key = base64.b64decode(secret[len(WHSEC_PREFIX) :] + "==", validate=False)
        except (binascii.Error, ValueError):
            key = b""
        if key:
            return key
    return secret.encode()


def standard_webhooks_signature(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_webhooks_key(secret), signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def signature_headers(*, secret: str, event_id: str, timestamp: int, body: bytes) -> dict:
    return {
        SIGNATURE_HEADER: vaani_signature(secret, body),
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks_signature(secret, event_id, timestamp, body),
    }
