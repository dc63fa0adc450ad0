# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What smart-deploy reads from PostgreSQL's catalog, and the pure decisions made from it.

The SQL runs through ``psql`` in the database's own container (no application code involved).
The functions below it are plain Python: fingerprints, which tables a rehearsal copy needs with
their data, and whether the disk can hold that copy.
"""

from __future__ import annotations

import hashlib
import re
from typing import Optional

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


def human_bytes(size: Optional[int]) -> str:
    """``size`` for people, in binary units (1.5 GiB)."""
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return "%d %s" % (value, unit) if unit == "B" else "%.1f %s" % (value, unit)
        value /= 1024
    return "%d B" % size  # not reached


def disk_check(copy_bytes: int, free: Optional[int], factor: float, margin_bytes: int, path: Optional[str] = None) -> dict:
    """Whether ``free`` bytes hold a copy of ``copy_bytes`` (production's size of the tables copied with
    their rows, indexes included): ``copy_bytes * factor + margin_bytes`` are needed. ``free`` None (it
    could not be read) is not a refusal: ``enough`` is None then."""
    needed = int(copy_bytes * factor) + int(margin_bytes)
    return {
        "path": path,
        "estimate_bytes": int(copy_bytes),
        "factor": factor,
        "margin_bytes": int(margin_bytes),
        "needed_bytes": needed,
        "free_bytes": free,
        "enough": None if free is None else free >= needed,
    }


def disk_refusal(check: dict, tables: int) -> str:
    """The sentence a refused copy fails with: what would be copied, what is needed, what is free, and where."""
    return (
        "not enough free disk for the rehearsal copy: it would copy %s of production (%d tables with their rows, indexes "
        "included); with disk_factor %s and disk_margin_mb %d that needs %s free on %s (Docker's data), which has %s free. "
        "Nothing was created and production is untouched: free disk there (./deploy cleanup) and run again"
        % (
            human_bytes(check["estimate_bytes"]),
            tables,
            check["factor"],
            check["margin_bytes"] // 2**20,
            human_bytes(check["needed_bytes"]),
            check["path"] or "?",
            human_bytes(check["free_bytes"]),
        )  # fmt: skip
    )


SIMPLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def split_qualified(name: str) -> list:
    """The parts of a possibly qualified, possibly quoted SQL name as ``regclass::text`` prints it
    (C(public."Odd.Name") -> [public, Odd.Name]; C("a""b") -> [a"b]); unquoted parts are as written."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(name):
        char = name[i]
        if quoted:
            if char == '"' and name[i + 1 : i + 2] == '"':
                current.append('"')
                i += 1
            elif char == '"':
                quoted = False
            else:
                current.append(char)
        elif char == '"':
            quoted = True
        elif char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    if quoted:
        raise ValueError("unterminated quoted name: %r" % name)
    parts.append("".join(current))
    return parts


def dump_pattern(table: str) -> str:
    """A pg_dump -t/--exclude-table-data pattern matching exactly ``table`` (as regclass prints it)."""
    parts = split_qualified(table)
    if len(parts) == 1:
        parts = ["public"] + parts
    return ".".join(part if SIMPLE_NAME.match(part) else '"%s"' % part.replace('"', '""') for part in parts)
