"""Shared test set-up: smart-deploy's module_utils importable as Ansible sees them, and its modules
loadable by name, so unit tests exercise the very files Ansible ships to a target."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import ansible.module_utils
import pytest
from ansible.module_utils import _internal as ansible_internal
from ansible.module_utils.testing import patch_module_args

ROOT = Path(__file__).resolve().parent.parent

# `from ansible.module_utils.smart_deploy.x import y` resolves to module_utils/smart_deploy/x.py
if str(ROOT / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(ROOT / "module_utils"))


def load_module(name: str):
    """Import library/<name>.py as a Python module."""
    spec = importlib.util.spec_from_file_location("smart_deploy_library_" + name, ROOT / "library" / (name + ".py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class ModuleRun:
    """Runs a module's main() with arguments, returns its JSON result (exit_json or fail_json)."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, name: str, args: dict, check_mode: bool = False) -> dict:
        module = load_module(name)
        if check_mode:
            args = dict(args, _ansible_check_mode=True)
        # as on a target: a module's warnings go into its result. Once anything of Ansible's controller side was
        # imported in this process (another test file on the same worker), ansible-core would send them to the
        # controller's display instead.
        with patch_module_args(args), pytest.MonkeyPatch.context() as patch:
            patch.setattr(ansible_internal, "is_controller", False)
            with pytest.raises(SystemExit):
                module.main()
        out = self.capsys.readouterr().out
        return json.loads(out)


@pytest.fixture
def run_module(capsys):
    return ModuleRun(capsys)


# The longest test files first (seconds each takes, in brackets): a file
# runs whole on one worker (--dist loadfile), so the longest ones start first and no long file is the last
# one left running while the other workers idle. Files not listed follow, in the order pytest collects them.
LONGEST_FIRST = (
    # seconds on a fresh clone with four workers (the 25 min 3 s run of 2026-11-30), or estimates
    "integration/test_safety_net.py",  # (about 900: the failure at each step, the rollbacks)
    "integration/test_fleet.py",  # (670 on the 34 min 43 s run: a fleet of 5 SSH hosts, two deploys under load, the verbs)
    "integration/test_fleet_faults.py",  # (597: a fleet of 5 SSH hosts, a first deploy, 4 faulty ones)
    "integration/test_overlaps_and_hooks.py",  # (about 700: secrets, overlapping deploys, hooks, on a deployment of its own)
    "integration/test_validation.py",  # (about 570)
    "integration/test_gazette.py",  # (about 500: the trait app's first deploy with its tests, an upgrade, a rollback with its database)
    "integration/test_daily_verbs.py",  # (about 490)
    "integration/test_notes.py",  # (about 450: three deploys, two validations of the notes sample)
    "integration/test_awx_launch.py",  # (about 430: two deploys, a rollback and read-only jobs, through ansible-runner)
    "integration/test_malformed_inputs.py",  # (about 400)
    "integration/test_least_privilege.py",  # (about 350: an upgrade from the previous version, two deploys)
    "integration/test_workers_and_volumes.py",  # (about 300: a deployment with workers and a volume, 4 deploys, a rollback)
    "integration/test_restore_connections.py",  # (194-298: four runs of the notes sample - two restores under steady load)
    "integration/test_proxy_tls.py",  # (about 250 on a busy machine: the proxy role alone, ten runs, a rotation under load)
    "integration/test_same_database.py",  # (about 330-400: a deployment of the notes sample, 4 deploys and a rollback, 2 refused)
    "molecule/test_cleanup.py",  # (254)
    "integration/test_scratch_lock_and_sql.py",  # (about 230)
    "integration/test_external_db.py",  # (about 230: two deploys of the notes sample and a cleanup)
    "integration/test_missing_migrations.py",  # (about 200)
    "integration/test_validation_syncdb.py",  # (about 220)
    "integration/test_build_wheels.py",  # (about 190 on a busy machine: four role builds, three sdists built, two base images)
    "molecule/test_default.py",  # (about 170)
    "integration/test_accessories.py",  # (about 120 on a busy machine: the accessories role alone, Redis)
    "integration/test_components.py",  # (about 120: one build of the notes image, the proxy, two role-level runs)
    "integration/test_dev_any_app.py",  # (about 100: one image build, one dev up/down)
    "unit/test_driver_matrix.py",  # (about 100, 26 s of CPU; the first run about 120 more: six venvs from PyPI, then cached)
    "integration/test_app_tests_own_settings.py",  # (about 40)
    "lint/test_lint.py",  # (68)
)


def pytest_collection_modifyitems(session, config, items):
    missing = [name for name in LONGEST_FIRST if not (ROOT / "tests" / name).is_file()]
    if missing:
        raise pytest.UsageError("tests/conftest.py LONGEST_FIRST names files that do not exist: %s" % ", ".join(missing))
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}

    def order(pair):
        index, item = pair
        try:
            name = Path(str(item.fspath)).resolve().relative_to(ROOT / "tests").as_posix()
        except ValueError:
            name = ""
        return (rank.get(name, len(rank)), index)

    items[:] = [item for _index, item in sorted(enumerate(items), key=order)]
