"""``page``/``limit`` pagination with the ``pagination`` object of the API reference."""

import math

from rest_framework.pagination import BasePagination

from vaani.common.exceptions import BookingValidationError
from vaani.common.responses import ApiResponse

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _positive_int(request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BookingValidationError(details={name: f"{name} must be a whole number"}) from None
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"between 1 and {maximum}" if maximum else "at least 1"
        raise BookingValidationError(details={name: f"{name} must be {bound}"})
    return value


class PagePagination(BasePagination):
    """Lists answer ``{"<resource key>": [...], "pagination": {...}}``.

    The key comes from the view's ``list_key`` (``appointments``, ``patients``...).
    A page past the end is an empty list with the true totals, not an error, so a
    client that pages while rows are deleted does not break.
    """

    def paginate_queryset(self, queryset, request, view=None, *, count_queryset=None):
        """``count_queryset``: the same rows to count, without what only the page needs.

        A ``values()`` page that shows related columns (``patient__name``) carries their
        INNER JOINs into ``count()``, and PostgreSQL then joins every matching row to
        count it (4-6 ms for a doctor's 1,400 appointments, against 0.3 ms without).
        """
        self.page = _positive_int(request, "page", 1)
        self.limit = _positive_int(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        self.total = (queryset if count_queryset is None else count_queryset).count()
        self.list_key = getattr(view, "list_key", "results")
        offset = (self.page - 1) * self.limit
        if offset >= self.total:
            return []
        return list(queryset[offset : offset + self.limit])

    def pagination_data(self) -> dict:
        return {
            "page": self.page,
            "limit": self.limit,
            "total": self.total,
            "total_pages": math.ceil(self.total / self.limit) if self.total else 0,
        }

    def get_paginated_response(self, data):
        return ApiResponse({self.list_key: data, "pagination": self.pagination_data()})

    def get_paginated_response_schema(self, schema):
        key = getattr(self, "list_key", "results")
        return {
            "type": "object",
            "required": [key, "pagination"],
            "properties": {
                key: schema,
                "pagination": {
                    "type": "object",
                    "required": ["page", "limit", "total", "total_pages"],
                    "properties": {
                        "page": {"type": "integer", "minimum": 1},
                        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        "total": {"type": "integer", "minimum": 0},
                        "total_pages": {"type": "integer", "minimum": 0},
                    },
                },
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "page",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "default": 1},
                "description": "Page number.",
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 20},
                "description": "Items per page.",
            },
        ]
