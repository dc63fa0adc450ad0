# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""releases.json: the ordered release history of an app on a target. Pure state transitions.

One entry per deploy attempt, oldest first. Status of an entry:
  deploying   the attempt is under way (or was interrupted: see ``start``)
  live        serving now; exactly one entry is live, and ``current`` names its release
  superseded  was live, then a newer release went live
  failed      the attempt failed (``reason`` says why); what it changed was put back
  rolled-back was live, then a rollback put an older release back

Beside the releases, ``events`` records what people did to the live release between deploys (a one-off
management command, maintenance mode on or off), newest last, at most EVENTS_KEPT of them.
"""

from __future__ import annotations

import copy
import datetime
from typing import Optional

from ansible.module_utils.smart_deploy.common import to_iso

FORMAT = 1
GOOD_STATUSES = ("live", "superseded")
EVENTS_KEPT = 100


class ReleaseStateError(ValueError):
    pass


def empty_state(app: str) -> dict:
    return {"format": FORMAT, "app": app, "current": None, "releases": []}


def normalise(doc: Optional[dict], app: str) -> dict:
    if doc is None:
        return empty_state(app)
    if not isinstance(doc, dict) or not isinstance(doc.get("releases"), list):
        raise ReleaseStateError("not a smart-deploy releases file (no 'releases' list)")
    if doc.get("app") not in (None, app):
        raise ReleaseStateError("this releases file belongs to app %r, not %r" % (doc.get("app"), app))
    doc = copy.deepcopy(doc)
    doc.setdefault("format", FORMAT)
    doc["app"] = app
    doc.setdefault("current", None)
    return doc


def _latest(doc: dict, release_id: str, statuses=None) -> Optional[dict]:
    for entry in reversed(doc["releases"]):
        if entry.get("id") == release_id and (statuses is None or entry.get("status") in statuses):
            return entry
    return None


def current_entry(doc: dict) -> Optional[dict]:
    if not doc.get("current"):
        return None
    return _latest(doc, doc["current"], ("live",))


def previous_good(doc: dict) -> Optional[dict]:
    """The newest release that served well before the current one (the default rollback target).
    Releases that were rolled back, or failed, are never chosen."""
    current = doc.get("current")
    for entry in reversed(doc["releases"]):
        if entry.get("status") in GOOD_STATUSES and entry.get("id") != current:
            return entry
    return None


def start(doc: dict, release_id: str, now: datetime.datetime, fields: dict) -> dict:
    """Append an attempt in state ``deploying``. Attempts left ``deploying`` by a run that died are
    marked failed first, so the history never shows two deploys under way."""
    doc = copy.deepcopy(doc)
    for entry in doc["releases"]:
        if entry.get("status") == "deploying":
            entry["status"] = "failed"
            entry["finished_at"] = to_iso(now)
            entry["reason"] = "interrupted: the run stopped before finishing"
    attempt = 1 + sum(1 for entry in doc["releases"] if entry.get("id") == release_id)
    entry = dict(fields)
    entry.update(id=release_id, status="deploying", attempt=attempt, started_at=to_iso(now), finished_at=None)
    entry.setdefault("previous", doc.get("current"))
    doc["releases"].append(entry)
    return doc


def update(doc: dict, release_id: str, fields: dict) -> dict:
    """Merge ``fields`` into the attempt under way (strategy, backup, images...)."""
    doc = copy.deepcopy(doc)
    entry = _latest(doc, release_id, ("deploying",))
    if entry is None:
        raise ReleaseStateError("no deploy of release %s is under way" % release_id)
    entry.update(fields)
    return doc


def finish(doc: dict, release_id: str, now: datetime.datetime, fields: dict) -> dict:
    """The attempt under way went live: it becomes current, the release it replaced is superseded.
    Finishing a release that is already live and has no attempt under way changes nothing."""
    doc = copy.deepcopy(doc)
    entry = _latest(doc, release_id, ("deploying",))
    if entry is None:
        if doc.get("current") == release_id and current_entry(doc) is not None:
            return doc
        raise ReleaseStateError("no deploy of release %s is under way" % release_id)
    for other in doc["releases"]:
        if other is not entry and other.get("status") == "live":
            other["status"] = "superseded"
            other["superseded_at"] = to_iso(now)
    entry.update(fields)
    entry["status"] = "live"
    entry["finished_at"] = to_iso(now)
    doc["current"] = release_id
    return doc


def fail(doc: dict, release_id: str, now: datetime.datetime, reason: str, fields: dict) -> dict:
    """The attempt under way failed; ``current`` keeps naming the release that serves."""
    doc = copy.deepcopy(doc)
    entry = _latest(doc, release_id, ("deploying",))
    if entry is None:
        raise ReleaseStateError("no deploy of release %s is under way" % release_id)
    entry.update(fields)
    entry["status"] = "failed"
    entry["finished_at"] = to_iso(now)
    entry["reason"] = reason or "unknown"
    return doc


def latest_good(doc: dict, release_id: str) -> Optional[dict]:
    """The newest entry of ``release_id`` that went live (a rollback target must have served before)."""
    return _latest(doc, release_id, GOOD_STATUSES + ("rolled-back",))


def backup_after(doc: dict, release_id: str) -> Optional[str]:
    """The backup taken when ``release_id`` was replaced by a deploy: the database as that release left
    it. Attempts that failed in between took backups too (their rollback put the database back):
    the newest one before the release was replaced wins, so no write made since is lost. While the
    release is still live, that is the backup of the newest failed attempt. Rollback entries are
    skipped: they take no backup and do not change the database."""
    deployed = [e for e in doc["releases"] if e.get("id") == release_id and e.get("kind") != "rollback"
                and e.get("status") in GOOD_STATUSES + ("rolled-back",)]  # fmt: skip
    if not deployed:
        return None
    index = doc["releases"].index(deployed[-1])
    found = None
    for later in doc["releases"][index + 1 :]:
        if later.get("id") == release_id:
            continue
        found = later.get("backup") or found
        if later.get("status") in GOOD_STATUSES + ("rolled-back",):
            break  # replaced: what came after is another release's database
    return found


def rollback(doc: dict, release_id: str, now: datetime.datetime, fields: dict) -> dict:
    """An explicit rollback made ``release_id`` serve again: the live entry becomes rolled-back and a
    new entry records the rollback, live. Rolling back to the live release itself is refused, unless
    its database was restored (``fields["restored_backup"]``): then the live entry is superseded by the
    rollback entry."""
    doc = copy.deepcopy(doc)
    target = latest_good(doc, release_id)
    if target is None:
        raise ReleaseStateError("release %s never went live here: it cannot be rolled back to" % release_id)
    current = current_entry(doc)
    if current is not None and current.get("id") == release_id:
        if not fields.get("restored_backup"):
            raise ReleaseStateError("release %s is already live" % release_id)
        # the live release stays, its database restored (finishing an automatic rollback that failed)
        current["status"] = "superseded"
        current["superseded_at"] = to_iso(now)
    elif current is not None:
        current["status"] = "rolled-back"
        current["rolled_back_at"] = to_iso(now)
    kept = ("sha", "subject", "images", "containers", "replicas", "services", "runtime", "database")
    entry = {key: target[key] for key in kept if key in target}
    entry.update(fields)
    entry.update(id=release_id, kind="rollback", status="live", started_at=to_iso(now), finished_at=to_iso(now),
                 previous=doc.get("current"), attempt=1 + sum(1 for e in doc["releases"] if e.get("id") == release_id))  # fmt: skip
    doc["releases"].append(entry)
    doc["current"] = release_id
    return doc


def serving(doc: dict, release_id: str, now: datetime.datetime, fields: dict) -> dict:
    """The live release ``release_id`` serves from other containers than it recorded, without a deploy of it: fresh
    ones started after its database was restored (an automatic rollback, a fleet's put-back). ``fields`` (its
    ``containers`` and ``replicas``) replace what its live entry says, so that status and manage find them."""
    doc = copy.deepcopy(doc)
    current = current_entry(doc)
    if current is None or current.get("id") != release_id:
        raise ReleaseStateError("release %s is not the live release (%s is)" % (release_id, doc.get("current") or "none"))
    current.update(fields)
    current["containers_since"] = to_iso(now)
    return doc


def trim(doc: dict, limit: int) -> dict:
    """Keep the newest ``limit`` entries, and always the live one."""
    if limit <= 0 or len(doc["releases"]) <= limit:
        return doc
    doc = copy.deepcopy(doc)
    live = current_entry(doc)
    kept = doc["releases"][-limit:]
    if live is not None and live not in kept:
        kept = [live] + kept[1:]
    doc["releases"] = kept
    return doc


def record_event(doc: dict, event: dict, now: datetime.datetime) -> dict:
    """Append ``event`` (kind, by, ...: a one-off command, maintenance on or off) to ``events``, with when it happened
    and the release that was live; the oldest go beyond EVENTS_KEPT. The releases are left as they are."""
    doc = copy.deepcopy(doc)
    entry = dict(event)
    entry.setdefault("at", to_iso(now))
    entry.setdefault("release", doc.get("current"))
    events = list(doc.get("events") or []) + [entry]
    doc["events"] = events[-EVENTS_KEPT:]
    return doc
