#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: django_test
short_description: Run an app's own test suite inside its image, against a throwaway database
description:
  - Starts a scratch PostgreSQL (O(db_image)) on an internal Docker network of its own, runs O(command)
    (by default C(python manage.py test --noinput)) in a one-off container of O(image) on that network
    with the database settings pointed at it, and removes both afterwards, on every path.
  - When O(command) is Django's test command (C(<python> manage.py test [labels and options]), or with
    an absolute path to C(manage.py), whose folder is then the project's), smart-deploy's driver runs it
    instead of the app's C(manage.py) (C(driver.py test), the same labels and options, Django's own test
    runner, in the project folder), and the driver points the app's C(settings.DATABASES) at the scratch
    database from C(SMART_DEPLOY_DB_*), whatever variable names the app's settings read. Any other
    command (and one with C(--settings) or C(--pythonpath)) runs as given; it gets the scratch database as
    C(SMART_DEPLOY_DB_HOST/PORT/NAME/USER/PASSWORD), C(POSTGRES_*) and C(DATABASE_URL) in its environment
    (so does the driver).
  - Both containers run within memory, CPU and process limits (O(oneoff_memory), O(scratch_memory)...).
    Their resources are labelled C(smart-deploy.app=<app>), C(smart-deploy.scratch=<run id>) and
    C(smart-deploy.purpose=tests), and named C(<app>-tests-...).
  - Fails when the tests fail, with the end of their output; nothing of production is involved.
options:
  image:
    description: Image holding the app and its tests (the release's backend image).
    type: str
    required: true
  app:
    description: Application name, prefix of the throwaway resources (the name every smart-deploy module calls C(app)).
    type: str
    required: true
    aliases: [app_name]
  db_image:
    description: PostgreSQL image of the throwaway database.
    type: str
    default: postgres:15-bookworm
  command:
    description: Command running the tests inside the image.
    type: list
    elements: str
    default: [python, manage.py, test, --noinput]
  timeout:
    description: Seconds the test suite may take.
    type: int
    default: 1200
  driver_source:
    description:
      - Text of smart-deploy's driver, mounted into the one-off container. Set by this module's action
        plugin (read on the controller); leave it unset.
    type: str
extends_documentation_fragment:
  - smart_deploy.app_container
  - smart_deploy.scratch_database
  - smart_deploy.lock_heartbeat
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Changes nothing that outlives it.
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Run the app's tests in the new image
  django_test:
    image: shop-backend:3f2a1b9c0d1e
    app: shop
    env:
      DJANGO_ALLOWED_HOSTS: "*"
    secret_env:
      DJANGO_SECRET_KEY: "{{ vault_secret }}"
    oneoff_memory: 2g
    lock: "{{ smart_deploy_lock_hold | default(omit) }}"
"""

RETURN = r"""
passed:
  description: Whether the suite passed.
  returned: always
  type: bool
tests:
  description: How many tests ran (counted by the driver, else from the runner's "Ran N tests" line), when it says.
  returned: always
  type: int
counts:
  description:
    - What the driver's test runner counted (tests, failures, errors, skipped, expected_failures,
      unexpected_successes); empty when O(command) is not Django's test command or the app's runner is
      not Django's DiscoverRunner (or a subclass).
  returned: always
  type: dict
seconds:
  description: Time the suite took.
  returned: always
  type: float
output:
  description: The end of the test run's output.
  returned: always
  type: str
scratch:
  description: The run id of the scratch resources (label C(smart-deploy.scratch)) and what of them is left (empty lists).
  returned: always
  type: dict
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.args import app_container_spec, full_env, lock_heartbeat_spec, scratch_database_spec
from ansible.module_utils.smart_deploy.django_driver import RESULT_MARK
from ansible.module_utils.smart_deploy.lock import Heartbeat
from ansible.module_utils.smart_deploy.oneoff import (
    ONEOFF_LABEL,
    DriverError,
    Limits,
    limit_args,
    limits_problem,
    oneoff_limits,
    oneoff_name,
    run_driver,
    write_env_file,
)
from ansible.module_utils.smart_deploy.scratch import (
    SCRATCH_SHM_BYTES,
    Interrupted,
    Scratch,
    ScratchError,
    raise_on_signals,
    scratch_limits,
)

PURPOSE = "tests"


def driver_test_args(command: list, project_dir: str = None):
    """(python, labels and options, project folder) when ``command`` is Django's test command
    (``<python> manage.py test ...`` or ``<python> /absolute/path/manage.py test ...``), which the driver
    runs in its place; None for any other command, and when it chooses its settings or Python path
    (C(--settings), C(--pythonpath): manage.py applies them before Django is set up)."""
    if len(command) < 3 or command[2] != "test" or any(arg.startswith(("--settings", "--pythonpath")) for arg in command[3:]):
        return None
    if command[1] == "manage.py":
        return command[0], list(command[3:]), project_dir
    if command[1].startswith("/") and command[1].endswith("/manage.py"):
        return command[0], list(command[3:]), project_dir or command[1][: -len("/manage.py")] or "/"
    return None


def suite_argv(docker: str, image: str, command: list, name: str, network: str, env_file: str, labels: dict,
               project_dir: str = None, limits: Limits = None, host_cpus: int = None) -> list:  # fmt: skip
    """The ``docker run`` command line of the test container (no secret on it: they are in ``env_file``)."""
    cmd = [docker, "run", "--rm", "--name", name, "--network", network, "--env-file", env_file]
    for key, value in sorted(dict(labels, **{ONEOFF_LABEL: PURPOSE}).items()):
        cmd += ["--label", "%s=%s" % (key, value)]
    cmd += limit_args(limits, host_cpus)
    if project_dir:
        cmd += ["--workdir", project_dir]
    return cmd + [image, *command]


def run_driver_suite(docker, params, scratch, name, python, args, project_dir):
    """The suite through the driver's ``test`` command (Django's runner on the overridden DATABASES);
    (passed, output, counts, whether the driver itself broke - a defect of smart-deploy)."""
    try:
        result, output = run_driver(docker, params["image"], "test", scratch.env(full_env(params)), network=scratch.network, name=name,
                                    labels=dict(scratch.labels), python=python, project_dir=project_dir,
                                    input_data={"args": args}, timeout=params["timeout"], source=params["driver_source"],
                                    limits=oneoff_limits(params))  # fmt: skip
    except DriverError as exc:
        output = "\n".join(part for part in (without_result(exc.output), str(exc), exc.traceback) if part)
        return False, output, {}, exc.defect
    return bool(result.get("passed")), without_result(output), result.get("counts") or {}, False


def without_result(output):
    """The container's output without the driver's result line (its content is returned on its own)."""
    return "\n".join(line for line in (output or "").splitlines() if not line.startswith(RESULT_MARK)).strip()


def run_suite(docker, params, scratch, name, tmpdir):
    """Start the scratch database and run the suite against it in container ``name``; (passed, output, counts, defect).
    Removes nothing: the caller does, on every path."""
    scratch.start()
    driver = driver_test_args(params["command"], params["project_dir"])
    if driver:
        return run_driver_suite(docker, params, scratch, name, *driver)
    env_file = os.path.join(tmpdir, "env")
    write_env_file(env_file, scratch.env(full_env(params)))
    cmd = suite_argv(docker, params["image"], params["command"], name, scratch.network, env_file, scratch.labels,
                     params["project_dir"], oneoff_limits(params), os.cpu_count())  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=params["timeout"], check=False)
    except subprocess.TimeoutExpired:
        return False, "the test suite did not finish within %d s" % params["timeout"], {}, False
    output = (proc.stdout + "\n" + proc.stderr).strip()
    if proc.returncode == 137:
        output += (
            "\n(exit 137: the test container was killed, perhaps for using more than its memory limit, oneoff_memory=%s)"
            % (params["oneoff_memory"])
        )
    return proc.returncode == 0, output, {}, False


def main():
    spec = dict(app_container_spec(), **scratch_database_spec())
    spec.update(lock_heartbeat_spec())
    spec.update(
        image=dict(type="str", required=True),
        app=dict(type="str", required=True, aliases=["app_name"]),
        db_image=dict(type="str", default="postgres:15-bookworm"),
        command=dict(type="list", elements="str", default=["python", "manage.py", "test", "--noinput"]),
        timeout=dict(type="int", default=1200),
        driver_source=dict(type="str", no_log=True),
    )
    module = AnsibleModule(
        argument_spec=spec,
        supports_check_mode=False,
    )
    params = module.params
    problem = limits_problem(oneoff_limits(params), "the test container") or limits_problem(
        scratch_limits(params), "the scratch database", SCRATCH_SHM_BYTES, "its shared memory"
    )
    if problem:
        module.fail_json(msg=problem)
    docker = module.get_bin_path(params["docker_cli"], required=True)
    restore_signals = raise_on_signals()
    scratch = Scratch(docker, params["app"], params["db_image"], purpose=PURPOSE, limits=scratch_limits(params))
    tmpdir = tempfile.mkdtemp(prefix="smart-deploy-tests-")
    name = oneoff_name("%s-%s" % (params["app"], PURPOSE))
    output, passed, counts, defect, started = "", False, {}, False, time.monotonic()
    try:
        with Heartbeat.from_params(params.get("lock")):
            passed, output, counts, defect = run_suite(docker, params, scratch, name, tmpdir)
    except (ScratchError, Interrupted) as exc:
        output = "could not run the tests: %s" % exc
    finally:
        subprocess.run([docker, "rm", "-f", name], capture_output=True, check=False)
        left = scratch.remove()
        shutil.rmtree(tmpdir, ignore_errors=True)
        restore_signals()
    ran = re.search(r"Ran (\d+) tests?", output)
    tests = counts["tests"] if "tests" in counts else int(ran.group(1)) if ran else 0
    result = dict(changed=False, passed=passed, tests=tests, counts=counts, seconds=round(time.monotonic() - started, 2),
                  output=output[-6000:], scratch={"run_id": scratch.run_id, "left": left})  # fmt: skip
    if defect:  # the driver broke: smart-deploy's failure, not the app's tests'
        module.fail_json(msg="smart-deploy's driver broke while running the app's tests in image %s (a defect of smart-deploy, not "
                         "of the app's tests): %s" % (params["image"], output[-3000:]), **result)  # fmt: skip
    if not passed:
        module.fail_json(msg="the app's tests failed in image %s: %s" % (params["image"], output[-1500:]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
