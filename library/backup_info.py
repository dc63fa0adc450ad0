#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_info
short_description: List an app's database backups with their metadata
description:
  - Lists the backups M(pg_backup) wrote for one app, newest first, with release, creation time, age,
    size, verification and checksum, read from the metadata files. Other files are left out.
options:
  path:
    description: Backup folder.
    type: path
    required: true
  app:
    description: Application name.
    type: str
    required: true
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
- name: List the backups
  backup_info:
    path: /srv/shop/backups
    app: shop
  register: backups
"""

RETURN = r"""
backups:
  description: Backups, newest first.
  returned: always
  type: list
  elements: dict
  sample:
    - {file: shop-3f2a1b9c0d1e-20261129T045000Z.dump, path: /srv/shop/backups/shop-3f2a1b9c0d1e-20261129T045000Z.dump,
       release: 3f2a1b9c0d1e, created: "2026-11-29T04:50:00Z", age_seconds: 3600, size: 28734, verified: true,
       sha256: "9f86d0...", mode: "0600"}
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.common import from_stamp, to_iso, utc_now
from ansible.module_utils.smart_deploy.retention import scan_folder


def main():
    module = AnsibleModule(
        argument_spec=dict(path=dict(type="path", required=True), app=dict(type="str", required=True)),
        supports_check_mode=True,
    )
    path, app = module.params["path"], module.params["app"]
    if not os.path.isdir(path):
        module.exit_json(changed=False, backups=[])
    backups, _ignored, metadata = scan_folder(path, app)
    now = utc_now()
    listed = []
    for backup in sorted(backups, key=lambda b: b.stamp, reverse=True):
        full_path = os.path.join(path, backup.name)
        meta = metadata[backup.name]
        created = from_stamp(backup.stamp)
        listed.append(
            dict(
                file=backup.name,
                path=full_path,
                release=backup.release,
                created=to_iso(created),
                age_seconds=int((now - created).total_seconds()),
                size=os.path.getsize(full_path),
                verified=backup.verified,
                sha256=meta.get("sha256"),
                mode="%04o" % stat.S_IMODE(os.stat(full_path).st_mode),
                migration_state=meta.get("migration_state", {}),
            )
        )
    module.exit_json(changed=False, backups=listed)


if __name__ == "__main__":
    main()
