#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cleanup_plan
short_description: Decide which of an app's images and stopped containers disk cleanup removes
description:
  - Pure decision from the release history and the app's containers and images (as community.docker's
    C(docker_host_info) lists them with C(verbose_output)). Removes nothing itself.
  - Keeps the live release, the previous good one and the newest O(keep_releases) releases that went live;
    a running container stays, and so does every image a kept or remaining container uses.
options:
  history:
    description: The release history (C(state) returned by M(release_state)).
    type: dict
    required: true
  containers:
    description: The app's containers from C(docker_host_info) (C(containers_all), C(verbose_output)).
    type: list
    elements: dict
    default: []
  images:
    description: The app's images from C(docker_host_info) (C(verbose_output)).
    type: list
    elements: dict
    default: []
  keep_releases:
    description: Newest releases whose images and containers stay (besides the live and the previous one).
    type: int
    default: 3
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: What may go?
  cleanup_plan:
    history: "{{ releases.state }}"
    containers: "{{ host.containers }}"
    images: "{{ host.images }}"
    keep_releases: 3
  register: plan
"""

RETURN = r"""
kept_releases:
  description: Releases whose images and containers stay.
  returned: always
  type: list
  elements: str
remove_containers:
  description: Names of the stopped containers to remove.
  returned: always
  type: list
  elements: str
remove_images:
  description: Ids of the images to remove.
  returned: always
  type: list
  elements: str
reasons:
  description: Why each container and image stays or goes.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.cleanup import plan_cleanup


def container_of(raw):
    labels = raw.get("Labels") or {}
    names = raw.get("Names") or [raw.get("Name", "")]
    return {
        "name": names[0].lstrip("/"),
        "image": raw.get("Image", ""),
        "running": raw.get("State") == "running",
        "component": labels.get("smart-deploy.component"),
        "accessory": labels.get("smart-deploy.accessory"),
    }


def image_of(raw):
    return {"id": raw.get("Id", ""), "tags": [t for t in raw.get("RepoTags") or [] if t != "<none>:<none>"]}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            history=dict(type="dict", required=True),
            containers=dict(type="list", elements="dict", default=[]),
            images=dict(type="list", elements="dict", default=[]),
            keep_releases=dict(type="int", default=3),
        ),
        supports_check_mode=True,
    )
    if module.params["keep_releases"] < 0:
        module.fail_json(msg="keep_releases must be 0 or more")
    plan = plan_cleanup(
        module.params["history"],
        [container_of(c) for c in module.params["containers"]],
        [image_of(i) for i in module.params["images"]],
        module.params["keep_releases"],
    )
    module.exit_json(changed=False, **plan)


if __name__ == "__main__":
    main()
