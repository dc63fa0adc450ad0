"""Running a Molecule scenario of this repository, as CI does."""

import os
import subprocess

from tests.conftest import ROOT
from tests.integration.conftest import VENV_BIN


def run_scenario(scenario: str) -> str:
    """`molecule test -s <scenario>`; fails with the end of its output unless every step succeeded."""
    env = dict(os.environ, PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]), ANSIBLE_NOCOLOR="1", NO_COLOR="1")
    result = subprocess.run(
        [str(VENV_BIN / "molecule"), "test", "-s", scenario], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    assert "verify" in output and "Executed: Failed" not in output
    return output
