# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Migrations the OLD code cannot live with: mixed versions during a rolling deploy. Pure logic, no I/O.

During a roll over several app hosts the migrations run once, before the roll, so the hosts still on the
old release serve requests against the new schema until their turn. An operation is *breaking* when the
old release's code fails against the schema it leaves:

- ``drop-table``: a dropped table (DeleteModel, a dropped many-to-many table, ``DROP TABLE`` / ``DROP VIEW``);
- ``drop-column``: a dropped column (RemoveField, ``ALTER TABLE ... DROP COLUMN``): Django names every
  column of a model in its SELECTs and INSERTs, so the old code fails on any query of that model;
- ``rename-table`` / ``rename-column``: RenameModel, AlterModelTable, RenameField, AlterField changing
  ``db_column``, ``ALTER TABLE ... RENAME``: the old name is gone;
- ``set-not-null``: a column made NOT NULL (AlterField null=True -> False, ``SET NOT NULL``): the old code
  may still write NULL there;
- ``add-not-null-column``: a new NOT NULL column with no database default (AddField without ``db_default``:
  Django adds the column with a DEFAULT and drops that default afterwards; ``ADD COLUMN ... NOT NULL``
  without DEFAULT): the old code's INSERTs do not name the column and fail.

Where the facts come from (``django_driver.schema_facts``, in the offline analysis inside the release image):
Django's own migration operation objects, with the project states before and after each one. That is exact
where the SQL is not: it knows the intent (an AddField whose SQL shows ``ADD COLUMN ... DEFAULT 0 NOT NULL``
then ``DROP DEFAULT``), the model's real ``db_table`` / ``db_column``, whether the old field was nullable,
whether a model is managed (an unmanaged or proxy model's operations change no schema), and which operations
of a SeparateDatabaseAndState reach the database (the state-only ones are the usual expand/contract trick);
and it is there for every deploy, emergency ones included (no rehearsal needed). Raw SQL (RunSQL) has no
operation object to read: its own SQL text is classified by the rules of ``sql_findings`` below.
RunPython changes rows, not the schema: the old code lives with it.

``backward_compatible`` (no breaking operation, none that could not be read) is what a failed roll decides
on: keep the migrated database (the old code lives with it) or put the database back.
"""

from __future__ import annotations

import re
from typing import Optional

WHY = {
    "drop-table": "drops table %(table)s, which the old release still reads and writes",
    "drop-column": "drops column %(table)s.%(column)s, which the old release still selects and writes",
    "rename-table": "renames table %(table)s to %(new)s: the old release still uses %(table)s",
    "rename-column": "renames column %(table)s.%(column)s to %(new)s: the old release still uses %(column)s",
    "set-not-null": "makes %(table)s.%(column)s NOT NULL: the old release may still write NULL there",
    "add-not-null-column": (
        "adds %(table)s.%(column)s NOT NULL with no database default (db_default): the old release's INSERTs do not "
        "name the column and fail"
    ),
}
RULES = tuple(WHY)


def finding(migration, operation, rule, table, column=None, new=None) -> dict:
    """One breaking operation: {migration, operation, rule, table, column, why}."""
    return {
        "migration": migration,
        "operation": operation,
        "rule": rule,
        "table": table,
        "column": column,
        "why": WHY[rule] % {"table": table, "column": column, "new": new},
    }


# --------------------------------------------------------------------------------------------------
# Django's operations, as the driver describes them (schema_facts)
# --------------------------------------------------------------------------------------------------


def fact_findings(migration, fact) -> list:
    """The breaking operations of one database operation's facts (``{"type": "RemoveField", ...}``)."""
    kind = fact.get("type")
    what = fact.get("describe") or kind
    found = []

    def add(rule, table, column=None, new=None):
        if table:
            found.append(finding(migration, what, rule, table, column, new))

    if fact.get("managed") is False:  # an unmanaged or proxy model: Django changes no schema for it
        return found
    if kind == "DeleteModel":
        add("drop-table", fact.get("table"))
    elif kind == "RemoveField":
        if fact.get("column"):
            add("drop-column", fact.get("table"), fact["column"])
        if fact.get("m2m_table"):
            add("drop-table", fact["m2m_table"])
    elif kind in ("RenameModel", "AlterModelTable"):
        if fact.get("old_table") != fact.get("new_table"):
            add("rename-table", fact.get("old_table"), new=fact.get("new_table"))
    elif kind in ("RenameField", "AlterField"):
        old_column, new_column = fact.get("old_column"), fact.get("new_column")
        if old_column and new_column and old_column != new_column:
            add("rename-column", fact.get("table"), old_column, new_column)
        if kind == "AlterField" and new_column and fact.get("old_null") is True and fact.get("new_null") is False:
            add("set-not-null", fact.get("table"), new_column)
    elif kind == "AddField":
        # nullable, a default the database keeps (db_default), a value the database computes (GeneratedField), a
        # many-to-many (a table of its own): the old code's INSERTs still work
        if fact.get("column") and not (fact.get("null") or fact.get("db_default") or fact.get("generated") or fact.get("m2m")):
            add("add-not-null-column", fact.get("table"), fact["column"])
    elif kind == "RunSQL":
        found += [dict(item, operation=what) for item in sql_findings(migration, fact.get("sql") or [])]
    return found


def existing_tables(production) -> Optional[set]:
    """The tables production had before the deploy (the rehearsal report's ``production``), their names as Django
    writes them (no quotes, no ``public.``); an empty set when there is no production yet (a first deploy: no old
    code runs); None when the report does not say (then every finding counts)."""
    if not isinstance(production, dict):
        return None
    if production.get("exists") is False:
        return set()
    tables = production.get("tables")
    if not isinstance(tables, (list, dict)):
        return None
    return {unquote(str(name).split(".", 1)[1] if str(name).startswith("public.") else str(name)) for name in tables}


def breaking_operations(pending, existing: Optional[set] = None) -> tuple:
    """(breaking, unchecked) from the analysis's pending migrations (``report["pending"]``): each operation's
    ``schema`` facts classified in plan order; ``unchecked`` names the operations whose facts could not be
    read (``schema_error``), which therefore cannot be called compatible. With ``existing`` (the tables production
    has before the deploy), only what touches one of them counts: a table the same deploy creates serves no old
    code (a first deploy, a new app's migrations)."""
    breaking, unchecked = [], []
    for migration in pending or []:
        if not isinstance(migration, dict):
            continue
        key = migration.get("migration", "?")
        for operation in migration.get("operations") or []:
            if not isinstance(operation, dict):
                continue
            if operation.get("schema_error"):
                unchecked.append({"migration": key, "operation": operation.get("describe", "?"), "error": operation["schema_error"]})
            for fact in operation.get("schema") or []:
                breaking += fact_findings(key, fact)
    if existing is not None:
        breaking = [item for item in breaking if item.get("table") in existing]
    return breaking, unchecked


# --------------------------------------------------------------------------------------------------
# Raw SQL (RunSQL): its text
# --------------------------------------------------------------------------------------------------

IDENT = r'(?:"(?:[^"]|"")+"|[^\s."(),;]+)'
QUALIFIED = IDENT + r"(?:\s*\.\s*" + IDENT + r")*"
ALTER_TABLE = re.compile(r"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(" + QUALIFIED + r")\s*\*?\s+(.*)$", re.I | re.S)
DROP_TABLE = re.compile(r"^DROP\s+(?:TABLE|VIEW|MATERIALIZED\s+VIEW)\s+(?:IF\s+EXISTS\s+)?(.*?)(?:\s+(?:CASCADE|RESTRICT))?$", re.I | re.S)
RENAME_TABLE = re.compile(r"^RENAME\s+TO\s+(" + IDENT + ")", re.I)
SET_SCHEMA = re.compile(r"^SET\s+SCHEMA\s+(" + IDENT + ")", re.I)
RENAME_COLUMN = re.compile(r"^RENAME\s+(?:COLUMN\s+)?(?!CONSTRAINT\b)(" + IDENT + r")\s+TO\s+(" + IDENT + ")", re.I)
DROP_COLUMN = re.compile(r"^DROP\s+(?:COLUMN\s+)?(?!CONSTRAINT\b)(?:IF\s+EXISTS\s+)?(" + IDENT + ")", re.I)
SET_NOT_NULL = re.compile(r"^ALTER\s+(?:COLUMN\s+)?(" + IDENT + r")\s+SET\s+NOT\s+NULL\b", re.I)
DROP_DEFAULT = re.compile(r"^ALTER\s+(?:COLUMN\s+)?(" + IDENT + r")\s+DROP\s+DEFAULT\b", re.I)
ADD_COLUMN = re.compile(
    r"^ADD\s+(?:COLUMN\s+)?(?!(?:CONSTRAINT|PRIMARY|UNIQUE|CHECK|FOREIGN|EXCLUDE)\b)(?:IF\s+NOT\s+EXISTS\s+)?(" + IDENT + r")\s+(.*)$",
    re.I | re.S,
)


def unquote(name: str) -> str:
    """The last part of a (schema-)qualified identifier, without its quotes; unquoted names fold to lower case."""
    parts = re.findall(IDENT, name)
    last = parts[-1] if parts else name
    return last[1:-1].replace('""', '"') if last.startswith('"') else last.lower()


def split_sql(text: str, separator: str = ";") -> list:
    """``text`` split on ``separator`` where it is outside quotes ('...', "...", $tag$...$tag$), comments and
    parentheses; comments become a space. Pieces are stripped, empty ones dropped."""
    pieces, current, depth, i = [], [], 0, 0
    while i < len(text):
        char = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            current.append(" ")
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
            current.append(" ")
            continue
        if char in "'\"":
            end = i + 1
            while end < len(text):
                if text[end] == char and text[end + 1 : end + 2] == char:
                    end += 2
                elif text[end] == char:
                    break
                else:
                    end += 1
            current.append(text[i : end + 1])
            i = end + 1
            continue
        dollar = re.match(r"\$(?:[A-Za-z_][\w]*)?\$", text[i:]) if char == "$" else None
        if dollar:
            tag = dollar.group(0)
            end = text.find(tag, i + len(tag))
            end = len(text) if end < 0 else end + len(tag)
            current.append(text[i:end])
            i = end
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if char == separator and depth == 0:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    pieces.append("".join(current))
    return [" ".join(piece.split()) for piece in pieces if piece.strip()]


def sql_findings(migration, sql) -> list:
    """The breaking operations of raw SQL (a RunSQL's ``sql``: one text or a list of texts, each possibly
    several statements). Classified by the statement's text, table and column names only (never literals):
    ``DROP TABLE|VIEW|MATERIALIZED VIEW``; ``ALTER TABLE t`` with ``DROP [COLUMN] c``, ``RENAME [COLUMN] a TO b``,
    ``RENAME TO n``, ``SET SCHEMA s``, ``ALTER [COLUMN] c SET NOT NULL``, ``ADD [COLUMN] c ... NOT NULL`` without
    DEFAULT (or with one that a later ``ALTER [COLUMN] c DROP DEFAULT`` takes away, the way Django adds a column).
    Anything else (data changes, indexes, constraints, functions) leaves the old code's queries working."""
    texts = [sql] if isinstance(sql, str) else [s for s in sql if isinstance(s, str)]
    found = []
    added_with_default = set()  # (table, column) added NOT NULL with a DEFAULT: dropping that default breaks

    def add(rule, table, column=None, new=None):
        found.append(finding(migration, "Raw SQL operation", rule, table, column, new))

    for statement in (s for text in texts for s in split_sql(text)):
        drop = DROP_TABLE.match(statement)
        if drop:
            for name in split_sql(drop.group(1), ","):
                add("drop-table", unquote(name))
            continue
        alter = ALTER_TABLE.match(statement)
        if not alter:
            continue
        table = unquote(alter.group(1))
        for action in split_sql(alter.group(2), ","):
            match = RENAME_TABLE.match(action) or SET_SCHEMA.match(action)
            if match:
                add("rename-table", table, new=unquote(match.group(1)))
                continue
            match = RENAME_COLUMN.match(action)
            if match:
                add("rename-column", table, unquote(match.group(1)), unquote(match.group(2)))
                continue
            match = DROP_COLUMN.match(action)
            if match:
                add("drop-column", table, unquote(match.group(1)))
                continue
            match = SET_NOT_NULL.match(action)
            if match:
                add("set-not-null", table, unquote(match.group(1)))
                continue
            match = DROP_DEFAULT.match(action)
            if match:
                if (table, unquote(match.group(1))) in added_with_default:
                    add("add-not-null-column", table, unquote(match.group(1)))
                continue
            match = ADD_COLUMN.match(action)
            if match:
                column, definition = unquote(match.group(1)), match.group(2)
                if not re.search(r"\bNOT\s+NULL\b", definition, re.I) or re.search(r"\bGENERATED\b", definition, re.I):
                    continue
                if re.search(r"\bDEFAULT\b", definition, re.I):
                    added_with_default.add((table, column))
                else:
                    add("add-not-null-column", table, column)
    return found


# --------------------------------------------------------------------------------------------------
# The gate
# --------------------------------------------------------------------------------------------------


def line(item: dict) -> str:
    """One breaking operation in words: ``cart.0003_drop_note: drops column cart_item.note, ... (Remove field ...)``."""
    return "%s: %s (%s)" % (item.get("migration", "?"), item.get("why", "?"), item.get("operation", "?"))


TWO_WAYS = (
    "Two ways out: -e smart_deploy_allow_breaking=true (the hosts still on the old release may fail the requests that "
    "touch these until their turn comes), or two releases: expand first (add the new column nullable or with "
    "db_default, keep the old column or table, ship code that stops using it), then contract in the next release "
    "(drop or rename it once no host runs code that uses it)."
)


def gate(breaking, rolling: bool, allow_breaking: bool, actor: str = "") -> dict:
    """What a deploy does with its breaking operations: {decision, refused, message}.

    - ``none``: nothing breaking;
    - ``refused``: a rolling deploy (old and new code serve side by side until the last host is switched)
      and ``allow_breaking`` is false: the deploy stops before anything changes; the message names each
      operation and the two ways out;
    - ``allowed``: rolling, with ``allow_breaking``: goes on, said and recorded (who allowed it);
    - ``reported``: one host: the old release serves until the switch while the migrations already ran, for
      the seconds between the two; reported, never refused.
    """
    breaking = list(breaking or [])
    if not breaking:
        return {"decision": "none", "refused": False, "message": ""}
    listed = "; ".join(line(item) for item in breaking)
    if rolling and not allow_breaking:
        message = (
            "%d migration operation%s the old release cannot live with, and this deploy rolls over several hosts (old and new "
            "code serve side by side until the last host is switched): %s. %s"
            % (len(breaking), "s" if len(breaking) > 1 else "", listed, TWO_WAYS)
        )
        return {"decision": "refused", "refused": True, "message": message}
    if rolling:
        message = "rolling deploy with %d breaking operation%s, allowed by smart_deploy_allow_breaking%s: %s" % (
            len(breaking), "s" if len(breaking) > 1 else "", " (%s)" % actor if actor else "", listed)  # fmt: skip
        return {"decision": "allowed", "refused": False, "message": message}
    message = (
        "one host: the old release serves from the migrations until the switch, a few seconds in which requests that touch "
        "these may fail: %s" % listed
    )
    return {"decision": "reported", "refused": False, "message": message}
