"""The driver points Django at the database smart-deploy chose (SMART_DEPLOY_DB_*), whatever the app's
settings read: first the pure computation of the new DATABASES, then the real thing on Django 4.2 LTS
and 5.2 against a PostgreSQL server in Docker (the Docker part needs Docker: tests here always have it)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from ansible.module_utils.smart_deploy import django_driver as driver

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "module_utils" / "smart_deploy" / "django_driver.py"
PASSWORD = "pw:Sd p@ss'w0rd-%s" % uuid.uuid4().hex[:8]

TARGET = {
    "SMART_DEPLOY_DB_HOST": "db.example",
    "SMART_DEPLOY_DB_PORT": "6432",
    "SMART_DEPLOY_DB_NAME": "shop",
    "SMART_DEPLOY_DB_USER": "shop_owner",
    "SMART_DEPLOY_DB_PASSWORD": PASSWORD,
}
APP_DATABASES = {
    "default": {
        "ENGINE": "django.contrib.gis.db.backends.postgis",
        "NAME": "app_own_name",
        "USER": "app_user",
        "PASSWORD": "app-password",
        "HOST": "app-db.internal",
        "PORT": 5432,
        "OPTIONS": {"service": "elsewhere", "pool": True},
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
        "ATOMIC_REQUESTS": True,
        "TIME_ZONE": None,
        "TEST": {"NAME": "test_app"},
        "CUSTOM_KEY": "dropped",
    },
    "replica": {"ENGINE": "django.db.backends.postgresql", "NAME": "replica", "HOST": "replica.internal"},
}


# --------------------------------------------------------------------------------------------------
# The pure part: the new DATABASES, from the environment and the app's DATABASES
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("environ", [{}, {"SMART_DEPLOY_DB_NAME": ""}, dict(TARGET, SMART_DEPLOY_DB_NAME="")])
def test_without_a_database_name_the_apps_settings_stand(environ):
    assert driver.database_override(environ, APP_DATABASES) is None


def test_default_is_exactly_the_chosen_database_and_other_aliases_are_dropped():
    before = copy.deepcopy(APP_DATABASES)
    databases = driver.database_override(TARGET, APP_DATABASES)
    assert databases == {
        "default": {
            "ENGINE": "django.contrib.gis.db.backends.postgis",
            "NAME": "shop",
            "USER": "shop_owner",
            "PASSWORD": PASSWORD,
            "HOST": "db.example",
            "PORT": "6432",
            "OPTIONS": {},
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "ATOMIC_REQUESTS": True,
            "TIME_ZONE": None,
            "TEST": {"NAME": "test_app"},
        }
    }
    assert APP_DATABASES == before  # the app's dict is left as it was
    assert databases["default"]["TEST"] is not APP_DATABASES["default"]["TEST"]


@pytest.mark.parametrize(
    "engine, kept",
    [
        ("django.db.backends.postgresql", True),
        ("django.contrib.gis.db.backends.postgis", True),
        ("django_prometheus.db.backends.postgresql", True),
        ("django_prometheus.db.backends.postgis", True),
        ("django.db.backends.mysql", False),
        ("django.db.backends.sqlite3", False),
        ("django.db.backends.dummy", False),
        ("", False),
        (None, False),
    ],
)
def test_the_apps_engine_stays_only_when_it_is_postgresql(engine, kept):
    app = {"default": {"ENGINE": engine, "NAME": "x"}}
    databases = driver.database_override(TARGET, app)
    assert databases["default"]["ENGINE"] == (engine if kept else "django.db.backends.postgresql")


@pytest.mark.parametrize("app", [{}, None, {"default": {}}, {"other": {"ENGINE": "django.db.backends.sqlite3"}}])
def test_an_app_without_a_usable_default_gets_one(app):
    databases = driver.database_override({"SMART_DEPLOY_DB_NAME": "shop"}, app)
    assert databases == {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "shop",
            "USER": "",
            "PASSWORD": "",
            "HOST": "",
            "PORT": "",
            "OPTIONS": {},
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
        }
    }


def test_sslmode_and_options_come_only_from_the_environment():
    environ = dict(TARGET, SMART_DEPLOY_DB_SSLMODE="verify-full", SMART_DEPLOY_DB_OPTIONS='{"connect_timeout": 5, "sslmode": "prefer"}')
    databases = driver.database_override(environ, APP_DATABASES)
    assert databases["default"]["OPTIONS"] == {"connect_timeout": 5, "sslmode": "verify-full"}
    assert "service" not in databases["default"]["OPTIONS"]


@pytest.mark.parametrize("port", ["x", "0", "65536", "-1", "5432; drop"])
def test_a_bad_port_is_refused_without_the_password(port):
    with pytest.raises(ValueError) as caught:
        driver.database_override(dict(TARGET, SMART_DEPLOY_DB_PORT=port), APP_DATABASES)
    assert "SMART_DEPLOY_DB_PORT" in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("options", ['["a"]', "{not json", '"text"', "3"])
def test_options_must_be_a_json_object_and_are_not_quoted_back(options):
    environ = dict(TARGET, SMART_DEPLOY_DB_OPTIONS=options)
    with pytest.raises(ValueError) as caught:
        driver.database_override(environ, APP_DATABASES)
    assert str(caught.value) == "SMART_DEPLOY_DB_OPTIONS is not a JSON object"


def test_the_summary_says_what_changed_and_never_the_password():
    databases = driver.database_override(dict(TARGET, SMART_DEPLOY_DB_SSLMODE="require"), APP_DATABASES)
    summary = driver.override_summary(APP_DATABASES, databases)
    assert summary == {
        "overridden": True,
        "engine": "django.contrib.gis.db.backends.postgis",
        "host": "db.example",
        "port": "6432",
        "name": "shop",
        "user": "shop_owner",
        "option_keys": ["sslmode"],
        "app_engine_replaced": False,
        "dropped_aliases": ["replica"],
    }
    assert PASSWORD not in json.dumps(summary)


def test_a_changed_connection_setting_is_found_without_quoting_the_password():
    wanted = driver.database_override(TARGET, APP_DATABASES)["default"]
    django_view = {"default": dict(wanted, AUTOCOMMIT=True, CONN_HEALTH_CHECKS=False)}  # Django adds defaults
    assert driver.override_mismatch(wanted, django_view, []) == ""
    changed = {"default": dict(wanted, HOST="app-db.internal", PASSWORD="other"), "replica": {}}
    wrong = driver.override_mismatch(wanted, changed, ["app.routers.Router"])
    assert "HOST is 'app-db.internal', not 'db.example'" in wrong
    assert "PASSWORD changed" in wrong
    assert "aliases ['default', 'replica']" in wrong
    assert "DATABASE_ROUTERS is not empty" in wrong
    assert PASSWORD not in wrong and "other" not in wrong


def test_the_password_is_masked_wherever_it_shows_up():
    data = {"error": "could not connect with %s" % PASSWORD, "list": ["a", PASSWORD], "n": 3, "none": None}
    assert driver.redact(data, PASSWORD) == {"error": "could not connect with ********", "list": ["a", "********"], "n": 3, "none": None}
    assert driver.redact(data, "") == data


def test_emit_masks_the_password(capsys, monkeypatch):
    monkeypatch.setenv("SMART_DEPLOY_DB_PASSWORD", PASSWORD)
    driver.emit({"ok": False, "error": "boom %s" % PASSWORD})
    out = capsys.readouterr().out
    assert PASSWORD not in out
    result = json.loads(out.strip().split(driver.RESULT_MARK, 1)[1])
    assert result == {"ok": False, "error": "boom ********"}


# --------------------------------------------------------------------------------------------------
# The real thing: Django 4.2 and 5.2 in venvs of their own, PostgreSQL in Docker
# --------------------------------------------------------------------------------------------------

VENV_CACHE = Path("/tmp/sd-driver-venvs")
POSTGRES_IMAGE = "postgres:15-bookworm"
NO_NETWORK = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution", "Network is unreachable",
              "ConnectTimeoutError", "ReadTimeoutError", "Could not fetch URL", "No route to host")  # fmt: skip
BOGUS_URL = "postgres://app:app-secret@db.invalid:5432/appdb"

SETTINGS = """\
import os
from urllib.parse import unquote, urlsplit

# The app reads its database from a variable of its own; smart-deploy knows nothing of it.
url = urlsplit(os.environ["APP_DB_URL"])
SECRET_KEY = "not-a-secret"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "notes"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
own = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": url.path.lstrip("/"),
    "USER": unquote(url.username or ""),
    "PASSWORD": unquote(url.password or ""),
    "HOST": url.hostname,
    "PORT": url.port or 5432,
    "OPTIONS": {"connect_timeout": 3},
    "CONN_MAX_AGE": 600,
    "ATOMIC_REQUESTS": True,
}
DATABASES = {"default": own, "replica": dict(own, HOST="replica.invalid")}
DATABASE_ROUTERS = ["site_cfg.routers.EverythingToTheReplica"]
"""
ROUTERS = """\
class EverythingToTheReplica:
    def db_for_read(self, model, **hints):
        return "replica"

    def db_for_write(self, model, **hints):
        return "replica"
"""
MODELS = """\
from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=100)
"""
MIGRATION = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Note",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text", models.CharField(max_length=100)),
            ],
        ),
    ]
"""
PROBE = """\
import importlib.util, json, sys

spec = importlib.util.spec_from_file_location("smart_deploy_driver", sys.argv[1])
driver = importlib.util.module_from_spec(spec)
spec.loader.exec_module(driver)
summary = driver.setup_django()

import django
from django.db import connection, router
from django.db.utils import OperationalError

from notes.models import Note

out = {"django": django.get_version(), "summary": summary, "write_alias": router.db_for_write(Note)}
try:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), current_user, inet_server_port()")
        out["connected"] = list(cursor.fetchone())
except OperationalError as exc:
    out["error"] = str(exc).strip()
print("PROBE=" + json.dumps(out))
"""


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def django_python(version: str, tmp_path: Path) -> Path:
    """The python of a venv with Django ``version`` and psycopg2: built under tmp_path, then kept in
    VENV_CACHE/<version> for the next runs. Skips only when pip cannot reach the package index."""
    cached = VENV_CACHE / version
    if (cached / ".ready").exists():
        return cached / "bin" / "python"
    venv = tmp_path / ("venv-" + version)
    made = run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)])
    assert made.returncode == 0, made.stderr
    pip = run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--timeout", "30",
               "Django==%s.*" % version, "psycopg2-binary"], timeout=900)  # fmt: skip
    if pip.returncode != 0:
        output = pip.stdout + pip.stderr
        if any(sign in output for sign in NO_NETWORK):
            pytest.skip("pip cannot reach the package index to install Django %s: %s" % (version, output.strip()[-300:]))
        pytest.fail("pip could not install Django %s: %s" % (version, output[-2000:]))
    (venv / ".ready").write_text(version)
    VENV_CACHE.mkdir(parents=True, exist_ok=True)
    try:  # the venv's python finds its prefix from where it is, so the moved venv works
        venv.rename(cached)
        return cached / "bin" / "python"
    except OSError:  # another run cached it first, or another file system: use this one
        return venv / "bin" / "python"


@pytest.fixture(scope="module")
def postgres_in_docker():
    """A real PostgreSQL server published on a free loopback port (Docker required), removed at the end.
    Yields (port, psql) where psql(sql, database) runs SQL as the superuser."""
    assert run(["docker", "info", "--format", "{{.ServerVersion}}"]).returncode == 0, "this test needs Docker"
    name = "sd-driver-override-%s" % uuid.uuid4().hex[:10]
    started = run(["docker", "run", "-d", "--name", name, "--label", "smart-deploy.test=driver-override",
                   "-e", "POSTGRES_PASSWORD=superuser-pw", "-p", "127.0.0.1::5432", POSTGRES_IMAGE])  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        port = int(run(["docker", "port", name, "5432/tcp"]).stdout.split(":")[-1])

        def psql(sql, database="postgres"):
            result = run(["docker", "exec", name, "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", database, "-c", sql])
            assert result.returncode == 0, result.stderr
            return result.stdout.strip()

        for _ in range(300):  # the TCP listener comes up only after the image's initialisation
            if run(["docker", "exec", name, "pg_isready", "-h", "127.0.0.1", "-U", "postgres"]).returncode == 0:
                break
            subprocess.run(["sleep", "0.2"], check=False)
        else:
            pytest.fail("PostgreSQL did not start: %s" % run(["docker", "logs", "--tail", "20", name]).stderr)
        yield port, psql
    finally:
        run(["docker", "rm", "-f", "-v", name])


def write_project(root: Path) -> Path:
    files = {
        "site_cfg/__init__.py": "",
        "site_cfg/settings.py": SETTINGS,
        "site_cfg/routers.py": ROUTERS,
        "notes/__init__.py": "",
        "notes/models.py": MODELS,
        "notes/migrations/__init__.py": "",
        "notes/migrations/0001_initial.py": MIGRATION,
        "probe.py": PROBE,
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("version", ["4.2", "5.2"])
def test_django_connects_to_the_chosen_database_not_the_apps_own(version, tmp_path, postgres_in_docker):
    """Needs Docker. The app's settings read APP_DB_URL (a host that does not exist) and route everything
    to a replica: without SMART_DEPLOY_DB_* the driver's setup cannot connect; with them Django talks to
    the real server, as the chosen role, with the routers gone, and the driver's apply migrates there."""
    port, psql = postgres_in_docker
    database, role = "target_%s" % version.replace(".", ""), "deployer_%s" % version.replace(".", "")
    psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (role, PASSWORD.replace("'", "''")))
    psql("CREATE DATABASE %s OWNER %s" % (database, role))
    python = django_python(version, tmp_path)
    project = write_project(tmp_path / "project")
    base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "APP_DB_URL": BOGUS_URL,
                "DJANGO_SETTINGS_MODULE": "site_cfg.settings", "SMART_DEPLOY_PROJECT_DIR": str(project)}  # fmt: skip
    chosen = {
        "SMART_DEPLOY_DB_HOST": "127.0.0.1",
        "SMART_DEPLOY_DB_PORT": str(port),
        "SMART_DEPLOY_DB_NAME": database,
        "SMART_DEPLOY_DB_USER": role,
        "SMART_DEPLOY_DB_PASSWORD": PASSWORD,
        "SMART_DEPLOY_DB_SSLMODE": "disable",
    }

    def probe(env):
        result = run([str(python), "probe.py", str(DRIVER)], cwd=project, env=env, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert PASSWORD not in result.stdout + result.stderr
        line = [x for x in result.stdout.splitlines() if x.startswith("PROBE=")][-1]
        return json.loads(line[len("PROBE=") :])

    own = probe(base_env)  # today's behaviour: the app's settings, its bogus host, its router
    assert own["django"].startswith(version + ".")
    assert own["summary"] is None
    assert own["write_alias"] == "replica"
    assert "connected" not in own and "db.invalid" in own["error"]

    over = probe(dict(base_env, **chosen))
    assert over["django"].startswith(version + ".")
    assert over["connected"] == [database, role, 5432]  # inside the container it listens on 5432
    assert over["write_alias"] == "default"
    assert over["summary"] == {
        "overridden": True,
        "engine": "django.db.backends.postgresql",
        "host": "127.0.0.1",
        "port": str(port),
        "name": database,
        "user": role,
        "option_keys": ["sslmode"],
        "app_engine_replaced": False,
        "dropped_aliases": ["replica"],
    }

    # The driver as smart-deploy runs it: `python driver.py apply`, the result on its RESULT_MARK line.
    (tmp_path / "input.json").write_text(json.dumps({"advisory_key": 11}))
    env = dict(base_env, SMART_DEPLOY_INPUT=str(tmp_path / "input.json"), **chosen)
    applied = run([str(python), str(DRIVER), "apply"], cwd=project, env=env, timeout=300)
    assert PASSWORD not in applied.stdout + applied.stderr
    result = json.loads(applied.stdout.split(driver.RESULT_MARK, 1)[1].splitlines()[0])
    assert applied.returncode == 0 and result["ok"], applied.stdout + applied.stderr
    assert "notes.0001_initial" in result["applied"] and result["check"]["ok"]
    assert result["database"]["name"] == database and result["database"]["host"] == "127.0.0.1"
    assert psql("SELECT count(*) FROM django_migrations WHERE app = 'notes'", database) == "1"
    assert psql("SELECT tableowner FROM pg_tables WHERE tablename = 'notes_note'", database) == role

    # A wrong password: the failure is reported as data, and the password is not in it.
    env["SMART_DEPLOY_DB_PASSWORD"] = PASSWORD + "-wrong"
    refused = run([str(python), str(DRIVER), "apply"], cwd=project, env=env, timeout=120)
    assert refused.returncode == 2
    assert PASSWORD not in refused.stdout + refused.stderr
    failure = json.loads(refused.stdout.split(driver.RESULT_MARK, 1)[1].splitlines()[0])
    assert failure["ok"] is False and "password authentication failed" in failure["error"]


SNEAKY_APP = """\
from django.apps import AppConfig
from django.conf import settings


class NotesConfig(AppConfig):
    name = "notes"

    def ready(self):  # an app that re-reads its database at start-up, after the driver's override
        settings.DATABASES["default"]["HOST"] = "db.invalid"
"""


@pytest.mark.parametrize("version", ["4.2", "5.2"])
def test_the_driver_refuses_to_run_when_the_app_changes_the_database_back(version, tmp_path):
    """No database needed: the check runs after django.setup(), before any connection."""
    python = django_python(version, tmp_path)
    project = write_project(tmp_path / "project")
    (project / "notes" / "apps.py").write_text(SNEAKY_APP)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "APP_DB_URL": BOGUS_URL,
           "DJANGO_SETTINGS_MODULE": "site_cfg.settings", "SMART_DEPLOY_PROJECT_DIR": str(project),
           "SMART_DEPLOY_DB_HOST": "127.0.0.1", "SMART_DEPLOY_DB_NAME": "shop", "SMART_DEPLOY_DB_PASSWORD": PASSWORD}  # fmt: skip
    refused = run([str(python), str(DRIVER), "analyze"], cwd=project, env=env, timeout=120)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert PASSWORD not in refused.stdout + refused.stderr
    failure = json.loads(refused.stdout.split(driver.RESULT_MARK, 1)[1].splitlines()[0])
    assert "the database override did not hold after django.setup(): HOST is 'db.invalid', not '127.0.0.1'" in failure["error"]

    managed = run([str(python), str(DRIVER), "manage", "check"], cwd=project, env=env, timeout=120)  # the same for `manage`
    assert managed.returncode == 1, managed.stdout + managed.stderr
    assert PASSWORD not in managed.stdout + managed.stderr
    assert "the database override did not hold after django.setup(): HOST is 'db.invalid', not '127.0.0.1'" in managed.stderr


APP_TESTS = """\
from django.db import connection
from django.test import TestCase

from notes.models import Note


class NoteTests(TestCase):
    def test_writes_on_the_chosen_server(self):
        Note.objects.create(text="hello")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database(), current_user")
            print("TESTDB=%s,%s" % cursor.fetchone())
        self.assertEqual(Note.objects.count(), 1)

    def test_skipped(self):
        self.skipTest("on purpose")


class FailingTests(TestCase):
    def test_fails(self):
        self.assertEqual(Note.objects.count(), 1)
"""


@pytest.mark.parametrize("version", ["4.2", "5.2"])
def test_the_driver_runs_the_apps_tests_on_the_chosen_database(version, tmp_path, postgres_in_docker):
    """Needs Docker. `driver.py test <labels and options>` is `manage.py test` on the chosen database: the app's
    settings read APP_DB_URL (a host that does not exist), yet the runner creates its test database on
    the chosen server as the chosen role; a failing test exits 1 with the counts; no override: it cannot."""
    port, psql = postgres_in_docker
    database, role = "apptests_%s" % version.replace(".", ""), "tester_%s" % version.replace(".", "")
    psql("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'" % (role, PASSWORD.replace("'", "''")))
    psql("CREATE DATABASE %s OWNER %s" % (database, role))
    python = django_python(version, tmp_path)
    project = write_project(tmp_path / "project")
    (project / "notes" / "tests.py").write_text(APP_TESTS)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "APP_DB_URL": BOGUS_URL,
           "DJANGO_SETTINGS_MODULE": "site_cfg.settings", "SMART_DEPLOY_INPUT": str(tmp_path / "input.json"),
           "SMART_DEPLOY_DB_HOST": "127.0.0.1", "SMART_DEPLOY_DB_PORT": str(port), "SMART_DEPLOY_DB_NAME": database,
           "SMART_DEPLOY_DB_USER": role, "SMART_DEPLOY_DB_PASSWORD": PASSWORD}  # fmt: skip

    def driver_test(args, environ):
        (tmp_path / "input.json").write_text(json.dumps({"args": args}))
        done = run([str(python), str(DRIVER), "test"], cwd=project, env=environ, timeout=300)  # the image's workdir: the project
        assert PASSWORD not in done.stdout + done.stderr
        return done, json.loads(done.stdout.split(driver.RESULT_MARK, 1)[1].splitlines()[0])

    passed, result = driver_test(["--noinput", "notes.tests.NoteTests"], env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert result["ok"] and result["passed"] and result["status"] == 0
    assert result["counts"] == {"tests": 2, "failures": 0, "errors": 0, "skipped": 1, "expected_failures": 0, "unexpected_successes": 0}
    assert "TESTDB=test_%s,%s" % (database, role) in passed.stdout  # Django's test database, next to the chosen one
    assert result["database"]["name"] == database and result["database"]["dropped_aliases"] == ["replica"]
    assert "Ran 2 tests" in passed.stderr
    assert psql("SELECT count(*) FROM pg_database WHERE datname = 'test_%s'" % database) == "0"  # the runner dropped it

    failed, result = driver_test(["--noinput", "--failfast"], env)  # all the suite, a Django runner option
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert result["ok"] and result["passed"] is False and result["status"] == 1
    assert result["counts"]["failures"] == 1 and result["counts"]["tests"] >= 1
    assert "FAIL: test_fails" in failed.stderr

    own = {k: v for k, v in env.items() if not k.startswith("SMART_DEPLOY_DB_")}  # the app's own settings: unreachable
    cannot, result = driver_test(["--noinput", "notes.tests.NoteTests"], own)
    assert cannot.returncode == 2 and result["ok"] is False and "db.invalid" in result["error"]


# --------------------------------------------------------------------------------------------------
# `driver.py manage <args>`: Django's command line on the chosen database (./deploy dev runs the app with it)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "manage_py, found",
    [
        ('os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notesite.settings")', "notesite.settings"),
        ("os.environ.setdefault( 'DJANGO_SETTINGS_MODULE' ,\n    'config.settings.dev' )", "config.settings.dev"),
        ('os.environ["DJANGO_SETTINGS_MODULE"] = "x.settings"', None),  # not a default: nothing to discover
        ('os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_name())', None),
        ("", None),
        (None, None),
    ],
)
def test_the_settings_module_is_found_in_manage_py(manage_py, found):
    assert driver.settings_module_in(manage_py) == found


def test_the_database_line_names_the_target_but_never_the_password():
    default = driver.database_override(TARGET, APP_DATABASES)["default"]
    line = driver.database_line(default)
    assert line.startswith("smart-deploy: Django's database is shop_owner@db.example:6432/shop ")
    assert PASSWORD not in line
    assert "local socket" in driver.database_line(driver.database_override({"SMART_DEPLOY_DB_NAME": "x"}, {})["default"])


MANAGE_PY = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_cfg.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""
SERVED_SETTINGS = 'ROOT_URLCONF = "site_cfg.urls"\nALLOWED_HOSTS = ["*"]\nDEBUG = True\n'
URLS = """\
from django.urls import path

from notes import views

urlpatterns = [path("where/", views.where)]
"""
VIEWS = """\
from django.db import connection
from django.http import JsonResponse

from notes.models import Note


def where(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), current_user")
        database = list(cursor.fetchone())
    return JsonResponse({"code": %d, "database": database, "notes": Note.objects.count(), "pid": __import__("os").getpid()})
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except (urllib.error.URLError, ConnectionError, OSError, ValueError):
        return None


@pytest.mark.parametrize("version", ["4.2", "5.2"])
def test_manage_runs_djangos_commands_and_the_reloading_server_on_the_chosen_database(version, tmp_path, postgres_in_docker):
    """Needs Docker. `driver.py manage migrate` and `driver.py manage runserver` as ./deploy dev runs them: the app's
    settings read APP_DB_URL (a host that does not exist) and route to a replica, no DJANGO_SETTINGS_MODULE (the
    project's manage.py names it); migrate lands on the chosen database, the server answers from it, and after a code
    edit the autoreloader's new process (started again with the same command line) answers from it too."""
    port, psql = postgres_in_docker
    database, role = "dev_%s" % version.replace(".", ""), "developer_%s" % version.replace(".", "")
    psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (role, PASSWORD.replace("'", "''")))
    psql("CREATE DATABASE %s OWNER %s" % (database, role))
    python = django_python(version, tmp_path)
    project = write_project(tmp_path / "project")
    (project / "manage.py").write_text(MANAGE_PY)
    (project / "site_cfg" / "settings.py").write_text(SETTINGS + SERVED_SETTINGS)
    (project / "site_cfg" / "urls.py").write_text(URLS)
    views = project / "notes" / "views.py"
    views.write_text(VIEWS % 1)
    own = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "APP_DB_URL": BOGUS_URL, "PYTHONUNBUFFERED": "1"}
    env = dict(own, SMART_DEPLOY_DB_HOST="127.0.0.1", SMART_DEPLOY_DB_PORT=str(port), SMART_DEPLOY_DB_NAME=database,
               SMART_DEPLOY_DB_USER=role, SMART_DEPLOY_DB_PASSWORD=PASSWORD)  # fmt: skip

    cannot = run([str(python), str(DRIVER), "manage", "migrate", "--noinput"], cwd=project, env=own, timeout=120)
    assert cannot.returncode != 0 and "db.invalid" in cannot.stderr, cannot.stdout + cannot.stderr  # the app's own settings

    migrated = run([str(python), str(DRIVER), "manage", "migrate", "--noinput"], cwd=project, env=env, timeout=300)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert PASSWORD not in migrated.stdout + migrated.stderr
    assert "Applying notes.0001_initial... OK" in migrated.stdout
    assert "smart-deploy: Django's database is %s@127.0.0.1:%s/%s " % (role, port, database) in migrated.stderr
    assert psql("SELECT count(*) FROM django_migrations WHERE app = 'notes'", database) == "1"
    psql("INSERT INTO notes_note (text) VALUES ('from the chosen database')", database)

    http = free_port()
    url = "http://127.0.0.1:%d/where/" % http
    log = tmp_path / "runserver.log"
    with open(log, "w") as output:
        server = subprocess.Popen([str(python), str(DRIVER), "manage", "runserver", "127.0.0.1:%d" % http], cwd=project, env=env,
                                  stdout=output, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        first = None
        deadline = time.monotonic() + 120
        while first is None and time.monotonic() < deadline and server.poll() is None:
            first = get_json(url)
            time.sleep(0.3)
        assert first is not None, log.read_text()
        assert first == {"code": 1, "database": [database, role], "notes": 1, "pid": first["pid"]}

        reloaded = first
        while reloaded.get("code") != 2 and time.monotonic() < deadline and server.poll() is None:
            views.write_text(VIEWS % 2)  # saved again until the reloader, polling modification times, has seen it
            time.sleep(0.5)
            reloaded = get_json(url) or reloaded
        assert reloaded.get("code") == 2, log.read_text()
        assert reloaded["pid"] != first["pid"]  # a new process: it took the override from the environment again
        assert reloaded["database"] == [database, role] and reloaded["notes"] == 1
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    assert PASSWORD not in log.read_text()
