# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build role's wheelhouse (plugins/action/smart_deploy_wheelhouse.py): what pip resolves from, the stamp that
says the wheelhouse is already filled for it, and what a package published only as a source distribution needs to
be built into a wheel. Plain Python: files are read, nothing is run.

- The stamp hashes every requirements file pip reads: the top one and, recursively, each one it includes with
  ``-r``/``--requirement`` or ``-c``/``--constraint`` (relative to the including file, as pip resolves them),
  with the pip arguments and the names of the wheels there. A changed pin in an included file downloads again.
- A requirement pip finds no wheel for (``No matching distribution found for docopt==0.6.2``) may have a source
  distribution: its build requirements (``[build-system] requires`` of its pyproject.toml, setuptools and wheel
  for a setup.py) are downloaded as wheels too, and the wheel is built in a container of the image's base.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shlex
import tarfile
import zipfile
from typing import List, Optional, Tuple

STAMP_FILE = ".smart-deploy-stamp"

# pip's own rules (pip/_internal/req/req_file.py): a comment starts at a "#" at the start or after whitespace; a
# line ending with a backslash goes on with the next one
_COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDE_OPTIONS = {"-r": "requirement", "--requirement": "requirement", "-c": "constraint", "--constraint": "constraint"}
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


def logical_lines(text: str) -> List[str]:
    """The lines pip reads from a requirements file: continuations joined, comments and blank lines left out."""
    lines, pending = [], ""
    for raw in text.splitlines():
        line = pending + raw
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        pending = ""
        line = _COMMENT.sub("", line).strip()
        if line:
            lines.append(line)
    if pending.strip():
        lines.append(_COMMENT.sub("", pending).strip())
    return lines


def includes(text: str) -> List[Tuple[str, str]]:
    """The files a requirements file includes, as written: [(kind, path)], kind ``requirement`` or ``constraint``
    (``-r base.txt``, ``-rbase.txt``, ``--requirement=base.txt``, ``-c constraints.txt``...)."""
    found = []
    for line in logical_lines(text):
        try:
            words = shlex.split(line, posix=True)
        except ValueError:
            words = line.split()
        for i, word in enumerate(words):
            for option, kind in _INCLUDE_OPTIONS.items():
                if word == option and i + 1 < len(words):
                    found.append((kind, words[i + 1]))
                elif option.startswith("--") and word.startswith(option + "="):
                    found.append((kind, word[len(option) + 1 :]))
                elif not option.startswith("--") and word.startswith(option) and len(word) > 2 and word[:2] == option:
                    found.append((kind, word[2:]))
    return found


def requirement_files(top: str) -> List[Tuple[str, Optional[str]]]:
    """Every requirements file pip reads for ``top``, top first then includes depth-first, each once:
    [(path, text or None when it cannot be read)]. URLs are not fetched (their line is in the including file)."""
    files, seen = [], set()

    def visit(path: str) -> None:
        real = os.path.realpath(path)
        if real in seen:
            return
        seen.add(real)
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError):
            files.append((path, None))
            return
        files.append((path, text))
        for _kind, included in includes(text):
            if _URL.match(included):
                continue
            included = os.path.expandvars(included)
            visit(included if os.path.isabs(included) else os.path.join(os.path.dirname(path), included))

    visit(top)
    return files


def stamp(requirements: str, pip_args: list, wheels: list) -> str:
    """What the wheelhouse is filled for: the sha256 of the requirements file's text, the texts of the files it
    includes (by their path relative to its folder), the pip arguments and the sorted names of the wheels there.
    Without includes, the value the build role always wrote (a stamp written before stays valid)."""
    files = requirement_files(requirements)
    stamped = {"requirements": files[0][1], "pip_args": list(pip_args), "wheels": sorted(wheels)}
    folder = os.path.dirname(requirements)
    included = {os.path.relpath(path, folder): text for path, text in files[1:]}
    if included:
        stamped["included"] = included
    return hashlib.sha256(json.dumps(stamped, sort_keys=True).encode("utf-8")).hexdigest()


_NOT_FOUND = re.compile(r"No matching distribution found for (\S+)")
_VERSIONS = re.compile(r"Could not find a version that satisfies the requirement (\S+)(?: \(from [^)]*\))? \(from versions: ([^)]*)\)")


def missing_requirement(pip_output: str) -> Optional[str]:
    """The requirement pip found no distribution for (``docopt==0.6.2``), from its error output; None if none."""
    found = _NOT_FOUND.findall(pip_output or "")
    return found[-1] if found else None


def versions_seen(pip_output: str, requirement: str) -> Optional[str]:
    """The versions pip saw for ``requirement`` (``none``, ``5.2.8, 5.2.9``), from its error output."""
    for name, versions in _VERSIONS.findall(pip_output or ""):
        if name == requirement:
            return versions.strip()
    return None


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical_name(requirement: str) -> str:
    """PEP 503's name of a requirement (``Django[argon2]>=5`` -> ``django``)."""
    found = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", found.group(1)).lower() if found else requirement.lower()


def wheels_of(names: list, requirement: str) -> list:
    """The wheel files among ``names`` of the distribution ``requirement`` names (any version)."""
    wanted = canonical_name(requirement)
    return sorted(n for n in names if n.endswith(".whl") and re.sub(r"[-_.]+", "-", n.split("-", 1)[0]).lower() == wanted)


# options of pip download that say where packages come from (kept when downloading a source distribution); those
# that say which wheels fit the image (--platform, --python-version...) are not theirs
_INDEX_OPTIONS_WITH_VALUE = ("--index-url", "-i", "--extra-index-url", "--find-links", "-f", "--trusted-host", "--cert",
                             "--client-cert", "--proxy", "--timeout", "--retries")  # fmt: skip
_INDEX_FLAGS = ("--no-index", "--pre", "--isolated")


def index_args(pip_args: list) -> list:
    """The arguments of ``pip_args`` that say where packages come from."""
    kept, i = [], 0
    while i < len(pip_args):
        arg = str(pip_args[i])
        name = arg.split("=", 1)[0]
        if arg in _INDEX_FLAGS:
            kept.append(arg)
        elif name in _INDEX_OPTIONS_WITH_VALUE:
            if "=" in arg:
                kept.append(arg)
            elif i + 1 < len(pip_args):
                kept += [arg, str(pip_args[i + 1])]
                i += 1
        i += 1
    return kept


def python_version(pip_args: list) -> Optional[str]:
    """The --python-version of ``pip_args`` (``3.13``), or None."""
    for i, arg in enumerate(pip_args):
        arg = str(arg)
        if arg.startswith("--python-version="):
            return arg.split("=", 1)[1]
        if arg == "--python-version" and i + 1 < len(pip_args):
            return str(pip_args[i + 1])
    return None


# pip's default for a source distribution without a [build-system] table (PEP 518)
LEGACY_BUILD_REQUIREMENTS = ["setuptools>=40.8.0", "wheel"]


def pyproject_of(archive: str) -> Optional[str]:
    """The text of the pyproject.toml at the top of a source distribution (.tar.gz or .zip), or None."""
    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as handle:
            names = [n for n in handle.namelist() if n.count("/") == 1 and n.endswith("/pyproject.toml")]
            return handle.read(names[0]).decode("utf-8") if names else None
    with tarfile.open(archive) as handle:
        for member in handle.getmembers():
            if member.isfile() and member.name.count("/") == 1 and member.name.endswith("/pyproject.toml"):
                return handle.extractfile(member).read().decode("utf-8")
    return None


def build_requirements(pyproject: Optional[str]) -> List[str]:
    """What building the wheel needs installed (PEP 517/518): ``[build-system] requires``, or setuptools and wheel
    when there is none; ``wheel`` is added for setuptools' backend (older setuptools ask for it when building)."""
    if not pyproject:
        return list(LEGACY_BUILD_REQUIREMENTS)
    import tomllib  # Python 3.11+: the controller's

    system = tomllib.load(io.BytesIO(pyproject.encode("utf-8"))).get("build-system")
    if not isinstance(system, dict) or "requires" not in system:
        return list(LEGACY_BUILD_REQUIREMENTS)
    requires = [str(r) for r in system.get("requires") or []]
    backend = system.get("build-backend") or "setuptools.build_meta:__legacy__"
    if backend.startswith("setuptools") and "wheel" not in {canonical_name(r) for r in requires}:
        requires.append("wheel")
    return requires


_FROM = re.compile(r"^\s*FROM\s+(.*)$", re.I)
_ARG = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?", re.I)


def dockerfile_base_image(text: str) -> Optional[str]:
    """The image a Dockerfile's first stage starts FROM (``python:3.13-slim-trixie``), with the defaults of the
    ARGs before it put in; None when there is no FROM or a value is unknown."""
    args = {}
    for line in text.splitlines():
        arg = _ARG.match(line)
        if arg:
            args[arg.group(1)] = None if arg.group(2) is None else arg.group(2).strip("\"'")
            continue
        found = _FROM.match(line)
        if not found:
            continue
        words = [w for w in found.group(1).split() if not w.startswith("--")]
        if not words:
            return None
        image = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1)) or "\0", words[0])
        return None if "\0" in image or not image or image.lower() == "scratch" else image
    return None


def built_wheel_problem(requirement: str, image: str, versions: Optional[str], target_python: Optional[str]) -> str:
    """Why pip still finds no distribution for ``requirement`` after its wheel was built in ``image``."""
    return (
        "%s was built into a wheel in %s, yet pip still finds none for the image's Python %s (versions seen: %s): the "
        "wheel does not fit it (is %s's Python %s? a package with C code needs a compiler there). Build the image's "
        "wheel in another image (build_wheel_image) or set the Django component's python_version to the image's Python"
        % (requirement, image, target_python or "?", versions or "none", image, target_python or "that one")
    )
