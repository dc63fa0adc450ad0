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
