"""The ./deploy command's own interface: verbs, usage errors, nothing run on bad input."""

import os
import subprocess

import pytest

from tests.conftest import ROOT

SEED_VERBS = ["dev", "build", "validate", "deploy", "emergency", "status", "logs", "cleanup", "rollback"]


def deploy(*args, tmp_path):
    # a venv path that does not exist: if the command ever reached the set-up, it would create it
    env = dict(os.environ, SMART_DEPLOY_VENV=str(tmp_path / "venv-must-not-appear"))
    return subprocess.run([str(ROOT / "deploy"), *args], capture_output=True, text=True, env=env, timeout=60)


def test_help_lists_every_verb_and_what_exists(tmp_path):
    result = deploy("--help", tmp_path=tmp_path)
    assert result.returncode == 0
    for verb in SEED_VERBS:
        assert "\n  %s " % verb in result.stdout, verb


@pytest.mark.parametrize(
    "args, message",
    [
        (["frobnicate"], "unknown verb 'frobnicate'"),
        (["deploy", "--bogus"], "unknown option '--bogus'"),
        (["deploy", "-i"], "option -i needs a value"),
        (["status", "extra-word"], "unknown option 'extra-word'"),
        (["logs", "--lines", "many"], "--lines needs a number"),
        (["lock", "smash"], "lock takes 'status' or 'release'"),
        (["lock"], "lock needs 'status' or 'release'"),
        (["setup", "--fast"], "setup takes no options"),
        (["rollback", "../etc"], "'../etc' is not a release id"),
        (["rollback", "--frobnicate"], "unknown option '--frobnicate'"),
        (["dev", "sideways"], "dev takes up, down or status"),
        (["emergency", "--yolo"], "unknown option '--yolo'"),
    ],
)
def test_bad_input_gets_usage_and_nonzero_exit_before_anything_runs(tmp_path, args, message):
    result = deploy(*args, tmp_path=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "--help" in result.stderr
    assert not (tmp_path / "venv-must-not-appear").exists()


def test_no_verb_prints_usage(tmp_path):
    result = deploy(tmp_path=tmp_path)
    assert result.returncode == 2 and "Usage:" in result.stderr


def test_every_seed_verb_exists(tmp_path):
    text = (ROOT / "deploy").read_text()
    for verb in SEED_VERBS:
        assert "not available yet" not in text
        assert verb in text
