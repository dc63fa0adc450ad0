# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by smart-deploy modules: UTC timestamps, atomic JSON files, checksums.

Pure standard library, so the same file runs inside Ansible modules (as
``ansible.module_utils.smart_deploy.common``) and in unit tests.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tempfile
from typing import Any

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def to_iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime(ISO_FORMAT)


def from_iso(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, ISO_FORMAT).replace(tzinfo=datetime.timezone.utc)


def to_stamp(moment: datetime.datetime) -> str:
    """Compact UTC timestamp used in file names: 20261129T045000Z (sorts as time does)."""
    return moment.astimezone(datetime.timezone.utc).strftime(STAMP_FORMAT)


def from_stamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=datetime.timezone.utc)


def read_json(path: str, default: Any = None) -> Any:
    """The parsed JSON document at ``path``, or ``default`` when the file does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def atomic_write_json(path: str, data: Any, mode: int = 0o600) -> None:
    """Write ``data`` as JSON so that readers see the old file or the new one, never a mix.

    Temp file in the same directory, fsync, chmod, rename over the target, fsync the directory.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(directory)


def fsync_dir(directory: str) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def sha256_file(path: str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
