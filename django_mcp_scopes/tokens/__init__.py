"""Where token facts come from: one module per source, each turning a bearer string into the same facts.

A bearer token is decided by exactly one source, chosen in this order:

1. a JWT (three base64url segments) whose ``iss`` names one of ``MCP_SCOPES["JWT_ISSUERS"]``:
   ``tokens.jwt``, checked against that issuer's JWKS (``tokens.jwks``); never passed on;
2. otherwise, with ``OAUTH2_PROVIDER["RESOURCE_SERVER_INTROSPECTION_URL"]`` set: the remote
   introspection endpoint (``django_mcp_scopes.introspection``);
3. otherwise: django-oauth-toolkit's own AccessToken table.

django-oauth-toolkit's tokens never contain a dot, and a JWT naming a trusted issuer is refused or
accepted by the JWT rules alone, so no kind of token can be taken for another.

The facts (a dict) hold ``source``, ``user_id``, ``client_id``, ``scopes``, ``expires``,
``resources`` (canonical resource bindings) and ``token_id``; JWTs add ``issuer`` and ``claims``.
"""
