"""Shared test set-up: smart-deploy's module_utils importable as Ansible sees them, and its modules
loadable by name, so unit tests exercise the very files Ansible ships to a target."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import ansible.module_utils
import pytest
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
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                module.main()
        out = self.capsys.readouterr().out
        return json.loads(out)


@pytest.fixture
def run_module(capsys):
    return ModuleRun(capsys)


# The longest test files first (seconds each took in a fresh-clone run on three workers, in brackets): a file
# runs whole on one worker (--dist loadfile), so the longest ones start first and no long file is the last
# one left running while the other workers idle. Files not listed follow, in the order pytest collects them.
LONGEST_FIRST = (
    # (793 before; with test_secrets', test_concurrency's and test_hooks' tests on its deployment: 814 alone, -n 1, on
    # the shared machine - about 1000-1150 expected on three workers, below a third of the suite's worker time)
    "integration/test_safety_net.py",
    "integration/test_validation.py",  # (499; about 570 with test_deploy_shop's checks and the migration deploy under load)
    "integration/test_daily_verbs.py",  # (596; about 490 without the migration deploy under load, now in test_validation)
    "integration/test_notes.py",  # (456 alone, -n 1, beside other engineers' runs: three deploys, two validations)
    "integration/test_malformed_inputs.py",  # (307)
    "integration/test_least_privilege.py",  # (274)
    "integration/test_external_db.py",  # (223 alone, -n 1: two deploys of the notes app and a cleanup)
    "integration/test_scratch_lock_and_sql.py",  # (169 + test_retention's 127 less its own shop deploy: about 230)
    "integration/test_missing_migrations.py",  # (195)
    "integration/test_validation_syncdb.py",  # (192)
    "molecule/test_cleanup.py",  # (171 before releases two and three became frontend-only deploys)
    "integration/test_components.py",  # (about 120: one build of the notes image, the proxy, two role-level runs)
    "integration/test_dev_any_app.py",  # (95 alone, -n 1, notes wheels cached: one image build, one dev up/down)
    "integration/test_app_tests_own_settings.py",  # (18 alone, -n 1, notes wheels and image cached; more on a fresh clone)
    "lint/test_lint.py",  # (68)
    "molecule/test_default.py",  # (67)
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
