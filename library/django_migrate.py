#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: django_migrate
short_description: Apply a validated Django migration plan to production from a one-off container
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
  - Database settings and secrets reach the container through an environment file readable only by
    its owner, never on a command line.
options:
  image:
    description: Release image (it holds the Django project and its migrations).
    type: str
    required: true
  expected_plan:
    description: The pending migrations, in order, as validated (C(app.name)). Required.
    type: list
    elements: str
    required: true
  fake:
    description: Migrations to record as applied without running them (a proven fake), in plan order.
    type: list
    elements: str
    default: []
  expected_state:
    description:
      - Production's state when the plan was validated, with C(migrations_fingerprint) and
        C(schema_fingerprint) (as in the rehearsal report's C(production)). Omit to skip the check.
    type: dict
  db_container:
    description: Production database container, where C(psql) reads the migration state.
    type: str
    required: true
  db_name:
    description: Production database name.
    type: str
    required: true
  db_user:
    description: Database role for C(psql) in the database container.
    type: str
    required: true
  env:
    description: Environment of the one-off container that may be shown (database host, name, user, settings).
    type: dict
    default: {}
  secret_env:
    description: Environment of the one-off container that is never shown (passwords, secret key).
    type: dict
    default: {}
  network:
    description: Docker network to join (the one the database is on).
    type: str
  name_prefix:
    description: Prefix of the one-off container's name, usually the app name.
    type: str
    default: smart-deploy
  project_dir:
    description: Folder of C(manage.py) inside the image. Defaults to the image's working directory.
    type: str
  python:
    description: Python executable inside the image.
    type: str
    default: python
  timeout:
    description: Seconds the migrations may take.
    type: int
    default: 3600
  docker_cli:
    description: Docker command line client to use.
    type: str
    default: docker
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
failed_migration:
  description: The migration that failed, with SQLSTATE and message.
  returned: on failure
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.oneoff import DriverError, oneoff_name, run_driver
from ansible.module_utils.smart_deploy.pgexec import PsqlError, database_state, docker_ok, same_state

STATE_KEYS = ("applied_count", "migrations_fingerprint", "schema_fingerprint")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str", required=True),
            expected_plan=dict(type="list", elements="str", required=True),
            fake=dict(type="list", elements="str", default=[]),
            expected_state=dict(type="dict"),
            db_container=dict(type="str", required=True),
            db_name=dict(type="str", required=True),
            db_user=dict(type="str", required=True),
            env=dict(type="dict", default={}),
            secret_env=dict(type="dict", default={}, no_log=True),
            network=dict(type="str"),
            name_prefix=dict(type="str", default="smart-deploy"),
            project_dir=dict(type="str"),
            python=dict(type="str", default="python"),
            timeout=dict(type="int", default=3600),
            docker_cli=dict(type="str", default="docker"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    plan, fake = params["expected_plan"], params["fake"]
    unknown = [key for key in fake if key not in plan]
    if unknown:
        module.fail_json(msg="cannot fake %s: not in the validated plan %s" % (", ".join(unknown), plan), stale=False)
    docker = module.get_bin_path(params["docker_cli"], required=True)
    if not docker_ok(docker, "image", "inspect", params["image"]):
        module.fail_json(msg="image %s does not exist on this host: build it first" % params["image"], stale=False)

    def state():
        try:
            return {k: v for k, v in database_state(docker, params["db_container"], params["db_user"], params["db_name"]).items()
                    if k in STATE_KEYS}  # fmt: skip
        except PsqlError as exc:
            module.fail_json(msg="cannot read production's migration state: %s" % exc, stale=False)

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
    full_env = dict(params["env"], **params["secret_env"])
    try:
        applied, output = run_driver(
            docker, params["image"], "apply", full_env, network=params["network"], name=oneoff_name(params["name_prefix"]),
            labels={"smart-deploy.app": params["name_prefix"]}, python=params["python"], project_dir=params["project_dir"],
            input_data={"expected_plan": plan, "fake": fake}, timeout=params["timeout"],
        )  # fmt: skip
    except DriverError as exc:
        result["migration_state"]["after"] = state()
        module.fail_json(msg="migrating with image %s failed: %s" % (params["image"], exc), output=exc.output[-4000:], **result)
    result.update(applied=applied["applied"], faked=applied["faked"], output=output[-4000:])
    result["changed"] = bool(applied["applied"] or applied["faked"])
    result["migration_state"]["after"] = state()
    if applied.get("errors"):
        result["failed_migration"] = applied.get("failed", {})
        module.fail_json(msg="; ".join(applied["errors"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
