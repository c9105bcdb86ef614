"""``/api/v1/call-logs`` (§7)."""

from drf_spectacular.utils import extend_schema

from audit.models import AuditAction
from vaani.common.responses import ApiResponse
from vaani.common.views import ClinicScopedViewSet
from voice import selectors
from voice.api import serializers as s
from voice.models import CallLog


class CallLogViewSet(ClinicScopedViewSet):
    queryset = CallLog.objects.select_related("patient")
    resource_name = "call_log"
    list_key = "call_logs"
    audit_resource = "call_log"

    @extend_schema(
        parameters=[s.CallLogListQuerySerializer], responses=s.CallLogSerializer(many=True)
    )
    def list(self, request):
        query = s.CallLogListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = self.paginate_queryset(
            selectors.call_log_list(clinic=self.clinic, **query.validated_data)
        )
        self.audit(AuditAction.LIST, [c.pk for c in page])
        return self.get_paginated_response(s.CallLogSerializer(page, many=True).data)

    @extend_schema(responses=s.CallLogDetailSerializer)
    def retrieve(self, request, pk=None):
        call = self.get_object()
        self.audit(AuditAction.READ, call.pk)
        return ApiResponse(s.CallLogDetailSerializer(call).data)
