"""A LocMem cache that can be switched to fail like an unreachable server (for unit tests).

The fault suite (tests/faults/) uses a real Redis that really stops; this stands in for it where a
test needs to count calls or flip the fault inside one process.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.locmem import LocMemCache

calls: list[str] = []
down = False


class FlakyCache(LocMemCache):
    def _maybe_fail(self, operation: str) -> None:
        calls.append(operation)
        if down:
            raise ConnectionError(f"cache down ({operation})")

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_fail("get")
        return super().get(*args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_fail("add")
        return super().add(*args, **kwargs)

    def set_many(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_fail("set_many")
        return super().set_many(*args, **kwargs)

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_fail("delete_many")
        return super().delete_many(*args, **kwargs)
