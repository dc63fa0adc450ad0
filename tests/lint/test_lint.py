"""Static checks a reviewer would run: every playbook passes --syntax-check, the whole tree passes
ansible-lint's production profile, and the Python passes ruff."""

import os
import subprocess

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import VENV_BIN

PLAYBOOKS = sorted(p.name for p in (ROOT / "playbooks").glob("*.yml"))


def run(*cmd):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]))
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_syntax(playbook):
    result = run(str(VENV_BIN / "ansible-playbook"), "--syntax-check", "playbooks/" + playbook)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production_profile():
    result = run(str(VENV_BIN / "ansible-lint"), "--nocolor")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert "Profile 'production' was required, and it passed" in result.stderr + result.stdout


PYTHON_TREES = [d for d in ("library", "module_utils", "plugins", "scripts", "tests", "bench", "examples") if (ROOT / d).is_dir()]


def test_ruff_lint():
    result = run(str(VENV_BIN / "ruff"), "check", *PYTHON_TREES)
    assert result.returncode == 0, result.stdout


def test_ruff_format():
    result = run(str(VENV_BIN / "ruff"), "format", "--check", *PYTHON_TREES)
    assert result.returncode == 0, result.stdout


MODULES = sorted(p.stem for p in (ROOT / "library").glob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_module_documentation_renders(module):
    """ansible-doc parses DOCUMENTATION (with its fragments), EXAMPLES and RETURN of every module."""
    result = run(str(VENV_BIN / "ansible-doc"), "-M", "library", module)
    assert result.returncode == 0 and "ERROR" not in result.stderr + result.stdout, result.stderr[-3000:]
    for section in ("EXAMPLES:", "RETURN VALUES:"):
        assert section in result.stdout, section


@pytest.mark.parametrize("plugin", sorted(p.stem for p in (ROOT / "plugins" / "lookup").glob("*.py")))
def test_lookup_documentation_renders(plugin):
    result = run(str(VENV_BIN / "ansible-doc"), "-t", "lookup", plugin)
    assert result.returncode == 0 and "ERROR" not in result.stderr + result.stdout, result.stderr[-3000:]
    for section in ("EXAMPLES:", "RETURN VALUES:"):
        assert section in result.stdout, section


def test_every_molecule_scenario_has_a_test():
    scenarios = sorted(p.name for p in (ROOT / "molecule").iterdir() if (p / "molecule.yml").exists())
    for scenario in scenarios:
        assert (ROOT / "tests" / "molecule" / ("test_%s.py" % scenario)).exists(), scenario
