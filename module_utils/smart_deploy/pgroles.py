# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app's PostgreSQL roles, least privilege: an owner role that owns the database and its objects
(migrations, backups and restores run as it), and an app role that only reads and writes rows (the
running app connects as it). Neither is superuser, nor may create databases or roles.

Passwords never travel in clear: the SCRAM-SHA-256 verifier PostgreSQL stores is computed here and
compared with the one in pg_authid, so a password is set only when it changed. Identifiers and values
reach SQL only as psql variables (:"name", :'value') or through format('%I') on the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import unicodedata
from typing import List, Optional

SCRAM_ITERATIONS = 4096


# --------------------------------------------------------------------------------------------------
# SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677; PostgreSQL's pg_authid.rolpassword format)
# --------------------------------------------------------------------------------------------------


def _normalize(password: str) -> bytes:
    """PostgreSQL applies SASLprep; for ASCII it is the identity, elsewhere NFKC is what matters in practice."""
    if password.isascii():
        return password.encode()
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def _keys(password: str, salt: bytes, iterations: int):
    salted = hashlib.pbkdf2_hmac("sha256", _normalize(password), salt, iterations, 32)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def scram_verifier(password: str, salt: Optional[bytes] = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The verifier PostgreSQL would store for ``password`` (what ``ALTER ROLE ... PASSWORD`` accepts as is)."""
    salt = salt if salt is not None else os.urandom(16)
    stored_key, server_key = _keys(password, salt, iterations)
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, b64(salt), b64(stored_key), b64(server_key))


def verifier_matches(verifier: Optional[str], password: str) -> bool:
    """Whether ``verifier`` (from pg_authid) was made from ``password``. False for md5, empty or unknown ones."""
    import binascii

    try:
        method, rest = (verifier or "").split("$", 1)
        iterations_salt, keys = rest.split("$", 1)
        iterations, salt = iterations_salt.split(":", 1)
        stored_key, server_key = keys.split(":", 1)
        if method != "SCRAM-SHA-256":
            return False
        want_stored, want_server = _keys(password, base64.b64decode(salt), int(iterations))
        return hmac.compare_digest(want_stored, base64.b64decode(stored_key)) and hmac.compare_digest(
            want_server, base64.b64decode(server_key)
        )
    except (ValueError, TypeError, binascii.Error):
        return False


# --------------------------------------------------------------------------------------------------
# What is there (one query, as the server's superuser, in the app's database)
# --------------------------------------------------------------------------------------------------

# psql variables: :'admin', :'owner', :'app'
STATE_SQL = r"""
WITH roles AS (
  SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication, rolbypassrls, rolpassword
  FROM pg_authid WHERE rolname IN (:'admin', :'owner', :'app')
), owner_oid AS (
  SELECT oid FROM pg_roles WHERE rolname = :'owner'
), app_oid AS (
  SELECT oid FROM pg_roles WHERE rolname = :'app'
), foreign_objects AS (
  SELECT c.relkind::text AS kind, c.relname AS name FROM pg_class c
  WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    AND c.relowner IS DISTINCT FROM (SELECT oid FROM owner_oid)
    AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
                                          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
  UNION ALL
  SELECT 'function', p.oid::regprocedure::text FROM pg_proc p
  WHERE p.pronamespace = 'public'::regnamespace AND p.proowner IS DISTINCT FROM (SELECT oid FROM owner_oid)
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
  UNION ALL
  SELECT 'type', t.oid::regtype::text FROM pg_type t
  WHERE t.typnamespace = 'public'::regnamespace AND t.typowner IS DISTINCT FROM (SELECT oid FROM owner_oid)
    AND t.typtype IN ('e', 'd', 'r', 'm') AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
), app_missing AS (
  SELECT c.relname FROM pg_class c, app_oid a
  WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND NOT (has_table_privilege(a.oid, c.oid, 'SELECT') AND has_table_privilege(a.oid, c.oid, 'INSERT')
             AND has_table_privilege(a.oid, c.oid, 'UPDATE') AND has_table_privilege(a.oid, c.oid, 'DELETE'))
  UNION ALL
  SELECT c.relname FROM pg_class c, app_oid a
  WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
    AND NOT (has_sequence_privilege(a.oid, c.oid, 'USAGE') AND has_sequence_privilege(a.oid, c.oid, 'SELECT')
             AND has_sequence_privilege(a.oid, c.oid, 'UPDATE'))
), default_acl AS (
  SELECT d.defaclobjtype::text AS objtype, array_agg(x.privilege_type::text ORDER BY x.privilege_type) AS privileges
  FROM pg_default_acl d, aclexplode(d.defaclacl) x, owner_oid o, app_oid a
  WHERE d.defaclrole = o.oid AND d.defaclnamespace = 'public'::regnamespace AND x.grantee = a.oid
  GROUP BY d.defaclobjtype
)
SELECT json_build_object(
  'roles', (SELECT coalesce(json_object_agg(rolname, json_build_object(
      'superuser', rolsuper, 'createdb', rolcreatedb, 'createrole', rolcreaterole, 'login', rolcanlogin,
      'replication', rolreplication, 'bypassrls', rolbypassrls, 'verifier', rolpassword)), '{}') FROM roles),
  'database_owner', (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()),
  'schema_owner', (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'),
  'foreign_objects', (SELECT coalesce(json_agg(json_build_object('kind', kind, 'name', name) ORDER BY kind, name), '[]')
                      FROM foreign_objects),
  'app_missing', (SELECT coalesce(json_agg(relname ORDER BY relname), '[]') FROM app_missing),
  'app_connect', (SELECT has_database_privilege(a.oid, current_database(), 'CONNECT') FROM app_oid a),
  'app_usage', (SELECT has_schema_privilege(a.oid, 'public', 'USAGE') FROM app_oid a),
  'app_create', (SELECT has_schema_privilege(a.oid, 'public', 'CREATE') FROM app_oid a),
  'default_acl', (SELECT coalesce(json_object_agg(objtype, privileges), '{}') FROM default_acl)
);
"""

# Run as the superuser in the app's database; psql variable :'owner' (the owner role's name), passed to
# the server as the setting smart_deploy.owner so that the DO block can read it.
OWN_OBJECTS_SQL = r"""
SELECT set_config('smart_deploy.owner', :'owner', false);
DO $own$
DECLARE
  owner text := current_setting('smart_deploy.owner');
  r record;
BEGIN
  FOR r IN
    SELECT c.relkind, c.relname FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND pg_get_userbyid(c.relowner) <> owner
      AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
                                            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
    ORDER BY c.relkind <> 'r', c.relname
  LOOP
    EXECUTE format('ALTER %s public.%I OWNER TO %I',
                   CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                                  WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.relname, owner);
  END LOOP;
  FOR r IN
    SELECT p.oid::regprocedure AS routine FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace AND pg_get_userbyid(p.proowner) <> owner
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.routine, owner);
  END LOOP;
  FOR r IN
    SELECT t.oid::regtype AS type FROM pg_type t
    WHERE t.typnamespace = 'public'::regnamespace AND pg_get_userbyid(t.typowner) <> owner
      AND t.typtype IN ('e', 'd', 'r', 'm') AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO %I', r.type, owner);
  END LOOP;
END
$own$;
"""

GRANTS_SQL = r"""
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO :"app";
GRANT USAGE ON SCHEMA public TO :"app";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"app";
"""

TABLE_PRIVILEGES = ["DELETE", "INSERT", "SELECT", "UPDATE"]
SEQUENCE_PRIVILEGES = ["SELECT", "UPDATE", "USAGE"]
LIMITED = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


def psql_set(name: str, value: str) -> str:
    """A psql ``\\set`` line (single quotes doubled, as psql reads them)."""
    return "\\set %s '%s'\n" % (name, value.replace("'", "''"))


def wanted_role_problems(role: Optional[dict]) -> List[str]:
    """What makes an existing owner/app role more powerful than it may be."""
    if role is None:
        return []
    flags = [("superuser", True), ("createdb", True), ("createrole", True), ("replication", True), ("bypassrls", True), ("login", False)]
    return [name if bad else "no login" for name, bad in flags if role.get(name) is bad]


def set_password(role_variable: str, password: str) -> str:
    """psql lines setting a role's password as a SCRAM verifier (the password itself never reaches the server)."""
    return psql_set("verifier", scram_verifier(password)) + "ALTER ROLE :\"%s\" PASSWORD :'verifier';\n" % role_variable


def plan(state: dict, names: dict, passwords: dict) -> List[dict]:
    """The changes that bring ``state`` to least privilege, each {'why': words, 'sql': psql script part}.

    ``names``: admin, owner, app, database. ``passwords``: admin, owner, app (admin may be None: left alone).
    Nothing secret is in 'why'; passwords only as verifiers in 'sql'.
    """
    changes = []
    roles = state.get("roles", {})
    admin = roles.get(names["admin"])
    if passwords.get("admin") and admin is not None and not verifier_matches(admin.get("verifier"), passwords["admin"]):
        why = "set the new password of %s (the database server's superuser)" % names["admin"]
        changes.append({"why": why, "sql": set_password("admin", passwords["admin"])})
    for kind in ("owner", "app"):
        name, role = names[kind], roles.get(names[kind])
        if role is None:
            sql = psql_set("verifier", scram_verifier(passwords[kind])) + "CREATE ROLE :\"%s\" %s PASSWORD :'verifier';\n" % (kind, LIMITED)
            changes.append({"why": "create the %s role %s (no superuser, no CREATEDB, no CREATEROLE)" % (kind, name), "sql": sql})
            continue
        too_much = wanted_role_problems(role)
        if too_much:
            why = "limit the %s role %s (was: %s)" % (kind, name, ", ".join(too_much))
            changes.append({"why": why, "sql": 'ALTER ROLE :"%s" %s;\n' % (kind, LIMITED)})
        if not verifier_matches(role.get("verifier"), passwords[kind]):
            changes.append({"why": "set the new password of the %s role %s" % (kind, name), "sql": set_password(kind, passwords[kind])})
    changes += ownership_plan(state, names)
    return changes


def ownership_plan(state: dict, names: dict) -> List[dict]:
    """Ownership by the owner role and the app role's grants (also what a restored database needs)."""
    changes = []
    owner = names["owner"]
    if state.get("database_owner") != owner:
        why = "make %s the owner of the database %s (was %s)" % (owner, names["database"], state.get("database_owner"))
        changes.append({"why": why, "sql": 'ALTER DATABASE :"database" OWNER TO :"owner";\n'})
    # PostgreSQL 15 gives the schema public to pg_database_owner, that is to whoever owns the database
    if state.get("schema_owner") not in (owner, "pg_database_owner"):
        why = "make %s the owner of the schema public (was %s)" % (owner, state.get("schema_owner"))
        changes.append({"why": why, "sql": 'ALTER SCHEMA public OWNER TO :"owner";\n'})
    foreign = state.get("foreign_objects") or []
    if foreign:
        shown = ", ".join(o["name"] for o in foreign[:5]) + (" and %d more" % (len(foreign) - 5) if len(foreign) > 5 else "")
        why = "make %s the owner of %d objects of the schema public (%s)" % (owner, len(foreign), shown)
        changes.append({"why": why, "sql": OWN_OBJECTS_SQL})
    acl = state.get("default_acl") or {}
    grants_missing = (
        state.get("app_missing")
        or not state.get("app_connect")
        or not state.get("app_usage")
        or state.get("app_create")
        or sorted(acl.get("r", [])) != TABLE_PRIVILEGES
        or sorted(acl.get("S", [])) != SEQUENCE_PRIVILEGES
    )
    if grants_missing or foreign or state.get("roles", {}).get(names["app"]) is None:
        missing = state.get("app_missing") or []
        on = (" on %d tables and sequences" % len(missing)) if missing else ""
        changes.append({"why": "grant %s reading and writing rows (and nothing more)%s" % (names["app"], on), "sql": GRANTS_SQL})
    return changes


def script(changes: List[dict], names: dict) -> str:
    """One psql script applying ``changes`` in a single transaction (stops at the first error)."""
    head = "".join(psql_set(key, names[key]) for key in ("admin", "owner", "app", "database"))
    return head + "BEGIN;\n" + "".join(change["sql"] for change in changes) + "COMMIT;\n"


def state_script(names: dict) -> str:
    return "".join(psql_set(key, names[key]) for key in ("admin", "owner", "app")) + STATE_SQL


def parse_state(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])
