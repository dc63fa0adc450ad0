#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_state
short_description: Read and record an app's release history (releases.json) on a target
description:
  - Keeps the ordered history of deploy attempts of one app in a JSON file, written atomically
    (temp file, fsync, rename), mode 0640.
  - V(start) appends an attempt in status C(deploying) (an attempt left C(deploying) by a run that died
    is marked C(failed) first); V(update) merges facts into the attempt under way; V(finish) makes it
    C(live) and the release it replaced C(superseded); V(fail) marks it C(failed) with a reason.
  - V(rollback) records that an explicit rollback made O(release) serve again; the live entry becomes
    C(rolled-back), and a new C(live) entry of kind C(rollback) is appended. O(release) must have gone live before.
  - The values of production rows that PostgreSQL's messages carry are replaced by C(…) in O(reason) and
    O(fields) before they are stored (Key (name)=(…) is duplicated); counts, names and SQLSTATEs stay.
  - V(event) appends O(fields) to the history's C(events) (what people did between deploys - a one-off management
    command, maintenance mode on or off), with the time and the live release; the newest 100 are kept. No O(release) needed.
  - V(serving) replaces the C(containers) and C(replicas) (O(fields)) of the live entry of O(release), which must be the live
    release - it serves from fresh containers started after its database was restored, with no deploy of it.
  - V(read) returns the history, the live release and the previous good one, and changes nothing.
options:
  path:
    description: Path of releases.json.
    type: path
    required: true
  app:
    description: Application name; a file that belongs to another app is refused.
    type: str
    required: true
  action:
    description: What to do.
    type: str
    choices: [read, start, update, finish, fail, rollback, serving, event]
    default: read
  release:
    description: Release id the action is about. Required unless O(action=read).
    type: str
  fields:
    description: Facts to store in the attempt (sha, images, strategy, backup, migrations, deployed_by...), or the event (V(event)).
    type: dict
    default: {}
  reason:
    description: Why the attempt failed (with O(action=fail)).
    type: str
  backup_of:
    description: With O(action=read), also return in C(backup) the backup taken when this release was replaced by a deploy.
    type: str
  history_limit:
    description: Newest entries to keep in the file; the live one always stays. 0 keeps everything.
    type: int
    default: 200
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: partial
    details: V(read) and V(finish) of a release that is already live change nothing; V(start) always appends.
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Where are we?
  release_state:
    path: /srv/shop/releases.json
    app: shop
  register: releases

- name: Record the attempt
  release_state:
    path: /srv/shop/releases.json
    app: shop
    action: start
    release: 3f2a1b9c0d1e
    fields:
      sha: 3f2a1b9c0d1e5b7c...
      deployed_by: ci@runner-1

- name: It is live
  release_state:
    path: /srv/shop/releases.json
    app: shop
    action: finish
    release: 3f2a1b9c0d1e
"""

RETURN = r"""
state:
  description: The whole document after the action.
  returned: always
  type: dict
current:
  description: The live entry, or an empty dict on a target that never had a release.
  returned: always
  type: dict
previous:
  description: The newest good entry other than the live one (the default rollback target), or an empty dict.
  returned: always
  type: dict
backup:
  description: With O(backup_of), the backup taken when that release was replaced (the database as it left it), or null.
  returned: with O(backup_of)
  type: str
interrupted:
  description: An attempt left C(deploying) by a run that died, or an empty dict.
  returned: always
  type: dict
entry:
  description: The entry the action touched (the event, for V(event)).
  returned: unless O(action=read)
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy import releases
from ansible.module_utils.smart_deploy.common import atomic_write_json, read_json, utc_now
from ansible.module_utils.smart_deploy.redact import redact, redact_text


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            app=dict(type="str", required=True),
            action=dict(type="str", choices=["read", "start", "update", "finish", "fail", "rollback", "serving", "event"], default="read"),
            release=dict(type="str"),
            fields=dict(type="dict", default={}),
            reason=dict(type="str"),
            backup_of=dict(type="str"),
            history_limit=dict(type="int", default=200),
        ),
        required_if=[("action", action, ["release"]) for action in ("start", "update", "finish", "fail", "rollback", "serving")],
        supports_check_mode=True,
    )
    params = dict(module.params)
    path, action, release_id = params["path"], params["action"], params["release"]
    # the history never holds the values of production rows (PostgreSQL's messages carry them: Key (name)=(…))
    params["fields"], params["reason"] = redact(params["fields"]), redact_text(params["reason"])
    try:
        before = releases.normalise(read_json(path), params["app"])
    except (ValueError, releases.ReleaseStateError) as exc:
        module.fail_json(msg="cannot read release history %s: %s" % (path, exc))

    now = utc_now()
    try:
        if action == "read":
            after = before
        elif action == "start":
            after = releases.start(before, release_id, now, params["fields"])
        elif action == "update":
            after = releases.update(before, release_id, params["fields"])
        elif action == "finish":
            after = releases.finish(before, release_id, now, params["fields"])
        elif action == "rollback":
            after = releases.rollback(before, release_id, now, params["fields"])
        elif action == "serving":
            after = releases.serving(before, release_id, now, params["fields"])
        elif action == "event":
            after = releases.record_event(before, params["fields"], now)
        else:
            after = releases.fail(before, release_id, now, params["reason"], params["fields"])
    except releases.ReleaseStateError as exc:
        module.fail_json(msg="%s of release %s refused: %s" % (action, release_id, exc))
    after = releases.trim(after, params["history_limit"])

    existed = os.path.exists(path)
    changed = action != "read" and (after != before or not existed)
    if changed and not module.check_mode:
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            module.fail_json(msg="state folder %s does not exist" % directory)
        atomic_write_json(path, after, mode=0o640)

    result = dict(
        changed=changed,
        state=after,
        current=releases.current_entry(after) or {},
        previous=releases.previous_good(after) or {},
        interrupted=next((e for e in after["releases"] if e.get("status") == "deploying"), {}),
    )
    if params["backup_of"]:
        result["backup"] = releases.backup_after(after, params["backup_of"])
    if action == "event":
        result["entry"] = after["events"][-1]
    elif action != "read":
        result["entry"] = next((e for e in reversed(after["releases"]) if e.get("id") == release_id), {})
        result["diff"] = dict(
            before=json.dumps(before, indent=2, sort_keys=True) + "\n",
            after=json.dumps(after, indent=2, sort_keys=True) + "\n",
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
