# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action smart_deploy_wheelhouse: fill a component's wheelhouse on the controller (library/smart_deploy_wheelhouse.py
documents it). pip runs here, with the controller's Python (the one running ansible-playbook); a wheel built from a
source distribution is built on the target, in a one-off container of the image's base (no network), whose
files go there and back through the task's connection. Then the image's own pip checks the wheelhouse, in another
one-off container of that image with no network (pip evaluates environment markers with the interpreter it runs
in: the controller's 3.11.7 skips what the image's 3.11.2 needs), and what it lacks is downloaded here for it.
The rules are module_utils/smart_deploy/wheelhouse.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ansible.module_utils.parsing.convert_bool import boolean
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

# what checks the wheelhouse in a one-off container of the image, offline: the image's python3 and pip (its own
# when pip may install there, else a venv's), `pip install --dry-run` of the requirements (copies, includes
# rewritten to their new place) from the wheelhouse alone, ignoring what the image has installed already; the
# first lines say which Python it is, or why it cannot check (rules.check_verdict reads them)
CHECK_SCRIPT = r"""
mark=smart-deploy-check:
command -v python3 >/dev/null 2>&1 || { echo "$mark cannot check: the image has no python3"; exit 3; }
python3 -c 'import platform; print("smart-deploy-check: python", platform.python_version(), platform.machine())'
untar='import sys, tarfile; safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
tarfile.open(fileobj=sys.stdin.buffer, mode="r|").extractall("/check", **safe)'
python3 -c "$untar" || { echo "$mark failed: the wheelhouse could not be unpacked in the container"; exit 4; }
managed='import os, sys, sysconfig; sys.exit(os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'
if python3 -m pip --version >/dev/null 2>&1 && python3 -c "$managed"; then
  set -- python3 -m pip
elif python3 -m venv /tmp/smart-deploy-check-venv >/dev/null 2>&1; then
  set -- /tmp/smart-deploy-check-venv/bin/python -m pip
else
  echo "$mark cannot check: the image's python3 has neither pip nor venv"; exit 3
fi
"$@" --isolated install --dry-run --ignore-installed --disable-pip-version-check --no-cache-dir --no-index \
  --find-links /check/wheels -r /check/req/0.txt
"""


class WheelhouseError(Exception):
    pass


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=False)


def tail(text: str, lines: int = 15) -> str:
    return "\n".join([line for line in (text or "").splitlines() if not line.startswith("WARNING: Location ")][-lines:])


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


class Fill:
    """One fill of a wheelhouse: the requirements files pip reads, their hash pins, and what was built so far."""

    def __init__(self, requirements: str, staging: str, rounds: int):
        self.requirements = requirements
        self.files = rules.requirement_files(requirements)
        self.pins = rules.hash_pins(self.files)
        self.staging = staging
        self.found = os.path.join(staging, "built")  # wheels built (or taken from the wheelhouse), offered to pip
        os.makedirs(self.found)
        self.rounds = rounds
        self.tried = {}  # requirement -> image it was built in
        self.reused = set()
        self.built = []
        self.extra_hashes = {}  # canonical name -> hashes of the wheels built from its checked source


class ActionModule(ActionBase):
    # its own temporary folder on the target, made only when a container runs (no remote tmp made on every run)
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        requirements, dest = args["requirements"], args["dest"]
        pip_args = [str(arg) for arg in args.get("pip_args") or []]
        stamp_file = os.path.join(dest, rules.STAMP_FILE)
        before = rules.stamp(requirements, pip_args, self._held(dest))
        stamped = Path(stamp_file).read_text().strip() if os.path.isfile(stamp_file) else ""
        result.update(changed=False, downloaded=False, built=[], checked={}, stamp=before)
        if before == stamped:
            result["msg"] = "the wheelhouse %s is stamped for these requirements and arguments: nothing downloaded" % dest
            return result
        if self._task.check_mode:
            result["msg"] = "the wheelhouse %s would be filled" % dest
            return result
        os.makedirs(dest, exist_ok=True)
        rounds = int(args.get("rounds") or 10)
        try:
            with tempfile.TemporaryDirectory(prefix="smart-deploy-sdist-") as staging:
                fill = Fill(requirements, staging, rounds)
                self._download(task_vars or {}, fill, None, dest, pip_args)
                if boolean(args.get("check", True), strict=False):
                    result["checked"] = self._check(task_vars or {}, fill, dest, pip_args)
                result["built"] = fill.built
        except WheelhouseError as exc:
            return dict(result, failed=True, msg=str(exc))
        if result["checked"].get("skipped"):
            result["warnings"] = [
                "the wheelhouse %s was not checked with the image's Python: %s. Set build_wheel_image to the image that installs "
                "its wheels (or build_wheelhouse_check: false)" % (dest, result["checked"]["skipped"])
            ]
        after = rules.stamp(requirements, pip_args, self._held(dest))
        Path(stamp_file).write_text(after + "\n")
        result.update(downloaded=True, stamp=after, msg="the wheelhouse %s was filled" % dest)
        return result

    @staticmethod
    def _held(dest: str) -> list:
        """The distributions in the wheelhouse: wheels, and source distributions kept for hash-pinned requirements."""
        if not os.path.isdir(dest):
            return []
        return sorted(p.name for p in Path(dest).iterdir() if p.is_file() and p.name.endswith((".whl", ".tar.gz", ".zip")))

    def _download(self, task_vars, fill, requirement, dest, pip_args) -> None:
        """pip download of the requirements file (or of one ``requirement`` the image lacks) until it resolves;
        each requirement it finds no wheel for is built from its source distribution (or, built before, taken from
        the wheelhouse), then pip goes again with that wheel found (--find-links a folder of the wheels built, which
        pip download copies into the wheelhouse). A requirement pinned with hashes: its source is checked against
        them, and pip here accepts the wheel built from it (its hash added to a copy of the requirements files); when
        the wheelhouse already holds that checked source (an earlier fill), it is built again from it, not downloaded:
        left out of the copy, pip would resolve what depends on it with another version, which no hash pins."""
        for _ in range(fill.rounds):
            if requirement:
                what = [requirement]
            elif fill.extra_hashes:
                what = ["-r", self._requirements_copy(fill)]
            else:
                what = ["-r", fill.requirements]
            download = pip("download", "--disable-pip-version-check", "--quiet", *what, "-d", dest, "--find-links", fill.found, *pip_args)
            if download.returncode == 0:
                self._ship_sources(fill, dest)
                return
            output = download.stdout + download.stderr
            missing = rules.missing_requirement(output)
            if missing is None:
                raise WheelhouseError("pip download for %s failed:\n%s" % (requirement or fill.requirements, tail(output)))
            name = rules.canonical_name(missing)
            before = rules.wheels_of(self._held(dest), missing)
            if missing not in fill.reused and before and name not in fill.pins:  # built by an earlier run: offered again, not rebuilt
                fill.reused.add(missing)
                for wheel in before:
                    shutil.copy2(os.path.join(dest, wheel), os.path.join(fill.found, wheel))
                continue
            kept = []
            if name in fill.pins:
                kept = [
                    sdist for sdist in rules.sources_of(self._held(dest), missing) if sha256(os.path.join(dest, sdist)) in fill.pins[name]
                ]
            if missing in fill.tried:
                seen = rules.versions_seen(output, missing)
                raise WheelhouseError(rules.built_wheel_problem(missing, fill.tried[missing], seen, rules.python_version(pip_args)))
            # its checked source, from an earlier fill, is in the wheelhouse: built again from it (not downloaded), so
            # that pip here resolves through the pinned version what depends on it (left out, pip would take another)
            sdist = os.path.join(dest, kept[0]) if kept else self._source_distribution(missing, pip_args, fill, output)
            image = self._image()
            fill.tried[missing] = image
            requires = rules.build_requirements(rules.pyproject_of(sdist))
            deps = os.path.join(fill.staging, "deps-" + name)
            wheels = self._build(task_vars, image, sdist, requires, pip_args, deps, fill.found)
            entry = {"requirement": missing, "sdist": os.path.basename(sdist), "image": image, "wheels": wheels, "build_requires": requires}
            if name in fill.pins:
                fill.extra_hashes[name] = [sha256(os.path.join(fill.found, wheel)) for wheel in wheels]
                entry.update(hash_pinned=True, _sdist_path=sdist, _deps=deps)
            if kept:
                entry["reused"] = True
            fill.built.append(entry)
        raise WheelhouseError(
            "pip download for %s still fails after %d rounds of wheels built from source" % (requirement or fill.requirements, fill.rounds)
        )

    def _requirements_copy(self, fill) -> str:
        """A copy of the requirements files in which each hash-pinned requirement built here also allows its wheel's
        hash (pip here checks every file it takes against the pins); the top file's path."""
        folder = os.path.join(fill.staging, "requirements")
        os.makedirs(folder, exist_ok=True)
        placed = {os.path.realpath(path): os.path.join(folder, "%d.txt" % i) for i, (path, _text) in enumerate(fill.files)}
        for path, text in rules.rewritten_requirements(fill.files, placed, fill.extra_hashes):
            Path(path).write_text(text, encoding="utf-8")
        return placed[os.path.realpath(fill.files[0][0])]

    def _ship_sources(self, fill, dest) -> None:
        """A hash-pinned requirement built here goes into the wheelhouse as its source distribution (whose hash the
        pin allows) with its build requirements, not as the wheel built (which the image's pip would refuse, and
        would prefer): the image's pip builds it, offline."""
        for entry in fill.built:
            if not entry.get("hash_pinned") or entry.get("shipped"):
                continue
            allowed = fill.pins.get(rules.canonical_name(entry["requirement"]), [])
            for wheel in rules.wheels_of(self._held(dest), entry["requirement"]):
                if sha256(os.path.join(dest, wheel)) not in allowed:
                    os.remove(os.path.join(dest, wheel))
            shipped = [entry["sdist"]]
            source = entry.pop("_sdist_path")
            if os.path.realpath(source) != os.path.realpath(os.path.join(dest, entry["sdist"])):  # not the one kept there
                shutil.copy2(source, os.path.join(dest, entry["sdist"]))
            deps = entry.pop("_deps")
            for wheel in sorted(os.listdir(deps)) if os.path.isdir(deps) else []:
                shutil.copy2(os.path.join(deps, wheel), os.path.join(dest, wheel))
                shipped.append(wheel)
            entry["shipped"] = shipped

    def _source_distribution(self, requirement, pip_args, fill, pip_output) -> str:
        """Download the source distribution of ``requirement`` (for the image's Python: Requires-Python holds),
        checked against the hashes the requirements pin it to, if any."""
        folder = os.path.join(fill.staging, rules.canonical_name(requirement))
        os.makedirs(folder, exist_ok=True)
        version = rules.python_version(pip_args)
        pinned = fill.pins.get(rules.canonical_name(requirement))
        if pinned:  # pip checks the download against them (hash-checking mode, as a requirements file line)
            line = os.path.join(fill.staging, "pin-%s.txt" % rules.canonical_name(requirement))
            Path(line).write_text(rules.pinned_line(requirement, pinned) + "\n", encoding="utf-8")
            what = ["-r", line]
        else:
            what = [requirement]
        found = pip("download", "--disable-pip-version-check", "--quiet", "--no-deps", "--no-binary=:all:", "-d", folder,
                    *(["--python-version=%s" % version] if version else []), *rules.index_args(pip_args), *what)  # fmt: skip
        sdists = [os.path.join(folder, name) for name in os.listdir(folder)]
        if pinned and found.returncode != 0 and "DO NOT MATCH THE HASHES" in found.stdout + found.stderr:
            raise WheelhouseError(
                "the source distribution of %s matches none of the hashes %s pins it to (%s): it is not built.\npip said:\n%s"
                % (requirement, os.path.basename(fill.requirements), ", ".join(pinned), tail(found.stdout + found.stderr))
            )
        if found.returncode != 0 or len(sdists) != 1:
            platforms = [a.split("=", 1)[1] for a in pip_args if a.startswith("--platform=")]
            seen = rules.versions_seen(pip_output, requirement) or "none"
            raise WheelhouseError(
                "%s has no wheel for the image (Python %s, platforms %s) and no source distribution to build one from "
                "(versions with a wheel: %s). Pin a version that has one, or change the Django component's python_version "
                "or platforms.\npip said:\n%s" % (requirement, version or "?", ", ".join(platforms) or "?", seen, tail(pip_output))
            )
        return sdists[0]

    def _image(self, required: bool = True):
        image = self._task.args.get("image") or ""
        if image:
            return image
        dockerfile = self._task.args.get("dockerfile") or ""
        if dockerfile and os.path.isfile(dockerfile):
            image = rules.dockerfile_base_image(Path(dockerfile).read_text(encoding="utf-8", errors="replace"))
            if image:
                return image
        if not required:
            return None
        raise WheelhouseError(
            "a wheel must be built from source, in a container of the image's base, and the image to build it in is "
            "unknown (no FROM read from %s): set build_wheel_image" % (dockerfile or "the Dockerfile")
        )

    def _check(self, task_vars, fill, dest, pip_args) -> dict:
        """Let the image's pip install the requirements from the wheelhouse alone, offline, with --dry-run; what it
        finds no distribution for is downloaded here (for the image's Python version and platforms), until it
        resolves. Returns the image, its Python and what was added (or why it could not check: ``skipped``)."""
        image = self._image(required=False)
        if image is None:
            return {"skipped": "no image known to check it in (set build_wheel_image, or the wheelhouse's dockerfile)"}
        added, python = [], "?"
        for _ in range(fill.rounds):
            returncode, output = self._in_image(task_vars, image, fill, dest)
            python = rules.image_python(output)
            verdict, detail = rules.check_verdict(returncode, output)
            if verdict == "complete":
                return {"image": image, "python": python, "added": added}
            if verdict == "unchecked":
                return {"image": image, "python": python, "added": added, "skipped": "%s (%s)" % (detail, image)}
            if verdict == "failed":
                raise WheelhouseError("checking the wheelhouse in %s failed: %s\n%s" % (image, detail, tail(output)))
            if verdict == "refused":
                raise WheelhouseError("%s\n%s" % (rules.image_refuses_problem(image, python, output), tail(output, 25)))
            if detail in added:
                raise WheelhouseError(rules.image_lacks_problem(detail, image, python, rules.versions_seen(output, detail), pip_args))
            added.append(detail)
            self._download(task_vars, fill, detail, dest, pip_args)
        raise WheelhouseError(
            "the image's pip (Python %s in %s) still lacks packages after %d rounds: %s" % (python, image, fill.rounds, ", ".join(added))
        )

    def _in_image(self, task_vars, image, fill, dest) -> tuple:
        """CHECK_SCRIPT in a one-off container of ``image`` with no network, given the wheelhouse and the
        requirements files (one tar file, through the task's connection, read by the container from its standard
        input); (exit code, output)."""
        bundle = os.path.join(fill.staging, "check.tar")
        placed = {os.path.realpath(path): "/check/req/%d.txt" % i for i, (path, _text) in enumerate(fill.files)}
        with tarfile.open(bundle, "w") as archive:
            for name in self._held(dest):
                archive.add(os.path.join(dest, name), arcname="wheels/" + name)
            for path, text in rules.rewritten_requirements(fill.files, placed):
                data = text.encode("utf-8")
                info = tarfile.TarInfo(path[len("/check/") :])
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
        docker = self._task.args.get("docker_cli") or "docker"
        name = "%s-wheels-check-%s" % (self._task.args.get("app") or "smart-deploy", secrets.token_hex(4))
        run = [docker, "run", "--rm", "--interactive", "--name", name, "--network", "none", "--user", "0", "--entrypoint", "sh",
               *self._labels("wheels-check"), image, "-c", CHECK_SCRIPT]  # fmt: skip
        with self._remote_folder() as remote:
            self._transfer_file(bundle, remote + "/check.tar")
            # one command: the tar file is the container's standard input (docker run --rm removes it however it ends)
            done = self._command(
                ["sh", "-c", 'tar="$1"; shift; exec "$@" < "$tar"', "sh", remote + "/check.tar", *run], task_vars, check=False
            )
        os.remove(bundle)
        if done.get("rc") == 125:  # docker's own failure (no such image, no engine), not the check's
            raise WheelhouseError(
                "running the container that checks the wheelhouse (image %s) failed: %s" % (image, tail(done.get("stderr", "")))
            )
        return done.get("rc", 1), (done.get("stdout", "") + "\n" + done.get("stderr", "")).strip() or done.get("msg", "")

    def _labels(self, purpose: str) -> list:
        app = self._task.args.get("app") or "smart-deploy"
        return ["--label", "smart-deploy.app=%s" % app, "--label", "smart-deploy.purpose=%s" % purpose]

    @contextlib.contextmanager
    def _remote_folder(self):
        """A folder of the target's for the files that go into a container and come out of it (docker cp: the
        engine need not see the target's files, as with a target that drives a shared engine through its socket),
        made as the connection's user, never through become (the files are put there as that user); removed after."""
        made = self._low_level_execute_command("umask 077 && mktemp -d /tmp/smart-deploy-wheel.XXXXXXXX", sudoable=False)
        remote = (made.get("stdout") or "").strip()
        if made.get("rc") != 0 or not remote.startswith("/tmp/smart-deploy-wheel."):
            raise WheelhouseError("could not make a temporary folder on the target: %s" % tail(made.get("stderr", "")))
        try:
            yield remote
        finally:
            self._low_level_execute_command("rm -rf %s" % shlex.quote(remote), sudoable=False)

    def _build(self, task_vars, image, sdist, requires, pip_args, deps, dest) -> list:
        """The wheel of ``sdist``, built in a one-off container of ``image`` on the target from the build
        requirements downloaded into ``deps``; returns the wheels' names, fetched into the folder ``dest``."""
        os.makedirs(deps, exist_ok=True)
        if requires:
            got = pip("download", "--disable-pip-version-check", "--quiet", "-d", deps, *pip_args, *requires)
            if got.returncode != 0:
                raise WheelhouseError("downloading what building %s needs (%s) failed:\n%s" % (os.path.basename(sdist), ", ".join(requires),
                                                                                             tail(got.stdout + got.stderr)))  # fmt: skip
        docker = self._task.args.get("docker_cli") or "docker"
        name = "%s-wheel-%s" % (self._task.args.get("app") or "smart-deploy", secrets.token_hex(4))
        with self._remote_folder() as remote:
            self._low_level_execute_command("mkdir -p %s/build/deps" % shlex.quote(remote), sudoable=False)
            self._transfer_file(sdist, "%s/build/%s" % (remote, os.path.basename(sdist)))
            for wheel in sorted(os.listdir(deps)):
                self._transfer_file(os.path.join(deps, wheel), "%s/build/deps/%s" % (remote, wheel))
            create = [docker, "create", "--name", name, "--network", "none", "--user", "0", "--entrypoint", "sh", *self._labels("wheel"),
                      image, "-c", BUILD_SCRIPT, os.path.basename(sdist)]  # fmt: skip
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

    def _command(self, argv, task_vars, what=None, check=True) -> dict:
        done = self._execute_module(module_name="ansible.builtin.command", module_args={"argv": argv}, task_vars=task_vars)
        if check and (done.get("failed") or done.get("rc", 1) != 0):
            said = (done.get("stdout", "") + "\n" + done.get("stderr", "")).strip() or done.get("msg", "")
            raise WheelhouseError("%s failed (%s): %s" % (what or " ".join(argv[:2]), done.get("rc"), tail(said, 25)))
        return done
