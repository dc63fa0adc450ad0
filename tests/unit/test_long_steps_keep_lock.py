"""The modules whose work can outlast the deploy lock's ttl (the app's tests, the rehearsal, the backup,
the migrations, a restore) take the `lock` option and keep the lock fresh while they work."""

import json
import os
import time

import pytest
from ansible.module_utils.smart_deploy.common import from_iso, utc_now
from ansible.module_utils.smart_deploy.lock import acquire, local_identity, new_lock
from ansible.module_utils.testing import patch_module_args

from tests.conftest import load_module

SHORT_TTL = 30
HOLD_TTL = 3600


def held_lock(tmp_path):
    """A lock of this run that expires in SHORT_TTL seconds."""
    path = tmp_path / "deploy.lock"
    lock = new_lock("this-run", "pytest", "laptop", os.getpid(), "r2", "deploy", utc_now(), SHORT_TTL, local_identity())
    acquire(str(path), lock, SHORT_TTL, local_identity())
    return path


def expiry(path):
    return from_iso(json.loads(path.read_text())["expires"])


def long_step(path, seen):
    """Stands for the module's long work: waits (up to 5 s) for the lock's expiry to be moved to ~HOLD_TTL
    seconds from now, and records whether it was."""
    first = expiry(path)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and expiry(path) <= first:
        time.sleep(0.02)
    seen.append((expiry(path) - utc_now()).total_seconds())


def run_main(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def lock_option(path):
    return {"path": str(path), "lock_id": "this-run", "ttl": HOLD_TTL}


def assert_kept_fresh(result, seen):
    assert not result.get("failed"), result
    assert len(seen) == 1 and seen[0] > HOLD_TTL - 60, "the lock was not refreshed during the long step: %s" % seen


class FakeScratch:
    def __init__(self, *args, **kwargs):
        self.run_id = "r1"

    def remove(self):
        return {"containers": [], "networks": []}


def test_django_test_keeps_the_lock_fresh_while_the_suite_runs(tmp_path, monkeypatch, capsys):
    path, seen = held_lock(tmp_path), []
    module = load_module("django_test")
    monkeypatch.setattr(module, "Scratch", FakeScratch)
    monkeypatch.setattr(module, "run_suite", lambda *a: (long_step(path, seen), (True, "Ran 3 tests", {}, False))[1])
    result = run_main(module, {"image": "shop-backend:r2", "app": "shop", "docker_cli": "true", "lock": lock_option(path)}, capsys)
    assert_kept_fresh(result, seen)
    assert result["tests"] == 3


def test_the_rehearsal_keeps_the_lock_fresh(tmp_path, monkeypatch, capsys):
    path, seen = held_lock(tmp_path), []
    module = load_module("django_migration_dryrun")
    monkeypatch.setattr(module, "docker_ok", lambda *a: True)
    monkeypatch.setattr(module, "analyze_and_rehearse", lambda *a: long_step(path, seen))
    args = {"image": "shop-backend:r2", "app": "shop", "db_container": "shop-db", "db_name": "shop", "db_user": "shop",
            "docker_cli": "true", "lock": lock_option(path)}  # fmt: skip
    assert_kept_fresh(run_main(module, args, capsys), seen)


def test_migrating_keeps_the_lock_fresh(tmp_path, monkeypatch, capsys):
    path, seen = held_lock(tmp_path), []
    module = load_module("django_migrate")
    monkeypatch.setattr(module, "docker_ok", lambda *a: True)
    monkeypatch.setattr(module, "read_state", lambda *a: {"applied_count": 1})
    monkeypatch.setattr(module, "run_driver", lambda *a, **k: (long_step(path, seen), ({"applied": ["shop.0002"], "faked": []}, ""))[1])
    args = {"image": "shop-backend:r2", "expected_plan": ["shop.0002"], "db_container": "shop-db", "db_name": "shop", "db_user": "shop",
            "docker_cli": "true", "lock": lock_option(path)}  # fmt: skip
    result = run_main(module, args, capsys)
    assert_kept_fresh(result, seen)
    assert result["applied"] == ["shop.0002"]


def test_reversing_keeps_the_lock_fresh(tmp_path, monkeypatch, capsys):
    path, seen = held_lock(tmp_path), []
    module = load_module("django_migrate")
    monkeypatch.setattr(module, "read_state", lambda *a: {"applied_count": 2})
    monkeypatch.setattr(module, "run_driver", lambda *a, **k: (long_step(path, seen), ({"reversed": [], "safe": False}, ""))[1])
    args = {"image": "shop-backend:r2", "action": "reverse", "reverse_applied": ["shop.0002"], "db_container": "shop-db",
            "db_name": "shop", "db_user": "shop", "docker_cli": "true", "lock": lock_option(path)}  # fmt: skip
    assert_kept_fresh(run_main(module, args, capsys), seen)


def test_a_backup_keeps_the_lock_fresh(tmp_path, monkeypatch, capsys):
    path, seen = held_lock(tmp_path), []
    module = load_module("pg_backup")
    monkeypatch.setattr(module, "take_backup", lambda *a: (long_step(path, seen), ("/b/x.dump", "/b/x.json", {}))[1])
    args = {"container": "shop-db", "database": "shop", "user": "shop_owner", "dest": str(tmp_path / "backups"), "app": "shop",
            "release": "r2", "docker_cli": "true", "lock": lock_option(path)}  # fmt: skip
    assert_kept_fresh(run_main(module, args, capsys), seen)


def test_a_restore_keeps_the_lock_fresh(tmp_path, monkeypatch, capsys):
    path, seen = held_lock(tmp_path), []
    module = load_module("pg_restore")
    monkeypatch.setattr(module, "restore", lambda module, params: (long_step(path, seen), module.exit_json(changed=True)))
    args = {"backup": "/b/x.dump", "container": "shop-db", "database": "shop", "user": "shop", "lock": lock_option(path)}
    assert_kept_fresh(run_main(module, args, capsys), seen)
