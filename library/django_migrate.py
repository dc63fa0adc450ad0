#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: django_migrate
short_description: Inspect or apply Django migrations from a one-off container of a release image
description:
  - Runs smart-deploy's driver (shipped with smart-deploy, mounted read-only into the container) with
    the image's own Python and Django, so the application needs no change.
  - V(planned) only reads: the pending migrations in plan order, whether each is atomic, and the applied
    set with its fingerprint. V(applied) applies the pending migrations (C(manage.py migrate)) and reports
    changed only when there were some.
  - Database settings and secrets reach the container through an environment file readable only by its
    owner, never on a command line.
options:
  image:
    description: Release image to run (it must contain the Django project).
    type: str
    required: true
  state:
    description: V(planned) inspects, V(applied) migrates.
    type: str
    choices: [planned, applied]
    default: planned
  env:
    description: Environment of the one-off container (database settings, secret key...).
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
  docker_cli:
    description: Docker command line client to use.
    type: str
    default: docker
attributes:
  check_mode:
    support: partial
    details: V(applied) in check mode inspects and reports what would be applied; it needs the image to exist.
  diff_mode:
    support: none
  idempotent:
    support: full
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: What would the new release migrate?
  django_migrate:
    image: shop-backend:3f2a1b9c0d1e
    network: shop-net
    name_prefix: shop
    env:
      POSTGRES_HOST: shop-db
      POSTGRES_PASSWORD: "{{ vault_db_password }}"
      DJANGO_SECRET_KEY: "{{ vault_secret_key }}"
  register: plan

- name: Apply them
  django_migrate:
    image: shop-backend:3f2a1b9c0d1e
    state: applied
    network: shop-net
    name_prefix: shop
    env: "{{ shop_env }}"
  when: plan.pending | length > 0
"""

RETURN = r"""
pending:
  description: Pending migrations (before the task) in plan order, as C(app.name).
  returned: always
  type: list
  elements: str
  sample: [cart.0002_cartitem_note]
plan:
  description: Pending migrations with details (app, name, atomic).
  returned: always
  type: list
  elements: dict
applied:
  description: Migrations applied by this task (empty for V(planned) and in check mode).
  returned: always
  type: list
  elements: str
migration_state:
  description: Applied count and fingerprint of the applied set, before and (when applied) after.
  returned: always
  type: dict
  sample: {before: {applied_count: 17, fingerprint: "c0ffee..."}, after: {applied_count: 18, fingerprint: "beef..."}}
output:
  description: Django's output of the migrate command.
  returned: when migrations were applied
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.oneoff import DriverError, run_driver


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str", required=True),
            state=dict(type="str", choices=["planned", "applied"], default="planned"),
            env=dict(type="dict", default={}, no_log=True),
            network=dict(type="str"),
            name_prefix=dict(type="str", default="smart-deploy"),
            project_dir=dict(type="str"),
            python=dict(type="str", default="python"),
            docker_cli=dict(type="str", default="docker"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    docker = module.get_bin_path(params["docker_cli"], required=True)
    rc, _out, _err = module.run_command([docker, "image", "inspect", params["image"]])
    if rc != 0:
        module.fail_json(msg="image %s does not exist on this host: build it first" % params["image"])

    def driver(command):
        try:
            return run_driver(
                module,
                docker,
                params["image"],
                command,
                params["env"],
                network=params["network"],
                name_prefix=params["name_prefix"],
                labels={"smart-deploy.app": params["name_prefix"]},
                python=params["python"],
                project_dir=params["project_dir"],
            )
        except DriverError as exc:
            module.fail_json(
                msg="%s of migrations with image %s failed: %s" % (command, params["image"], exc),
                sqlstate=exc.result.get("sqlstate"),
                output=exc.output[-4000:],
            )

    plan, _output = driver("plan")
    if plan.get("conflicts"):
        module.fail_json(
            msg="conflicting migrations in image %s (several leaf nodes): %s; run makemigrations --merge"
            % (params["image"], plan["conflicts"])
        )
    pending = ["%s.%s" % (m["app"], m["name"]) for m in plan["pending"]]
    state = {"before": {"applied_count": plan["applied_count"], "fingerprint": plan["fingerprint"]}}
    result = dict(changed=False, pending=pending, plan=plan["pending"], applied=[], migration_state=state)

    if params["state"] == "applied" and pending:
        result["changed"] = True
        if not module.check_mode:
            migrated, output = driver("migrate")
            result["applied"] = migrated["applied"]
            result["seconds"] = migrated["seconds"]
            state["after"] = migrated["after"]
            result["output"] = output[-4000:]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
