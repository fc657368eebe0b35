"""A plain REST endpoint beside the MCP one, protected by the same scopes.

``GET /api/entries`` needs ``entries:read``; ``POST /api/entries`` needs ``entries:write``.
Tokens must be issued for this resource (``resource=http://host/api/entries``): a token for
``/mcp`` is refused here, as the audience rules require.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_mcp_scopes.authentication import MCPTokenAuthentication
from django_mcp_scopes.permissions import HasScopesByMethod
from django_mcp_scopes.principal import get_principal
from example_project.journal import services


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, with nesting too deep for Python's decoder a 400 rather than a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the document is nested too deeply.") from exc


class EntryListView(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopesByMethod]
    parser_classes = [BoundedJSONParser]
    required_scopes_by_method = {"GET": "entries:read", "POST": "entries:write"}

    def get(self, request: Request) -> Response:
        user = get_principal(request).user  # type: ignore[union-attr]
        entries = services.list_entries(user)
        return Response({"entries": [services.entry_data(entry, with_content=False) for entry in entries]})

    def post(self, request: Request) -> Response:
        user = get_principal(request).user  # type: ignore[union-attr]
        data: Any = request.data
        if not isinstance(data, dict):
            return Response(
                {"error": "invalid_request", "error_description": "Send a JSON object with title and content."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            entry = services.create_entry(user, title=data.get("title", ""), content=data.get("content", ""))
        except services.InvalidInput as exc:
            return Response(
                {"error": "invalid_request", "error_description": str(exc)}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response(services.entry_data(entry), status=status.HTTP_201_CREATED)
