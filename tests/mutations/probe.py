"""The one-line mutations the issue-11 probe found unguarded, each applied alone, then reverted.

``make mutation-probe`` (not part of ``make test``) prints KILLED or SURVIVED per mutant; every one
must be KILLED by ``tests/test_mutation_guards.py``.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

ENDPOINT = "django_mcp_scopes/mcp/endpoint.py"
VIEWS = "django_mcp_scopes/mcp/views.py"

# (label, file, original text, mutated text, pytest -k expression of the guarding test)
MUTANTS = [
    (
        "Decision.allows with no principal",
        ENDPOINT,
        "scoped = scopes is not None and not scopes.any_token",
        "scoped = False",
        "dynamic_requirement",
    ),
    (
        "ScopesRequiredMixin dispatches an unlisted method",
        "django_mcp_scopes/permissions.py",
        "        if declared is None:\n            return HttpResponse(status=405)\n",
        "        if declared is None:\n            return None\n",
        "undeclared_method",
    ),
    (
        "MCPView.origin_allowed by prefix",
        VIEWS,
        'if "*" in allowed or origin in allowed:',
        'if "*" in allowed or any(origin.startswith(value) for value in allowed):',
        "origin",
    ),
    (
        "asgi_scope keeps authorization",
        VIEWS,
        '_DROPPED_HEADERS = frozenset({"authorization", "cookie", "content-length"})',
        '_DROPPED_HEADERS = frozenset({"cookie", "content-length"})',
        "bearer_token",
    ),
    (
        "Principal.has_scopes on raw granted names",
        "django_mcp_scopes/principal.py",
        "return set(names) <= self.effective_scopes",
        "return set(names) <= self.granted_scopes",
        "has_scopes",
    ),
    (
        "MCPEndpoint.decide drops the completion/complete default",
        ENDPOINT,
        "requirement = operation_requirement if requirement is None else requirement & operation_requirement",
        "requirement = operation_requirement",
        "completion_keeps",
    ),
    (
        "_arguments drops the template's variables",
        ENDPOINT,
        'return {"uri": params.get("uri"), **operation.template_arguments}',
        'return {"uri": params.get("uri")}',
        "template_variables",
    ),
]


def main() -> int:
    failures = 0
    for label, path, old, new, keyword in MUTANTS:
        source = pathlib.Path(path)
        original = source.read_text()
        if original.count(old) != 1:
            print(f"STALE: {label}: the original text is no longer in {path} exactly once")
            failures += 1
            continue
        source.write_text(original.replace(old, new))
        try:
            command = [sys.executable, "-m", "pytest", "tests/test_mutation_guards.py", "-q", "-p", "no:randomly"]
            run = subprocess.run([*command, "-k", keyword], capture_output=True, text=True, check=False)
        finally:
            source.write_text(original)
        summary = (run.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"{'KILLED' if run.returncode else 'SURVIVED'}: {label} -> {summary}")
        failures += run.returncode == 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
