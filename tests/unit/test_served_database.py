"""Whether a release's containers use the database smart-deploy migrated (issue 24): the comparison of what the driver's
identify says in the container with what smart-deploy's own connection reads (module_utils/smart_deploy/served_database.py),
and the driver's helpers that need no Django. The driver's identify itself runs on real Django and PostgreSQL in
tests/unit/test_driver_matrix.py, the module in a deployment in tests/integration/test_same_database.py."""

import os

import pytest
from ansible.module_utils.smart_deploy import django_driver as driver
from ansible.module_utils.smart_deploy.served_database import compare, describe_alias, identity_difference

SERVER = {"database": "shop", "oid": "16384", "port": "5432", "started": "1765150000123456", "started_at": "2026-12-07T23:26:40Z",
          "user": "shop", "version": "15.14", "in_recovery": False, "system_identifier": "7716709179600654357"}  # fmt: skip
MIGRATED = {"name": "shop", "host": "shop-db", "port": 5432, "identity": SERVER}
APP_ALIAS = {"engine": "django.db.backends.postgresql", "vendor": "PostgreSQL", "host": "shop-db", "port": "5432", "name": "shop",
             "user": "shop_app", "option_keys": ["sslmode"]}  # fmt: skip


def reported(default=APP_ALIAS, identity=None, **more):
    found = {"databases": {"default": default} if default else {}, "identity": dict(SERVER, user="shop_app", **(identity or {}))}
    found["databases"].update(more.pop("aliases", {}))
    found.update(more)
    return found


def test_the_same_database_reached_by_another_name_is_the_database_migrated():
    """host.docker.internal, an address or a pooler in front: the server's own answer decides, not the host name."""
    verdict = compare(MIGRATED, reported(dict(APP_ALIAS, host="host.docker.internal", port="6432")), "shop-web-1")
    assert verdict.same and verdict.message == "", verdict
    database = verdict.database
    assert (database["engine"], database["host"], database["port"], database["name"], database["user"]) == (
        "django.db.backends.postgresql", "host.docker.internal", "6432", "shop", "shop_app")  # fmt: skip
    assert database["server"]["oid"] == "16384" and database["checked_in"] == "shop-web-1" and "option_keys" not in database
    assert database["summary"] == (
        "PostgreSQL database shop on host.docker.internal:6432 as shop_app - the database smart-deploy migrated (the same server "
        "and database: oid 16384, server started 2026-12-07T23:26:40Z)")  # fmt: skip


def test_sqlite_is_named_with_its_file_and_the_database_migrated():
    sqlite = {"engine": "django.db.backends.sqlite3", "vendor": "SQLite", "host": "", "port": "", "name": "/srv/app/db.sqlite3",
              "user": "", "option_keys": []}  # fmt: skip
    verdict = compare(MIGRATED, {"databases": {"default": sqlite}}, "shop-web-1")
    assert not verdict.same
    assert verdict.message.startswith("the release's settings use SQLite (/srv/app/db.sqlite3), not the PostgreSQL database shop on "
                                      "shop-db:5432 that smart-deploy migrated (asked in its new container shop-web-1, with its own "
                                      "settings and environment); point the app's settings at it")  # fmt: skip
    assert verdict.database["same_as_migrated"] is False and "NOT the database smart-deploy migrated: not PostgreSQL" in verdict.database[
        "summary"]  # fmt: skip


def test_a_connection_the_container_cannot_make_is_refused_naming_what_it_tried():
    error = 'OperationalError: could not translate host name "db" to address: Name or service not known'
    verdict = compare(MIGRATED, {"databases": {"default": dict(APP_ALIAS, host="db")}, "connect_error": error})
    assert not verdict.same and verdict.message.startswith(
        "the release's containers cannot reach the database their settings name, the PostgreSQL database shop on db:5432 as "
        "shop_app: %s; smart-deploy migrated the PostgreSQL database shop on shop-db:5432" % error)  # fmt: skip


@pytest.mark.parametrize(
    "identity, kind",
    [
        ({"database": "postgres", "oid": "5"}, "another database on the same server (postgres, oid 5 - not shop, oid 16384)"),
        ({"oid": "24576"}, "another database on the same server (shop, oid 24576 - not shop, oid 16384)"),
        ({"started": "1765150099000000", "started_at": "2026-12-07T23:28:19Z", "system_identifier": "1"},
         "another PostgreSQL server (system identifier 1, not 7716709179600654357; started at 2026-12-07T23:28:19Z, not "
         "2026-12-07T23:26:40Z)"),
        ({"port": "5433", "started": "1765150099000000", "started_at": "x"}, "another PostgreSQL server (started at x, not "),
        ({"started": "1765150099000000", "in_recovery": True}, "a standby server of the same cluster, in recovery (read-only)"),
        ({"system_identifier": None, "started": "1"}, "another PostgreSQL server (started at"),
    ],
)  # fmt: skip
def test_another_database_or_server_is_told_apart_by_what_the_server_says(identity, kind):
    verdict = compare(MIGRATED, reported(identity=identity))
    assert not verdict.same and kind in verdict.message, verdict.message
    assert "the release's settings use the PostgreSQL database shop on shop-db:5432 as shop_app, which is " in verdict.message


def test_a_system_identifier_one_side_could_not_read_does_not_decide():
    served = dict(SERVER)
    del served["system_identifier"]
    assert identity_difference(SERVER, served) is None
    assert identity_difference(SERVER, {}) == "the server did not say who it is"


def test_the_other_aliases_are_reported_not_compared():
    replica = {"engine": "django.db.backends.postgresql", "vendor": "PostgreSQL", "host": "replica", "port": "", "name": "shop",
               "user": "reader", "option_keys": []}  # fmt: skip
    legacy = {"engine": "django.db.backends.mysql", "vendor": "MySQL", "host": "old", "port": "3306", "name": "crm", "user": "x"}
    verdict = compare(MIGRATED, reported(aliases={"replica": replica, "legacy": legacy}))
    assert verdict.same and sorted(verdict.database["others"]) == ["legacy", "replica"]
    assert verdict.database["summary"].endswith(
        "; other aliases: legacy MySQL (crm on old:3306), replica the PostgreSQL database shop on replica:5432 as reader"
    )


def test_no_default_alias_is_refused():
    verdict = compare(MIGRATED, {"databases": {"replica": APP_ALIAS}})
    assert not verdict.same and "the release's settings have no 'default' database (aliases: replica)" in verdict.message


@pytest.mark.parametrize(
    "engine, label",
    [
        ("django.db.backends.postgresql", "PostgreSQL"),
        ("django.contrib.gis.db.backends.postgis", "PostgreSQL"),
        ("django_tenants.postgresql_backend", "PostgreSQL"),
        ("django.db.backends.sqlite3", "SQLite"),
        ("django.db.backends.mysql", "MySQL"),
        ("django.db.backends.dummy", "no database (Django's dummy backend: DATABASES is empty)"),
        ("", "no ENGINE"),
    ],
)
def test_engines_are_said_in_words(engine, label):
    assert driver.engine_label(engine) == label


def test_an_alias_shows_no_password_nor_option_values():
    summary = driver.database_settings_summary({"ENGINE": "django.db.backends.postgresql", "NAME": "shop", "USER": "app",
                                                "PASSWORD": "s3cret", "HOST": "", "PORT": 5432,
                                                "OPTIONS": {"passfile": "/run/secrets/pg", "sslmode": "require"}})  # fmt: skip
    assert "s3cret" not in repr(summary) and "/run/secrets" not in repr(summary)
    assert summary == {"engine": "django.db.backends.postgresql", "vendor": "PostgreSQL", "host": "", "port": "5432", "name": "shop",
                       "user": "app", "option_keys": ["passfile", "sslmode"]}  # fmt: skip
    assert describe_alias(summary) == "the PostgreSQL database shop on the local socket:5432 as app"


def test_identify_reads_the_environment_a_process_started_with():
    """/proc/<pid>/environ: what the container's main process (PID 1) serves with; this process's own here."""
    found = driver.process_environment(os.getpid())
    assert found["PATH"] == os.environ["PATH"] or "PATH" in found
    assert driver.process_environment(999999999) is None
    assert driver.identify_options(["--environ-of", "1", "--project-dir", "/app"]) == {"environ_of": "1", "project_dir": "/app"}
    with pytest.raises(driver.AppProblem):
        driver.identify_options(["--settings", "x"])
