"""The set-up stops before changing anything when Docker can neither be reached nor installed."""

import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT


def as_unprivileged_user():
    """The command prefix that runs as a user who is not root (nobody), or nothing if we are not root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop root")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_without_docker_and_without_root_it_stops_before_changing_anything(tmp_path):
    tmp_path.chmod(0o777)
    venv = tmp_path / "venv"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DOCKER_HOST": "unix://%s/no-docker-here.sock" % tmp_path,
        "SMART_DEPLOY_VENV": str(venv),
    }
    result = subprocess.run(
        [*as_unprivileged_user(), "bash", str(ROOT / "scripts" / "setup.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "No Docker engine answers" in result.stderr
    assert "install Docker Engine" in result.stderr
    assert not venv.exists(), "the set-up created a venv before finding out it could not finish"
