"""Fixtures and helpers of the in-process authorization-server tests (Django's test client, real DOT rows)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from django_mcp_scopes.models import Scope
from django_mcp_scopes.oauth import resources
from django_mcp_scopes.oauth.provider import oauth2_provider_settings
from tests.example.live import ExampleServer

REDIRECT_URI = "http://127.0.0.1:9/callback"
ORIGIN = "http://testserver"


def forget_oauthlib_cores() -> None:
    """DOT's views keep their oauthlib server (and so the validator class) on the class after the first
    request; settings changed by a test must reach them."""
    from oauth2_provider.views.mixins import OAuthLibMixin

    pending = [OAuthLibMixin]
    while pending:
        cls = pending.pop()
        if "_oauthlib_core" in cls.__dict__:
            delattr(cls, "_oauthlib_core")
        pending.extend(cls.__subclasses__())


@pytest.fixture
def oauth_settings_on(db, settings):
    """The helper's DOT settings, the package's OAuth URLs, two scopes in the database."""
    forget_oauthlib_cores()
    settings.ROOT_URLCONF = "tests.oauth_urls"
    settings.OAUTH2_PROVIDER = oauth2_provider_settings()
    settings.MCP_SCOPES_OAUTH = {}
    resources.forget_paths()
    read = Scope.objects.create(name="notes:read", description="Read your notes", is_advertised=True)
    write = Scope.objects.create(name="notes:write", description="Write notes for you")
    write.implies.add(read)
    yield settings
    resources.forget_paths()
    forget_oauthlib_cores()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def register(client: Client, prefix: str = "/o/", **body: Any) -> Any:
    payload = {"redirect_uris": [REDIRECT_URI], "client_name": "Test client", **body}
    return client.post(f"{prefix}register/", json.dumps(payload), content_type="application/json")


def location_query(response: Any) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(response["Location"]).query).items()}


class Flow:
    """One public client and one signed-in user going through authorization and token requests."""

    def __init__(self, client: Client, user: Any, prefix: str = "/o/") -> None:
        self.client = client
        self.prefix = prefix
        response = register(client, prefix)
        assert response.status_code == 201, response.content
        self.client_id = response.json()["client_id"]
        self.verifier = ""
        client.force_login(user)

    def authorize_params(self, **overrides: Any) -> dict[str, str]:
        self.verifier, challenge = pkce()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "state": "xyz",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": "notes:read",
            "resource": f"{ORIGIN}/mcp",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def authorize_url(self, **overrides: Any) -> str:
        return f"{self.prefix}authorize/?{urlencode(self.authorize_params(**overrides))}"

    def code(self, **overrides: Any) -> str:
        params = self.authorize_params(**overrides)
        form = {**params, "allow": "Allow", "scope": params.get("scope", "")}
        response = self.client.post(f"{self.prefix}authorize/?{urlencode(params)}", form)
        assert response.status_code == 302, response.content
        query = location_query(response)
        assert "code" in query, query
        return query["code"]

    def token(self, code: str, **overrides: Any) -> Any:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": self.client_id,
            "code_verifier": self.verifier,
        }
        data.update(overrides)
        return self.client.post(f"{self.prefix}token/", {k: v for k, v in data.items() if v is not None})


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pw")


class MinimalServer(ExampleServer):
    """tests/oauth_project as a server process, with the user demo/demo and its scopes."""

    settings_module = "tests.oauth_project.settings"
    apps = {"wsgi": "tests.oauth_project.wsgi:application", "asgi": "tests.oauth_project.asgi:application"}

    def load_data(self, port: int) -> None:
        self.manage(
            "shell",
            "-c",
            "import tests.oauth_project.mcp; from django.core.management import call_command; "
            "call_command('mcp_scopes', 'sync', '--noinput'); "
            "from django.contrib.auth import get_user_model; "
            "get_user_model().objects.create_user('demo', password='demo')",
        )
