"""A real JWKS endpoint and real signing keys for the JWT tests (no mock: HTTP on 127.0.0.1, PyJWT).

Also the fixtures and helpers tests/test_jwt.py and tests/test_jwks.py share (import them by name).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.contrib.auth import get_user_model
from django.test import override_settings
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from django_mcp_scopes.tokens.jwks import jwks_cache
from tests.enforcement_support import make_scopes


class SigningKey:
    """A private key with its kid; ``jwk`` is the public JWK the provider publishes."""

    def __init__(self, kid: str, kind: str = "RSA") -> None:
        self.kid = kid
        if kind == "RSA":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
            self.alg = "RS256"
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
            self.alg = "ES256"
        self.jwk.update({"kid": kid, "use": "sig"})

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        """A token signed by this key; a header value of None leaves that header out."""
        headers = {"typ": "at+jwt", "kid": self.kid, **header}
        headers = {name: value for name, value in headers.items() if value is not None}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token with exactly this header, as an attacker writes it (PyJWT refuses to produce these)."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def forge_hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """The "HMAC with the public key" attack: HS256 keyed with the published key's PEM."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


class KeyServer:
    """A provider's JWKS (and discovery document) over real HTTP; switch it down, slow or huge.

    It also answers RFC 7662 introspection at /introspect from ``introspection`` (token -> answer),
    recording every token it is asked about in ``introspected``.
    """

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.discovery_issuer: str | None = None
        self.down = False
        self.delay = 0.0
        self.padding = 0
        self.requests: list[str] = []
        self.introspection: dict[str, dict[str, Any]] = {}
        self.introspected: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": outer.discovery_issuer or outer.url, "jwks_uri": outer.url + "/jwks"}
                elif self.path == "/jwks":
                    body = {"keys": outer.keys, "padding": "x" * outer.padding}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if outer.delay:
                    for index in range(0, len(data), 64):
                        self.wfile.write(data[index : index + 64])
                        self.wfile.flush()
                        time.sleep(outer.delay)
                else:
                    self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                token = parse_qs(self.rfile.read(length).decode()).get("token", [""])[0]
                outer.introspected.append(token)
                data = json.dumps(outer.introspection.get(token, {"active": False})).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def fetches(self) -> int:
        return sum(1 for path in self.requests if path == "/jwks")


@contextmanager
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


# --- shared by tests/test_jwt.py and tests/test_jwks.py ----------------------------------------------

RESOURCE = "http://testserver/api/notes"
ISSUER = "https://idp.example/tenant"


@pytest.fixture(scope="module")
def keys():
    return {"a": SigningKey("key-a"), "b": SigningKey("key-b"), "ec": SigningKey("key-ec", "EC")}


@pytest.fixture
def provider(keys):
    with key_server() as server:
        server.keys = [keys["a"].jwk]
        yield server


def issuer_settings(provider, **issuer: Any) -> dict[str, Any]:
    entry = {"ISSUER": ISSUER, "JWKS_URI": provider.url + "/jwks", **issuer}
    return {"JWT_ISSUERS": [entry], "JWKS_MIN_REFRESH_SECONDS": 0}


@pytest.fixture
def configure(provider):
    """``configure(**issuer_keys, MCP_SCOPES_KEY=...)``: JWT settings for the rest of the test."""
    overrides = []

    def apply(settings_extra: dict[str, Any] | None = None, **issuer: Any) -> None:
        value = {**issuer_settings(provider, **issuer), **(settings_extra or {})}
        override = override_settings(MCP_SCOPES=value)
        override.enable()
        overrides.append(override)

    yield apply
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def alice():
    return get_user_model().objects.create_user(username="alice")


@pytest.fixture(autouse=True)
def _setup(db):
    make_scopes()
    jwks_cache.clear_local()
    yield
    jwks_cache.clear_local()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    value = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": RESOURCE,
        "exp": now + 300,
        "iat": now,
        "jti": "jti-1",
        "client_id": "agent",
        "scope": "notes:read",
    }
    value.update(overrides)
    return {name: item for name, item in value.items() if item is not None}


def call(client, token: str):
    return client.get("/api/notes", HTTP_AUTHORIZATION=f"Bearer {token}")


def refused(response, reason_words: str) -> dict[str, Any]:
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["error"] == "invalid_token"
    assert reason_words.lower() in body["error_description"].lower(), body
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert 'resource_metadata="http://testserver/.well-known/oauth-protected-resource/api/notes"' in challenge
    return body
