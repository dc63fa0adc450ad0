# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When each task of a run started and ended, per host, and the seconds per role: the ``steps`` and
``roles`` of the JSON run log. Pure logic.

The callback ``smart_deploy_summary`` feeds it and loads this file by its path; it runs on the
controller only. Self-contained on purpose.
"""

from __future__ import annotations

import datetime
import time

OUTSIDE_ROLES = "(playbook)"


def iso(timestamp):
    """ISO 8601 in UTC with milliseconds."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec="milliseconds")


def monotonic_wall_clock():
    """Wall-clock seconds that never go backwards: the time at the first call plus monotonic time since."""
    wall, mono = time.time(), time.monotonic()
    return lambda: wall + (time.monotonic() - mono)


class Timeline:
    """Start and end of every task run, per host.

    ``start(key, role, task)`` when a task starts (``key`` tells the task's runs apart: its uuid), then
    ``end(key, host, status)`` for each host's result; a later result of the same run and host (handlers,
    strategies that report twice) moves the end. ``steps()`` and ``roles()`` give what the run log holds.
    Only names, hosts, times and statuses come in: nothing of a result can end up here.
    """

    def __init__(self, clock=None):
        self.clock = clock or monotonic_wall_clock()
        self.runs = []  # [role, task, start, {host: [end, status]}], in the order they started
        self.current = {}  # key -> index of its newest run

    def start(self, key, role, task, now=None):
        self.current[key] = len(self.runs)
        self.runs.append([role, task, self.clock() if now is None else now, {}])

    def end(self, key, host, status, now=None):
        index = self.current.get(key)
        if index is None:  # a result without a start (should not happen): nothing to time it from
            return
        now = self.clock() if now is None else now
        self.runs[index][3][host] = [max(now, self.runs[index][2]), status]

    def steps(self):
        found = []
        for role, task, start, hosts in self.runs:
            for host, (end, status) in hosts.items():
                found.append(
                    dict(role=role, task=task, host=host, start=iso(start), end=iso(end), seconds=round(end - start, 3), status=status)
                )
        return found

    def roles(self):
        """Seconds per role: each task run from its start to the end of its last host, summed per role."""
        totals = {}
        for role, _task, start, hosts in self.runs:
            if hosts:
                key = OUTSIDE_ROLES if role is None else role
                totals[key] = totals.get(key, 0.0) + max(end for end, _ in hosts.values()) - start
        return {role: round(seconds, 3) for role, seconds in totals.items()}
