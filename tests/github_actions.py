"""Running a GitHub Actions job's steps on this machine the way a runner does: the workflow's, the job's
and the step's ``env:`` with their ``${{ }}`` expressions evaluated from the test's inputs, secrets and
variables, each ``run:`` script in bash as GitHub's default shell runs it (``bash -e {0}``), with
``GITHUB_STEP_SUMMARY`` a file and ``RUNNER_TEMP`` a folder, a failed step skipping the steps after it
unless their ``if:`` says otherwise. ``uses:`` steps are emulated by the caller (``actions``)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# what a job's env may hold: an operand is a quoted literal, true/false or context.name
OPERAND = re.compile(r"^(?:'(?P<literal>[^']*)'|(?P<bool>true|false)|(?P<context>[a-z_]+)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*))$")
# the GitHub default shell when a step names none (https://docs.github.com/actions/reference/workflow-syntax-for-github-actions#defaultsrunshell)
SHELLS = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"]}


def load(path: Path) -> dict:
    workflow = yaml.safe_load(Path(path).read_text())
    # YAML 1.1 reads the key `on` as true
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def evaluate(expression: str, contexts: dict):
    """Value of ``a || b || 'literal'`` as GitHub computes it: the first truthy operand, else the last one.
    Anything else is refused, so the emulation never silently differs from GitHub."""
    value = None
    for operand in (part.strip() for part in expression.split("||")):
        match = OPERAND.match(operand)
        if not match:
            raise ValueError("expression not emulated here: ${{ %s }}" % expression)
        if match["literal"] is not None:
            value = match["literal"]
        elif match["bool"]:
            value = match["bool"] == "true"
        else:
            if match["context"] not in contexts:
                raise ValueError("context %r not emulated here: ${{ %s }}" % (match["context"], expression))
            value = contexts[match["context"]].get(match["name"])
        if value not in (None, "", False, 0):
            return value
    return value


def as_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def substitute(text, contexts: dict) -> str:
    return EXPRESSION.sub(lambda m: as_text(evaluate(m.group(1), contexts)), str(text))


@dataclass
class Step:
    name: str
    outcome: str  # success, failure, skipped
    returncode: int | None = None
    output: str = ""


@dataclass
class JobRun:
    steps: list = field(default_factory=list)

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)

    @property
    def output(self) -> str:
        return "\n".join("--- %s (%s)\n%s" % (s.name, s.outcome, s.output) for s in self.steps)

    @property
    def failed(self) -> bool:
        return any(step.outcome == "failure" for step in self.steps)


def should_run(condition, failed: bool) -> bool:
    if condition is None:
        return not failed
    condition = EXPRESSION.sub(lambda m: m.group(1), str(condition)).strip()
    if condition in ("always()", "!cancelled()"):
        return True
    if condition == "failure()":
        return failed
    if condition == "success()":
        return not failed
    raise ValueError("if: %s not emulated here" % condition)


def run_job(
    workflow_path: Path,
    job_name: str,
    *,
    event: str,
    inputs: dict | None = None,
    secrets: dict | None = None,
    variables: dict | None = None,
    workspace: Path = ROOT,
    runner_temp: Path,
    summary: Path,
    base_env: dict | None = None,
    actions=None,
    timeout: int = 1800,
) -> JobRun:
    """Run the steps of ``job_name``: ``run:`` steps for real in ``workspace``; ``uses:`` steps through
    ``actions(uses, with_, contexts)`` (which raises for an action it does not know)."""
    workflow = load(workflow_path)
    job = workflow["jobs"][job_name]
    runner_temp.mkdir(parents=True, exist_ok=True)
    contexts = {
        "inputs": dict(inputs or {}),
        "secrets": dict(secrets or {}),
        "vars": dict(variables or {}),
        "runner": {"temp": str(runner_temp), "os": "Linux"},
        "github": {"event_name": event, "workspace": str(workspace), "run_id": "4242", "run_attempt": "1", "ref": "refs/heads/main"},
    }
    env = dict(os.environ if base_env is None else base_env)
    env.update(
        CI="true",
        GITHUB_ACTIONS="true",
        GITHUB_EVENT_NAME=event,
        GITHUB_WORKSPACE=str(workspace),
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_RUN_ID="4242",
        GITHUB_RUN_ATTEMPT="1",
        GITHUB_REF="refs/heads/main",
        GITHUB_ACTOR=env.get("GITHUB_ACTOR", "octocat"),
        RUNNER_TEMP=str(runner_temp),
        RUNNER_OS="Linux",
    )
    for scope in (workflow.get("env") or {}, job.get("env") or {}):
        env.update({name: substitute(value, contexts) for name, value in scope.items()})

    run = JobRun()
    for index, step in enumerate(job["steps"]):
        name = step.get("name") or step.get("uses") or "step %d" % index
        if not should_run(step.get("if"), run.failed):
            run.steps.append(Step(name, "skipped"))
            continue
        step_env = dict(env)
        step_env.update({key: substitute(value, contexts) for key, value in (step.get("env") or {}).items()})
        if "uses" in step:
            with_ = {key: substitute(value, contexts) for key, value in (step.get("with") or {}).items()}
            try:
                actions(step["uses"], with_, contexts)
                run.steps.append(Step(name, "success"))
            except AssertionError as exc:
                run.steps.append(Step(name, "failure", output=str(exc)))
            continue
        script = runner_temp / ("step-%d.sh" % index)
        script.write_text(step["run"])
        shell = SHELLS[step.get("shell")]
        result = subprocess.run(
            [*shell, str(script)],
            cwd=workspace / step.get("working-directory", "."),
            env=step_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        script.unlink()
        run.steps.append(Step(name, "success" if result.returncode == 0 else "failure", result.returncode, result.stdout + result.stderr))
    return run
