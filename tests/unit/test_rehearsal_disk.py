"""The rehearsal copy is refused before anything is created when the disk of Docker's data cannot hold
it: estimate (production's size of the copied tables, indexes included) x factor + margin."""

import json

import pytest
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.smart_deploy.pgcatalog import copy_plan, disk_check, disk_refusal, human_bytes
from ansible.module_utils.testing import patch_module_args

from tests.conftest import load_module

MIB = 2**20
GIB = 2**30


def test_the_copy_needs_its_estimate_times_the_factor_plus_the_margin():
    check = disk_check(3 * GIB, 10 * GIB, 2.0, 512 * MIB, "/var/lib/docker")
    assert check["needed_bytes"] == 6 * GIB + 512 * MIB and check["enough"] is True
    assert disk_check(3 * GIB, 6 * GIB + 512 * MIB - 1, 2.0, 512 * MIB)["enough"] is False
    assert disk_check(3 * GIB, 6 * GIB + 512 * MIB, 2.0, 512 * MIB)["enough"] is True


def test_free_space_that_cannot_be_read_is_not_a_refusal():
    assert disk_check(3 * GIB, None, 2.0, 512 * MIB)["enough"] is None


def test_the_estimate_is_what_the_copy_plan_copies_with_rows():
    tables = {"django_migrations": 64 * 1024, "catalog_product": 5 * GIB, "audit_log": 40 * GIB}
    plan = copy_plan(tables, [], {"catalog_product"}, 8 * MIB)
    assert plan["bytes_with_data"] == 5 * GIB + 64 * 1024, "the big untouched table is copied without rows"
    assert copy_plan(tables, [], None, 8 * MIB)["bytes_with_data"] == sum(tables.values()), "RunPython: everything"


def test_the_refusal_says_what_would_be_copied_what_is_needed_what_is_free_and_where():
    message = disk_refusal(disk_check(3 * GIB, 1 * GIB, 2.0, 512 * MIB, "/var/lib/docker"), tables=7)
    assert "3.0 GiB" in message and "7 tables" in message
    assert "needs 6.5 GiB free on /var/lib/docker" in message and "which has 1.0 GiB free" in message
    assert "Nothing was created and production is untouched" in message


@pytest.mark.parametrize("size, text", [(0, "0 B"), (1536, "1.5 KiB"), (5 * GIB, "5.0 GiB"), (None, "unknown")])
def test_sizes_are_said_in_binary_units(size, text):
    assert human_bytes(size) == text


class Refused(Exception):
    pass


def run_dryrun(monkeypatch, capsys, free, args=None):
    """django_migration_dryrun's main() against a production of 3 GiB whose pending migration runs Python
    (everything is copied), Docker's data on a file system with ``free`` bytes free. Nothing may start."""
    module = load_module("django_migration_dryrun")
    production = {"exists": True, "applied": ["shop.0001_initial"], "applied_count": 1, "migrations_fingerprint": "m",
                  "schema_fingerprint": "s", "tables": {"shop_order": 2 * GIB, "shop_line": GIB}, "foreign_keys": [],
                  "database_bytes": 3 * GIB}  # fmt: skip
    analysis = {"ok": True, "errors": [], "conflicts": [], "missing_migrations": None, "unknown_applied": [],
                "pending": [{"migration": "shop.0002_backfill", "tables": [], "tables_unknown": True}]}  # fmt: skip
    started = []

    def no_scratch(*args, **kwargs):
        started.append("scratch")
        raise Refused("a scratch database was created")

    monkeypatch.setattr(module, "docker_ok", lambda *a: True)
    monkeypatch.setattr(module, "sweep", lambda docker, app: {"containers": [], "networks": []})
    monkeypatch.setattr(module, "read_production", lambda docker, params: production)
    monkeypatch.setattr(module, "run_driver", lambda *a, **k: (analysis, ""))
    monkeypatch.setattr(module, "docker_root_dir", lambda docker: "/var/lib/docker")
    monkeypatch.setattr(module, "free_bytes", lambda path: free)
    monkeypatch.setattr(module, "Scratch", no_scratch)
    monkeypatch.setattr(module, "copy_database", no_scratch)
    base = {"image": "shop-backend:r2", "app": "shop", "db_container": "shop-db", "db_name": "shop", "db_user": "shop",
            "docker_cli": "true"}  # fmt: skip
    with patch_module_args(dict(base, **(args or {}))):
        with pytest.raises((SystemExit, Refused)):
            module.main()
    out = capsys.readouterr().out
    return (json.loads(to_text(out)) if out else {}), started


def test_too_little_free_disk_fails_before_any_scratch_database_starts(monkeypatch, capsys):
    result, started = run_dryrun(monkeypatch, capsys, free=5 * GIB)
    assert result["failed"] and started == []
    assert "needs 6.5 GiB free on /var/lib/docker" in result["msg"] and "which has 5.0 GiB free" in result["msg"]
    assert "it would copy 3.0 GiB of production (2 tables" in result["msg"]
    disk = result["report"]["disk"]
    assert (disk["estimate_bytes"], disk["needed_bytes"], disk["free_bytes"], disk["enough"]) == (3 * GIB, 6 * GIB + 512 * MIB, 5 * GIB,
                                                                                                  False)  # fmt: skip


def test_factor_and_margin_are_options(monkeypatch, capsys):
    result, started = run_dryrun(monkeypatch, capsys, free=5 * GIB, args={"disk_factor": 1.5, "disk_margin_mb": 256})
    # 3 GiB x 1.5 + 256 MiB = 4.75 GiB < 5 GiB: the copy goes ahead (and reaches the scratch database)
    assert started == ["scratch"], result


def test_a_negative_factor_or_margin_is_refused(monkeypatch, capsys):
    result, started = run_dryrun(monkeypatch, capsys, free=5 * GIB, args={"disk_margin_mb": -1})
    assert result["failed"] and "disk_margin_mb" in result["msg"] and started == []
