"""The deploy lock: staleness rules on data, the file operations, and deploy_lock run as Ansible runs it.

Races between many runs: test_lock_race.py. Keeping a lock fresh: test_lock_heartbeat.py.
"""

import datetime
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from ansible.module_utils.smart_deploy.lock import (
    FREE,
    REFRESHED,
    REFUSED,
    RELEASED,
    TAKEN,
    TAKEN_OVER,
    acquire,
    create,
    describe,
    judge,
    local_identity,
    new_lock,
    pid_alive,
    pid_namespace,
    read_lock,
    refresh,
    release,
)

NOW = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC)
HERE = {"machine_id": "m-here", "boot_id": "b-now", "pid_ns": "pid:[4026531836]"}
TTL = 3600


def alive(pid):
    return True


def dead(pid):
    return False


def lock_at(minutes_ago=0, ttl=TTL, host="runner", pid=4242, identity=HERE, lock_id="id1"):
    return new_lock(lock_id, "ci", host, pid, "abc123", "deploy", NOW - datetime.timedelta(minutes=minutes_ago), ttl, identity)


def dead_pid():
    """A pid no process has, now or later: pid_max itself (pids go up to pid_max - 1). A child that exited
    would do until its pid is reused, which a busy machine (the suite's other workers) does within seconds."""
    with open("/proc/sys/kernel/pid_max", encoding="ascii") as handle:
        return int(handle.read())


# --- judging a lock someone else holds ------------------------------------------------------------


def test_live_process_on_this_machine_holds_the_lock_even_when_expired():
    verdict = judge(lock_at(minutes_ago=600), NOW, HERE, alive, TTL)
    assert not verdict.stale
    assert "4242" in verdict.reason and "alive" in verdict.reason


def test_gone_process_on_this_machine_leaves_the_lock_stale_before_it_expires():
    verdict = judge(lock_at(), NOW, HERE, dead, TTL)
    assert verdict.stale and "is gone" in verdict.reason


@pytest.mark.parametrize("field", ["machine_id", "boot_id", "pid_ns"])
def test_process_elsewhere_is_not_checked_and_holds_until_expiry(field):
    elsewhere = dict(HERE, **{field: "other"})
    checked = []
    verdict = judge(lock_at(identity=elsewhere), NOW, HERE, lambda pid: checked.append(pid) or False, TTL)
    assert not verdict.stale and "cannot be checked" in verdict.reason
    assert checked == [], "a pid of another machine, boot or pid namespace means nothing here"


def test_lock_from_another_machine_is_stale_once_expired():
    verdict = judge(lock_at(minutes_ago=61, identity=dict(HERE, machine_id="other")), NOW, HERE, alive, TTL)
    assert verdict.stale and "expired" in verdict.reason


def test_same_host_name_alone_does_not_make_the_pid_checkable():
    old_format = {k: v for k, v in lock_at(host=socket.gethostname()).items() if k not in HERE}
    assert not judge(old_format, NOW, HERE, dead, TTL).stale
    assert judge(dict(old_format, expires="2026-11-29T11:59:59Z"), NOW, HERE, dead, TTL).stale


def test_unknown_local_identity_checks_no_pid():
    assert not judge(lock_at(identity={"machine_id": "", "boot_id": "", "pid_ns": ""}), NOW, {}, dead, TTL).stale


def test_unreadable_lock_file_is_held_until_unchanged_for_the_ttl():
    young = NOW.timestamp() - 60
    old = NOW.timestamp() - TTL - 60
    held = judge({"unreadable": True}, NOW, HERE, dead, TTL, mtime=young)
    assert not held.stale and "unreadable" in held.reason
    stale = judge({"unreadable": True}, NOW, HERE, dead, TTL, mtime=old)
    assert stale.stale and "unreadable" in stale.reason


def test_lock_without_expiry_counts_as_unreadable():
    incomplete = {"lock_id": "x", "pid": 4242, **HERE}
    assert not judge(incomplete, NOW, HERE, dead, TTL, mtime=NOW.timestamp()).stale


def test_description_names_the_holder():
    text = describe(lock_at())
    assert "ci" in text and "runner" in text and "abc123" in text and "4242" in text


def test_local_identity_names_machine_boot_and_pid_namespace():
    identity = local_identity()
    assert identity["machine_id"] and identity["boot_id"]
    assert identity["pid_ns"].startswith("pid:[") and identity["pid_ns"] == pid_namespace(str(os.getpid()))


def test_a_zombie_process_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and pid_alive(child.pid):
            time.sleep(0.02)
        assert not pid_alive(child.pid), "killed but not reaped: its deploy is over"
    finally:
        child.wait()
    assert pid_alive(os.getpid())


# --- the file operations --------------------------------------------------------------------------


def mine(path, lock_id="mine", pid=None, identity=None, ttl=TTL):
    lock = new_lock(lock_id, "alice", "laptop", pid or os.getpid(), "r1", "deploy", NOW, ttl, identity or local_identity())
    return acquire(str(path), lock, ttl, local_identity())


def test_take_writes_a_whole_0600_lock_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "deploy.lock"
    assert mine(path).outcome == TAKEN
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text())["lock_id"] == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["deploy.lock"]


def test_create_never_replaces_an_existing_lock(tmp_path):
    path = tmp_path / "deploy.lock"
    assert create(str(path), {"lock_id": "first"})
    assert not create(str(path), {"lock_id": "second"})
    assert json.loads(path.read_text())["lock_id"] == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["deploy.lock"]


def test_taking_again_with_the_same_id_moves_the_expiry(tmp_path):
    path = tmp_path / "deploy.lock"
    first = mine(path, ttl=60)
    again = mine(path, ttl=7200)
    assert again.outcome == REFRESHED
    assert again.lock["expires"] > first.lock["expires"]
    assert again.lock["started"] == first.lock["started"]
    assert json.loads(path.read_text()) == again.lock


def test_a_live_holder_keeps_the_lock(tmp_path):
    path = tmp_path / "deploy.lock"
    mine(path)
    other = mine(path, lock_id="other")
    assert other.outcome == REFUSED and other.lock["lock_id"] == "mine" and "alive" in other.reason
    assert json.loads(path.read_text())["lock_id"] == "mine"


def test_the_lock_of_a_gone_process_is_taken_over_in_place(tmp_path):
    path = tmp_path / "deploy.lock"
    mine(path, lock_id="ghost", pid=dead_pid())
    taken = mine(path, lock_id="next")
    assert taken.outcome == TAKEN_OVER and taken.previous["lock_id"] == "ghost" and "is gone" in taken.reason
    assert json.loads(path.read_text())["lock_id"] == "next"
    assert [p.name for p in tmp_path.iterdir()] == ["deploy.lock"]


def test_an_unreadable_lock_file_is_taken_over_only_once_old(tmp_path):
    path = tmp_path / "deploy.lock"
    path.write_text("{not json")
    refused = mine(path)
    assert refused.outcome == REFUSED and "unreadable" in refused.reason
    old = time.time() - TTL - 10
    os.utime(path, (old, old))
    assert mine(path).outcome == TAKEN_OVER
    assert json.loads(path.read_text())["lock_id"] == "mine"


def test_dry_run_decides_without_writing(tmp_path):
    path = tmp_path / "deploy.lock"
    lock = new_lock("x", "a", "h", os.getpid(), "r", "deploy", NOW, TTL, local_identity())
    assert acquire(str(path), lock, TTL, local_identity(), dry_run=True).outcome == TAKEN
    assert not path.exists()
    mine(path)
    before = path.read_text()
    assert release(str(path), None, True, TTL, local_identity(), dry_run=True).outcome == RELEASED
    assert path.read_text() == before


def test_refresh_only_touches_the_lock_of_that_id(tmp_path):
    path = tmp_path / "deploy.lock"
    mine(path, ttl=60)
    assert refresh(str(path), "someone-else", 7200) is None
    assert json.loads(path.read_text())["lock_id"] == "mine"
    renewed = refresh(str(path), "mine", 7200)
    assert renewed["expires"] > new_lock("", "", "", 0, "", "", NOW, 60)["expires"]
    assert refresh(str(tmp_path / "absent.lock"), "mine", 60) is None


@pytest.mark.parametrize(
    "holder_pid, lock_id, force, outcome",
    [
        (None, "mine", False, RELEASED),  # the holder releases its lock
        (None, None, False, REFUSED),  # a live run keeps it...
        (None, "not-mine", False, REFUSED),
        (None, None, True, RELEASED),  # ...unless forced
        ("dead", None, False, RELEASED),  # a stale lock goes without force
    ],
)
def test_release_rules(tmp_path, holder_pid, lock_id, force, outcome):
    path = tmp_path / "deploy.lock"
    mine(path, pid=dead_pid() if holder_pid == "dead" else None)
    released = release(str(path), lock_id, force, TTL, local_identity())
    assert released.outcome == outcome
    assert path.exists() is (outcome == REFUSED)


def test_releasing_a_free_lock_changes_nothing(tmp_path):
    assert release(str(tmp_path / "deploy.lock"), "mine", False, TTL, local_identity()).outcome == FREE


def test_read_lock_reports_garbage_as_unreadable(tmp_path):
    path = tmp_path / "deploy.lock"
    assert read_lock(str(path)) == (None, None)
    path.write_text("[1, 2]")
    lock, mtime = read_lock(str(path))
    assert lock == {"unreadable": True} and mtime == path.stat().st_mtime


# --- deploy_lock as Ansible runs it ---------------------------------------------------------------


def args(path, **extra):
    base = {"path": str(path), "owner": "alice", "host": "laptop", "pid": os.getpid(), "release": "r1", "identity": local_identity()}
    base.update(extra)
    return base


def test_take_and_release(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    taken = run_module("deploy_lock", args(path))
    assert taken["changed"] is True and taken["held"] is True and taken["refreshed"] is False
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    recorded = json.loads(path.read_text())
    assert recorded["owner"] == "alice" and recorded["pid"] == os.getpid()
    assert {k: recorded[k] for k in ("machine_id", "boot_id", "pid_ns")} == local_identity()
    released = run_module("deploy_lock", args(path, state="absent", lock_id=taken["lock"]["lock_id"]))
    assert released["changed"] is True
    assert not path.exists()


def test_second_taker_fails_naming_the_holder(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    run_module("deploy_lock", args(path, owner="pytest"))
    second = run_module("deploy_lock", args(path, owner="bob", release="r2"))
    assert second["failed"] is True
    assert "another deploy is running" in second["msg"] and "held by pytest" in second["msg"]
    assert "laptop" in second["msg"] and "r1" in second["msg"] and "--force" in second["msg"]
    assert json.loads(path.read_text())["owner"] == "pytest"


def test_taking_again_with_the_same_id_refreshes_without_change(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    taken = run_module("deploy_lock", args(path, ttl=60))
    again = run_module("deploy_lock", args(path, lock_id=taken["lock"]["lock_id"], ttl=7200))
    assert again["changed"] is False and again["held"] is True and again["refreshed"] is True
    assert again["lock"]["expires"] > taken["lock"]["expires"]
    assert json.loads(path.read_text())["expires"] == again["lock"]["expires"]


def test_only_the_holder_releases_without_force(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    run_module("deploy_lock", args(path))
    refused = run_module("deploy_lock", args(path, state="absent", lock_id="not-mine"))
    assert refused["failed"] is True and "not by this run" in refused["msg"] and path.exists()
    forced = run_module("deploy_lock", args(path, state="absent", force=True))
    assert forced["changed"] is True and not path.exists()


def test_release_without_force_refuses_a_live_holder_and_says_how_to_force(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    run_module("deploy_lock", args(path))
    refused = run_module("deploy_lock", {"path": str(path), "state": "absent"})
    assert refused["failed"] is True and path.exists()
    assert "held by alice" in refused["msg"] and "is alive" in refused["msg"] and "./deploy lock release --force" in refused["msg"]


def test_release_without_force_removes_a_stale_lock(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    run_module("deploy_lock", args(path, pid=dead_pid(), owner="ghost"))
    released = run_module("deploy_lock", {"path": str(path), "state": "absent"})
    assert released["changed"] is True and "is gone" in released["reason"] and not path.exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    run_module("deploy_lock", args(path, pid=dead_pid(), owner="ghost"))
    result = run_module("deploy_lock", args(path, owner="alice"))
    assert result["changed"] is True
    assert "is gone" in result["taken_over"]["reason"]
    assert "took over a stale deploy lock" in json.dumps(result.get("warnings"))
    assert json.loads(path.read_text())["owner"] == "alice"


def test_lock_taken_elsewhere_is_not_taken_over_before_it_expires(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    elsewhere = dict(local_identity(), machine_id="another-machine")
    run_module("deploy_lock", args(path, pid=dead_pid(), owner="remote", identity=elsewhere))
    second = run_module("deploy_lock", args(path))
    assert second["failed"] is True and "cannot be checked" in second["msg"]


def test_an_unreadable_lock_file_is_reported_and_kept_while_recent(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    path.write_text("")
    refused = run_module("deploy_lock", args(path))
    assert refused["failed"] is True and "not a complete lock file" in refused["msg"] and "--force" in refused["msg"]
    assert path.read_text() == ""
    status = run_module("deploy_lock", {"path": str(path), "state": "query"})
    assert "unreadable" in status["description"] and status["stale"] is None and "unreadable" in status["verdict"]


def test_check_mode_writes_nothing(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    result = run_module("deploy_lock", args(path), check_mode=True)
    assert result["changed"] is True
    assert not path.exists()


def test_check_mode_refresh_and_release_write_nothing(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    taken = run_module("deploy_lock", args(path, ttl=60))
    before = path.read_text()
    again = run_module("deploy_lock", args(path, lock_id=taken["lock"]["lock_id"], ttl=7200), check_mode=True)
    assert again["refreshed"] is True and again["changed"] is False
    gone = run_module("deploy_lock", args(path, state="absent", lock_id=taken["lock"]["lock_id"]), check_mode=True)
    assert gone["changed"] is True
    assert path.read_text() == before


def test_query_reports_a_free_lock(tmp_path, run_module):
    result = run_module("deploy_lock", {"path": str(tmp_path / "deploy.lock"), "state": "query"})
    assert result["held"] is False and result["changed"] is False


def test_query_judges_with_the_identity(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    run_module("deploy_lock", args(path))
    live = run_module("deploy_lock", {"path": str(path), "state": "query"})
    assert live["held"] is True and live["stale"] is None and "is alive" in live["verdict"]
    path.unlink()
    run_module("deploy_lock", args(path, pid=dead_pid()))
    gone = run_module("deploy_lock", {"path": str(path), "state": "query"})
    assert "is gone" in gone["stale"]
