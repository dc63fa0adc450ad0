#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: smart_deploy_wheelhouse
short_description: Fill a component's wheelhouse with the wheels of its image, building those published only as source
description:
  - An action (plugins/action/smart_deploy_wheelhouse.py) that runs on the controller - C(pip download) with the
    Python running ansible-playbook, wheels only (O(pip_args)), into O(dest), so that the image installs them with
    C(pip install --no-index --find-links) and builds offline.
  - Skipped while the stamp in the wheelhouse (C(.smart-deploy-stamp)) matches - the sha256 of the requirements file,
    of every file it includes with C(-r)/C(--requirement) or C(-c)/C(--constraint) (recursively, relative to the
    including file, as pip reads them), of O(pip_args) and of the names of the wheels there. A changed pin in an
    included file, other arguments or a wheel removed download again.
  - A requirement pip finds no wheel for is built from its source distribution (downloaded on the controller, for
    the image's Python) - in a one-off container of O(image) (default the first C(FROM) of O(dockerfile)) on the
    target, with no network, by C(pip wheel --no-index) from the build requirements (its C([build-system] requires),
    setuptools and wheel for a setup.py) downloaded as wheels beside it. The container's files go there and back
    through the task's connection (docker cp, no bind mount). Then pip goes again with the wheels built.
  - A requirement pinned with hashes (C(--hash=sha256:...), pip-compile --generate-hashes) is built only from a source
    distribution whose hash the pin allows (pip checks it); its wheel goes into the wheelhouse as that source
    distribution with its build requirements, not as the wheel built (whose hash no pin allows - the image's
    C(pip install --require-hashes) would refuse it), and the image's pip builds it, offline.
  - Then, with O(check), the image's own pip checks the wheelhouse - C(pip install --dry-run --no-index) of the
    requirements from the wheelhouse alone, in a one-off container of that image with no network. pip evaluates
    environment markers with the Python it runs in, so the controller's may skip a dependency the image's needs
    (C(async-timeout; python_full_version < "3.11.3") of redis, for Debian's Python 3.11.2) - what the image's pip
    finds no distribution for is downloaded here (for the image's Python and platforms, built from source if need
    be), and it checks again, until the wheelhouse is complete or a requirement cannot be satisfied (a failure
    naming it). An image that cannot check (no python3, no pip and no venv) gives a warning.
  - A requirement with neither a wheel for the image nor a source distribution fails, naming the versions that have a wheel.
options:
  requirements:
    description: The requirements file, on the controller (absolute).
    type: path
    required: true
  dest:
    description: The wheelhouse folder, on the controller (absolute); created when missing.
    type: path
    required: true
  pip_args:
    description: Options of C(pip download) - which wheels fit the image (C(--only-binary=:all:), C(--python-version),
      C(--platform)...) and where packages come from (C(--index-url), C(--find-links)...).
    type: list
    elements: str
    default: []
  image:
    description: Image to build wheels from source in (its C(python3) makes a venv; a package with C code also needs a compiler in
      it) and to check the wheelhouse in. Empty - the image the first C(FROM) of O(dockerfile) names.
    type: str
    default: ""
  check:
    description: Let the image's pip check the wheelhouse after it is filled, and download what it lacks for the image's Python.
    type: bool
    default: true
  dockerfile:
    description: The component's Dockerfile, on the controller, read for O(image) when that is empty.
    type: path
  app:
    description: Prefix of the one-off container's name and value of its C(smart-deploy.app) label.
    type: str
    default: smart-deploy
  docker_cli:
    description: The docker command on the target.
    type: str
    default: docker
  rounds:
    description: At most this many rounds of C(pip download) and a wheel built from source.
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    details: Reads the stamp; downloads, builds and writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run with the same requirements and arguments finds the stamp and does nothing.
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Fill the backend's wheelhouse
  smart_deploy_wheelhouse:
    requirements: /src/shop/backend/requirements.txt
    dest: /src/shop/backend/wheels
    pip_args: [--only-binary=:all:, --python-version=3.13, --implementation=cp, --platform=manylinux_2_28_x86_64]
    dockerfile: /src/shop/backend/Dockerfile
    app: shop
"""

RETURN = r"""
downloaded:
  description: Whether pip download ran (false when the stamp matched).
  returned: always
  type: bool
built:
  description: The wheels built from source distributions - C(requirement), C(sdist), C(image), C(wheels), C(build_requires);
    for a requirement pinned with hashes also C(hash_pinned) and C(shipped), the files put in the wheelhouse for it (the
    source distribution and its build requirements).
  returned: always
  type: list
  elements: dict
checked:
  description: What the image's pip said - C(image), C(python) (its version and machine), C(added) (the requirements
    downloaded for it); C(skipped) says why it could not check. Empty when nothing was filled or O(check) is off.
  returned: always
  type: dict
stamp:
  description: The wheelhouse's stamp.
  returned: always
  type: str
"""

if __name__ == "__main__":
    raise SystemExit("smart_deploy_wheelhouse runs on the controller as an action plugin; it is not executed as a module")
