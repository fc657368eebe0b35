"""Scope registry cost: cold build and warm questions (no database, no cache once warm).

Run from the repository root: `python benchmarks/registry.py [number_of_scopes]`.
"""

import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django
from django.conf import settings

settings.DATABASES["default"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from django_mcp_scopes.models import Scope  # noqa: E402
from django_mcp_scopes.registry import scope_registry  # noqa: E402


def main(count: int) -> None:
    call_command("migrate", verbosity=0)
    scopes = Scope.objects.bulk_create(
        Scope(name=f"s{i}", description=f"Scope {i}", is_advertised=i % 10 == 0) for i in range(count)
    )
    # A chain ten deep repeated: s9 -> s8 -> ... -> s0, s19 -> ... -> s10, ...
    Scope.implies.through.objects.bulk_create(
        Scope.implies.through(from_scope=scopes[i], to_scope=scopes[i - 1]) for i in range(count) if i % 10
    )
    scope_registry.invalidate()
    cold = timeit.timeit(scope_registry.snapshot, number=1)
    print(f"scopes={count} cold_build_ms={cold * 1000:.2f}")
    n = 200_000
    top = f"s{count - 1}"
    questions = {
        "expand": lambda: scope_registry.expand([top, "s5"]),
        "satisfies": lambda: scope_registry.satisfies([top], ["s1", top]),
        "baseline": scope_registry.baseline,
        "is_active": lambda: scope_registry.is_active("s42"),
    }
    with CaptureQueriesContext(connection) as queries:
        for name, question in questions.items():
            seconds = timeit.timeit(question, number=n)
            print(f"warm_{name}_us={seconds / n * 1e6:.2f}")
    print(f"warm_db_queries={len(queries)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
