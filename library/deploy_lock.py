#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_lock
short_description: Take, release or inspect the deploy lock of an app on a target
description:
  - One JSON lock file per app (owner, host, pid, start time, release, operation, expiry), created
    with O_EXCL so that of two runs started together exactly one gets it.
  - A lock held by someone else makes O(state=present) fail at once with a message naming the holder.
  - A stale lock (expired, or taken on this host by a process that is gone) is taken over with a warning.
  - O(state=absent) releases the lock only for its holder (same O(lock_id)), unless O(force=true).
options:
  path:
    description: Lock file path, for example C(/srv/shop/deploy.lock).
    type: path
    required: true
  state:
    description:
      - V(present) takes the lock, V(absent) releases it, V(query) only reports it.
    type: str
    choices: [present, absent, query]
    default: present
  lock_id:
    description:
      - Identifier of the holder. Taking the lock again with the same id is a no-op; releasing needs it.
      - When taking the lock without one, a new id is generated and returned.
    type: str
  owner:
    description: Who deploys (user, CI job, AWX job), shown to anyone who finds the lock held.
    type: str
    default: unknown
  host:
    description: Host the deploy runs from (the Ansible controller).
    type: str
    default: unknown
  pid:
    description: Process id of the deploy on O(host); when that process is gone the lock is stale.
    type: int
    default: 0
  release:
    description: Release being deployed.
    type: str
    default: unknown
  operation:
    description: What holds the lock (deploy, validate, rollback, cleanup).
    type: str
    default: deploy
  ttl:
    description: Seconds after which the lock expires and may be taken over.
    type: int
    default: 3600
  force:
    description: Release the lock whoever holds it (C(./deploy lock release)).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Reports whether the lock could be taken or released; never writes.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Taking a lock already held with the same O(lock_id), or releasing a free lock, changes nothing.
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Take the deploy lock
  deploy_lock:
    path: /srv/shop/deploy.lock
    owner: "{{ lookup('env', 'USER') }}"
    host: "{{ lookup('pipe', 'hostname') }}"
    release: 3f2a1b9c0d1e
  register: lock

- name: Release it
  deploy_lock:
    path: /srv/shop/deploy.lock
    state: absent
    lock_id: "{{ lock.lock.lock_id }}"

- name: Who holds it?
  deploy_lock:
    path: /srv/shop/deploy.lock
    state: query
"""

RETURN = r"""
lock:
  description: The lock as it is after the task (empty when free).
  returned: always
  type: dict
  sample: {lock_id: 5d9e..., owner: ci, host: runner-1, pid: 4242, release: 3f2a1b9c0d1e,
           operation: deploy, started: "2026-11-29T04:50:00Z", expires: "2026-11-29T05:50:00Z"}
taken_over:
  description: The stale lock that was replaced, and why.
  returned: when a stale lock was taken over
  type: dict
held:
  description: Whether the lock is held after the task.
  returned: always
  type: bool
"""

import errno
import json
import os
import socket
import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.common import read_json, utc_now
from ansible.module_utils.smart_deploy.lock import describe, new_lock, stale_reason


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def create_exclusive(path, data):
    """Create the lock file only if it does not exist; False when someone else was first."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def read_lock(module, path):
    try:
        return read_json(path)
    except ValueError:
        return {"unreadable": True}


def acquire(module, params):
    path = params["path"]
    now = utc_now()
    lock = new_lock(
        params["lock_id"] or uuid.uuid4().hex,
        params["owner"],
        params["host"],
        params["pid"],
        params["release"],
        params["operation"],
        now,
        params["ttl"],
    )
    current = read_lock(module, path)
    if current is None:
        if module.check_mode:
            return dict(changed=True, held=True, lock=lock)
        if create_exclusive(path, lock):
            return dict(changed=True, held=True, lock=lock)
        current = read_lock(module, path)  # lost the race: report the winner
    if params["lock_id"] and current.get("lock_id") == params["lock_id"]:
        return dict(changed=False, held=True, lock=current)
    reason = stale_reason(current, now, socket.gethostname(), pid_alive)
    if reason is None:
        module.fail_json(
            msg="another %s is running: the deploy lock %s is %s. Wait for it to finish, or, if you are sure it "
            "is dead, release it with './deploy lock release'." % (current.get("operation", "deploy"), path, describe(current)),
            lock=current,
            held=True,
        )
    if module.check_mode:
        return dict(changed=True, held=True, lock=lock, taken_over=dict(lock=current, reason=reason))
    if not set_aside(path, current):
        current = read_lock(module, path) or {}
        module.fail_json(
            msg="another run took the stale deploy lock %s first: it is %s" % (path, describe(current)), lock=current, held=True
        )
    if not create_exclusive(path, lock):
        current = read_lock(module, path) or {}
        module.fail_json(msg="another run took the deploy lock %s first: it is %s" % (path, describe(current)), lock=current, held=True)
    module.warn("took over a stale deploy lock (%s): %s" % (reason, describe(current)))
    return dict(changed=True, held=True, lock=lock, taken_over=dict(lock=current, reason=reason))


def set_aside(path, judged):
    """Move the stale lock out of the way; False when another run got to it first.

    rename() succeeds for one run only. If what was moved is not the lock judged stale (another run
    replaced it in between), it is put back with link(), which never overwrites.
    """
    aside = "%s.stale.%s" % (path, uuid.uuid4().hex)
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    try:
        moved = read_json(aside) or {}
    except ValueError:
        moved = {"unreadable": True}
    if moved.get("lock_id") != judged.get("lock_id"):
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        os.unlink(aside)
        return False
    os.unlink(aside)
    return True


def release(module, params):
    path = params["path"]
    current = read_lock(module, path)
    if current is None:
        return dict(changed=False, held=False, lock={})
    if not params["force"] and current.get("lock_id") != params["lock_id"]:
        module.fail_json(
            msg="the deploy lock %s is %s, not by this run; use force=true (./deploy lock release) "
            "to release it anyway" % (path, describe(current)),
            lock=current,
            held=True,
        )
    if not module.check_mode:
        os.unlink(path)
    return dict(changed=True, held=False, lock={}, released=current)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent", "query"], default="present"),
            lock_id=dict(type="str"),
            owner=dict(type="str", default="unknown"),
            host=dict(type="str", default="unknown"),
            pid=dict(type="int", default=0),
            release=dict(type="str", default="unknown"),
            operation=dict(type="str", default="deploy"),
            ttl=dict(type="int", default=3600),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["ttl"] < 1:
        module.fail_json(msg="ttl must be a positive number of seconds, got %d" % params["ttl"])
    if not os.path.isdir(os.path.dirname(params["path"]) or "."):
        module.fail_json(msg="the folder of the lock file %s does not exist" % params["path"])
    if params["state"] == "present":
        result = acquire(module, params)
    elif params["state"] == "absent":
        result = release(module, params)
    else:
        current = read_lock(module, params["path"]) or {}
        result = dict(changed=False, held=bool(current), lock=current)
        if current:
            result["description"] = describe(current)
            result["stale"] = stale_reason(current, utc_now(), socket.gethostname(), pid_alive)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
