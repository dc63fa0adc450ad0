# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who runs this playbook: the controller's host name, the pid of this ``ansible-playbook`` and the identity
of the machine it runs on (machine id, boot id, pid namespace) - what the deploy lock records of its holder."""

from __future__ import annotations

DOCUMENTATION = r"""
name: smart_deploy_controller
short_description: The controller running this playbook - host name, ansible-playbook pid, machine identity
description:
  - Returns one dictionary, read on the controller (never on a target), with no command run.
  - C(host) is the controller's host name, C(pid) the pid of this C(ansible-playbook) process (the parent of
    the Ansible worker running the lookup), C(identity) the machine id, boot id and pid namespace it runs in.
  - The deploy lock (C(deploy_lock)'s O(identity) option) checks whether its holder still runs by that pid,
    only on the same machine, boot and pid namespace; C(module_utils/smart_deploy/lock.py) computes the same
    three on the target.
  - On a controller that is not Linux (a macOS laptop) nothing under C(/proc) is read; the boot id and the pid
    namespace are empty (unknown), so a lock it holds is judged by its expiry alone.
author: smart-deploy contributors
"""

EXAMPLES = r"""
- name: Remember who runs the deploy
  ansible.builtin.set_fact:
    controller: "{{ lookup('smart_deploy_controller') }}"
"""

RETURN = r"""
_raw:
  description: One dictionary.
  type: dict
  contains:
    host:
      description: Host name of the controller.
      type: str
    pid:
      description: Pid of this ansible-playbook process.
      type: int
    identity:
      description: C(machine_id), C(boot_id) and C(pid_ns) of the controller (empty strings where unknown).
      type: dict
"""

import os
import socket
import sys

from ansible.plugins.lookup import LookupBase


def read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def pid_namespace(pid):
    try:
        return os.readlink("/proc/%d/ns/pid" % pid)
    except OSError:
        return ""


def controller(platform=sys.platform, read=read, pid_namespace=pid_namespace):
    """The controller's identity; /proc is read only on Linux (``platform`` as sys.platform names it)."""
    # the lookup runs in an Ansible worker, a child of the ansible-playbook process
    pid = os.getppid()
    linux = platform.startswith("linux")
    machine = (read("/etc/machine-id") or read("/var/lib/dbus/machine-id") if linux else "") or socket.gethostname()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "identity": {
            "machine_id": machine,
            "boot_id": read("/proc/sys/kernel/random/boot_id") if linux else "",
            "pid_ns": pid_namespace(pid) if linux else "",
        },
    }


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [controller()]
