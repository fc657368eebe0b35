"""JWT access tokens from a real OpenID provider: ``oidc-provider`` (npm) on 127.0.0.1, run by Node.js.

``tests/idp/server.mjs`` configures it for resource indicators (RFC 8707) and JWT access tokens
(RFC 9068); the MCP endpoint (``tests.jwt_urls`` in a gunicorn process, ``tests.settings_jwt``)
trusts it through its discovery document. The official ``mcp`` client does everything by itself:
the 401, the protected-resource metadata, the provider's metadata, dynamic registration at the
provider, PKCE with ``resource``, the token, and the step-up on a 403. The test plays the person at
the browser on the provider's development login and consent forms.

Refusals use tokens the provider really issued (another audience, expired) or such tokens altered
the way an attacker would (alg none, HMAC keyed with the published key, crit, embedded keys, another
iss, oversized). Key rotation and an outage restart the provider with other keys, or stop it.

Skipped with a message when Node.js is not installed; ``npm ci`` installs the provider into
tests/idp/node_modules on first use (from tests/idp/package-lock.json).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio
import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from jwt.algorithms import RSAAlgorithm
from mcp.client.auth import OAuthClientProvider
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from tests._mcp_live import MODERN, live_db  # noqa: F401 (live_db is a fixture)
from tests.example.live import parse_forms
from tests.example.test_end_to_end import MemoryStorage
from tests.jwt_support import b64, forge, forge_hs256
from tests.live import LiveServer, free_port

pytestmark = [pytest.mark.live, pytest.mark.django_db]

IDP_DIR = Path(__file__).resolve().parent / "idp"
CALLBACK = "http://127.0.0.1:9/callback"
ALL_SCOPES = "entries:read entries:write entries:publish admin"
STARTUP_SECONDS = 30


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "Node.js is not installed: the tests against a real OpenID provider run oidc-provider "
            "(tests/idp) with `node`; install Node.js 20 or newer and npm to run them."
        )
    return node


def _install_provider() -> None:
    if (IDP_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: it installs oidc-provider into tests/idp/node_modules (npm ci).")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=IDP_DIR, check=True, timeout=600)


def private_jwk(kid: str) -> dict[str, Any]:
    key = json.loads(RSAAlgorithm.to_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    key.pop("key_ops", None)  # PyJWT writes ["sign"], which the provider would publish as it is
    key.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return key


class Provider:
    """oidc-provider in a Node.js process of its own; ``restart(keys)`` rotates its signing keys."""

    def __init__(self, node: str, workdir: Path) -> None:
        self.node = node
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "idp.json"
        self.log_path = workdir / "idp.log"
        self.keys = [private_jwk("key-1")]
        self.resources: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        service = {
            "grant_types": ["client_credentials"],
            "redirect_uris": [],
            "response_types": [],
            "token_endpoint_auth_method": "client_secret_post",
        }
        config = {
            "issuer": self.issuer,
            "port": self.port,
            "jwks": {"keys": self.keys},
            "clients": [
                {"client_id": "jwt-live-service", "client_secret": "service-secret", **service},
                {"client_id": "jwt-live-short", "client_secret": "short-secret", **service},
            ],
            "resources": self.resources,
        }
        self.config_path.write_text(json.dumps(config))

    def start(self) -> Provider:
        self.write_config()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.node, str(IDP_DIR / "server.mjs"), str(self.config_path)],
                cwd=IDP_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"oidc-provider exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.issuer + "/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"oidc-provider did not answer:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def restart(self, keys: list[dict[str, Any]]) -> None:
        self.stop()
        self.keys = keys
        self.start()

    def token(self, resource: str, scope: str = "entries:read", client: str = "jwt-live-service") -> str:
        secret = {"jwt-live-service": "service-secret", "jwt-live-short": "short-secret"}[client]
        response = httpx.post(
            self.issuer + "/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client,
                "client_secret": secret,
                "resource": resource,
                "scope": scope,
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]


@dataclass
class Servers:
    provider: Provider
    mcp: LiveServer

    @property
    def mcp_url(self) -> str:
        return self.mcp.url + "/mcp"


@pytest.fixture(scope="module")
def servers(live_db, django_db_blocker):  # noqa: F811
    node = _node()
    _install_provider()
    with tempfile.TemporaryDirectory(prefix="mcp-scopes-idp-") as workdir:
        provider = Provider(node, Path(workdir)).start()
        mcp = LiveServer(
            "tests.settings_jwt",
            server="gunicorn",
            worker_class="gthread",
            threads=4,
            env={"DATABASE_URL": live_db, "JWT_TEST_ISSUER": provider.issuer},
            ready_path="/mcp",
        ).start()
        try:
            # Known to the provider once both are up (it reads its resources on every lookup).
            provider.resources = {mcp.url + "/mcp": ALL_SCOPES, "http://127.0.0.1:1/other": ALL_SCOPES}
            provider.write_config()
            yield Servers(provider, mcp)
        finally:
            mcp.stop()
            provider.stop()
            with django_db_blocker.unblock():
                # Created by the server on first sight (CREATE_USERS), committed: leave no trace.
                get_user_model().objects.filter(username__startswith="jwt-live-").delete()


@pytest.fixture
def fresh_keys(servers):
    """The provider back on its first key, whatever an earlier test rotated or stopped."""
    servers.provider.restart([private_jwk("key-1")])
    time.sleep(2.1)  # past JWKS_REFRESH_SECONDS: the MCP server reads the keys again
    return servers


def call_tool(servers: Servers, token: str, name: str = "whoami", arguments: dict | None = None) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": name,
            "arguments": arguments or {},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
        "Authorization": f"Bearer {token}",
    }
    return httpx.post(servers.mcp_url, content=json.dumps(body), headers=headers, timeout=15)


def tool_result(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert not result.get("isError"), result
    return json.loads(result["content"][0]["text"])


def refused(response: httpx.Response, words: str, error: str = "invalid_token") -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == error
    assert words.lower() in response.json()["error_description"].lower(), response.json()
    assert f'error="{error}"' in response.headers["www-authenticate"]


# --- the official client, through discovery, authorization and step-up ---------------------------------


class ProviderBrowser:
    """The person at the browser: signs in on the provider's development login form, then consents."""

    def __init__(self, login: str) -> None:
        self.login = login
        self.client = httpx.Client(timeout=30, follow_redirects=False)
        self.forms_seen: list[str] = []

    def authorize(self, url: str) -> httpx.Response:
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        response = self.client.get(url)
        for _ in range(12):
            if response.status_code in (302, 303):
                location = urljoin(str(response.url), response.headers["location"])
                if not location.startswith(origin):
                    return response  # off to the client's redirect URI
                response = self.client.get(location)
                continue
            assert response.status_code == 200, response.text
            forms = parse_forms(response.text)
            assert len(forms) == 1, list(forms)
            form = next(iter(forms.values()))
            prompt = form["fields"].get("prompt")
            self.forms_seen.append(prompt)
            values = {"login": self.login, "password": "any"} if prompt == "login" else {}
            action = urljoin(str(response.url), form["action"])
            response = self.client.post(action, data={**form["fields"], **values})
        raise AssertionError("too many steps at the provider")


@dataclass
class Session:
    servers: Servers
    browser: ProviderBrowser
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    authorization_urls: list[str] = field(default_factory=list)
    exchanges: list[tuple[str, str, int, str]] = field(default_factory=list)

    async def _redirect(self, url: str) -> None:
        self.authorization_urls.append(url)

    async def _callback(self) -> AuthorizationCodeResult:
        response = await anyio.to_thread.run_sync(self.browser.authorize, self.authorization_urls[-1])
        assert response.status_code in (302, 303), response.text
        params = {key: values[0] for key, values in parse_qs(urlsplit(response.headers["location"]).query).items()}
        assert "code" in params, params
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))

    async def _record(self, response: httpx2.Response) -> None:
        request = response.request
        self.exchanges.append(
            (request.method, str(request.url), response.status_code, response.headers.get("www-authenticate", ""))
        )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Client]:
        provider = OAuthClientProvider(
            self.servers.mcp_url,
            OAuthClientMetadata(client_name="JWT end-to-end test", redirect_uris=[CALLBACK]),
            self.storage,
            redirect_handler=self._redirect,
            callback_handler=self._callback,
        )
        async with httpx2.AsyncClient(auth=provider, event_hooks={"response": [self._record]}, timeout=30) as http:
            transport = streamable_http_client(self.servers.mcp_url, http_client=http)
            async with Client(transport, mode="auto", cache=None) as client:
                yield client


def test_the_official_client_through_discovery_authorization_and_step_up(servers):
    session = Session(servers, ProviderBrowser("jwt-live-alice"))

    async def journey() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with session.connect() as client:
            seen["first_scope"] = session.storage.tokens.scope if session.storage.tokens else None
            seen["me"] = json.loads((await client.call_tool("whoami", {})).content[0].text)
            seen["entries"] = (await client.call_tool("list_entries", {})).structured_content
            # entries:publish is not advertised: the 403 names it, the client steps up by itself.
            seen["created"] = (await client.call_tool("create_entry", {"title": "Hi", "public": True})).content[0].text
            seen["stepped_up_token"] = session.storage.tokens.access_token
        return seen

    try:
        seen = asyncio.run(journey())
    except BaseException as exc:
        steps = "\n".join(
            f"{method} {url} -> {status} {challenge}" for method, url, status, challenge in session.exchanges
        )
        raise AssertionError(f"the journey stopped: {exc!r}\n{steps}\n{servers.mcp.log(tail=40)}") from exc

    mcp_calls = [exchange for exchange in session.exchanges if exchange[1] == servers.mcp_url]
    assert mcp_calls[0][2] == 401
    assert f'resource_metadata="{servers.mcp.url}/.well-known/oauth-protected-resource/mcp"' in mcp_calls[0][3]
    urls = [url for _method, url, _status, _challenge in session.exchanges]
    assert servers.mcp.url + "/.well-known/oauth-protected-resource/mcp" in urls
    assert any(url.startswith(servers.provider.issuer + "/.well-known/") for url in urls)
    assert servers.provider.issuer + "/reg" in urls  # dynamic registration at the provider

    # Two authorizations: the baseline, then the union with what the 403 asked for; PKCE and resource.
    assert len(session.authorization_urls) == 2, session.authorization_urls
    for url in session.authorization_urls:
        query = parse_qs(urlsplit(url).query)
        assert url.startswith(servers.provider.issuer + "/auth")
        assert query["code_challenge_method"] == ["S256"]
        assert query["resource"] == [servers.mcp_url]
    second = set(parse_qs(urlsplit(session.authorization_urls[1]).query)["scope"][0].split())
    assert {"entries:publish", "entries:write"} <= second
    denied = [exchange for exchange in mcp_calls if exchange[2] == 403]
    assert len(denied) == 1 and 'error="insufficient_scope"' in denied[0][3]
    assert session.browser.forms_seen[:2] == ["login", "consent"]

    # The tool saw the Django user mapped from sub, and the provider's claims.
    assert seen["me"]["username"] == "jwt-live-alice"
    assert seen["me"]["sub"] == "jwt-live-alice"
    assert seen["me"]["tenant"] == "test-tenant"
    assert seen["me"]["issuer"] == servers.provider.issuer
    assert seen["entries"] == {"result": ["first entry"]}
    assert seen["created"] == "created Hi (public)"

    # The stepped-up token is an RFC 9068 JWT of the provider for this endpoint.
    header = jwt.get_unverified_header(seen["stepped_up_token"])
    payload = jwt.decode(seen["stepped_up_token"], options={"verify_signature": False})
    assert header["typ"] == "at+jwt"
    assert payload["aud"] == servers.mcp_url
    assert payload["iss"] == servers.provider.issuer
    assert {"entries:publish", "entries:write"} <= set(payload["scope"].split())


def test_the_metadata_names_the_provider(servers):
    document = httpx.get(servers.mcp.url + "/.well-known/oauth-protected-resource/mcp", timeout=10).json()
    assert document["resource"] == servers.mcp_url
    assert document["authorization_servers"] == [servers.provider.issuer]


# --- tokens the provider issued, and the same altered ---------------------------------------------------


def test_a_provider_token_is_accepted(fresh_keys):
    token = fresh_keys.provider.token(fresh_keys.mcp_url)
    me = tool_result(call_tool(fresh_keys, token))
    assert me["client_id"] == "jwt-live-service"
    assert me["username"] == "jwt-live-service"  # sub of a client-credentials token is the client id (RFC 9068)
    assert me["scopes"] == ["entries:read"]
    denied = call_tool(fresh_keys, token, "create_entry", {"title": "x"})
    assert denied.status_code == 403
    assert 'scope="entries:write"' in denied.headers["www-authenticate"]


def test_a_token_for_another_audience_is_refused(servers):
    refused(call_tool(servers, servers.provider.token("http://127.0.0.1:1/other")), "another audience")


def test_an_expired_token_is_refused(servers):
    token = servers.provider.token(servers.mcp_url, client="jwt-live-short")
    assert call_tool(servers, token).status_code == 200
    time.sleep(3.1)
    refused(call_tool(servers, token), "expired")


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, body, _signature = token.split(".")
    return (
        json.loads(jwt.utils.base64url_decode(head)),
        json.loads(jwt.utils.base64url_decode(body)),
    )


def test_altered_provider_tokens_are_refused(servers):
    token = servers.provider.token(servers.mcp_url)
    header, claims = _parts(token)
    published = httpx.get(servers.provider.issuer + "/jwks", timeout=10).json()["keys"][0]
    public_pem = RSAAlgorithm.from_jwk(published).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker_jwk = json.loads(RSAAlgorithm.to_jwk(attacker.public_key()))

    def resign(extra_header: dict[str, Any], new_claims: dict[str, Any] | None = None) -> str:
        return jwt.encode(new_claims or claims, attacker, algorithm="RS256", headers={**header, **extra_header})

    cases = {
        "alg none": (forge({**header, "alg": "none"}, claims), "algorithm"),
        "HS256 keyed with the provider's public key": (
            forge_hs256({**header, "alg": "HS256"}, claims, public_pem),
            "algorithm",
        ),
        "unknown crit": (resign({"crit": ["urn:x"], "urn:x": True}), "crit"),
        "jwk header with the attacker's key": (resign({"jwk": attacker_jwk}), "jwk"),
        "jku header": (resign({"jku": "http://127.0.0.1:1/jwks"}), "jku"),
        "signed by another key under the provider's kid": (resign({}), "signature"),
        "more scope than granted": (
            f"{token.split('.')[0]}.{b64(json.dumps({**claims, 'scope': ALL_SCOPES}).encode())}.{token.split('.')[2]}",
            "signature",
        ),
        "wrong iss": (resign({}, {**claims, "iss": "http://127.0.0.1:1"}), "does not trust"),
        "oversized": (resign({}, {**claims, "padding": "x" * 5000}), "longer than 4096 bytes"),
    }
    for name, (altered, words) in cases.items():
        response = call_tool(servers, altered)
        assert response.status_code == 401, (name, response.text)
        refused(response, words)
    assert call_tool(servers, token).status_code == 200  # the original still works


# --- the provider's keys over time ----------------------------------------------------------------------


def test_key_rotation(fresh_keys):
    servers = fresh_keys
    old_token = servers.provider.token(servers.mcp_url)
    assert call_tool(servers, old_token).status_code == 200

    # The provider adds key-2 and signs with it; key-1 stays published for the tokens already out.
    servers.provider.restart([private_jwk("key-2"), servers.provider.keys[0]])
    new_token = servers.provider.token(servers.mcp_url)
    assert jwt.get_unverified_header(new_token)["kid"] == "key-2"
    assert call_tool(servers, new_token).status_code == 200  # an unknown kid fetches the keys at once
    assert call_tool(servers, old_token).status_code == 200

    # key-1 is withdrawn: once the MCP server has read the keys again, its tokens are refused.
    servers.provider.restart([servers.provider.keys[0]])
    time.sleep(2.1)
    refused(call_tool(servers, old_token), "does not publish")
    assert call_tool(servers, new_token).status_code == 200


def test_the_provider_down(fresh_keys):
    servers = fresh_keys
    token = servers.provider.token(servers.mcp_url)
    assert call_tool(servers, token).status_code == 200
    servers.provider.stop()
    # Known keys keep working for JWKS_REFRESH_SECONDS + JWKS_MAX_STALE_SECONDS (2 + 3 s here).
    time.sleep(2.2)
    assert call_tool(servers, token).status_code == 200
    time.sleep(3.2)
    response = call_tool(servers, token)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"] == "temporarily_unavailable"
    servers.provider.start()
    assert call_tool(servers, token).status_code == 200
