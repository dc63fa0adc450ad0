#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: state_folder
short_description: The state folder of one app on a target - created, claimed, and never shared
description:
  - Creates the app's state folder (mode 0750) and its backup folder (mode 0700), and records which app it
    belongs to in C(.smart-deploy.json) inside it.
  - Refuses, before creating anything, a path that is the root, a system or shared folder (C(/tmp), C(/srv),
    C(/var/lib), C(/home) ...), a folder inside a system tree (C(/etc), C(/usr), C(/var/lib/docker) ...), or a
    top-level folder, because smart-deploy changes the folder's mode and keeps its own files there.
  - Refuses a folder that belongs to another app (its C(.smart-deploy.json), or its C(releases.json), names
    another app), and a non-empty folder that holds files that are not smart-deploy's. A folder of this app
    from before the claim file existed (its C(releases.json) names this app) is claimed.
options:
  path:
    description: The state folder, for example C(/srv/shop).
    type: path
    required: true
  app:
    description: The app the folder belongs to.
    type: str
    required: true
  backup_dir:
    description: The app's backup folder (mode 0700); by default C(backups) inside O(path).
    type: path
attributes:
  check_mode:
    support: full
    details: Says what would be created or claimed; writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A folder already claimed by this app, with the right modes, changes nothing.
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Create or check the state folder of the shop
  state_folder:
    path: /srv/shop
    app: shop
"""

RETURN = r"""
path:
  description: The state folder.
  returned: always
  type: str
created:
  description: Whether the folder was created by this run.
  returned: always
  type: bool
claimed:
  description: Whether the claim file was written by this run (new folder, or a folder of this app from before claim files).
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.common import atomic_write_json, read_json, to_iso, utc_now
from ansible.module_utils.smart_deploy.inputs import state_dir_problem

CLAIM = ".smart-deploy.json"
# What smart-deploy itself keeps in a state folder; anything else means the folder is not its own.
OWN_ENTRIES = {CLAIM, "releases.json", "deploy.lock", "backups", "validations", "proxy", "build", "dev", "logs"}
TEMPORARY_PREFIXES = (".releases.json.", ".deploy.lock.", ".smart-deploy.")


def owner_of(path):
    """(app named by the folder's claim file or its releases.json, or None; whether a claim file exists)."""
    try:
        claim = read_json(os.path.join(path, CLAIM))
    except ValueError:
        claim = {"app": "(unreadable %s)" % CLAIM}
    if claim is not None:
        return (claim.get("app") if isinstance(claim, dict) else None), True
    try:
        history = read_json(os.path.join(path, "releases.json"))
    except ValueError:
        history = None
    return (history.get("app") if isinstance(history, dict) else None), False


def decide(path, app, exists, entries, owner, has_claim):
    """What to do with the folder: ('create' | 'claim' | 'keep', None) or (None, why it is refused)."""
    problem = state_dir_problem(path)
    if problem:
        return None, problem
    if not exists:
        return "create", None
    if owner is not None and owner != app:
        return None, "the state folder %s belongs to the app '%s', not '%s': give each app a folder of its own" % (path, owner, app)
    if has_claim:
        return "keep", None
    foreign = sorted(entry for entry in entries if entry not in OWN_ENTRIES and not entry.startswith(TEMPORARY_PREFIXES))
    if owner is None and foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        return None, (
            "the state folder %s already holds files that are not smart-deploy's (%s): give the app a folder of its own, "
            "such as /srv/%s" % (path, shown, app)
        )
    return "claim", None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            app=dict(type="str", required=True),
            backup_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    path, app = module.params["path"].rstrip("/") or "/", module.params["app"]
    backup_dir = module.params["backup_dir"] or os.path.join(path, "backups")
    exists = os.path.isdir(path)
    if os.path.lexists(path) and not exists:
        module.fail_json(msg="the state folder %s exists but is not a folder" % path)
    entries = os.listdir(path) if exists else []
    owner, has_claim = owner_of(path) if exists else (None, False)
    action, refusal = decide(path, app, exists, entries, owner, has_claim)
    if refusal:
        module.fail_json(msg="smart_deploy_state_dir: " + refusal, path=path)
    result = dict(changed=False, path=path, created=action == "create", claimed=action in ("create", "claim"))
    wanted = ((path, 0o750), (backup_dir, 0o700))
    for folder, mode in wanted:
        if not os.path.isdir(folder) or (os.stat(folder).st_mode & 0o777) != mode:
            result["changed"] = True
    if action != "keep":
        result["changed"] = True
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)
    try:
        for folder, mode in wanted:
            os.makedirs(folder, mode=mode, exist_ok=True)
            os.chmod(folder, mode)
        if action != "keep":
            atomic_write_json(os.path.join(path, CLAIM), {"app": app, "claimed_at": to_iso(utc_now())}, mode=0o644)
    except OSError as exc:
        module.fail_json(msg="could not prepare the state folder %s: %s" % (path, exc), path=path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
