from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .admin import ThrottledAdminAuthenticationForm
from .health import healthz, readyz

api_v1 = [
    path("", include("stores.api.urls")),
    path("", include("inventory.api.urls")),
    path("", include("orders.api.urls")),
    path("", include("returns.api.urls")),
    path("", include("notifications.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]

# Django's own 404 and 400 (no URL matched, a body over the size limit): JSON under /api/.
handler404 = "config.errors.page_not_found"
handler400 = "config.errors.bad_request"

admin.site.site_header = "Omnichannel OMS"
admin.site.site_title = "OMS admin"
admin.site.index_title = "Stores, stock, orders and returns"
admin.site.login_form = ThrottledAdminAuthenticationForm  # failed logins counted per username + address
