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
- A requirement pinned with hashes (``--hash=sha256:...``) accepts only the files whose hashes it names: its source
  is downloaded checked against them, and the wheel built from it is let through pip on the controller by a copy
  of the requirements files that also names the wheel's hash (the image gets the source, not the wheel).
- The image's own pip checks the wheelhouse (``pip install --dry-run --no-index``, in a container of the image):
  what it says (complete, a requirement it finds nothing for, or why it cannot check) is read here.
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


_NOT_FOUND = re.compile(r"No matching distribution found for (.+?)\s*$", re.M)
_VERSIONS = re.compile(r"Could not find a version that satisfies the requirement (.+?)(?: \(from [^()]*\))? \(from versions: ([^)]*)\)")


def without_marker(requirement: str) -> str:
    """A requirement without its environment marker (``async-timeout>=4.0.3; python_full_version < "3.11.3"`` ->
    ``async-timeout>=4.0.3``): pip evaluates a marker with the interpreter it runs in, not the image's."""
    return requirement.split(";", 1)[0].strip()


def missing_requirement(pip_output: str) -> Optional[str]:
    """The requirement pip found no distribution for (``docopt==0.6.2``, ``async-timeout>=4.0.3`` of
    ``async-timeout>=4.0.3; python_full_version < "3.11.3"``), from its error output; None if none."""
    found = _NOT_FOUND.findall(pip_output or "")
    return without_marker(found[-1]) if found else None


def versions_seen(pip_output: str, requirement: str) -> Optional[str]:
    """The versions pip saw for ``requirement`` (``none``, ``5.2.8, 5.2.9``), from its error output."""
    for name, versions in _VERSIONS.findall(pip_output or ""):
        if without_marker(name) == without_marker(requirement):
            return versions.strip()
    return None


def _requirement_and_options(line: str) -> Tuple[str, List[str]]:
    """A requirement line split as pip splits it: the requirement, then its options (from the first word that
    starts with a dash: ``--hash=sha256:...``)."""
    words = line.split()
    for i, word in enumerate(words):
        if word.startswith("-"):
            return " ".join(words[:i]), words[i:]
    return line, []


def _hashes_of(options: List[str]) -> List[str]:
    found = []
    for i, option in enumerate(options):
        if option.startswith("--hash="):
            found.append(option[len("--hash=") :])
        elif option == "--hash" and i + 1 < len(options):
            found.append(options[i + 1])
    return found


def hash_pins(files: List[Tuple[str, Optional[str]]]) -> dict:
    """The hashes each requirement is pinned to (``--hash=sha256:...``, pip-compile --generate-hashes), in the
    files pip reads (requirement_files): {canonical name: ["sha256:..."]}. Any of them puts pip in hash-checking
    mode: it then installs only files whose hash is pinned."""
    pins = {}
    for _path, text in files:
        for line in logical_lines(text or ""):
            if line.startswith("-"):
                continue
            requirement, options = _requirement_and_options(line)
            hashes = _hashes_of(options)
            if requirement and hashes:
                known = pins.setdefault(canonical_name(requirement), [])
                known.extend(h for h in hashes if h not in known)
    return pins


def pinned_line(requirement: str, hashes: List[str]) -> str:
    """A requirements line that pins ``requirement`` to ``hashes`` (for pip to check a download against them)."""
    return " ".join([without_marker(requirement), *("--hash=%s" % h for h in hashes)])


def rewritten_requirements(
    files: List[Tuple[str, Optional[str]]], placed: dict, extra_hashes: Optional[dict] = None, dropped=()
) -> List[Tuple[str, str]]:
    """The files pip reads (requirement_files), each to be written at ``placed[its real path]``: each include
    (``-r``, ``-c``) names the new place of the file it includes, and a requirement pinned with hashes whose
    canonical name is in ``extra_hashes`` also allows those (the wheel built from its checked source); one whose
    name is in ``dropped`` is left out. Comments and continuations are gone; the rest is kept as written.
    [(new path, text)], the top file first."""
    extra_hashes = extra_hashes or {}
    written = []
    for path, text in files:
        if text is None:
            continue
        lines = []
        for line in logical_lines(text):
            include = includes(line)
            if include and line.startswith("-"):
                kind, included = include[0]
                if not _URL.match(included):
                    included = os.path.expandvars(included)
                    target = included if os.path.isabs(included) else os.path.join(os.path.dirname(path), included)
                    new = placed.get(os.path.realpath(target))
                    if new:
                        line = "%s %s" % ("-c" if kind == "constraint" else "-r", new)
            elif not line.startswith("-"):
                requirement, options = _requirement_and_options(line)
                if canonical_name(requirement) in dropped:
                    continue
                if _hashes_of(options) and canonical_name(requirement) in extra_hashes:
                    line = " ".join([line, *("--hash=%s" % h for h in extra_hashes[canonical_name(requirement)])])
            lines.append(line)
        written.append((placed[os.path.realpath(path)], "".join(line + "\n" for line in lines)))
    return written


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical_name(requirement: str) -> str:
    """PEP 503's name of a requirement (``Django[argon2]>=5`` -> ``django``)."""
    found = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", found.group(1)).lower() if found else requirement.lower()


def wheels_of(names: list, requirement: str) -> list:
    """The wheel files among ``names`` of the distribution ``requirement`` names (any version)."""
    wanted = canonical_name(requirement)
    return sorted(n for n in names if n.endswith(".whl") and re.sub(r"[-_.]+", "-", n.split("-", 1)[0]).lower() == wanted)


_SOURCE_SUFFIXES = (".tar.gz", ".zip")


def sources_of(names: list, requirement: str) -> list:
    """The source distributions among ``names`` (``django-secure-1.0.2.tar.gz``) of the distribution ``requirement``
    names (any version)."""
    wanted, found = canonical_name(requirement), []
    for name in names:
        suffix = next((s for s in _SOURCE_SUFFIXES if name.endswith(s)), None)
        if suffix and "-" in name and re.sub(r"[-_.]+", "-", name[: -len(suffix)].rsplit("-", 1)[0]).lower() == wanted:
            found.append(name)
    return sorted(found)


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


# what the check in a one-off container of the image prints of itself (plugins/action/smart_deploy_wheelhouse.py)
CHECK_MARK = "smart-deploy-check:"


def check_verdict(returncode: int, output: str) -> Tuple[str, Optional[str]]:
    """What the image's pip said of the wheelhouse (``pip install --dry-run --no-index`` in a one-off container):
    ("complete", None); ("missing", requirement) when it found no distribution for one (to download for it);
    ("unchecked", why) when the image cannot check (no python3, no pip and no venv, a pip without --dry-run);
    ("failed", why) when the check itself broke; ("refused", None) for any other failure of pip (a conflict, a
    hash missing: pip's own message says which)."""
    if returncode == 0:
        return "complete", None
    if returncode in (126, 127) and CHECK_MARK not in (output or ""):  # docker found no sh to run the check with
        return "unchecked", "the image has no sh to run the check"
    for line in (output or "").splitlines():
        if line.startswith(CHECK_MARK + " cannot check:"):
            return "unchecked", line[len(CHECK_MARK + " cannot check:") :].strip()
        if line.startswith(CHECK_MARK + " failed:"):
            return "failed", line[len(CHECK_MARK + " failed:") :].strip()
    if "no such option: --dry-run" in (output or ""):
        return "unchecked", "its pip is older than 22.2 (no --dry-run)"
    requirement = missing_requirement(output)
    if requirement:
        return "missing", requirement
    return "refused", None


def image_python(output: str) -> str:
    """The image's Python and machine as the check printed them (``3.11.2 x86_64``), or ``?``."""
    for line in (output or "").splitlines():
        if line.startswith(CHECK_MARK + " python "):
            return line[len(CHECK_MARK + " python ") :].strip()
    return "?"


def image_lacks_problem(requirement: str, image: str, python: str, versions: Optional[str], pip_args: list) -> str:
    """Why the wheelhouse stays incomplete for the image: pip download fetched ``requirement`` for the Django
    component's python_version and platforms, and the image's pip still finds none it can install."""
    platforms = [a.split("=", 1)[1] for a in pip_args if str(a).startswith("--platform=")]
    return (
        "the image's pip (Python %s in %s) finds no distribution it can install for %s in the wheelhouse (versions it "
        "saw: %s), though pip download fetched it for Python %s and platforms %s: the image's Python or machine is not "
        "the one the wheels were downloaded for. Set the Django component's python_version and platforms to the image's"
        % (python, image, requirement, versions or "none", python_version(pip_args) or "?", ", ".join(platforms) or "?")
    )


def image_refuses_problem(image: str, python: str, output: str) -> str:
    """The image's pip cannot install the requirements from the wheelhouse, for a reason other than a missing
    distribution (pip's own lines follow)."""
    hint = ""
    if "--require-hashes mode" in (output or ""):  # "Hashes are required in...", "In ..., all requirements must be pinned"
        hint = (
            " The requirements are pinned with hashes, and the image's Python needs a package they do not pin (its"
            " markers differ from those of the Python the file was compiled with): compile it with the image's Python"
            " (pip-compile --generate-hashes in the image) or add the package with its hash."
        )
    return "the image's pip (Python %s in %s) cannot install the requirements from the wheelhouse, offline.%s pip said:" % (
        python,
        image,
        hint,
    )
