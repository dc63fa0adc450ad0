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
      it). Empty - the image the first C(FROM) of O(dockerfile) names.
    type: str
    default: ""
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
  description: The wheels built from source distributions - C(requirement), C(sdist), C(image), C(wheels).
  returned: always
  type: list
  elements: dict
stamp:
  description: The wheelhouse's stamp.
  returned: always
  type: str
"""

if __name__ == "__main__":
    raise SystemExit("smart_deploy_wheelhouse runs on the controller as an action plugin; it is not executed as a module")
