# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What smart-deploy reads from PostgreSQL's catalog, and the pure decisions made from it.

The SQL runs through ``psql`` in the database's own container (no application code involved).
The functions below it are plain Python: fingerprints, and which tables a rehearsal copy needs
with their data.
"""

from __future__ import annotations

import hashlib
import re

SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema')"

# One line per table, column, constraint and index of the user schemas, sorted: equal text means an
# equal schema. Used as the schema fingerprint and to check that a copy is faithful.
SCHEMA_LINES_SQL = """
SELECT coalesce(string_agg(line, E'\\n' ORDER BY line), '') FROM (
  SELECT format('table %%s', c.oid::regclass) AS line
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname NOT IN %(system)s AND n.nspname NOT LIKE 'pg_toast%%'
  UNION ALL
  SELECT format('column %%s.%%s %%s notnull=%%s default=%%s identity=%%s', c.oid::regclass, a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity)
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
     AND n.nspname NOT IN %(system)s AND n.nspname NOT LIKE 'pg_toast%%'
  UNION ALL
  SELECT format('constraint %%s.%%s %%s', co.conrelid::regclass, co.conname, pg_get_constraintdef(co.oid))
    FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
   WHERE n.nspname NOT IN %(system)s AND co.conrelid <> 0
  UNION ALL
  SELECT format('index %%s%%s', pg_get_indexdef(i.indexrelid), CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN %(system)s AND n.nspname NOT LIKE 'pg_toast%%'
) AS schema_lines
""" % {"system": SYSTEM_SCHEMAS}

# Whether Django's history table exists, then the applied migrations as "app.name", oldest first.
HAS_MIGRATIONS_TABLE_SQL = "SELECT to_regclass('django_migrations') IS NOT NULL"
APPLIED_MIGRATIONS_SQL = "SELECT coalesce(json_agg(app || '.' || name ORDER BY id), '[]') FROM django_migrations"

# {"tables": {name: bytes}, "foreign_keys": [[child, parent], ...], "database_bytes": N}
TABLES_SQL = """
SELECT json_build_object(
  'tables', (SELECT coalesce(json_object_agg(c.oid::regclass::text, pg_total_relation_size(c.oid)), '{}')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN %(system)s AND n.nspname NOT LIKE 'pg_toast%%'),
  'foreign_keys', (SELECT coalesce(json_agg(json_build_array(co.conrelid::regclass::text, co.confrelid::regclass::text)), '[]')
                     FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
                    WHERE co.contype = 'f' AND n.nspname NOT IN %(system)s),
  'database_bytes', pg_database_size(current_database())
)::text
""" % {"system": SYSTEM_SCHEMAS}

# Tables whose rows Django's own machinery reads or writes during migrate (history, post_migrate).
ALWAYS_COPIED = ("django_migrations", "django_content_type", "auth_permission")


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def migrations_fingerprint(applied) -> str:
    return fingerprint("\n".join(sorted(applied)))


def parents_closure(tables, foreign_keys):
    """``tables`` plus every table they reference through foreign keys, transitively: the rows a
    copy needs so that its foreign keys validate."""
    parents = {}
    for child, parent in foreign_keys:
        parents.setdefault(child, set()).add(parent)
    result, todo = set(), list(tables)
    while todo:
        table = todo.pop()
        if table in result:
            continue
        result.add(table)
        todo.extend(parents.get(table, ()))
    return result


def copy_plan(table_bytes: dict, foreign_keys, touched, small_table_bytes: int, always=ALWAYS_COPIED) -> dict:
    """Which tables the rehearsal copy gets with their rows; the others get their schema only.

    ``touched`` is the set of tables the pending migrations read or change, or None when that cannot
    be known (RunPython, RunSQL...): then everything is copied. Small tables are always copied whole:
    they cost nothing and post_migrate handlers or data migrations may read them.
    """
    existing = set(table_bytes)
    if touched is None:
        with_data = set(existing)
        mode = "full"
    else:
        wanted = {t for t in touched if t in existing}
        wanted |= {t for t in always if t in existing}
        wanted |= {t for t, size in table_bytes.items() if size <= small_table_bytes}
        with_data = parents_closure(wanted, foreign_keys) & existing
        mode = "full" if with_data == existing else "partial"
    schema_only = sorted(existing - with_data)
    return {
        "mode": mode,
        "tables_with_data": sorted(with_data),
        "tables_schema_only": schema_only,
        "bytes_with_data": sum(table_bytes[t] for t in with_data),
        "bytes_total": sum(table_bytes.values()),
    }


SIMPLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def dump_pattern(table: str) -> str:
    """A pg_dump -t/--exclude-table-data pattern matching exactly ``table`` (as regclass prints it)."""
    if "." in table and not table.startswith('"'):
        schema, name = table.split(".", 1)
    else:
        schema, name = "public", table
    parts = []
    for part in (schema, name):
        part = part.strip('"')
        parts.append(part if SIMPLE_NAME.match(part) else '"%s"' % part.replace('"', '""'))
    return ".".join(parts)
