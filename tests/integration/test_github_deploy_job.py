"""The deploy job of .github/workflows/deploy.yml run here step by step as a GitHub runner runs it
(tests/github_actions.py: the same scripts, the same env names with the workflow's expressions evaluated
from this test's inputs, secrets and variables, GITHUB_STEP_SUMMARY a file, RUNNER_TEMP a folder), against
this test's own deployment of the shop: its inventory is a folder written here whose secrets are in a
vaulted file, opened with the vault password given as the workflow's secret. One deploy."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from tests.conftest import ROOT
from tests.github_actions import WORKFLOWS, run_job

SECRET_VARS = ("smart_deploy_db_password", "smart_deploy_django_secret_key", "smart_deploy_app_secret_env")


class Runner:
    """A runner's folders for one job, and what its uses: steps did."""

    def __init__(self, workdir: Path):
        self.temp = workdir / "runner-temp"
        # the file the Deployment searches for secrets when it is removed
        self.summary = workdir / "step-summary.md"
        self.uploads = []

    def actions(self, uses, with_, contexts):
        name = uses.split("@")[0]
        if name == "actions/upload-artifact":
            self.uploads.append(Path(with_["path"]))
        else:  # checkout: the job runs in this repository; setup-python: this machine's Python
            assert name in ("actions/checkout", "actions/setup-python"), "action %s not emulated" % uses

    def run(self, inputs: dict, vault_password: str = "", inventory: str = "") -> object:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMART_DEPLOY_", "GITHUB_", "ANSIBLE_"))}
        return run_job(
            WORKFLOWS / "deploy.yml",
            "deploy",
            event="workflow_dispatch",
            inputs=dict({"environment": "production", "release": "", "restore_db": False}, **inputs),
            secrets={"SMART_DEPLOY_VAULT_PASSWORD": vault_password},
            variables={"SMART_DEPLOY_INVENTORY": inventory},
            runner_temp=self.temp,
            summary=self.summary,
            base_env=env,
            actions=self.actions,
        )


def write_inventory(deployment, vault_password: str) -> Path:
    """An inventory folder for the deployment: its settings in group_vars, its secrets vaulted."""
    inventory = deployment.workdir / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    localhost = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"app_servers": {"hosts": {"localhost": localhost}}}))
    # the shop's settings (components, routes, health endpoints) as the embedded inventory has them, then this
    # deployment's own (files of group_vars/all load in name order: a later one overrides)
    shutil.copy(ROOT / "inventories" / "local" / "group_vars" / "all" / "app.yml", inventory / "group_vars" / "all" / "app.yml")
    values = json.loads(deployment.vars_file.read_text())
    settings = {k: v for k, v in values.items() if k not in SECRET_VARS}
    vaulted = {k: values[k] for k in SECRET_VARS}
    (inventory / "group_vars" / "all" / "deployment.yml").write_text(yaml.safe_dump(settings))
    vault = VaultLib([("default", VaultSecret(vault_password.encode()))])
    (inventory / "group_vars" / "all" / "vault.yml").write_bytes(vault.encrypt(yaml.safe_dump(vaulted)))
    assert not deployment.leaks((inventory / "group_vars" / "all" / "vault.yml").read_text())
    return inventory


@pytest.mark.parametrize(
    "inputs, inventory, message",
    [
        ({"verb": "deploy; touch /tmp/pwned"}, "inventories/production", "verb must be deploy, emergency, validate or rollback"),
        ({"verb": "status"}, "inventories/production", "verb must be deploy, emergency, validate or rollback, got 'status'"),
        ({"verb": "rollback", "release": "../../etc/passwd"}, "inventories/production", "release must be a release id"),
        ({"verb": "deploy", "restore_db": True}, "inventories/production", "restore_db goes with the verb rollback only"),
        ({"verb": "deploy"}, "inventories/../../etc", "SMART_DEPLOY_INVENTORY must be a path"),
    ],
)
def test_a_bad_input_is_refused_before_anything_runs(tmp_path, inputs, inventory, message):
    runner = Runner(tmp_path)
    run = runner.run(inputs, vault_password="unused", inventory=inventory)
    check = run.step("Check the inputs")
    assert check.outcome == "failure" and check.returncode == 2
    assert message in check.output
    for name in ("Check out", "Set up (venv, packages, collections, Docker engine, base images)", "smart-deploy"):
        assert run.step(name).outcome == "skipped", name
    assert "### smart-deploy: refused" in runner.summary.read_text() and message in runner.summary.read_text()
    assert not (runner.temp / "smart-deploy-logs").exists()
    assert not (tmp_path / "pwned").exists() and not Path("/tmp/pwned").exists()


@pytest.fixture(scope="module")
def deployed(module_deployment):
    """The shop committed as release 1 and deployed by the workflow's deploy job (verb deploy)."""
    deployment = module_deployment
    deployment.release = deployment.commit("release 1")
    deployment.vault_password = "vault-%s" % secrets.token_hex(8)
    deployment.inventory = write_inventory(deployment, deployment.vault_password)
    deployment.runner = Runner(deployment.workdir)
    deployment.run = deployment.runner.run({"verb": "deploy"}, deployment.vault_password, str(deployment.inventory))
    return deployment


def test_the_deploy_job_deploys(deployed):
    run = deployed.run
    assert not run.failed, run.output[-10000:]
    assert [s.outcome for s in run.steps] == ["success"] * len(run.steps)
    # this deployment's own state folder and proxy: the release is live and the app answers
    assert deployed.releases()["current"] == deployed.release
    assert deployed.get_json("/api/health/")[0] == 200


def test_the_step_summary_shows_the_deploy(deployed):
    summary = deployed.runner.summary.read_text()
    assert "### SMART-DEPLOY deploy of %s" % deployed.name in summary
    assert "| release | %s |" % deployed.release in summary
    assert "| outcome | live |" in summary
    assert "### smart-deploy: refused" not in summary  # (a task name of the picture may hold the word)


def test_the_run_log_the_artifact_step_uploads_exists(deployed):
    assert deployed.runner.uploads == [deployed.runner.temp / "smart-deploy-logs"]
    logs = sorted(deployed.runner.uploads[0].glob("*.json"))
    assert len(logs) == 1, logs
    record = json.loads(logs[0].read_text())
    assert record["playbook"] == "deploy.yml"
    assert record["summary"]["release"] == deployed.release and record["summary"]["outcome"] == "live"
    assert not deployed.leaks(logs[0].read_text())


def test_the_secrets_stay_secret(deployed):
    assert not list(deployed.runner.temp.glob("smart-deploy-vault.*")), "the vault password file was left behind"
    assert deployed.vault_password not in deployed.run.output
    assert not deployed.leaks(deployed.run.output)
    assert deployed.vault_password not in deployed.runner.summary.read_text()
