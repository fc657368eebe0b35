"""Who holds each scope today: live django-oauth-toolkit access tokens, per scope and per client.

A token is live when its row exists (django-oauth-toolkit deletes a revoked access token) and
its ``expires`` is in the future. A token holds a scope *directly* when the name is in its
``scope`` field, and *through the hierarchy* when it does not name it but one of its active
scopes implies it (today's hierarchy, as the registry would expand it now). Read for the admin
and ``manage.py mcp_scopes usage``; never on a request's path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.db.models import Count
from django.utils import timezone

from django_mcp_scopes.registry import Snapshot


@dataclass
class ClientUsage:
    """Live tokens of one client (``name`` and ``client_id`` empty for tokens with no application)."""

    name: str
    client_id: str
    direct: int = 0
    implied: int = 0

    @property
    def total(self) -> int:
        return self.direct + self.implied


@dataclass
class ScopeUsage:
    name: str
    direct: int = 0
    implied: int = 0
    clients: dict[str, ClientUsage] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.direct + self.implied

    def by_client(self) -> list[ClientUsage]:
        """Clients, those with most tokens first."""
        return sorted(self.clients.values(), key=lambda client: (-client.total, client.name, client.client_id))


def tokens_available() -> bool:
    """Whether django-oauth-toolkit (whose tables are read) is installed."""
    return apps.is_installed("oauth2_provider")


def live_token_usage(graph: Snapshot | None = None) -> dict[str, ScopeUsage] | None:
    """Usage of every scope some live token holds (directly or through the hierarchy), by name.

    None when django-oauth-toolkit is not installed. ``graph`` defaults to the hierarchy in the
    database now (``Scope.objects.graph()``). A few queries whatever the number of tokens: tokens
    are grouped by their scope string and client in the database.
    """
    if not tokens_available():
        return None
    from oauth2_provider.models import get_access_token_model

    from django_mcp_scopes.models import Scope

    if graph is None:
        graph = Scope.objects.graph()
    groups = (
        get_access_token_model()
        .objects.filter(expires__gt=timezone.now())
        .values("scope", "application__name", "application__client_id")
        .annotate(tokens=Count("pk"))
        .order_by()
    )
    usage: dict[str, ScopeUsage] = {}
    for group in groups:
        held = set(str(group["scope"] or "").split())
        effective: set[str] = set()
        for name in held:
            effective |= graph.closures.get(name, frozenset())
        client_id = str(group["application__client_id"] or "")
        client_name = str(group["application__name"] or "")
        count = int(group["tokens"])
        for name in held | effective:
            scope = usage.setdefault(name, ScopeUsage(name))
            client = scope.clients.setdefault(client_id, ClientUsage(client_name, client_id))
            if name in held:
                scope.direct += count
                client.direct += count
            else:
                scope.implied += count
                client.implied += count
    return usage
