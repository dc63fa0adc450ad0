# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action smart_deploy_wheelhouse: fill a component's wheelhouse on the controller (library/smart_deploy_wheelhouse.py
documents it). pip runs here, with the controller's Python (the one running ansible-playbook); a wheel built from a
source distribution is built on the target, in a one-off container of the image's base (no network), whose
files go there and back through the task's connection. The rules are module_utils/smart_deploy/wheelhouse.py.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ansible.plugins.action import ActionBase

_spec = importlib.util.spec_from_file_location(
    "smart_deploy_wheelhouse_rules", Path(__file__).resolve().parents[2] / "module_utils" / "smart_deploy" / "wheelhouse.py"
)
rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rules)

# what runs in the one-off container: a venv of the image's Python (pip included; Debian's python3 has no pip of
# its own), then pip wheel of the source distribution, offline, in an isolated build environment (PEP 517, also for
# a setup.py) made of the build requirements downloaded as wheels beside it
BUILD_SCRIPT = (
    "python3 -m venv /tmp/smart-deploy-wheel-venv && /tmp/smart-deploy-wheel-venv/bin/python -m pip wheel --disable-pip-version-check "
    '--no-cache-dir --no-index --find-links /build/deps --no-deps --use-pep517 --wheel-dir /build/out "/build/$0"'
)


class WheelhouseError(Exception):
    pass


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=False)


def tail(text: str, lines: int = 15) -> str:
    return "\n".join([line for line in (text or "").splitlines() if not line.startswith("WARNING: Location ")][-lines:])


class ActionModule(ActionBase):
    # its own temporary folder on the target, made only when a wheel is built (no remote tmp made on every run)
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        requirements, dest = args["requirements"], args["dest"]
        pip_args = [str(arg) for arg in args.get("pip_args") or []]
        stamp_file = os.path.join(dest, rules.STAMP_FILE)
        before = rules.stamp(requirements, pip_args, self._wheels(dest))
        stamped = Path(stamp_file).read_text().strip() if os.path.isfile(stamp_file) else ""
        result.update(changed=False, downloaded=False, built=[], stamp=before)
        if before == stamped:
            result["msg"] = "the wheelhouse %s is stamped for these requirements and arguments: nothing downloaded" % dest
            return result
        if self._task.check_mode:
            result["msg"] = "the wheelhouse %s would be filled" % dest
            return result
        os.makedirs(dest, exist_ok=True)
        try:
            result["built"] = self._fill(task_vars or {}, requirements, dest, pip_args)
        except WheelhouseError as exc:
            return dict(result, failed=True, msg=str(exc))
        after = rules.stamp(requirements, pip_args, self._wheels(dest))
        Path(stamp_file).write_text(after + "\n")
        result.update(downloaded=True, stamp=after, msg="the wheelhouse %s was filled" % dest)
        return result

    @staticmethod
    def _wheels(dest: str) -> list:
        return sorted(p.name for p in Path(dest).glob("*.whl")) if os.path.isdir(dest) else []

    def _fill(self, task_vars, requirements, dest, pip_args) -> list:
        """pip download until it resolves; each requirement it finds no wheel for is built from its source
        distribution (or, built before, taken from the wheelhouse), then pip goes again with that wheel found
        (--find-links a folder of the wheels built, which pip download copies into the wheelhouse)."""
        built, tried, reused = [], {}, set()
        rounds = int(self._task.args.get("rounds") or 10)
        with tempfile.TemporaryDirectory(prefix="smart-deploy-sdist-") as staging:
            found = os.path.join(staging, "built")
            os.makedirs(found)
            for _ in range(rounds):
                download = pip("download", "--disable-pip-version-check", "--quiet", "-r", requirements, "-d", dest,
                               "--find-links", found, *pip_args)  # fmt: skip
                if download.returncode == 0:
                    return built
                output = download.stdout + download.stderr
                requirement = rules.missing_requirement(output)
                if requirement is None:
                    raise WheelhouseError("pip download for %s failed:\n%s" % (requirements, tail(output)))
                before = rules.wheels_of(self._wheels(dest), requirement)
                if requirement not in reused and before:  # built by an earlier run: offered again, not rebuilt
                    reused.add(requirement)
                    for wheel in before:
                        shutil.copy2(os.path.join(dest, wheel), os.path.join(found, wheel))
                    continue
                if requirement in tried:
                    seen = rules.versions_seen(output, requirement)
                    raise WheelhouseError(rules.built_wheel_problem(requirement, tried[requirement], seen, rules.python_version(pip_args)))
                sdist = self._source_distribution(requirement, pip_args, staging, output)
                image = self._image()
                tried[requirement] = image
                requires = rules.build_requirements(rules.pyproject_of(sdist))
                wheels = self._build(task_vars, image, sdist, requires, pip_args, staging, found)
                built.append({"requirement": requirement, "sdist": os.path.basename(sdist), "image": image, "wheels": wheels,
                              "build_requires": requires})  # fmt: skip
        raise WheelhouseError("pip download for %s still fails after %d rounds of wheels built from source" % (requirements, rounds))

    def _source_distribution(self, requirement, pip_args, staging, pip_output) -> str:
        """Download the source distribution of ``requirement`` (for the image's Python: Requires-Python holds)."""
        folder = os.path.join(staging, rules.canonical_name(requirement))
        os.makedirs(folder, exist_ok=True)
        version = rules.python_version(pip_args)
        found = pip("download", "--disable-pip-version-check", "--quiet", "--no-deps", "--no-binary=:all:", "-d", folder,
                    *(["--python-version=%s" % version] if version else []), *rules.index_args(pip_args), requirement)  # fmt: skip
        sdists = [os.path.join(folder, name) for name in os.listdir(folder)]
        if found.returncode != 0 or len(sdists) != 1:
            platforms = [a.split("=", 1)[1] for a in pip_args if a.startswith("--platform=")]
            seen = rules.versions_seen(pip_output, requirement) or "none"
            raise WheelhouseError(
                "%s has no wheel for the image (Python %s, platforms %s) and no source distribution to build one from "
                "(versions with a wheel: %s). Pin a version that has one, or change the Django component's python_version "
                "or platforms.\npip said:\n%s" % (requirement, version or "?", ", ".join(platforms) or "?", seen, tail(pip_output))
            )
        return sdists[0]

    def _image(self) -> str:
        image = self._task.args.get("image") or ""
        if image:
            return image
        dockerfile = self._task.args.get("dockerfile") or ""
        if dockerfile and os.path.isfile(dockerfile):
            image = rules.dockerfile_base_image(Path(dockerfile).read_text(encoding="utf-8", errors="replace"))
            if image:
                return image
        raise WheelhouseError(
            "a wheel must be built from source, in a container of the image's base, and the image to build it in is "
            "unknown (no FROM read from %s): set build_wheel_image" % (dockerfile or "the Dockerfile")
        )

    def _build(self, task_vars, image, sdist, requires, pip_args, staging, dest) -> list:
        """The wheel of ``sdist``, built in a one-off container of ``image`` on the target; returns the wheels'
        names, fetched into the folder ``dest``."""
        deps = os.path.join(staging, "deps")
        os.makedirs(deps, exist_ok=True)
        if requires:
            got = pip("download", "--disable-pip-version-check", "--quiet", "-d", deps, *pip_args, *requires)
            if got.returncode != 0:
                raise WheelhouseError("downloading what building %s needs (%s) failed:\n%s" % (os.path.basename(sdist), ", ".join(requires),
                                                                                             tail(got.stdout + got.stderr)))  # fmt: skip
        docker = self._task.args.get("docker_cli") or "docker"
        scope = self._task.args.get("app") or "smart-deploy"
        # a folder of the target's for the files that go into the container and come out of it (docker cp: the
        # engine need not see the target's files, as with a target that drives a shared engine through its socket)
        # (made as the connection's user, never through become: the files are put there as that user)
        made = self._low_level_execute_command("umask 077 && mktemp -d /tmp/smart-deploy-wheel.XXXXXXXX", sudoable=False)
        remote = (made.get("stdout") or "").strip()
        if made.get("rc") != 0 or not remote.startswith("/tmp/smart-deploy-wheel."):
            raise WheelhouseError("could not make a temporary folder on the target: %s" % tail(made.get("stderr", "")))
        name = "%s-wheel-%s" % (scope, secrets.token_hex(4))
        try:
            self._low_level_execute_command("mkdir -p %s/build/deps" % shlex.quote(remote), sudoable=False)
            self._transfer_file(sdist, "%s/build/%s" % (remote, os.path.basename(sdist)))
            for wheel in sorted(os.listdir(deps)):
                self._transfer_file(os.path.join(deps, wheel), "%s/build/deps/%s" % (remote, wheel))
            create = [docker, "create", "--name", name, "--network", "none", "--label", "smart-deploy.app=%s" % scope,
                      "--label", "smart-deploy.purpose=wheel", image, "sh", "-c", BUILD_SCRIPT, os.path.basename(sdist)]  # fmt: skip
            self._command(create, task_vars, what="creating the container that builds %s (image %s)" % (os.path.basename(sdist), image))
            try:
                self._command([docker, "cp", remote + "/build/.", name + ":/build"], task_vars)
                self._command([docker, "start", "--attach", name], task_vars,
                              what="building %s into a wheel in %s" % (os.path.basename(sdist), image))  # fmt: skip
                self._command([docker, "cp", name + ":/build/out/.", remote + "/out"], task_vars)
            finally:
                self._command([docker, "rm", "--force", "--volumes", name], task_vars, check=False)
            listed = self._command(["find", remote + "/out", "-maxdepth", "1", "-name", "*.whl", "-type", "f"], task_vars)
            names = sorted(os.path.basename(line) for line in listed["stdout"].splitlines() if line.strip())
            if not names:
                raise WheelhouseError("building %s in %s gave no wheel" % (os.path.basename(sdist), image))
            for wheel in names:
                self._connection.fetch_file("%s/out/%s" % (remote, wheel), os.path.join(dest, wheel))
            return names
        finally:
            self._command(["rm", "-rf", remote], task_vars, check=False)
            shutil.rmtree(deps, ignore_errors=True)

    def _command(self, argv, task_vars, what=None, check=True) -> dict:
        done = self._execute_module(module_name="ansible.builtin.command", module_args={"argv": argv}, task_vars=task_vars)
        if check and (done.get("failed") or done.get("rc", 1) != 0):
            said = (done.get("stdout", "") + "\n" + done.get("stderr", "")).strip() or done.get("msg", "")
            raise WheelhouseError("%s failed (%s): %s" % (what or " ".join(argv[:2]), done.get("rc"), tail(said, 25)))
        return done
