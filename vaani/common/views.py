"""Base classes every API view inherits, so no view can forget scoping or limits.

``ClinicScopedViewSet`` always filters its queryset to the caller's clinic (the
NetBox ``restrict()`` idea): app viewsets only declare the model's queryset,
serializers and roles. Another clinic's object is simply not found (404).
"""

import logging

from django.core.exceptions import FieldDoesNotExist
from django.http import Http404
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework.exceptions import APIException
from rest_framework.metadata import SimpleMetadata
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from audit.services import record_access
from vaani.common.exceptions import NotFoundError
from vaani.common.permissions import HasClinicRole
from vaani.common.throttling import add_rate_limit_headers, open_window

logger = logging.getLogger(__name__)
# What an unreachable Redis cache raises (django-redis wraps most of it).
CACHE_UNAVAILABLE = (ConnectionInterrupted, RedisError, OSError)


class ApiMetadata(SimpleMetadata):
    """OPTIONS names the view and its formats. The request bodies are described in
    /openapi.json; DRF's field introspection needs a ``serializer_class`` (our viewsets
    have none) and answered OPTIONS with a 500."""

    def determine_actions(self, request, view):
        return {}


class ApiViewMixin:
    rate_limit_category: str | None = "api"
    metadata_class = ApiMetadata

    def initial(self, request, *args, **kwargs):
        # Limits are counted before permissions, so refused requests count too and
        # every response, 401/403 included, carries the X-RateLimit-* headers.
        self.format_kwarg = self.get_format_suffix(**kwargs)
        neg = self.perform_content_negotiation(request)
        request.accepted_renderer, request.accepted_media_type = neg
        version, scheme = self.determine_version(request, *args, **kwargs)
        request.version, request.versioning_scheme = version, scheme
        auth_error = None
        open_window(request, self)  # a signed-in user is counted with their lookup
        try:
            self.perform_authentication(request)
        except APIException as exc:  # counted against the caller's address, then raised
            auth_error = exc
        try:
            self.check_throttles(request)
        except CACHE_UNAVAILABLE:  # the counters' cache (Redis) is unreachable: serve, unlimited
            logger.warning("Rate limit not counted: cache unavailable", exc_info=True)
        if auth_error is not None:
            raise auth_error
        self.check_permissions(request)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        add_rate_limit_headers(request, response)
        return response


class ApiView(ApiViewMixin, APIView):
    """A plain API endpoint (auth, health, admin metrics)."""


class ClinicScopedViewSet(ApiViewMixin, GenericViewSet):
    """A resource owned by a clinic: scoped queryset, roles, audit, 404s by name.

    Subclasses set ``queryset``, ``resource_name`` (``"patient"``), ``list_key``
    (``"patients"``) and, for patient data, ``audit_resource``.
    """

    permission_classes = [HasClinicRole]
    resource_name = "resource"
    list_key = "results"
    audit_resource: str | None = None
    lookup_value_regex = r"[0-9]+"

    @property
    def clinic(self):
        return self.request.user.clinic

    def get_queryset(self):
        return super().get_queryset().filter(clinic_id=self.request.user.clinic_id)

    def get_object(self):
        try:
            obj = super().get_object()
        except Http404:
            raise NotFoundError(self.resource_name, _as_int(self.kwargs.get("pk"))) from None
        # The object is the caller's clinic's (scoped above), and that clinic is already
        # loaded with the user: hand it over instead of joining or querying it again.
        clinic_field = _clinic_field(type(obj))
        if clinic_field is not None and not clinic_field.is_cached(obj):
            clinic_field.set_cached_value(obj, self.clinic)
        return obj

    def paginate_rows(self, rows, *, counted):
        """A page of ``rows`` (a ``values()`` queryset), its total counted on ``counted``:
        the same filter without the joins the row's columns need (see PagePagination)."""
        return self.paginator.paginate_queryset(
            rows, self.request, view=self, count_queryset=counted
        )

    def audit(self, action: str, object_ids) -> None:
        if self.audit_resource:
            record_access(self.request, self.audit_resource, action, object_ids)


def _clinic_field(model):
    try:
        field = model._meta.get_field("clinic")
    except FieldDoesNotExist:
        return None
    return field if field.many_to_one else None


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value
