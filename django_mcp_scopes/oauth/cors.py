"""CORS for the authorization server's machine endpoints, so browser-based MCP clients can use them.

The MCP Inspector (and any client running in a browser) fetches the metadata, registers itself,
exchanges codes and revokes tokens from a page on another origin. These endpoints take no cookies
(public clients, PKCE, bearer registration tokens), so any origin may call them:
``Access-Control-Allow-Origin: *`` without credentials, and an answer to the preflight. The
authorization endpoint is navigated to, not fetched, and gets no CORS.

A view decorator rather than django-cors-headers: the policy is fixed by what these endpoints are
(no credentials, any origin) and must not depend on, or change, a project's own CORS settings,
and it keeps the set-up to one URL include.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase

ALLOW_HEADERS = "Authorization, Content-Type, MCP-Protocol-Version"
MAX_AGE = "600"


def allow_any_origin(methods: str) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """Answer CORS preflights for ``methods`` and let any origin read the responses (no credentials)."""

    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META:
                response: HttpResponseBase = HttpResponse(status=204)
                response["Access-Control-Allow-Methods"] = f"{methods}, OPTIONS"
                response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
                response["Access-Control-Max-Age"] = MAX_AGE
            else:
                response = view(request, *args, **kwargs)
            response["Access-Control-Allow-Origin"] = "*"
            response["Access-Control-Expose-Headers"] = "WWW-Authenticate, Retry-After"
            return response

        return wrapped

    return decorate
