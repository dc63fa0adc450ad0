#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_rotate
short_description: Keep the newest N verified database backups of one app, remove the rest
description:
  - Applies smart-deploy's retention rules to a backup folder written by M(pg_backup).
  - A backup is a C(<app>-<release>-<YYYYmmddTHHMMSSZ>.dump) file with a C(.json) metadata file
    beside it that names the app. Anything else in the folder (other apps' backups, dumps without
    metadata, partial files) is ignored and never deleted.
  - Only verified backups of releases that did not fail count towards O(keep). With fewer than
    O(keep) counted backups nothing is removed. Otherwise every backup older than the oldest of the
    O(keep) newest counted ones is removed, with its metadata file.
  - A backup named in O(pinned) and the newest backup are never removed.
options:
  path:
    description: Folder holding the backups.
    type: path
    required: true
  app:
    description: Application name; only this app's backups are considered.
    type: str
    required: true
  keep:
    description: How many verified backups to keep. At least 1.
    type: int
    default: 10
  pinned:
    description:
      - Backups that must stay whatever their age, as file names or paths (for example the backup
        the live release or a running deploy depends on).
    type: list
    elements: str
    default: []
  failed_releases:
    description:
      - Release ids whose deploys failed. Their backups do not count towards O(keep), so a run of
        failed deploys cannot push good backups out.
    type: list
    elements: str
    default: []
  history:
    description:
      - The app's release history (C(releases.json)). The releases it records as failed (and never live since)
        are added to O(failed_releases). Deploys and the cleanup both pass it, so the rule is the same for both.
    type: path
attributes:
  check_mode:
    support: full
    details: Reports what would be removed without removing anything.
  diff_mode:
    support: full
  idempotent:
    support: full
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Keep the ten newest verified backups, never the one the live release depends on
  backup_rotate:
    path: /srv/shop/backups
    app: shop
    keep: 10
    pinned:
      - /srv/shop/backups/shop-3f2a1b9c0d1e-20261129T045000Z.dump

- name: What would go (check mode)
  backup_rotate:
    path: /srv/shop/backups
    app: shop
    keep: 3
  check_mode: true
  register: rotation
"""

RETURN = r"""
kept:
  description: Backups that stay, newest first.
  returned: always
  type: list
  elements: str
  sample: [shop-3f2a1b9c0d1e-20261129T045000Z.dump]
removed:
  description: Backups removed (or, in check mode, that would be removed), newest first.
  returned: always
  type: list
  elements: str
counted:
  description: Verified backups that count towards O(keep).
  returned: always
  type: list
  elements: str
ignored:
  description: Files in the folder that are not this app's backups, left alone.
  returned: always
  type: list
  elements: str
failed_releases:
  description: The failed releases whose backups did not count.
  returned: always
  type: list
  elements: str
reasons:
  description: Why each backup stays or goes.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.common import read_json
from ansible.module_utils.smart_deploy.retention import failed_releases, plan_retention, scan_folder


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            app=dict(type="str", required=True),
            keep=dict(type="int", default=10),
            pinned=dict(type="list", elements="str", default=[]),
            failed_releases=dict(type="list", elements="str", default=[]),
            history=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    path, app, keep = module.params["path"], module.params["app"], module.params["keep"]
    if keep < 1:
        module.fail_json(msg="keep must be at least 1 (got %d): the newest verified backup always stays" % keep)
    if not os.path.isdir(path):
        module.fail_json(msg="backup folder %s does not exist" % path)

    failed = list(module.params["failed_releases"])
    if module.params["history"]:
        try:
            failed += failed_releases(read_json(module.params["history"], default={}) or {})
        except ValueError as exc:
            module.fail_json(msg="cannot read the release history %s: %s" % (module.params["history"], exc))
    backups, ignored, _metadata = scan_folder(path, app)
    pinned = [os.path.basename(p) for p in module.params["pinned"]]
    plan = plan_retention(backups, keep, pinned=pinned, failed_releases=failed)
    kept = [b.name for b in plan.keep]
    removed = [b.name for b in plan.remove]

    if removed and not module.check_mode:
        for backup in plan.remove:
            for name in (backup.name, backup.metadata_name):
                try:
                    os.unlink(os.path.join(path, name))
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    module.fail_json(msg="could not remove %s: %s" % (os.path.join(path, name), exc), removed=removed)

    module.exit_json(
        changed=bool(removed),
        kept=kept,
        removed=removed,
        counted=plan.counted,
        ignored=ignored,
        reasons=plan.reasons,
        failed_releases=sorted(set(failed)),
        diff=dict(before="\n".join(sorted(kept + removed)) + "\n", after="\n".join(sorted(kept)) + "\n"),
    )


if __name__ == "__main__":
    main()
