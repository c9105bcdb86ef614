"""Phone numbers: stored and compared in E.164 only."""

import re

import phonenumbers
from django.core.exceptions import ValidationError

E164_MESSAGE = "Phone number must be in E.164 format (+919876543210)"
# "+", then digits with the separators people type. phonenumbers alone would also take
# "ext 22", letters ("+1-800-FLOWERS") and trailing junk, silently storing another number.
_WRITTEN_NUMBER = re.compile(r"\+[\d .()-]+")


def normalize_e164(value: str) -> str:
    """The E.164 form of ``value``, or ValidationError with the documented message."""
    raw = (value or "").strip()
    if not _WRITTEN_NUMBER.fullmatch(raw):
        raise ValidationError(E164_MESSAGE, code="invalid_phone")
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise ValidationError(E164_MESSAGE, code="invalid_phone") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(E164_MESSAGE, code="invalid_phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def validate_e164(value: str) -> None:
    normalize_e164(value)
