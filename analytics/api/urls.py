from django.urls import path

from analytics.api.views import AnalyticsView, DashboardView

urlpatterns = [
    path("admin/dashboard", DashboardView.as_view(), name="admin-dashboard"),
    path("admin/analytics", AnalyticsView.as_view(), name="admin-analytics"),
]
