from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from django_mcp_scopes.authentication import MCPTokenAuthentication
from django_mcp_scopes.mcp import ANY_VALID_TOKEN, mcp_path
from example_project.journal.api import EntryListView
from example_project.journal.mcp import server as journal_server

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The authorization server: RFC 8414 metadata at the root, the OAuth endpoints under /o/.
    path("", include("django_mcp_scopes.oauth.urls")),
    # RFC 9728 protected-resource metadata for every protected endpoint.
    path("", include("django_mcp_scopes.urls")),
    # The journal's MCP endpoint (Streamable HTTP, WSGI and ASGI).
    *mcp_path(
        "mcp",
        journal_server,
        authentication_classes=[MCPTokenAuthentication],
        # Least privilege: every method default is declared. Listings are open to any valid token
        # and filtered to what it may use (or could obtain by step-up).
        method_scopes={
            "tools/list": ANY_VALID_TOKEN,
            "prompts/list": ANY_VALID_TOKEN,
            "resources/list": ANY_VALID_TOKEN,
            "resources/templates/list": ANY_VALID_TOKEN,
        },
    ),
    # The same journal as a plain REST endpoint, protected by the same scopes (DRF permissions).
    path("api/entries", EntryListView.as_view(), name="api-entries"),
]
