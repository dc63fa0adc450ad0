# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the smart-deploy driver in a one-off container of a release image (docker CLI)."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from typing import NamedTuple, Optional

from ansible.module_utils.smart_deploy import django_driver

ONEOFF_LABEL = "smart-deploy.oneoff"
# Docker refuses a container memory limit below 6 MiB.
DOCKER_MIN_MEMORY = 6 * 1024 * 1024
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*$", re.IGNORECASE)
SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class DriverError(Exception):
    """The driver did not do its command. ``origin`` says whose failure it is: "app" (the app's code, settings
    or data), "smart-deploy" (the driver broke, or printed a result that cannot be read: a defect of
    smart-deploy) or None (unknown: no result, e.g. the container was killed); ``traceback`` is the driver's."""

    def __init__(self, message, result=None, output="", origin=None):
        super().__init__(message)
        self.result = result or {}
        self.output = output
        self.origin = origin or self.result.get("origin")
        self.traceback = self.result.get("traceback", "")

    @property
    def defect(self) -> bool:
        return self.origin == django_driver.SMART_DEPLOY


def driver_source() -> str:
    """The driver's text, from this very import (the action plugin hands it over where that is impossible)."""
    return inspect.getsource(django_driver)


def parse_result(stdout: str):
    """The driver's JSON result line, or None when it printed none; a DriverError of smart-deploy's own (a defect)
    when the line is there but is not a JSON object."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(django_driver.RESULT_MARK):
            try:
                result = json.loads(line[len(django_driver.RESULT_MARK) :])
            except ValueError as exc:
                result = exc
            if not isinstance(result, dict):
                raise DriverError("the driver's result line cannot be read (%s)%s" % (
                    result if isinstance(result, ValueError) else "not a JSON object", django_driver.DEFECT_NOTE),
                    output=stdout[-4000:], origin=django_driver.SMART_DEPLOY)  # fmt: skip
            return result
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


class Limits(NamedTuple):
    """What a container may use: memory (a docker size such as C(1g), empty for no limit), CPUs
    (0 for no limit) and processes (0 or less for no limit)."""

    memory: str = ""
    cpus: float = 0.0
    pids: int = 0


def parse_size(text) -> int:
    """Bytes of a docker size (C(1g), C(512m), C(1.5G), C(1073741824)); ValueError when it is none."""
    match = SIZE.match(str(text))
    if not match:
        raise ValueError("%r is not a size (a number with an optional unit b, k, m, g or t, e.g. 1g or 512m)" % (text,))
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])


def limits_problem(limits: Limits, what: str, above_bytes: int = 0, because: str = "") -> Optional[str]:
    """Why docker would refuse ``limits``, or why they leave too little memory (more than ``above_bytes``
    is needed, ``because`` says why); None when they are fine."""
    if limits.memory not in ("", None):
        try:
            memory = parse_size(limits.memory)
        except ValueError as exc:
            return "the memory limit of %s: %s" % (what, exc)
        if memory and memory < DOCKER_MIN_MEMORY:
            return "the memory limit of %s (%s) must be at least %d MiB (or 0 for none)" % (what, limits.memory, DOCKER_MIN_MEMORY // 2**20)
        if memory and memory <= above_bytes:
            return "the memory limit of %s (%s) must be above %d MiB%s" % (what, limits.memory, above_bytes // 2**20,
                                                                           " (%s)" % because if because else "")  # fmt: skip
    if limits.cpus is not None and limits.cpus < 0:
        return "the CPU limit of %s must be 0 (none) or more, got %s" % (what, limits.cpus)
    return None


def limit_args(limits: Optional[Limits], host_cpus: Optional[int] = None) -> list:
    """``docker run`` arguments for ``limits``. The CPU limit is capped at the host's CPUs (docker refuses more)."""
    if limits is None:
        return []
    args = []
    memory = parse_size(limits.memory) if limits.memory not in ("", None) else 0
    if memory > 0:
        args += ["--memory", str(memory)]
    if limits.cpus:
        cpus = min(float(limits.cpus), float(host_cpus)) if host_cpus else float(limits.cpus)
        args += ["--cpus", ("%.2f" % cpus).rstrip("0").rstrip(".")]
    if limits.pids and limits.pids > 0:
        args += ["--pids-limit", str(int(limits.pids))]
    return args


def oneoff_limits(params: dict) -> Limits:
    """The limits of the app's one-off containers, from the options of args.app_container_spec()."""
    return Limits(params.get("oneoff_memory") or "", float(params.get("oneoff_cpus") or 0), int(params.get("oneoff_pids_limit") or 0))


def driver_run_argv(
    docker: str,
    image: str,
    command: str,
    name: str,
    env_path: str,
    driver_path: str,
    input_path: str,
    python: str = "python",
    labels: dict = None,
    network: str = None,
    project_dir: str = None,
    limits: Limits = None,
    host_cpus: Optional[int] = None,
    extra_hosts: Optional[list] = None,
) -> list:
    """The ``docker create`` command line of a driver one-off (no secret on it: they are in ``env_path``).

    ``driver_path`` and ``input_path`` are copied into the created container's /smart-deploy by ``docker cp``
    (through the engine's API), not bind-mounted: the engine may be another machine's (a host driving a shared
    or remote engine), whose filesystem does not have this host's temporary files."""
    del driver_path, input_path  # they reach the container by `docker cp` (driver_copy_argv)
    cmd = [docker, "create", "--rm", "--name", name, "--env-file", env_path,
           "--entrypoint", python, "--label", "%s=%s" % (ONEOFF_LABEL, command)]  # fmt: skip
    for key, value in sorted((labels or {}).items()):
        cmd += ["--label", "%s=%s" % (key, value)]
    cmd += limit_args(limits, host_cpus)
    if network:
        cmd += ["--network", network]
    for host in extra_hosts or []:  # host.docker.internal:host-gateway, for an external database on this host
        cmd += ["--add-host", host]
    if project_dir:
        cmd += ["--workdir", project_dir]
    return cmd + [image, "/smart-deploy/driver.py", command]


def driver_copy_argv(docker: str, name: str, payload_dir: str) -> list:
    """``docker cp`` of the folder holding driver.py and input.json (nothing else: the secrets stay in the env
    file, read by the docker client) to /smart-deploy in the created container ``name``."""
    return [docker, "cp", payload_dir.rstrip("/") + "/.", "%s:/smart-deploy" % name]


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
    limits: Limits = None,
    extra_hosts: list = None,
):
    """Run ``driver.py <command>`` in a throwaway container of ``image``; return (result, output).

    Secrets go through an env file readable only by its owner, never on a command line; the input
    is a JSON file mounted read-only. The container runs within ``limits`` (memory, CPUs, processes).
    The container and the temporary files are removed whatever happens, a timeout included.
    """
    tmpdir = tempfile.mkdtemp(prefix="smart-deploy-driver-")
    name = name or oneoff_name("smart-deploy")
    stdout = ""
    try:
        payload = os.path.join(tmpdir, "payload")
        os.mkdir(payload, 0o755)
        os.chmod(payload, 0o755)
        driver_path = os.path.join(payload, "driver.py")
        with open(driver_path, "w", encoding="utf-8") as handle:
            handle.write(source or driver_source())
        input_path = os.path.join(payload, "input.json")
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
        cmd = driver_run_argv(docker, image, command, name, env_path, driver_path, input_path, python=python, labels=labels,
                              network=network, project_dir=project_dir, limits=limits, host_cpus=os.cpu_count(),
                              extra_hosts=extra_hosts)  # fmt: skip
        try:
            created = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
            if created.returncode != 0:
                raise DriverError("could not create the driver's container: %s" % created.stderr.strip()[-2000:])
            copied = subprocess.run(driver_copy_argv(docker, name, payload), capture_output=True, text=True, timeout=timeout, check=False)
            if copied.returncode != 0:
                raise DriverError("could not copy the driver into its container: %s" % copied.stderr.strip()[-2000:])
            proc = subprocess.run([docker, "start", "--attach", name], capture_output=True, text=True, timeout=timeout, check=False)
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
        killed = " - killed, perhaps for using more than its memory limit (%s)" % limits.memory if proc.returncode == 137 and limits else ""
        raise DriverError(
            "the driver printed no result (exit %d%s); the container said: %s" % (proc.returncode, killed, output[-2000:]), output=output
        )
    if not result.get("ok"):
        raise DriverError(result.get("error", "driver failed"), result=result, output=output)
    return result, output
