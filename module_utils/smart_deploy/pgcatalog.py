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

# One line per table, column, constraint and index of the user schemas: equal lines mean an equal schema. Used
# as the schema fingerprint (schema_fingerprint: in their canonical form) and to check that a copy is faithful.
SCHEMA_LINES_QUERY = """
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
""" % {"system": SYSTEM_SCHEMAS}
# The lines as one text, sorted (what fingerprints were made from before they were canonical)...
SCHEMA_LINES_SQL = "SELECT coalesce(string_agg(line, E'\\n' ORDER BY line), '') FROM (%s) AS schema_lines" % SCHEMA_LINES_QUERY
# ... and as a JSON array in the same order: one line each, whatever newlines a literal of a definition holds.
SCHEMA_LINES_JSON_SQL = "SELECT coalesce(json_agg(line ORDER BY line), '[]') FROM (%s) AS schema_lines" % SCHEMA_LINES_QUERY

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


# --- The schema's lines in a form a dump and restore leave unchanged -------------------------------------------
#
# PostgreSQL prints an expression from its parsed tree, and pg_restore parses that text again. For one construct the
# second parse gives another tree, printed differently: an array constructor cast to an array type. A
# ``status IN ('a', 'b')`` on a varchar column (Django's ``Q(status__in=[...])`` in a partial unique index, a check
# constraint, a generated column) is stored as
#     (status)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[])
# and, restored from that text, the parser pushes the cast into the constructor's elements:
#     (status)::text = ANY (ARRAY[('a'::character varying)::text, ('b'::character varying)::text])
# The same values, columns and operators: PostgreSQL 15's own round trip (its result is a fixed point: a second dump
# and restore prints it the same). canonical_line() writes the first form as the second; nothing else changes, so
# a different predicate, column, type or a missing object still differs, and a schema without that construct keeps
# the fingerprint it always had.

_STRING = re.compile(r"[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'", re.S)
_IDENTIFIER = re.compile(r'"(?:[^"]|"")*"')
_WORD = r'(?:"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*)'
# a type as format_type() prints it, then "[]": character varying(20)[], numeric(10,2)[], public."Odd"[]...
_ARRAY_TYPE = re.compile(r"(%s(?:(?:\.|\s)%s|\(\d+(?:,\s*\d+)?\))*)\[\]" % (_WORD, _WORD))
_CAST_ARRAY = "(ARRAY["


def _skip_quoted(text: str, i: int) -> int:
    """The index after the string literal (E'' included) or quoted identifier at ``i``, or ``i`` when there is none."""
    char = text[i]
    if char in "Ee" and i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_$"):
        return i  # the end of a word, not the prefix of E'...'
    if char in "'Ee":
        found = _STRING.match(text, i)
    elif char == '"':
        found = _IDENTIFIER.match(text, i)
    else:
        return i
    return found.end() if found else i


def _closing(text: str, i: int) -> int:
    """The index of the bracket closing the one at ``i`` ("(" or "["), literals and identifiers skipped; -1 if none."""
    depth = 0
    while i < len(text):
        after = _skip_quoted(text, i)
        if after != i:
            i = after
            continue
        if text[i] in "([":
            depth += 1
        elif text[i] in ")]":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _elements(inside: str) -> list:
    """The top-level, comma-separated elements of an array constructor's inside."""
    elements, start, i = [], 0, 0
    while i < len(inside):
        after = _skip_quoted(inside, i)
        if after != i:
            i = after
            continue
        if inside[i] in "([":
            i = _closing(inside, i)
            if i < 0:
                raise ValueError("unbalanced brackets")
        elif inside[i] == ",":
            elements.append(inside[start:i].strip())
            start = i + 1
        i += 1
    elements.append(inside[start:].strip())
    return elements


def _cast_into(element: str, type_name: str) -> str:
    """``element`` cast to ``type_name`` the way PostgreSQL prints it once the cast is pushed into a constructor:
    into each element of a nested constructor (multidimensional arrays), else ``(element)::type``."""
    if element.startswith("ARRAY[") and _closing(element, len("ARRAY")) == len(element) - 1:
        inside = element[len("ARRAY[") : -1]
        return "ARRAY[%s]" % ", ".join(_cast_into(canonical_line(e), type_name) for e in _elements(inside))
    return "(%s)::%s" % (element, type_name)


def canonical_line(line: str) -> str:
    """``line`` with each ``(ARRAY[e1, e2])::T[]`` written ``ARRAY[(e1)::T, (e2)::T]``, as PostgreSQL prints it after
    a dump and restore (see above); any other text as it is. Literals and quoted identifiers are never looked into."""
    out, i = [], 0
    while i < len(line):
        after = _skip_quoted(line, i)
        if after != i:
            out.append(line[i:after])
            i = after
            continue
        if line.startswith(_CAST_ARRAY, i):
            rewritten = _rewrite_cast_array(line, i)
            if rewritten:
                text, i = rewritten
                out.append(text)
                continue
        out.append(line[i])
        i += 1
    return "".join(out)


def _rewrite_cast_array(line: str, i: int):
    """(text, next index) for a ``(ARRAY[...])::T[]`` at ``i``, or None when there is none there."""
    bracket = i + len(_CAST_ARRAY) - 1
    end = _closing(line, bracket)
    if end < 0 or line[end + 1 : end + 4] != ")::":
        return None
    cast = _ARRAY_TYPE.match(line, end + 4)
    if not cast:
        return None
    try:
        elements = _elements(line[bracket + 1 : end])
    except ValueError:
        return None
    text = "ARRAY[%s]" % ", ".join(_cast_into(canonical_line(element), cast.group(1)) for element in elements)
    return text, cast.end()


def canonical_lines(lines) -> list:
    return [canonical_line(line) for line in lines]


def schema_fingerprint(lines) -> str:
    """The fingerprint of a schema's lines (SCHEMA_LINES_JSON_SQL) in their canonical form: equal for a database and
    a dump of it restored. For a schema none of whose lines changes, the sha256 of the lines' text as it was always
    taken (SCHEMA_LINES_SQL, stripped): fingerprints recorded before (backups' metadata) stay comparable."""
    return fingerprint("\n".join(canonical_lines(lines)).strip())


# index NAME on TABLE, constraint TABLE.NAME, column TABLE.NAME, table NAME: what a line is about
_NAME = r'(?:"(?:[^"]|"")*"|[^\s"])+'
_OBJECT = re.compile(
    r"^(?:index CREATE (?:UNIQUE )?INDEX (?P<index>%s) ON (?:ONLY )?(?P<on>%s)|(?P<kind>table|column|constraint) (?P<name>%s))"
    % (_NAME, _NAME, _NAME)
)


def schema_object(line: str) -> str:
    """What a schema line is about, for people: ``index unique_in_progress on public.wf_state``, ``constraint
    wf_state.status_in``, ``column wf_state.status``, ``table wf_state`` (the whole line when it cannot be told)."""
    found = _OBJECT.match(line)
    if not found:
        return line
    if found.group("index"):
        return "index %s on %s" % (found.group("index"), found.group("on"))
    return "%s %s" % (found.group("kind"), found.group("name"))


def schema_differences(production_lines, copy_lines) -> list:
    """The objects whose lines differ between production and a copy, compared in canonical form, each as
    ``{"object", "production", "copy"}`` (the lines as each database printed them; None where it has no such
    line), sorted by object."""
    production = {}
    for line in production_lines:
        production.setdefault(canonical_line(line), []).append(line)
    copy = {}
    for line in copy_lines:
        copy.setdefault(canonical_line(line), []).append(line)
    only = {"production": [], "copy": []}
    for side, mine, theirs in (("production", production, copy), ("copy", copy, production)):
        for key, lines in mine.items():
            only[side] += lines[len(theirs.get(key, ())) :]
    by_object = {}
    for side in ("production", "copy"):
        for line in only[side]:
            by_object.setdefault(schema_object(line), {"production": [], "copy": []})[side].append(line)
    differences = []
    for name in sorted(by_object):
        sides = by_object[name]
        for k in range(max(len(sides["production"]), len(sides["copy"]))):
            differences.append({
                "object": name,
                "production": sides["production"][k] if k < len(sides["production"]) else None,
                "copy": sides["copy"][k] if k < len(sides["copy"]) else None,
            })  # fmt: skip
    return differences


def history_differences(production_applied, copy_applied) -> dict:
    """How two lists of applied migrations differ: {} when equal as fingerprinted (the same set)."""
    if sorted(production_applied) == sorted(copy_applied):
        return {}
    return {
        "production_applied": len(production_applied),
        "copy_applied": len(copy_applied),
        "only_in_production": sorted(set(production_applied) - set(copy_applied)),
        "only_in_copy": sorted(set(copy_applied) - set(production_applied)),
    }


MAX_LINE_CHARS = 300


def _shown(line) -> str:
    if line is None:
        return "none"
    line = " ".join(line.split())
    return "`%s`" % (line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…")


def describe_copy_differences(schema: list, history: dict, shown: int = 3) -> str:
    """The sentence a copy that is not faithful aborts with: the first ``shown`` objects that differ, production's
    line and the copy's, a count of all, and what differs in the migration history."""
    parts = []
    if schema:
        items = []
        for difference in schema[:shown]:
            item = "%s: production %s, copy %s" % (difference["object"], _shown(difference["production"]), _shown(difference["copy"]))
            production_line = difference["production"] or ""
            if difference["copy"] is None and production_line.startswith("index ") and production_line.endswith(" INVALID"):
                item += " (pg_dump leaves INVALID indexes out - one left by a failed CREATE INDEX CONCURRENTLY: drop it or REINDEX it)"
            items.append(item)
        count = "1 schema object differs" if len(schema) == 1 else "%d schema objects differ" % len(schema)
        more = "; and %d more, listed in the saved report" % (len(schema) - shown) if len(schema) > shown else ""
        parts.append("%s (%s%s)" % (count, "; ".join(items), more))
    if history:
        names = ["only in production: %s" % ", ".join(history["only_in_production"][:shown])] if history["only_in_production"] else []
        names += ["only in the copy: %s" % ", ".join(history["only_in_copy"][:shown])] if history["only_in_copy"] else []
        parts.append(
            "the migration history differs (production %d applied, copy %d%s)"
            % (history["production_applied"], history["copy_applied"], "; " + "; ".join(names) if names else "")
        )
    return "; ".join(parts)


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


def _table_shown(name: str) -> str:
    return name[len("public.") :] if name.startswith("public.") else name


def _named(tables, limit: int) -> str:
    shown = [_table_shown(t) for t in tables[:limit]]
    return ", ".join(shown) + (", and %d more" % (len(tables) - limit) if len(tables) > limit else "")


def describe_restore_differences(differences: dict, limit: int = 5) -> str:
    """What a restore discards, for people (pg_restore's ``differences``: the live database against the restored
    backup): the tables only in the live one and those with other row counts, named (the first ``limit``; tables
    of the schema public without it), each with its counts, then the rows in all."""

    def count(n: int, one: str, many: str) -> str:
        return "%d %s" % (n, one if n == 1 else many)

    only_live = differences.get("tables_only_live") or []
    only_backup = differences.get("tables_only_in_backup") or []
    differ = differences.get("rows_differ") or {}
    parts = []
    if only_live:
        parts.append("%s only in the replaced database (%s)" % (count(len(only_live), "table", "tables"), _named(only_live, limit)))
    if only_backup:
        parts.append("%s only in the backup (%s)" % (count(len(only_backup), "table", "tables"), _named(only_backup, limit)))
    if differ:
        names = sorted(differ)
        shown = ["%s %d rows before, %d after" % (_table_shown(t), differ[t]["live"], differ[t]["backup"]) for t in names[:limit]]
        more = ", and %d more" % (len(names) - limit) if len(names) > limit else ""
        parts.append("%s with other row counts (%s%s)" % (count(len(names), "table", "tables"), ", ".join(shown), more))
    if not parts:
        parts.append("the same tables with the same row counts")
    rows = (differences.get("rows_live", 0), differences.get("rows_backup", 0))
    return "%s; %s before, %d after" % (", ".join(parts), count(rows[0], "row", "rows"), rows[1])
