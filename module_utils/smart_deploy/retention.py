# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup retention: which backups of one app stay and which go (pure logic), and the folder scan.

A backup is ``<app>-<release>-<YYYYmmddTHHMMSSZ>.dump`` with a metadata file beside it,
``<app>-<release>-<stamp>.json``, that names the app. Only such pairs are "own" backups; anything
else in the folder (other apps, files without metadata, partial files) is foreign and never touched.

Rules (pgBackRest / Barman style: old backups expire only behind enough good new ones):
- only verified backups of releases that did not fail count towards ``keep``;
- with fewer than ``keep`` counted backups nothing is removed;
- otherwise every own backup older than the oldest of the ``keep`` newest counted backups is removed,
  except the pinned ones and the newest backup of all, which always stay.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

STAMP_RE = r"(?P<stamp>\d{8}T\d{6}Z)"


@dataclass(frozen=True)
class Backup:
    name: str  # file name of the dump
    release: str
    stamp: str  # sorts in time order
    verified: bool = False
    metadata_name: Optional[str] = None


@dataclass
class RetentionPlan:
    keep: list = field(default_factory=list)  # Backup, newest first
    remove: list = field(default_factory=list)  # Backup, newest first
    counted: list = field(default_factory=list)  # names of the backups that count towards keep
    reasons: dict = field(default_factory=dict)  # name -> why it stays or goes


def dump_name_pattern(app: str) -> "re.Pattern[str]":
    return re.compile(r"^%s-(?P<release>[A-Za-z0-9][A-Za-z0-9._+-]*)-%s\.dump$" % (re.escape(app), STAMP_RE))


def metadata_name_for(dump_name: str) -> str:
    return dump_name[: -len(".dump")] + ".json"


def backup_from_files(app: str, dump_name: str, metadata: Optional[dict]) -> Optional[Backup]:
    """The Backup a dump file stands for, or None when it is not one of ``app``'s own backups."""
    match = dump_name_pattern(app).match(dump_name)
    if not match or not isinstance(metadata, dict) or metadata.get("app") != app:
        return None
    return Backup(
        name=dump_name,
        release=match.group("release"),
        stamp=match.group("stamp"),
        verified=metadata.get("verified") is True and bool(metadata.get("sha256")),
        metadata_name=metadata_name_for(dump_name),
    )


def failed_releases(history: dict) -> list:
    """Release ids whose deploys failed and never went live since (a retried id that succeeded counts again)."""
    entries = history.get("releases") or [] if isinstance(history, dict) else []
    good = {e.get("id") for e in entries if e.get("status") in ("live", "superseded", "rolled-back")}
    return sorted({e.get("id") for e in entries if e.get("status") == "failed" and e.get("id") not in good})


def plan_retention(
    backups: Iterable[Backup],
    keep: int,
    pinned: Iterable[str] = (),
    failed_releases: Iterable[str] = (),
) -> RetentionPlan:
    if keep < 1:
        raise ValueError("keep must be at least 1: the newest verified backup always stays")
    pinned_names = set(pinned)
    failed = set(failed_releases)
    ordered = sorted(backups, key=lambda b: (b.stamp, b.name), reverse=True)
    plan = RetentionPlan()
    counted = [b for b in ordered if b.verified and b.release not in failed]
    plan.counted = [b.name for b in counted[:keep]]
    cutoff = counted[keep - 1].stamp if len(counted) >= keep else None
    for index, backup in enumerate(ordered):
        if backup.name in pinned_names:
            reason, stays = "pinned", True
        elif index == 0:
            reason, stays = "newest", True
        elif cutoff is None:
            reason, stays = "fewer than %d counted backups" % keep, True
        elif backup.stamp >= cutoff:
            reason, stays = (
                ("within the newest %d" % keep) if backup.name in plan.counted else "newer than the retention window",
                True,
            )
        else:
            if not backup.verified:
                reason = "unverified and older than the retention window"
            elif backup.release in failed:
                reason = "backup of failed release %s, older than the retention window" % backup.release
            else:
                reason = "beyond the newest %d verified backups" % keep
            stays = False
        plan.reasons[backup.name] = reason
        (plan.keep if stays else plan.remove).append(backup)
    return plan


def scan_folder(path: str, app: str):
    """(own backups, ignored file names, metadata by dump name) of the backup folder ``path``."""
    backups, metadata_by_name, claimed = [], {}, set()
    names = sorted(os.listdir(path))
    for name in names:
        if not name.endswith(".dump"):
            continue
        metadata_name = metadata_name_for(name)
        metadata = None
        if metadata_name in names:
            try:
                with open(os.path.join(path, metadata_name), encoding="utf-8") as handle:
                    metadata = json.load(handle)
            except (OSError, ValueError):
                metadata = None
        backup = backup_from_files(app, name, metadata)
        if backup is not None:
            backups.append(backup)
            metadata_by_name[name] = metadata
            claimed.update((name, metadata_name))
    ignored = [name for name in names if name not in claimed]
    return backups, ignored, metadata_by_name
