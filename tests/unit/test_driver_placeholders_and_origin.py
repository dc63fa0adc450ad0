"""The driver's pure parts of issue 20 (no Django): the placeholders of the app's secrets and where the driver points
them, the settings module found the way manage.py finds it and the messages that name settings_module, and whose a
failure is (the app's, or smart-deploy's own defect). test_driver_matrix.py runs them on real Django and PostgreSQL."""

from __future__ import annotations

import os
import sys
from urllib.parse import unquote, urlsplit

import pytest
from ansible.module_utils.smart_deploy import django_driver as driver
from ansible.module_utils.smart_deploy.oneoff import DriverError, parse_result

SECRETS = {
    "DATABASE_URL": "postgres://prod:canary-pw@prod-db.internal:5432/prod?sslmode=verify-full",
    "Replica_Url": "PostgreSQL://reader:canary-ro@10.0.0.9/prod",
    "CACHE_URL": "redis://:canary-redis@redis.internal:6379/1",
    "SENTRY_DSN": "https://canary-key@o1.ingest.sentry.io/42",
    "DJANGO_SECRET_KEY": "canary-secret",
    "NOT_A_URL": "canary:with-a-colon",
    "NUMBER": 12345,
    "EMPTY": None,
}


# --- placeholders -------------------------------------------------------------------------------------------------


def test_every_secret_name_gets_a_placeholder_that_keeps_nothing_of_it_but_a_urls_scheme():
    found = driver.placeholders(SECRETS)
    assert sorted(found) == sorted(SECRETS)
    assert not any("canary" in value or "12345" in value for value in found.values()), found
    assert found == {
        "DATABASE_URL": "postgres://smart-deploy-placeholder-database_url@localhost/0",
        "Replica_Url": "postgresql://smart-deploy-placeholder-replica_url@localhost/0",
        "CACHE_URL": "redis://smart-deploy-placeholder-cache_url@localhost/0",
        "SENTRY_DSN": "https://smart-deploy-placeholder-sentry_dsn@localhost/0",
        "DJANGO_SECRET_KEY": "smart-deploy-placeholder-django_secret_key",
        "NOT_A_URL": "smart-deploy-placeholder-not_a_url",
        "NUMBER": "smart-deploy-placeholder-number",
        "EMPTY": "smart-deploy-placeholder-empty",
    }


def test_a_url_placeholder_parses_as_a_url_with_a_user_a_host_and_a_path():
    """What DSN and URL parsers ask for (a Sentry DSN needs a user and a numeric project): all there."""
    for value in driver.placeholders(SECRETS).values():
        if "://" in value:
            parts = urlsplit(value)
            assert parts.hostname == "localhost" and parts.username.startswith("smart-deploy-placeholder-") and parts.path == "/0"


SCRATCH = {"SMART_DEPLOY_DB_HOST": "app-scratch-db-1", "SMART_DEPLOY_DB_PORT": "5432", "SMART_DEPLOY_DB_NAME": "rehearsal",
           "SMART_DEPLOY_DB_USER": "scratch", "SMART_DEPLOY_DB_PASSWORD": "p/ss@wo:rd"}  # fmt: skip


def test_url_placeholders_are_pointed_where_the_driver_points_django():
    environ = dict(SCRATCH, **driver.placeholders(SECRETS), PLAIN_URL="postgres://app:x@elsewhere/db")
    pointed = driver.point_placeholders(environ)
    assert sorted(pointed) == ["CACHE_URL", "DATABASE_URL", "Replica_Url", "SENTRY_DSN"]  # URL placeholders only
    database = urlsplit(pointed["DATABASE_URL"])
    assert (database.scheme, unquote(database.username), unquote(database.password), database.hostname, database.port, database.path) == (
        "postgres", "scratch", "p/ss@wo:rd", "app-scratch-db-1", 5432, "/rehearsal")  # fmt: skip
    assert pointed["Replica_Url"].startswith("postgresql://scratch:") and pointed["Replica_Url"].endswith(
        "@app-scratch-db-1:5432/rehearsal"
    )
    assert pointed["CACHE_URL"] == "redis://smart-deploy-placeholder-cache_url@app-scratch-db-1/0"
    assert pointed["SENTRY_DSN"] == "https://smart-deploy-placeholder-sentry_dsn@app-scratch-db-1/0"
    environ.update(pointed)
    assert driver.point_placeholders(environ) == {k: v for k, v in pointed.items() if "placeholder" in v}  # again: the same


def test_the_analysis_points_them_at_its_database_without_host_or_password():
    environ = dict(driver.placeholders(SECRETS), SMART_DEPLOY_DB_HOST="", SMART_DEPLOY_DB_PORT="", SMART_DEPLOY_DB_NAME="shop",
                   SMART_DEPLOY_DB_USER="shop_owner", SMART_DEPLOY_DB_PASSWORD="")  # fmt: skip
    assert driver.point_placeholders(environ)["DATABASE_URL"] == "postgres://shop_owner@localhost/shop"


def test_without_a_database_of_smart_deploys_nothing_is_pointed():
    assert driver.point_placeholders(driver.placeholders(SECRETS)) == {}


# --- the settings module ----------------------------------------------------------------------------------------


def test_the_settings_module_named_by_manage_py_is_used_and_placeholders_are_pointed(tmp_path, monkeypatch):
    (tmp_path / "manage.py").write_text('import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")\n')
    monkeypatch.setattr(sys, "path", list(sys.path))
    environ = dict(SCRATCH, SMART_DEPLOY_PROJECT_DIR=str(tmp_path), **driver.placeholders({"DATABASE_URL": "postgres://x"}))
    source = driver.prepare_environment(environ)
    assert environ["DJANGO_SETTINGS_MODULE"] == "config.settings.production" and source == "%s's default" % (tmp_path / "manage.py")
    assert environ["DATABASE_URL"].endswith("@app-scratch-db-1:5432/rehearsal") and sys.path[0] == str(tmp_path)
    kept = dict(environ, DJANGO_SETTINGS_MODULE="mine.settings")
    assert driver.prepare_environment(kept) == "DJANGO_SETTINGS_MODULE" and kept["DJANGO_SETTINGS_MODULE"] == "mine.settings"


def test_no_settings_module_anywhere_says_so_and_names_settings_module(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    environ = {"SMART_DEPLOY_PROJECT_DIR": str(tmp_path)}
    source = driver.prepare_environment(environ)
    assert "DJANGO_SETTINGS_MODULE" not in environ and "there is no %s" % (tmp_path / "manage.py") in source
    message = driver.settings_problem(Exception("settings are not configured"), None, source)
    assert message.startswith("Django's settings module is not known (none: DJANGO_SETTINGS_MODULE is not set")
    assert "settings_module" in message and driver.SETTINGS_KEY in message


def test_a_settings_module_that_cannot_be_imported_or_fails_names_settings_module():
    missing = ModuleNotFoundError("No module named 'config'", name="config")
    message = driver.settings_problem(missing, "config.settings", "DJANGO_SETTINGS_MODULE")
    assert message.startswith("the settings module config.settings (from DJANGO_SETTINGS_MODULE) cannot be imported: ModuleNotFoundError")
    assert driver.SETTINGS_KEY in message
    failing = driver.settings_problem(ValueError("No support for ''"), "config.settings", "/app/manage.py's default")
    assert "failed to import: ValueError: No support for ''" in failing and driver.SETTINGS_KEY in failing
    # a module the settings import that is missing is the settings' problem, not a wrong settings module
    dependency = driver.settings_problem(ModuleNotFoundError("No module named 'environ'", name="environ"), "config.settings", "x")
    assert "failed to import" in dependency


# --- whose failure ------------------------------------------------------------------------------------------------


def raised_in(path, source, library_dirs=()):
    """Whose the exception ``source`` raises is, run as code of the file ``path`` (its frames name that file) by this
    file, which stands for the driver (the frame that catches it)."""
    namespace = {"AppProblem": driver.AppProblem}
    try:
        exec(compile(source, str(path), "exec"), namespace)
    except Exception as exc:
        return driver.failure_origin(exc, driver_file=__file__, library_dirs=library_dirs)
    raise AssertionError("nothing raised")


CLIENT_ERROR = "class InterfaceError(Exception):\n    pass\n\nraise InterfaceError('result not set')\n"


def test_a_sqlstate_or_an_app_problem_is_the_apps(tmp_path):
    refused = "class IntegrityError(Exception):\n    pgcode = '23502'\n\nraise IntegrityError('null value')\n"
    assert raised_in(tmp_path / "lib" / "psycopg2.py", refused, [str(tmp_path / "lib") + "/"]) == driver.APP
    assert raised_in(tmp_path / "driver.py", "raise AppProblem('settings')") == driver.APP


def test_a_client_error_without_sqlstate_while_no_app_code_ran_is_smart_deploys(tmp_path):
    library = [str(tmp_path / "lib") + "/"]
    assert raised_in(tmp_path / "lib" / "psycopg" / "cursor.py", CLIENT_ERROR, library) == driver.SMART_DEPLOY
    # the same error raised by the app's own code (a RunPython of its own): the app's
    assert raised_in(tmp_path / "app" / "migrations" / "0002.py", CLIENT_ERROR, library) == driver.APP
    # any other error in a library, e.g. a migration of an installed package: the app's
    assert raised_in(tmp_path / "lib" / "thing" / "migrations" / "0001.py", "raise KeyError('x')", library) == driver.APP


def test_an_error_raised_by_the_drivers_own_code_is_smart_deploys():
    try:
        driver.quote_ident("")
    except ValueError as exc:
        assert driver.failure_origin(exc) == driver.SMART_DEPLOY
        assert driver.failure(exc)["origin"] == driver.SMART_DEPLOY and "quote_ident" in driver.failure(exc)["traceback"]


def test_the_installed_code_is_the_standard_library_and_the_packages():
    dirs = driver.installed_code_dirs()
    assert os.path.dirname(os.__file__).rstrip("/") + "/" in dirs and pytest.__file__.startswith(dirs)


# --- the module side: a result that cannot be read is smart-deploy's -----------------------------------------------


def test_a_result_line_that_cannot_be_read_is_smart_deploys_defect():
    assert parse_result("no result here\n") is None
    assert parse_result('x\n%s{"ok": true}\n' % driver.RESULT_MARK) == {"ok": True}
    for broken in ("{not json", "[1, 2]"):
        with pytest.raises(DriverError) as raised:
            parse_result("%s%s\n" % (driver.RESULT_MARK, broken))
        assert raised.value.defect and "defect of smart-deploy" in str(raised.value)
    failed = DriverError("boom", result={"ok": False, "origin": "app", "traceback": "Traceback ..."})
    assert not failed.defect and failed.traceback == "Traceback ..."
