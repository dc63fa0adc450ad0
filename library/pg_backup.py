#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_backup
short_description: Verified pg_dump backup of the app's PostgreSQL database (in its container or an external server)
description:
  - Runs C(pg_dump -Fc) inside the database container (O(db_mode=container)), or in a throwaway client container
    of the external server's major version (O(db_mode=external)), so the dump tool always matches the server.
  - O(db_container), O(db_name) and O(db_user) were called C(container), C(database) and C(user); those names
    are still accepted.
  - Writes the dump straight into a hidden temporary file (mode 0600), as C(pg_dump -Fc > file) does, and
    follows the file as it grows - every byte is read back, hashed (sha256) and fed to a C(pg_restore -f
    /dev/null) running at the lowest CPU priority, a full read (every data block read and decompressed)
    which, unlike C(pg_restore --list), fails on truncated or corrupted archives. Then C(pg_restore --list)
    reads the file's table of contents, the metadata file is written and the dump renamed into place. A
    backup that fails verification never gets a final name.
  - The verification takes the CPU the dump leaves idle (C(nice -n 19) in the container) instead of a
    second pass after the dump; the dump never waits for it, and what is left of it when the dump ends is
    finished then.
  - Backups are named C(<app>-<release>-<YYYYmmddTHHMMSSZ>.dump) with C(<same>.json) metadata (app,
    release, sizes, sha256, timings, server and pg_dump versions, table count, migration state).
options:
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
  - smart_deploy.database
  - smart_deploy.lock_heartbeat
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Back up the shop database before migrating
  pg_backup:
    db_container: shop-db
    db_name: shop
    db_user: shop_owner
    dest: /srv/shop/backups
    app: shop
    release: 3f2a1b9c0d1e
    migration_state:
      applied: 17
  register: backup

- name: Back up an external server's database (pg_dump of the server's major version, in a client container)
  pg_backup:
    db_mode: external
    db_host: db.example.internal
    db_port: 5432
    db_sslmode: require
    db_name: shop
    db_user: shop_owner
    db_password: "{{ vault_owner_password }}"
    db_network: shop-net
    dest: /srv/shop/backups
    app: shop
    release: 3f2a1b9c0d1e
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
import threading
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.args import lock_heartbeat_spec
from ansible.module_utils.smart_deploy.common import atomic_write_json, fsync_dir, to_iso, to_stamp, utc_now
from ansible.module_utils.smart_deploy.lock import Heartbeat
from ansible.module_utils.smart_deploy.pgclient import PgServer, PsqlError, database_problem, database_spec

VERIFICATION = (
    "every byte of the file read back as pg_dump wrote it, hashed and fed to pg_restore -f /dev/null: every data block "
    "of every table of contents entry read and decompressed (zlib checks each block), up to the end of the last one; "
    "pg_restore --list read the file's table of contents"
)


class BackupError(Exception):
    pass


def run_capture(cmd, stdin=None, env=None):
    """Run ``cmd`` (a list), return stdout as text; raise BackupError with stderr on failure."""
    proc = subprocess.run(cmd, stdin=stdin, capture_output=True, check=False, env=env)
    if proc.returncode != 0:
        raise BackupError("%s exited %d: %s" % (" ".join(cmd[:4]), proc.returncode, proc.stderr.decode(errors="replace").strip()))
    return proc.stdout.decode(errors="replace")


# The verifying pg_restore runs at the lowest CPU priority (when the container has nice): it takes the CPU
# pg_dump and the server leave idle, then finishes what is left once the dump has ended.
LOW_PRIORITY = 'if command -v nice >/dev/null 2>&1; then exec nice -n 19 "$@"; fi; exec "$@"'


def feed(proc, chunk):
    """Write ``chunk`` to the stdin of ``proc``; False when it stopped reading (its exit code says why)."""
    try:
        proc.stdin.write(chunk)
        return True
    except (BrokenPipeError, ValueError, OSError):
        return False


def dump_to_file(cmd, path, verify_cmd=None, poll=0.02, env=None):
    """Run ``cmd`` with its stdout going straight into a new file at ``path`` (mode 0600), as ``cmd > path``
    would, and follow the file as it grows: every byte is read back from it, hashed (sha256) and, with
    ``verify_cmd``, fed to a verifying process. Following never slows the dump down: a verifier that
    lags only makes the follower lag. Return (size, sha256, verify_wait): the seconds the following and
    the verification ran on after the dump had ended."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(path, "rb", buffering=0) as source, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as verify_err:
        proc = verifier = None
        try:
            verifier = (
                subprocess.Popen(verify_cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=verify_err, env=env)
                if verify_cmd
                else None
            )
            proc = subprocess.Popen(cmd, stdout=fd, stderr=err, env=env)
            ended = []  # when the dump ended, noted by a thread of its own (the follower may be busy then)
            waiter = threading.Thread(target=lambda: ended.append((proc.wait(), time.monotonic())), daemon=True)
            waiter.start()
            verifying = verifier is not None
            finished = False
            while True:
                chunk = source.read(1 << 20)
                if chunk:
                    digest.update(chunk)
                    size += len(chunk)
                    verifying = verifying and feed(verifier, chunk)
                elif finished:  # read to the end after the dump had ended: all of it
                    break
                elif ended:
                    finished = True
                else:
                    time.sleep(poll)
            waiter.join()
            returncode, ended_at = ended[0]
            if verifier:
                try:
                    verifier.stdin.close()
                except (BrokenPipeError, OSError):
                    pass
            verify_code = verifier.wait() if verifier else 0
            verify_wait = time.monotonic() - ended_at
            os.fsync(fd)
        finally:
            os.close(fd)
            for running in (proc, verifier):
                if running is not None and running.poll() is None:
                    running.kill()
                    running.wait()
        if returncode != 0:
            err.seek(0)
            raise BackupError("pg_dump exited %d: %s" % (returncode, err.read().decode(errors="replace").strip()))
        if verify_code != 0:
            verify_err.seek(0)
            raise BackupError("the dump failed verification, pg_restore exited %d: %s"
                              % (verify_code, verify_err.read().decode(errors="replace").strip()[-2000:]))  # fmt: skip
    if size == 0:
        raise BackupError("pg_dump produced an empty file")
    return size, digest.hexdigest(), verify_wait


def listed(listing, field):
    """A field of the header ``pg_restore --list`` prints (``;     Dumped by pg_dump version: 15.5``), or None."""
    for line in listing.splitlines():
        text = line.lstrip("; \t")
        if line.startswith(";") and text.startswith(field + ":"):
            return text[len(field) + 1 :].strip() or None
    return None


def check_free_space(params, server):
    """Refuse to start when the backup folder cannot hold a dump as big as the database."""
    if params["min_free_factor"] <= 0:
        return None
    try:
        size = int(server.psql("SELECT pg_database_size(current_database())"))
    except PsqlError as exc:
        raise BackupError(str(exc)) from exc
    free = shutil.disk_usage(params["dest"]).free
    needed = int(size * params["min_free_factor"])
    if free < needed:
        raise BackupError("not enough free space in %s: %d MiB free, the database is %d MiB (min_free_factor %.1f); "
                          "free some space (./deploy cleanup) and run again" % (params["dest"], free >> 20, size >> 20,
                                                                               params["min_free_factor"]))  # fmt: skip
    return {"database_bytes": size, "free_bytes": free}


def take_backup(params, server):
    database, user = params["db_name"], params["db_user"]
    dest = params["dest"]
    started = utc_now()
    name = "%s-%s-%s.dump" % (params["app"], params["release"], to_stamp(started))
    final_path = os.path.join(dest, name)
    metadata_path = final_path[: -len(".dump")] + ".json"
    partial_path = os.path.join(dest, "." + name + ".partial")
    env = server.environ()
    try:
        space = check_free_space(params, server)
        t0 = time.monotonic()
        try:  # an external server's client image (its major version) before anything is written
            verify_cmd = server.command(["sh", "-c", LOW_PRIORITY, "sh", "pg_restore", "-f", "/dev/null"])
            dump_cmd = server.command(["pg_dump", "-Fc", "-U", user, "-d", database])
        except PsqlError as exc:
            raise BackupError(str(exc)) from exc
        size, sha256, verify_wait = dump_to_file(dump_cmd, partial_path, verify_cmd, env=env)
        dump_seconds = time.monotonic() - t0

        t0 = time.monotonic()
        with open(partial_path, "rb") as archive:  # the table of contents, at the start of the file
            listing = run_capture(server.command(["pg_restore", "--list"]), stdin=archive, env=env)
        verify_seconds = verify_wait + time.monotonic() - t0
        tables = sum(1 for line in listing.splitlines() if " TABLE DATA " in line)
        server_version = (
            listed(listing, "Dumped from database version")
            or run_capture(server.command(["psql", "-XAtq", "-U", user, "-d", database, "-c", "SHOW server_version"]), env=env).strip()
        )
        pg_dump_version = listed(listing, "Dumped by pg_dump version")
        if pg_dump_version:
            pg_dump_version = "pg_dump (PostgreSQL) " + pg_dump_version
        else:
            pg_dump_version = run_capture(server.command(["pg_dump", "--version"]), env=env).strip()

        metadata = dict(
            tool="smart-deploy",
            app=params["app"],
            release=params["release"],
            file=name,
            created=to_iso(started),
            database=database,
            db_mode=server.mode,
            size=size,
            sha256=sha256,
            verified=True,
            verification=VERIFICATION,
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
    spec = database_spec()
    for option, alias in (("db_container", "container"), ("db_name", "database"), ("db_user", "user")):
        spec[option]["aliases"] = [alias]
    module = AnsibleModule(
        argument_spec=dict(
            spec,
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
    problem = database_problem(params)
    if problem:
        module.fail_json(msg=problem)
    for key in ("app", "release"):
        value = params[key]
        if not value or "/" in value or value.startswith("."):
            module.fail_json(msg="%s %r cannot be part of a backup file name" % (key, value))
    docker = module.get_bin_path(params["docker_cli"], required=True)
    server = PgServer.from_params(docker, params, labels={"smart-deploy.app": params["app"]})

    if module.check_mode:
        module.exit_json(
            changed=True,
            msg="would back up %s from %s into %s" % (params["db_name"], server.describe(), params["dest"]),
        )

    if not os.path.isdir(params["dest"]):
        os.makedirs(params["dest"], mode=0o700)
    os.chmod(params["dest"], 0o700)
    try:
        with Heartbeat.from_params(params.get("lock")):  # a big database: the deploy lock stays fresh
            path, metadata_path, metadata = take_backup(params, server)
    except BackupError as exc:
        module.fail_json(msg="backup of database %s on %s failed, nothing was kept: %s" % (params["db_name"], server.describe(), exc))
    module.exit_json(changed=True, path=path, metadata_path=metadata_path, metadata=metadata)


if __name__ == "__main__":
    main()
