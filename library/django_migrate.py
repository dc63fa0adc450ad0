#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: django_migrate
short_description: Apply a validated Django migration plan to production, or undo a failed deploy's migrations
description:
  - The production step after M(django_migration_dryrun) and M(migration_strategy). Runs smart-deploy's
    driver in a one-off container of the release image, on the app network, with the image's own
    Python and Django (the application needs no change).
  - Before touching anything, reads production's migration state with C(psql) in the database
    container and compares it with the state the plan was validated against (O(expected_state)).
    When it changed, nothing is done and the task fails with C(stale=true), so the caller can validate
    again.
  - Fakes exactly the migrations in O(fake), in plan order, and applies the others. A plan that is not
    O(expected_plan) is refused before any change.
  - When every pending migration is atomic they are applied in ONE transaction, all or none. Otherwise
    one at a time (the pre-deploy backup is the way back). An advisory lock keeps two applies apart, a
    C(lock_timeout) with retries keeps a migration from queueing behind long transactions, and the plan
    must be empty afterwards (C(migrate --check)).
  - With O(action=reverse), undoes the migrations a failed deploy applied (O(reverse_applied)) when that
    loses no data - every operation only created things, and nothing was written there since - and
    reports C(database_back). It never fails for an unsafe reverse; it says why, so the caller can
    restore the pre-deploy backup instead.
  - The driver works on the database that C(SMART_DEPLOY_DB_HOST/PORT/NAME/USER/PASSWORD) in O(env) and
    O(secret_env) name, whatever the app's settings read (it replaces C(settings.DATABASES) with them;
    the smart_deploy role passes the owner role's); without C(SMART_DEPLOY_DB_NAME) the app's own
    settings decide. A C(SMART_DEPLOY_DB_NAME) other than O(db_name) (the database whose state is read
    and checked) is refused before anything is done.
  - Database settings and secrets reach the container through an environment file readable only by
    its owner, never on a command line. The one-off container runs within memory, CPU and process
    limits (O(oneoff_memory), O(oneoff_cpus), O(oneoff_pids_limit)).
options:
  image:
    description: Release image (it holds the Django project and its migrations).
    type: str
    required: true
  action:
    description: V(apply) a validated plan, or V(reverse) the migrations a failed deploy applied.
    type: str
    choices: [apply, reverse]
    default: apply
  expected_plan:
    description: The pending migrations, in order, as validated (C(app.name)). Required with O(action=apply).
    type: list
    elements: str
  fake:
    description: Migrations to record as applied without running them (a proven fake), in plan order.
    type: list
    elements: str
    default: []
  expected_state:
    description:
      - With O(action=apply), production's state when the plan was validated, with C(migrations_fingerprint)
        and C(schema_fingerprint) (as in the rehearsal report's C(production)). Omit to skip the check.
      - With O(action=reverse), the pre-deploy state the database must be back to.
    type: dict
  reverse_applied:
    description: With O(action=reverse), the migrations the failed deploy applied, in order.
    type: list
    elements: str
    default: []
  reverse_faked:
    description: With O(action=reverse), the migrations it faked (their presence makes a reverse unsafe).
    type: list
    elements: str
    default: []
  applied_before:
    description: With O(action=reverse), the migrations applied before the deploy (C(app.name)).
    type: list
    elements: str
    default: []
  lock_timeout:
    description: PostgreSQL C(lock_timeout) while migrating; a lock wait longer than this is retried.
    type: str
    default: 10s
  lock_retries:
    description: Retries after a lock timeout (SQLSTATE 55P03).
    type: int
    default: 3
  network:
    description: Docker network to join (the one the database is on).
    type: str
  name_prefix:
    description: Prefix of the one-off container's name, usually the app name.
    type: str
    default: smart-deploy
  timeout:
    description: Seconds the migrations may take.
    type: int
    default: 3600
  driver_source:
    description:
      - Text of smart-deploy's driver, mounted into the one-off container. Set by this module's action
        plugin (read on the controller); leave it unset.
    type: str
extends_documentation_fragment:
  - smart_deploy.app_container
  - smart_deploy.database
  - smart_deploy.lock_heartbeat
attributes:
  check_mode:
    support: full
    details: Checks the state and reports what would be faked and applied; changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: With nothing pending, nothing runs and nothing changes.
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Apply the validated plan
  django_migrate:
    image: shop-backend:3f2a1b9c0d1e
    expected_plan: "{{ strategy.pending }}"
    fake: "{{ strategy.fake }}"
    expected_state: "{{ dryrun.report.production }}"
    db_container: shop-db
    db_name: shop
    db_user: shop
    network: shop-net
    name_prefix: shop
    env: "{{ shop_env }}"
    oneoff_memory: 2g
    lock: "{{ smart_deploy_lock_hold | default(omit) }}"
  register: migrated
"""

RETURN = r"""
applied:
  description: Migrations applied (run).
  returned: always
  type: list
  elements: str
faked:
  description: Migrations recorded as applied without running.
  returned: always
  type: list
  elements: str
stale:
  description: True when production changed since validation (nothing was done).
  returned: always
  type: bool
migration_state:
  description: Production's state before and after (applied count, migrations and schema fingerprints).
  returned: always
  type: dict
mode:
  description: V(one transaction) or V(one by one (a migration is not atomic)).
  returned: when migrations ran
  type: str
database_back:
  description: With O(action=reverse), whether the database is back to O(expected_state).
  returned: with O(action=reverse)
  type: bool
reasons:
  description: With O(action=reverse), why the migrations were not reversed.
  returned: with O(action=reverse)
  type: list
  elements: str
failed_migration:
  description: The migration that failed, with SQLSTATE and message.
  returned: on failure
  type: dict
"""

import zlib

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.args import app_container_spec, database_container_spec, full_env, lock_heartbeat_spec
from ansible.module_utils.smart_deploy.lock import Heartbeat
from ansible.module_utils.smart_deploy.oneoff import DriverError, limits_problem, oneoff_limits, oneoff_name, run_driver
from ansible.module_utils.smart_deploy.pgclient import HOST_GATEWAY, PgServer
from ansible.module_utils.smart_deploy.pgclient import database_problem as server_problem
from ansible.module_utils.smart_deploy.pgexec import PsqlError, docker_ok, same_state, server_state

STATE_KEYS = ("applied_count", "migrations_fingerprint", "schema_fingerprint")


def advisory_key(name):
    """The advisory lock id of an app's migrations (a signed 32-bit number derived from its name)."""
    return zlib.crc32(("smart-deploy:" + name).encode()) - 2**31


def database_problem(params):
    """Why the driver would work on another database than the one whose state is read (None when it would not)."""
    target = full_env(params).get("SMART_DEPLOY_DB_NAME")
    if target and target != params["db_name"]:
        return "SMART_DEPLOY_DB_NAME (%s) is not db_name (%s): the driver would migrate another database than the one checked" % (
            target, params["db_name"])  # fmt: skip
    return None


def extra_hosts(params):
    """An external server may be on this host (host.docker.internal): the one-off containers resolve that name."""
    return [HOST_GATEWAY] if params.get("db_mode") == "external" else None


def read_state(module, docker, params):
    try:
        state = server_state(PgServer.from_params(docker, params, labels={"smart-deploy.app": params["name_prefix"]}), params["db_name"])
    except PsqlError as exc:
        module.fail_json(msg="cannot read the database's migration state: %s" % exc, stale=False)
    return {k: v for k, v in state.items() if k in STATE_KEYS}


def reverse(module, params):
    """Put the database back to the pre-deploy state by unapplying what the deploy applied, when safe."""
    docker = module.get_bin_path(params["docker_cli"], required=True)
    expected = params["expected_state"] or {}
    before = read_state(module, docker, params)
    result = dict(changed=False, database_back=False, reasons=[], reversed=[], migration_state={"before": before})
    if expected and same_state(before, expected):
        result.update(database_back=True, method="unchanged: the database is in its pre-deploy state")
        module.exit_json(**result)
    if module.check_mode:
        module.exit_json(**result)
    try:
        outcome, _output = run_driver(
            docker, params["image"], "reverse", full_env(params), network=params["network"],
            name=oneoff_name(params["name_prefix"]), labels={"smart-deploy.app": params["name_prefix"]}, python=params["python"],
            project_dir=params["project_dir"], timeout=params["timeout"], source=params["driver_source"],
            input_data={"applied": params["reverse_applied"], "faked": params["reverse_faked"],
                        "applied_before": params["applied_before"], "advisory_key": advisory_key(params["name_prefix"])},
            limits=oneoff_limits(params), extra_hosts=extra_hosts(params),
        )  # fmt: skip
    except DriverError as exc:
        result["reasons"].append("reversing failed: %s" % exc)
        result["migration_state"]["after"] = read_state(module, docker, params)
        result["changed"] = not same_state(result["migration_state"]["after"], before)
        module.exit_json(**result)
    result["reasons"] += outcome.get("reasons", [])
    result["reversed"] = outcome.get("reversed", [])
    after = read_state(module, docker, params)
    result["migration_state"]["after"] = after
    result["changed"] = not same_state(after, before)
    if outcome.get("safe") and expected:
        result["database_back"] = same_state(after, expected)
        if not result["database_back"]:
            result["reasons"].append("after reversing, the schema still differs from the pre-deploy one")
    result["method"] = "reversed migrations %s" % ", ".join(result["reversed"]) if result["reversed"] else "not reversed"
    module.exit_json(**result)


def apply(module, params):
    """Apply the validated plan (exits the module)."""
    plan, fake = params["expected_plan"], params["fake"]
    unknown = [key for key in fake if key not in plan]
    if unknown:
        module.fail_json(msg="cannot fake %s: not in the validated plan %s" % (", ".join(unknown), plan), stale=False)
    docker = module.get_bin_path(params["docker_cli"], required=True)
    if not docker_ok(docker, "image", "inspect", params["image"]):
        module.fail_json(msg="image %s does not exist on this host: build it first" % params["image"], stale=False)

    def state():
        return read_state(module, docker, params)

    before = state()
    result = dict(changed=False, applied=[], faked=[], stale=False, migration_state={"before": before})
    expected = params["expected_state"]
    if expected and not same_state(before, expected):
        module.fail_json(
            msg="production's migrations or schema changed since the plan was validated (fingerprints differ): validate again",
            **dict(result, stale=True),
        )
    if not plan:
        module.exit_json(**result)
    result["changed"] = True
    if module.check_mode:
        result["would_fake"] = fake
        result["would_apply"] = [key for key in plan if key not in fake]
        module.exit_json(**result)
    try:
        applied, output = run_driver(
            docker, params["image"], "apply", full_env(params), network=params["network"], name=oneoff_name(params["name_prefix"]),
            labels={"smart-deploy.app": params["name_prefix"]}, python=params["python"], project_dir=params["project_dir"],
            input_data={"expected_plan": plan, "fake": fake, "advisory_key": advisory_key(params["name_prefix"]),
                        "lock_timeout": params["lock_timeout"], "lock_retries": params["lock_retries"]},
            timeout=params["timeout"], source=params["driver_source"], limits=oneoff_limits(params), extra_hosts=extra_hosts(params),
        )  # fmt: skip
    except DriverError as exc:
        result["migration_state"]["after"] = state()
        module.fail_json(msg="migrating with image %s failed: %s" % (params["image"], exc), output=exc.output[-4000:], **result)
    result.update(
        applied=applied["applied"],
        faked=applied["faked"],
        output=output[-4000:],
        mode=applied.get("mode"),
        attempts=applied.get("attempts"),
        lock_timeouts=applied.get("lock_timeouts", []),
    )
    result["changed"] = bool(applied["applied"] or applied["faked"])
    result["migration_state"]["after"] = state()
    if applied.get("errors"):
        result["failed_migration"] = applied.get("failed", {})
        module.fail_json(msg="; ".join(applied["errors"]), **result)
    module.exit_json(**result)


def main():
    spec = dict(app_container_spec(), **database_container_spec())
    spec.update(
        image=dict(type="str", required=True),
        action=dict(type="str", choices=["apply", "reverse"], default="apply"),
        expected_plan=dict(type="list", elements="str"),
        reverse_applied=dict(type="list", elements="str", default=[]),
        reverse_faked=dict(type="list", elements="str", default=[]),
        applied_before=dict(type="list", elements="str", default=[]),
        lock_timeout=dict(type="str", default="10s"),
        lock_retries=dict(type="int", default=3),
        fake=dict(type="list", elements="str", default=[]),
        expected_state=dict(type="dict"),
        network=dict(type="str"),
        name_prefix=dict(type="str", default="smart-deploy"),
        timeout=dict(type="int", default=3600),
        driver_source=dict(type="str", no_log=True),
    )
    spec.update(lock_heartbeat_spec())
    module = AnsibleModule(
        argument_spec=spec,
        required_if=[("action", "apply", ["expected_plan"])],
        supports_check_mode=True,
    )
    params = module.params
    problem = server_problem(params) or limits_problem(oneoff_limits(params), "the one-off container") or database_problem(params)
    if problem:
        module.fail_json(msg=problem, stale=False)
    with Heartbeat.from_params(params.get("lock")):
        if params["action"] == "reverse":
            reverse(module, params)
        apply(module, params)


if __name__ == "__main__":
    main()
