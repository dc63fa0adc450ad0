# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the smart-deploy driver in a one-off container of a release image (docker CLI)."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import tempfile
import uuid

from ansible.module_utils.smart_deploy import django_driver

ONEOFF_LABEL = "smart-deploy.oneoff"


class DriverError(Exception):
    def __init__(self, message, result=None, output=""):
        super().__init__(message)
        self.result = result or {}
        self.output = output


def driver_source() -> str:
    """The driver's text, from this very import (the action plugin hands it over where that is impossible)."""
    return inspect.getsource(django_driver)


def parse_result(stdout: str):
    """The driver's JSON result line, or None when it printed none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(django_driver.RESULT_MARK):
            return json.loads(line[len(django_driver.RESULT_MARK) :])
    return None


def write_env_file(path: str, env: dict) -> None:
    lines = []
    for key, value in sorted(env.items()):
        value = "" if value is None else str(value)
        if "\n" in value or "=" in key or not key:
            raise DriverError("environment variable %r cannot be passed to a container (newline or bad name)" % key)
        lines.append("%s=%s\n" % (key, value))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(lines)


def oneoff_name(prefix: str) -> str:
    return "%s-oneoff-%s" % (prefix, uuid.uuid4().hex[:8])


def run_driver(
    docker: str,
    image: str,
    command: str,
    env: dict,
    network: str = None,
    name: str = None,
    labels: dict = None,
    python: str = "python",
    project_dir: str = None,
    input_data: dict = None,
    timeout: float = None,
    source: str = None,
):
    """Run ``driver.py <command>`` in a throwaway container of ``image``; return (result, output).

    Secrets go through an env file readable only by its owner, never on a command line; the input
    is a JSON file mounted read-only. The container and the temporary files are removed whatever
    happens, a timeout included.
    """
    tmpdir = tempfile.mkdtemp(prefix="smart-deploy-driver-")
    name = name or oneoff_name("smart-deploy")
    stdout = ""
    try:
        os.chmod(tmpdir, 0o755)
        driver_path = os.path.join(tmpdir, "driver.py")
        with open(driver_path, "w", encoding="utf-8") as handle:
            handle.write(source or driver_source())
        input_path = os.path.join(tmpdir, "input.json")
        with open(input_path, "w", encoding="utf-8") as handle:
            json.dump(input_data or {}, handle)
        os.chmod(driver_path, 0o644)
        os.chmod(input_path, 0o644)
        env = dict(env or {})
        env["SMART_DEPLOY_INPUT"] = "/smart-deploy/input.json"
        if project_dir:
            env["SMART_DEPLOY_PROJECT_DIR"] = project_dir
        env_path = os.path.join(tmpdir, "env")
        write_env_file(env_path, env)
        cmd = [docker, "run", "--rm", "--name", name, "--env-file", env_path,
               "-v", "%s:/smart-deploy/driver.py:ro" % driver_path,
               "-v", "%s:/smart-deploy/input.json:ro" % input_path,
               "--entrypoint", python, "--label", "%s=%s" % (ONEOFF_LABEL, command)]  # fmt: skip
        for key, value in sorted((labels or {}).items()):
            cmd += ["--label", "%s=%s" % (key, value)]
        if network:
            cmd += ["--network", network]
        if project_dir:
            cmd += ["--workdir", project_dir]
        cmd += [image, "/smart-deploy/driver.py", command]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            raise DriverError("the driver's %s did not finish within %s s" % (command, timeout), output=out) from exc
        stdout = proc.stdout
        output = (proc.stdout + ("\n" + proc.stderr if proc.stderr else "")).strip()
    finally:
        subprocess.run([docker, "rm", "-f", name], capture_output=True, check=False)
        shutil.rmtree(tmpdir, ignore_errors=True)
    result = parse_result(stdout)
    if result is None:
        raise DriverError(
            "the driver printed no result (exit %d); the container said: %s" % (proc.returncode, output[-2000:]), output=output
        )
    if not result.get("ok"):
        raise DriverError(result.get("error", "driver failed"), result=result, output=output)
    return result, output
