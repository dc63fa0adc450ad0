"""The ./deploy command's own interface: verbs, usage errors, nothing run on bad input."""

import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

SEED_VERBS = ["dev", "build", "validate", "deploy", "emergency", "status", "logs", "cleanup", "rollback", "manage", "maintenance"]


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
        (["rollback", "3f2a1b9c0d1e", "a1b2c3d4e5f6"], "give one release"),
        (["dev", "sideways"], "dev takes up, down or status"),
        (["emergency", "--yolo"], "unknown option '--yolo'"),
        (["deploy", "--tags", "build"], "--tags: smart-deploy's playbooks are not tagged"),
        (["deploy", "--skip-tags=backup"], "--skip-tags=backup: smart-deploy's playbooks are not tagged"),
        (["rollback", "-t", "x"], "-t: smart-deploy's playbooks are not tagged"),
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


# --- the lock verb ------------------------------------------------------------------------------------


def deploy_in_a_stand_in_root(*args, tmp_path, cwd=None):
    """Run a copy of ./deploy whose set-up does nothing and whose ansible-playbook prints its arguments:
    what the verb hands to the playbook, with no Docker and no venv."""
    root = tmp_path / "root"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "deploy", root / "deploy")
    (root / "scripts" / "setup.sh").write_text("#!/bin/sh\nexit 0\n")
    (root / "scripts" / "setup.sh").chmod(0o755)
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "activate").write_text('PATH="%s:$PATH"\n' % venv_bin)
    (venv_bin / "ansible-playbook").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (venv_bin / "ansible-playbook").chmod(0o755)
    env = dict(os.environ, SMART_DEPLOY_VENV=str(tmp_path / "venv"))
    return subprocess.run([str(root / "deploy"), *args], capture_output=True, text=True, env=env, timeout=60, cwd=cwd)


@pytest.mark.parametrize(
    "args, handed",
    [
        (["lock", "status"], ["playbooks/lock.yml", "-e", "lock_action=status"]),
        (["lock", "release"], ["playbooks/lock.yml", "-e", "lock_action=release"]),
        (["lock", "release", "--force"], ["playbooks/lock.yml", "-e", "lock_action=release", "-e", "lock_force=true"]),
        (
            ["lock", "release", "-i", "inventories/production", "--force", "-e", "x=1", "-v"],
            ["playbooks/lock.yml", "-e", "lock_action=release", "-e", "lock_force=true", "-i", "inventories/production", "-e", "x=1", "-v"],
        ),
        (["lock", "status", "--limit", "web1"], ["playbooks/lock.yml", "-e", "lock_action=status", "--limit", "web1"]),
    ],
)
def test_lock_verb_hands_the_action_and_force_to_the_playbook(tmp_path, args, handed):
    result = deploy_in_a_stand_in_root(*args, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == handed


def test_lock_release_without_force_does_not_force(tmp_path):
    result = deploy_in_a_stand_in_root("lock", "release", tmp_path=tmp_path)
    assert "lock_force=true" not in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["lock", "status", "--force"], "--force goes with 'lock release' only"),
        (["lock", "release", "--forse"], "unknown option '--forse'"),
        (["lock", "release", "now"], "lock release takes no 'now'"),
        (["lock", "release", "-e"], "option -e needs a value"),
        (["lock", "--force"], "lock takes 'status' or 'release', not '--force'"),
    ],
)
def test_lock_verb_refuses_bad_options_before_anything_runs(tmp_path, args, message):
    result = deploy(*args, tmp_path=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "--help" in result.stderr
    assert not (tmp_path / "venv-must-not-appear").exists()


def test_help_tells_how_to_force_the_release_of_a_live_lock(tmp_path):
    result = deploy("--help", tmp_path=tmp_path)
    assert "lock release --force" in result.stdout


def test_a_playbook_run_with_tags_stops_before_anything_saying_the_playbooks_are_not_tagged(tmp_path):
    # ansible-playbook itself (CI, AWX): --tags would otherwise run only the few steps it names
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))

    def status(*args):
        command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(ROOT / "inventories" / "local"), "playbooks/status.yml"]
        return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)

    refused = status("--tags", "backup")
    assert refused.returncode != 0
    assert "playbooks are not tagged: every step" in refused.stdout
    # without tags, or with --skip-tags (which skips nothing: no task is tagged; molecule passes one), the same
    # run goes past that check (whatever it then finds)
    assert "playbooks are not tagged: every step" not in status().stdout
    assert "playbooks are not tagged: every step" not in status("--skip-tags", "notest").stdout


# --- status --html: the last deploys as a picture ------------------------------------------------------


def test_status_hands_the_html_file_and_how_many_deploys_to_the_playbook(tmp_path):
    page = tmp_path / "deploys.html"
    result = deploy_in_a_stand_in_root("status", "-i", "inventories/production", "--html", str(page), "--last", "3", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "playbooks/status.yml", "-e", "status_html=%s" % page, "-e", "status_last=3", "-i", "inventories/production",
    ]  # fmt: skip
    # a relative path is where the user is, not the repository the playbook runs from
    (tmp_path / "here").mkdir()
    result = deploy_in_a_stand_in_root("status", "--html", "out.html", tmp_path=tmp_path / "2", cwd=tmp_path / "here")
    assert result.stdout.splitlines() == ["playbooks/status.yml", "-e", "status_html=%s" % (tmp_path / "here" / "out.html")]
    # without --html, status is what it was
    assert deploy_in_a_stand_in_root("status", "-e", "history=3", tmp_path=tmp_path / "3").stdout.splitlines() == [
        "playbooks/status.yml", "-e", "history=3",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "args, message",
    [
        (["status", "--html"], "--html needs the HTML file to write"),
        (["status", "--html", "--last", "3"], "--html needs the HTML file to write"),
        (["status", "--html", "/", "--last", "3"], "--html needs a file, '/' is a folder"),
        (["status", "--html", "/no/such/folder/deploys.html"], "--html: the folder of '/no/such/folder/deploys.html' does not exist"),
        (["status", "--html", "/tmp/d.html", "--last", "0"], "--last needs a number of deploys (1 or more), got '0'"),
        (["status", "--html", "/tmp/d.html", "--last"], "--last needs a number"),
        (["status", "--last", "3"], "--last goes with --html FILE"),
        (["status", "--htm", "/tmp/d.html"], "unknown option '--htm'"),
    ],
)
def test_status_refuses_a_bad_html_file_or_count_before_anything_runs(tmp_path, args, message):
    result = deploy(*args, tmp_path=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "--help" in result.stderr
    assert not (tmp_path / "venv-must-not-appear").exists()


def test_help_tells_how_to_draw_the_last_deploys(tmp_path):
    result = deploy("--help", tmp_path=tmp_path)
    assert "--html FILE" in result.stdout and "--last N" in result.stdout and "status --html" in result.stdout


# --- manage and maintenance: what they hand to their playbooks -------------------------------------------------


def deploy_with_a_recording_playbook(*args, tmp_path, exit_code=0, command_exit=None):
    """A copy of ./deploy whose ansible-playbook prints its arguments and the extra-vars files it is given (which
    ./deploy removes afterwards), writes ``command_exit`` to manage_result_file as the manage role does, and exits
    with ``exit_code``."""
    root = tmp_path / "root"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "deploy", root / "deploy")
    (root / "scripts" / "setup.sh").write_text("#!/bin/sh\nexit 0\n")
    (root / "scripts" / "setup.sh").chmod(0o755)
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "activate").write_text('PATH="%s:$PATH"\n' % venv_bin)
    script = [
        "#!/bin/bash",
        'for a in "$@"; do printf "%s\\n" "$a"; done',
        'for a in "$@"; do if [[ "$a" == @* ]]; then f="${a#@}"; printf "== %s %s\\n" "$(stat -c %a "$f")" "$f"; cat "$f";',
        '  rc="$(sed -n "s/^manage_result_file: \\"\\(.*\\)\\"$/\\1/p" "$f")"',
        "  %s" % ('[[ -n "$rc" ]] && echo %d > "$rc"' % command_exit if command_exit is not None else ":"),
        "fi; done",
        "exit %d" % exit_code,
    ]
    (venv_bin / "ansible-playbook").write_text("\n".join(script) + "\n")
    (venv_bin / "ansible-playbook").chmod(0o755)
    env = dict(os.environ, SMART_DEPLOY_VENV=str(tmp_path / "venv"), TMPDIR=str(tmp_path))
    return subprocess.run([str(root / "deploy"), *args], capture_output=True, text=True, env=env, timeout=60)


def test_manage_hands_the_arguments_untemplated_in_a_private_vars_file(tmp_path):
    result = deploy_with_a_recording_playbook(
        "manage", "-i", "inventories/production", "--", "shell", "-c", "print(\"{{ 1 }}\", 'a\\b')", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "playbooks/manage.yml" and lines[1] == "-e" and lines[2].startswith("@")
    assert lines[3:5] == ["-i", "inventories/production"]
    vars_file = lines[2][1:]
    assert "== 600 %s" % vars_file in lines
    assert lines[lines.index("manage_args:") :] == ["manage_args:", '  - !unsafe "shell"', '  - !unsafe "-c"',
                                                    '  - !unsafe "print(\\"{{ 1 }}\\", \'a\\\\b\')"']  # fmt: skip
    assert not list(tmp_path.glob("smart-deploy-vars.*")), "the vars file stays behind"


def test_manage_exits_with_the_commands_exit_code(tmp_path):
    result = deploy_with_a_recording_playbook("manage", "--", "check", "--deploy", tmp_path=tmp_path, exit_code=2, command_exit=3)
    assert result.returncode == 3
    # the playbook failed before the command ran (nothing live, the lock held): its own exit code
    assert deploy_with_a_recording_playbook("manage", "--", "check", tmp_path=tmp_path / "2", exit_code=2).returncode == 2


def test_manage_without_the_lock(tmp_path):
    result = deploy_with_a_recording_playbook("manage", "--no-lock", "--", "showmigrations", tmp_path=tmp_path)
    assert "manage_lock=false" in result.stdout.splitlines()


def test_maintenance_hands_the_state_and_the_message_untemplated(tmp_path):
    result = deploy_with_a_recording_playbook("maintenance", "on", "--message", "Back at {{ 14 }}:00", "-l", "web1", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "playbooks/maintenance.yml" and lines[3:5] == ["-l", "web1"]
    assert 'maintenance: "on"' in lines and 'message: !unsafe "Back at {{ 14 }}:00"' in lines
    off = deploy_with_a_recording_playbook("maintenance", "off", tmp_path=tmp_path / "2").stdout.splitlines()
    assert 'maintenance: "off"' in off and not any(line.startswith("message:") for line in off)


@pytest.mark.parametrize(
    "args, message",
    [
        (["manage"], "manage needs the command after --"),
        (["manage", "migrate"], "manage needs the command after --: ./deploy manage -- migrate --check"),
        (["manage", "--"], "manage needs the command after --"),
        (["manage", "--", "-h"], "manage needs a management command's name after --, got '-h'"),
        (["manage", "--", "shell", "-c", "a\x07b"], "manage: an argument holds a control character"),
        (["manage", "--nolock", "--", "check"], "unknown option '--nolock'"),
        (["maintenance"], "maintenance needs 'on' or 'off'"),
        (["maintenance", "maybe"], "maintenance takes 'on' or 'off', not 'maybe'"),
        (["maintenance", "off", "--message", "x"], "--message goes with 'maintenance on' only"),
        (["maintenance", "on", "--message"], "--message needs the text of the maintenance page"),
        (["maintenance", "on", "now"], "maintenance on takes no 'now'"),
        (["maintenance", "on", "--tags", "x"], "--tags: smart-deploy's playbooks are not tagged"),
    ],
)
def test_manage_and_maintenance_refuse_bad_input_before_anything_runs(tmp_path, args, message):
    result = deploy(*args, tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "--help" in result.stderr
    assert not (tmp_path / "venv-must-not-appear").exists()
