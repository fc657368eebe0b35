"""The signing keys of trusted JWT issuers: fetched from their JWKS, kept, refreshed, shared.

``jwks_cache.signing_key(issuer, kid, alg)`` is the only way a key reaches signature checking:
keys come from the issuer's JWKS URI (``JWKS_URI``, or the ``jwks_uri`` of its discovery document,
whose ``issuer`` must equal ``ISSUER``), never from the token.

- A key set is used for ``JWKS_REFRESH_SECONDS`` after it was fetched, then fetched again.
- A ``kid`` the set does not hold fetches it again at once (key rotation), but at most once per
  issuer and process every ``JWKS_MIN_REFRESH_SECONDS``: a flood of made-up kids is not a flood of
  fetches. Failed fetches are rate-limited the same way.
- Each fetch follows no redirect and must deliver its whole answer, at most ``JWKS_MAX_BYTES``,
  within ``JWKS_TIMEOUT_SECONDS``.
- While the provider cannot be reached, the keys already known keep being used for
  ``JWKS_MAX_STALE_SECONDS`` more; after that, and when no key was ever fetched, ``signing_key``
  raises ``AuthServiceUnavailable`` (503 with ``Retry-After``).
- Fetched sets go to the shared cache (``MCP_SCOPES["CACHE_ALIAS"]``): a process that needs a
  fresher set takes another process's fetch before fetching itself. Keys are public data, so the
  plain cache is enough; a cache that fails is ignored.

Only signature keys are kept: ``use`` absent or ``sig``, ``key_ops`` absent or with ``verify``,
never a symmetric (``oct``) key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from django.core.cache import caches
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from django_mcp_scopes.conf import JWTIssuer, mcp_scopes_settings
from django_mcp_scopes.exceptions import AuthServiceUnavailable, InvalidToken

_logger = logging.getLogger("django_mcp_scopes.security")
MAX_KEYS = 100
"""A key set with more keys than this is cut to its first ``MAX_KEYS`` signature keys."""


class JWKSUnavailable(Exception):
    """A JWKS or discovery fetch failed (network, timeout, status, size, content)."""


@dataclass
class _KeySet:
    keys: list[dict[str, Any]]
    fetched: float  # time.time() of the fetch, comparable across processes
    _parsed: dict[tuple[str | None, str], PyJWK | None] = field(default_factory=dict)

    def find(self, kid: str | None, alg: str) -> PyJWK | None:
        """The key named ``kid`` usable with ``alg``; with no kid, the only such key."""
        memo = (kid, alg)
        if memo not in self._parsed:
            candidates = [key for key in self.keys if kid is None or key.get("kid") == kid]
            usable = [parsed for parsed in (_parse(key, alg) for key in candidates) if parsed is not None]
            # Without a kid, several candidate keys are ambiguous: refuse rather than try each.
            self._parsed[memo] = usable[0] if len(usable) == 1 else None
        return self._parsed[memo]

    def has_kid(self, kid: str | None) -> bool:
        return kid is None or any(key.get("kid") == kid for key in self.keys)


def _parse(key: dict[str, Any], alg: str) -> PyJWK | None:
    if key.get("alg") not in (None, alg):
        return None
    try:
        return PyJWK(key, algorithm=alg)
    except (PyJWTError, ValueError, TypeError):
        return None  # the key's type does not fit alg (RSA key, ES256 token), or the key is malformed


def _signature_keys(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, dict) or not isinstance(content.get("keys"), list):
        raise JWKSUnavailable('the JWKS is not a JSON object with a "keys" array')
    keys = []
    for key in content["keys"]:
        if not isinstance(key, dict) or not isinstance(key.get("kty"), str) or key["kty"] == "oct":
            continue
        if key.get("use") not in (None, "sig"):
            continue
        ops = key.get("key_ops")
        if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
            continue
        if not isinstance(key.get("kid"), (str, type(None))):
            continue
        keys.append(key)
        if len(keys) == MAX_KEYS:
            break
    return keys


def fetch_json(url: str) -> Any:
    """GET ``url`` as JSON within ``JWKS_TIMEOUT_SECONDS`` and ``JWKS_MAX_BYTES``; ``JWKSUnavailable``."""
    timeout = mcp_scopes_settings.JWKS_TIMEOUT_SECONDS
    limit = mcp_scopes_settings.JWKS_MAX_BYTES
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    try:
        with requests.get(
            url, headers={"Accept": "application/json"}, timeout=timeout, allow_redirects=False, stream=True
        ) as response:
            if response.status_code != 200:
                raise JWKSUnavailable(f"{url} answered HTTP {response.status_code}")
            # requests' timeout bounds each read, not the answer: a trickling server is cut here.
            for chunk in response.iter_content(chunk_size=8192):
                size += len(chunk)
                if size > limit:
                    raise JWKSUnavailable(f"{url} answered more than JWKS_MAX_BYTES ({limit})")
                if time.monotonic() > deadline:
                    raise JWKSUnavailable(f"{url} took longer than JWKS_TIMEOUT_SECONDS ({timeout:g})")
                chunks.append(chunk)
    except requests.RequestException as exc:
        raise JWKSUnavailable(f"{url}: {type(exc).__name__}") from exc
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as exc:
        raise JWKSUnavailable(f"{url} did not answer JSON") from exc


def _jwks_uri(issuer: JWTIssuer) -> str:
    if issuer.jwks_uri is not None:
        return issuer.jwks_uri
    assert issuer.discovery_url is not None  # conf guarantees one of the two
    document = fetch_json(issuer.discovery_url)
    if not isinstance(document, dict):
        raise JWKSUnavailable(f"{issuer.discovery_url} is not a JSON object")
    # RFC 8414 section 3.3 / OpenID Discovery 4.3: the document must name the issuer it was asked for.
    if document.get("issuer") != issuer.issuer:
        raise JWKSUnavailable(f"{issuer.discovery_url} names another issuer: {document.get('issuer')!r}")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise JWKSUnavailable(f"{issuer.discovery_url} has no http(s) jwks_uri")
    return jwks_uri


def fetch_keys(issuer: JWTIssuer) -> list[dict[str, Any]]:
    """The issuer's signature keys, fetched now; ``JWKSUnavailable`` on any failure."""
    return _signature_keys(fetch_json(_jwks_uri(issuer)))


class JWKSCache:
    """Thread-safe per-process key sets in front of the shared cache and the providers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._issuer_locks: dict[str, threading.Lock] = {}
        self._sets: dict[str, _KeySet] = {}
        self._last_fetch: dict[str, float] = {}  # monotonic time of the last fetch attempt
        self._failing: set[str] = set()  # issuers whose last fetch failed

    def clear_local(self) -> None:
        """Forget every key set and rate limit of this process (tests, ``setting_changed``)."""
        with self._lock:
            self._sets.clear()
            self._last_fetch.clear()
            self._failing.clear()

    def signing_key(self, issuer: JWTIssuer, kid: str | None, alg: str) -> PyJWK:
        """The key to check a token of ``issuer`` signed with ``alg`` under ``kid``.

        Raises ``InvalidToken`` when the issuer does not publish such a key and
        ``AuthServiceUnavailable`` when no key set can be had.
        """
        keys = self._sets.get(issuer.issuer)
        now = time.time()
        if keys is None or now >= keys.fetched + mcp_scopes_settings.JWKS_REFRESH_SECONDS or not keys.has_kid(kid):
            keys = self._refresh(issuer, keys, kid)
        if keys is None:
            raise AuthServiceUnavailable(
                "The identity provider's signing keys cannot be fetched right now; try again shortly."
            )
        key = keys.find(kid, alg)
        if key is None:
            if not keys.has_kid(kid) and issuer.issuer in self._failing:
                # Perhaps a rotated key: it cannot be had until the provider answers again.
                raise AuthServiceUnavailable(
                    "The identity provider's signing keys cannot be fetched right now; try again shortly."
                )
            if kid is None:
                raise InvalidToken(
                    "The access token names no key (kid) and the issuer publishes no single key for its alg.",
                    reason="unknown_key",
                )
            raise InvalidToken(
                "The access token is signed with a key its issuer does not publish for its alg (kid, alg).",
                reason="unknown_key",
            )
        return key

    def _issuer_lock(self, issuer: str) -> threading.Lock:
        with self._lock:
            return self._issuer_locks.setdefault(issuer, threading.Lock())

    def _usable(self, keys: _KeySet | None) -> _KeySet | None:
        """``keys`` unless they are older than refresh + max-stale (then nothing may use them)."""
        limit = mcp_scopes_settings.JWKS_REFRESH_SECONDS + mcp_scopes_settings.JWKS_MAX_STALE_SECONDS
        if keys is None or time.time() >= keys.fetched + limit:
            return None
        return keys

    def _refresh(self, issuer: JWTIssuer, known: _KeySet | None, kid: str | None) -> _KeySet | None:
        name = issuer.issuer
        with self._issuer_lock(name):
            current = self._sets.get(name)
            if current is not known and current is not None and current.has_kid(kid):
                return current  # another thread refreshed meanwhile
            shared = self._shared_get(issuer)
            if shared is not None and (current is None or shared.fetched > current.fetched):
                current = self._sets[name] = shared
                fresh = time.time() < shared.fetched + mcp_scopes_settings.JWKS_REFRESH_SECONDS
                if fresh and shared.has_kid(kid):
                    return shared
            last = self._last_fetch.get(name)
            if last is not None and time.monotonic() < last + mcp_scopes_settings.JWKS_MIN_REFRESH_SECONDS:
                return self._usable(current)
            self._last_fetch[name] = time.monotonic()
            try:
                keys = _KeySet(fetch_keys(issuer), time.time())
            except JWKSUnavailable as exc:
                self._failing.add(name)
                _logger.warning("mcp_jwks_unavailable issuer=%s error=%s", name, exc)
                return self._usable(current)
            self._failing.discard(name)
            self._sets[name] = keys
            self._shared_set(issuer, keys)
            return keys

    def _shared_key(self, issuer: JWTIssuer) -> str:
        source = f"{issuer.issuer}\n{issuer.jwks_uri or issuer.discovery_url}"
        return f"{mcp_scopes_settings.CACHE_KEY_PREFIX}:jwks:{hashlib.sha256(source.encode()).hexdigest()[:32]}"

    def _shared_get(self, issuer: JWTIssuer) -> _KeySet | None:
        try:
            value = caches[mcp_scopes_settings.CACHE_ALIAS].get(self._shared_key(issuer))
        except Exception:
            _logger.warning("mcp_jwks_shared_cache_unavailable operation=get", exc_info=True)
            return None
        if not isinstance(value, dict) or not isinstance(value.get("fetched"), float):
            return None
        try:
            return _KeySet(_signature_keys({"keys": value.get("keys")}), value["fetched"])
        except JWKSUnavailable:
            return None

    def _shared_set(self, issuer: JWTIssuer, keys: _KeySet) -> None:
        seconds = mcp_scopes_settings.JWKS_REFRESH_SECONDS + mcp_scopes_settings.JWKS_MAX_STALE_SECONDS
        try:
            caches[mcp_scopes_settings.CACHE_ALIAS].set(
                self._shared_key(issuer), {"keys": keys.keys, "fetched": keys.fetched}, seconds
            )
        except Exception:
            _logger.warning("mcp_jwks_shared_cache_unavailable operation=set", exc_info=True)


jwks_cache = JWKSCache()
