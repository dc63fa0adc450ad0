"""Keeping the deploy lock fresh during long steps: the Heartbeat, the `lock` option that feeds it, and
its documentation."""

import json
import os
import runpy
import threading
import time

import pytest
import yaml
from ansible.module_utils.smart_deploy.args import lock_heartbeat_spec
from ansible.module_utils.smart_deploy.common import atomic_write_json, from_iso, utc_now
from ansible.module_utils.smart_deploy.lock import REFUSED, RELEASED, Heartbeat, acquire, folder_guard, local_identity, new_lock, release

from tests.conftest import ROOT


def held(tmp_path, ttl, lock_id="mine"):
    path = tmp_path / "deploy.lock"
    lock = new_lock(lock_id, "alice", "laptop", os.getpid(), "r1", "deploy", utc_now(), ttl, local_identity())
    acquire(str(path), lock, ttl, local_identity())
    return path


def expiry(path):
    return from_iso(json.loads(path.read_text())["expires"])


def heartbeat_threads():
    return [t for t in threading.enumerate() if t.name == "deploy-lock-heartbeat"]


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_heartbeat_moves_the_expiry_forward(tmp_path):
    path = held(tmp_path, ttl=2)
    first = expiry(path)
    with Heartbeat(str(path), "mine", ttl=2, interval=0.1) as beat:
        assert wait_for(lambda: expiry(path) > first), "the expiry never moved"
        time.sleep(0.3)
    assert beat.beats >= 2 and not beat.lost and beat.error is None
    assert expiry(path) > first
    assert json.loads(path.read_text())["lock_id"] == "mine"


def test_a_lock_kept_fresh_from_another_machine_is_not_taken_over_after_its_ttl(tmp_path):
    path = tmp_path / "deploy.lock"
    remote = dict(local_identity(), machine_id="the-controller")  # its pid cannot be checked from here
    lock = new_lock("remote-run", "ci", "controller", 4242, "r1", "deploy", utc_now(), 2, remote)
    acquire(str(path), lock, 2, local_identity())
    with Heartbeat(str(path), "remote-run", ttl=2, interval=0.2):
        time.sleep(3)
        late = new_lock("late", "bob", "laptop", os.getpid(), "r2", "deploy", utc_now(), 2, local_identity())
        outcome = acquire(str(path), late, 2, local_identity())
    assert outcome.outcome == REFUSED and outcome.lock["lock_id"] == "remote-run"


def test_heartbeat_stops_when_the_lock_is_no_longer_this_runs(tmp_path):
    path = held(tmp_path, ttl=60)
    with Heartbeat(str(path), "mine", ttl=60, interval=0.05) as beat:
        assert wait_for(lambda: beat.beats >= 1)
        taken_over = dict(json.loads(path.read_text()), lock_id="next-run", expires="2030-01-01T00:00:00Z")
        with folder_guard(str(path)):  # as a take-over replaces it
            atomic_write_json(str(path), taken_over)
        assert wait_for(lambda: beat.lost), "the heartbeat kept going on someone else's lock"
        assert wait_for(lambda: not heartbeat_threads())
    assert json.loads(path.read_text()) == taken_over, "someone else's lock was rewritten"


def test_heartbeat_stops_when_the_lock_is_released(tmp_path):
    path = held(tmp_path, ttl=60)
    with Heartbeat(str(path), "mine", ttl=60, interval=0.05) as beat:
        assert release(str(path), "mine", False, 60, local_identity()).outcome == RELEASED
        assert wait_for(lambda: beat.lost)
    assert not path.exists(), "the heartbeat brought a released lock back"


def test_no_heartbeat_thread_is_left_after_the_block(tmp_path):
    path = held(tmp_path, ttl=3600)
    with Heartbeat(str(path), "mine", ttl=3600) as beat:
        assert len(heartbeat_threads()) == 1
        assert beat.interval == 900
    assert heartbeat_threads() == [], "exit must not wait for the next beat, nor leave the thread behind"


def test_heartbeat_stops_even_when_the_block_fails(tmp_path):
    path = held(tmp_path, ttl=60)
    with pytest.raises(RuntimeError):
        with Heartbeat(str(path), "mine", ttl=60, interval=0.05):
            raise RuntimeError("the migration failed")
    assert heartbeat_threads() == []


def test_default_interval_is_a_quarter_of_the_ttl_and_at_least_a_second():
    assert Heartbeat("/x", "id", ttl=3600).interval == 900
    assert Heartbeat("/x", "id", ttl=2).interval == 1


def test_without_the_lock_option_the_heartbeat_does_nothing():
    with Heartbeat.from_params(None) as nothing:
        assert nothing is None and heartbeat_threads() == []


def test_heartbeat_from_the_lock_option(tmp_path):
    path = held(tmp_path, ttl=60)
    beat = Heartbeat.from_params({"path": str(path), "lock_id": "mine", "ttl": 60})
    assert isinstance(beat, Heartbeat) and beat.ttl == 60 and beat.interval == 15


def test_lock_option_spec_and_doc_fragment_agree():
    spec = lock_heartbeat_spec()["lock"]
    assert spec["type"] == "dict" and not spec.get("required")
    # read as plain YAML: importing Ansible's controller code here would change how modules run in this process
    fragments = runpy.run_path(str(ROOT / "plugins" / "doc_fragments" / "smart_deploy.py"))["ModuleDocFragment"]
    documented = yaml.safe_load(fragments.LOCK_HEARTBEAT)["options"]["lock"]
    assert documented["type"] == "dict" and not documented.get("required")
    assert set(documented["suboptions"]) == set(spec["options"]) == {"path", "lock_id", "ttl"}
    for name, option in spec["options"].items():
        assert documented["suboptions"][name]["type"] == option["type"]
        assert bool(documented["suboptions"][name].get("required")) == bool(option.get("required"))
