# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the containers of a release use the database smart-deploy rehearsed and migrated (issue 24). Pure logic.

smart-deploy points Django at the database it chose wherever it runs the app's code itself (rehearsal, migrations:
the driver's SMART_DEPLOY_DB_* override), but the release's containers serve with the app's OWN settings: settings
that choose their engine from a variable the inventory did not set fall back to SQLite, a DATABASE_URL may name
another server. So, before the switch, the driver's ``identify`` asks a new container of the release which database
its default connection reaches, and this compares the answer with the database smart-deploy migrated, read by its
own connection, on what the SERVER says of itself (IDENTITY_SQL in the driver: current_database(), the database's
oid, the port, when the server started, its system identifier) - not on host names, which differ for one server
(a container name, an IP, host.docker.internal, a PgBouncer in between).

- ``migrated``: {name, host, port} as the inventory names the database (smart_deploy_db_name, the host and port the
  app's containers reach it by) and ``identity``, IDENTITY_SQL's object (plus ``system_identifier``) read by
  smart-deploy's own connection to it.
- ``reported``: what ``driver.py identify`` printed in the release's container: ``databases`` (every alias's
  engine, vendor, host, port, name, user), and for a PostgreSQL default alias ``identity`` or ``connect_error``.

Standard library only; never sees a password (the driver leaves them out).
"""

from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional

SERVER_KEYS = ("database", "oid", "port", "started_at", "version", "system_identifier", "in_recovery")
README = 'README "The database the release serves from"'


class Verdict(NamedTuple):
    """``same``: the release's default connection reaches the database smart-deploy migrated; ``message``: why not
    (empty when it does); ``database``: what the release reads, for the history and the summary."""

    same: bool
    message: str
    database: Dict[str, Any]


def describe_migrated(migrated: Dict[str, Any]) -> str:
    """'the PostgreSQL database shop on shop-db:5432', as the inventory names it."""
    return "the PostgreSQL database %s on %s:%s" % (migrated.get("name") or "?", migrated.get("host") or "?", migrated.get("port") or 5432)


def describe_alias(summary: Optional[Dict[str, Any]]) -> str:
    """One alias of the release's DATABASES in words: 'SQLite (/srv/app/db.sqlite3)', 'the PostgreSQL database shop
    on shop-db:5432 as shop_app'."""
    if not summary:
        return "no 'default' database"
    vendor = summary.get("vendor") or summary.get("engine") or "no ENGINE"
    if vendor == "PostgreSQL":
        return "the PostgreSQL database %s on %s:%s%s" % (
            summary.get("name") or "(no NAME)",
            summary.get("host") or "the local socket",
            summary.get("port") or "5432",
            " as %s" % summary["user"] if summary.get("user") else "",
        )
    if vendor == "SQLite":
        return "SQLite (%s)" % (summary.get("name") or "no NAME")
    where = [summary.get("name") or ""]
    if summary.get("host"):
        where.append("on %s%s" % (summary["host"], ":" + summary["port"] if summary.get("port") else ""))
    details = " ".join(part for part in where if part)
    return "%s%s" % (vendor, " (%s)" % details if details else "")


def _server(identity: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    return {key: identity[key] for key in SERVER_KEYS if isinstance(identity, dict) and identity.get(key) not in (None, "")}


def identity_difference(migrated: Dict[str, Any], served: Dict[str, Any]) -> Optional[str]:
    """Why two IDENTITY_SQL answers are not the same database, in words; None when they are: the same server (started
    at the same instant, on the same port, and the same system identifier where both could read it) and the same
    database there (name and oid)."""
    if not migrated or not served:
        return "the server did not say who it is"
    problems = []
    both = migrated.get("system_identifier") and served.get("system_identifier")
    if both and migrated["system_identifier"] != served["system_identifier"]:
        problems.append("system identifier %s, not %s" % (served["system_identifier"], migrated["system_identifier"]))
    if str(migrated.get("started")) != str(served.get("started")):
        problems.append("started at %s, not %s" % (served.get("started_at") or served.get("started"),
                                                   migrated.get("started_at") or migrated.get("started")))  # fmt: skip
    if str(migrated.get("port")) != str(served.get("port")):
        problems.append("port %s, not %s" % (served.get("port"), migrated.get("port")))
    if problems:
        standby = served.get("in_recovery") and not (both and migrated["system_identifier"] != served["system_identifier"])
        kind = "a standby server of the same cluster, in recovery (read-only)" if standby else "another PostgreSQL server"
        return "%s (%s)" % (kind, "; ".join(problems))
    if migrated.get("database") != served.get("database") or str(migrated.get("oid")) != str(served.get("oid")):
        return "another database on the same server (%s, oid %s - not %s, oid %s)" % (
            served.get("database"), served.get("oid"), migrated.get("database"), migrated.get("oid"))  # fmt: skip
    return None


def summary_line(database: Dict[str, Any]) -> str:
    """What the summary and the history say the live release reads: '<the default alias>, the database smart-deploy
    migrated (same server and database: oid N, server started at T); other aliases: ...'."""
    line = describe_alias(database)
    if line.startswith("the "):
        line = line[4:]
    server = database.get("server") or {}
    if database.get("same_as_migrated"):
        line += " - the database smart-deploy migrated (the same server and database: oid %s, server started %s)" % (
            server.get("oid", "?"), server.get("started_at", "?"))  # fmt: skip
    elif database.get("problem"):
        line += " - NOT the database smart-deploy migrated: %s" % database["problem"]
    others = database.get("others") or {}
    if others:
        line += "; other aliases: %s" % ", ".join("%s %s" % (alias, describe_alias(others[alias])) for alias in sorted(others))
    return line


def refused(message: str, database: Dict[str, Any], problem: str) -> Verdict:
    database = dict(database, same_as_migrated=False, problem=problem)
    database["summary"] = summary_line(database)
    return Verdict(False, message, database)


def compare(migrated: Dict[str, Any], reported: Dict[str, Any], container: str = "") -> Verdict:
    """Whether the release's default connection (``reported``, the driver's identify in ``container``) reaches the
    database smart-deploy migrated (``migrated``); the other aliases are reported, not compared."""
    databases = reported.get("databases") if isinstance(reported.get("databases"), dict) else {}
    default = databases.get("default")
    database = dict(default or {}, alias="default", checked_in=container,
                    others={alias: value for alias, value in sorted(databases.items()) if alias != "default"})  # fmt: skip
    database.pop("option_keys", None)
    target = describe_migrated(migrated)
    where = " (asked in its new container %s, with its own settings and environment)" % container if container else ""
    fix = ("; point the app's settings at it through the variables they read (smart_deploy_app_env, smart_deploy_app_secret_env; "
           "%s)" % README)  # fmt: skip
    if not default:
        aliases = ", ".join(sorted(databases)) or "none"
        message = "the release's settings have no 'default' database (aliases: %s), not %s that smart-deploy migrated%s%s" % (
            aliases, target, where, fix)  # fmt: skip
        return refused(message, database, "no default database")
    if default.get("vendor") != "PostgreSQL":
        message = "the release's settings use %s, not %s that smart-deploy migrated%s%s" % (describe_alias(default), target, where, fix)
        return refused(message, database, "not PostgreSQL")
    if reported.get("connect_error") or not reported.get("identity"):
        error = reported.get("connect_error") or "no answer"
        message = "the release's containers cannot reach the database their settings name, %s: %s; smart-deploy migrated %s%s%s" % (
            describe_alias(default), error, target, where, fix)  # fmt: skip
        return refused(message, dict(database, connect_error=error), "its containers cannot connect to it (%s)" % error)
    served = reported["identity"]
    database["server"] = _server(served)
    difference = identity_difference(migrated.get("identity") or {}, served)
    if difference:
        message = "the release's settings use %s, which is %s - not %s that smart-deploy migrated%s%s" % (
            describe_alias(default), difference, target, where, fix)  # fmt: skip
        return refused(message, database, difference)
    database["same_as_migrated"] = True
    database["summary"] = summary_line(database)
    return Verdict(True, "", database)
