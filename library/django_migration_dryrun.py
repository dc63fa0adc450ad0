#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: django_migration_dryrun
short_description: Rehearse a release's Django migrations on a scratch copy of production
description:
  - Reads production's migration state with C(psql) in the database container, or for an external server
    (O(db_mode=external)) in a client container of its major version (no application code
    touches production), then runs smart-deploy's driver in a container of the new release image with
    no network at all to compute the plan and the pre-checks (inconsistent history, conflicting leaf
    migrations, model changes without migrations). Nothing pending ends there, without a copy.
  - Otherwise starts a scratch PostgreSQL (the production database's image) on an internal Docker
    network of its own, copies production into it (the schema of every table; the rows of the tables
    the pending migrations touch, of the tables they reference, and of small tables; every row when a
    migration runs Python or raw SQL), checks the copy's schema and migration history against production's (line by
    line, in a form a dump and restore leaves unchanged; the objects that differ are named), and runs the driver
    there, on that network only, to apply the pending migrations one at a time.
  - The driver points Django at the database smart-deploy chose, whatever the app's settings read; it
    replaces C(settings.DATABASES) with C(SMART_DEPLOY_DB_HOST/PORT/NAME/USER/PASSWORD), which this module
    sets to the scratch copy for the rehearsal (and to a database with no host for the offline analysis).
    C(POSTGRES_*) and C(DATABASE_URL) name the scratch copy too, for settings that read those.
  - Before the copy, estimates its size (production's size of the tables copied with their rows, indexes
    included) and refuses, before creating anything, when the file system holding Docker's data (C(docker
    info) C(DockerRootDir)) has less free than that times O(disk_factor) plus O(disk_margin_mb).
  - The scratch database and the one-off containers run within memory, CPU and process limits
    (O(scratch_memory), O(oneoff_memory)...).
  - Returns the report the strategy is decided from (M(migration_strategy)) - per migration its outcome,
    duration, statements, locks and how long they were held, SQLSTATE on failure, fake proof - and
    removes the scratch database, container and network on every path, failures and interrupts
    included. Scratch resources left by a killed earlier run of the same app are removed first.
options:
  image:
    description: The new release's backend image (it holds the Django project and its migrations).
    type: str
    required: true
  db_image:
    description: Image of the scratch database. Defaults to the production container's image (for an external server, the
      client image of its major version, O(db_client_image)), so versions match.
    type: str
  app:
    description: Application name, prefix of the scratch resources (the name every smart-deploy module calls C(app)).
    type: str
    required: true
    aliases: [app_name]
  rehearse:
    description: Copy and rehearse. V(false) stops after the plan and the pre-checks.
    type: bool
    default: true
  small_table_bytes:
    description: Tables up to this size are copied with their rows even when no pending migration touches them.
    type: int
    default: 8388608
  slow_seconds:
    description: A migration slower than this on the copy gets a warning.
    type: float
    default: 5
  timeout:
    description: Seconds the rehearsal may take before it is stopped (and counts as failed).
    type: int
    default: 1800
  disk_factor:
    description:
      - The copy needs this many times production's size of the tables it copies (indexes included) free on
        the file system of Docker's data, plus O(disk_margin_mb). V(0) with O(disk_margin_mb=0) checks nothing.
    type: float
    default: 2.0
  disk_margin_mb:
    description: MiB needed free on the file system of Docker's data on top of the copy's estimate times O(disk_factor).
    type: int
    default: 512
  driver_source:
    description:
      - Text of smart-deploy's driver, mounted into the one-off container. Set by this module's action
        plugin (read on the controller); leave it unset.
    type: str
extends_documentation_fragment:
  - smart_deploy.app_container
  - smart_deploy.database
  - smart_deploy.scratch_database
  - smart_deploy.lock_heartbeat
attributes:
  check_mode:
    support: full
    details: The rehearsal never changes production or anything that outlives it, so it runs in check mode too.
  diff_mode:
    support: none
  idempotent:
    support: full
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Rehearse the migrations of the new release
  django_migration_dryrun:
    image: shop-backend:3f2a1b9c0d1e
    db_container: shop-db
    db_name: shop
    db_user: shop
    app: shop
    env: "{{ shop_container_env }}"
    disk_factor: 2.0
    disk_margin_mb: 512
    scratch_memory: 2g
    lock: "{{ smart_deploy_lock_hold | default(omit) }}"
  register: dryrun

- name: Only the plan and the pre-checks (emergency deploys)
  django_migration_dryrun:
    image: shop-backend:3f2a1b9c0d1e
    db_container: shop-db
    db_name: shop
    db_user: shop
    app: shop
    rehearse: false
  register: plan
"""

RETURN = r"""
report:
  description: The rehearsal report.
  returned: always
  type: dict
  contains:
    production:
      description: Production before the rehearsal (applied migrations, their count, migrations and schema fingerprints, size).
      type: dict
    prechecks:
      description:
        - Found before any copy - C(errors) (inconsistent history, conflicting leaves - no copy is made), C(conflicts),
          C(unknown_applied) and C(missing_migrations), the model changes without a migration as the migrations
          makemigrations would write (never written) with their C(kind) (V(state-only), V(sql), V(unknown)), C(operations)
          and the C(sql) sqlmigrate gives, generated offline; M(migration_strategy) decides on them (warning or abort), the
          rehearsal still runs.
      type: dict
    pending:
      description: Pending migrations in plan order, with what each does and touches.
      type: list
    copy:
      description:
        - How the copy was made (mode, tables with data, bytes, seconds, fidelity) or why it was skipped.
        - When the copy is not faithful, C(differences) - C(schema), each object whose lines differ as C(object), C(production)
          and C(copy) (the line as each database printed it, null where it has none), compared in a form a dump and
          restore leaves unchanged; C(history), the applied migrations only in production or only in the copy.
      type: dict
    disk:
      description:
        - The free-space check before the copy - C(path) (Docker's data), C(estimate_bytes) (production's size of
          the tables copied with their rows, indexes included), C(factor), C(margin_bytes), C(needed_bytes),
          C(free_bytes) and C(enough) (null when the free space could not be read, which is not a refusal).
      returned: when a copy was planned
      type: dict
    migrations:
      description: Per migration, the outcome on the copy (applied, faked, failed, not reached) with its evidence.
      type: list
    warnings:
      description: Dangerous operations with the figures measured on the copy.
      type: list
    timings:
      description: Seconds spent per phase.
      type: dict
    scratch:
      description: Scratch resources swept before and left after (always empty lists after a normal run).
      type: dict
"""

import secrets
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.args import (
    app_container_spec,
    database_container_spec,
    full_env,
    lock_heartbeat_spec,
    scratch_database_spec,
)
from ansible.module_utils.smart_deploy.lock import Heartbeat
from ansible.module_utils.smart_deploy.oneoff import DriverError, limits_problem, oneoff_limits, oneoff_name, run_driver
from ansible.module_utils.smart_deploy.pgcatalog import (
    copy_plan,
    describe_copy_differences,
    disk_check,
    disk_refusal,
    dump_pattern,
    human_bytes,
)
from ansible.module_utils.smart_deploy.pgclient import PgServer, database_problem
from ansible.module_utils.smart_deploy.pgexec import (
    PsqlError,
    container_running,
    database_state,
    docker_ok,
    server_state,
    state_differences,
)
from ansible.module_utils.smart_deploy.scratch import (
    SCRATCH_SHM_BYTES,
    Interrupted,
    Scratch,
    ScratchError,
    docker_root_dir,
    driver_db_env,
    free_bytes,
    raise_on_signals,
    scratch_limits,
    sweep,
)
from ansible.module_utils.smart_deploy.strategy import DEFECT_CODE

EMPTY_STATE = {"applied": [], "applied_count": 0, "tables": {}, "foreign_keys": [], "database_bytes": 0}


class RehearsalError(Exception):
    pass


class NotEnoughDisk(RehearsalError):
    """Too little free disk for the copy: raised before anything is created."""


def production_server(docker, params):
    """Production's server and the login the copy and the state reads use (module_utils/smart_deploy/pgclient.py)."""
    return PgServer.from_params(docker, params, labels={"smart-deploy.app": params["app"]})


def copy_database(docker, params, scratch, plan):
    """Stream production into the scratch database: pg_dump in the production container (or, for an external
    server, in a client container of its major version, over the network), pg_restore in the scratch one,
    rows left out for the tables the plan keeps schema-only. Returns bytes moved."""
    import subprocess
    import tempfile

    server = production_server(docker, params)
    dump_args = ["pg_dump", "-Fc", "-Z0", "-U", params["db_user"], "-d", params["db_name"]]
    dump_args += ["--exclude-table-data=%s" % dump_pattern(table) for table in plan["tables_schema_only"]]
    dump_cmd = server.command(dump_args)
    restore_cmd = [docker, "exec", "-i", scratch.container, "pg_restore", "--no-owner", "--no-acl", "--exit-on-error",
                   "-U", scratch.user, "-d", scratch.database]  # fmt: skip
    moved = 0
    with tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as restore_err:
        dump = subprocess.Popen(dump_cmd, stdout=subprocess.PIPE, stderr=dump_err, env=server.environ())
        restore = subprocess.Popen(restore_cmd, stdin=subprocess.PIPE, stderr=restore_err)
        try:
            for chunk in iter(lambda: dump.stdout.read(1 << 20), b""):
                restore.stdin.write(chunk)
                moved += len(chunk)
        except BrokenPipeError:
            pass
        finally:
            try:
                restore.stdin.close()
            except BrokenPipeError:
                pass
            dump_rc = dump.wait()
            restore_rc = restore.wait()
        if dump_rc != 0:
            dump_err.seek(0)
            raise RehearsalError("pg_dump of production failed: %s" % dump_err.read().decode(errors="replace").strip()[-1500:])
        if restore_rc != 0:
            restore_err.seek(0)
            raise RehearsalError("restoring the copy failed: %s" % restore_err.read().decode(errors="replace").strip()[-1500:])
    return moved


def read_production(docker, params):
    server = production_server(docker, params)
    if not server.external and not container_running(docker, params["db_container"]):
        return dict(EMPTY_STATE, exists=False, **fingerprints_of_nothing())
    # an external server is not started by smart-deploy: one that does not answer is an error, not "no production";
    # a server without the app's database yet (the first deploy: roles/database creates it) has no production
    if server.external:
        literal = "'%s'" % params["db_name"].replace("'", "''")
        if server.psql("SELECT count(*) FROM pg_database WHERE datname = %s" % literal, database="postgres") == "0":
            return dict(EMPTY_STATE, exists=False, **fingerprints_of_nothing())
    state = server_state(server, params["db_name"], with_tables=True, with_lines=True)
    state["exists"] = True
    return state


def fingerprints_of_nothing():
    from ansible.module_utils.smart_deploy.pgcatalog import fingerprint, migrations_fingerprint

    return {"migrations_fingerprint": migrations_fingerprint([]), "schema_fingerprint": fingerprint("")}


def offline_env(params):
    """The offline analysis's environment: the app's, with the driver's database override set (no host,
    no password: the container has no network and the analysis connects nowhere) so that Django is set
    up on a PostgreSQL 'default' alone, whatever the app's settings say."""
    return dict(params["full_env"], **driver_db_env("", "", params["db_name"], params["db_user"], ""))


def rehearse(module, docker, params, report, production):
    """The copy and the rehearsal; fills ``report`` as it goes so a failure still says how far it got."""
    timings = report["timings"]
    pending = report["pending"]
    unknown = any(m["tables_unknown"] for m in pending)
    touched = None if unknown else {t for m in pending for t in m["tables"]}
    plan = copy_plan(production["tables"], production["foreign_keys"], touched, params["small_table_bytes"])
    if unknown:
        plan["why_full"] = "a pending migration runs Python or raw SQL, which may read any table: %s" % ", ".join(
            m["migration"] for m in pending if m["tables_unknown"]
        )
    report["copy"] = dict(plan, skipped=False, production_exists=production["exists"])
    check_disk(docker, params, report, plan)
    if params.get("db_mode") == "external":  # a scratch server of production's major version, so its dump restores
        image = params["db_image"] or production_server(docker, params).image()
    else:
        image = params["db_image"] or image_of(docker, params["db_container"]) or "postgres:15-bookworm"
    scratch = Scratch(docker, params["app"], image, limits=scratch_limits(params))
    report["scratch"]["run_id"] = scratch.run_id
    try:
        started = time.monotonic()
        scratch.start()
        timings["scratch_start"] = round(time.monotonic() - started, 3)
        started = time.monotonic()
        if production["exists"]:
            report["copy"]["bytes_streamed"] = copy_database(docker, params, scratch, plan)
        timings["copy"] = round(time.monotonic() - started, 3)
        copied = database_state(docker, scratch.container, scratch.user, scratch.database, with_lines=True)
        # compared line by line in canonical form (a dump and restore prints some expressions differently)
        differences = state_differences(production, copied)
        report["copy"]["fidelity"] = not (differences["schema"] or differences["history"])
        if not report["copy"]["fidelity"]:
            report["copy"]["differences"] = differences
            report["errors"].append("the copy's schema or migration history differs from production's: the copy cannot be trusted: %s"
                                    % describe_copy_differences(differences["schema"], differences["history"]))  # fmt: skip
            return
        started = time.monotonic()
        name = oneoff_name("%s-scratch" % params["app"])
        try:
            result, _output = run_driver(
                docker, params["image"], "rehearse", scratch.env(params["full_env"]), network=scratch.network, name=name,
                labels=scratch.labels, python=params["python"], project_dir=params["project_dir"], timeout=params["timeout"],
                source=params["driver_source"], input_data={"descriptions": pending, "expected_plan": [m["migration"] for m in pending],
                            "slow_seconds": params["slow_seconds"], "missing_migrations": unknown_missing(report)},
                limits=oneoff_limits(params),
            )  # fmt: skip
        except DriverError as exc:
            if exc.defect:  # smart-deploy's own failure: never the app's, never to be accepted
                report["errors"].append({"code": DEFECT_CODE, "reason": "smart-deploy's driver broke during the rehearsal: %s" % exc})
            else:
                report["errors"].append("the rehearsal could not run: %s" % exc)
            report["driver_output"] = exc.output[-4000:]
            if exc.traceback:
                report["driver_traceback"] = exc.traceback
            return
        finally:
            timings["rehearse"] = round(time.monotonic() - started, 3)
        report["errors"] += result.get("errors", [])
        report["migrations"] = result.get("migrations", [])
        report["warnings"] += result.get("warnings", [])
        report["post_check"] = result.get("post_check", {})
        if result.get("missing_migrations") is not None:  # generated again on the copy, where the live schema answers
            report["prechecks"]["missing_migrations"] = result["missing_migrations"]
            report["prechecks"]["missing_migrations_from"] = "rehearsal"
        report["copy"]["peak_disk_bytes"] = scratch.disk_bytes()
    finally:
        started = time.monotonic()
        left = scratch.remove()
        timings["cleanup"] = round(time.monotonic() - started, 3)
        report["scratch"]["left"] = left


def unknown_missing(report):
    """Whether some missing migration's SQL could not be generated offline: the rehearsal generates it again."""
    missing = (report.get("prechecks") or {}).get("missing_migrations") or []
    return any(isinstance(entry, dict) and entry.get("kind") == "unknown" for entry in missing)


def check_disk(docker, params, report, plan):
    """Refuse the copy (NotEnoughDisk) when the file system of Docker's data, where the scratch database
    keeps it, has less free than the copy's estimate times disk_factor plus disk_margin_mb."""
    root = docker_root_dir(docker)
    free = free_bytes(root) if root else None
    check = disk_check(plan["bytes_with_data"], free, params["disk_factor"], params["disk_margin_mb"] * 2**20, root)
    report["disk"] = check
    if check["enough"] is None:
        message = "the free space of Docker's data (%s) could not be read: the copy of %s was not checked against it" % (
            root or "docker info failed",
            human_bytes(check["estimate_bytes"]),
        )
        report["warnings"].append({"rule": "disk-unknown", "message": message})
    elif not check["enough"]:
        raise NotEnoughDisk(disk_refusal(check, len(plan["tables_with_data"])))


def image_of(docker, container):
    import subprocess

    result = subprocess.run([docker, "inspect", "-f", "{{.Config.Image}}", container], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def analyze_and_rehearse(module, docker, params, report):
    """Sweep what killed runs left, read production, analyse the release offline, and rehearse on a copy
    when something is pending; fills ``report``."""
    report["scratch"]["swept"] = sweep(docker, params["app"])
    production = read_production(docker, params)
    report["production"] = {
        k: production[k] for k in ("exists", "applied", "applied_count", "migrations_fingerprint", "schema_fingerprint")
    }
    report["production"]["database_bytes"] = production.get("database_bytes", 0)
    # names only: which tables the old code may use (a breaking operation on a table this deploy creates breaks nothing)
    report["production"]["tables"] = sorted(production.get("tables") or {})
    t0 = time.monotonic()
    try:
        analysis, _output = run_driver(
            docker, params["image"], "analyze", offline_env(params), network="none", name=oneoff_name(params["app"]),
            labels={"smart-deploy.app": params["app"]}, python=params["python"], project_dir=params["project_dir"],
            input_data={"applied": production["applied"]}, timeout=300, source=params["driver_source"],
            limits=oneoff_limits(params),
        )  # fmt: skip
    except DriverError as exc:
        if exc.defect:
            report["driver_traceback"] = exc.traceback
            module.fail_json(msg="smart-deploy's driver broke while reading the migrations of image %s: %s" % (params["image"], exc),
                             output=exc.output[-4000:], traceback=exc.traceback, report=report)  # fmt: skip
        module.fail_json(msg="could not read the migrations of image %s: %s" % (params["image"], exc), output=exc.output[-4000:],
                         report=report)  # fmt: skip
    report["timings"]["analyze"] = round(time.monotonic() - t0, 3)
    report["prechecks"] = {k: analysis.get(k) for k in ("errors", "conflicts", "missing_migrations", "unknown_applied")}
    report["pending"] = analysis["pending"]
    if analysis["unknown_applied"]:
        report["warnings"].append({"rule": "unknown-applied", "message": "production has applied migrations this release does "
                                   "not have (an older release?): %s" % ", ".join(analysis["unknown_applied"])})  # fmt: skip
    if analysis["errors"]:
        report["copy"] = {"skipped": True, "why": "pre-checks failed"}
    elif not report["pending"]:
        report["copy"] = {"skipped": True, "why": "nothing pending"}
    elif not params["rehearse"]:
        report["copy"] = {"skipped": True, "why": "rehearsal not asked for"}
    else:
        rehearse(module, docker, params, report, production)


def main():
    spec = dict(app_container_spec(), **database_container_spec())
    spec.update(
        image=dict(type="str", required=True),
        db_image=dict(type="str"),
        app=dict(type="str", required=True, aliases=["app_name"]),
        rehearse=dict(type="bool", default=True),
        small_table_bytes=dict(type="int", default=8 * 1024 * 1024),
        slow_seconds=dict(type="float", default=5.0),
        timeout=dict(type="int", default=1800),
        disk_factor=dict(type="float", default=2.0),
        disk_margin_mb=dict(type="int", default=512),
        driver_source=dict(type="str", no_log=True),
    )
    spec.update(scratch_database_spec())
    spec.update(lock_heartbeat_spec())
    module = AnsibleModule(
        argument_spec=spec,
        supports_check_mode=True,
    )
    params = dict(module.params)
    params["full_env"] = full_env(params)
    if params["small_table_bytes"] < 0 or params["timeout"] < 1:
        module.fail_json(msg="small_table_bytes must be >= 0 and timeout >= 1")
    if params["disk_factor"] < 0 or params["disk_margin_mb"] < 0:
        module.fail_json(msg="disk_factor and disk_margin_mb must be >= 0")
    problem = (
        database_problem(params)
        or limits_problem(oneoff_limits(params), "the one-off containers")
        or limits_problem(scratch_limits(params), "the scratch database", SCRATCH_SHM_BYTES, "its shared memory")
    )
    if problem:
        module.fail_json(msg=problem)
    docker = module.get_bin_path(params["docker_cli"], required=True)
    if not docker_ok(docker, "image", "inspect", params["image"]):
        module.fail_json(msg="image %s does not exist on this host: build it first" % params["image"])

    report = {"image": params["image"], "errors": [], "warnings": [], "migrations": [], "timings": {}, "scratch": {}}
    restore_signals = raise_on_signals()
    started = time.monotonic()
    with Heartbeat.from_params(params.get("lock")):
        try:
            analyze_and_rehearse(module, docker, params, report)
        except Interrupted as exc:
            report["errors"].append(str(exc))
            module.fail_json(msg="the rehearsal was interrupted; scratch resources were removed", report=report)
        except NotEnoughDisk as exc:
            report["errors"].append(str(exc))
            module.fail_json(msg=str(exc), report=report)
        except (PsqlError, ScratchError, RehearsalError) as exc:
            report["errors"].append(str(exc))
            module.fail_json(msg="the rehearsal failed before reaching a verdict: %s" % exc, report=report)
        finally:
            restore_signals()
            report["timings"]["total"] = round(time.monotonic() - started, 3)
    report["id"] = secrets.token_hex(6)
    module.exit_json(changed=False, report=report)


if __name__ == "__main__":
    main()
