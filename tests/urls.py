from django.contrib import admin
from django.urls import include, path

from tests.views import registry_state

urlpatterns = [
    path("admin/", admin.site.urls),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("_registry/", registry_state),
]
