"""JWT access tokens (RFC 9068) from trusted external issuers, checked against their JWKS.

``trusted_issuer(token)`` says whether a bearer string is a JWT naming one of
``MCP_SCOPES["JWT_ISSUERS"]`` in its ``iss`` (read without trusting it, only to pick the issuer);
``facts(token, issuer, resource)`` then validates it and returns the same facts the other token
sources do. A token naming a trusted issuer is decided here and nowhere else: it never falls
through to django-oauth-toolkit or introspection.

What is refused (401 ``invalid_token``, each with its own ``reason``):

- a token longer than ``JWT_MAX_TOKEN_BYTES``, before any parsing (``token_too_large``);
- a header carrying a key or a key location (``jwk``, ``jku``, ``x5u``, ``x5c``): keys come from
  the issuer's JWKS only (``embedded_key``);
- any ``crit`` header: no JOSE extension is understood here (``unsupported_crit``);
- ``alg`` ``none``, or any ``alg`` not in the issuer's ``ALGORITHMS`` (asymmetric only, so an HMAC
  token "signed" with the public key is refused before any key is looked at) (``alg_not_allowed``);
- ``typ`` other than ``at+jwt`` (or, with ``REQUIRE_AT_JWT_TYPE`` off, ``JWT`` or none); with it
  off, a token carrying ``nonce`` or ``at_hash`` is an ID token and refused (``wrong_type``);
- a bad signature, a ``kid`` the JWKS does not hold (after one rate-limited refresh);
- ``iss`` not exactly the issuer; ``exp`` missing or past, ``nbf`` or ``iat`` in the future, each
  with ``JWT_LEEWAY_SECONDS`` of clock skew;
- ``aud`` naming neither this endpoint's resource URI nor one of the issuer's ``AUDIENCES``;
- a sender-constrained token (``cnf``): its proof is not checked here;
- a malformed scope claim; a user claim that is missing, a user the resolver does not know, or an
  inactive user.

The token itself is never logged or stored; nothing about a JWT is cached except the issuer's
public keys (``django_mcp_scopes.tokens.jwks``), so a deactivated user is refused at once.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable
from typing import Any

import jwt
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from django_mcp_scopes.conf import JWTIssuer, mcp_scopes_settings
from django_mcp_scopes.exceptions import InvalidToken
from django_mcp_scopes.resources import same_resource
from django_mcp_scopes.tokens.jwks import jwks_cache

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_EMBEDDED_KEY_HEADERS = ("jwk", "jku", "x5u", "x5c")
_AT_JWT_TYPES = {"at+jwt", "application/at+jwt"}
_PLAIN_TYPES = {None, "jwt", "application/jwt"}
_ID_TOKEN_CLAIMS = ("nonce", "at_hash", "c_hash")
_CLIENT_ID_CLAIMS = ("client_id", "azp", "cid", "appid")  # RFC 9068, OIDC, Okta, Entra ID v1


def _segments(token: str) -> list[str] | None:
    parts = token.split(".")
    if len(parts) != 3 or not _SEGMENT.fullmatch(parts[0]) or not _SEGMENT.fullmatch(parts[1]):
        return None
    if parts[2] and not _SEGMENT.fullmatch(parts[2]):
        return None
    return parts  # an empty signature ("alg": "none") is routed here, then refused


def _json_segment(segment: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None


def looks_like_jwt(token: str) -> bool:
    """Three base64url segments: a JWS in compact form (DOT's own tokens never hold a dot)."""
    return token.count(".") == 2


def trusted_issuer(token: str) -> JWTIssuer | None:
    """The configured issuer whose tokens ``token`` claims to be; None when it names none.

    Raises ``InvalidToken`` for a JWT-shaped token over ``JWT_MAX_TOKEN_BYTES`` when JWT issuers
    are configured: it is not parsed, so it cannot be routed anywhere else either.
    """
    issuers = mcp_scopes_settings.JWT_ISSUERS
    if not issuers or not looks_like_jwt(token):
        return None
    limit = mcp_scopes_settings.JWT_MAX_TOKEN_BYTES
    if len(token) > limit:
        raise InvalidToken(f"The access token is longer than {limit} bytes.", reason="token_too_large")
    parts = _segments(token)
    if parts is None:
        return None
    payload = _json_segment(parts[1])
    iss = payload.get("iss") if isinstance(payload, dict) else None
    for issuer in issuers:
        if iss == issuer.issuer:
            return issuer
    return None


def _header(token: str, issuer: JWTIssuer) -> tuple[str, str | None, Any]:
    """The token's ``alg``, ``kid`` and ``typ`` after every header rule; ``InvalidToken`` otherwise."""
    parts = _segments(token)
    header = _json_segment(parts[0]) if parts is not None else None
    if not isinstance(header, dict):
        raise InvalidToken("The access token is not a well-formed JWT.", reason="malformed_jwt")
    embedded = [name for name in _EMBEDDED_KEY_HEADERS if name in header]
    if embedded:
        raise InvalidToken(
            f"The access token's header carries a key or key location ({', '.join(embedded)}); "
            "keys are taken from the issuer's JWKS only.",
            reason="embedded_key",
        )
    if "crit" in header:
        raise InvalidToken(
            "The access token's header lists critical extensions (crit) this server does not understand.",
            reason="unsupported_crit",
        )
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in issuer.algorithms:
        raise InvalidToken(
            f"The access token's signature algorithm (alg) is not accepted; accepted: {', '.join(issuer.algorithms)}.",
            reason="alg_not_allowed",
        )
    typ = header.get("typ")
    typ = typ.lower() if isinstance(typ, str) else typ
    if typ not in _AT_JWT_TYPES and (issuer.require_at_jwt_type or typ not in _PLAIN_TYPES):
        expected = "at+jwt" if issuer.require_at_jwt_type else "at+jwt, JWT or none"
        raise InvalidToken(f"The token's type (typ) is not an access token type ({expected}).", reason="wrong_type")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken("The access token's key id (kid) is not a string.", reason="malformed_jwt")
    return alg, kid, typ


_PYJWT_REFUSALS: list[tuple[type[Exception], str, str]] = [
    (jwt.ExpiredSignatureError, "The access token has expired.", "expired"),
    (jwt.ImmatureSignatureError, "The access token is not valid yet (nbf or iat in the future).", "not_yet_valid"),
    (jwt.InvalidIssuerError, "The access token was issued by another issuer (iss).", "wrong_issuer"),
    (jwt.MissingRequiredClaimError, "The access token lacks a required claim (exp, iss or aud).", "missing_claim"),
    (jwt.InvalidSignatureError, "The access token's signature is not valid.", "bad_signature"),
    (jwt.exceptions.InvalidSubjectError, "The access token's subject (sub) is not a string.", "malformed_jwt"),
    (jwt.InvalidIssuedAtError, "The access token's issue time (iat) is not a number.", "malformed_jwt"),
    (jwt.exceptions.InvalidJTIError, "The access token's id (jti) is not a string.", "malformed_jwt"),
]


def _verified_claims(token: str, issuer: JWTIssuer) -> tuple[dict[str, Any], Any]:
    alg, kid, typ = _header(token, issuer)
    key = jwks_cache.signing_key(issuer, kid, alg)
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            issuer=issuer.issuer,
            leeway=mcp_scopes_settings.JWT_LEEWAY_SECONDS,
            # The audience is compared below: canonical resource URIs, and the accepted audiences.
            options={"require": ["exp", "iss", "aud"], "verify_aud": False, "strict_aud": False},
        )
    except jwt.PyJWTError as exc:
        for error_class, description, reason in _PYJWT_REFUSALS:
            if isinstance(exc, error_class):
                raise InvalidToken(description, reason=reason) from None
        raise InvalidToken("The access token is not a valid JWT.", reason="malformed_jwt") from None
    if not isinstance(claims, dict):
        raise InvalidToken("The access token's claims are not a JSON object.", reason="malformed_jwt")
    return claims, typ


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and aud and all(isinstance(entry, str) for entry in aud):
        return aud
    raise InvalidToken("The access token's audience (aud) is malformed.", reason="malformed_jwt")


def _check_audience(claims: dict[str, Any], issuer: JWTIssuer, resource: str) -> None:
    audiences = _audiences(claims)
    if any(same_resource(audience, resource) for audience in audiences):
        return
    if any(audience in issuer.audiences for audience in audiences):
        return
    raise InvalidToken("The access token was issued for another audience (aud).", reason="wrong_audience")


def scopes_from_claim(value: Any) -> list[str]:
    """Scope names from a claim holding a space-separated string or an array of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(entry, str) and entry.strip() == entry for entry in value):
        return [entry for entry in value if entry]
    raise InvalidToken("The access token's scope claim is malformed.", reason="malformed_scope")


def _client_id(claims: dict[str, Any]) -> str | None:
    for name in _CLIENT_ID_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def resolve_user(claims: dict[str, Any], issuer: JWTIssuer) -> Any:
    """Default ``USER_RESOLVER``: the user whose username is the ``USER_CLAIM`` value.

    With ``CREATE_USERS``, an unknown one is created (no usable password). Returns None when there
    is no such user. Several issuers sharing one user table should prefix usernames with a
    resolver of their own (docs/jwt.md).
    """
    assert issuer.user_claim is not None
    username = claims[issuer.user_claim]
    user_model = get_user_model()
    field_name = user_model.USERNAME_FIELD
    manager = user_model._default_manager
    try:
        return manager.get(**{field_name: username})
    except user_model.DoesNotExist:
        pass
    max_length = getattr(user_model._meta.get_field(field_name), "max_length", None)
    if not issuer.create_users or (max_length is not None and len(username) > max_length):
        return None
    user = user_model(**{field_name: username})
    user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # created by a concurrent request
        return manager.get(**{field_name: username})
    return user


@functools.lru_cache(maxsize=32)
def _resolver(path: str) -> Callable[[dict[str, Any], JWTIssuer], Any]:
    return import_string(path)  # type: ignore[no-any-return]


def _user(claims: dict[str, Any], issuer: JWTIssuer) -> Any:
    if issuer.user_claim is None:
        return None
    value = claims.get(issuer.user_claim)
    if not isinstance(value, str) or not value:
        raise InvalidToken(
            f"The access token has no {issuer.user_claim} claim naming its user.", reason="missing_user_claim"
        )
    resolver = issuer.user_resolver if callable(issuer.user_resolver) else _resolver(issuer.user_resolver)
    user = resolver(claims, issuer)
    if user is None:
        raise InvalidToken("The access token's user is not known to this server.", reason="unknown_user")
    if not getattr(user, "is_active", True):
        raise InvalidToken("The access token belongs to an inactive user.", reason="inactive_user")
    return user


def facts(token: str, issuer: JWTIssuer, resource: str) -> dict[str, Any]:
    """Validate ``token`` as an access token of ``issuer`` for ``resource``; the facts it proves."""
    claims, typ = _verified_claims(token, issuer)
    _check_audience(claims, issuer, resource)
    if typ not in _AT_JWT_TYPES and any(name in claims for name in _ID_TOKEN_CLAIMS):
        raise InvalidToken("An ID token is not an access token.", reason="wrong_type")
    if claims.get("cnf") is not None:
        raise InvalidToken(
            "The access token is sender-constrained (cnf); this server accepts bearer tokens only.",
            reason="sender_constrained",
        )
    scopes = scopes_from_claim(claims.get(issuer.scope_claim))
    user = _user(claims, issuer)
    jti = claims.get("jti")
    return {
        "source": "jwt",
        "issuer": issuer.issuer,
        "user": user,
        "user_id": user.pk if user is not None else None,
        "username": None,
        "application_id": None,
        "client_id": _client_id(claims),
        "scopes": scopes,
        "expires": float(claims["exp"]),
        "resources": [resource],
        "token_id": jti if isinstance(jti, str) else "",
        "claims": claims,
    }
