"""Test-only views: what a server process's scope registry currently says."""

import os

from django.http import HttpRequest, JsonResponse

from django_mcp_scopes.registry import scope_registry


def registry_state(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "baseline": scope_registry.baseline(),
            "active": scope_registry.active_names(),
            "expand": sorted(scope_registry.expand(request.GET.getlist("expand"))),
            "pid": os.getpid(),
        }
    )
