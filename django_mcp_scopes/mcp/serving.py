"""The fast lane: MCP POSTs served ahead of Django's handler, for WSGI and ASGI. Opt-in.

    # asgi.py
    application = mcp_asgi_application(get_asgi_application())
    # wsgi.py
    application = mcp_wsgi_application(get_wsgi_application())

A POST whose path resolves (Django's URL resolver, the script prefix as Django's handler takes it)
to an MCP endpoint view goes straight to that view: no project middleware, no second URL
resolution (the resolution is cached per path, for MCP endpoints only). Everything else goes to
the wrapped application unchanged: other methods and paths, lifespan and websocket scopes.

Under ASGI the lane also skips Django's per-request disconnect listener and the ``request_started``
/ ``request_finished`` signals. The async view answers a warm token with no query and no thread;
what needs the database (a cold token, a message whose check may query) takes the view's one hop
to a thread, where the lane brackets it with ``close_old_connections()`` as Django's request cycle
would. An insecure request under ``SECURE_SSL_REDIRECT``, or any request under ``ATOMIC_REQUESTS``,
goes to Django with the body already read replayed. A body over ``MCP_SCOPES["MAX_BODY_BYTES"]``
is refused on the lane by the view (413, or its earlier refusal), with nothing read past the limit.

Under WSGI the lane sends ``request_started`` and, when the server closes the response,
``request_finished`` as Django's ``WSGIHandler`` does (connection care and the refusal record stay
as they are); it skips the middleware and the URL resolution.

What is kept: every check of the view (Host, Origin, body limits, authentication, scopes), Django's
answer to an exception (``response_for_exception``: 400 for a disallowed Host, the project's 500
otherwise, logged on ``django.request``), the ``django.request`` warning for 4xx answers, and the
headers ``SecurityMiddleware`` adds to a response when it is installed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_path_info, get_script_name
from django.core.signals import setting_changed
from django.db import connections
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase, HttpResponseServerError
from django.urls import Resolver404, get_resolver, set_script_prefix, set_urlconf
from django.urls.resolvers import ResolverMatch
from django.utils.log import log_response

from django_mcp_scopes import refusals
from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.mcp.database import on_fast_lane, with_connection_care

# Importable before django.setup() (an asgi.py / wsgi.py imports it at the top): the views, which
# import models, are imported on the first request.

__all__ = ["mcp_asgi_application", "mcp_wsgi_application"]

logger = logging.getLogger("django_mcp_scopes.mcp")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# At most this many paths keep their resolution (an endpoint mounted under a path converter has
# one per value); past it, each request to a new path is resolved again.
CACHE_LIMIT = 256
_SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"


def mcp_asgi_application(application: ASGIApp, *, paths: Iterable[str] | None = None) -> ASGIApp:
    """``application`` (Django's ASGI application) with MCP POSTs served ahead of it.

    ``paths``: only these paths (as Django's ``request.path_info``, e.g. ``["/mcp"]``) take the
    lane; by default every path that resolves to an MCP endpoint does.
    """
    return _ASGILane(application, _checked_paths(paths))


def mcp_wsgi_application(application: Any, *, paths: Iterable[str] | None = None) -> Any:
    """``application`` (Django's WSGI application) with MCP POSTs served ahead of its middleware.

    ``paths`` as for ``mcp_asgi_application``.
    """
    return _WSGILane(application, _checked_paths(paths))


def _checked_paths(paths: Iterable[str] | None) -> frozenset[str] | None:
    if paths is None:
        return None
    if isinstance(paths, str):
        raise ImproperlyConfigured(f"paths= takes a list of paths, for example [{paths!r}].")
    checked = frozenset(paths)
    for path in checked:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ImproperlyConfigured(f"paths= holds paths starting with '/' (as request.path_info): not {path!r}.")
    return checked


class _Target:
    """What a path resolves to: the URL match of an MCP endpoint's view."""

    __slots__ = ("match",)

    def __init__(self, match: ResolverMatch) -> None:
        self.match = match

    def fresh_match(self) -> ResolverMatch:
        """A copy of the cached match for one request: what a view or a tool changes on
        ``request.resolver_match`` stays with that request."""
        fresh = ResolverMatch.__new__(ResolverMatch)
        fresh.__dict__.update(self.match.__dict__)
        for name in ("kwargs", "captured_kwargs", "extra_kwargs"):
            value = getattr(self.match, name, None)
            if isinstance(value, dict):
                setattr(fresh, name, dict(value))
        return fresh


class _Routes:
    """The MCP endpoint each path resolves to, in one serving mode; only MCP endpoints are kept."""

    def __init__(self, paths: frozenset[str] | None, *, is_async: bool) -> None:
        self._paths = paths
        self._is_async = is_async
        self._resolver: Any = None
        self._cache: dict[str, _Target] = {}
        self._warned: set[str] = set()

    def target(self, path_info: str) -> _Target | None:
        if self._paths is not None and path_info not in self._paths:
            return None
        resolver = get_resolver()
        if resolver is not self._resolver:  # another ROOT_URLCONF, or the URL caches were cleared
            self._cache = {}
            self._resolver = resolver
        found = self._cache.get(path_info)
        if found is not None:
            return found
        try:
            match = resolver.resolve(path_info)
        except Resolver404:
            match = None
        target = self._target_of(match) if match is not None else None
        if target is None:
            if self._paths is not None and path_info not in self._warned:
                self._warned.add(path_info)
                logger.warning(
                    "%s is in the fast lane's paths but does not resolve to an MCP endpoint (%s) here; "
                    "Django's handler serves it.",
                    path_info,
                    "AsyncMCPView" if self._is_async else "MCPView",
                )
            return None
        if len(self._cache) < CACHE_LIMIT:
            self._cache[path_info] = target
        return target

    def _target_of(self, match: ResolverMatch) -> _Target | None:
        from django_mcp_scopes.mcp.views import AsyncMCPView, MCPView

        func = match.func
        view_class = getattr(func, "view_class", None)
        if getattr(func, "mcp_endpoint", None) is None or not isinstance(view_class, type):
            return None
        if not issubclass(view_class, MCPView) or issubclass(view_class, AsyncMCPView) != self._is_async:
            return None  # Django adapts a view of the other mode; the lane does not
        return _Target(match)


def _lane_refused(request: HttpRequest) -> bool:
    """Requests Django's handler must serve whatever the endpoint: an SSL redirect, atomic requests."""
    if settings.SECURE_SSL_REDIRECT and not request.is_secure():
        return True
    return any(database.get("ATOMIC_REQUESTS") for database in connections.settings.values())


_security: list[Any] = []  # [the SecurityMiddleware the lane applies, or None], built on first use


@receiver(setting_changed, dispatch_uid="mcp_scopes_fast_lane_settings")
def _forget_security(**kwargs: Any) -> None:
    _security.clear()


def _secured(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """The headers Django's ``SecurityMiddleware`` adds, when the project installs it."""
    if not _security:
        from django.middleware.security import SecurityMiddleware

        installed = _SECURITY_MIDDLEWARE in settings.MIDDLEWARE
        _security[:] = [SecurityMiddleware(_never_called) if installed else None]
    middleware = _security[0]
    if middleware is not None:
        response = middleware.process_response(request, response)
    return response


def _never_called(request: HttpRequest) -> HttpResponseBase:  # pragma: no cover - only process_response is used
    raise AssertionError("The fast lane uses SecurityMiddleware.process_response only.")


def _exception_response(request: HttpRequest, exc: Exception) -> HttpResponseBase:
    """Django's answer to an exception (400 for a disallowed Host, the project's 500, ...)."""
    try:
        return response_for_exception(request, exc)
    except Exception:
        # As ASGIHandler.handle_uncaught_exception: the 500 handler itself failed.
        logger.exception("The fast lane could not build Django's answer to an exception")
        return HttpResponseServerError("Internal Server Error", content_type="text/plain")


def _log(request: HttpRequest, response: HttpResponseBase) -> None:
    log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)  # type: ignore[arg-type]


# --- ASGI --------------------------------------------------------------------------------------


class _RequestTools(ASGIHandler):
    """``ASGIHandler``'s request and response methods, without its middleware (not an application)."""

    def __init__(self) -> None:  # no load_middleware(): only create_request and send_response are used
        pass


class _ASGILane:
    def __init__(self, application: ASGIApp, paths: frozenset[str] | None) -> None:
        self.application = application
        self._routes = _Routes(paths, is_async=True)
        self._tools: ASGIHandler = application if isinstance(application, ASGIHandler) else _RequestTools()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.application(scope, receive, send)
        try:
            script_name = get_script_prefix(scope)
            path_info = scope["path"].removeprefix(script_name) if script_name else scope["path"]  # as ASGIRequest
            target = self._routes.target(path_info)
        except Exception:
            target = None  # Django resolves it again and answers its own way
        if target is None:
            return await self.application(scope, receive, send)
        await self._serve(target, scope, receive, send)

    async def _serve(self, target: _Target, scope: Scope, receive: Receive, send: Send) -> None:
        limit = mcp_scopes_settings.MAX_BODY_BYTES
        if _declared_length(scope) > limit:
            body, complete = b"", False  # the view refuses it before reading anything
        else:
            read = await _read_body(receive, limit)
            if read is None:
                return  # the client went away (as Django's handler does)
            body, complete = read
        try:
            request = self._request(target, scope, body)
        except Exception:
            request = None  # Django's handler answers it as it would without the lane
        if request is None:
            return await self.application(scope, _replaying(receive, body, complete), send)
        response: HttpResponseBase | None = None
        # Thread hops of this request (the view's, the async ORM's, a tool's sync_to_async) get a
        # thread of their own, as under Django's handler.
        async with ThreadSensitiveContext() as thread_context:
            token = on_fast_lane.set(True)
            try:
                response = await self._respond(target, request)
                await self._tools.send_response(response, send)
            finally:
                on_fast_lane.reset(token)
                if _hopped(thread_context):
                    await sync_to_async(_finish_in_thread, thread_sensitive=True)(response)
        if refusals.flush_due():
            # Django would write them on request_finished, which the lane does not send.
            await sync_to_async(with_connection_care(refusals.flush), thread_sensitive=False)()

    def _request(self, target: _Target, scope: Scope, body: bytes) -> HttpRequest | None:
        set_script_prefix(get_script_prefix(scope))
        request, _ = self._tools.create_request(scope, io.BytesIO(body))
        if request is None or _lane_refused(request):
            return None
        request.resolver_match = target.fresh_match()
        return request

    async def _respond(self, target: _Target, request: HttpRequest) -> HttpResponseBase:
        match = target.match
        set_urlconf(settings.ROOT_URLCONF)
        try:
            response = await match.func(request, *match.args, **match.kwargs)
        except Exception as exc:
            response = await sync_to_async(_exception_response, thread_sensitive=False)(request, exc)
        try:
            response = _secured(request, response)
        except Exception as exc:
            response = await sync_to_async(_exception_response, thread_sensitive=False)(request, exc)
        if response.status_code >= 400:
            await sync_to_async(_log, thread_sensitive=False)(request, response)
        return response


def _hopped(thread_context: ThreadSensitiveContext) -> bool:
    """Whether anything of this request ran in its thread-sensitive thread (asgiref keeps each
    context's executor in this mapping; should it be gone, assume something did)."""
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    return executors is None or thread_context in executors


def _finish_in_thread(response: HttpResponseBase | None) -> None:
    """End the request in the thread its database work ran in, as Django's ASGI handler does
    (``response.close()``: its closers and ``request_finished``, with ``close_old_connections``),
    then close that thread's connections: the thread ends with the request, a connection kept
    open there would only wait for the garbage collector."""
    try:
        if response is not None:
            response.close()
    finally:
        connections.close_all()


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # as the view reads it
    return 0


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool] | None:
    """The body up to the first chunk past ``limit``, and whether that was all of it; None on a disconnect."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            chunks.append(chunk)
            size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def _replaying(receive: Receive, body: bytes, complete: bool) -> Receive:
    """``receive`` that first gives back the body the lane already read."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replay


# --- WSGI --------------------------------------------------------------------------------------


class _WSGILane:
    def __init__(self, application: Any, paths: frozenset[str] | None) -> None:
        self.application = application
        self._routes = _Routes(paths, is_async=False)
        handler = application if isinstance(application, WSGIHandler) else None
        self._handler_class: type[WSGIHandler] = type(handler) if handler is not None else WSGIHandler
        self._request_class: type[WSGIRequest] = handler.request_class if handler is not None else WSGIRequest

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") != "POST":
            return self.application(environ, start_response)
        try:
            target = self._routes.target(get_path_info(environ) or "/")  # as WSGIRequest
            request = self._request_class(environ) if target is not None else None
            if request is not None and _lane_refused(request):
                request = None
        except Exception:
            target = request = None  # Django's handler answers it as it would without the lane
        if target is None or request is None:
            return self.application(environ, start_response)
        # As WSGIHandler.__call__, with the view called directly.
        set_script_prefix(get_script_name(environ))
        signals.request_started.send(sender=self._handler_class, environ=environ)
        request.resolver_match = target.fresh_match()
        response = self._respond(target, request)
        response._handler_class = self._handler_class  # type: ignore[attr-defined]  # close() sends request_finished
        status = f"{response.status_code} {response.reason_phrase}"
        response_headers = [
            *response.items(),
            *(("Set-Cookie", cookie.output(header="")) for cookie in response.cookies.values()),
        ]
        start_response(status, response_headers)
        return response

    def _respond(self, target: _Target, request: HttpRequest) -> HttpResponseBase:
        match = target.match
        set_urlconf(settings.ROOT_URLCONF)
        try:
            response = match.func(request, *match.args, **match.kwargs)
        except Exception as exc:
            response = _exception_response(request, exc)
        try:
            response = _secured(request, response)
        except Exception as exc:
            response = _exception_response(request, exc)
        response._resource_closers.append(request.close)  # type: ignore[attr-defined]
        if response.status_code >= 400:
            _log(request, response)
        return response
