"""Migration 0003 names the hierarchy's through model without touching the table or its rows."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from django_mcp_scopes.models import Implication, Scope

BEFORE = [("mcp_scopes", "0002_epochs")]
LATEST = [("mcp_scopes", "0004_refusal")]
TABLE = "mcp_scopes_scope_implies"


def _table_shape():
    with connection.cursor() as cursor:
        columns = sorted(
            (column.name, connection.introspection.get_field_type(column.type_code, column))
            for column in connection.introspection.get_table_description(cursor, TABLE)
        )
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    shapes = sorted(
        (tuple(info["columns"]), bool(info["unique"]), bool(info["primary_key"]), bool(info["foreign_key"]))
        for info in constraints.values()
    )
    return columns, shapes


@pytest.mark.django_db(transaction=True)
def test_naming_the_through_model_keeps_the_table_and_every_implication():
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps
        OldScope = old.get_model("mcp_scopes", "Scope")
        read = OldScope.objects.create(name="entries:read")
        write = OldScope.objects.create(name="entries:write")
        admin = OldScope.objects.create(name="entries:admin")
        write.implies.add(read)
        admin.implies.add(write, read)
        shape = _table_shape()

        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(LATEST)
        assert _table_shape() == shape
        assert sorted(Implication.objects.values_list("from_scope__name", "to_scope__name")) == [
            ("entries:admin", "entries:read"),
            ("entries:admin", "entries:write"),
            ("entries:write", "entries:read"),
        ]
        assert Scope.objects.graph().closures["entries:admin"] == {"entries:admin", "entries:write", "entries:read"}
        # Both ways: back to 0002 keeps the rows too.
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(BEFORE)
        assert _table_shape() == shape
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {TABLE}")
            assert cursor.fetchone()[0] == 3
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_naming_migration_runs_no_sql():
    out = StringIO()
    call_command("sqlmigrate", "mcp_scopes", "0003", stdout=out)
    statements = [line for line in out.getvalue().splitlines() if line.strip() and not line.startswith("--")]
    assert statements in ([], ["BEGIN;", "COMMIT;"])
