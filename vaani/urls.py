from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularJSONAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from vaani.common.exceptions import json_error_view

urlpatterns = [
    path("api/v1/", include("vaani.api_urls")),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="swagger-ui"),
    path("redoc", SpectacularRedocView.as_view(url_name="openapi-schema"), name="redoc"),
    path("admin/", admin.site.urls),
]

admin.site.site_header = "Vaani operations"
admin.site.site_title = "Vaani"

_api_not_found = json_error_view(404, "NOT_FOUND", "Resource not found")
_api_server_error = json_error_view(500, "INTERNAL_SERVER_ERROR", "An unexpected error occurred")


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return _api_not_found(request, exception)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return _api_server_error(request)
    from django.views.defaults import server_error

    return server_error(request)
