"""The deploy lock: staleness rules on data, and deploy_lock run as Ansible runs it."""

import datetime
import json
import multiprocessing
import os
import socket
import subprocess
import sys

from ansible.module_utils.smart_deploy.lock import describe, new_lock, stale_reason

NOW = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC)


def lock_at(minutes_ago=0, ttl=3600, host="runner", pid=4242):
    return new_lock("id1", "ci", host, pid, "abc123", "deploy", NOW - datetime.timedelta(minutes=minutes_ago), ttl)


def test_fresh_lock_is_held():
    assert stale_reason(lock_at(), NOW, "runner", lambda pid: True) is None


def test_expired_lock_is_stale():
    assert "expired" in stale_reason(lock_at(minutes_ago=61), NOW, "elsewhere", lambda pid: True)


def test_lock_of_a_dead_process_on_this_host_is_stale():
    assert "is gone" in stale_reason(lock_at(), NOW, "runner", lambda pid: False)


def test_process_on_another_host_is_not_judged_from_here():
    assert stale_reason(lock_at(host="other"), NOW, "runner", lambda pid: False) is None


def test_unreadable_lock_is_stale():
    assert stale_reason({"unreadable": True}, NOW, "runner", lambda pid: True) is not None


def test_description_names_the_holder():
    text = describe(lock_at())
    assert "ci" in text and "runner" in text and "abc123" in text and "4242" in text


def args(path, **extra):
    base = {"path": str(path), "owner": "alice", "host": "laptop", "pid": os.getpid(), "release": "r1"}
    base.update(extra)
    return base


def test_take_and_release(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    taken = run_module("deploy_lock", args(path))
    assert taken["changed"] is True and taken["held"] is True
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text())["owner"] == "alice"
    released = run_module("deploy_lock", args(path, state="absent", lock_id=taken["lock"]["lock_id"]))
    assert released["changed"] is True
    assert not path.exists()


def test_second_taker_fails_naming_the_holder(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    run_module("deploy_lock", args(path))
    second = run_module("deploy_lock", args(path, owner="bob", release="r2"))
    assert second["failed"] is True
    assert "alice" in second["msg"] and "laptop" in second["msg"] and "r1" in second["msg"]
    assert json.loads(path.read_text())["owner"] == "alice"


def test_taking_again_with_the_same_id_changes_nothing(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    taken = run_module("deploy_lock", args(path))
    again = run_module("deploy_lock", args(path, lock_id=taken["lock"]["lock_id"]))
    assert again["changed"] is False and again["held"] is True


def test_only_the_holder_releases_without_force(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    run_module("deploy_lock", args(path))
    refused = run_module("deploy_lock", args(path, state="absent", lock_id="not-mine"))
    assert refused["failed"] is True and path.exists()
    forced = run_module("deploy_lock", args(path, state="absent", force=True))
    assert forced["changed"] is True and not path.exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_module("deploy_lock", args(path, host=socket.gethostname(), pid=dead.pid, owner="ghost"))
    result = run_module("deploy_lock", args(path, owner="alice"))
    assert result["changed"] is True
    assert "is gone" in result["taken_over"]["reason"]
    assert "took over a stale deploy lock" in json.dumps(result.get("warnings"))
    assert json.loads(path.read_text())["owner"] == "alice"


def test_check_mode_writes_nothing(tmp_path, run_module):
    path = tmp_path / "deploy.lock"
    result = run_module("deploy_lock", args(path), check_mode=True)
    assert result["changed"] is True
    assert not path.exists()


def test_query_reports_a_free_lock(tmp_path, run_module):
    result = run_module("deploy_lock", {"path": str(tmp_path / "deploy.lock"), "state": "query"})
    assert result["held"] is False and result["changed"] is False


def _contend(path, owner, start, results):
    from ansible.module_utils.smart_deploy.lock import new_lock as make

    from tests.conftest import load_module

    module = load_module("deploy_lock")
    start.wait()
    won = module.create_exclusive(str(path), make(owner, owner, "h", os.getpid(), "r", "deploy", NOW, 60))
    results.put((owner, won))


def test_of_many_runs_started_together_exactly_one_gets_the_lock(tmp_path):
    path = tmp_path / "deploy.lock"
    start = multiprocessing.Event()
    results = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_contend, args=(path, "run%d" % i, start, results)) for i in range(8)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(10)
    outcomes = [results.get(timeout=5) for _ in procs]
    winners = [owner for owner, won in outcomes if won]
    assert len(winners) == 1
    assert json.loads(path.read_text())["owner"] == winners[0]
