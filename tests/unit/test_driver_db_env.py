"""What points the driver at smart-deploy's database: the scratch database's environment
(SMART_DEPLOY_DB_* beside POSTGRES_*/DATABASE_URL), and which app-test commands the driver runs
(django_test's ``driver.py test`` in place of ``manage.py test``)."""

from __future__ import annotations

import pytest
from ansible.module_utils.smart_deploy import django_driver
from ansible.module_utils.smart_deploy.scratch import Scratch

from tests.conftest import load_module


def test_the_scratch_environment_points_the_driver_at_the_scratch_database():
    scratch = Scratch("docker", "shop", "postgres:15-bookworm", run_id="r1", purpose="tests")
    env = scratch.env({"POSTGRES_HOST": "shop-db", "SMART_DEPLOY_DB_HOST": "shop-db", "DJANGO_ALLOWED_HOSTS": "*"})
    assert env["DJANGO_ALLOWED_HOSTS"] == "*"
    assert {k: env[k] for k in env if k.startswith("SMART_DEPLOY_DB_")} == {
        "SMART_DEPLOY_DB_HOST": scratch.container,
        "SMART_DEPLOY_DB_PORT": "5432",
        "SMART_DEPLOY_DB_NAME": scratch.database,
        "SMART_DEPLOY_DB_USER": scratch.user,
        "SMART_DEPLOY_DB_PASSWORD": scratch.password,
    }
    assert env["POSTGRES_HOST"] == scratch.container and env["POSTGRES_PASSWORD"] == scratch.password
    # what the driver makes of it: exactly the scratch database, whatever the app's settings said
    databases = django_driver.database_override(env, {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}})
    default = databases["default"]
    assert (default["HOST"], default["PORT"], default["NAME"], default["USER"], default["PASSWORD"]) == (
        scratch.container, "5432", "rehearsal", "scratch", scratch.password)  # fmt: skip
    assert default["ENGINE"] == "django.db.backends.postgresql"


@pytest.mark.parametrize(
    "command, project_dir, expected",
    [
        (["python", "manage.py", "test", "--noinput"], None, ("python", ["--noinput"], None)),
        (["python3", "manage.py", "test"], "/srv/app", ("python3", [], "/srv/app")),
        (["python", "manage.py", "test", "--noinput", "catalog", "--parallel", "2"], None,
         ("python", ["--noinput", "catalog", "--parallel", "2"], None)),
        (["/venv/bin/python", "/srv/notes/manage.py", "test", "-v", "2"], None, ("/venv/bin/python", ["-v", "2"], "/srv/notes")),
        (["python", "/srv/notes/manage.py", "test"], "/app", ("python", [], "/app")),
        (["python", "src/manage.py", "test"], None, None),  # relative path: run as given
        (["python", "manage.py", "test", "--settings=shop.test_settings"], None, None),
        (["python", "manage.py", "test", "--pythonpath", "/x"], None, None),
        (["pytest", "-q"], None, None),
        (["python", "manage.py", "check"], None, None),
        (["sh", "-c", "sleep 4; echo Ran 1 test"], None, None),
    ],
)  # fmt: skip
def test_the_driver_runs_djangos_test_command_and_nothing_else(command, project_dir, expected):
    assert load_module("django_test").driver_test_args(command, project_dir) == expected


def test_the_driver_result_line_is_not_part_of_the_output():
    django_test = load_module("django_test")
    output = 'Found 2 test(s).\n%s{"ok": true}\nRan 2 tests in 0.1s\n\nOK' % django_driver.RESULT_MARK
    assert django_test.without_result(output) == "Found 2 test(s).\nRan 2 tests in 0.1s\n\nOK"


def test_migrating_refuses_a_driver_database_other_than_the_one_checked():
    django_migrate = load_module("django_migrate")
    params = {"db_name": "shop", "env": {"SMART_DEPLOY_DB_NAME": "shop"}, "secret_env": {}}
    assert django_migrate.database_problem(params) is None
    assert django_migrate.database_problem(dict(params, env={})) is None  # the app's own settings, as before
    problem = django_migrate.database_problem(dict(params, env={"SMART_DEPLOY_DB_NAME": "shop_old"}))
    assert "SMART_DEPLOY_DB_NAME (shop_old) is not db_name (shop)" in problem


def test_the_offline_analysis_is_set_up_on_a_database_without_host_or_password():
    dryrun = load_module("django_migration_dryrun")
    env = dryrun.offline_env({"full_env": {"POSTGRES_HOST": "shop-db", "DJANGO_SECRET_KEY": "placeholder"}, "db_name": "shop",
                              "db_user": "shop"})  # fmt: skip
    assert env["POSTGRES_HOST"] == "shop-db" and env["DJANGO_SECRET_KEY"] == "placeholder"
    assert {k: v for k, v in env.items() if k.startswith("SMART_DEPLOY_DB_")} == {
        "SMART_DEPLOY_DB_HOST": "", "SMART_DEPLOY_DB_PORT": "", "SMART_DEPLOY_DB_NAME": "shop", "SMART_DEPLOY_DB_USER": "shop",
        "SMART_DEPLOY_DB_PASSWORD": "",
    }  # fmt: skip


def test_migrating_has_no_fault_switch(run_module):
    """The test-only fail_after option is gone from the module: the fault tests make migrations that fail for real."""
    result = run_module("django_migrate", {"image": "shop-backend:1", "db_container": "shop-db", "db_name": "shop", "db_user": "shop",
                                           "expected_plan": ["cart.0002_cartitem_note"], "fail_after": 1})  # fmt: skip
    assert result["failed"] and "Unsupported parameters" in result["msg"] and "fail_after" in result["msg"], result
    django_migrate = load_module("django_migrate")
    assert "fail_after" not in django_migrate.DOCUMENTATION
