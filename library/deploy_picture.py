#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_picture
short_description: Write the last deploys of an app as Mermaid gantt charts into an HTML page
description:
  - Reads the JSON run logs the C(smart_deploy_summary) callback wrote into O(log_dir) (on the machine the module
    runs on - the controller, with C(delegate_to) C(localhost)), keeps the newest O(last) runs of C(deploy.yml)
    of each app in O(apps), and writes one self-contained HTML page to O(dest), readable by its owner only (0600).
  - The page holds one C(<pre class="mermaid">) per deploy - the same gantt the GitHub step summary shows
    (C(module_utils/smart_deploy/gantt.py)) - and a C(<script>) that loads Mermaid to draw them; without
    network access the charts stay readable as text.
  - Run logs that cannot be read or parsed are skipped with a warning; a missing O(log_dir) gives a page that says
    there are no deploys.
options:
  dest:
    description: The HTML file to write; its folder must exist. An absolute path.
    type: path
    required: true
  apps:
    description: The apps whose deploys are drawn (C(summary.app) of the run logs).
    type: list
    elements: str
    required: true
  last:
    description: How many of the newest deploys of each app; 1 or more.
    type: int
    default: 5
  log_dir:
    description: Folder of the JSON run logs (the callback's C(SMART_DEPLOY_LOG_DIR)).
    type: path
    default: ~/.local/state/smart-deploy/logs
  min_seconds:
    description: Tasks shorter than this, in a row in the same role, are folded into one bar.
    type: float
    default: 0.5
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
    details: The same run logs give the same page; an unchanged page is not written again.
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: The last 5 deploys of the shop as a picture
  deploy_picture:
    dest: /tmp/shop-deploys.html
    apps: [shop]
    last: 5
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
dest:
  description: The page written.
  returned: always
  type: str
  sample: /tmp/shop-deploys.html
deploys:
  description: The run logs drawn, newest first (file names in O(log_dir)).
  returned: always
  type: list
  elements: str
  sample: [20261130T144010-shop-deploy.yml.json]
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.gantt import html_page, last_deploys


def read_logs(log_dir, warn):
    """Every run log in ``log_dir`` as a record, with its file name under ``_file``."""
    records = []
    if not os.path.isdir(log_dir):
        return records
    for name in sorted(os.listdir(log_dir)):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(log_dir, name), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError) as exc:
            warn("run log %s skipped: %s" % (name, exc))
            continue
        if isinstance(record, dict):
            record["_file"] = name
            records.append(record)
    return records


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            apps=dict(type="list", elements="str", required=True),
            last=dict(type="int", default=5),
            log_dir=dict(type="path", default="~/.local/state/smart-deploy/logs"),
            min_seconds=dict(type="float", default=0.5),
        ),
        supports_check_mode=True,
    )
    params = module.params
    dest = params["dest"]
    if not os.path.isabs(dest):
        module.fail_json(msg="dest must be an absolute path, got %r" % dest)
    if params["last"] < 1:
        module.fail_json(msg="last (how many deploys to draw) must be 1 or more, got %d" % params["last"])
    if not params["apps"]:
        module.fail_json(msg="apps must name at least one app")
    folder = os.path.dirname(dest)
    if not os.path.isdir(folder):
        module.fail_json(msg="the folder of %s does not exist: nothing written" % dest)
    if os.path.isdir(dest):
        module.fail_json(msg="%s is a folder, not a file" % dest)

    chosen = last_deploys(read_logs(params["log_dir"], module.warn), params["apps"], params["last"])
    page = html_page(chosen, ", ".join(params["apps"]), min_seconds=params["min_seconds"])
    try:
        with open(dest, encoding="utf-8") as handle:
            current = handle.read()
        current_mode = os.stat(dest).st_mode & 0o777
    except (OSError, UnicodeDecodeError):
        current, current_mode = None, None
    changed = current != page or current_mode != 0o600
    if changed and not module.check_mode:
        try:
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".deploy-picture-")  # 0600 from the start
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(page)
            os.replace(temporary, dest)
        except OSError as exc:
            module.fail_json(msg="could not write %s: %s" % (dest, exc))
    module.exit_json(changed=changed, dest=dest, deploys=[record["_file"] for record in chosen])


if __name__ == "__main__":
    main()
