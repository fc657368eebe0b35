"""RFC 9728 protected-resource metadata for each endpoint marked as a protected resource.

``/.well-known/oauth-protected-resource/<path>`` answers for every path Django resolves to a
marked view (see ``resources.mark_protected_resource``); ``/.well-known/oauth-protected-resource``
answers for ``MCP_SCOPES["ROOT_RESOURCE_PATH"]`` when it is set. The document is built on
django-oauth-toolkit's ``OAuthProtectedResourceMetadataView`` through its ``get_*`` hooks; this
view adds per-endpoint resolution, CORS preflight, caching headers, a strong ETag with 304s, and
JSON 404/405 answers.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.cache import get_conditional_response, patch_vary_headers
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.compat import login_not_required
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views.metadata import OAuthProtectedResourceMetadataView

from django_mcp_scopes import resources
from django_mcp_scopes.conf import mcp_scopes_settings

logger = logging.getLogger("django_mcp_scopes.discovery")

ALLOWED_METHODS = "GET, HEAD, OPTIONS"
CORS_ALLOW_HEADERS = "Content-Type, If-None-Match, MCP-Protocol-Version"
CORS_MAX_AGE = 86400
NOT_FOUND_DESCRIPTION = (
    "No protected resource is published at this address; use the resource_metadata URL from the server's 401 challenge."
)

_reported_missing_servers = False


def _cors(response: HttpResponseBase) -> HttpResponseBase:
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Expose-Headers"] = "ETag"
    return response


def _error(status: int, error: str, description: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _header_name(meta_key: str) -> str:
    """``HTTP_X_FORWARDED_PROTO`` -> ``X-Forwarded-Proto``."""
    name = meta_key.removeprefix("HTTP_")
    return "-".join(part.capitalize() for part in name.split("_"))


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class ProtectedResourceMetadataView(OAuthProtectedResourceMetadataView):
    """Protected-resource metadata of one marked endpoint (``resource_path`` URL keyword).

    Subclasses may override the ``get_*`` hooks of django-oauth-toolkit's view as usual; the
    endpoint being described is ``self.resource_path`` (without slashes around it) and its
    marker ``self.protected_resource``.
    """

    http_method_names = ["get", "head", "options"]
    resource_path: str
    protected_resource: resources.ProtectedResource

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        method = (request.method or "").lower()
        if method not in self.http_method_names:
            return _cors(self.http_method_not_allowed(request))
        if method == "options":
            return _cors(self.options(request))
        located = self._locate(request, kwargs.get("resource_path"))
        if located is None:
            return _cors(_error(404, "not_found", NOT_FOUND_DESCRIPTION))
        self.resource_path, self.protected_resource = located
        return _cors(super().dispatch(request, *args, **kwargs))

    def _locate(self, request: HttpRequest, path: str | None) -> tuple[str, resources.ProtectedResource] | None:
        if path is None:
            path = mcp_scopes_settings.ROOT_RESOURCE_PATH
            if path is None:
                return None
        if _has_encoded_separator(request):
            return None
        return resources.find_protected_resource(path, urlconf=getattr(request, "urlconf", None))

    # django-oauth-toolkit hooks -------------------------------------------------------------
    def get_resource(self, request: HttpRequest) -> str:
        # request.path is the script prefix (SCRIPT_NAME / FORCE_SCRIPT_NAME) + path_info.
        script_prefix = request.path[: len(request.path) - len(request.path_info)].rstrip("/")
        return resources.resource_uri(request, script_prefix + "/" + self.resource_path)

    def get_authorization_servers(self, request: HttpRequest) -> list[str]:
        global _reported_missing_servers
        servers = resources.authorization_servers(request)
        if not servers and not _reported_missing_servers:
            _reported_missing_servers = True
            logger.error(
                "The protected-resource metadata lists no authorization server, so MCP clients cannot "
                'obtain tokens: set MCP_SCOPES["AUTHORIZATION_SERVERS"] or mount django-oauth-toolkit\'s '
                "RFC 8414 metadata."
            )
        return servers

    def get_scopes_supported(self) -> list[str]:
        return resources.scopes_supported(self.protected_resource)

    def get_bearer_methods_supported(self) -> list[str]:
        # Tokens are only ever read from the Authorization header.
        return ["header"]

    def get_resource_name(self) -> str:
        return self.protected_resource.name or mcp_scopes_settings.RESOURCE_NAME

    def get_resource_documentation(self) -> str | None:
        return mcp_scopes_settings.RESOURCE_DOCUMENTATION

    def get_resource_policy_uri(self) -> str | None:
        return mcp_scopes_settings.RESOURCE_POLICY_URI

    def get_resource_tos_uri(self) -> str | None:
        return mcp_scopes_settings.RESOURCE_TOS_URI

    # HTTP -----------------------------------------------------------------------------------
    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response: HttpResponse = super().get(request, *args, **kwargs)
        body = response.content
        response["ETag"] = '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
        response["Cache-Control"] = f"public, max-age={mcp_scopes_settings.METADATA_MAX_AGE}"
        used = self._request_headers_used()
        if used:
            patch_vary_headers(response, used)
        conditional = get_conditional_response(request, etag=response["ETag"], response=response)
        if conditional is not None and conditional is not response:
            return conditional
        if request.method == "HEAD":
            response.content = b""
            response["Content-Length"] = str(len(body))
        return response

    def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = HttpResponse(status=204)
        response["Allow"] = ALLOWED_METHODS
        response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        response["Access-Control-Max-Age"] = str(CORS_MAX_AGE)
        return response

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = _error(
            405, "method_not_allowed", f"{request.method} is not allowed here; use GET (or HEAD, OPTIONS)."
        )
        response["Allow"] = ALLOWED_METHODS
        return response

    def _request_headers_used(self) -> list[str]:
        """Request headers the document was derived from (for ``Vary``)."""
        derived = not mcp_scopes_settings.BASE_URL or not (
            mcp_scopes_settings.AUTHORIZATION_SERVERS
            or mcp_scopes_settings.JWT_ISSUERS
            or oauth2_settings.OAUTH2_PROTECTED_RESOURCE_AUTHORIZATION_SERVERS
            or oauth2_settings.OIDC_ISS_ENDPOINT
        )
        if not derived:
            return []
        headers = ["Host"]
        if settings.USE_X_FORWARDED_HOST:
            headers.append("X-Forwarded-Host")
        if settings.USE_X_FORWARDED_PORT:
            headers.append("X-Forwarded-Port")
        if settings.SECURE_PROXY_SSL_HEADER:
            headers.append(_header_name(settings.SECURE_PROXY_SSL_HEADER[0]))
        return headers


def _has_encoded_separator(request: HttpRequest) -> bool:
    """Whether the raw request target held ``%2F`` or ``%5C`` (servers decode it before Django sees it).

    Only visible when the server passes the raw target on (gunicorn ``RAW_URI``, uWSGI
    ``REQUEST_URI``, ASGI ``raw_path``); a resource path never legitimately holds an encoded separator.
    """
    raw: Any = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if not raw:
        scope = getattr(request, "scope", None)
        raw = scope.get("raw_path") if isinstance(scope, dict) else None
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    target = str(raw or "").split("?", 1)[0].lower()
    return "%2f" in target or "%5c" in target
