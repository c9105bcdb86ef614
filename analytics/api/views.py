"""``GET /api/v1/admin/dashboard`` (§8.1) and ``GET /api/v1/admin/analytics`` (§8.3)."""

from drf_spectacular.utils import extend_schema

from analytics import selectors
from analytics.api import serializers as s
from vaani.common.permissions import IsClinicManager
from vaani.common.responses import ApiResponse
from vaani.common.views import ApiView


class _AdminView(ApiView):
    permission_classes = [IsClinicManager]
    rate_limit_category = "admin"


class DashboardView(_AdminView):
    @extend_schema(
        tags=["admin"],
        responses=s.DashboardSerializer,
        description="Today's figures (the clinic's local day). Owners and admins only.",
    )
    def get(self, request):
        data = selectors.dashboard(clinic=request.user.clinic)
        return ApiResponse(s.DashboardSerializer(data).data)


class AnalyticsView(_AdminView):
    @extend_schema(
        tags=["admin"],
        parameters=[s.AnalyticsQuerySerializer],
        responses=s.AnalyticsSerializer,
        description="Figures for local days start_date..end_date. Owners and admins only.",
    )
    def get(self, request):
        clinic = request.user.clinic
        query = s.AnalyticsQuerySerializer(
            data=request.query_params, context={"today": selectors.today(clinic)}
        )
        query.is_valid(raise_exception=True)
        data = selectors.analytics(clinic=clinic, **query.validated_data)
        return ApiResponse(s.AnalyticsSerializer(data).data)
