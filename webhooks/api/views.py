"""``/api/v1/admin/webhooks`` (§12.1): owners and admins manage their clinic's receivers."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action

from vaani.common.permissions import IsClinicManager
from vaani.common.responses import ApiResponse
from vaani.common.views import ClinicScopedViewSet
from webhooks import selectors, services
from webhooks.api import serializers as s
from webhooks.models import WebhookEndpoint

_SCOPE_NOTE = "Owners and admins only. Another clinic's webhook answers 404 NOT_FOUND."


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema(tags=["admin"])
class WebhookViewSet(ClinicScopedViewSet):
    queryset = WebhookEndpoint.objects.all()
    resource_name = "webhook"
    permission_classes = [IsClinicManager]
    rate_limit_category = "admin"

    @property
    def list_key(self):
        return "deliveries" if getattr(self, "action", None) == "deliveries" else "webhooks"

    @extend_schema(responses=s.WebhookSerializer(many=True), description=_SCOPE_NOTE)
    def list(self, request):
        page = self.paginate_queryset(selectors.endpoint_list(clinic=self.clinic))
        return self.get_paginated_response(s.WebhookSerializer(page, many=True).data)

    @extend_schema(responses=s.WebhookSerializer, description=_SCOPE_NOTE)
    def retrieve(self, request, pk=None):
        return ApiResponse(s.WebhookSerializer(self.get_object()).data)

    @extend_schema(
        request=s.WebhookCreateSerializer,
        responses={201: s.WebhookSerializer},
        description=(
            "Subscribes a URL to events. The URL must be http(s) on a public address "
            "(checked now and again on every delivery). 409 CONFLICT: the URL is already "
            "a webhook of this clinic."
        ),
    )
    def create(self, request):
        data = _valid(s.WebhookCreateSerializer, request.data)
        endpoint = services.create_endpoint(clinic=self.clinic, created_by=request.user, **data)
        return ApiResponse(
            s.WebhookSerializer(endpoint).data, status=201, message="Webhook created"
        )

    @extend_schema(request=s.WebhookUpdateSerializer, responses=s.WebhookSerializer)
    def update(self, request, pk=None):
        endpoint = self.get_object()
        changes = _valid(s.WebhookUpdateSerializer, request.data)
        endpoint = services.update_endpoint(endpoint=endpoint, changes=dict(changes))
        return ApiResponse(s.WebhookSerializer(endpoint).data, message="Webhook updated")

    @extend_schema(request=s.WebhookUpdateSerializer, responses=s.WebhookSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk)

    @extend_schema(responses={200: s.WebhookDeletedSerializer})
    def destroy(self, request, pk=None):
        endpoint = self.get_object()
        endpoint_id = endpoint.pk
        services.delete_endpoint(endpoint=endpoint)
        return ApiResponse({"id": endpoint_id, "deleted": True}, message="Webhook deleted")

    @extend_schema(
        request=None,
        responses={202: s.WebhookDeliverySerializer},
        description="Sends a signed `ping` event to this webhook once (no retries).",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        delivery = services.send_test_event(endpoint=self.get_object())
        return ApiResponse(
            s.WebhookDeliverySerializer(delivery).data, status=202, message="Test event sent"
        )

    @extend_schema(
        parameters=[s.DeliveryListQuerySerializer],
        responses=s.WebhookDeliverySerializer(many=True),
        description="The webhook's deliveries, newest first, each with its tries.",
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        endpoint = self.get_object()
        query = _valid(s.DeliveryListQuerySerializer, request.query_params)
        page = self.paginate_queryset(selectors.delivery_list(endpoint=endpoint, **query))
        return self.get_paginated_response(s.WebhookDeliverySerializer(page, many=True).data)
