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
    SCHEMA_LINES_SQL,
    TABLES_SQL,
    fingerprint,
    migrations_fingerprint,
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
# line of JSON, {"applied": [...], "schema": "..."}.
STATE_SCRIPT = """SELECT (%(has)s) AS smart_deploy_has_migrations \\gset
\\if :smart_deploy_has_migrations
SELECT json_build_object('applied', (%(applied)s), 'schema', (%(schema)s));
\\else
SELECT json_build_object('applied', '[]'::json, 'schema', (%(schema)s));
\\endif
""" % {"has": HAS_MIGRATIONS_TABLE_SQL, "applied": APPLIED_MIGRATIONS_SQL, "schema": SCHEMA_LINES_SQL}


def database_state(docker: str, container: str, user: str, database: str, with_tables: bool = False) -> dict:
    """Applied migrations, their fingerprint and the schema fingerprint of a database in a container."""
    return server_state(PgServer(docker, container=container, user=user), database, with_tables)


def server_state(server: PgServer, database: str = None, with_tables: bool = False) -> dict:
    """Applied migrations, their fingerprint and the schema fingerprint of ``database`` on ``server``."""
    found = json.loads(server.psql(STATE_SCRIPT, database=database))
    applied = found["applied"]
    state = {
        "applied": applied,
        "applied_count": len(applied),
        "migrations_fingerprint": migrations_fingerprint(applied),
        # stripped as psql's output of SCHEMA_LINES_SQL alone was: fingerprints recorded before stay comparable
        "schema_fingerprint": fingerprint(found["schema"].strip()),
    }
    if with_tables:
        state.update(json.loads(server.psql(TABLES_SQL, database=database)))
    return state


def same_state(one: dict, other: dict) -> bool:
    return (one.get("migrations_fingerprint"), one.get("schema_fingerprint")) == (
        other.get("migrations_fingerprint"),
        other.get("schema_fingerprint"),
    )
