"""The authorization endpoint and the login page, as django-oauth-toolkit's and Django's views with changes.

``MCPAuthorizationView`` (DOT's ``AuthorizationView``):

1. The request is validated before anyone is asked to sign in: DOT sends an anonymous user to the
   login page first and only then notices a missing PKCE challenge or an unregistered redirect
   URI. Here a bad request is refused at once (redirected back to the client with the error when
   the client and redirect URI are known, shown on an error page when they are not).
2. PKCE must use ``S256``, ``redirect_uri`` must be sent (so the token request must repeat it), and
   every ``resource`` must be one this project serves (or none, when it serves exactly one); all
   checked before login too.
3. Error redirects carry ``iss`` like successful ones (RFC 9207 section 2).
4. The consent page shows the client's name (unverified for anonymously registered clients), the
   host the code is sent to (with a warning for loopback hosts), and each scope's description and
   what it implies, from the scope registry.
5. Anonymous users go to ``MCP_SCOPES_OAUTH["LOGIN_URL"]``, else the project's ``LOGIN_URL`` when it
   resolves, else the login page these URLs ship (``MCPLoginView``).

Both pages send ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: same-origin`` and ``Cache-Control: no-store``. Not ``no-referrer``: browsers
then send ``Origin: null`` with the page's own form posts, and Django's CSRF check refuses them.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, get_script_prefix, resolve, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_deny
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from django_mcp_scopes.oauth import resources
from django_mcp_scopes.oauth.conf import oauth_settings
from django_mcp_scopes.oauth.registration import is_loopback
from django_mcp_scopes.registry import scope_registry

LOGIN_URL_NAME = "oauth2_provider:mcp-login"


def _with_iss(uri: str, issuer: str) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "iss" for key, _ in query):
        return uri
    return urlunsplit(parts._replace(query=urlencode([*query, ("iss", issuer)])))


def _secure_page(response: HttpResponseBase) -> HttpResponseBase:
    response["X-Content-Type-Options"] = "nosniff"
    # The authorization request (state, PKCE challenge) stays off other origins; same-origin posts
    # keep their Origin header, which Django's CSRF check needs ("no-referrer" sends "null").
    response["Referrer-Policy"] = "same-origin"
    return response


def login_url() -> str:
    """Where the authorization endpoint sends anonymous users."""
    if oauth_settings.LOGIN_URL:
        return str(oauth_settings.LOGIN_URL)
    project_url = resolve_url(settings.LOGIN_URL)
    if project_url.startswith(("http://", "https://")):
        return project_url
    path = urlsplit(project_url).path
    prefix = get_script_prefix()
    if path.startswith(prefix):
        path = "/" + path[len(prefix) :]
    try:
        resolve(path)
    except Http404:
        try:
            return reverse(LOGIN_URL_NAME)
        except NoReverseMatch:
            return project_url
    return project_url


def is_anonymous_client(application: Any) -> bool:
    """Registered by anyone (RFC 7591 without an account, or a Client ID Metadata Document)."""
    source = getattr(application, "registration_source", None)
    sources = getattr(type(application), "RegistrationSource", None)
    if sources is None:
        return False
    return source == sources.CIMD or (source == sources.DCR and application.user_id is None)


@method_decorator([xframe_options_deny, never_cache], name="dispatch")
class MCPAuthorizationView(AuthorizationView):
    template_name = "django_mcp_scopes/oauth/authorize.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return _secure_page(super().dispatch(request, *args, **kwargs))

    def get_login_url(self) -> str:
        return login_url()

    def validate_authorization_request(self, request: HttpRequest) -> tuple[list[str], dict[str, Any]]:
        scopes, credentials = super().validate_authorization_request(request)

        def refuse(error: str, description: str) -> OAuthToolkitError:
            return OAuthToolkitError(
                error=CustomOAuth2Error(error=error, description=description, state=credentials.get("state")),
                redirect_uri=credentials["redirect_uri"],
            )

        if request.GET.get("code_challenge_method") != "S256":
            raise refuse("invalid_request", 'PKCE is required with code_challenge_method "S256".')
        if not request.GET.get("redirect_uri"):
            raise refuse("invalid_request", "redirect_uri is required.")
        requested = request.GET.getlist("resource")
        if (requested and resources.unserved(requested, request)) or (
            not requested and resources.default_resource(request) is None
        ):
            raise refuse("invalid_target", resources.refusal(request, requested))
        return scopes, credentials

    def handle_no_permission(self) -> HttpResponse:
        try:
            self.validate_authorization_request(self.request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        return super().handle_no_permission()

    def redirect(self, redirect_to: str, application: Any) -> HttpResponse:
        if oauth2_settings.COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS:
            redirect_to = _with_iss(redirect_to, oauth2_settings.oauth2_authorization_server_issuer(self.request))
        return super().redirect(redirect_to, application)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["requested_scopes"] = [
            {
                "name": name,
                "description": scope_registry.describe(name) or name,
                "includes": sorted(scope_registry.expand([name]) - {name}),
            }
            for name in kwargs.get("scopes") or []
        ]
        application = kwargs.get("application")
        redirect_host = urlsplit(str(kwargs.get("redirect_uri") or "")).hostname or ""
        context["client_unverified"] = application is not None and is_anonymous_client(application)
        context["redirect_host"] = redirect_host
        context["redirect_is_loopback"] = is_loopback(redirect_host)
        return context


@method_decorator([xframe_options_deny, never_cache], name="dispatch")
class MCPLoginView(LoginView):
    """Django's login view with this package's template, for projects without a login page."""

    template_name = "django_mcp_scopes/oauth/login.html"
    redirect_authenticated_user = False

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return _secure_page(super().dispatch(request, *args, **kwargs))


_NUL_DESCRIPTION = "Request parameters must not contain NUL characters."


def _carries_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    if any("\x00" in value for values in request.GET.lists() for value in values[1]):
        return True
    if request.method not in ("POST", "PUT", "PATCH"):
        return False
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return any("\x00" in value for values in request.POST.lists() for value in values[1])
    if request.content_type == "application/json":
        body = request.body.lower()
        return b"\x00" in body or b"\\u0000" in body
    return False


def refuse_nul_characters(view: Any) -> Any:
    """400 ``invalid_request`` for a parameter holding NUL, before django-oauth-toolkit looks it up.

    PostgreSQL text cannot hold NUL: DOT's lookup of such a client id, code or token raised
    ``DataError`` (a 500 on PostgreSQL, a plain miss on SQLite).
    """

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if _carries_nul(request):
            response = JsonResponse({"error": "invalid_request", "error_description": _NUL_DESCRIPTION}, status=400)
            response["Cache-Control"] = "no-store"
            return response
        return view(request, *args, **kwargs)

    return wrapped
