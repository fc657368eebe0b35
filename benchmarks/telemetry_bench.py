"""What the OpenTelemetry hooks cost one request, off (the default) and on.

Runs, in-process, exactly the hook calls one MCP request makes (the request span, two annotations,
the authentication span and its outcome, the response status) many times, and subtracts the same
loop with nothing in it:

- off: ``MCP_SCOPES["OPENTELEMETRY"]`` False (the default): shared do-nothing objects, and
  ``opentelemetry`` must not be imported by this package (checked here too);
- on, no SDK: the setting on, the API's no-op providers (the ``otel`` extra without an SDK);
- on, SDK: the setting on, opentelemetry-sdk's tracer and meter providers, spans dropped by a
  processor that does nothing (what recording costs before any export).

    python benchmarks/telemetry_bench.py [--requests 200000]

The last line is ``telemetry_off_ns_per_request=<ns>`` (a request costs about 1,000,000 ns here).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _hooks_of_one_request(telemetry) -> None:
    span = telemetry.operation_span()
    if span is telemetry._OFF:  # what traced_view does while off
        with telemetry.authentication_span() as authentication:
            authentication.set(outcome="allowed", client_id="client", token_source="local")
        telemetry.annotate(method="tools/call")
        telemetry.annotate(method="tools/call", operation="whoami")
        return
    with span:
        with telemetry.authentication_span() as authentication:
            authentication.set(outcome="allowed", client_id="client", token_source="local")
        telemetry.annotate(method="tools/call")
        telemetry.annotate(method="tools/call", operation="whoami")
        span.finish(200, "client")


def _nothing(telemetry) -> None:
    return None


def _ns_per_call(function, telemetry, requests: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(requests):
            function(telemetry)
        best = min(best, (time.perf_counter_ns() - start) / requests)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    args, _unknown = parser.parse_known_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.auth_bench_settings")
    from django.conf import settings
    from django.test.utils import override_settings

    from django_mcp_scopes import telemetry

    settings.MCP_SCOPES  # noqa: B018 - configure
    empty = _ns_per_call(_nothing, telemetry, args.requests)
    off = _ns_per_call(_hooks_of_one_request, telemetry, args.requests) - empty
    loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
    if loaded:
        print(f"telemetry off, but opentelemetry was imported: {loaded}", file=sys.stderr)
        return 1
    with override_settings(MCP_SCOPES={"OPENTELEMETRY": True}):
        on_api = _ns_per_call(_hooks_of_one_request, telemetry, args.requests // 10) - empty
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())
        metrics.set_meter_provider(MeterProvider())
        telemetry.reset()
        on_sdk = _ns_per_call(_hooks_of_one_request, telemetry, args.requests // 10) - empty
    print(f"{'hooks of one MCP request':<40} {'ns':>10}")
    print(f"{'off (default)':<40} {off:>10.0f}")
    print(f"{'on, API without SDK (no-op providers)':<40} {on_api:>10.0f}")
    print(f"{'on, opentelemetry-sdk, no exporter':<40} {on_sdk:>10.0f}")
    print(f"telemetry_off_ns_per_request={off:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
