#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: django_database_check
short_description: Check that a new container of a release uses the database smart-deploy migrated
description:
  - Run by the release role after the health gate of the release's new containers and before the proxy switches to
    them (README "The database the release serves from"). The rehearsal and the migrations ran on the database
    smart-deploy chose (its driver points Django there, whatever the settings read); the release's containers serve
    with the app's OWN settings. This asks one of them which database its default connection reaches, and refuses
    the release when that is not the database smart-deploy migrated.
  - Asks the running container O(container) itself - C(docker exec -i), its own user, network and environment, the
    driver's text on stdin, nothing written into the container - with the driver's C(identify) command, which uses
    the environment the container's main process started with (C(/proc/1/environ), an entrypoint's exports
    included) and the app's settings module, sets Django up as the WSGI application does, reports every alias of
    C(DATABASES) (engine, host, port, name, user; never a password) and, for a PostgreSQL default alias, connects and
    asks the server who it is (current database and its oid, port, start time, system identifier).
  - Reads the same facts of the database it migrated (O(db_name) on the server O(db_mode) describes) through
    smart-deploy's own connection, and compares them - not host names, which differ for one server (a container
    name, an address, C(host.docker.internal), a connection pooler in between).
  - Refused (fails, unless O(refuse=false)) - a default alias that is not PostgreSQL ("the release's settings use
    SQLite (/srv/app/db.sqlite3), not the PostgreSQL database shop on shop-db:5432 that smart-deploy migrated"), a
    connection the container cannot make (naming what it tried), another server or another database of the same
    server, no default alias. With O(refuse=false) the same is a warning (putting a previous release back).
options:
  container:
    description: A running container of the release's Django component (the new one, after its health gate).
    type: str
    required: true
  python:
    description: Python executable inside the image.
    type: str
    default: python
  project_dir:
    description: Folder of C(manage.py) inside the image (first on C(sys.path)); default the container's working directory.
    type: str
  docker_cli:
    description: Docker command line client to use.
    type: str
    default: docker
  timeout:
    description: Seconds the question to the container may take (the app's settings import and one connection).
    type: int
    default: 60
  refuse:
    description: Fail when the container does not use the database migrated; V(false) - warn and go on.
    type: bool
    default: true
  host_label:
    description:
      - How the app's containers reach the database, for messages (C(smart_deploy_db_host) and C(smart_deploy_db_port));
        default O(db_container) (container mode) or O(db_host).
    type: str
  driver_source:
    description: The driver's text (django_driver.py), handed over by the action plugin; not set by hand.
    type: str
extends_documentation_fragment:
  - smart_deploy.database
attributes:
  check_mode:
    support: full
    details: Only reads - a query in the container and one on the database.
  diff_mode:
    support: none
  idempotent:
    support: full
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Check that the new web container uses the database smart-deploy migrated
  django_database_check:
    container: shop-web-3f2a1b9c0d1e-1a2b3c4d
    project_dir: /app
    db_container: shop-db
    db_name: shop
    db_user: shop
    db_password: "{{ smart_deploy_db_password }}"
"""

RETURN = r"""
same:
  description: Whether the container's default connection reaches the database smart-deploy migrated.
  returned: always
  type: bool
database:
  description:
    - What the release reads (its default alias) - C(engine), C(vendor), C(host), C(port), C(name), C(user), C(server)
      (what the server said - C(database), C(oid), C(port), C(started_at), C(version), C(system_identifier)),
      C(same_as_migrated), C(others) (the other aliases, reported, not compared), C(checked_in) (the container),
      C(summary) (one line) - never a password.
  returned: when the container answered
  type: dict
migrated:
  description: The database smart-deploy migrated - C(name), C(host), C(port) and C(identity) (what the server said).
  returned: always
  type: dict
"""

import json
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy import django_driver
from ansible.module_utils.smart_deploy.oneoff import DriverError, driver_source, parse_result
from ansible.module_utils.smart_deploy.pgclient import PgServer, PsqlError, database_problem, database_spec
from ansible.module_utils.smart_deploy.served_database import compare


def identify_argv(docker: str, container: str, python: str, project_dir: str = None) -> list:
    """``docker exec`` of the driver's identify in ``container``, the driver's text on stdin: the container's own user,
    network and environment; --environ-of 1: the environment its main process started with."""
    cmd = [docker, "exec", "-i"]
    if project_dir:
        cmd += ["--workdir", project_dir]
    cmd += [container, python, "-", "identify", "--environ-of", "1"]
    return cmd + (["--project-dir", project_dir] if project_dir else [])


def ask_container(docker: str, params: dict) -> dict:
    """What the driver's identify printed in the container (a DriverError when it printed no result or failed)."""
    argv = identify_argv(docker, params["container"], params["python"], params["project_dir"])
    try:
        done = subprocess.run(argv, input=params["driver_source"] or driver_source(), capture_output=True, text=True,
                              timeout=params["timeout"], check=False)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        message = "the container %s did not say which database it uses within %d s" % (params["container"], params["timeout"])
        raise DriverError(message) from exc
    result = parse_result(done.stdout)
    if result is None:
        raise DriverError("the container %s did not say which database it uses (exit %d): %s" % (
            params["container"], done.returncode, (done.stdout + done.stderr).strip()[-1500:]))  # fmt: skip
    if not result.get("ok"):
        raise DriverError(result.get("error") or "identify failed", result=result)
    return result


def read_migrated(docker: str, params: dict) -> dict:
    """IDENTITY_SQL and the system identifier of the database smart-deploy migrated, through its own connection."""
    server = PgServer.from_params(docker, params)
    lines = server.psql("%s;\n%s;\n" % (django_driver.IDENTITY_SQL, django_driver.SYSTEM_ID_SQL)).splitlines()
    identity = json.loads(lines[0])
    if len(lines) > 1 and lines[1].strip():
        identity["system_identifier"] = lines[1].strip()
    return identity


def main():
    spec = database_spec()
    spec.update(
        container=dict(type="str", required=True),
        python=dict(type="str", default="python"),
        project_dir=dict(type="str"),
        docker_cli=dict(type="str", default="docker"),
        timeout=dict(type="int", default=60),
        refuse=dict(type="bool", default=True),
        host_label=dict(type="str"),
        driver_source=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    problem = database_problem(params)
    if problem:
        module.fail_json(msg=problem)
    docker = module.get_bin_path(params["docker_cli"], required=True)
    external = params["db_mode"] == "external"
    migrated = {"name": params["db_name"], "host": params["host_label"] or (params["db_host"] if external else params["db_container"]),
                "port": params["db_port"] if external else 5432}  # fmt: skip
    try:
        migrated["identity"] = read_migrated(docker, params)
    except (PsqlError, ValueError, IndexError) as exc:
        module.fail_json(msg="could not read which database smart-deploy migrated (%s on %s): %s" % (
            params["db_name"], migrated["host"], exc), same=False, migrated=migrated)  # fmt: skip
    try:
        reported = ask_container(docker, params)
    except DriverError as exc:
        target = "the PostgreSQL database %s on %s:%s" % (migrated["name"], migrated["host"], migrated["port"])
        module.fail_json(msg="the release's container %s could not say which database it uses: %s; smart-deploy migrated %s" % (
            params["container"], exc, target), same=False, migrated=migrated, origin=exc.origin)  # fmt: skip
    verdict = compare(migrated, reported, params["container"])
    result = dict(changed=False, same=verdict.same, database=verdict.database, migrated=migrated)
    if not verdict.same:
        if params["refuse"]:
            module.fail_json(msg="The release's containers do not use the database smart-deploy migrated: %s" % verdict.message, **result)
        module.warn("The release's containers do not use the database smart-deploy migrated: %s" % verdict.message)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
