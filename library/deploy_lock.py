#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_lock
short_description: Take, refresh, release or inspect the deploy lock of an app on a target
description:
  - One JSON lock file per app (owner, controller host name, machine id, boot id, pid namespace, pid,
    start time, release, operation, expiry), mode 0600.
  - A new lock is written whole to a temporary file in the lock's folder and hard-linked into place,
    which never replaces an existing file, so of runs started together exactly one gets the lock and no
    run ever reads a half-written one. Refreshes, take-overs and releases re-read the lock under
    C(flock) on the lock's folder and replace it atomically.
  - A lock held by someone else makes O(state=present) fail at once with a message naming the holder.
  - Whether a lock is stale depends on where its process runs. When the lock's machine id, boot id and
    pid namespace (O(identity)) are those of the machine this module runs on, its pid is checked - a
    live process holds the lock whatever the expiry says, a gone one leaves it stale. Otherwise the lock
    is stale only once expired. A lock file that is not a complete lock is stale only when unchanged for
    O(ttl) seconds. A stale lock is taken over with a warning.
  - Taking the lock again with the same O(lock_id) extends its expiry to O(ttl) seconds from now
    (C(refreshed=true), C(changed=false)). Long-running modules keep it fresh with the C(lock) option
    (doc fragment C(smart_deploy.lock_heartbeat)).
  - O(state=absent) releases the lock of its holder (same O(lock_id)) or a stale lock; a lock another
    run still holds only with O(force=true).
options:
  path:
    description: Lock file path, for example C(/srv/shop/deploy.lock). Its folder must exist.
    type: path
    required: true
  state:
    description:
      - V(present) takes (or refreshes) the lock, V(absent) releases it, V(query) only reports it.
    type: str
    choices: [present, absent, query]
    default: present
  lock_id:
    description:
      - Identifier of the holder. Taking the lock again with the same id refreshes its expiry.
      - When taking the lock without one, a new id is generated and returned.
    type: str
  owner:
    description: Who deploys (user, CI job, AWX job), shown to anyone who finds the lock held.
    type: str
    default: unknown
  host:
    description: Host name of the machine the deploy runs from (the Ansible controller), for people.
    type: str
    default: unknown
  pid:
    description: Process id of the deploy (the C(ansible-playbook) process) on the controller.
    type: int
    default: 0
  identity:
    description:
      - Where O(pid) lives. The pid is checked only when all three equal those of the machine this
        module runs on; without them the lock goes stale only by expiring.
    type: dict
    suboptions:
      machine_id:
        description: The controller's C(/etc/machine-id) (else C(/var/lib/dbus/machine-id), else its host name).
        type: str
        default: ""
      boot_id:
        description: The controller's C(/proc/sys/kernel/random/boot_id).
        type: str
        default: ""
      pid_ns:
        description: The pid namespace of O(pid), as C(readlink /proc/<pid>/ns/pid) prints it.
        type: str
        default: ""
  release:
    description: Release being deployed.
    type: str
    default: unknown
  operation:
    description: What holds the lock (deploy, validate, rollback, cleanup).
    type: str
    default: deploy
  ttl:
    description:
      - Seconds the lock stays valid without a refresh; a lock whose process cannot be checked from the
        target may be taken over once it expired.
      - Also how long a lock file that is not a complete lock must stay unchanged before it is stale.
    type: int
    default: 3600
  force:
    description: With O(state=absent), release the lock even while another run holds it (C(./deploy lock release --force)).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Reports whether the lock would be taken, refreshed, taken over or released; never writes.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: >-
      Taking a lock already held with the same O(lock_id) only moves its expiry (C(changed=false)),
      releasing a free lock changes nothing.
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Take the deploy lock
  deploy_lock:
    path: /srv/shop/deploy.lock
    owner: "{{ lookup('env', 'USER') }}"
    host: "{{ smart_deploy_controller }}"
    pid: "{{ smart_deploy_controller_pid | int }}"
    identity: "{{ smart_deploy_controller_identity }}"
    release: 3f2a1b9c0d1e
    ttl: 3600
  register: lock

- name: Keep it from expiring (same lock id)
  deploy_lock:
    path: /srv/shop/deploy.lock
    lock_id: "{{ lock.lock.lock_id }}"
    ttl: 3600

- name: Release it
  deploy_lock:
    path: /srv/shop/deploy.lock
    state: absent
    lock_id: "{{ lock.lock.lock_id }}"

- name: Who holds it, and may it be taken over?
  deploy_lock:
    path: /srv/shop/deploy.lock
    state: query

- name: Remove it even though its run looks alive
  deploy_lock:
    path: /srv/shop/deploy.lock
    state: absent
    force: true
"""

RETURN = r"""
lock:
  description: The lock as it is (or would be, in check mode) after the task; empty when free.
  returned: always
  type: dict
  sample: {lock_id: 5d9e..., owner: ci, host: runner-1, pid: 4242, machine_id: 3d12..., boot_id: 2443...,
           pid_ns: "pid:[4026531836]", release: 3f2a1b9c0d1e, operation: deploy,
           started: "2026-11-29T04:50:00Z", expires: "2026-11-29T05:50:00Z"}
held:
  description: Whether a lock file is there after the task.
  returned: always
  type: bool
refreshed:
  description: The lock was already held with O(lock_id) and its expiry was moved (or would be, in check mode).
  returned: when O(state=present)
  type: bool
taken_over:
  description: The stale lock that was replaced, and why it was stale.
  returned: when a stale lock was taken over
  type: dict
  sample: {lock: {owner: ci, pid: 4242}, reason: "its process 4242 on runner-1 is gone"}
released:
  description: The lock that was removed.
  returned: when O(state=absent) removed a lock
  type: dict
reason:
  description: Why the lock was released (held by this run, stale, forced).
  returned: when O(state=absent) removed a lock
  type: str
description:
  description: The lock in words (holder, pid, host, since, release, expiry).
  returned: when O(state=query) finds a lock, or O(state=absent) removed one
  type: str
stale:
  description: Why the lock found may be taken over, or null while it is held.
  returned: when O(state=query) finds a lock
  type: str
verdict:
  description: The judgement in words, stale or not (for example C(its process 4242 on this machine (runner-1) is alive)).
  returned: when O(state=query) finds a lock
  type: str
"""

import os
import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.common import utc_now
from ansible.module_utils.smart_deploy.lock import (
    FREE,
    REFRESHED,
    REFUSED,
    TAKEN_OVER,
    acquire,
    describe,
    judge,
    local_identity,
    new_lock,
    pid_alive,
    read_lock,
    release,
)

FORCE_RELEASE = "'./deploy lock release --force' (deploy_lock force=true) removes the lock anyway"
FORCE_HINT = "if you are sure that run is dead, " + FORCE_RELEASE


def take(module, params, local):
    lock = new_lock(
        params["lock_id"] or uuid.uuid4().hex,
        params["owner"],
        params["host"],
        params["pid"],
        params["release"],
        params["operation"],
        utc_now(),
        params["ttl"],
        params["identity"],
    )
    outcome = acquire(params["path"], lock, params["ttl"], local, pid_alive, dry_run=module.check_mode)
    if outcome.outcome == REFUSED and outcome.lock.get("unreadable"):
        module.fail_json(
            msg="the deploy lock %s is not a complete lock file: %s. Locks are written whole, so something else wrote "
            "it; look at it, and if no run is going on, %s." % (params["path"], outcome.reason, FORCE_RELEASE),
            lock=outcome.lock,
            held=True,
        )
    if outcome.outcome == REFUSED:
        module.fail_json(
            msg="another %s is running: the deploy lock %s is %s (%s). Wait for it to finish; %s."
            % (outcome.lock.get("operation", "deploy"), params["path"], describe(outcome.lock), outcome.reason, FORCE_HINT),
            lock=outcome.lock,
            held=True,
        )
    result = dict(changed=outcome.outcome != REFRESHED, held=True, lock=outcome.lock, refreshed=outcome.outcome == REFRESHED)
    if outcome.outcome == TAKEN_OVER:
        result["taken_over"] = dict(lock=outcome.previous, reason=outcome.reason)
        verb = "would take over" if module.check_mode else "took over"
        module.warn("%s a stale deploy lock (%s): %s" % (verb, outcome.reason, describe(outcome.previous)))
    return result


def give_back(module, params, local):
    outcome = release(params["path"], params["lock_id"], params["force"], params["ttl"], local, pid_alive, dry_run=module.check_mode)
    if outcome.outcome == FREE:
        return dict(changed=False, held=False, lock={})
    if outcome.outcome == REFUSED:
        whose = "not by this run, and it is not stale" if params["lock_id"] else "and it is not stale"
        module.fail_json(
            msg="the deploy lock %s is %s, %s: %s. Wait for that run to finish; %s."
            % (params["path"], describe(outcome.lock), whose, outcome.reason, FORCE_HINT),
            lock=outcome.lock,
            held=True,
        )
    if params["lock_id"] and outcome.lock.get("lock_id") != params["lock_id"]:
        verb = "would release" if module.check_mode else "released"
        module.warn("%s a deploy lock that was not this run's (%s): %s" % (verb, outcome.reason, describe(outcome.lock)))
    return dict(changed=True, held=False, lock={}, released=outcome.lock, reason=outcome.reason, description=describe(outcome.lock))


def query(params, local):
    current, mtime = read_lock(params["path"])
    if current is None:
        return dict(changed=False, held=False, lock={})
    verdict = judge(current, utc_now(), local, pid_alive, params["ttl"], mtime)
    return dict(
        changed=False,
        held=True,
        lock=current,
        description=describe(current),
        stale=verdict.reason if verdict.stale else None,
        verdict=verdict.reason,
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent", "query"], default="present"),
            lock_id=dict(type="str"),
            owner=dict(type="str", default="unknown"),
            host=dict(type="str", default="unknown"),
            pid=dict(type="int", default=0),
            identity=dict(
                type="dict",
                options=dict(
                    machine_id=dict(type="str", default=""),
                    boot_id=dict(type="str", default=""),
                    pid_ns=dict(type="str", default=""),
                ),
            ),
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
    folder = os.path.dirname(params["path"]) or "."
    if not os.path.isdir(folder):
        module.fail_json(msg="the folder of the lock file %s does not exist; create it (preflight does) or fix the path" % params["path"])
    local = local_identity()
    try:
        if params["state"] == "present":
            result = take(module, params, local)
        elif params["state"] == "absent":
            result = give_back(module, params, local)
        else:
            result = query(params, local)
    except OSError as exc:
        module.fail_json(
            msg="could not work with the deploy lock %s: %s. Check that %s is writable by the user the module runs as and on a "
            "local file system (the lock needs link() and flock())." % (params["path"], exc, folder)
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
