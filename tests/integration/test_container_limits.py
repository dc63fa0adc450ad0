"""The containers smart-deploy starts for a moment run within memory, CPU and process limits, as the real
Docker engine records them, and a test run removes its scratch database and network itself. No
deployment needed: a scratch PostgreSQL, and django_test with a stand-in suite in the Python base image."""

from __future__ import annotations

import json
import secrets
import threading
import time

import pytest
from ansible.module_utils.smart_deploy.oneoff import Limits
from ansible.module_utils.smart_deploy.scratch import Scratch
from ansible.module_utils.testing import patch_module_args

from tests.conftest import load_module
from tests.integration.conftest import run

DB_IMAGE = "postgres:15-bookworm"
APP_IMAGE = "python:3.11-slim-bookworm"
GIB = 1024**3


def host_config(container: str) -> dict:
    result = run(["docker", "inspect", "-f", "{{json .HostConfig}}", container])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def labelled(app: str) -> dict:
    """Containers and networks labelled with ``app``, and containers named after it."""
    label = ["--filter", "label=smart-deploy.app=%s" % app]
    return {
        "containers": run(["docker", "ps", "-aq", *label]).stdout.split(),
        "networks": run(["docker", "network", "ls", "-q", *label]).stdout.split(),
        "named": run(["docker", "ps", "-aq", "--filter", "name=^%s-" % app]).stdout.split(),
    }


@pytest.fixture
def app():
    name = "sdt" + secrets.token_hex(3)
    yield name
    found = labelled(name)
    if found["containers"] or found["named"]:
        run(["docker", "rm", "-f", "-v", *set(found["containers"] + found["named"])])
    for network in found["networks"]:
        run(["docker", "network", "rm", network])


def test_scratch_database_runs_within_its_memory_cpu_and_process_limits(app):
    scratch = Scratch("docker", app, DB_IMAGE, limits=Limits("1g", 1.5, 512))
    try:
        scratch.start()
        config = host_config(scratch.container)
        assert config["Memory"] == GIB
        assert config["NanoCpus"] == 1_500_000_000
        assert config["PidsLimit"] == 512
        assert config["ShmSize"] == 256 * 1024**2, "the memory limit stays above PostgreSQL's shared memory"
    finally:
        left = scratch.remove()
    assert left == {"containers": [], "networks": []}


def test_django_test_runs_suite_and_database_within_limits_and_removes_them(app, capsys):
    """django_test's two containers, inspected while the (stand-in) suite runs: both limited as asked;
    afterwards nothing labelled with the app nor named after it is left."""
    seen, stop = {}, threading.Event()

    def watch():
        while not stop.is_set():
            for container in run(["docker", "ps", "-q", "--filter", "label=smart-deploy.app=%s" % app]).stdout.split():
                inspected = run(["docker", "inspect", "-f", "{{.Name}} {{json .HostConfig}}", container])
                if inspected.returncode == 0:
                    name, config = inspected.stdout.split(" ", 1)
                    seen[name.lstrip("/")] = json.loads(config)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    module = load_module("django_test")
    args = {"image": APP_IMAGE, "app_name": app, "db_image": DB_IMAGE, "command": ["sh", "-c", "sleep 4; echo Ran 1 test"],
            "oneoff_memory": "768m", "oneoff_cpus": 1.25, "oneoff_pids_limit": 128,
            "scratch_memory": "1g", "scratch_cpus": 1.5, "scratch_pids_limit": 256}  # fmt: skip
    try:
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                module.main()
    finally:
        stop.set()
        watcher.join()
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] and result["tests"] == 1, result
    suite = [name for name in seen if name.startswith("%s-tests-oneoff-" % app)]
    database = [name for name in seen if name.startswith("%s-tests-scratch-db-" % app)]
    assert len(suite) == 1 and len(database) == 1, sorted(seen)
    assert (seen[suite[0]]["Memory"], seen[suite[0]]["NanoCpus"], seen[suite[0]]["PidsLimit"]) == (768 * 1024**2, 1_250_000_000, 128)
    assert (seen[database[0]]["Memory"], seen[database[0]]["NanoCpus"], seen[database[0]]["PidsLimit"]) == (GIB, 1_500_000_000, 256)
    assert result["scratch"]["left"] == {"containers": [], "networks": []}
    assert labelled(app) == {"containers": [], "networks": [], "named": []}, "the test run left its scratch database or network"
