"""Token introspection (RFC 7662) at a remote authorization server, with a timeout and a bounded cache.

Enabled when ``OAUTH2_PROVIDER["RESOURCE_SERVER_INTROSPECTION_URL"]`` is set, with the same
credentials django-oauth-toolkit uses (``RESOURCE_SERVER_AUTH_TOKEN`` as a Bearer token, or
``RESOURCE_SERVER_INTROSPECTION_CREDENTIALS`` as HTTP Basic). It replaces django-oauth-toolkit's
own introspection client, which has no timeout, keeps results for ten hours in the AccessToken
table, and cannot tell "inactive" from "unreachable". Here:

- the call, answer included, times out after ``MCP_SCOPES["INTROSPECTION_TIMEOUT_SECONDS"]``; a
  network error, a timeout, a non-200 answer, an answer over ``MAX_ANSWER_BYTES`` or a body that
  is not a JSON object raise ``AuthServiceUnavailable`` (503, fail closed);
- ``active`` must be ``true``; ``exp`` (if sent) in the future; ``nbf`` (if sent) not more than a
  minute ahead; ``iss`` equal to
  ``MCP_SCOPES["INTROSPECTION_ISSUER"]`` when that is set; ``client_id`` a string when sent;
  ``token_type`` (if sent) a bearer access token; no ``cnf`` (a sender-constrained token, DPoP or
  mTLS, needs a proof this server does not check); ``aud`` a string or a list of strings (it is the
  resource binding checked by the caller);
- answers are cached in ``MCP_SCOPES["CACHE_ALIAS"]`` under sha256(token) for at most
  ``INTROSPECTION_CACHE_SECONDS`` and never past ``exp``; an inactive answer is cached as well,
  so a flood of dead tokens does not become a flood of introspection calls.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import requests
from oauth2_provider.settings import oauth2_settings

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.exceptions import AuthServiceUnavailable, InvalidToken
from django_mcp_scopes.resources import canonicalize_all
from django_mcp_scopes.token_cache import REVOKED, token_cache

_NAMESPACE = "introspection"
_CLOCK_SKEW_SECONDS = 60
_ACCESS_TOKEN_TYPES = {"bearer", "access_token"}


def is_enabled() -> bool:
    return bool(oauth2_settings.RESOURCE_SERVER_INTROSPECTION_URL)


def _headers() -> dict[str, str]:
    headers = {"Accept": "application/json"}
    token = oauth2_settings.RESOURCE_SERVER_AUTH_TOKEN
    credentials = oauth2_settings.RESOURCE_SERVER_INTROSPECTION_CREDENTIALS
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif credentials:
        client_id, client_secret = credentials
        pair = f"{client_id}:{client_secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    return headers


MAX_ANSWER_BYTES = 64 * 1024
"""An introspection answer is a small JSON object; anything longer is refused (503)."""


def _body(response: requests.Response, deadline: float) -> bytes:
    """The answer's body, at most ``MAX_ANSWER_BYTES``, all of it before ``deadline``.

    ``requests``' timeout bounds each socket read, not the whole answer: an endpoint that
    trickles a byte at a time would hold the request for ever.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=8192):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise RuntimeError(f"introspection answer longer than {MAX_ANSWER_BYTES} bytes")
        if time.monotonic() > deadline:
            raise RuntimeError("introspection answer took longer than INTROSPECTION_TIMEOUT_SECONDS")
        chunks.append(chunk)
    return b"".join(chunks)


def _call(token: str) -> dict[str, Any]:
    url = oauth2_settings.RESOURCE_SERVER_INTROSPECTION_URL
    timeout = mcp_scopes_settings.INTROSPECTION_TIMEOUT_SECONDS
    deadline = time.monotonic() + timeout
    try:
        with requests.post(
            url,
            data={"token": token, "token_type_hint": "access_token"},
            headers=_headers(),
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as response:
            if response.status_code != 200:
                raise AuthServiceUnavailable() from RuntimeError(f"introspection answered HTTP {response.status_code}")
            body = _body(response, deadline)
    except requests.RequestException as exc:
        raise AuthServiceUnavailable() from exc
    except RuntimeError as exc:
        raise AuthServiceUnavailable() from exc
    try:
        content = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise AuthServiceUnavailable() from exc
    if not isinstance(content, dict):
        raise AuthServiceUnavailable() from RuntimeError("introspection answer is not a JSON object")
    return content


def _inactive(checksum: str, description: str, reason: str) -> InvalidToken:
    token_cache.put(checksum, REVOKED, mcp_scopes_settings.INTROSPECTION_CACHE_SECONDS, namespace=_NAMESPACE)
    return InvalidToken(description, reason=reason)


def _audiences(aud: Any) -> list[str] | None:
    if aud is None:
        return []
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(entry, str) for entry in aud):
        return aud
    return None


def facts(token: str, checksum: str) -> dict[str, Any]:
    """What the introspection endpoint says about ``token`` (cached); raises on refusal."""
    cached = token_cache.get(checksum, namespace=_NAMESPACE)
    if cached == REVOKED:
        raise InvalidToken("The access token is not active.", reason="inactive")
    if cached is not None:
        return cached  # read-only: shared with this process's local cache

    content = _call(token)
    if content.get("active") is not True:
        raise _inactive(checksum, "The access token is not active.", "inactive")
    now = time.time()
    exp = content.get("exp")
    if exp is not None and (not isinstance(exp, (int, float)) or isinstance(exp, bool)):
        raise _inactive(checksum, "The introspection answer has a malformed exp.", "malformed_introspection")
    if exp is not None and exp <= now:
        raise _inactive(checksum, "The access token has expired.", "expired")
    nbf = content.get("nbf")
    if nbf is not None and (not isinstance(nbf, (int, float)) or isinstance(nbf, bool)):
        raise _inactive(checksum, "The introspection answer has a malformed nbf.", "malformed_introspection")
    if nbf is not None and nbf > now + _CLOCK_SKEW_SECONDS:
        # Not cached: it becomes usable later.
        raise InvalidToken("The access token is not valid yet.", reason="not_yet_valid")
    issuer = mcp_scopes_settings.INTROSPECTION_ISSUER
    if issuer is not None and str(content.get("iss", "")).rstrip("/") != issuer:
        raise _inactive(checksum, "The access token was issued by another authorization server.", "wrong_issuer")
    client_id = content.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        raise _inactive(checksum, "The introspection answer has a malformed client_id.", "malformed_introspection")
    token_type = content.get("token_type")
    if content.get("cnf") is not None or str(token_type).lower() == "dpop":
        # Bound to a key (RFC 9449 DPoP, RFC 8705 mTLS) whose proof this server never checks:
        # accepting it as a plain bearer token would strip the binding.
        raise _inactive(
            checksum,
            "The access token is sender-constrained (DPoP or mTLS); this server accepts bearer tokens only.",
            "sender_constrained",
        )
    if token_type is not None and str(token_type).lower() not in _ACCESS_TOKEN_TYPES:
        raise _inactive(checksum, "Only access tokens are accepted.", "wrong_token_type")
    audiences = _audiences(content.get("aud"))
    if audiences is None:
        raise _inactive(checksum, "The introspection answer has a malformed aud.", "malformed_introspection")
    scope = content.get("scope")
    username = content.get("username")
    result = {
        "source": "introspection",
        "user_id": None,
        "username": username if isinstance(username, str) and username else None,
        "application_id": None,
        "client_id": client_id,
        "scopes": scope.split() if isinstance(scope, str) else [],
        "expires": float(exp) if exp is not None else None,
        "resources": canonicalize_all(audiences),
        "token_id": str(content.get("jti") or ""),
    }
    seconds = mcp_scopes_settings.INTROSPECTION_CACHE_SECONDS
    if exp is not None:
        seconds = min(seconds, exp - now)
    token_cache.put(checksum, result, seconds, namespace=_NAMESPACE)
    return result
