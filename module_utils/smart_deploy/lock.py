# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy lock: who holds it, whether it is stale, what to tell the next person. Pure logic."""

from __future__ import annotations

import datetime
from typing import Callable, Optional

from ansible.module_utils.smart_deploy.common import from_iso, to_iso

LOCK_FIELDS = ("lock_id", "owner", "host", "pid", "started", "release", "expires", "operation")


def new_lock(lock_id: str, owner: str, host: str, pid: int, release: str, operation: str, now: datetime.datetime, ttl_seconds: int) -> dict:
    return dict(
        lock_id=lock_id,
        owner=owner,
        host=host,
        pid=pid,
        release=release,
        operation=operation,
        started=to_iso(now),
        expires=to_iso(now + datetime.timedelta(seconds=ttl_seconds)),
    )


def stale_reason(lock: dict, now: datetime.datetime, local_host: str, pid_alive: Callable[[int], bool]) -> Optional[str]:
    """Why ``lock`` may be taken over, or None while it is still held.

    A lock is stale when it expired, or when it was taken from this very host by a process that no
    longer exists (a killed deploy). A process on another host cannot be checked from here, so
    such a lock only goes stale by expiring.
    """
    try:
        expires = from_iso(lock["expires"])
    except (KeyError, TypeError, ValueError):
        return "the lock file is unreadable or incomplete"
    if expires <= now:
        return "it expired at %s" % lock["expires"]
    pid = lock.get("pid")
    if lock.get("host") == local_host and isinstance(pid, int) and pid > 0 and not pid_alive(pid):
        return "its process %d on %s is gone" % (pid, local_host)
    return None


def describe(lock: dict) -> str:
    return "held by %s (pid %s on %s) since %s for %s of release %s, expires %s" % (
        lock.get("owner", "?"),
        lock.get("pid", "?"),
        lock.get("host", "?"),
        lock.get("started", "?"),
        lock.get("operation", "deploy"),
        lock.get("release", "?"),
        lock.get("expires", "?"),
    )
