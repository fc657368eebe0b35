"""What a caller may do: hierarchy-aware scope permissions for DRF and plain Django views.

DRF permission classes (``BasePermission`` subclasses, so ``&``, ``|`` and ``~`` compose):

- ``HasScopes``: the view's ``get_required_scopes(request, view)`` or ``required_scopes`` (a string
  of space-separated names, a list of names, a list of lists for alternatives, or a
  ``ScopeRequirement``);
- ``HasAlternativeScopes``: ``required_alternate_scopes``, django-oauth-toolkit's OAS form
  (``{"GET": [["read"]], "POST": [["write"], ["admin"]]}``) or a plain list of alternatives;
- ``HasScopesByMethod``: ``required_scopes_by_method = {"GET": ..., "POST": ...}`` (HEAD falls
  back to GET; a method not listed is refused);
- ``HasValidToken``: any accepted token, no scope needed.

``~HasScopes`` (any of the scope classes but ``HasValidToken``) means "a valid token that lacks
the scopes", never "any caller without a token": DRF's plain NOT would let anonymous callers in.

Scopes are checked against ``Principal.effective_scopes``: a broader granted scope satisfies a
narrower requirement, an inactive scope grants nothing. A view that declares no requirement
raises ``ImproperlyConfigured`` (never an open door).

How the 403 challenge survives composition: ``has_permission`` never raises for a missing scope
(that would break ``|`` and ``~``); it returns False and records the unmet requirement on the
request. When the final decision is a denial, DRF reads ``permission.message`` (uncomposed) and
that raises ``ScopeDenied``, a ``PermissionDenied`` with ``auth_header`` and the JSON body. For
composed permissions DRF raises a plain ``PermissionDenied``; set
``REST_FRAMEWORK["EXCEPTION_HANDLER"] = "django_mcp_scopes.permissions.exception_handler"`` (or use
``ScopeChallengeMixin`` on the view) to turn it into the same challenge, naming the recorded
requirements as alternatives.

Plain Django views: ``scopes_required(...)`` decorator and ``ScopesRequiredMixin``. Code that
decides at run time calls ``require_scopes(request, "a", "b")``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.permissions import (
    BasePermission,
    BasePermissionMetaclass,
)
from rest_framework.views import exception_handler as drf_exception_handler

from django_mcp_scopes import challenges
from django_mcp_scopes.authentication import (
    AuthUnavailable,
    TokenRequiredMixin,
    _django_request,
    _view_resource_path,
    error_response,
    require_token,
)
from django_mcp_scopes.exceptions import AuthServiceUnavailable, InsufficientScope, MissingToken
from django_mcp_scopes.principal import Principal, get_principal
from django_mcp_scopes.ratelimits import check_drf_request
from django_mcp_scopes.requirements import ScopeRequirement, coerce_requirement
from django_mcp_scopes.signals import report_scope_denied

_DENIALS_ATTRIBUTE = "_mcp_scope_denials"


class ScopeDenied(InsufficientScope, drf_exceptions.PermissionDenied):
    """403 ``insufficient_scope``: an ``InsufficientScope`` DRF renders with its challenge.

    ``auth_header`` is the ``WWW-Authenticate`` value, ``detail`` the JSON body.
    """

    status_code = 403
    default_code = "insufficient_scope"

    def __init__(
        self,
        request: HttpRequest,
        requirement: ScopeRequirement,
        *,
        effective: frozenset[str] = frozenset(),
        description: str | None = None,
        resource_path: str | None = None,
    ) -> None:
        InsufficientScope.__init__(self, requirement, description, effective)
        body = challenges.insufficient_scope_body(requirement, effective=effective, description=description)
        drf_exceptions.PermissionDenied.__init__(self, detail=body, code="insufficient_scope")
        self.auth_header = challenges.insufficient_scope_challenge(
            request, requirement, effective=effective, description=description, resource_path=resource_path
        )


def scope_denied(
    request: Any,
    principal: Principal | None,
    requirement: ScopeRequirement,
    *,
    description: str | None = None,
    resource_path: str | None = None,
) -> ScopeDenied:
    """Report the denial (signal, security log) and build the exception to raise."""
    django_request = _django_request(request)
    effective = principal.effective_scopes if principal is not None else frozenset()
    report_scope_denied(django_request, principal=principal, required_scopes=requirement.challenge_scopes(effective))
    return ScopeDenied(
        django_request, requirement, effective=effective, description=description, resource_path=resource_path
    )


# ---------------------------------------------------------------------------------------------
# Reading requirements from views


def _freeze(value: Any) -> Any:
    if isinstance(value, (str, ScopeRequirement)):
        return value
    if isinstance(value, Iterable):
        return tuple(_freeze(item) for item in value)
    return value


@functools.lru_cache(maxsize=1024)
def _coerce_cached(frozen: Any) -> ScopeRequirement:
    return _checked_requirement(frozen)


def _checked_requirement(value: Any) -> ScopeRequirement:
    requirement = coerce_requirement(value)
    if requirement.is_empty and not isinstance(value, ScopeRequirement):
        # "" or [[]] would read as "no scope needed": a typo must not open the door.
        raise ImproperlyConfigured(
            f"{value!r} is an empty scope requirement; use HasValidToken when any valid token may pass."
        )
    return requirement


def as_requirement(value: Any) -> ScopeRequirement:
    """``coerce_requirement`` with a cache, so a view's declaration is parsed once, not per request.

    An empty requirement (``""``, ``[[]]``) is refused: use ``HasValidToken`` for "any token".
    """
    try:
        return _coerce_cached(_freeze(value))
    except TypeError:  # unhashable member: parse every time
        return _checked_requirement(value)


def _method_entry(mapping: Any, method: str, attribute: str, view: Any) -> Any:
    if not isinstance(mapping, dict):
        raise ImproperlyConfigured(f"{type(view).__name__}.{attribute} must be a dict keyed by HTTP method.")
    entries = {str(key).upper(): value for key, value in mapping.items()}
    if method in entries:
        return entries[method]
    if method == "HEAD" and "GET" in entries:
        return entries["GET"]
    return None


def _serves(view: Any, method: str) -> bool:
    """Whether ``view`` has a handler of its own for ``method`` (DRF's automatic OPTIONS is none)."""
    name = method.lower()
    if name not in getattr(view, "http_method_names", ()):
        return False
    handler = getattr(type(view), name, None)
    if handler is None:
        return False
    from django.views import View
    from rest_framework.views import APIView

    return name != "options" or handler not in (View.options, APIView.options)


def _refuse_unserved_method(view: Any, method: str, declared: dict[str, Any]) -> None:
    """405 naming the declared methods the view serves when it has no handler for ``method``:
    no scope could make it work. A handler left undeclared stays a plain 403 (fail closed)."""
    if _serves(view, method):
        return
    allowed = [name for name in (str(key).upper() for key in declared) if _serves(view, name)]
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.append("HEAD")
    headers = getattr(view, "headers", None)
    if isinstance(headers, dict):
        headers["Allow"] = ", ".join(allowed)  # DRF's finalize_response applies view.headers to the 405
    raise drf_exceptions.MethodNotAllowed(method)


class _ScopePermissionMetaclass(BasePermissionMetaclass):
    def __invert__(cls) -> Any:
        # DRF's NOT alone would turn "no token, hence not the scopes" into a grant. A scope
        # permission means nothing without a token: ~HasScopes is "a valid token that lacks them".
        negated = super().__invert__()
        if issubclass(cls, HasValidToken):  # type: ignore[arg-type]
            return negated
        return HasValidToken & negated


class _ScopePermission(BasePermission, metaclass=_ScopePermissionMetaclass):
    """Shared machinery: look up the requirement, check it, record the denial."""

    _denial: tuple[Any, Principal, ScopeRequirement, str | None] | None = None
    _unauthenticated_request: Any = None

    def get_requirement(self, request: Any, view: Any) -> ScopeRequirement | None:
        """The requirement for this request; None refuses it outright (e.g. an unlisted method)."""
        raise NotImplementedError

    def has_permission(self, request: Any, view: Any) -> bool:
        self._denial = None
        self._unauthenticated_request = None
        requirement = self.get_requirement(request, view)
        principal = get_principal(request)
        if principal is None:
            self._unauthenticated_request = request
            return False
        if requirement is None:
            return False
        check_drf_request(request, principal)  # MCP_SCOPES["RATE_LIMITS"]: 429 with Retry-After
        try:
            effective = principal.effective_scopes
        except DatabaseError as exc:
            # The scope table cannot be read: 503 and Retry-After, never a 500 or a grant.
            raise AuthUnavailable(AuthServiceUnavailable().description) from exc
        if requirement.is_satisfied_by(effective):
            return True
        path = _view_resource_path(view)
        self._denial = (request, principal, requirement, path)
        denials = getattr(_django_request(request), _DENIALS_ATTRIBUTE, None)
        if denials is None:
            denials = []
            setattr(_django_request(request), _DENIALS_ATTRIBUTE, denials)
        denials.append((principal, requirement, path))
        return False

    @property
    def message(self) -> Any:
        # DRF reads ``permission.message`` only for the permission that made the final decision
        # (never inside ``&``, ``|``, ``~``): the moment to raise the challenge.
        if self._denial is not None:
            request, principal, requirement, path = self._denial
            raise scope_denied(request, principal, requirement, resource_path=path)
        request = self._unauthenticated_request
        if request is not None and getattr(request, "authenticators", None) and not request.successful_authenticator:
            raise drf_exceptions.NotAuthenticated(detail=challenges.unauthorized_body())
        return "A valid access token with the required scopes is needed."


class HasValidToken(_ScopePermission):
    """Any token our authentication accepted; no scope needed."""

    def get_requirement(self, request: Any, view: Any) -> ScopeRequirement | None:
        return ScopeRequirement((frozenset(),))


class HasScopes(_ScopePermission):
    """All of ``required_scopes`` (or any one alternative, when it is a list of lists)."""

    def get_requirement(self, request: Any, view: Any) -> ScopeRequirement | None:
        getter = getattr(view, "get_required_scopes", None)
        if callable(getter):
            return as_requirement(getter(request, view))
        value = getattr(view, "required_scopes", None)
        if value is None:
            raise ImproperlyConfigured(
                f"{type(view).__name__} uses HasScopes but declares no required_scopes or get_required_scopes()."
            )
        return as_requirement(value)


class HasAlternativeScopes(_ScopePermission):
    """Any one of ``required_alternate_scopes`` (per method, django-oauth-toolkit's OAS form)."""

    def get_requirement(self, request: Any, view: Any) -> ScopeRequirement | None:
        value = getattr(view, "required_alternate_scopes", None)
        if value is None:
            raise ImproperlyConfigured(
                f"{type(view).__name__} uses HasAlternativeScopes but declares no required_alternate_scopes."
            )
        if isinstance(value, dict):
            entry = _method_entry(value, request.method.upper(), "required_alternate_scopes", view)
            if entry is None:
                _refuse_unserved_method(view, request.method.upper(), value)
                return None
            value = entry
        if isinstance(value, ScopeRequirement):
            return value
        if not value:
            return None  # no alternative at all: nothing can satisfy it (never "no scope needed")
        if isinstance(value, str):
            return as_requirement(value)  # "a b": all of these names, never its characters
        # A list of alternative sets; a single set of names is one alternative.
        alternatives = [value] if all(isinstance(item, str) for item in value) else value
        return as_requirement([list(alternative) for alternative in alternatives])


class HasScopesByMethod(_ScopePermission):
    """``required_scopes_by_method[request.method]`` (any requirement form)."""

    def get_requirement(self, request: Any, view: Any) -> ScopeRequirement | None:
        value = getattr(view, "required_scopes_by_method", None)
        if value is None:
            raise ImproperlyConfigured(
                f"{type(view).__name__} uses HasScopesByMethod but declares no required_scopes_by_method."
            )
        entry = _method_entry(value, request.method.upper(), "required_scopes_by_method", view)
        if entry is None:
            _refuse_unserved_method(view, request.method.upper(), value)
            return None
        return as_requirement(entry)


def _recorded_requirement(request: Any) -> tuple[Principal, ScopeRequirement, str | None] | None:
    denials = getattr(_django_request(request), _DENIALS_ATTRIBUTE, None)
    if not denials:
        return None
    principal, requirement, path = denials[0]
    for _other_principal, other, _path in denials[1:]:
        requirement = requirement | other
    return principal, requirement, path


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF exception handler: composed scope denials get the challenge; our errors get theirs.

    ``REST_FRAMEWORK = {"EXCEPTION_HANDLER": "django_mcp_scopes.permissions.exception_handler"}``.
    """
    request = context.get("request")
    if request is not None:
        if isinstance(exc, drf_exceptions.PermissionDenied) and not isinstance(exc, ScopeDenied):
            recorded = _recorded_requirement(request)
            if recorded is not None:
                principal, requirement, path = recorded
                exc = scope_denied(request, principal, requirement, resource_path=path)
        elif isinstance(exc, InsufficientScope) and not isinstance(exc, ScopeDenied):
            exc = scope_denied(
                request,
                get_principal(request),
                exc.requirement,
                description=exc.description,
                resource_path=_view_resource_path(context.get("view")),
            )
    return drf_exception_handler(exc, context)


class ScopeChallengeMixin:
    """For DRF views when the exception handler cannot be set globally."""

    def get_exception_handler(self) -> Callable[..., Any]:
        return exception_handler


# ---------------------------------------------------------------------------------------------
# Decisions in code


def require_scopes(
    request_or_principal: Any,
    *names: str,
    requirement: ScopeRequirement | None = None,
    description: str | None = None,
) -> Principal:
    """Check scopes from code (e.g. from a tool's arguments); return the principal.

    Raises ``MissingToken`` without a principal and, when scopes are missing, ``ScopeDenied``
    (given a request: DRF renders it as the 403 challenge; ``require_token``/``scopes_required``
    views do too) or ``InsufficientScope`` (given a principal). Pass names (all needed) or a
    ``requirement`` (alternatives).
    """
    if requirement is None:
        if not names:
            raise ImproperlyConfigured("require_scopes() needs scope names or a requirement.")
        requirement = as_requirement(list(names))
    elif names:
        requirement = requirement & as_requirement(list(names))
    if isinstance(request_or_principal, Principal):
        principal: Principal | None = request_or_principal
        request = None
    else:
        request = request_or_principal
        principal = get_principal(request)
    if principal is None:
        raise MissingToken()
    effective = principal.effective_scopes
    if requirement.is_satisfied_by(effective):
        return principal
    if request is None:
        raise InsufficientScope(requirement, description, effective)
    view = (getattr(request, "parser_context", None) or {}).get("view")
    raise scope_denied(
        request, principal, requirement, description=description, resource_path=_view_resource_path(view)
    )


# ---------------------------------------------------------------------------------------------
# Plain Django views


def _check_requirement(request: HttpRequest, requirement: ScopeRequirement, path: str | None) -> HttpResponse | None:
    principal = get_principal(request)
    if principal is None:  # pragma: no cover - authentication ran first
        return error_response(request, MissingToken(), resource_path=path)
    try:
        effective = principal.effective_scopes
    except DatabaseError:
        return error_response(request, AuthServiceUnavailable(), resource_path=path)
    if requirement.is_satisfied_by(effective):
        return None
    return error_response(request, InsufficientScope(requirement, None, effective), resource_path=path)


def scopes_required(
    *names: str, any_of: Iterable[Iterable[str]] | None = None, resource_path: str | None = None
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Decorator for function views: a valid token holding ``names`` (or one set of ``any_of``).

    ``@scopes_required("notes:read")``, ``@scopes_required(any_of=[["a"], ["b", "c"]])``.
    """
    if names and any_of is not None:
        requirement = as_requirement(list(names)) & ScopeRequirement.any_of(*any_of)
    elif any_of is not None:
        requirement = ScopeRequirement.any_of(*any_of)
    elif names:
        requirement = as_requirement(list(names))
    else:
        raise ImproperlyConfigured("scopes_required() needs scope names or any_of=[...].")

    def decorate(func: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(func)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refusal = _check_requirement(request, requirement, resource_path)
            return refusal if refusal is not None else func(request, *args, **kwargs)

        # require_token authenticates first and turns errors raised in the view into challenges.
        wrapper = require_token(checked, resource_path=resource_path)
        wrapper.mcp_required_scopes = requirement
        return wrapper  # type: ignore[no-any-return]

    return decorate


class ScopesRequiredMixin(TokenRequiredMixin):
    """For class-based views: ``required_scopes`` (any requirement form) or ``get_required_scopes()``;
    ``required_scopes_by_method`` works too."""

    required_scopes: Any = None
    required_scopes_by_method: dict[str, Any] | None = None

    def get_required_scopes(self) -> Any:
        request = self.request  # type: ignore[attr-defined]
        if self.required_scopes_by_method is not None:
            entry = _method_entry(
                self.required_scopes_by_method, request.method.upper(), "required_scopes_by_method", self
            )
            if entry is None:
                return None
            return entry
        if self.required_scopes is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} uses ScopesRequiredMixin but declares no required_scopes."
            )
        return self.required_scopes

    def check_principal(self, request: HttpRequest) -> HttpResponse | None:
        declared = self.get_required_scopes()
        if declared is None:
            return HttpResponse(status=405)
        return _check_requirement(request, as_requirement(declared), self.mcp_resource_path)
