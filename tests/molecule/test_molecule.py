"""Run the Molecule scenarios (converge the real playbooks on this machine, idempotence, testinfra)."""

import os
import subprocess

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import VENV_BIN

SCENARIOS = sorted(p.name for p in (ROOT / "molecule").iterdir() if (p / "molecule.yml").exists())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario):
    env = dict(os.environ, PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]), ANSIBLE_NOCOLOR="1", NO_COLOR="1")
    result = subprocess.run(
        [str(VENV_BIN / "molecule"), "test", "-s", scenario], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    assert "verify" in output and "Executed: Failed" not in output
