"""The GitHub Actions workflows (.github/workflows): zizmor finds nothing, GitHub's workflow schema accepts
them, and every command of every ``run:`` step is one this repository really has - each job's steps run,
as a runner would run them, in a copy of the repository where ``./deploy`` is the real command line
(its own parser accepts or refuses the verb and the options) and what it would start (scripts/setup.sh,
the venv's programs: ansible-playbook, pytest) only records how it was called. Each check is shown to
fail on a workflow that breaks it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.github_actions import WORKFLOWS, load, run_job
from tests.integration.conftest import VENV_BIN

WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
DEPLOY_WORKFLOW = WORKFLOWS / "deploy.yml"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def tool(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]), NO_COLOR="1")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def zizmor(path: Path) -> subprocess.CompletedProcess:
    return tool(str(VENV_BIN / "zizmor"), "--offline", "--no-progress", "--format", "plain", str(path))


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess:
    return tool(str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, paths))


def write_workflow(folder: Path, text: str) -> Path:
    path = folder / ".github" / "workflows" / "bad.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# --- what the workflows are -------------------------------------------------------------------------


def test_the_workflows_exist():
    assert {p.name for p in WORKFLOW_FILES} >= {"ci.yml", "deploy.yml"}


def test_zizmor_finds_nothing():
    result = zizmor(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_zizmor_flags_an_input_expanded_in_a_run_step(tmp_path):
    path = write_workflow(
        tmp_path,
        """\
        name: bad
        on:
          workflow_dispatch:
            inputs:
              x: {type: string}
        permissions: {}
        jobs:
          bad:
            runs-on: ubuntu-24.04
            permissions: {}
            steps:
              - run: echo "${{ inputs.x }}"
        """,
    )
    result = zizmor(path.parent)
    assert result.returncode != 0
    assert "template-injection" in result.stdout


def test_the_workflows_validate_against_githubs_schema():
    result = check_jsonschema(*WORKFLOW_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_refuses_a_malformed_workflow(tmp_path):
    path = write_workflow(
        tmp_path, "name: bad\non: push\njobs:\n  bad:\n    runs-on: ubuntu-24.04\n    permissions: {contents: maybe}\n    steps: []\n"
    )
    result = check_jsonschema(path)
    assert result.returncode != 0
    assert "bad.yml" in result.stdout + result.stderr


def test_every_action_is_pinned_to_a_commit_with_its_version_named():
    for path in WORKFLOW_FILES:
        lines = path.read_text().splitlines()
        for line in lines:
            match = re.match(r"^\s*(?:- )?uses:\s*(\S+)(.*)$", line)
            if not match or match[1].startswith("./"):
                continue
            assert PINNED.match(match[1]), "%s: %s is not pinned by a full commit sha" % (path.name, match[1])
            assert re.match(r"^\s+# v\d+(\.\d+)*$", match[2]), "%s: %s has no '# vX' comment" % (path.name, match[1])


def test_the_deploy_workflow_lints_and_tests_as_ci_does():
    """deploy.yml's first stages are ci.yml's jobs, step for step."""
    ci, deploy = load(WORKFLOWS / "ci.yml")["jobs"], load(DEPLOY_WORKFLOW)["jobs"]
    assert list(ci) == ["lint", "test"]
    for name in ci:
        assert deploy[name] == ci[name], name


def test_the_deploy_workflow_is_what_the_product_describes():
    workflow = load(DEPLOY_WORKFLOW)
    assert workflow["permissions"] == {}
    assert workflow["on"]["push"]["branches"] == ["main"]
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["verb"]["type"] == "choice" and inputs["verb"]["options"] == ["deploy", "emergency", "validate", "rollback"]
    assert inputs["restore_db"]["type"] == "boolean" and "release" in inputs
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "test" and workflow["jobs"]["test"]["needs"] == "lint" and deploy["environment"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert "inputs.environment" in deploy["concurrency"]["group"]
    for path in WORKFLOW_FILES:
        for name, job in load(path)["jobs"].items():
            assert set(job.get("permissions", {}).values()) <= {"read", "none"}, (path.name, name)
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, (path.name, name)


def test_no_run_step_expands_an_expression():
    """Inputs, secrets and the github context reach a script through env: only."""
    for path in WORKFLOW_FILES:
        for job in load(path)["jobs"].values():
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), (path.name, step.get("name"))


# --- every run: step's commands are the repository's own ---------------------------------------------

STUB = """#!/bin/bash
{ printf "%s" "${0##*/}"; for a in "$@"; do printf "\\t%s" "$a"; done; printf "\\n"; } >>"$STUB_CALLS"
"""


def setup_options() -> set:
    """The options scripts/setup.sh knows (it ignores others silently, so they are checked here)."""
    return set(re.findall(r'"\$\{1:-\}" == "(--[a-z-]+)"', (ROOT / "scripts" / "setup.sh").read_text()))


def deploy_verbs() -> set:
    usage = subprocess.run([str(ROOT / "deploy"), "help"], capture_output=True, text=True, check=True).stdout
    verbs = usage.split("Verbs:")[1].split("Options")[0]
    return set(re.findall(r"^  ([a-z]+) ", verbs, re.M))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """The repository, with the real ./deploy, a scripts/setup.sh and a venv whose programs only record
    their arguments (one stub per program the real venv has: a program it lacks is not found)."""
    root = tmp_path_factory.mktemp("sandbox")
    for entry in ROOT.iterdir():
        if entry.name not in ("deploy", "scripts", ".venv", ".git"):
            (root / entry.name).symlink_to(entry)
    shutil.copy2(ROOT / "deploy", root / "deploy")
    (root / "scripts").mkdir()
    for script in (ROOT / "scripts").iterdir():
        (root / "scripts" / script.name).symlink_to(script)
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (root / "stub").write_text(STUB)
    (root / "stub").chmod(0o755)
    for program in VENV_BIN.iterdir():
        if program.name != "activate" and os.access(program, os.X_OK) and program.is_file():
            (bin_dir / program.name).symlink_to(root / "stub")
    (root / "scripts" / "setup.sh").unlink()
    (root / "scripts" / "setup.sh").symlink_to(root / "stub")
    (bin_dir / "activate").write_text('export PATH="%s:$PATH"\n' % bin_dir)
    return root


class Recorder:
    def __init__(self, sandbox: Path, tmp_path: Path):
        self.sandbox = sandbox
        self.calls_file = tmp_path / "calls"
        self.calls_file.write_text("")
        self.runner_temp = tmp_path / "runner-temp"
        self.summary = tmp_path / "summary.md"
        self.uploads = []

    def actions(self, uses, with_, contexts):
        name = uses.split("@")[0]
        if name == "actions/upload-artifact":
            self.uploads.append(with_["path"])
        else:
            assert name in ("actions/checkout", "actions/setup-python"), "action %s not emulated" % uses

    def run(self, path: Path, job: str, **kwargs):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMART_DEPLOY_", "GITHUB_", "ANSIBLE_"))}
        env["STUB_CALLS"] = str(self.calls_file)
        return run_job(path, job, workspace=self.sandbox, runner_temp=self.runner_temp, summary=self.summary,
                       base_env=env, actions=self.actions, timeout=120, **kwargs)  # fmt: skip

    def calls(self) -> list:
        return [line.split("\t") for line in self.calls_file.read_text().splitlines()]


def problems_of(recorder: Recorder) -> list:
    """What a recorded command line would get wrong on a real runner."""
    found = []
    for program, *args in recorder.calls():
        if program == "setup.sh":
            found += ["scripts/setup.sh does not know %s" % a for a in args if a not in setup_options()]
        elif program == "ansible-playbook":
            if not (ROOT / args[0]).is_file():
                found.append("no playbook %s" % args[0])
        elif program == "python" and args[:2] == ["-m", "pytest"]:
            paths = [a for a in args[2:] if "/" in a and not a.startswith("-")]
            found += ["pytest: no %s" % p for p in paths if not (ROOT / p.split("::")[0]).exists()]
    return found


def static_deploy_verbs(path: Path) -> list:
    """Every literal verb a run: script gives ./deploy."""
    verbs = []
    for job in load(path)["jobs"].values():
        for step in job.get("steps", []):
            for line in step.get("run", "").splitlines():
                for match in re.finditer(r"\./deploy\s+([^\s;|&)]+)", line):
                    word = shlex.split(match[1])[0] if match[1] else ""
                    if not word.startswith("$"):
                        verbs.append(word)
    return verbs


def test_every_deploy_verb_in_the_workflows_is_one_deploy_help_lists():
    for path in WORKFLOW_FILES:
        for verb in static_deploy_verbs(path):
            assert verb in deploy_verbs(), "%s: ./deploy %s" % (path.name, verb)


def test_an_unknown_verb_is_caught_statically(tmp_path):
    path = write_workflow(tmp_path, "on: push\njobs:\n  x:\n    steps:\n      - run: ./deploy deplyo -i inventories/local\n")
    assert [v for v in static_deploy_verbs(path) if v not in deploy_verbs()] == ["deplyo"]


CI_JOBS = [(p, job) for p in WORKFLOW_FILES for job in load(p)["jobs"] if (p, job) != (DEPLOY_WORKFLOW, "deploy")]


@pytest.mark.parametrize("path, job", CI_JOBS, ids=["%s:%s" % (p.name, j) for p, j in CI_JOBS])
def test_ci_job_commands_exist(sandbox, tmp_path, path, job):
    recorder = Recorder(sandbox, tmp_path)
    run = recorder.run(path, job, event="pull_request")
    assert not run.failed, run.output
    assert recorder.calls(), "the job ran nothing of the repository's"
    assert problems_of(recorder) == []


VAULT = "vault-pw-for-the-test"
DISPATCH = {"release": "", "restore_db": False, "environment": "production"}
DISPATCHES = [
    ("push", {}),
    *[("workflow_dispatch", dict(DISPATCH, verb=verb)) for verb in ("deploy", "emergency", "validate", "rollback")],
    ("workflow_dispatch", dict(DISPATCH, verb="deploy", release="3f2a1b9c0d1e")),
    ("workflow_dispatch", dict(DISPATCH, verb="rollback", release="3f2a1b9c0d1e", restore_db=True)),
]


@pytest.mark.parametrize("event, inputs", DISPATCHES, ids=["%s-%s" % (e, "-".join(map(str, i.values()))) for e, i in DISPATCHES])
def test_deploy_job_runs_the_verb_with_the_repositorys_own_command(sandbox, tmp_path, event, inputs):
    recorder = Recorder(sandbox, tmp_path)
    secrets = {"SMART_DEPLOY_VAULT_PASSWORD": VAULT, "SMART_DEPLOY_SSH_KEY": "-----BEGIN KEY-----"}
    run = recorder.run(DEPLOY_WORKFLOW, "deploy", event=event, inputs=inputs, secrets=secrets,
                       variables={"SMART_DEPLOY_SSH_KNOWN_HOSTS": "shop-prod-1 ssh-ed25519 AAAA"})  # fmt: skip
    assert not run.failed, run.output
    assert problems_of(recorder) == []
    playbooks = [args for program, *args in recorder.calls() if program == "ansible-playbook"]
    assert len(playbooks) == 1, recorder.calls()
    args = playbooks[0]
    verb = inputs.get("verb", "deploy")
    assert args[0] == "playbooks/%s.yml" % ("deploy" if verb == "emergency" else verb)
    assert args[args.index("-i") + 1] == "inventories/production"
    assert ("smart_deploy_emergency=true" in args) == (verb == "emergency")
    vault_file = Path(args[args.index("--vault-password-file") + 1])
    assert vault_file.parent == recorder.runner_temp and "--private-key" in args
    # the secrets' files are gone once the step ended
    assert not vault_file.exists() and not list(recorder.runner_temp.glob("smart-deploy-*.*"))
    if inputs.get("release"):
        assert ("release=" if verb == "rollback" else "smart_deploy_release=") + inputs["release"] in args
    assert ("restore_db=true" in args) == bool(inputs.get("restore_db"))
    assert recorder.uploads == [str(recorder.runner_temp / "smart-deploy-logs") + "/"]
    assert VAULT not in run.output


@pytest.mark.parametrize(
    "script, problem",
    [
        ("./deploy deplyo -i inventories/local", "unknown verb 'deplyo'"),
        ("./deploy rollback --restore-database", "unknown option '--restore-database'"),
        ("./deploy deploy --tags build", "not tagged"),
        ("scripts/publish.sh", "No such file or directory"),
        (".venv/bin/no-such-tool --version", "No such file or directory"),
    ],
)
def test_a_command_the_repository_lacks_fails_its_step(sandbox, tmp_path, script, problem):
    path = write_workflow(tmp_path, "on: push\njobs:\n  x:\n    steps:\n      - run: %s\n" % script)
    recorder = Recorder(sandbox, tmp_path)
    run = recorder.run(path, "x", event="push")
    assert run.failed and problem in run.output


@pytest.mark.parametrize(
    "script, problem",
    [
        ("scripts/setup.sh --no-dokcer", "scripts/setup.sh does not know --no-dokcer"),
        ("./deploy test -q tests/unti", "pytest: no tests/unti"),
        (".venv/bin/python -m pytest tests/lint/test_nothing.py", "pytest: no tests/lint/test_nothing.py"),
    ],
)
def test_an_option_the_command_ignores_is_still_caught(sandbox, tmp_path, script, problem):
    path = write_workflow(tmp_path, "on: push\njobs:\n  x:\n    steps:\n      - run: %s\n" % script)
    recorder = Recorder(sandbox, tmp_path)
    run = recorder.run(path, "x", event="push")
    assert not run.failed, run.output
    assert problem in problems_of(recorder)
