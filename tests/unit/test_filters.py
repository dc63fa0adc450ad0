"""Jinja filters: URL parts quoted whole, secrets masked, row values hidden."""

import importlib.util
from urllib.parse import unquote, urlsplit

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("smart_deploy_filters", ROOT / "plugins" / "filter" / "smart_deploy.py")
filters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(filters)


def test_a_password_with_slash_at_and_colon_survives_a_database_url():
    password, user = "p/ss@wo:rd%?#", "us@er:x"
    url = "postgres://%s:%s@db:5432/%s" % (filters.smart_deploy_urlquote(user), filters.smart_deploy_urlquote(password), "shop")
    parts = urlsplit(url)
    assert (unquote(parts.username), unquote(parts.password), parts.hostname, parts.port, parts.path) == (
        user,
        password,
        "db",
        5432,
        "/shop",
    )


def test_jinja_urlencode_alone_would_break_it():
    assert "/" not in filters.smart_deploy_urlquote("a/b")


def test_mask_hides_every_secret_in_text_and_structures():
    secrets = {"POSTGRES_PASSWORD": "Canary/pw@1:2", "KEY": "sk-123456"}
    text = "failed: connect postgres://u:Canary%2Fpw%401%3A2@db (key sk-123456, pw Canary/pw@1:2)"
    masked = filters.smart_deploy_mask(text, secrets)
    assert "Canary" not in masked and "sk-123456" not in masked and masked.count("********") == 3
    nested = filters.smart_deploy_mask({"msg": ["sk-123456 here"], "n": 3}, ["sk-123456"])
    assert nested == {"msg": ["******** here"], "n": 3}


def test_mask_leaves_text_alone_without_secrets_and_ignores_tiny_ones():
    assert filters.smart_deploy_mask("nothing secret", ["", None, "ab", True]) == "nothing secret"


def test_redact_hides_row_values_of_a_failure_and_is_a_filter_of_the_module():
    """reason.yml: a failed task's message and stderr, secrets masked, then row values hidden."""
    failure = "Apply the migrations: IntegrityError (DETAIL:  Key (sku)=(TEA-001) already exists.)"
    assert filters.smart_deploy_redact(filters.smart_deploy_mask(failure, "s3cret-pw")) == (
        "Apply the migrations: IntegrityError (DETAIL:  Key (sku)=(\u2026) already exists.)"
    )
    assert filters.FilterModule().filters()["smart_deploy_redact"] is filters.smart_deploy_redact


PLACEHOLDER_PLAY = """\
- hosts: localhost
  gather_facts: false
  vars:
    database_password: canary-pw
    app_secret_env:
      DATABASE_URL: "postgres://app:{{ database_password }}@db:5432/app"
      CACHE_URL: "redis://:canary-redis@redis:6379/1"
      DJANGO_SECRET_KEY: canary-key
      VAULTED_ELSEWHERE: "{{ a_variable_this_run_does_not_define }}"
  tasks:
    - name: The placeholders
      ansible.builtin.copy:
        content: "{{ app_secret_env | smart_deploy_placeholders | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""


def test_placeholders_keep_only_the_scheme_and_need_no_value_that_cannot_be_rendered(tmp_path):
    """As Ansible runs the filter (the role default smart_deploy_offline_secret_env): a value that cannot be rendered
    here (a variable this run does not define, as the old names-only expression allowed) gets the plain placeholder."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "play.yml").write_text(PLACEHOLDER_PLAY)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", SMART_DEPLOY_LOG_DIR=str(tmp_path / "logs"))
    env.pop("GITHUB_STEP_SUMMARY", None)
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=" + sys.executable, "-e", "out=%s" % (tmp_path / "out.json"), str(tmp_path / "play.yml")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert json.loads((tmp_path / "out.json").read_text()) == {
        "DATABASE_URL": "postgres://smart-deploy-placeholder-database_url@localhost/0",
        "CACHE_URL": "redis://smart-deploy-placeholder-cache_url@localhost/0",
        "DJANGO_SECRET_KEY": "smart-deploy-placeholder-django_secret_key",
        "VAULTED_ELSEWHERE": "smart-deploy-placeholder-vaulted_elsewhere",
    }
    assert "canary" not in done.stdout + done.stderr
    assert filters.FilterModule().filters()["smart_deploy_placeholders"] is filters.smart_deploy_placeholders
