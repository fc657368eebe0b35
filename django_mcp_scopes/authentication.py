"""Who is calling: bearer-token authentication built on django-oauth-toolkit's validation.

``authenticate_request(request)`` is the core; ``MCPTokenAuthentication`` (DRF), ``require_token``
and ``TokenRequiredMixin`` (plain Django views) wrap it.

What is accepted:

- the token comes from the ``Authorization`` header only, scheme ``Bearer`` (any case), one or
  more spaces or tabs before the token, the token in RFC 6750 ``b64token`` syntax, at most
  ``MAX_AUTHORIZATION_LENGTH`` characters. An ``access_token`` in the query string or a form body
  is refused (``invalid_request``) and never used, with or without a header. A comma means two
  headers were joined by the server (WSGI and ASGI both do that) and is refused too;
- the token must be valid for django-oauth-toolkit (``OAuth2Validator.validate_bearer_token``:
  known, not expired or revoked, usable application, its own audience check) and bound to this
  endpoint's canonical resource URI exactly (``resources.same_resource``). A token bound to no
  resource is refused unless ``MCP_SCOPES["ALLOW_TOKENS_WITHOUT_RESOURCE"]``; a token carrying
  ``OAUTH2_PROVIDER["DCR_REGISTRATION_SCOPE"]`` is never accepted, nor one of an inactive user;
- in introspection mode (``OAUTH2_PROVIDER["RESOURCE_SERVER_INTROSPECTION_URL"]``) the token is
  checked at the remote endpoint instead (``django_mcp_scopes.introspection``);
- a JWT naming one of ``MCP_SCOPES["JWT_ISSUERS"]`` is checked against that issuer's keys
  (``django_mcp_scopes.tokens.jwt``) and by nothing else; ``django_mcp_scopes.tokens`` gives the
  order in which the sources are chosen.

Validated tokens are cached (``django_mcp_scopes.token_cache``): a warm token costs no database
query, a cold local token one. A database or introspection failure raises
``AuthServiceUnavailable`` (503): never an open door, never a stack trace.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Collection
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import Request as OAuthlibRequest
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from django_mcp_scopes import challenges, introspection, resources, telemetry
from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.exceptions import (
    AuthServiceUnavailable,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MCPScopesError,
    MissingToken,
    TokenError,
)
from django_mcp_scopes.principal import Principal, get_principal, set_principal
from django_mcp_scopes.signals import report_scope_denied, report_service_unavailable, report_token_rejected
from django_mcp_scopes.token_cache import REVOKED, token_cache, token_checksum
from django_mcp_scopes.tokens import jwt as jwt_tokens

_logger = logging.getLogger("django_mcp_scopes.security")

MAX_AUTHORIZATION_LENGTH = 8192
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_HEADER_CHARS = re.compile(r"[\t\x20-\x7e]*")
_TOKEN_ERROR_ATTRIBUTE = "_mcp_token_error"


# ---------------------------------------------------------------------------------------------
# Reading the token


def bearer_token_from_header(value: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value; ``InvalidRequest`` otherwise."""
    if len(value) > MAX_AUTHORIZATION_LENGTH:
        raise InvalidRequest(
            f"The Authorization header is longer than {MAX_AUTHORIZATION_LENGTH} characters.",
            reason="header_too_long",
        )
    if not _HEADER_CHARS.fullmatch(value):
        raise InvalidRequest(
            "The Authorization header may hold printable ASCII only.",
            reason="non_ascii_header",
        )
    if "," in value:
        raise InvalidRequest(
            "Send exactly one Authorization header holding one Bearer token (a comma was found).",
            reason="multiple_credentials",
        )
    parts = value.split()
    if not parts or parts[0].lower() != "bearer":
        raise InvalidRequest(
            "Only the Bearer authentication scheme is accepted: Authorization: Bearer <access token>.",
            reason="wrong_scheme",
        )
    if len(parts) == 1:
        raise InvalidRequest("The Bearer scheme needs a token after it.", reason="empty_token")
    if len(parts) > 2 or not _TOKEN68.fullmatch(parts[1]):
        raise InvalidRequest(
            "The bearer token is malformed: one token of letters, digits and -._~+/ (then optional =).",
            reason="malformed_token",
        )
    return parts[1]


def _token_elsewhere(request: HttpRequest) -> str | None:
    """Where a token was sent other than the Authorization header (query string, form body)."""
    query = request.META.get("QUERY_STRING", "")
    # "%61ccess_token" decodes to access_token too: parse whenever the name may be encoded.
    if query and ("access_token" in query or "%" in query):
        try:
            if "access_token" in request.GET:
                return "query"
        except Exception:  # an unparsable query string that mentions access_token: refuse it
            return "query"
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        try:
            if "access_token" in request.POST:
                return "body"
        except Exception:  # noqa: S110 - an unreadable body is the view's problem, not a token
            pass
    return None


# ---------------------------------------------------------------------------------------------
# Validating it


def _now() -> float:
    return time.time()


def exact_resource_validator(request_uri: str, audiences: list[str]) -> bool:
    """``RESOURCE_SERVER_TOKEN_RESOURCE_VALIDATOR`` for django-oauth-toolkit: exact canonical match.

    Unlike the default URL-prefix validator, a token for ``https://h/mcp`` does not open
    ``https://h/mcp-admin`` or ``https://h/mcp/other``. Set
    ``OAUTH2_PROVIDER["RESOURCE_SERVER_TOKEN_RESOURCE_VALIDATOR"] =
    "django_mcp_scopes.authentication.exact_resource_validator"``.
    """
    return any(resources.same_resource(request_uri, audience) for audience in audiences or ())


def _local_facts(token: str, resource: str) -> dict[str, Any]:
    """Validate through django-oauth-toolkit (one query) and return what the token proved."""
    validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
    core_request = OAuthlibRequest(resource)
    if not validator.validate_bearer_token(token, [], core_request):
        error = getattr(core_request, "oauth2_error", None) or {}
        if "resource" in str(error.get("error_description", "")):
            raise InvalidToken("The access token was not issued for this resource.", reason="wrong_resource")
        raise InvalidToken("The access token is unknown, expired or revoked.", reason="unknown_token")
    access_token = core_request.access_token
    user = access_token.user
    if user is not None and not getattr(user, "is_active", True):
        raise InvalidToken("The access token belongs to an inactive user.", reason="inactive_user")
    application = access_token.application
    return {
        "source": "local",
        "user_id": access_token.user_id,
        # Loaded with the token (one query): tools read it without loading the user again.
        "username": user.get_username() if user is not None else None,
        "application_id": access_token.application_id,
        "client_id": application.client_id if application is not None else None,
        # What DatabaseScopes reads to decide what a listing's step-up may reach: loaded with the
        # token, so a warm listing needs no query for the application.
        "application_fields": (
            {name: getattr(application, name, None) for name in _APPLICATION_FIELDS}
            if application is not None
            else None
        ),
        "scopes": access_token.scope.split(),
        "expires": access_token.expires.timestamp(),
        "resources": resources.canonicalize_all(access_token.resource),
        "token_id": str(access_token.pk),
    }


def _jwt_facts(token: str, issuer: Any, resource: str) -> dict[str, Any]:
    try:
        return jwt_tokens.facts(token, issuer, resource)
    except (TokenError, AuthServiceUnavailable):
        raise
    except DatabaseError as exc:  # the user lookup
        raise AuthServiceUnavailable() from exc
    except Exception as exc:
        # A broken USER_RESOLVER, an unexpected key: fail closed (503), never a 500 or an open door.
        _logger.error("mcp_auth_jwt_validation_failed error=%s", type(exc).__name__, exc_info=True)
        raise AuthServiceUnavailable() from exc


_dot: list[bool] = []  # [whether django-oauth-toolkit is installed], remembered until INSTALLED_APPS changes


def _dot_installed() -> bool:
    if not _dot:
        from django.apps import apps

        _dot[:] = [apps.is_installed("oauth2_provider")]
    return _dot[0]


@receiver(setting_changed, dispatch_uid="mcp_scopes_authentication_installed_apps")
def _forget_installed_apps(*, setting: str, **kwargs: Any) -> None:
    if setting == "INSTALLED_APPS":
        _dot.clear()


def _unknown_token(token: str) -> InvalidToken:
    if mcp_scopes_settings.JWT_ISSUERS and jwt_tokens.looks_like_jwt(token):
        return InvalidToken(
            "The access token is a JWT from an issuer this server does not trust (iss).", reason="untrusted_issuer"
        )
    return InvalidToken("The access token is unknown, expired or revoked.", reason="unknown_token")


def _facts(token: str, checksum: str, resource: str) -> dict[str, Any]:
    issuer = jwt_tokens.trusted_issuer(token)
    if issuer is not None:
        return _jwt_facts(token, issuer, resource)
    if introspection.is_enabled():
        return introspection.facts(token, checksum)
    if not _dot_installed():
        # JWTs only (no django-oauth-toolkit tables to look the token up in).
        raise _unknown_token(token)
    cached = token_cache.get(checksum)
    if cached == REVOKED:
        raise InvalidToken("The access token has been revoked.", reason="revoked")
    if cached is not None:
        return cached  # read-only: shared with this process's local cache
    try:
        facts = _local_facts(token, resource)
    except TokenError as exc:
        if exc.reason == "unknown_token":
            raise _unknown_token(token) from None
        raise
    except DatabaseError as exc:
        raise AuthServiceUnavailable() from exc
    except Exception as exc:
        # Anything else that stops validation (the scope registry's cache down, a broken scopes
        # backend) fails closed too: 503, never a 500 and never an accepted token.
        _logger.error("mcp_auth_validation_failed error=%s", type(exc).__name__, exc_info=True)
        raise AuthServiceUnavailable() from exc
    seconds = min(token_cache.config.shared_seconds, facts["expires"] - _now())
    token_cache.put(checksum, facts, seconds)
    return facts


def _check_facts(facts: dict[str, Any], resource: str) -> str | None:
    """Refuse what no cache may let through; return the matching resource binding."""
    expires = facts.get("expires")
    # A JWT was just checked with JWT_LEEWAY_SECONDS of skew (and is never cached).
    if expires is not None and expires <= _now() and facts.get("source") != "jwt":
        raise InvalidToken("The access token has expired.", reason="expired")
    return check_resource_binding(facts["resources"], resource, registration_token=_seed(facts)[3])


def check_resource_binding(bound: Collection[str], resource: str, *, registration_token: bool) -> str | None:
    """The audience rules every accepted token meets, whichever class authenticated it.

    ``bound`` holds the token's canonical resource bindings, ``resource`` this endpoint's
    canonical URI. A client registration token never passes; an unbound token only when
    ``ALLOW_TOKENS_WITHOUT_RESOURCE``; otherwise the binding must name this resource exactly.
    Returns the matching binding (None for an allowed unbound token); raises ``InvalidToken``.
    """
    if registration_token:
        raise InvalidToken("A client registration token cannot be used here.", reason="registration_token")
    if not bound:
        if mcp_scopes_settings.ALLOW_TOKENS_WITHOUT_RESOURCE:
            return None
        raise InvalidToken(
            "The access token is not bound to a resource; request it with the resource parameter (RFC 8707).",
            reason="no_resource",
        )
    if resource in bound:
        return resource
    raise InvalidToken("The access token was not issued for this resource.", reason="wrong_resource")


class _Lazy(SimpleLazyObject):
    """``SimpleLazyObject`` whose construction skips LazyObject's attribute hooks (hot path)."""

    def __init__(self, func: Callable[[], Any]) -> None:
        state = object.__getattribute__(self, "__dict__")
        state["_setupfunc"] = func
        state["_wrapped"] = empty


class _LazyUser(_Lazy):
    """The token's user, loaded on first use.

    Its id (``pk``, ``id``), username (``get_username()`` and the ``USERNAME_FIELD`` attribute) and
    authentication state come from the validated token's cached facts and need no query; any other
    attribute loads the user (one query).
    """

    is_authenticated = True
    is_anonymous = False

    def __init__(self, func: Callable[[], Any], pk: Any, username: str | None = None) -> None:
        super().__init__(func)
        state = object.__getattribute__(self, "__dict__")
        state["_mcp_pk"] = pk
        state["_mcp_username"] = username

    def __getattr__(self, name: str) -> Any:
        username = self.__dict__["_mcp_username"]
        if username is not None and self._wrapped is empty and name == _username_field():
            return username
        return super().__getattr__(name)

    def get_username(self) -> Any:
        username = self.__dict__["_mcp_username"]
        if username is not None and self._wrapped is empty:
            return username
        return self.__getattr__("get_username")()

    @property
    def pk(self) -> Any:
        pk = self.__dict__["_mcp_pk"]
        return pk if pk is not None else self._load_pk()

    @property
    def id(self) -> Any:
        return self.pk

    def _load_pk(self) -> Any:
        return self.__getattr__("pk")


@functools.cache
def _username_field() -> str:
    return str(get_user_model().USERNAME_FIELD)


def _user_for(facts: dict[str, Any]) -> Any:
    if facts.get("user") is not None:
        return facts["user"]  # already loaded (JWT: the resolver checked it is active)
    user_id = facts.get("user_id")
    if user_id is not None:
        username = facts.get("username")
        return _LazyUser(
            lambda: get_user_model()._default_manager.get(pk=user_id),
            user_id,
            username if isinstance(username, str) else None,
        )
    username = facts.get("username")
    if username:
        # Introspection: django-oauth-toolkit's hook maps the remote user to a local one.
        return _LazyUser(
            lambda: oauth2_settings.OAUTH2_VALIDATOR_CLASS().get_or_create_user_from_content({"username": username}),
            None,
        )
    return None


# The application's fields kept with a local token's facts (the ones DatabaseScopes reads).
_APPLICATION_FIELDS = ("client_id", "client_type", "authorization_grant_type", "name")


class _LazyApplication(_Lazy):
    """The token's django-oauth-toolkit application, loaded on first use.

    Its id and the fields in ``_APPLICATION_FIELDS`` come from the validated token's cached facts
    and need no query; any other attribute loads the application (one query).
    """

    def __init__(self, func: Callable[[], Any], pk: Any, fields: dict[str, Any]) -> None:
        super().__init__(func)
        state = object.__getattribute__(self, "__dict__")
        state["_mcp_pk"] = pk
        state["_mcp_fields"] = fields

    def __getattr__(self, name: str) -> Any:
        if self._wrapped is empty:
            fields = self.__dict__["_mcp_fields"]
            if name in fields:
                return fields[name]
            if name in ("pk", "id"):
                return self.__dict__["_mcp_pk"]
        return super().__getattr__(name)


def _application_for(facts: dict[str, Any]) -> Any:
    application_id = facts.get("application_id")
    if application_id is None:
        return None
    load = functools.partial(_load_application, application_id)
    fields = facts.get("application_fields")
    if isinstance(fields, dict):
        return _LazyApplication(load, application_id, {k: v for k, v in fields.items() if k in _APPLICATION_FIELDS})
    return _Lazy(load)


def _load_application(application_id: Any) -> Any:
    return _application_model()._default_manager.get(pk=application_id)


@functools.cache
def _application_model() -> Any:
    from oauth2_provider.models import get_application_model

    return get_application_model()


def _seed(facts: dict[str, Any]) -> tuple[frozenset[str], datetime | None, list[str], bool]:
    """What every request with these facts shares, computed once per cached entry: granted
    scopes, expiry, resource binding, and whether it is a client registration token."""
    seed = facts.get("_seed")
    if seed is None:
        expires = facts.get("expires")
        granted = frozenset(facts["scopes"])
        seed = (
            granted,
            datetime.fromtimestamp(expires, tz=timezone.utc) if expires is not None else None,
            list(facts["resources"]),
            oauth2_settings.DCR_REGISTRATION_SCOPE in granted,
        )
        facts["_seed"] = seed  # local copy only: the shared cache already holds its own
    return seed


def _principal(facts: dict[str, Any], resource: str | None, checksum: str) -> Principal:
    granted, expires, bound, _registration = _seed(facts)
    return Principal(
        user=_user_for(facts),
        granted_scopes=granted,
        application=_application_for(facts),
        client_id=facts.get("client_id"),
        expires=expires,
        resource=resource,
        token_id=facts.get("token_id") or "",
        claims=MappingProxyType(facts.get("claims") or {}),
        extra={
            "source": facts.get("source"),
            "issuer": facts.get("issuer"),
            "user_id": facts.get("user_id"),
            "resources": bound,
            "token_sha256_prefix": checksum[:12],
        },
    )


def authenticate_request(request: HttpRequest, *, resource_uri: str | None = None) -> Principal | None:
    """The principal behind the request's bearer token; None when no Authorization header was sent.

    ``resource_uri`` is this endpoint's resource identifier (default: the request's URL, see
    ``resources.resource_uri``). Raises ``InvalidRequest`` / ``InvalidToken`` (401) and
    ``AuthServiceUnavailable`` (503). Refusals are reported through ``signals.token_rejected``.
    """
    with telemetry.authentication_span() as span:
        try:
            principal = _authenticate_request(request, resource_uri)
        except TokenError as exc:
            span.set(outcome=exc.reason)
            raise
        except AuthServiceUnavailable:
            span.set(outcome="unavailable")
            raise
        if principal is None:
            span.set(outcome="no_credentials")
        else:
            span.set(outcome="allowed", client_id=principal.client_id, token_source=principal.extra.get("source"))
        return principal


def _authenticate_request(request: HttpRequest, resource_uri: str | None) -> Principal | None:
    checksum: str | None = None
    try:
        header = request.META.get("HTTP_AUTHORIZATION")
        elsewhere = _token_elsewhere(request)
        if elsewhere is not None:
            raise InvalidRequest(
                f"Access tokens are accepted in the Authorization header only, never in the {elsewhere}.",
                reason=f"token_in_{elsewhere}",
            )
        if header is None:
            return None
        token = bearer_token_from_header(header)
        checksum = token_checksum(token)
        resource = resources.canonicalize_resource(resource_uri) if resource_uri else resources.resource_uri(request)
        facts = _facts(token, checksum, resource)
        matched = _check_facts(facts, resource)
        return _principal(facts, matched, checksum)
    except TokenError as exc:
        report_token_rejected(request, reason=exc.reason, error=exc.error, token_hash=checksum)
        raise
    except AuthServiceUnavailable as exc:
        report_service_unavailable(request, reason=type(exc.__cause__).__name__ if exc.__cause__ else "unavailable")
        raise


def authenticates_without_io(request: HttpRequest, *, resource_uri: str | None = None) -> bool:
    """Whether ``authenticate_request`` would accept this request's token from this process's memory.

    True when the token's validated facts are in the in-process cache under a fresh token epoch,
    they still hold (not expired, bound to this resource), and the scope registry's snapshot is
    current: then authentication, and the effective scopes, need no database query and no cache
    round trip, so async code may run them on the event loop. Anything else (no token, a refusal,
    a cold or JWT or introspected token, an epoch due for its check) is False: do it in a thread.
    """
    from django_mcp_scopes.epochs import epochs
    from django_mcp_scopes.registry import scope_registry

    header = request.META.get("HTTP_AUTHORIZATION")
    if header is None or _token_elsewhere(request) is not None:
        return False
    try:
        token = bearer_token_from_header(header)
        if mcp_scopes_settings.JWT_ISSUERS and jwt_tokens.trusted_issuer(token) is not None:
            return False
    except TokenError:
        return False
    epoch = epochs.peek()
    if epoch is None or introspection.is_enabled() or not _dot_installed() or not scope_registry.is_current(epoch):
        return False
    facts = token_cache.peek(token_checksum(token), epoch.tokens)
    if not isinstance(facts, dict):
        return False
    resource = resources.canonicalize_resource(resource_uri) if resource_uri else resources.resource_uri(request)
    try:
        _check_facts(facts, resource)
    except TokenError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# DRF


class TokenRejected(drf_exceptions.AuthenticationFailed):
    """401 whose body carries ``error`` / ``error_description``; DRF adds the challenge."""


class AuthUnavailable(drf_exceptions.APIException):
    status_code = 503
    default_detail = "Access tokens cannot be checked right now; try again shortly."
    default_code = "temporarily_unavailable"

    def __init__(self, description: str) -> None:
        super().__init__(detail={"error": "temporarily_unavailable", "error_description": description})
        # DRF's exception handler turns ``wait`` into Retry-After.
        self.wait = mcp_scopes_settings.SERVICE_UNAVAILABLE_RETRY_AFTER


def _django_request(request: Any) -> HttpRequest:
    return getattr(request, "_request", request)


def _view_resource_path(view: Any) -> str | None:
    return getattr(view, "mcp_resource_path", None) if view is not None else None


class MCPTokenAuthentication(BaseAuthentication):
    """DRF authentication: ``request.auth`` is the ``Principal``, ``request.user`` the token's user.

    The endpoint's resource URI is the request URL, or ``BASE_URL`` + the view's
    ``mcp_resource_path`` when it declares one (e.g. one resource for a whole API). 401 answers
    carry ``resource_metadata`` for that path and the baseline ``scope``.
    """

    # Read by the discovery helper: views using this class are protected resources.
    mcp_scopes_protected = True

    @classmethod
    def authenticates_without_io(cls, request: HttpRequest, view: Any) -> bool:
        """Whether ``authenticate()`` would answer from memory (see ``authenticates_without_io()``)."""
        if cls.authenticate is not MCPTokenAuthentication.authenticate:
            return False  # a subclass's own authenticate() may do anything
        path = _view_resource_path(view)
        resource = resources.resource_uri(request, path) if path is not None else None
        return authenticates_without_io(request, resource_uri=resource)

    def _resource_path(self, request: Request) -> str | None:
        context = getattr(request, "parser_context", None) or {}
        return _view_resource_path(context.get("view"))

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        django_request = _django_request(request)
        path = self._resource_path(request)
        resource = resources.resource_uri(django_request, path) if path is not None else None
        try:
            principal = authenticate_request(django_request, resource_uri=resource)
        except TokenError as exc:
            setattr(django_request, _TOKEN_ERROR_ATTRIBUTE, exc)
            raise TokenRejected(detail=challenges.unauthorized_body(exc.error, exc.description)) from exc
        except AuthServiceUnavailable as exc:
            raise AuthUnavailable(exc.description) from exc
        if principal is None:
            return None
        set_principal(request, principal)
        return (principal.user if principal.user is not None else AnonymousUser(), principal)

    def authenticate_header(self, request: Request) -> str:
        django_request = _django_request(request)
        error = getattr(django_request, _TOKEN_ERROR_ATTRIBUTE, None)
        return challenges.unauthorized_challenge(
            django_request,
            error=error.error if error is not None else None,
            description=error.description if error is not None else None,
            resource_path=self._resource_path(request),
        )


# ---------------------------------------------------------------------------------------------
# Plain Django views


def error_response(request: HttpRequest, exc: MCPScopesError, *, resource_path: str | None = None) -> HttpResponse:
    """The challenge response for one of our exceptions (401, 403 or 503)."""
    if isinstance(exc, TokenError):
        return challenges.unauthorized_response(
            request, error=exc.error, description=exc.description, resource_path=resource_path, status=exc.status
        )
    if isinstance(exc, InsufficientScope):
        principal = get_principal(request)
        effective = principal.effective_scopes if principal is not None else exc.effective
        report_scope_denied(request, principal=principal, required_scopes=exc.requirement.challenge_scopes(effective))
        return challenges.insufficient_scope_response(
            request, exc.requirement, effective=effective, description=exc.description, resource_path=resource_path
        )
    if isinstance(exc, AuthServiceUnavailable):
        return challenges.service_unavailable_response(request, exc.description)
    raise exc


def authenticate_or_respond(request: HttpRequest, *, resource_path: str | None = None) -> HttpResponse | None:
    """Attach the principal to ``request``; return the 401/503 to send instead, if any."""
    resource = resources.resource_uri(request, resource_path) if resource_path is not None else None
    try:
        principal = authenticate_request(request, resource_uri=resource)
        if principal is None:
            raise MissingToken()
    except (TokenError, AuthServiceUnavailable) as exc:
        return error_response(request, exc, resource_path=resource_path)
    set_principal(request, principal)
    return None


def require_token(view: Callable[..., HttpResponse] | None = None, *, resource_path: str | None = None) -> Any:
    """Decorator for function views: a valid bearer token, or the 401/503 challenge.

    Use as ``@require_token`` or ``@require_token(resource_path="/api")``. The view reads
    ``get_principal(request)``. ``InsufficientScope`` raised inside the view becomes the 403.
    """

    def decorate(func: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refusal = authenticate_or_respond(request, resource_path=resource_path)
            if refusal is not None:
                return refusal
            try:
                return func(request, *args, **kwargs)
            except MCPScopesError as exc:
                return error_response(request, exc, resource_path=resource_path)

        wrapper.mcp_scopes_protected = True  # type: ignore[attr-defined]
        return wrapper

    return decorate(view) if view is not None else decorate


class TokenRequiredMixin:
    """For class-based views: a valid bearer token before ``dispatch``; ``mcp_resource_path`` optional."""

    mcp_scopes_protected = True
    mcp_resource_path: str | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refusal = authenticate_or_respond(request, resource_path=self.mcp_resource_path)
        if refusal is not None:
            return refusal
        try:
            return self.check_principal(request) or super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        except MCPScopesError as exc:
            return error_response(request, exc, resource_path=self.mcp_resource_path)

    def check_principal(self, request: HttpRequest) -> HttpResponse | None:
        """Hook for subclasses (``ScopesRequiredMixin``): a response to send instead, or None."""
        return None
