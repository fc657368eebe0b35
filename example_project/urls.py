from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from django_mcp_scopes.mcp import mcp_path
from example_project.journal.mcp import server as journal_server
from example_project.oauth.interim import ProtectedResourceMetadataView, ResourceBoundOAuth2Authentication

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("example_project.oauth.urls")),
    path(".well-known/oauth-protected-resource/mcp", ProtectedResourceMetadataView.as_view()),
    *mcp_path("mcp", journal_server, authentication_classes=[ResourceBoundOAuth2Authentication]),
]
