"""The AWX job templates (awx/) launched the way AWX launches them (tests/integration/awx_launch.py): the
survey answers checked at launch as AWX checks them, a private data dir built as AWX builds it, and
``ansible-runner run`` for real against this module's own deployment of the shop: deploy, deploy again,
status, rollback; the job's rc and status are what AWX would show. A survey answer holding Jinja is never
templated; an answer outside the survey is refused before anything runs. Two deploys and one rollback in all."""

from __future__ import annotations

import json
import secrets

import pytest
import yaml
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret

from tests.conftest import ROOT
from tests.integration.awx_launch import (
    AwxLauncher,
    Credential,
    LaunchRefused,
    credential_type,
    job_templates,
    launch_extra_vars,
    safe_dump,
)
from tests.integration.conftest import SHOP_SECRET_ENV

TEMPLATES = job_templates()
INJECTION = "{{ lookup('pipe', 'id') }}"


def ui_answers(template: dict, **changes) -> dict:
    """What AWX's launch form sends: every question's default (as the form shows it), with a person's changes."""
    answers = {q["variable"]: q["default"] for q in template["survey_spec"].get("spec", []) if q.get("default") not in (None, "")}
    answers.update(changes)
    return answers


@pytest.fixture(scope="module")
def awx(module_deployment, tmp_path_factory):
    """A launcher for this module's deployment: the inventory holds its settings, the credential its secrets
    (a vault password of its own too: a canary like the others)."""
    deployment = module_deployment
    settings = json.loads(deployment.vars_file.read_text())
    # the secrets come from the credential; whether the app's tests run, from the deploy survey
    for name in ("smart_deploy_db_password", "smart_deploy_django_secret_key", "smart_deploy_actor", "smart_deploy_app_tests"):
        settings.pop(name)
    settings["smart_deploy_app_secret_env"] = dict(SHOP_SECRET_ENV)
    # the inventory as AWX imports it from the project (an inventory source of inventories/local): its hosts, the
    # shop's settings of group_vars/all/app.yml (the secrets' lookups are the credential's job), this deployment's own
    inventory = {
        "all": {"hosts": {}, "vars": yaml.safe_load((ROOT / "inventories" / "local" / "group_vars" / "all" / "app.yml").read_text())},
        "app_servers": {
            "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}},
            "vars": settings,
        },
    }
    # the shop's payment key as an inline !vault value of the inventory, the way AWX imports one (`__ansible_vault`),
    # opened with the password of AWX's own Vault credential on the template
    deployment.vault_password = "CanaryVault-%s" % secrets.token_hex(8)
    vault = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(deployment.vault_password.encode()))])
    settings["smart_deploy_app_secret_env"]["SHOP_PAYMENT_KEY"] = {"__ansible_vault": vault.encrypt(deployment.app_secret).decode()}
    credential = Credential(credential_type(), {"db_password": deployment.db_password, "django_secret_key": deployment.secret_key})
    # AWX_TASK_ENV stands in: where the JSON run logs go (Deployment.files_written searches them for secrets)
    launcher = AwxLauncher(
        tmp_path_factory.mktemp("awx"),
        inventory,
        credential,
        vault_password=deployment.vault_password,
        env={"SMART_DEPLOY_LOG_DIR": str(deployment.workdir / "logs")},
    )
    launcher.deployment = deployment
    return launcher


def launch(awx, verb: str, **answers):
    """Launch the template of ``verb`` as a person does from the launch form; the job holds no secret anywhere."""
    job = awx.launch(TEMPLATES[verb], ui_answers(TEMPLATES[verb], **answers))
    text = job.all_text()
    assert not awx.deployment.leaks(text), "the %s job's output or artifacts hold secrets %s" % (verb, awx.deployment.leaks(text))
    assert awx.deployment.vault_password not in text
    assert "uid=" not in text, "something ran `id`:\n%s" % job.stdout[-4000:]
    return job


def successful(job) -> str:
    assert (job.status, job.rc) == ("successful", 0), "%s: %s rc %s\n%s\n%s" % (
        job.command,
        job.status,
        job.rc,
        job.stdout[-8000:],
        job.process.stderr[-2000:],
    )
    return job.stdout


def live_release(deployment) -> str:
    return deployment.get_json("/api/health/")[1]["release"]


# --- launch-time validation, before anything runs (AWX's HTTP 400) -----------------------------------------------
def test_answers_outside_the_survey_are_refused_before_a_job_exists(awx):
    cases = {
        "rollback": ({"rollback_restore_db": "maybe"}, "Value maybe for 'rollback_restore_db' expected to be one of ['yes', 'no']."),
        "logs": ({"logs_lines": 0}, "'logs_lines' value 0 is too small (must be at least 1)."),
        "status": ({"status_history": "10"}, "Value 10 for 'status_history' expected to be an integer."),
        "deploy": (
            {"smart_deploy_release": "r" * 65},
            "'smart_deploy_release' value %s is too large (must be no more than 64)." % ("r" * 65),
        ),
    }
    for verb, (answers, message) in cases.items():
        with pytest.raises(LaunchRefused) as refused:
            awx.launch(TEMPLATES[verb], ui_answers(TEMPLATES[verb], **answers))
        assert refused.value.errors == {"variables_needed_to_start": [message]}, verb
    # a required question left out through the API (the form always sends it)
    with pytest.raises(LaunchRefused) as refused:
        awx.launch(TEMPLATES["status"], {})
    assert refused.value.errors == {"variables_needed_to_start": ["'status_history' value missing"]}
    assert awx.next_id == 1 and not list(awx.workdir.iterdir()), "no job was created, no private data dir written"


def test_the_job_files_are_the_ones_awx_writes(awx):
    """The private data dir of a rollback to a release with Jinja in its id (built only: nothing runs here)."""
    template = TEMPLATES["rollback"]
    extra_vars = launch_extra_vars(template, ui_answers(template, rollback_release=INJECTION))
    folder = awx.build_private_data_dir(template, 99, extra_vars, timeout=60)
    extravars = (folder / "env" / "extravars").read_text()
    assert "!unsafe 'rollback_release': !unsafe '%s'" % INJECTION.replace("'", "''") in extravars
    assert "!unsafe 'rollback_restore_db': !unsafe 'no'" in extravars
    assert (folder / "env" / "extravars").stat().st_mode & 0o777 == 0o600
    assert not (folder / "project" / ".git").exists() and (folder / "project" / "ansible.cfg").is_file()
    assert not any(part in (".venv", ".secrets", "__pycache__") for path in (folder / "project").rglob("*") for part in path.parts)
    assert (folder / "inventory" / "hosts").stat().st_mode & 0o777 == 0o700
    cmdline = (folder / "env" / "cmdline").read_text()
    assert cmdline.startswith("-u root --ask-vault-pass -e @%s/env/tmp" % folder)
    assert json.loads((folder / "env" / "passwords").read_text()) == {r"Vault password:\s*?$": awx.deployment.vault_password}
    secrets_file = cmdline.split("@", 1)[1]
    assert "!unsafe 'smart_deploy_db_password'" in open(secrets_file).read()
    envvars = json.loads((folder / "env" / "envvars").read_text())
    assert envvars["JOB_ID"] == "99" and envvars["ANSIBLE_ROLES_PATH"].split(":")[:2] == [str(folder / "requirements_roles"), "roles"]
    # a fixed extra var of the template itself stays templatable (AWX's ALLOW_JINJA_IN_EXTRA_VARS = template)
    assert safe_dump({"smart_deploy_emergency": True, "x": "{{ y }}"}, safe_dict={"smart_deploy_emergency": True}) == (
        "smart_deploy_emergency: true\n!unsafe 'x': !unsafe '{{ y }}'\n"
    )


# --- launched for real ------------------------------------------------------------------------------------------
def test_deploy_job(awx):
    deployment = awx.deployment
    deployment.release_1 = deployment.commit("release 1")
    # the app's tests are the slow part and not the point here: the person answers "no"
    out = successful(launch(awx, "deploy", smart_deploy_app_tests="no"))
    assert "SMART-DEPLOY deploy of %s" % deployment.name in out, "the summary table is in the job's output"
    assert "Run the app's tests" not in out, "the survey's 'no' (a string, !unsafe) reached the playbook as no"
    assert live_release(deployment) == deployment.release_1
    assert deployment.releases()["current"] == deployment.release_1
    history = deployment.releases()
    web = next(entry for entry in history["releases"] if entry["id"] == history["current"])["containers"]["backend"]
    assert deployment.run_in(web, "printenv", "SHOP_PAYMENT_KEY").strip() == deployment.app_secret, "the vaulted value, opened"


def test_a_second_deploy_job(awx):
    deployment = awx.deployment
    deployment.write("frontend/public/style.css", "body { font-family: monospace; } /* launched from AWX */\n")
    deployment.release_2 = deployment.commit("monospace")
    successful(launch(awx, "deploy", smart_deploy_app_tests="no"))
    assert deployment.releases()["current"] == deployment.release_2
    assert "launched from AWX" in deployment.http("/style.css")[1]


def test_status_job_names_the_live_release(awx):
    deployment = awx.deployment
    out = successful(launch(awx, "status", status_history=5))
    assert "live release: %s" % deployment.release_2 in out
    assert "previous good release: %s" % deployment.release_1 in out
    assert "%s  live" % deployment.release_2 in out and "by pytest" in out, "the AWX user who launched the deploys (awx_user_name)"


def test_rollback_job_to_the_first_release_code_only(awx):
    deployment = awx.deployment
    rows_before = deployment.snapshot()["rows"]
    out = successful(launch(awx, "rollback", rollback_release=deployment.release_1, rollback_restore_db="no"))
    assert "rolled back to %s" % deployment.release_1 in out
    assert deployment.releases()["current"] == deployment.release_1
    assert "launched from AWX" not in deployment.http("/style.css")[1]
    assert live_release(deployment) == deployment.release_1
    assert deployment.snapshot()["rows"] == rows_before, "code only: the database was not restored"


def test_logs_job_with_the_form_as_it_opens(awx):
    """Component and since left empty, as the form opens: AWX sends the empty defaults (`!unsafe ''`, which
    ansible-core 2.19 reads as null) and the job shows every container's newest lines."""
    job = launch(awx, "logs")
    assert job.extra_vars["logs_component"] == "" and job.extra_vars["logs_since"] == ""
    out = successful(job)
    assert "%s-proxy" % awx.deployment.name in out and "GET /api/health/" in out


@pytest.mark.parametrize(
    "verb, answers",
    [("rollback", {"rollback_release": INJECTION, "rollback_restore_db": "no"}), ("logs", {"logs_since": INJECTION})],
    ids=["rollback release id", "logs since"],
)
def test_an_answer_holding_jinja_is_not_templated(awx, verb, answers):
    deployment = awx.deployment
    job = launch(awx, verb, **answers)  # launch() asserts that `id` never ran ("uid=" nowhere)
    assert (job.status, job.rc) == ("failed", 2), job.stdout[-6000:]
    assert "Bad input, nothing was changed" in job.stdout and INJECTION in job.stdout, (
        "the refusal names the literal:\n%s" % job.stdout[-6000:]
    )
    assert deployment.releases()["current"] == deployment.release_1 and live_release(deployment) == deployment.release_1


def test_a_release_id_of_digits_is_refused_not_guessed(awx):
    """ansible-core 2.19 reads AWX's `!unsafe '0123'` with YAML's implicit types: the octal number 83. The
    rollback must not go to whatever release that number names: the input checks refuse a release id that is
    not text, before anything changes."""
    deployment = awx.deployment
    job = launch(awx, "rollback", rollback_release="0123", rollback_restore_db="no")
    assert (job.status, job.rc) == ("failed", 2), job.stdout[-6000:]
    assert "Bad input, nothing was changed" in job.stdout and "rollback_release (the rollback target) must be a release id" in job.stdout
    assert deployment.releases()["current"] == deployment.release_1 and live_release(deployment) == deployment.release_1
