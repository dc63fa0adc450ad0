# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Production's migration state, read with psql (module_utils/smart_deploy/pgclient.py runs it: in the
database container, or in a client container of an external server's major version).

No application code runs here: the catalog and django_migrations are read by PostgreSQL's own tools.
"""

from __future__ import annotations

import json
import subprocess

from ansible.module_utils.smart_deploy.pgcatalog import (
    APPLIED_MIGRATIONS_SQL,
    HAS_MIGRATIONS_TABLE_SQL,
    SCHEMA_LINES_JSON_SQL,
    TABLES_SQL,
    history_differences,
    migrations_fingerprint,
    schema_differences,
    schema_fingerprint,
)
from ansible.module_utils.smart_deploy.pgclient import PgServer, PsqlError  # noqa: F401 (PsqlError re-exported)


def docker_ok(docker: str, *args: str) -> bool:
    return subprocess.run([docker, *args], capture_output=True, check=False).returncode == 0


def container_running(docker: str, name: str) -> bool:
    result = subprocess.run([docker, "inspect", "-f", "{{.State.Running}}", name], capture_output=True, text=True, check=False)
    return result.returncode == 0 and result.stdout.strip() == "true"


def psql(docker: str, container: str, user: str, database: str, sql: str) -> str:
    """psql in a database container (kept for callers that only know a container)."""
    return PgServer(docker, container=container, user=user).psql(sql, database=database)


# Applied migrations (when Django's history table exists) and the schema's lines, in one psql run: one
# line of JSON, {"applied": [...], "schema": [line, ...]}.
STATE_SCRIPT = """SELECT (%(has)s) AS smart_deploy_has_migrations \\gset
\\if :smart_deploy_has_migrations
SELECT json_build_object('applied', (%(applied)s), 'schema', (%(schema)s));
\\else
SELECT json_build_object('applied', '[]'::json, 'schema', (%(schema)s));
\\endif
""" % {"has": HAS_MIGRATIONS_TABLE_SQL, "applied": APPLIED_MIGRATIONS_SQL, "schema": SCHEMA_LINES_JSON_SQL}


def database_state(docker: str, container: str, user: str, database: str, with_tables: bool = False, with_lines: bool = False) -> dict:
    """Applied migrations, their fingerprint and the schema fingerprint of a database in a container."""
    return server_state(PgServer(docker, container=container, user=user), database, with_tables, with_lines)


def server_state(server: PgServer, database: str = None, with_tables: bool = False, with_lines: bool = False) -> dict:
    """Applied migrations, their fingerprint and the schema fingerprint of ``database`` on ``server`` (with
    ``with_lines``, the schema's lines too, as ``schema_lines``)."""
    found = json.loads(server.psql(STATE_SCRIPT, database=database))
    applied = found["applied"]
    state = {
        "applied": applied,
        "applied_count": len(applied),
        "migrations_fingerprint": migrations_fingerprint(applied),
        # canonical: a database and a dump of it restored have the same (pgcatalog.canonical_line)
        "schema_fingerprint": schema_fingerprint(found["schema"]),
    }
    if with_lines:
        state["schema_lines"] = found["schema"]
    if with_tables:
        state.update(json.loads(server.psql(TABLES_SQL, database=database)))
    return state


def state_differences(production: dict, copy: dict) -> dict:
    """What differs between two states read ``with_lines``: {"schema": [...], "history": {...}}, both empty when the
    copy is faithful (pgcatalog.schema_differences, history_differences)."""
    return {
        "schema": schema_differences(production.get("schema_lines") or [], copy.get("schema_lines") or []),
        "history": history_differences(production.get("applied") or [], copy.get("applied") or []),
    }


def same_state(one: dict, other: dict) -> bool:
    return (one.get("migrations_fingerprint"), one.get("schema_fingerprint")) == (
        other.get("migrations_fingerprint"),
        other.get("schema_fingerprint"),
    )
