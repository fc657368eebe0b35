"""CORS for the authorization server's machine endpoints, so browser-based MCP clients can use them.

The MCP Inspector (and any client running in a browser) fetches the metadata, registers itself and
exchanges codes from a page on another origin. These endpoints take no cookies (public clients,
PKCE), so any origin may call them: ``Access-Control-Allow-Origin: *`` without credentials, and an
answer to the preflight. The authorization endpoint is navigated to, not fetched, and gets no CORS;
the MCP endpoint has its own origin checks (``MCP_SCOPES["ALLOWED_ORIGINS"]``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBase

PATH_PREFIXES = ("/o/token/", "/o/register/", "/o/revoke_token/", "/.well-known/oauth-authorization-server")
ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, MCP-Protocol-Version"


class OAuthEndpointsCorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if "HTTP_ORIGIN" not in request.META or not request.path.startswith(PATH_PREFIXES):
            return self.get_response(request)
        if request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META:
            response: HttpResponseBase = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response["Access-Control-Max-Age"] = "600"
        else:
            response = self.get_response(request)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Expose-Headers"] = "WWW-Authenticate"
        return response
