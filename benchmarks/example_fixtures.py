"""Prepare an example-project database for ``benchmarks/mcp_bench.py``: migrate, ``setup_demo``, tokens.

Run with the example's settings (``DJANGO_SETTINGS_MODULE=example_project.settings``,
``EXAMPLE_SQLITE_PATH``, ``DJANGO_BASE_URL``) and the checkout to prepare first on ``PYTHONPATH``:

    python benchmarks/example_fixtures.py OUT_DIR COLD_TOKENS [--append]

Writes ``OUT_DIR/warm.txt`` (one token) and ``OUT_DIR/cold.txt`` (``COLD_TOKENS`` tokens, one a line):
real django-oauth-toolkit access tokens of the demo user with ``user:read entries:read``, bound to
``DJANGO_BASE_URL/mcp`` (RFC 8707), valid for a day, stored the way DOT stores them
(``set_token_value``: redacted at rest when the project asks for it, looked up by checksum).
``--append`` adds ``COLD_TOKENS`` more to ``cold.txt`` (the database is already prepared).

``in_process(prefix)``: the same for a benchmark that calls the example in its own process.
"""

from __future__ import annotations

import io
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import django

BASE_URL = "http://127.0.0.1:8000"
# The request make bench sends: a 2026-07-28 stateless tools/call of the example's whoami.
WHOAMI_CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": "whoami",
        "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    },
}


def in_process(prefix: str) -> str:
    """Set this process up as the example (its settings, a fresh SQLite database under /tmp, DEBUG
    off, ``BASE_URL``), prepare it as ``main`` does, and return the warm token."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_BASE_URL": BASE_URL,
            "EXAMPLE_SQLITE_PATH": str(work / "example.sqlite3"),
        }
    )
    main(work / "tokens", 0)
    return (work / "tokens" / "warm.txt").read_text().strip()


def main(out_dir: Path, cold_tokens: int, append: bool = False) -> None:
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model, get_application_model

    try:
        from oauth2_provider.models import set_token_value
    except ImportError:  # django-oauth-toolkit before token redaction at rest

        def set_token_value(instance, raw):  # type: ignore[no-untyped-def]
            instance.token = raw

    if not append:
        call_command("migrate", "--noinput", verbosity=0)
        call_command("setup_demo", "--no-admin", verbosity=0, stdout=io.StringIO())
    user = get_user_model().objects.get(username="demo")
    application_model = get_application_model()
    application, _ = application_model.objects.get_or_create(
        client_id="bench-client",
        defaults={
            "name": "benchmark",
            "client_type": application_model.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": application_model.GRANT_AUTHORIZATION_CODE,
            "redirect_uris": "http://127.0.0.1/callback",
        },
    )
    resource = os.environ["DJANGO_BASE_URL"].rstrip("/") + "/mcp"
    expires = timezone.now() + timedelta(days=1)
    access_token_model = get_access_token_model()

    def new_token() -> tuple[str, object]:
        raw = "bench-" + secrets.token_urlsafe(24)
        row = access_token_model(
            user=user, application=application, scope="user:read entries:read", expires=expires, resource=[resource]
        )
        set_token_value(row, raw)
        return raw, row

    out_dir.mkdir(parents=True, exist_ok=True)
    if not append:
        warm, row = new_token()
        row.save()  # type: ignore[attr-defined]
        (out_dir / "warm.txt").write_text(warm + "\n")
    pool = [new_token() for _ in range(cold_tokens)]
    access_token_model.objects.bulk_create([row for _, row in pool], batch_size=2000)
    with (out_dir / "cold.txt").open("a" if append else "w") as cold:
        cold.write("".join(raw + "\n" for raw, _ in pool))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), append="--append" in sys.argv[3:])
