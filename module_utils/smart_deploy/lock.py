# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy lock of an app on its target: who holds it, whether that run can still be alive, what to
tell the next person, and the file operations that take, refresh and release it.

Standard library only, so the same file runs inside the deploy_lock module (as
``ansible.module_utils.smart_deploy.lock``), inside long-running modules that keep the lock fresh
(``Heartbeat``) and in unit tests.

How two runs are kept from both holding the lock:

- A lock file is never written in place. A new lock is written to a temporary file in the same folder
  (0600, fsync) and ``os.link()``-ed to the lock's name: link never replaces an existing file, so of
  the runs that find the lock free exactly one gets it, and nobody ever reads a half-written lock.
- Whatever replaces or removes an existing lock (a refresh, the take-over of a stale lock, a release)
  reads the lock again while holding ``flock()`` on the lock's folder, decides on what it read and acts
  before letting go. link() cannot change an existing lock, so what was read stays true meanwhile: a
  stale lock is replaced (``os.replace``, atomic, the name never goes missing) only if it is still the
  lock that was judged stale, and of the runs racing to take it over one wins, the others find its lock.

When is a lock stale? The lock records the controller's identity: host name (for people), machine id,
boot id and pid namespace of the ansible-playbook process. When all three match the machine the lock
is judged on, the pid can be checked: a live process holds the lock whatever its expiry says, a gone
one leaves it stale. Otherwise (another machine, another boot, another container) the process cannot
be seen from here and the lock is stale only once expired; a run keeps its lock from expiring by taking
it again with its lock id (a refresh) or with a ``Heartbeat`` during long steps.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import tempfile
import threading
from typing import Any, Callable, ContextManager, Dict, Iterator, NamedTuple, Optional, Tuple

from ansible.module_utils.smart_deploy.common import atomic_write_json, from_iso, fsync_dir, to_iso, utc_now

LOCK_FIELDS = ("lock_id", "owner", "host", "pid", "machine_id", "boot_id", "pid_ns", "started", "release", "expires", "operation")
IDENTITY_FIELDS = ("machine_id", "boot_id", "pid_ns")
MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"

# What taking the lock did (Acquired.outcome) and what releasing it did (Released.outcome).
TAKEN = "taken"
REFRESHED = "refreshed"
TAKEN_OVER = "taken_over"
REFUSED = "refused"
RELEASED = "released"
FREE = "free"

Identity = Dict[str, str]
PidAlive = Callable[[int], bool]


class Judgement(NamedTuple):
    """Whether a lock someone else holds may be taken over, and why (the reason is shown to people)."""

    stale: bool
    reason: str


class Acquired(NamedTuple):
    outcome: str  # TAKEN, REFRESHED, TAKEN_OVER or REFUSED
    lock: dict  # this run's lock as written; the holder's lock when REFUSED
    previous: Optional[dict] = None  # the stale lock that was replaced (TAKEN_OVER)
    reason: str = ""  # why the previous lock was stale, or why the holder still holds it


class Released(NamedTuple):
    outcome: str  # RELEASED, FREE or REFUSED
    lock: dict  # the lock that was removed; the holder's lock when REFUSED; {} when FREE
    reason: str = ""


# --- the identity of this machine and its processes -----------------------------------------------


def _first_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def machine_id() -> str:
    """/etc/machine-id, else /var/lib/dbus/machine-id, else the host name (as the controller computes it)."""
    for path in MACHINE_ID_FILES:
        value = _first_line(path)
        if value:
            return value
    return socket.gethostname()


def pid_namespace(pid: str = "self") -> str:
    """The pid namespace of a process, as ``readlink /proc/<pid>/ns/pid`` shows it (``pid:[4026531836]``)."""
    try:
        return os.readlink("/proc/%s/ns/pid" % pid)
    except OSError:
        return ""


def local_identity() -> Identity:
    """Machine id, boot id and pid namespace of the process running this code."""
    return dict(machine_id=machine_id(), boot_id=_first_line(BOOT_ID_FILE), pid_ns=pid_namespace())


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists in this pid namespace (a zombie, killed but not yet reaped, is gone)."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return True
    state = stat[stat.rfind(")") + 1 :].split()[:1]
    return state not in (["Z"], ["X"])


# --- decisions (pure) ------------------------------------------------------------------------------


def new_lock(
    lock_id: str,
    owner: str,
    host: str,
    pid: int,
    release: str,
    operation: str,
    now: datetime.datetime,
    ttl_seconds: int,
    identity: Optional[Identity] = None,
) -> dict:
    identity = identity or {}
    lock = dict(
        lock_id=lock_id,
        owner=owner,
        host=host,
        pid=pid,
        release=release,
        operation=operation,
        started=to_iso(now),
        expires=to_iso(now + datetime.timedelta(seconds=ttl_seconds)),
    )
    lock.update((field, str(identity.get(field) or "")) for field in IDENTITY_FIELDS)
    return lock


def renewed(lock: dict, now: datetime.datetime, ttl_seconds: int) -> dict:
    """The same lock, expiring ``ttl_seconds`` from ``now``."""
    return dict(lock, expires=to_iso(now + datetime.timedelta(seconds=ttl_seconds)))


def same_machine_and_pid_namespace(lock: dict, local: Identity) -> bool:
    """Whether the lock's process lives where it can be checked from here: same machine, same boot, same
    pid namespace (all three known)."""
    return all(local.get(field) and lock.get(field) == local.get(field) for field in IDENTITY_FIELDS)


def checkable_pid(lock: dict, local: Identity) -> Optional[int]:
    """The lock's pid when it can be checked from here, else None."""
    pid = lock.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return None
    return pid if same_machine_and_pid_namespace(lock, local) else None


def _expiry(lock: dict) -> Optional[datetime.datetime]:
    try:
        return from_iso(lock["expires"])
    except (KeyError, TypeError, ValueError):
        return None


def judge(
    lock: dict, now: datetime.datetime, local: Identity, alive: PidAlive, ttl_seconds: int, mtime: Optional[float] = None
) -> Judgement:
    """Whether the lock someone else holds is stale, and why.

    Its process can be checked (same machine id, boot id and pid namespace): alive means held whatever
    the expiry says, gone means stale. Otherwise it is stale only once expired. A lock file that is not
    a complete lock (it cannot be a half-written one: locks are linked into place whole) is stale only
    when it has not changed for ``ttl_seconds`` (``mtime``: its modification time, seconds since the epoch).
    """
    expires = _expiry(lock)
    if expires is None:
        return _judge_unreadable(now, ttl_seconds, mtime)
    host = lock.get("host", "?")
    pid = checkable_pid(lock, local)
    if pid is not None:
        if alive(pid):
            return Judgement(False, "its process %d on this machine (%s) is alive" % (pid, host))
        return Judgement(True, "its process %d on %s is gone" % (pid, host))
    if expires <= now:
        return Judgement(True, "it expired at %s" % lock["expires"])
    return Judgement(False, "its process on %s cannot be checked from this machine and the lock expires at %s" % (host, lock["expires"]))


def _judge_unreadable(now: datetime.datetime, ttl_seconds: int, mtime: Optional[float]) -> Judgement:
    if mtime is None:
        return Judgement(False, "the lock file is unreadable or incomplete and its age is unknown")
    age = int(now.timestamp() - mtime)
    if age > ttl_seconds:
        return Judgement(
            True, "the lock file is unreadable or incomplete and unchanged for %d s (more than the ttl of %d s)" % (age, ttl_seconds)
        )
    return Judgement(
        False, "the lock file is unreadable or incomplete, changed %d s ago; it goes stale %d s after its last change" % (age, ttl_seconds)
    )


def describe(lock: dict) -> str:
    if lock.get("unreadable"):
        return "an unreadable lock file (not a complete deploy lock)"
    return "held by %s (pid %s on %s) since %s for %s of release %s, expires %s" % (
        lock.get("owner", "?"),
        lock.get("pid", "?"),
        lock.get("host", "?"),
        lock.get("started", "?"),
        lock.get("operation", "deploy"),
        lock.get("release", "?"),
        lock.get("expires", "?"),
    )


def plan_acquire(
    current: Optional[dict], mtime: Optional[float], lock: dict, now: datetime.datetime, ttl_seconds: int, local: Identity, alive: PidAlive
) -> Acquired:
    """What taking ``lock`` does, given the lock file's content (None: no file) and modification time."""
    if current is None:
        return Acquired(TAKEN, lock)
    if current.get("lock_id") == lock["lock_id"]:
        return Acquired(REFRESHED, renewed(current, now, ttl_seconds), reason="already held by this run")
    verdict = judge(current, now, local, alive, ttl_seconds, mtime)
    if verdict.stale:
        return Acquired(TAKEN_OVER, lock, current, verdict.reason)
    return Acquired(REFUSED, current, None, verdict.reason)


def plan_release(
    current: Optional[dict],
    mtime: Optional[float],
    lock_id: Optional[str],
    force: bool,
    now: datetime.datetime,
    ttl_seconds: int,
    local: Identity,
    alive: PidAlive,
) -> Released:
    """What releasing does: the holder (same ``lock_id``) releases its lock, anyone removes a stale lock,
    and a lock still held by someone else is removed only with ``force``."""
    if current is None:
        return Released(FREE, {})
    if lock_id and current.get("lock_id") == lock_id:
        return Released(RELEASED, current, "held by this run")
    verdict = judge(current, now, local, alive, ttl_seconds, mtime)
    if verdict.stale:
        return Released(RELEASED, current, "stale: %s" % verdict.reason)
    if force:
        return Released(RELEASED, current, "forced, although %s" % verdict.reason)
    return Released(REFUSED, current, verdict.reason)


# --- file operations ---------------------------------------------------------------------------------


def read_lock(path: str) -> Tuple[Optional[dict], Optional[float]]:
    """The lock at ``path`` and its modification time; (None, None) when there is no lock file.

    A file that is not a JSON object reads as ``{"unreadable": True}``.
    """
    try:
        with open(path, "rb") as handle:
            mtime = os.fstat(handle.fileno()).st_mtime
            raw = handle.read()
    except FileNotFoundError:
        return None, None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return {"unreadable": True}, mtime
    return data, mtime


@contextlib.contextmanager
def folder_guard(path: str) -> Iterator[None]:
    """Hold flock() on the lock's folder: refreshes, take-overs and releases of that folder's locks take
    turns. (Creating a lock needs no guard: link() never replaces one.)"""
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def create(path: str, lock: dict) -> bool:
    """Put ``lock`` at ``path`` only if there is no lock there; False when someone else holds it.

    Written whole to a temporary file in the same folder (0600, fsync), then linked to ``path``: link
    never replaces an existing file, and a reader sees no lock or a complete one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(lock, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, 0o600)
        os.link(tmp_path, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp_path)
    fsync_dir(directory)
    return True


def acquire(path: str, lock: dict, ttl_seconds: int, local: Identity, alive: PidAlive = pid_alive, dry_run: bool = False) -> Acquired:
    """Take the lock at ``path`` for ``lock`` (see plan_acquire for what happens). ``dry_run`` writes nothing."""
    if dry_run:
        current, mtime = read_lock(path)
        return plan_acquire(current, mtime, lock, utc_now(), ttl_seconds, local, alive)
    if create(path, lock):
        return Acquired(TAKEN, lock)
    with folder_guard(path):
        current, mtime = read_lock(path)
        # Gone since (released): take it the ordinary way. Once there it stays while the guard is held.
        for _attempt in range(5):
            if current is not None:
                break
            if create(path, lock):
                return Acquired(TAKEN, lock)
            current, mtime = read_lock(path)
        else:
            raise OSError(errno.EAGAIN, "the lock file keeps appearing and disappearing", path)
        plan = plan_acquire(current, mtime, lock, utc_now(), ttl_seconds, local, alive)
        if plan.outcome in (REFRESHED, TAKEN_OVER):
            atomic_write_json(path, plan.lock)
        return plan


def refresh(path: str, lock_id: str, ttl_seconds: int) -> Optional[dict]:
    """Make the lock held as ``lock_id`` expire ``ttl_seconds`` from now (atomic replace).

    None, and nothing written, when the lock is no longer ``lock_id``'s (released, or taken over).
    """
    with folder_guard(path):
        current, _mtime = read_lock(path)
        if not current or current.get("lock_id") != lock_id:
            return None
        lock = renewed(current, utc_now(), ttl_seconds)
        atomic_write_json(path, lock)
        return lock


def release(
    path: str,
    lock_id: Optional[str],
    force: bool,
    ttl_seconds: int,
    local: Identity,
    alive: PidAlive = pid_alive,
    dry_run: bool = False,
) -> Released:
    """Remove the lock at ``path`` (see plan_release for when). ``dry_run`` writes nothing."""
    guard = contextlib.nullcontext() if dry_run else folder_guard(path)
    with guard:
        current, mtime = read_lock(path)
        plan = plan_release(current, mtime, lock_id, force, utc_now(), ttl_seconds, local, alive)
        if plan.outcome == RELEASED and not dry_run:
            os.unlink(path)
            fsync_dir(os.path.dirname(os.path.abspath(path)))
        return plan


class Heartbeat:
    """Keep a held lock from expiring during a long step.

    ``with Heartbeat(path, lock_id, ttl):`` re-writes the lock's expiry to now + ttl at once and then
    every ``interval`` seconds (default ttl/4, at least 1 s), in a daemon thread, for as long as the lock
    still has ``lock_id``; the thread stops when the block ends. ``lost`` tells whether the lock stopped
    being this run's, ``error`` the last failure to write it (the heartbeat keeps trying).
    """

    def __init__(self, path: str, lock_id: str, ttl: int, interval: Optional[float] = None):
        if ttl < 1:
            raise ValueError("the lock's ttl must be at least 1 s, got %r" % ttl)
        if interval is not None and interval <= 0:
            raise ValueError("the heartbeat interval must be positive, got %r" % interval)
        self.path = path
        self.lock_id = lock_id
        self.ttl = int(ttl)
        self.interval = float(interval) if interval is not None else max(1.0, self.ttl / 4.0)
        self.beats = 0
        self.lost = False
        self.error: Optional[str] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @classmethod
    def from_params(cls, params: Optional[Dict[str, Any]]) -> ContextManager[Any]:
        """From a module's C(lock) option (args.lock_heartbeat_spec): a Heartbeat, or a no-op when the
        option is absent."""
        if not params:
            return contextlib.nullcontext()
        return cls(params["path"], params["lock_id"], int(params["ttl"]))

    def __enter__(self) -> "Heartbeat":
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="deploy-lock-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                if refresh(self.path, self.lock_id, self.ttl) is None:
                    self.lost = True
                    return
                self.beats += 1
                self.error = None
            except OSError as exc:
                self.error = str(exc)
            if self._stop.wait(self.interval):
                return
