#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_restore
short_description: Restore a verified backup into a fresh database and swap it in for the live one
description:
  - Checks the backup's sha256 against its metadata, restores it with C(pg_restore --exit-on-error) (O(jobs)
    parallel jobs) into a NEW database next to the live one, checks the restored migration state against the
    metadata (or O(expected_state)), then swaps names - the live database is renamed C(<db>__replaced_<stamp>) and kept
    (or dropped with O(keep_replaced=false)), the restored one takes its name.
  - Never C(pg_restore --clean) into the live database, which keeps tables created after the backup.
  - Any failure before the swap drops the new database and leaves the live one as it was.
  - With O(compare=true), reports before the swap how the live database differs from the backup (tables
    only on one side, row counts per table), that is what the restore will discard.
  - The same on an external server (O(db_mode=external)) - the fresh database is created on that server and
    swapped there, C(pg_restore) runs in a client container of the server's major version, which reads the
    backup bind-mounted read-only (no copy). O(db_user) must then be allowed to create databases, rename and drop
    the live one (its owner, or a member of its owner role, with C(CREATEDB)) and end the app's sessions.
  - O(db_container), O(db_name) and O(db_user) were called C(container), C(database) and C(user); those names
    are still accepted.
options:
  backup:
    description: Path of the C(.dump) written by M(pg_backup); its C(.json) metadata must be beside it.
    type: path
    required: true
  expected_state:
    description: Migration state the restored database must have (C(migrations_fingerprint), C(schema_fingerprint)).
      Defaults to the C(migration_state) recorded in the backup's metadata.
    type: dict
  unless_state:
    description:
      - Do nothing when the live database already has this migration state (C(migrations_fingerprint),
        C(schema_fingerprint)), so that only a database that moved away from it is restored.
    type: dict
  keep_replaced:
    description: Keep the replaced database (renamed) so nothing written since the backup is lost for good.
    type: bool
    default: true
  roles:
    description:
      - The app's owner and app roles (see M(pg_app_roles)). When they exist, the restored database is given
        to the owner role and the app role gets its grants before the swap - a backup taken before these roles
        existed restores into a database the app can use.
    type: dict
    suboptions:
      owner:
        description: The owner role.
        type: str
        required: true
      app:
        description: The app role.
        type: str
        required: true
  compare:
    description: Count rows per table in the live and the restored database and report the differences before swapping.
    type: bool
    default: false
  jobs:
    description:
      - Parallel jobs of C(pg_restore) (C(-j)), so that tables load and indexes build side by side.
      - Above 1, C(pg_restore) needs a file it can seek in, so the backup is first copied into the database
        container (C(/tmp), mode 0600, removed as soon as C(pg_restore) ends; it needs as much free space there
        as the backup's size) and its sha256 is checked on the way in. When the copy fails (no space), the
        restore falls back to one job, with a warning. An external server's client container reads the backup
        bind-mounted read-only instead (no copy; its sha256 is checked first).
      - With 1, the backup is checked, then streamed into C(pg_restore) without a copy.
    type: int
    default: 2
  docker_cli:
    description: Docker command line client to use.
    type: str
    default: docker
attributes:
  check_mode:
    support: partial
    details: Verifies the checksum and reports what would be restored; restores nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run restores; run it only when the database must go back.
extends_documentation_fragment:
  - smart_deploy.database
  - smart_deploy.lock_heartbeat
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Put the pre-deploy database back
  pg_restore:
    backup: /srv/shop/backups/shop-3f2a1b9c0d1e-20261129T045000Z.dump
    db_container: shop-db
    db_name: shop
    db_user: shop
  register: restored
"""

RETURN = r"""
restored_from:
  description: The backup restored.
  returned: success
  type: str
replaced_database:
  description: Name the replaced live database was renamed to (absent when dropped).
  returned: success
  type: str
differences:
  description:
    - With O(compare=true), what the live database had that the backup does not - C(tables_only_live),
      C(tables_only_in_backup), C(rows_differ) (table -> live and backup row counts), C(rows_live), C(rows_backup) - and
      C(summary), the same for people, naming the tables (C(1 table with other row counts (cart_item 5 rows before, 3 after))).
  returned: success
  type: dict
migration_state:
  description: Migration state of the restored database.
  returned: success
  type: dict
unchanged:
  description: True when O(unless_state) matched and nothing was restored.
  returned: always
  type: bool
jobs:
  description: Parallel jobs C(pg_restore) ran with.
  returned: success
  type: int
seconds:
  description: Time taken by the checksum (and the copy into the container), the restore and the swap.
  returned: success
  type: float
"""

import hashlib
import json
import os
import secrets
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.args import lock_heartbeat_spec
from ansible.module_utils.smart_deploy.common import sha256_file, to_stamp, utc_now
from ansible.module_utils.smart_deploy.lock import Heartbeat
from ansible.module_utils.smart_deploy.pgcatalog import describe_restore_differences
from ansible.module_utils.smart_deploy.pgclient import PgServer, PsqlError, database_problem, database_spec
from ansible.module_utils.smart_deploy.pgexec import same_state, server_state
from ansible.module_utils.smart_deploy.pgroles import ownership_plan, parse_state, script, state_script


def quote_ident(name):
    return '"%s"' % name.replace('"', '""')


def quote_literal(text):
    return "'%s'" % text.replace("'", "''")


# Rows per table, counted by the server (format('%I') quotes the names): {"schema.table": rows}
ROW_COUNTS_SQL = """
SELECT coalesce(json_object_agg(name, n), '{}') FROM (
  SELECT format('%I.%I', schemaname, tablename) AS name,
         (xpath('/row/c/text()',
                query_to_xml(format('SELECT count(*) AS c FROM %I.%I', schemaname, tablename), false, true, '')))[1]::text::bigint AS n
  FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
) AS counted
"""


def row_counts(server, database):
    return json.loads(server.psql(ROW_COUNTS_SQL, database=database) or "{}")


def compare(server, params, restore_db):
    live = row_counts(server, params["db_name"])
    backup = row_counts(server, restore_db)
    differences = {
        "tables_only_live": sorted(set(live) - set(backup)),
        "tables_only_in_backup": sorted(set(backup) - set(live)),
        "rows_differ": {t: {"live": live[t], "backup": backup[t]} for t in sorted(set(live) & set(backup)) if live[t] != backup[t]},
        "rows_live": sum(live.values()),
        "rows_backup": sum(backup.values()),
    }
    differences["summary"] = describe_restore_differences(differences)
    return differences


def copy_into(docker, container, source, target):
    """Copy the file ``source`` into the container at ``target`` (mode 0600); return the sha256 of what was sent."""
    digest = hashlib.sha256()
    with open(source, "rb") as handle, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([docker, "exec", "-i", container, "sh", "-c", 'umask 077 && cat > "$1"', "sh", target],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        try:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                proc.stdin.write(chunk)
                digest.update(chunk)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        finally:
            returncode = proc.wait()
        if returncode != 0:
            err.seek(0)
            raise PsqlError("copying the backup into %s failed: %s" % (container, err.read().decode(errors="replace").strip()[-2000:]))
    return digest.hexdigest()


def remove_from(docker, container, target):
    subprocess.run([docker, "exec", container, "rm", "-f", target], capture_output=True, check=False)


MOUNTED_BACKUP = "/smart-deploy/backup.dump"


def run_pg_restore(server, params, restore_db, copied):
    """pg_restore into ``restore_db``: with O(jobs) jobs from the copy in the container (removed as soon as
    pg_restore ends, whatever the outcome) or, on an external server, from the backup bind-mounted into the
    client container; else streamed from the backup."""
    args = ["--exit-on-error", "-U", params["db_user"], "-d", restore_db]
    env = server.environ()
    if server.external and params["jobs"] > 1:
        cmd = server.command(["pg_restore", "-j", str(params["jobs"])] + args + [MOUNTED_BACKUP], mounts={params["backup"]: MOUNTED_BACKUP})
        proc = subprocess.run(cmd, capture_output=True, check=False, env=env)
    elif copied["path"]:
        script = 'pg_restore "$@"; status=$?; rm -f "$0"; exit $status'
        proc = subprocess.run(server.command(["sh", "-c", script, copied["path"], "-j", str(params["jobs"])] + args + [copied["path"]]),
                              capture_output=True, check=False, env=env)  # fmt: skip
        copied["path"] = None
    else:
        with open(params["backup"], "rb") as archive:
            proc = subprocess.run(server.command(["pg_restore"] + args), stdin=archive, capture_output=True, check=False, env=env)
    if proc.returncode != 0:
        raise PsqlError("pg_restore failed: %s" % proc.stderr.decode(errors="replace").strip()[-2000:])


def hand_over(server, params, restore_db):
    """Give the restored database to the owner role and the app role its grants, when those roles exist."""
    names = {"admin": params["db_user"], "owner": params["roles"]["owner"], "app": params["roles"]["app"], "database": restore_db}
    state = parse_state(server.psql(state_script(names), database=restore_db))
    if names["owner"] not in state["roles"] or names["app"] not in state["roles"]:
        return
    changes = ownership_plan(state, names)
    if changes:
        server.psql(script(changes, names), database=restore_db)


def swap(server, params, restore_db, replaced_db):
    """Swap the restored database in, in one transaction (both renames or neither). New connections to
    the live database are refused meanwhile and existing ones terminated (the app reconnects)."""
    live = params["db_name"]
    block = "ALTER DATABASE %s WITH ALLOW_CONNECTIONS false;" % quote_ident(live)
    terminate = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid();" % (
        quote_literal(live)
    )
    renames = "BEGIN;\nALTER DATABASE %s RENAME TO %s;\nALTER DATABASE %s RENAME TO %s;\nCOMMIT;" % (
        quote_ident(live), quote_ident(replaced_db), quote_ident(restore_db), quote_ident(live))  # fmt: skip
    try:
        for attempt in range(25):
            # one psql run per attempt: (block,) terminate, both renames
            script = "\n".join(([block] if attempt == 0 else []) + [terminate, renames])
            try:
                server.psql(script, database="postgres")
                break
            except PsqlError:  # a terminated session had not gone yet
                if attempt == 24:
                    raise
                time.sleep(0.2)
    except PsqlError:
        server.psql("ALTER DATABASE %s WITH ALLOW_CONNECTIONS true;" % quote_ident(live), database="postgres")
        raise
    # the restored database now has the live name; the replaced one is kept closed to the app
    if not params["keep_replaced"]:
        server.psql("DROP DATABASE %s WITH (FORCE);" % quote_ident(replaced_db), database="postgres")
        return None
    return replaced_db


def main():
    spec = database_spec()
    for option, alias in (("db_container", "container"), ("db_name", "database"), ("db_user", "user")):
        spec[option]["aliases"] = [alias]
    module = AnsibleModule(
        argument_spec=dict(
            spec,
            backup=dict(type="path", required=True),
            expected_state=dict(type="dict"),
            unless_state=dict(type="dict"),
            keep_replaced=dict(type="bool", default=True),
            compare=dict(type="bool", default=False),
            jobs=dict(type="int", default=2),
            roles=dict(type="dict", options=dict(owner=dict(type="str", required=True), app=dict(type="str", required=True))),
            docker_cli=dict(type="str", default="docker"),
            **lock_heartbeat_spec(),
        ),
        supports_check_mode=True,
    )
    problem = database_problem(module.params)
    if problem:
        module.fail_json(msg=problem)
    with Heartbeat.from_params(module.params.get("lock")):  # restoring a big database: the deploy lock stays fresh
        restore(module, module.params)


def restore(module, params):
    backup = params["backup"]
    metadata_path = backup[: -len(".dump")] + ".json" if backup.endswith(".dump") else None
    if not os.path.isfile(backup) or not metadata_path or not os.path.isfile(metadata_path):
        module.fail_json(msg="backup %s or its metadata file is missing" % backup)
    if params["jobs"] < 1:
        module.fail_json(msg="jobs must be 1 or more, got %d" % params["jobs"])
    with open(metadata_path, encoding="utf-8") as handle:
        metadata = json.load(handle)
    if not metadata.get("verified"):
        module.fail_json(msg="backup %s was never verified: refusing to restore it" % backup)
    if module.check_mode:
        check_sha256(module, backup, sha256_file(backup), metadata)
        module.exit_json(changed=True, restored_from=backup, msg="would restore %s into %s" % (backup, params["db_name"]))

    docker = module.get_bin_path(params["docker_cli"], required=True)
    server = PgServer.from_params(docker, params)
    started = time.monotonic()
    # pg_restore -j reads a file it can seek in: a copy in the container, checked on its way in (an external
    # server's client container reads the backup bind-mounted)
    copied = {"path": "/tmp/smart-deploy-restore-%s.dump" % secrets.token_hex(8) if params["jobs"] > 1 and not server.external else None}
    try:
        actual = None
        if copied["path"]:
            try:
                actual = copy_into(docker, params["db_container"], backup, copied["path"])
            except PsqlError as exc:  # no room for the copy, say: one job, streamed, is slower but needs none
                remove_from(docker, params["db_container"], copied["path"])
                copied["path"] = None
                module.warn("restoring with one job instead of %d: %s" % (params["jobs"], exc))
        check_sha256(module, backup, actual or sha256_file(backup), metadata)
        jobs = params["jobs"] if copied["path"] or server.external else 1
        result = restore_and_swap(module, params, server, metadata, copied)
    finally:
        if copied["path"]:  # not restored from (pg_restore removes it)
            remove_from(docker, params["db_container"], copied["path"])
    result.update(jobs=jobs, seconds=round(time.monotonic() - started, 3))
    module.exit_json(**result)


def check_sha256(module, backup, actual, metadata):
    if actual != metadata.get("sha256"):
        module.fail_json(msg="backup %s is damaged: sha256 %s, metadata says %s" % (backup, actual, metadata.get("sha256")))


def restore_and_swap(module, params, server, metadata, copied):
    backup = params["backup"]
    expected = params["expected_state"] or metadata.get("migration_state") or {}
    if params["unless_state"]:
        try:
            live_state = server_state(server, params["db_name"])
        except PsqlError as exc:
            module.fail_json(msg="cannot read the live database's state: %s" % exc)
        if same_state(live_state, params["unless_state"]):
            module.exit_json(changed=False, unchanged=True, restored_from=None, msg="the live database is already in that state")
    stamp = to_stamp(utc_now()).lower()
    restore_db = "%s__restore_%s" % (params["db_name"], stamp)
    replaced_db = "%s__replaced_%s" % (params["db_name"], stamp)
    created = False
    try:
        # owned by the live database's owner (else the user): one psql run, the owner passed in a psql variable
        create = "SELECT coalesce((SELECT nullif(pg_get_userbyid(datdba), '') FROM pg_database WHERE datname = %s), %s) AS restore_owner"
        create = "%s \\gset\nCREATE DATABASE %s OWNER :\"restore_owner\";" % (
            create % (quote_literal(params["db_name"]), quote_literal(params["db_user"])), quote_ident(restore_db))  # fmt: skip
        server.psql(create, database="postgres")
        created = True
        run_pg_restore(server, params, restore_db, copied)
        state = server_state(server, restore_db)
        if expected.get("migrations_fingerprint") and not same_state(state, expected):
            raise PsqlError("the restored database's migrations or schema are not those recorded for the backup")
        if params["roles"]:
            hand_over(server, params, restore_db)
        differences = compare(server, params, restore_db) if params["compare"] else None
        replaced = swap(server, params, restore_db, replaced_db)
        created = False
    except PsqlError as exc:
        if created:
            try:
                server.psql("DROP DATABASE IF EXISTS %s WITH (FORCE);" % quote_ident(restore_db), database="postgres")
            except PsqlError:
                pass
        module.fail_json(msg="restoring %s failed; the live database %s was left as it was: %s" % (backup, params["db_name"], exc))
    result = dict(
        changed=True,
        unchanged=False,
        restored_from=backup,
        migration_state={k: state[k] for k in ("applied_count", "migrations_fingerprint", "schema_fingerprint")},
        differences=differences,
    )
    if replaced:
        result["replaced_database"] = replaced
    return result


if __name__ == "__main__":
    main()
