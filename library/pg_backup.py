#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_backup
short_description: Verified pg_dump backup of a PostgreSQL database running in a container
description:
  - Runs C(pg_dump -Fc) inside the database container, so the dump tool always matches the server.
  - Streams the dump to a hidden temporary file (mode 0600) while computing its sha256, verifies it by
    a full read (C(pg_restore -f /dev/null), which, unlike C(pg_restore --list), fails on truncated or
    corrupted archives), writes the metadata file, then renames the dump into place. A backup that
    fails verification never gets a final name.
  - Backups are named C(<app>-<release>-<YYYYmmddTHHMMSSZ>.dump) with C(<same>.json) metadata (app,
    release, sizes, sha256, timings, server and pg_dump versions, table count, migration state).
options:
  container:
    description: Name of the running database container (C(pg_dump) and C(pg_restore) run in it, over its local socket).
    type: str
    required: true
  database:
    description: Database to dump.
    type: str
    required: true
  user:
    description: Database role used for the dump.
    type: str
    required: true
  dest:
    description: Folder the backup is written to. Created with mode 0700 when missing.
    type: path
    required: true
  app:
    description: Application name (first part of the file name).
    type: str
    required: true
  release:
    description: Release id the backup belongs to (the release about to be deployed).
    type: str
    required: true
  migration_state:
    description: Migration state to record in the metadata (for example applied count and fingerprint).
    type: dict
    default: {}
  min_free_factor:
    description:
      - Free space needed in O(dest) before starting, as a multiple of the database's size (a custom-format
        dump is usually much smaller, but incompressible data is not). 0 disables the check.
    type: float
    default: 1.0
  docker_cli:
    description: Docker command line client to use.
    type: str
    default: docker
attributes:
  check_mode:
    support: full
    details: Reports the backup that would be taken; writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run takes a new backup; run it only when the database is about to change.
extends_documentation_fragment:
  - smart_deploy.lock_heartbeat
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Back up the shop database before migrating
  pg_backup:
    container: shop-db
    database: shop
    user: shop
    dest: /srv/shop/backups
    app: shop
    release: 3f2a1b9c0d1e
    migration_state:
      applied: 17
  register: backup
"""

RETURN = r"""
path:
  description: Path of the verified dump.
  returned: success
  type: str
  sample: /srv/shop/backups/shop-3f2a1b9c0d1e-20261129T045000Z.dump
metadata_path:
  description: Path of the metadata file.
  returned: success
  type: str
metadata:
  description: The metadata written beside the dump.
  returned: success
  type: dict
  sample: {app: shop, release: 3f2a1b9c0d1e, size: 28734, sha256: "9f86d0...", verified: true}
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.args import lock_heartbeat_spec
from ansible.module_utils.smart_deploy.common import atomic_write_json, fsync_dir, to_iso, to_stamp, utc_now
from ansible.module_utils.smart_deploy.lock import Heartbeat


class BackupError(Exception):
    pass


def run_capture(cmd, stdin=None):
    """Run ``cmd`` (a list), return stdout as text; raise BackupError with stderr on failure."""
    proc = subprocess.run(cmd, stdin=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        raise BackupError("%s exited %d: %s" % (" ".join(cmd[:4]), proc.returncode, proc.stderr.decode(errors="replace").strip()))
    return proc.stdout.decode(errors="replace")


def dump_to_file(cmd, path):
    """Stream the stdout of ``cmd`` into a new file at ``path`` (mode 0600); return (size, sha256)."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        proc.stdout.close()
        returncode = proc.wait()
        out.flush()
        os.fsync(out.fileno())
        if returncode != 0:
            err.seek(0)
            raise BackupError("pg_dump exited %d: %s" % (returncode, err.read().decode(errors="replace").strip()))
    if size == 0:
        raise BackupError("pg_dump produced an empty file")
    return size, digest.hexdigest()


def check_free_space(params, docker):
    """Refuse to start when the backup folder cannot hold a dump as big as the database."""
    if params["min_free_factor"] <= 0:
        return None
    size = int(run_capture([docker, "exec", "-i", params["container"], "psql", "-XAtq", "-U", params["user"], "-d", params["database"],
                            "-c", "SELECT pg_database_size(current_database())"]).strip())  # fmt: skip
    free = shutil.disk_usage(params["dest"]).free
    needed = int(size * params["min_free_factor"])
    if free < needed:
        raise BackupError("not enough free space in %s: %d MiB free, the database is %d MiB (min_free_factor %.1f); "
                          "free some space (./deploy cleanup) and run again" % (params["dest"], free >> 20, size >> 20,
                                                                               params["min_free_factor"]))  # fmt: skip
    return {"database_bytes": size, "free_bytes": free}


def take_backup(params, docker):
    container, database, user = params["container"], params["database"], params["user"]
    dest = params["dest"]
    started = utc_now()
    name = "%s-%s-%s.dump" % (params["app"], params["release"], to_stamp(started))
    final_path = os.path.join(dest, name)
    metadata_path = final_path[: -len(".dump")] + ".json"
    partial_path = os.path.join(dest, "." + name + ".partial")
    exec_prefix = [docker, "exec", "-i", container]
    try:
        space = check_free_space(params, docker)
        server_version = run_capture(exec_prefix + ["psql", "-XAtq", "-U", user, "-d", database, "-c", "SHOW server_version"]).strip()
        pg_dump_version = run_capture(exec_prefix + ["pg_dump", "--version"]).strip()

        t0 = time.monotonic()
        size, sha256 = dump_to_file(exec_prefix + ["pg_dump", "-Fc", "-U", user, "-d", database], partial_path)
        dump_seconds = time.monotonic() - t0

        t0 = time.monotonic()
        with open(partial_path, "rb") as archive:
            run_capture(exec_prefix + ["pg_restore", "-f", "/dev/null"], stdin=archive)
        with open(partial_path, "rb") as archive:
            listing = run_capture(exec_prefix + ["pg_restore", "--list"], stdin=archive)
        verify_seconds = time.monotonic() - t0
        tables = sum(1 for line in listing.splitlines() if " TABLE DATA " in line)

        metadata = dict(
            tool="smart-deploy",
            app=params["app"],
            release=params["release"],
            file=name,
            created=to_iso(started),
            database=database,
            size=size,
            sha256=sha256,
            verified=True,
            verification="pg_restore -f /dev/null (full read) + pg_restore --list",
            tables=tables,
            dump_seconds=round(dump_seconds, 3),
            verify_seconds=round(verify_seconds, 3),
            server_version=server_version,
            pg_dump_version=pg_dump_version,
            migration_state=params["migration_state"],
            database_bytes=(space or {}).get("database_bytes"),
        )
        atomic_write_json(metadata_path, metadata, mode=0o600)
        os.replace(partial_path, final_path)
        fsync_dir(dest)
    except BaseException:
        for leftover in (partial_path,):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass
        raise
    return final_path, metadata_path, metadata


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container=dict(type="str", required=True),
            database=dict(type="str", required=True),
            user=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            app=dict(type="str", required=True),
            release=dict(type="str", required=True),
            migration_state=dict(type="dict", default={}),
            min_free_factor=dict(type="float", default=1.0),
            docker_cli=dict(type="str", default="docker"),
            **lock_heartbeat_spec(),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for key in ("app", "release"):
        value = params[key]
        if not value or "/" in value or value.startswith("."):
            module.fail_json(msg="%s %r cannot be part of a backup file name" % (key, value))
    docker = module.get_bin_path(params["docker_cli"], required=True)

    if module.check_mode:
        module.exit_json(
            changed=True,
            msg="would back up %s from container %s into %s" % (params["database"], params["container"], params["dest"]),
        )

    if not os.path.isdir(params["dest"]):
        os.makedirs(params["dest"], mode=0o700)
    os.chmod(params["dest"], 0o700)
    try:
        with Heartbeat.from_params(params.get("lock")):  # a big database: the deploy lock stays fresh
            path, metadata_path, metadata = take_backup(params, docker)
    except BackupError as exc:
        module.fail_json(
            msg="backup of database %s in container %s failed, nothing was kept: %s" % (params["database"], params["container"], exc)
        )
    module.exit_json(changed=True, path=path, metadata_path=metadata_path, metadata=metadata)


if __name__ == "__main__":
    main()
